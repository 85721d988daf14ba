#!/bin/sh
# vm-run in the foreground, under TCG: a demo guest to power-off (exit 0),
# --exit-device (the guest's code), --timeout (3), QEMU's own failures as one
# clear line (missing disk image, bogus extra argument, missing binary,
# missing firmware), usage errors, and the accelerator choice (the KVM probe
# says "not working" here, fast).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest

# --- foreground run to power-off ---------------------------------------------
guest demo "utmkit.run=demo"
vm-run --console "$T/demo.utm" >"$T/demo.out" 2>"$T/demo.err" </dev/null
check_eq "foreground demo guest powers off: exit 0" "$?" 0
check "the console shows the banner" grep -q "utmkit demo guest" "$T/demo.out"
check "the console shows uname -a" grep -q "^Linux utmkit" "$T/demo.out"
check "the console shows CPUs and memory" grep -q "^memory: " "$T/demo.out"
check_eq "nothing on stderr" "$(cat "$T/demo.err")" ""
rt=$(rtdir "$T/demo.utm")
check "no pid or sockets left behind" test ! -e "$rt/pid" -a ! -e "$rt/qmp.sock" -a ! -e "$rt/console.sock"
check "console.log kept for a post-mortem" grep -q "utmkit demo guest" "$rt/console.log"
check_eq "vm-ls: stopped" "$(state "$T/demo.utm")" stopped

# --- a runtime dir deeper than a socket path may be (108 bytes) ----------------
long="$T/$(printf '%0120d' 0)"
mkdir -p -m 700 "$long"
pid=$(XDG_RUNTIME_DIR=$long vm-run -q -d --paused "$T/demo.utm" 2>"$T/long.err" </dev/null)
check "long XDG_RUNTIME_DIR: vm-run -d starts (stderr: $(cat "$T/long.err"))" test -n "$pid"
check_eq "...vm-qmp reaches it" "$(XDG_RUNTIME_DIR=$long vm-qmp "$T/demo.utm" query-status | jq -r .status)" prelaunch
XDG_RUNTIME_DIR=$long vm-stop -q "$T/demo.utm"
check_eq "...vm-stop stops it" "$?" 0

# --- the guest sets the exit status --------------------------------------------
guest exit7 "utmkit.exit=7"
vm-run --exit-device "$T/exit7.utm" >/dev/null 2>"$T/exit7.err" </dev/null
rc=$?; check_eq "--exit-device: vm-run exits with the guest's code (stderr: $(cat "$T/exit7.err"))" "$rc" 7
guest exit0 "utmkit.exit=0"
vm-run --exit-device --timeout 0 "$T/exit0.utm" >/dev/null 2>&1 </dev/null
check_eq "--exit-device: code 0 is success (QEMU's 1 is not an error here); --timeout 0: no deadline" "$?" 0

# --- --timeout ---------------------------------------------------------------
guest slow "utmkit.run=shell"
t0=$(now_ms)
vm-run --timeout 2 "$T/slow.utm" >/dev/null 2>"$T/slow.err" </dev/null
rc=$?
t1=$(now_ms)
check_eq "--timeout: exit status 3" "$rc" 3
check "--timeout: stopped within 2-6 s ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 2000 -a $((t1 - t0)) -lt "$(ms 6000)"
check_match "--timeout: says so" "$(cat "$T/slow.err")" "slow: --timeout"
check_eq "--timeout: VM gone" "$(state "$T/slow.utm")" stopped

# --- QEMU's failures: one clear line, exit 1 ----------------------------------
guest nodisk "utmkit.run=demo" --disk 64M
rm -f "$T/nodisk.utm/Data/"*.qcow2
err=$(vm-run "$T/nodisk.utm" 2>&1 </dev/null)
check_eq "missing disk image: exit 1" "$?" 1
check_eq "missing disk image: one line" "$(printf '%s\n' "$err" | wc -l)" 1
check_match "missing disk image: names the file" "$err" "^vm-run: nodisk: .*hd0\\.qcow2.*(No such file|not found|does not exist)"

guest bogus "utmkit.run=demo" --extra -bogus-option
err=$(vm-run "$T/bogus.utm" 2>&1 </dev/null)
check_eq "bogus extra argument: exit 1" "$?" 1
check_eq "bogus extra argument: one line" "$(printf '%s\n' "$err" | wc -l)" 1
check_match "bogus extra argument: QEMU's message" "$err" "^vm-run: bogus: qemu-system-x86_64: .*-bogus-option"
check "bogus extra argument: lock free, files gone" test ! -e "$(rtdir "$T/bogus.utm")/pid"
check_eq "bogus extra argument: vm-ls says stopped" "$(state "$T/bogus.utm")" stopped

guest badbios "utmkit.run=demo" --extra -bios --extra /nonexistent/bios.bin
err=$(vm-run "$T/badbios.utm" 2>&1 </dev/null)
check_eq "missing firmware: exit 1" "$?" 1
check_match "missing firmware: QEMU's message" "$err" "^vm-run: badbios: qemu.*: .*(BIOS|bios).*/nonexistent/bios.bin"

err=$(VM_QEMU_DIR=$T/noqemu vm-run "$T/demo.utm" 2>&1 </dev/null)
check_eq "missing QEMU binary: exit 1" "$?" 1
check_match "missing QEMU binary: clear line" "$err" "^vm-run: demo: .*qemu-system-x86_64: not found"

# --- usage -------------------------------------------------------------------
vm-run --accel bogus "$T/demo.utm" 2>/dev/null
check_eq "--accel bogus: usage error 2" "$?" 2
vm-run --detach --console "$T/demo.utm" 2>/dev/null
check_eq "--detach with --console: usage error 2" "$?" 2
vm-run "$T/nonexistent.utm" 2>/dev/null
check_eq "no such bundle: exit 1" "$?" 1
check_match "vm-run --help" "$(vm-run --help)" "usage: vm-run"

# --- the accelerator choice ----------------------------------------------------
# auto: KVM only when it is proven to run guest code. On these hosts it is not,
# and the answer must come fast (and from the cache the second time).
t0=$(now_ms)
pid=$(VM_ACCEL=auto vm-run -v -d --paused "$T/demo.utm" 2>"$T/auto.err")
t1=$(now_ms)
check "auto: started" test -n "$pid"
why=$(grep "accelerator" "$T/auto.err")
if [ -e /dev/kvm ] && grep -q "KVM works" "$T/auto.err"; then
	check_match "auto picks kvm where KVM runs guest code" "$why" "accelerator kvm: KVM works"
	check_eq "vm-ls: accel kvm" "$(vm-ls --json "$T/demo.utm" | jq -r '.[0].accel')" kvm
else
	check_match "auto picks tcg here, and says why" "$why" "accelerator tcg: KVM does not work here: .+"
	check_eq "vm-ls: accel tcg (from QMP query-kvm)" "$(vm-ls --json "$T/demo.utm" | jq -r '.[0].accel')" tcg
fi
check "auto: vm-run -d returned within 2 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt "$(ms 2000)"
vm-stop -q "$T/demo.utm"
out=$(VM_ACCEL=tcg vm-run -v -d --paused "$T/demo.utm" 2>&1 >/dev/null)
check_match "VM_ACCEL=tcg is obeyed" "$out" "accelerator tcg, as VM_ACCEL asks"
vm-stop -q "$T/demo.utm"
out=$(VM_ACCEL=auto vm-run -v -d --paused --accel tcg "$T/demo.utm" 2>&1 >/dev/null)
check_match "--accel tcg wins" "$out" "accelerator tcg, as --accel asks"
vm-stop -q "$T/demo.utm"
# A device that opens but is no KVM: never trusted.
out=$(VM_ACCEL=auto VM_KVM_DEVICE=/dev/null vm-run -v -d --paused "$T/demo.utm" 2>&1 >/dev/null)
check_match "a /dev/kvm that is not KVM: tcg" "$out" "accelerator tcg: .*(not a KVM device|kvm_pvm)"
vm-stop -q "$T/demo.utm"

# firmware uefi set after creation leaves no variable store: vm-run makes a
# fresh one from Debian's template under the lock, as UTM does at start.
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
if [ -f "$vars" ] && [ -f /usr/share/OVMF/OVMF_CODE_4M.fd ]; then
	vm-create -q --memory 64M "$T/later-uefi" >/dev/null
	vm-config -q "$T/later-uefi.utm" set firmware uefi
	out=$(vm-run -v -d --paused "$T/later-uefi.utm" 2>&1 >/dev/null)
	check_match "uefi set later: vm-run makes Data/efi_vars.fd and starts" "$out" "made a fresh UEFI variable store"
	check "...a copy of $vars" cmp -s "$T/later-uefi.utm/Data/efi_vars.fd" "$vars"
	check_eq "...vm-ls: paused" "$(vm-ls --json "$T/later-uefi.utm" | jq -r '.[0].state')" paused
	vm-stop -q --force "$T/later-uefi.utm"
	# a store of the right size with one byte of its own
	printf X | dd of="$T/later-uefi.utm/Data/efi_vars.fd" bs=1 seek=4096 conv=notrunc 2>/dev/null
	vm-run -q -d --paused "$T/later-uefi.utm" >/dev/null 2>&1
	check_eq "...an existing store is kept" \
		"$(dd if="$T/later-uefi.utm/Data/efi_vars.fd" bs=1 skip=4096 count=1 2>/dev/null)" X
	vm-stop -q --force "$T/later-uefi.utm" || :
else
	skip "no OVMF (scripts/install-deps installs ovmf)"
fi

# QEMU greets on QMP before it makes the -device list, which can still fail:
# vm-run -d waits for an answer, so it never prints a pid for a dead QEMU.
vm-create -q --memory 64M "$T/baddev" >/dev/null
vm-config -q "$T/baddev.utm" add extra_args -device
vm-config -q "$T/baddev.utm" add extra_args virtio-blk-pci,drive=no-such-drive
out=$(vm-run -d --paused "$T/baddev.utm" 2>&1)
check_eq "a -device QEMU refuses after its greeting: vm-run -d exits 1" "$?" 1
check_match "...with QEMU's own line, not a hint" "$out" "^vm-run: baddev: qemu-system-x86_64: -device virtio-blk-pci,drive=no-such-drive: "
check_eq "...and it is not running" "$(vm-ls --json "$T/baddev.utm" | jq -r '.[0].state')" stopped
