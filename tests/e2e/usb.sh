#!/bin/sh
# USB as UTM maps it, in real QEMU: full-speed devices (usb-net, usb-kbd from
# -usbdevice, usb-tablet, usb-storage, usb-audio) attach on q35 (machine USB:
# EHCI with UHCI companions), pc (UHCI), q35 with USB 3.0 (xHCI) and aarch64
# virt (xHCI). Each VM starts paused with vm-run -d, answers query-status,
# lists its USB devices and logs no "speed mismatch".
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest

# usbvm NAME USB KBD-ARGS vm-create options...: a bundle with every USB device
usbvm() {
	_u=$1 _usb=$2 _k1=$3 _k2=$4
	shift 4
	vm-create -q -s usb="$_usb" -s usb_tablet=true -s sound=usb-audio \
		-e "$_k1" -e "$_k2" "$@" "$T/$_u.utm" || { not_ok "vm-create $_u"; return 1; }
	_bundles="$_bundles $T/$_u.utm"
	truncate -s 16M "$T/$_u.utm/Data/stick.img" &&
		vm-config "$T/$_u.utm" set net.net0.model usb-net &&
		vm-config "$T/$_u.utm" set drive.stick.image stick.img &&
		vm-config "$T/$_u.utm" set drive.stick.interface usb || { not_ok "vm-config $_u"; return 1; }
}

for spec in "q35 2.0 -usbdevice keyboard" "pc 2.0 -device usb-kbd" "q35 3.0 -device usb-kbd" \
	"virt 2.0 -device usb-kbd"; do
	set -- $spec
	m=$1 usb=$2 name="usb-$1-$2"
	if [ "$m" = virt ]; then
		command -v qemu-system-aarch64 >/dev/null || { skip "$name: no qemu-system-aarch64"; continue; }
		usbvm "$name" "$usb" "$3" "$4" --arch aarch64 || continue
	else
		usbvm "$name" "$usb" "$3" "$4" --machine "$m" || continue
	fi
	b="$T/$name.utm"
	# Sandboxed: the images reach QEMU as fd sets; usb-storage's realize
	# takes the image's write lock again (it failed while a read-only fd of
	# the set kept a stale lock: argv.c, auto-read-only=off).
	out=$(vm-run -d --paused -q "$b" 2>&1 </dev/null)
	rc=$?
	check_eq "$name: vm-run -d --paused starts ($out)" "$rc" 0
	[ "$rc" -eq 0 ] || continue
	check_match "$name: QEMU answers query-status" "$(qmp_status "$b")" '^(paused|prelaunch)$'
	devs=$(vm-qmp "$b" human-monitor-command command-line="info usb" 2>&1)
	for d in "QEMU USB Tablet" "QEMU USB Keyboard" "QEMU USB MSD" "QEMU USB Network Interface" \
		"QEMU USB Audio"; do
		check_match "$name: $d attached" "$devs" "$d"
	done
	log="$(rtdir "$b")/qemu.log"
	check "$name: no speed mismatch in QEMU's log" sh -c "! grep -qi 'speed mismatch' '$log' 2>/dev/null"
	vm-stop -q --force "$b" >/dev/null 2>&1
done

# UTM has no USB on m68k, s390x, sparc and isapc: a clear error, not QEMU's
vm-create -q --net none -a m68k -M q800 -s usb=2.0 "$T/m68k.utm"
err=$(vm-argv "$T/m68k.utm" 2>&1)
check_match "m68k q800 with USB: a clear error" "$err" "usb: the m68k machine q800 has no USB"
