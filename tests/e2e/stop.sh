#!/bin/sh
# Stopping booted guests (TCG): vm-stop presses the ACPI power button and the
# guest powers off (--timeout 0: waiting as long as it takes); a guest that
# ignores it (utmkit.noacpi) is quit after --timeout; a foreground vm-run
# --console with a pipe for stdin talks to the guest's shell, and Ctrl-C
# (SIGINT) powers the guest off politely (--stop-timeout 0: however long it
# takes). The three guests boot side by side.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest

guest acpi "utmkit.run=shell"
guest noacpi "utmkit.run=shell utmkit.noacpi"
guest con "utmkit.run=shell"

vm-run -q -d "$T/acpi.utm" >/dev/null
check_eq "acpi guest: vm-run -d" "$?" 0
vm-run -q -d "$T/noacpi.utm" >/dev/null
check_eq "noacpi guest: vm-run -d" "$?" 0

# The console guest: the keyboard is a fifo held open by fd 7.
mkfifo "$T/con.in"
vm-run --console --stop-timeout 0 "$T/con.utm" <"$T/con.in" >"$T/con.out" 2>"$T/con.err" &
vpid=$!
exec 7>"$T/con.in"

BOOT=120 # seconds; TCG on a busy 2-core machine
a=$(rtdir "$T/acpi.utm")
n=$(rtdir "$T/noacpi.utm")
check "acpi guest booted" wait_for "$a/console.log" UTMKIT-READY $BOOT
check "noacpi guest booted" wait_for "$n/console.log" UTMKIT-READY $BOOT
check "console guest booted (seen through vm-run --console)" wait_for "$T/con.out" UTMKIT-READY $BOOT
check_eq "vm-ls: running" "$(state "$T/acpi.utm")" running

# --- polite, with no timeout: vm-stop waits for the guest ---------------------------
qpid=$(cat "$a/pid")
vm-stop -v --timeout 0 "$T/acpi.utm" 2>"$T/acpi.err"
rc=$?
check_eq "vm-stop -t 0 (power button): exit 0" "$rc" 0
check "vm-stop -t 0: the guest powered itself off" grep -q "power button pressed" "$a/console.log"
check_match "vm-stop -t 0: says it waits" "$(cat "$T/acpi.err")" "acpi: pressing the power button \(waiting until the guest powers off\)"
check_eq "vm-stop -t 0: no timeout, so no quit" "$(grep -E 'did not power off|QMP quit' "$T/acpi.err")" ""
check "vm-stop -t 0: QEMU ended" dead "$qpid"
check_eq "vm-stop -t 0: stopped" "$(state "$T/acpi.utm")" stopped

# --- the guest ignores the button: quit after --timeout ---------------------------------
qpid=$(cat "$n/pid")
t0=$(now_ms)
vm-stop --timeout 1.5 "$T/noacpi.utm" 2>"$T/noacpi.err"
rc=$?
t1=$(now_ms)
check_eq "vm-stop (no ACPI): exit 0" "$rc" 0
check "vm-stop (no ACPI): waited the timeout, then quit ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 1500 -a $((t1 - t0)) -lt "$(ms 10000)"
check_match "vm-stop (no ACPI): says it quit" "$(cat "$T/noacpi.err")" "noacpi: the guest did not power off within 1.5 s; (trying its guest agent|quitting)"
check "vm-stop (no ACPI): QEMU ended" dead "$qpid"
check_eq "vm-stop (no ACPI): stopped" "$(state "$T/noacpi.utm")" stopped
vm-run -q -d --paused "$T/noacpi.utm" >/dev/null
check_eq "vm-run right after vm-stop: no race" "$?" 0
vm-stop -q --force "$T/noacpi.utm"

# --- the console, then Ctrl-C ------------------------------------------------------------
# shellcheck disable=SC2016 # the guest's shell expands it
echo 'echo "MARK$((6 * 7))"' >&7
check "--console: the guest's shell answers input from a pipe" wait_for "$T/con.out" MARK42 30
c=$(rtdir "$T/con.utm")
qpid=$(cat "$c/pid")
kill -INT $vpid
wait $vpid
rc=$?
exec 7>&-
check_eq "SIGINT to vm-run --console: exit 130" "$rc" 130
check "SIGINT: the guest powered off politely" grep -q "power button pressed" "$T/con.out"
check "SIGINT: QEMU ended" dead "$qpid"
check "SIGINT: runtime files cleaned" test ! -e "$c/pid" -a ! -e "$c/qmp.sock"
check_eq "SIGINT: stopped" "$(state "$T/con.utm")" stopped
