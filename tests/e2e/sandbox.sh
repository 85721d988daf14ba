#!/bin/sh
# The sandboxed QEMU (vm-run(1), SECURITY): seccomp on by default and really
# enforced; as root QEMU runs as an unprivileged user yet boots from files in
# root's private folders (passed as descriptors); a private runtime dir;
# --no-sandbox; paths outside the bundle refused unless allowed.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest

status_of() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | awk '{print $1}'; }

# --- vm-argv shows the policy ------------------------------------------------
guest sb "utmkit.run=shell"
check_match "vm-argv: -sandbox with libvirt's policy" "$(vm-argv "$T/sb.utm")" \
	"-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
check "vm-argv --no-sandbox: none" sh -c "! vm-argv --no-sandbox '$T/sb.utm' | grep -q -- -sandbox"

# --- as root: QEMU runs as another user, under seccomp -------------------------
if [ "$(id -u)" -eq 0 ]; then
	# $T is 0700 root: only descriptors let QEMU as nobody read the bundle
	check_eq "the bundle is in a folder only root may enter" "$(stat -c %a "$T")" 700
	pid=$(vm-run -d "$T/sb.utm" 2>"$T/sb.err")
	check "vm-run -d as root" test -n "$pid"
	uid=$(status_of "$pid" Uid)
	want=$(id -u utmkit 2>/dev/null || id -u nobody)
	check_eq "/proc/PID/status: QEMU's uid is the unprivileged user's" "$uid" "$want"
	check_eq "/proc/PID/status: no supplementary groups but its own" \
		"$(status_of "$pid" Groups)" "$(id -g utmkit 2>/dev/null || id -g nobody)"
	check_eq "/proc/PID/status: seccomp filter mode" "$(status_of "$pid" Seccomp)" 2
	check_eq "/proc/PID/status: no new privileges" "$(status_of "$pid" NoNewPrivs)" 1
	rt=$(rtdir "$T/sb.utm")
	check_eq "runtime dir 0700" "$(stat -c %a "$rt")" 700
	check_eq "qmp.sock 0600, root's" "$(stat -c '%a %u' "$rt/qmp.sock")" "600 0"
	check_eq "qmp-session.sock 0600, root's" "$(stat -c '%a %u' "$rt/qmp-session.sock")" "600 0"
	check_eq "console.sock 0600, root's" "$(stat -c '%a %u' "$rt/console.sock")" "600 0"
	check "the guest boots from root's private folder" wait_for "$rt/console.log" UTMKIT-READY 60
	check_match "the disk came as an fd set" "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "-add-fd fd=[0-9]+,set=1"
	# seccomp spawn=deny: a migration to a command makes QEMU fork: killed
	vm-qmp "$T/sb.utm" human-monitor-command command-line='migrate "exec:cat >/dev/null"' >/dev/null 2>&1
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	check "spawn=deny is enforced: QEMU asked to fork is killed" sh -c "! kill -0 $pid 2>/dev/null"
	vm-stop -q --force "$T/sb.utm" >/dev/null 2>&1

	# --no-sandbox: a warning, QEMU keeps root, no filter
	pid=$(vm-run -d --no-sandbox --paused "$T/sb.utm" 2>"$T/nosb.err")
	check_match "--no-sandbox warns" "$(cat "$T/nosb.err")" "^vm-run: sb: --no-sandbox: QEMU runs without its seccomp filter, as root"
	check_eq "--no-sandbox: QEMU as root" "$(status_of "$pid" Uid)" 0
	check_eq "--no-sandbox: no seccomp" "$(status_of "$pid" Seccomp)" 0
	vm-stop -q --force "$T/sb.utm" >/dev/null 2>&1

	# --runas
	err=$(vm-run -d --runas no-such-user-here "$T/sb.utm" 2>&1)
	check_eq "--runas an unknown user: usage error" "$?" 2
	check_match "...names it" "$err" "no-such-user-here: no such user"
	pid=$(VM_RUNAS=daemon vm-run -d --paused "$T/sb.utm" 2>/dev/null)
	check_eq "VM_RUNAS=daemon" "$(status_of "$pid" Uid)" "$(id -u daemon)"
	vm-stop -q --force "$T/sb.utm" >/dev/null 2>&1

	# swtpm: as QEMU's user too, its state reached from its working folder
	if command -v swtpm >/dev/null 2>&1; then
		vm-create -q --memory 64M "$T/tpm" >/dev/null
		vm-config -q "$T/tpm.utm" set tpm true
		pid=$(vm-run -d --paused "$T/tpm.utm" 2>"$T/tpm.err")
		check "a TPM VM starts from root's private folder" test -n "$pid"
		spid=$(cat "$(rtdir "$T/tpm.utm")/swtpm.pid" 2>/dev/null)
		check_eq "/proc/PID/status: swtpm's uid is the unprivileged user's" \
			"$(status_of "${spid:-0}" Uid)" "$want"
		check_match "...and QEMU has its TPM" "$(vm-qmp "$T/tpm.utm" query-tpm 2>&1)" '"type":"emulator"'
		check_eq "Data/tpmdata: that user's, 0600" "$(stat -c '%u %a' "$T/tpm.utm/Data/tpmdata")" "$want 600"
		vm-stop -q --force "$T/tpm.utm" >/dev/null 2>&1
		# a hostile bundle's tpmdata pointing elsewhere: refused, nothing chowned
		rm "$T/tpm.utm/Data/tpmdata"
		echo secret >"$T/victim"
		ln -s "$T/victim" "$T/tpm.utm/Data/tpmdata"
		check_status "a tpmdata symlink: refused" 1 vm-run -q -d --paused "$T/tpm.utm" 2>/dev/null
		check_eq "...the file it points to untouched" "$(stat -c '%u' "$T/victim"):$(cat "$T/victim")" "0:secret"
	else
		skip "swtpm is not installed"
	fi
else
	skip "not root: QEMU keeps the caller's user"
fi

# --- bridge networking needs the spawn the sandbox forbids ---------------------
guest br "utmkit.run=shell"
vm-config "$T/br.utm" set net.net0.mode bridge net.net0.bridge br0 >/dev/null 2>&1 ||
	{ vm-config "$T/br.utm" add net net0 >/dev/null && vm-config "$T/br.utm" set net.net0.mode bridge net.net0.bridge br0; }
err=$(vm-run "$T/br.utm" 2>&1 </dev/null)
check_eq "bridge under the sandbox: exit 1" "$?" 1
check_match "...says why and what to do" "$err" "net.net0.mode is bridge: .*sandbox forbids; use a tap device, or --no-sandbox"

# --- files outside the bundle ----------------------------------------------------
guest esc "utmkit.run=demo"
# a hostile bundle: written by hand (vm-config refuses to write this)
printf "drive hd9 {\n image = '../../etc/shadow'\n}\n" >>"$T/esc.utm/vm.conf"
err=$(vm-run "$T/esc.utm" 2>&1 </dev/null)
check_eq "../../etc/shadow as a disk: exit 1" "$?" 1
check_match "...refused, naming the key" "$err" "drive.hd9.image: .*'../../etc/shadow' leaves the bundle"
check "...and QEMU never ran" test ! -e "$(rtdir "$T/esc.utm")/pid"
vm-config "$T/esc.utm" set drive.hd9.image /etc/shadow
err=$(vm-run "$T/esc.utm" 2>&1 </dev/null)
check_eq "/etc/shadow as a disk: exit 1" "$?" 1
check_match "...outside the bundle" "$err" "drive.hd9.image: .*'/etc/shadow' is outside the bundle"
mkdir -p "$T/isos/sub"
printf 'x' >"$T/isos/sub/a.img"
vm-config "$T/esc.utm" set drive.hd9.image "$T/isos/sub/a.img" drive.hd9.format raw
check_status "a host file, not allowed: refused" 1 vm-argv "$T/esc.utm" >/dev/null 2>&1
check_status "--allow-path its folder: accepted" 0 vm-argv --allow-path "$T/isos" "$T/esc.utm" >/dev/null
ln -s /etc "$T/isos/etc"
vm-config "$T/esc.utm" set drive.hd9.image "$T/isos/etc/shadow"
check_status "a link out of the allowed folder: refused" 1 vm-argv --allow-path "$T/isos" "$T/esc.utm" >/dev/null 2>&1
vm-config "$T/esc.utm" set drive.hd9.image "$T/isos/sub/a.img"
vm-config "$T/esc.utm" add allow_paths "$T/isos/sub/a.img"
check_status "the config's allow_paths: accepted" 0 vm-argv "$T/esc.utm" >/dev/null
vm-create -q --net none -C "$T/isos/sub/a.img" "$T/cd.utm"
check_eq "vm-create -C FILE lists FILE in allow_paths" "$(vm-config "$T/cd.utm" get allow_paths)" "$T/isos/sub/a.img"

vm-pack -q "$T/cd.utm" "$T/cd.tar.gz" 2>/dev/null || vm-pack "$T/cd.utm" "$T/cd.tar.gz" >/dev/null
err=$(vm-create --from "$T/cd.tar.gz" "$T/imported.utm" 2>&1 >/dev/null)
check_eq "an imported bundle: allow_paths dropped" "$(vm-config "$T/imported.utm" get allow_paths)" ""
check_match "...with a warning" "$err" "allow_paths \(1 host path\) were dropped"

echo "1..$_n"
