#!/bin/sh
# For every golden configuration whose QEMU is installed, the argv vm-argv
# prints, plus -S, starts real QEMU, answers query-status on QMP, and quits.
. "$(dirname "$0")/lib.sh"

# qmp_status SOCK: print the status string QEMU reports, then quit it.
qmp_status() {
	# through vm-qmp, which waits for a slow QEMU as long as -t allows; the
	# socket file exists from QEMU's bind(), a loaded host may run the client
	# before QEMU's listen() (ECONNREFUSED): ask again then
	for _try in 1 2 3 4 5; do
		_st=$(vm-qmp -t 60 -s "$1" query-status 2>/dev/null | jq -r '.status // empty' 2>/dev/null)
		[ -n "$_st" ] && break
		sleep 0.2
	done
	echo "$_st"
	vm-qmp -q -t 10 -s "$1" quit >/dev/null 2>&1
}

# Create the files a bundle's config names, so QEMU can open them.
populate() {
	b=$1 arch=$2
	vm-config "$b" show --json | jq -r '.drives[].image // empty, .kernel // empty, .initrd // empty, .bios // empty' |
		while read -r f; do
			case "$f" in /*) continue ;; esac
			case "$f" in
			*.qcow2) qemu-img create -q -f qcow2 "$b/Data/$f" 64M ;;
			vmlinuz) cp "$GUEST_DIR/vmlinuz" "$b/Data/$f" ;;
			vmlinux) m68k_elf >"$b/Data/$f" ;;
			initrd.img) cp "$GUEST_DIR/initrd.img" "$b/Data/$f" ;;
			*) truncate -s 1M "$b/Data/$f" ;;
			esac
		done
	dtb=$(vm-config "$b" get dtb 2>/dev/null) &&
		qemu-system-"$arch" -M "$(vm-config "$b" get machine)",dumpdtb="$b/Data/$dtb" >/dev/null 2>&1
	ev=$(vm-config "$b" get efi_vars 2>/dev/null) && case "$arch" in
	x86_64) cp /usr/share/OVMF/OVMF_VARS_4M.fd "$b/Data/$ev" ;;
	aarch64) cp /usr/share/AAVMF/AAVMF_VARS.fd "$b/Data/$ev" ;;
	esac
	vm-config "$b" show --json | jq -r ".shares[].path" | while read -r d; do mkdir -p "$d"; done
	return 0
}

# A minimal big-endian ELF32 for m68k (one PT_LOAD at 0x1000), enough for
# QEMU's kernel loader.
m68k_elf() {
	printf '\177ELF\001\002\001\000\000\000\000\000\000\000\000\000'
	printf '\000\002\000\004\000\000\000\001\000\000\020\000\000\000\000\064'
	printf '\000\000\000\000\000\000\000\000\000\064\000\040\000\001\000\050'
	printf '\000\000\000\000'
	printf '\000\000\000\001\000\000\000\000\000\000\020\000\000\000\020\000'
	printf '\000\000\000\124\000\000\000\124\000\000\000\005\000\000\020\000'
}

at_exit "rm -rf \"/tmp/utmkit-golden share, with comma\""
for conf in "$VM_TOP"/tests/golden/*.conf; do
	name=$(basename "$conf" .conf)
	b="$T/$name.utm"
	mkdir -p "$b/Data"
	cp "$conf" "$b/vm.conf"
	arch=$(vm-config "$b" get arch)
	if ! command -v "qemu-system-$arch" >/dev/null; then
		skip "$name: qemu-system-$arch not installed"
		continue
	fi
	populate "$b" "$arch"
	# a private runtime dir per VM: the goldens share one UUID
	export XDG_RUNTIME_DIR="$T/run-$name"
	mkdir -p -m 700 "$XDG_RUNTIME_DIR"
	sock=$(ls -d "$XDG_RUNTIME_DIR" >/dev/null; echo "$XDG_RUNTIME_DIR/vm/11111111-2222-4333-8444-555555555555/qmp.sock")
	vm-argv -0 -S --accel tcg "$b" >"$T/$name.argv0"
	if qemu_bg "$T/$name.argv0" "$sock" "$T/$name.err"; then
		status=$(qmp_status "$sock")
		check_eq "$name: real QEMU starts paused and answers query-status" "$status" "prelaunch"
	else
		not_ok "$name: QEMU refused the argv: $(tail -n 2 "$T/$name.err")"
	fi
	qemu_bg_stop
done

# The accelerator request is vm-run's (accel_request): "auto" in the config
# defers to $VM_ACCEL, so VM_ACCEL=tcg prints TCG alone.
accels() { vm-argv -0 "$1" | tr '\0' '\n' | grep -A1 -x -- -accel | grep -v -x -e -accel -e --; }
vm-create -q --memory 64M "$T/acc" >/dev/null
vm-config -q "$T/acc.utm" set accel auto
check_eq "accel = auto, VM_ACCEL=tcg: one -accel tcg" "$(VM_ACCEL=tcg accels "$T/acc.utm" | sed 's/,.*//' | tr '\n' ' ')" "tcg "
check_eq "accel = auto, VM_ACCEL unset: kvm, else tcg" "$(VM_ACCEL= accels "$T/acc.utm" | sed 's/,.*//' | tr '\n' ' ')" "kvm tcg "
check_eq "accel = auto, --accel kvm: kvm alone" "$(VM_ACCEL=tcg vm-argv -0 --accel kvm "$T/acc.utm" | tr '\0' '\n' | grep -c -x -- -accel)" 1
VM_ACCEL=fast vm-argv "$T/acc.utm" >/dev/null 2>&1
check_eq "VM_ACCEL=fast: a usage error" "$?" 2

# A root port of the user's own (extra_args) takes a chassis: ours skip it,
# and QEMU takes the whole: no "Can't add chassis slot".
vm-create -q --memory 64M --machine q35 --net none "$T/rp" >/dev/null
vm-config -q "$T/rp.utm" set extra_args -device
vm-config -q "$T/rp.utm" add extra_args "pcie-root-port,id=mine,bus=pcie.0,chassis=1,port=0x8,addr=0x5"
vm-config -q "$T/rp.utm" add extra_args -device
vm-config -q "$T/rp.utm" add extra_args "pcie-root-port,id=mine2,bus=pcie.0,chassis=3,port=0x9,addr=0x6"
chs=$(vm-argv -0 "$T/rp.utm" 2>/dev/null | tr '\0' '\n' | sed -n 's/^pcie-root-port,id=rp[0-9]*,.*chassis=\([0-9]*\),.*/\1/p' | tr '\n' ' ')
check_eq "extra_args' chassis 1 and 3: our spare ports take 2, 4, 5, 6" "$chs" "2 4 5 6 "
export XDG_RUNTIME_DIR="$T/run-rp"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
vm-argv -0 -S --accel tcg "$T/rp.utm" 2>/dev/null >"$T/rp.argv0"
sock="$XDG_RUNTIME_DIR/vm/$(vm-config "$T/rp.utm" get uuid)/qmp.sock"
if qemu_bg "$T/rp.argv0" "$sock" "$T/rp.err"; then
	check_eq "...and QEMU takes them all" "$(qmp_status "$sock")" "prelaunch"
else
	not_ok "...and QEMU takes them all: $(tail -n 2 "$T/rp.err")"
fi
qemu_bg_stop
