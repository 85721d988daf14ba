#!/bin/sh
# Suspend and resume on the demo guest (TCG): a file in the guest's RAM (its
# initramfs root) proves the state came back.
#   vm-stop --save: Data/vmstate, vm-ls says suspended; vm-run -d resumes and
#   consumes it; --fresh boots and discards it; --snapshot resumes and keeps
#   it, every run from the same moment; a state that does not match the
#   config (memory, devices, QEMU's version) is refused, and kept; a damaged
#   one too; vm-stop --save killed with SIGKILL leaves the previous state or
#   a complete new one, never a torn one; vm-pack carries the state.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest
command -v socat >/dev/null || { skip "socat is not installed"; echo "1..$_n"; exit 0; }

BOOT=120
guest s "utmkit.run=shell"
B=$T/s.utm
RT=$(rtdir "$B")
STATE=$B/Data/vmstate

# gsh CMD: type CMD on the guest's console; the connection stays a moment
# (QEMU drops what the UART's FIFO has not taken when the client goes)
gsh() { { printf '%s\n' "$1"; sleep 1; } | socat -u - "UNIX-CONNECT:$RT/console.sock"; }
# gsee PATTERN: the console shows PATTERN (since this run began)
gsee() { wait_for "$RT/console.log" "$1" 60; }
# state_ok FILE: a complete saved state (its header's size is the stream's)
state_ok() {
	_sz=$(head -c 4096 "$1" | sed -n 2p | jq -r .size 2>/dev/null)
	[ -n "$_sz" ] && [ "$(stat -c %s "$1")" -eq $((_sz + 4096)) ] && head -n 1 "$1" | grep -q '^UTMKIT-VMSTATE 1$'
}
no_tmp() { ! ls "$B/Data" | grep -q '\.tmp\.'; }

# ---- save ----------------------------------------------------------------
check "vm-run -d" sh -c 'vm-run -q -d "$1" >/dev/null' _ "$B"
check "booted" wait_for "$RT/console.log" UTMKIT-READY $BOOT
gsh 'echo one-$((40+2)) >/tmp/marker'
gsh 'echo "seen=$(cat /tmp/marker)"'
check "the guest wrote its marker" gsee 'seen=one-42'
vm-stop -v --save "$B" 2>"$T/save.err"
check_eq "vm-stop --save: status 0" "$?" 0
check_match "vm-stop --save: saved, then quit" "$(cat "$T/save.err")" 'state saved'
check "Data/vmstate is a complete saved state" state_ok "$STATE"
check "no temporary file left in Data/" no_tmp
check_eq "vm-ls: suspended" "$(state "$B")" suspended
check_match "vm-ls (table): suspended" "$(vm-ls "$B")" 'suspended'
# ---- a suspended guest's disks stay as its saved state expects them ----
vm-disk "$B" create extra 1M 2>"$T/disk.err"
check_eq "suspended: vm-disk create refuses (status 1)" "$?" 1
check_match "...saying why and what to do" "$(cat "$T/disk.err")" \
	'create: the VM is suspended \(Data/vmstate\).*vm-run --fresh'
check "...and adds nothing" sh -c '! vm-disk "$1" list | grep -q extra && ! ls "$1/Data" | grep -q extra' _ "$B"
check_status "suspended: vm-disk attach refuses" 1 vm-disk "$B" attach "$B/Data/vmlinuz" 2>/dev/null
check "suspended: vm-disk list still works" vm-disk "$B" list
check "...and the state is kept" state_ok "$STATE"
check "vm-pack carries Data/vmstate" sh -c 'vm-pack -q -F tar "$1" "$2" && tar tf "$2" | grep -q "Data/vmstate$"' _ "$B" "$T/s.tar"

# ---- refused: the config no longer matches --------------------------------
vm-config "$B" set memory 512M
vm-run -q -d "$B" >/dev/null 2>"$T/mem.err"
check_eq "memory changed: vm-run refuses (status 1)" "$?" 1
check_match "...saying what differs" "$(cat "$T/mem.err")" 'does not match the config: memory \(-m\) is 512, was 256.*--fresh'
check "...and keeps the state" state_ok "$STATE"
check_eq "...vm-ls: suspended" "$(state "$B")" suspended
vm-config "$B" set memory 256M
vm-config "$B" set rng true
vm-run -q -d "$B" >/dev/null 2>"$T/dev.err"
check_eq "a device added: vm-run refuses" "$?" 1
check_match "...saying the devices differ" "$(cat "$T/dev.err")" 'devices differ'
vm-config "$B" unset rng
# Another QEMU: the version in the header, changed in place (same length)
cp "$STATE" "$T/good"
sed -i '2s/"qemu":"[0-9]/"qemu":"0/' "$STATE"
vm-run -q -d "$B" >/dev/null 2>"$T/ver.err"
check_eq "saved by another QEMU: vm-run refuses" "$?" 1
check_match "...naming both versions" "$(cat "$T/ver.err")" 'saved by QEMU 0.*this is QEMU [0-9]'
check "...and keeps the state" test -f "$STATE"
check "...and QEMU is gone (the lock is free)" sh -c '! vm-ls --json "$1" | grep -q running' _ "$B"
# A torn file (what the atomic save never leaves): refused, not loaded
head -c 100000 "$T/good" >"$STATE"
vm-run -q -d "$B" >/dev/null 2>"$T/torn.err"
check_eq "a truncated state: vm-run refuses" "$?" 1
check_match "...as damaged" "$(cat "$T/torn.err")" 'damaged saved state'
cp "$T/good" "$STATE"

# ---- resume ----------------------------------------------------------------
t0=$(now_ms)
vm-run -q -d "$B" >/dev/null
check_eq "vm-run -d resumes: status 0" "$?" 0
echo "# resume (vm-run -d returning) took $(($(now_ms) - t0)) ms"
check_eq "vm-ls: running" "$(state "$B")" running
check "the state is consumed" test ! -e "$STATE"
gsh 'echo "back=$(cat /tmp/marker)"'
check "the guest's RAM came back: the marker is there" gsee 'back=one-42'
check "no boot: the console shows no new UTMKIT-READY" sh -c '! grep -q UTMKIT-READY "$1"' _ "$RT/console.log"
vm-stop -q -f "$B"
check_eq "after the resume and a stop: vm-ls stopped" "$(state "$B")" stopped
check "a second start boots cleanly" sh -c 'vm-run -q -d "$1" >/dev/null && vm-ls --json "$1" | grep -q running' _ "$B"
check "...booted" wait_for "$RT/console.log" UTMKIT-READY $BOOT
gsh 'echo "after=$(cat /tmp/marker 2>/dev/null || echo none)"'
check "...with no marker" gsee 'after=none'

# ---- --fresh ---------------------------------------------------------------
gsh 'echo two >/tmp/marker'
check "save again" vm-stop -q --save "$B"
check_eq "vm-ls: suspended" "$(state "$B")" suspended
check "vm-run --fresh -d" sh -c 'vm-run -q --fresh -d "$1" >/dev/null' _ "$B"
check "--fresh discards the state" test ! -e "$STATE"
check "--fresh boots" wait_for "$RT/console.log" UTMKIT-READY $BOOT
vm-stop -q -f "$B"

# ---- --snapshot: every run from the same moment ------------------------------------
check "boot" sh -c 'vm-run -q -d "$1" >/dev/null' _ "$B"
check "...booted" wait_for "$RT/console.log" UTMKIT-READY $BOOT
gsh 'echo three >/tmp/marker'
check "save" vm-stop -q --save "$B"
sum=$(md5sum <"$STATE")
for run in 1 2 3; do
	vm-run -q --snapshot -d "$B" >/dev/null
	check_eq "--snapshot run $run: resumes" "$?" 0
	gsh 'echo "m=$(cat /tmp/marker)"; echo "x=$(cat /tmp/extra 2>/dev/null || echo none)"'
	check "--snapshot run $run: the saved RAM" gsee 'm=three'
	check "--snapshot run $run: nothing of the run before" gsee 'x=none'
	gsh 'echo run >/tmp/extra'
	vm-stop -q -f "$B"
	check_eq "--snapshot run $run: the state is kept, unchanged" "$(md5sum <"$STATE")" "$sum"
	check_eq "--snapshot run $run: vm-ls: suspended after it" "$(state "$B")" suspended
done
check "--snapshot --fresh boots and keeps the state" sh -c 'vm-run -q --snapshot --fresh -d "$1" >/dev/null && test -f "$2"' _ "$B" "$STATE"
check "...booted" wait_for "$RT/console.log" UTMKIT-READY $BOOT
vm-stop -q -f "$B"

# ---- kill -9 during a save -----------------------------------------------------------
for delay in 0.005 0.02 0.05 0.1; do
	cp "$STATE" "$T/before"
	vm-run -q --snapshot -d "$B" >/dev/null || not_ok "resume before kill ($delay)"
	vm-stop -q --save "$B" 2>/dev/null &
	sp=$!
	sleep "$delay"
	kill -9 "$sp" 2>/dev/null
	wait "$sp" 2>/dev/null
	if cmp -s "$STATE" "$T/before"; then
		ok "vm-stop --save killed after ${delay}s: the previous state, untouched"
	elif state_ok "$STATE"; then
		ok "vm-stop --save killed after ${delay}s: a complete new state"
	else
		not_ok "vm-stop --save killed after ${delay}s: a torn state ($(stat -c %s "$STATE") bytes)"
	fi
	check "...no temporary file left in Data/" no_tmp
	vm-stop -q -f "$B" 2>/dev/null
	cp "$T/before" "$STATE"
done

# ---- vm-stop --save of a stopped VM ---------------------------------------------------
vm-stop --save "$B" 2>"$T/ns.err"
check_eq "vm-stop --save of a VM that does not run: status 0, as vm-stop" "$?" 0
check_match "...not running" "$(cat "$T/ns.err")" 'not running'
check "...the state stays" state_ok "$STATE"

echo "1..$_n"
