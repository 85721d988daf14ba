#!/bin/sh
# Shell completion (share/completion): bash, by calling the completion function
# with COMP_WORDS/COMP_CWORD as bash would; zsh (when installed) through a real
# interactive zsh on a pseudo-terminal, pressing Tab. Bundles come from a VM_PATH
# of two folders made here with vm-create; QMP names from a VM started paused.
. "$(dirname "$0")/lib.sh"
comp_dir=$VM_TOP/share/completion
tools="vm-create vm-config vm-argv vm-run vm-stop vm-ls vm-qmp vm-disk vm-pack vm-guest"

export VM_PATH="$T/vms:$T/more"
mkdir -p "$T/vms" "$T/more" "$T/cwd" "$T/cwd/sub"
vm-create -q -d 64M -C - "$T/vms/deb.utm" >/dev/null
vm-create -q -N none "$T/more/router.utm" >/dev/null
vm-create -q -N none "$T/more/my vm.utm" >/dev/null
: >"$T/cwd/vmlinuz-test"
cd "$T/cwd" || exit 1

bcomp() { bash_complete "$comp_dir/utmkit.bash" "$@"; }

# --- bash: registration -----------------------------------------------------
for t in $tools; do
	check_eq "bash: complete -p $t" \
		"$(bash -c '. "$1" && complete -p "$2"' _ "$comp_dir/utmkit.bash" "$t" 2>&1)" \
		"complete -F _utmkit $t"
done

# --- bash: options come from each tool's --help -----------------------------
for b in "$VM_BIN"/vm-*; do
	t=$(basename "$b")
	want=$("$b" --help 2>&1 | grep -E '^[[:space:]]+-' | sed -E 's/^[[:space:]]+//; s/(  |[[:space:]][a-z]).*//' |
		grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u | tr '\n' ' ' | sed 's/ $//')
	check_eq "bash: $t -- offers every long option of its --help" "$(bcomp "$t" --)" "$want"
done
check_match "bash: vm-run - offers short options too" " $(bcomp vm-run -) " ' -a .*--accel |--accel .* -a '
check_eq "bash: vm-run --stop-t" "$(bcomp vm-run --stop-t)" "--stop-timeout"
check_eq "bash: vm-argv --accel (values from vm-config keys)" "$(bcomp vm-argv --accel '')" "auto kvm tcg"
check_eq "bash: vm-argv --accel=k (bash splits at =)" "$(bcomp vm-argv --accel = k)" "kvm"
check_eq "bash: vm-run -t takes a number: no files" "$(bcomp vm-run -t '')" ""
check_eq "bash: vm-create --arch=aarc" "$(bcomp vm-create --arch = aarc)" "aarch64"
check_eq "bash: vm-create --firmware" "$(bcomp vm-create --firmware '')" "bios none uefi"
check_match "bash: vm-create --net" "$(bcomp vm-create --net '')" '^bridge: listen: mcast: none socket: tap: user$'
check_eq "bash: vm-create --kernel completes files" "$(bcomp vm-create --kernel vml)" "vmlinuz-test"
check_eq "bash: vm-create -s fi (a key and =)" "$(bcomp vm-create -s 'fi')" "firmware="
check_eq "bash: vm-create -s firmware=u" "$(bcomp vm-create -s firmware = u)" "uefi"

# --- bash: bundles from $VM_PATH --------------------------------------------
check_eq "bash: vm-run BUNDLE: names from both VM_PATH folders, and folders" \
	"$(bcomp vm-run '')" "deb my vm router sub"
check_eq "bash: vm-run r" "$(bcomp vm-run r)" "router"
check_eq "bash: vm-run takes one bundle" "$(bcomp vm-run deb '')" ""
check_eq "bash: vm-stop takes many" "$(bcomp vm-stop deb r)" "router"
check_eq "bash: vm-argv after options" "$(bcomp vm-argv -0 --accel tcg d)" "deb"
check_eq "bash: vm-ls" "$(bcomp vm-ls m)" "my vm"
check_eq "bash: vm-pack BUNDLE OUT: then files" "$(bcomp vm-pack deb vml)" "vmlinuz-test"
check_eq "bash: vm-pack --format" "$(bcomp vm-pack -F tar.)" "tar.bz2 tar.gz tar.xz tar.zst"
check_eq "bash: vm-guest BUNDLE COMMAND" "$(bcomp vm-guest deb '')" "cp exec fsfreeze fsthaw info ip ping shutdown time-sync"
check_eq "bash: vm-guest BUNDLE cp: files" "$(bcomp vm-guest deb cp vml)" "vmlinuz-test"

# --- bash: vm-config --------------------------------------------------------
check_eq "bash: vm-config: bundles and keys" "$(bcomp vm-config '')" "deb keys my vm router sub"
verbs=$(bcomp vm-config deb '')
for v in get set add unset show validate edit; do
	check_match "bash: vm-config deb: verb $v" "$verbs" "(^| )$v( |\$)"
done
ndrive=$(vm-config keys | grep -c '^drive\.ID\.')
dk=$(bcomp vm-config deb get drive.)
check_eq "bash: vm-config deb get drive.: $ndrive keys for each of the 2 drives" \
	"$(printf '%s\n' "$dk" | tr ' ' '\n' | grep -cE '^drive\.(hd0|cd0)\.[a-z_]+$')" $((ndrive * 2))
check_eq "bash: ... and no placeholder ids" "$(printf '%s\n' "$dk" | grep -c '\.ID\.')" 0
check_eq "bash: vm-config deb get drive.cd0.i" "$(bcomp vm-config deb get drive.cd0.i)" \
	"drive.cd0.image drive.cd0.interface"
check_eq "bash: vm-config by path" "$(bcomp vm-config "$T/vms/deb.utm" get net.net0.m)" \
	"net.net0.mac net.net0.mode net.net0.model"
check_eq "bash: vm-config router has no drives" "$(bcomp vm-config router get drive.)" ""
check_eq "bash: vm-config get takes one key" "$(bcomp vm-config deb get memory '')" ""
check_eq "bash: vm-config set firmware VALUE (enum)" "$(bcomp vm-config deb set firmware '')" "bios none uefi"
check_eq "bash: vm-config set rng VALUE (boolean)" "$(bcomp vm-config deb set rng '')" "false true"
check_eq "bash: vm-config set drive.cd0.media VALUE" "$(bcomp vm-config deb set drive.cd0.media '')" "cdrom disk none"
check_eq "bash: vm-config set K V K: keys again" "$(bcomp vm-config deb set memory 1G net.net0.mo)" \
	"net.net0.mode net.net0.model"
check_eq "bash: vm-config set kernel FILE" "$(bcomp vm-config deb set kernel vml)" "vmlinuz-test"
check_eq "bash: vm-config show options" "$(bcomp vm-config deb show '')" "--json --raw"
check_eq "bash: vm-config keys takes nothing" "$(bcomp vm-config keys '')" ""

# --- bash: vm-disk ----------------------------------------------------------
check_eq "bash: vm-disk deb eject ID (drive ids from the config)" "$(bcomp vm-disk deb eject '')" "cd0 hd0"
check_eq "bash: vm-disk deb insert c" "$(bcomp vm-disk deb insert c)" "cd0"
check_eq "bash: vm-disk deb insert cd0 FILE" "$(bcomp vm-disk deb insert cd0 vml)" "vmlinuz-test"
check_eq "bash: vm-disk deb snapshot ..." "$(bcomp vm-disk deb snapshot '')" "create delete list revert"
check_eq "bash: vm-disk deb mkfs hd0 FSTYPE" "$(bcomp vm-disk deb mkfs hd0 ext)" "ext2 ext3 ext4"
if [ -x "$VM_BIN/vm-disk" ]; then
	subs=$(bcomp vm-disk deb '')
	for v in list create attach detach insert eject resize snapshot inspect ls copy-in copy-out mkfs; do
		check_match "bash: vm-disk deb: subcommand $v" "$subs" "(^| )$v( |\$)"
	done
	check_match "bash: vm-disk: mkiso (no bundle)" "$(bcomp vm-disk mk)" '^mkiso$'
	check_eq "bash: vm-disk --interface (values from vm-config keys)" \
		"$(bcomp vm-disk deb create hd1 1G --interface n)" "none nvme"
	if vm-disk -q deb snapshot create before-upgrade >/dev/null 2>&1; then
		check_eq "bash: vm-disk deb snapshot delete NAME (from snapshot list --json)" \
			"$(bcomp vm-disk deb snapshot delete '')" "before-upgrade"
	else
		not_ok "vm-disk deb snapshot create before-upgrade failed"
	fi
else
	skip "vm-disk is not built: its subcommands and snapshots"
fi

# --- bash: vm-qmp, from a running VM ------------------------------------------
if command -v qemu-system-x86_64 >/dev/null 2>&1 && vm-run -q -d -p router >/dev/null 2>&1; then
	at_exit 'vm-stop -q -f router'
	check_match "bash: vm-qmp router query-b (commands from query-commands)" \
		"$(bcomp vm-qmp router query-b)" '(^| )query-block( |$)'
	check_eq "bash: vm-qmp: - reads commands from stdin" "$(bcomp vm-qmp router '' | tr ' ' '\n' | grep -c '^-$')" 1
	check_eq "bash: vm-qmp router eject ARG= (from query-qmp-schema)" \
		"$(bcomp vm-qmp router eject '')" "device= force= id="
	check_eq "bash: vm-qmp router --wait-event SHUT" "$(bcomp vm-qmp router --wait-event SHUT)" "SHUTDOWN"
	check_eq "bash: vm-qmp --wait-event before the bundle" "$(bcomp vm-qmp -w SHUT)" ""
	sock=$XDG_RUNTIME_DIR/vm/$(vm-config router get uuid)/qmp.sock
	check_match "bash: vm-qmp -s SOCKET query-sta" "$(bcomp vm-qmp -s "$sock" query-sta)" '(^| )query-status( |$)'
	vm-stop -q -f router
	check_eq "bash: vm-qmp on a stopped VM offers only -" "$(bcomp vm-qmp router '')" "-"
else
	skip "vm-qmp: could not start a VM (qemu-system-x86_64)"
fi

# --- zsh ----------------------------------------------------------------------
if ! command -v zsh >/dev/null 2>&1; then
	skip "zsh is not installed"
	exit 0
fi
check "zsh: _utmkit parses" zsh -n "$comp_dir/_utmkit"
check_eq "zsh: compinit binds every tool to _utmkit" \
	"$(HOME=$T zsh -f -c 'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D
		for t in ${=2}; do print -rn -- "$_comps[$t] "; done' _ "$comp_dir" "$tools")" \
	"$(for t in $tools; do printf '_utmkit '; done)"
if ! zsh -f -c 'zmodload zsh/zpty' 2>/dev/null; then
	skip "zsh: no zsh/zpty module to drive an interactive zsh"
	exit 0
fi
# An interactive zsh on a pseudo-terminal: type each line, press Tab, then
# print what the line became. Prints one result per input line.
mkdir -p "$T/zhome"
cat >"$T/drive.zsh" <<'EOF'
zmodload zsh/zpty
zpty z "HOME=$ZHOME TERM=dumb zsh -f -i"
zpty -w z "PS1='%% '; fpath=($COMPDIR \$fpath); autoload -Uz compinit; compinit -u -D; unsetopt beep; cd $ZCWD"
for line in "$@"; do
	# Tab completes; then ^A ... ^E wraps the line in a print whose output
	# ("42: LINE :42") cannot be confused with the echo of what was typed.
	zpty -n -w z "$line"$'\t'$'\C-a''print -r -- $((6*7)): '$'\C-e'' :$((6*7))'$'\n'
	zpty -r z out '*42: *:42*' || { print "(no answer)"; continue; }
	out=${${out##*42: }%% :42*}
	print -r -- "${out%% #}"
done
zpty -d z
EOF
zc() {
	ZHOME=$T/zhome COMPDIR=$comp_dir ZCWD=$T/cwd timeout 60 zsh -f "$T/drive.zsh" "$@" 2>&1 |
		tr -d '\r'
}
zres=$(zc "vm-config deb get drive.hd0.m" "vm-run --stop-t" "vm-run rou" "vm-disk deb eject c" \
	"vm-config deb set firmware ue" "vm-create --arch=aarc" "vm-argv --accel t" "vm-create --kernel vml")
zline() { printf '%s\n' "$zres" | sed -n "${1}p"; }
check_eq "zsh: vm-config deb get drive.hd0.m<Tab>" "$(zline 1)" "vm-config deb get drive.hd0.media"
check_eq "zsh: vm-run --stop-t<Tab>" "$(zline 2)" "vm-run --stop-timeout"
check_eq "zsh: vm-run rou<Tab> (VM_PATH)" "$(zline 3)" "vm-run router"
check_eq "zsh: vm-disk deb eject c<Tab>" "$(zline 4)" "vm-disk deb eject cd0"
check_eq "zsh: vm-config deb set firmware ue<Tab>" "$(zline 5)" "vm-config deb set firmware uefi"
check_eq "zsh: vm-create --arch=aarc<Tab>" "$(zline 6)" "vm-create --arch=aarch64"
check_eq "zsh: vm-argv --accel t<Tab>" "$(zline 7)" "vm-argv --accel tcg"
check_eq "zsh: vm-create --kernel vml<Tab>" "$(zline 8)" "vm-create --kernel vmlinuz-test"
