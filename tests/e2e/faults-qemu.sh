#!/bin/sh
# QEMU killed (SIGKILL) while a tool waits on it: vm-qmp waiting for an event,
# for a reply, for the greeting; vm-disk waiting for the guest to release an
# unplugged disk, or for the greeting; vm-stop waiting for the guest to power
# off, or for QMP. Each notices at once: vm-qmp and vm-disk exit 1 with one
# clear line, well within their timeout, and vm-disk leaves the config as it
# was; vm-stop says QEMU exited without shutting down and exits 1 (the VM is
# gone all the same: a vm-run right after it works). A QEMU that is stopped
# (SIGSTOP) keeps the tool waiting on a connection the kernel accepted for it,
# which is how the greeting and reply waits are set up. QEMU is killed once
# the tool is connected (holds a socket) and has had half a second more.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest

# (vm-argv's spare root ports take the hot-plugged disk)
guest q "utmkit.run=shell utmkit.noacpi" --disk 16M
B=$T/q.utm
RT=$(rtdir "$B")
QPID=""
# shellcheck disable=SC2016 # expanded at exit
at_exit '[ -n "$QPID" ] && kill -CONT "$QPID" 2>/dev/null'

# start [vm-run options]: a fresh QEMU for $B (the last one is gone); sets QPID
start() {
	[ -n "$QPID" ] && wait_gone "$QPID" 10
	if ! vm-run -q -d "$@" "$B" >/dev/null 2>"$T/run.err"; then
		not_ok "vm-run -d $*: $(cat "$T/run.err")"
		exit 1
	fi
	QPID=$(cat "$RT/pid")
}

# kill_while CMD...: start CMD; once it holds a socket (it has connected to
# QEMU) and half a second more, SIGKILL QEMU. Sets RC, MS (from the kill to
# CMD's end) and $T/err. A CMD that does not end within 20 s is killed.
kill_while() {
	"$@" >"$T/out" 2>"$T/err" &
	_p=$!
	_i=0
	while ! holds $_p socket: && alive $_p && [ $_i -lt 200 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	sleep 0.5
	(sleep 20 && kill $_p) 2>/dev/null &
	_w=$!
	_t0=$(now_ms)
	kill -9 "$QPID"
	wait $_p
	RC=$?
	MS=$(($(now_ms) - _t0))
	kill $_w 2>/dev/null
}
# fails_soon DESC PATTERN: the command exited 1 within 3 s of the kill, with
# one line on stderr matching PATTERN
fails_soon() {
	if [ "$RC" -ne 1 ]; then
		not_ok "$1: status $RC, wanted 1 ($(cat "$T/err"))"
	elif [ "$MS" -gt "$(ms 3000)" ]; then
		not_ok "$1: ended $MS ms after QEMU was killed"
	elif [ "$(wc -l <"$T/err")" -ne 1 ]; then
		not_ok "$1: wanted one line on stderr, got: $(cat "$T/err")"
	elif ! grep -Eq -- "$2" "$T/err"; then
		not_ok "$1: '$(cat "$T/err")' does not match /$2/"
	else
		ok "$1 ($MS ms after the kill: $(cat "$T/err"))"
	fi
}
GONE="QMP connection closed"

# --- vm-qmp -------------------------------------------------------------------------------
start --paused
kill_while vm-qmp -w SHUTDOWN "$B"
fails_soon "vm-qmp --wait-event (no timeout): QEMU killed" "^vm-qmp: .*$GONE"

start --paused
kill_while vm-qmp -t 30 -w SHUTDOWN "$B"
fails_soon "vm-qmp --wait-event -t 30: QEMU killed: exit 1, not 3" "^vm-qmp: .*$GONE"

# a reply that cannot come: commands on stdin, QEMU stopped after the first
# (it is killed with the second unread: the connection is reset, not closed)
start --paused
mkfifo "$T/in"
vm-qmp -t 30 "$B" - <"$T/in" >"$T/out" 2>"$T/err" &
vpid=$!
exec 7>"$T/in"
echo query-status >&7
wait_for "$T/out" prelaunch 10
kill -STOP "$QPID"
echo query-status >&7
sleep 0.5
t0=$(now_ms)
kill -9 "$QPID"
i=0
while alive $vpid && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
MS=$(($(now_ms) - t0))
kill $vpid 2>/dev/null
wait $vpid
RC=$?
exec 7>&-
check_eq "vm-qmp -: the first reply came" "$(head -n 1 "$T/out" | jq -r .return.status)" prelaunch
fails_soon "vm-qmp -: QEMU killed while a reply is due" "^vm-qmp: line 2: $GONE"

# no greeting: QEMU stopped, the kernel accepts the connection for it
start --paused
kill -STOP "$QPID"
kill_while vm-qmp -t 30 "$B" query-status
fails_soon "vm-qmp: QEMU killed while the greeting is due" "^vm-qmp: .*$GONE"

start --paused
kill_while vm-qmp --events "$B"
check_eq "vm-qmp --events: QEMU killed: the stream ends, exit 0 as documented ($MS ms)" "$RC" 0
check "...at once" test "$MS" -lt "$(ms 3000)"

# --- vm-disk ------------------------------------------------------------------------------
# detach waits for the guest to release the disk; a paused guest never does
start --paused
vm-disk -q "$B" create vd1 16M 2>"$T/err" || not_ok "vm-disk create (hot-plug): $(cat "$T/err")"
cp "$B/vm.conf" "$T/before.conf"
kill_while vm-disk -t 30 "$B" detach vd1
fails_soon "vm-disk detach -t 30: QEMU killed while waiting for the unplug" "^vm-disk: $B: drive vd1: $GONE"
check "...the config unchanged" cmp -s "$T/before.conf" "$B/vm.conf"

start --paused
kill -STOP "$QPID"
kill_while vm-disk "$B" resize hd0 32M
fails_soon "vm-disk resize: QEMU killed while the greeting is due" "^vm-disk: $B: .*$GONE"
check "...the config unchanged" cmp -s "$T/before.conf" "$B/vm.conf"
check_eq "...the disk unchanged" "$(qemu-img info --output=json "$B/Data/hd0.qcow2" | jq '."virtual-size"')" 16777216
wait_gone "$QPID" 10
check "...trying again works (the VM is gone: offline)" vm-disk -q "$B" resize hd0 32M

# --- vm-stop ------------------------------------------------------------------------------
# the guest runs and ignores the power button (utmkit.noacpi): vm-stop waits
start
kill_while vm-stop --timeout 20 "$B"
fails_soon "vm-stop --timeout 20: QEMU killed while the guest should power off" "^vm-stop: q: QEMU exited without shutting down \\(killed or crashed\\)$"
check "...at once ($MS ms after the kill), not after the timeout" test "$MS" -lt "$(ms 3000)"
check_eq "...vm-ls: stopped" "$(state "$B")" stopped
# shellcheck disable=SC2016 # $1 of sh -c
check "...a vm-run right after works" sh -c 'vm-run -q -d --paused "$1" >/dev/null' _ "$B"
QPID=$(cat "$RT/pid")

kill -STOP "$QPID"
kill_while vm-stop --force "$B"
fails_soon "vm-stop --force: QEMU killed while the greeting is due" "^vm-stop: q: QEMU exited without shutting down \\(killed or crashed\\)$"
check "...at once ($MS ms after the kill)" test "$MS" -lt "$(ms 3000)"
check_eq "...vm-ls: stopped" "$(state "$B")" stopped
