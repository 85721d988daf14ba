#!/bin/sh
# The life of a VM without booting a guest (paused VMs cost no CPU):
# vm-run --detach returns when QMP answers, prints the pid; vm-ls shows the
# state from the lock and QMP; a second vm-run is refused at once; kill -9
# of QEMU leaves leftovers that are detected and cleaned; vm-stop waits until
# the VM is gone; Ctrl-C/SIGTERM to a foreground vm-run stop the VM and clean
# up; Ctrl-] detaches a console; swtpm comes and goes with its VM.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest

guest p1 "utmkit.run=shell"
rt=$(rtdir "$T/p1.utm")

# --- detach, QMP at once ---------------------------------------------------------
check_eq "vm-ls before: stopped" "$(state "$T/p1.utm")" stopped
exec 8>"$T/callers-file" # QEMU must not inherit what the caller has open
pid=$(vm-run -d --paused "$T/p1.utm")
check_eq "vm-run -d: exit 0" "$?" 0
exec 8>&-
check "QEMU holds none of the caller's descriptors" test "$(holds "$pid" callers-file && echo yes)" = ""
check "QEMU holds the lock" holds "$pid" "$rt/lock"
check_match "vm-run -d prints the pid" "$pid" "^[0-9]+$"
check_eq "QMP answers at once after -d returns" "$(qmp_status "$T/p1.utm")" prelaunch
check "QEMU is that pid" test "$(cat "$rt/pid")" = "$pid" -a "$(cat "/proc/$pid/comm")" = qemu-system-x86
check_eq "runtime dir is private" "$(stat -c %a "$rt")" 700
check_eq "QMP socket is private" "$(stat -c %a "$rt/qmp.sock")" 600

# --- vm-ls ---------------------------------------------------------------------
j=$(vm-ls --json "$T")
check_eq "vm-ls --json: state paused" "$(printf '%s' "$j" | jq -r '.[] | select(.name=="p1") | .state')" paused
check_eq "vm-ls --json: pid" "$(printf '%s' "$j" | jq -r '.[] | select(.name=="p1") | .pid')" "$pid"
check_eq "vm-ls --json: accel" "$(printf '%s' "$j" | jq -r '.[] | select(.name=="p1") | .accel')" tcg
check_eq "vm-ls --json: qmp socket" "$(printf '%s' "$j" | jq -r '.[] | select(.name=="p1") | .qmp')" "$rt/qmp.sock"
check_match "vm-ls table" "$(vm-ls "$T")" "p1 +paused +$pid +tcg +x86_64"
check_match "vm-ls from \$VM_PATH" "$(VM_PATH=/nonexistent:$T vm-ls)" "p1 +paused"

# --- a second start is refused at once -----------------------------------------------
t0=$(now_ms)
err=$(vm-run -d --paused "$T/p1.utm" 2>&1)
rc=$?
t1=$(now_ms)
check_eq "second vm-run: exit 1" "$rc" 1
check_eq "second vm-run: the message" "$err" "vm-run: p1: already running (pid $pid)"
check "second vm-run: at once ($((t1 - t0)) ms)" test $((t1 - t0)) -lt "$(ms 1000)"
check "the first VM is untouched" test "$(qmp_status "$T/p1.utm")" = prelaunch

# --- kill -9, then run again -----------------------------------------------------------
kill -9 "$pid"
# (a QEMU killed on a busy host may take seconds to tear down its memory,
# and holds the lock until it has)
check "kill -9: QEMU ends" wait_gone "$pid" "$(secs 30)"
check "leftovers are there after kill -9" test -e "$rt/pid" -a -S "$rt/qmp.sock"
check_eq "vm-ls after kill -9: stopped (the lock, not the pid file)" "$(state "$T/p1.utm")" stopped
pid2=$(vm-run -d --paused "$T/p1.utm")
check_eq "vm-run after kill -9: works" "$?" 0
check "vm-run after kill -9: a new QEMU" test -n "$pid2" -a "$pid2" != "$pid"
check_eq "vm-run after kill -9: QMP answers" "$(qmp_status "$T/p1.utm")" prelaunch

# --- vm-stop ---------------------------------------------------------------------------
t0=$(now_ms)
vm-stop "$T/p1.utm"
rc=$?
t1=$(now_ms)
check_eq "vm-stop of a paused VM: exit 0" "$rc" 0
check "vm-stop: quick for a paused VM ($((t1 - t0)) ms)" test $((t1 - t0)) -lt "$(ms 3000)"
check "vm-stop: QEMU has ended when it returns" dead "$pid2"
check_eq "vm-stop: vm-ls says stopped" "$(state "$T/p1.utm")" stopped
check "vm-stop: leftovers tidied" test ! -e "$rt/pid" -a ! -e "$rt/qmp.sock"
vm-stop "$T/p1.utm" 2>"$T/stop.err"
check_eq "vm-stop of a stopped VM: exit 0" "$?" 0
check_match "vm-stop of a stopped VM: says so" "$(cat "$T/stop.err")" "p1: not running"

# several at once
guest p2 "utmkit.run=shell"
guest p3 "utmkit.run=shell"
vm-run -q -d --paused "$T/p1.utm" >/dev/null && vm-run -q -d --paused "$T/p2.utm" >/dev/null &&
	vm-run -q -d --paused "$T/p3.utm" >/dev/null
check_eq "three paused VMs" "$(vm-ls --json "$T" | jq -r '[.[] | select(.state=="paused")] | length')" 3
vm-stop "$T/p1.utm" "$T/p2.utm" "$T/p3.utm"
check_eq "vm-stop of three: exit 0" "$?" 0
check_eq "vm-stop of three: all stopped" "$(vm-ls --json "$T" | jq -r '[.[] | select(.state!="stopped")] | length')" 0

# --- signals to a foreground vm-run -------------------------------------------------------
for sig in INT:130 TERM:143; do
	want=${sig#*:} sig=${sig%:*}
	vm-run --paused "$T/p2.utm" >/dev/null 2>"$T/sig.err" &
	vpid=$!
	wait_for "$(rtdir "$T/p2.utm")/pid" . 5
	i=0
	while [ "$(qmp_status "$T/p2.utm")" != prelaunch ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	qpid=$(cat "$(rtdir "$T/p2.utm")/pid")
	kill -"$sig" "$vpid"
	wait $vpid
	rc=$?
	check_eq "SIG$sig to foreground vm-run: exit $want" "$rc" "$want"
	check "SIG$sig: QEMU is gone" dead "$qpid"
	check "SIG$sig: runtime files cleaned" test ! -e "$(rtdir "$T/p2.utm")/pid"
	check_eq "SIG$sig: vm-ls says stopped" "$(state "$T/p2.utm")" stopped
done

# --- Ctrl-] detaches a console on a terminal -------------------------------------------------
if command -v script >/dev/null; then
	mkfifo "$T/tty.in"
	# script(1) gives vm-run a terminal; the fifo is the keyboard.
	script -qec "vm-run --console --paused '$T/p3.utm'" /dev/null <"$T/tty.in" >"$T/tty.out" 2>&1 &
	spid=$!
	exec 7>"$T/tty.in"
	wait_for "$T/tty.out" "Ctrl-] detaches" 10
	printf '\035' >&7
	wait_gone $spid 10
	check "Ctrl-]: vm-run returned" test $? -eq 0
	exec 7>&-
	check_match "Ctrl-]: says the VM runs on" "$(cat "$T/tty.out")" "p3: detached; the VM runs on"
	check_eq "Ctrl-]: the VM still runs" "$(state "$T/p3.utm")" paused
	vm-stop -q "$T/p3.utm"
	check_eq "Ctrl-]: vm-stop afterwards" "$(state "$T/p3.utm")" stopped
else
	skip "script(1) not installed: no terminal for the Ctrl-] test"
fi

# --- swtpm comes and goes with the VM ----------------------------------------------------------
if command -v swtpm >/dev/null; then
	guest tpm "utmkit.run=shell" --set tpm=true
	pid=$(vm-run -d --paused "$T/tpm.utm" 2>"$T/tpm.err")
	check_eq "tpm: vm-run -d works" "$?" 0
	trt=$(rtdir "$T/tpm.utm")
	spid=$(cat "$trt/swtpm.pid" 2>/dev/null)
	check "tpm: swtpm runs" alive "$spid"
	vm-stop -q --force "$T/tpm.utm"
	wait_gone "$spid" 5
	check "tpm: swtpm ended with the VM" dead "$spid"
	check "tpm: state kept in the bundle" test -e "$T/tpm.utm/Data/tpmdata"
else
	skip "swtpm not installed"
fi
