#!/bin/sh
# The KVM probe on both kinds of host.
#  - Here: the answer "KVM does not work" (or the proof that it does) comes
#    within a short time, through vm-run -v and the unit test binary.
#  - Where KVM works: this host cannot show it, so the test makes such a host.
#    QEMU's TCG emulates AMD-V (SVM); the Debian kernel in a TCG guest loads
#    kvm-amd, and the unit tests (build/tests/test_accel) run in there with
#    ACCEL_EXPECT=works: the probe must run its real-mode-to-long-mode guest
#    code through /dev/kvm and say "works". One boot, about 10 s of CPU. KVM
#    emulated by TCG is slow, and the machine is busy with other tests: the
#    probe gets a generous VM_KVM_PROBE_TIMEOUT there.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

ta=$VM_TOP/build/tests/test_accel
if [ ! -x "$ta" ]; then
	skip "build/tests/test_accel not built (make units)"
	exit 0
fi

# --- this host ---------------------------------------------------------------------
out=$(CMOCKA_MESSAGE_OUTPUT=TAP "$ta" 2>&1)
rc=$?
check_eq "unit tests of the probe pass here" "$rc" 0
verdict=$(printf '%s\n' "$out" | grep '^# KVM probe:')
check_match "the probe gives a verdict with a reason" "$verdict" "^# KVM probe: (works|does not work): .+ \\([0-9.]+ ms\\)"
ms=$(printf '%s\n' "$verdict" | sed -n 's/.*(\([0-9]*\)\.[0-9]* ms)$/\1/p')
check "the probe answered within a second (${ms} ms)" test "${ms:-99999}" -lt "$(ms 1000)"
if [ ! -e /dev/kvm ]; then
	check_match "no /dev/kvm here: does not work" "$verdict" "does not work: /dev/kvm does not exist"
fi

# --- the probe's exact guest code, booted under TCG as a floppy boot sector ----------
if command -v qemu-system-x86_64 >/dev/null; then
	ACCEL_BOOT_SECTOR=$T/probe.img "$ta" >/dev/null 2>&1
	timeout 30 qemu-system-x86_64 -accel tcg -display none -nodefaults -no-reboot \
		-drive "file=$T/probe.img,format=raw,if=floppy" -device isa-debug-exit,iobase=0xf4,iosize=4 \
		</dev/null >/dev/null 2>&1
	check_eq "the guest code runs to its answer under TCG: (500500 << 1 | 1) & 255" "$?" 41
fi

# --- a host where KVM works: nested SVM under TCG ----------------------------------------
kver=""
for d in /lib/modules/*; do
	v=${d##*/}
	if [ -f "/boot/vmlinuz-$v" ] && [ -f "$d/kernel/arch/x86/kvm/kvm-amd.ko" ]; then
		kver=$v
		break
	fi
done
bb=$(command -v busybox)
if [ -z "$kver" ] || [ -z "$bb" ] || ! command -v cpio >/dev/null ||
	! command -v qemu-system-x86_64 >/dev/null || ! file "$bb" 2>/dev/null | grep -q static; then
	skip "nested KVM: needs /boot/vmlinuz-V with uncompressed kvm-amd.ko, static busybox, cpio, qemu"
	exit 0
fi
M=/lib/modules/$kver/kernel
r=$T/root
mkdir -p "$r/bin" "$r/mod" "$r/dev" "$r/proc" "$r/sys" "$r/tmp"
cp "$bb" "$r/bin/busybox"
cp "$ta" "$r/bin/test_accel"
# the test binary's shared libraries, where ldd says they are
ldd "$ta" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p' | while read -r lib; do
	mkdir -p "$r$(dirname "$lib")"
	cp -L "$lib" "$r$lib"
done
n=0
for m in virt/lib/irqbypass.ko drivers/crypto/ccp/ccp.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
	[ -f "$M/$m" ] || continue
	n=$((n + 1))
	cp "$M/$m" "$r/mod/$n-${m##*/}"
done
cat >"$r/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
for m in /mod/*.ko; do insmod "$m" || echo "insmod $m failed"; done
ls -l /dev/kvm
cd /tmp
XDG_RUNTIME_DIR=/tmp ACCEL_EXPECT=works VM_KVM_PROBE_TIMEOUT=20000 CMOCKA_MESSAGE_OUTPUT=TAP /bin/test_accel
echo "TEST-EXIT $?"
poweroff -f
EOF
chmod 755 "$r/init"
(cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$T/initrd.gz")
timeout 300 qemu-system-x86_64 -accel tcg -cpu max -m 512 -nodefaults -display none -no-reboot \
	-serial "file:$T/nested.log" -kernel "/boot/vmlinuz-$kver" -initrd "$T/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1" </dev/null >"$T/nested.qemu" 2>&1
check "nested: the guest sees /dev/kvm (kvm-amd on emulated SVM)" grep -q "10, *232.*/dev/kvm" "$T/nested.log"
check "nested: the unit tests pass there" grep -q "TEST-EXIT 0" "$T/nested.log"
nv=$(grep '^# KVM probe:' "$T/nested.log" | tr -d '\r')
check_match "nested: the probe says KVM works, with its proof" "$nv" "^# KVM probe: works: a guest ran from real mode into 64-bit long mode"
if ! grep -q "TEST-EXIT 0" "$T/nested.log"; then
	sed 's/^/# /' "$T/nested.log" | tail -30
fi
