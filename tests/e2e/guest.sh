#!/bin/sh
# End-to-end test of the demo guest recipe (scripts/mkguest, share/guest/init):
# boot it with raw qemu-system-x86_64 under TCG, no utmkit tool involved.
#   - utmkit.run=demo prints the banner and uname, and QEMU exits 0 by itself
#   - utmkit.exit=5 with isa-debug-exit makes QEMU exit 11
#   - utmkit.cmd sees the virtio disk, the CD-ROM and a DHCP address
#   - default mode prints UTMKIT-READY; QMP system_powerdown powers it off
#   - utmkit.noacpi ignores system_powerdown
# The guest is built by `make guest` (or scripts/mkguest build/guest).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

K=$GUEST_DIR/vmlinuz
I=$GUEST_DIR/initrd.img
QEMU=${QEMU:-qemu-system-x86_64}
if [ ! -f "$K" ] || [ ! -f "$I" ]; then
	skip "demo guest not built in $GUEST_DIR (run: make guest)"
	exit 0
fi
if ! command -v "$QEMU" >/dev/null; then
	skip "$QEMU not installed (package qemu-system-x86)"
	exit 0
fi

# Every QEMU started here, killed at exit whatever happens.
qpids=""
# shellcheck disable=SC2016 # expanded at exit
at_exit 'for p in $qpids; do kill -9 "$p" 2>/dev/null; done'

# qemu_bg LOG APPEND [QEMU ARGS...]: start QEMU in the background; sets $qpid.
# panic=-1 with -no-reboot turns a guest panic into a prompt exit (and the
# tests look for "Kernel panic" in the log) instead of a hang.
qemu_bg() {
	log=$1 append=$2
	shift 2
	"$QEMU" -accel tcg -M q35 -m 256 -nodefaults -display none -no-reboot \
		-kernel "$K" -initrd "$I" -append "console=ttyS0 quiet panic=-1 $append" \
		-serial "file:$log" "$@" </dev/null >"$log.qemu" 2>&1 &
	qpid=$!
	qpids="$qpids $qpid"
}

# wait_exit PID SECONDS: wait up to SECONDS for PID to end; sets $rc to its
# exit status, or to "running" if it is still there.
wait_exit() {
	_i=0
	while kill -0 "$1" 2>/dev/null; do
		if [ "$_i" -ge $(($2 * 5)) ]; then
			rc=running
			return 1
		fi
		sleep 0.2
		_i=$((_i + 1))
	done
	wait "$1"
	rc=$?
}

# wait_log LOG PATTERN SECONDS PID: wait for a line matching PATTERN (grep -E)
wait_log() {
	_i=0
	until grep -Eq -- "$2" "$1" 2>/dev/null; do
		kill -0 "$4" 2>/dev/null || return 1
		[ "$_i" -lt $(($3 * 5)) ] || return 1
		sleep 0.2
		_i=$((_i + 1))
	done
}

# qmp SOCKET COMMAND: negotiate and run one QMP command without arguments
qmp() {
	python3 - "$1" "$2" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())  # greeting
def run(cmd):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
run("qmp_capabilities")
sys.exit(0 if "return" in run(sys.argv[2]) else 1)
EOF
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# 1. utmkit.run=demo: the info, then a clean poweroff (QEMU exits 0)
log=$T/demo.log
t0=$(now)
qemu_bg "$log" "utmkit.run=demo"
wait_exit "$qpid" 60
echo "# demo boot to poweroff: $(secs "$t0" "$(now)") s"
check_eq "run=demo: QEMU exits 0 by itself within 60 s" "$rc" 0
# (the console is a tty: its lines end in CR LF)
check "run=demo: banner in the console log" grep -Eq "^utmkit demo guest.?$" "$log"
check "run=demo: uname -a in the console log" grep -Eq "^Linux utmkit [0-9]+\.[0-9]+.* x86_64" "$log"
check "run=demo: CPU and memory lines" \
	sh -c "grep -Eq '^cpus: 1 x .+' '$log' && grep -Eq '^memory: [0-9]+ MiB total' '$log'"
check "run=demo: no UTMKIT-READY, no panic" sh -c "! grep -Eq 'UTMKIT-READY|Kernel panic' '$log'"

# 2. utmkit.exit=5 through isa-debug-exit: status (5<<1)|1
log=$T/exit.log
qemu_bg "$log" "utmkit.exit=5" -device isa-debug-exit,iobase=0xf4,iosize=0x04
wait_exit "$qpid" 60
check_eq "exit=5: QEMU exits with status 11" "$rc" 11

# 3. utmkit.cmd with exit=status: virtio-blk disk, IDE CD-ROM, DHCP on virtio-net
log=$T/cmd.log
truncate -s 1M "$T/disk.img"
# shellcheck disable=SC2016 # $(seq 50) runs in the guest
qemu_bg "$log" 'utmkit.exit=status utmkit.cmd="test -b /dev/vda && test -b /dev/sr0 && for i in $(seq 50); do ip -4 addr show eth0 | grep -q 10.0.2.15 && exit 0; sleep 0.2; done; exit 7"' \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	-drive "if=virtio,file=$T/disk.img,format=raw" \
	-drive if=none,id=cd0,media=cdrom -device ide-cd,drive=cd0,bus=ide.0 \
	-nic user,model=virtio-net-pci
wait_exit "$qpid" 60
check_eq "cmd: /dev/vda, /dev/sr0 and eth0 10.0.2.15 seen (exit status 1 = success)" "$rc" 1

# 4. default mode: UTMKIT-READY, then QMP system_powerdown powers it off
log=$T/acpi.log
sock=$T/acpi.qmp
t0=$(now)
qemu_bg "$log" "" -qmp "unix:$sock,server=on,wait=off"
if wait_log "$log" '^UTMKIT-READY' 60 "$qpid"; then
	ok "default: UTMKIT-READY on the console"
	echo "# boot to UTMKIT-READY: $(secs "$t0" "$(now)") s"
	check "default: QMP system_powerdown accepted" qmp "$sock" system_powerdown
	wait_exit "$qpid" 15
	check_eq "default: guest powers off on the ACPI button within 15 s" "$rc" 0
	check "default: the init saw the power button" grep -q "power button pressed" "$log"
else
	not_ok "default: UTMKIT-READY on the console (log: $(tail -n 3 "$log"))"
	skip "default: QMP system_powerdown (no UTMKIT-READY)"
	skip "default: ACPI power-off (no UTMKIT-READY)"
	skip "default: the init saw the power button (no UTMKIT-READY)"
fi

# 5. utmkit.noacpi: system_powerdown is ignored
log=$T/noacpi.log
sock=$T/noacpi.qmp
qemu_bg "$log" "utmkit.noacpi" -qmp "unix:$sock,server=on,wait=off"
if wait_log "$log" '^UTMKIT-READY' 60 "$qpid"; then
	check "noacpi: QMP system_powerdown accepted" qmp "$sock" system_powerdown
	wait_exit "$qpid" 5
	check_eq "noacpi: guest still running 5 s after system_powerdown" "$rc" running
	kill -9 "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null || :
else
	not_ok "noacpi: UTMKIT-READY on the console (log: $(tail -n 3 "$log"))"
	skip "noacpi: system_powerdown ignored (no UTMKIT-READY)"
fi
