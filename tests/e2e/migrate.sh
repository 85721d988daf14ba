#!/bin/sh
# Live migration on one machine: two bundles (the destination made from the
# source with vm-pack | vm-create --from - --keep-identity, as between two
# hosts), two runtime directories, loopback TCP (and a unix socket), while
# the demo guest counts on its console (utmkit.count=1): the count goes on
# at the destination without a restart, the source is gone, the destination
# answers vm-qmp; with --copy-storage what the guest wrote to its disk before
# the move is in the destination's own image and reads back in the guest.
# A migration that cannot happen leaves the source running, exit status 1,
# QEMU's reason.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmrun.inc"
need_guest
command -v socat >/dev/null || { skip "socat not installed"; exit 0; }

RUN1=$XDG_RUNTIME_DIR
RUN2=$T/run2
mkdir -p "$RUN2"
chmod 700 "$RUN2"
at_exit 'for p in "$RUN2"/vm/*/pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done'
port=$((41000 + $$ % 8000))

# on_dest CMD...: a tool run against the second runtime directory
on_dest() { XDG_RUNTIME_DIR=$RUN2 "$@"; }
# last_count LOG: the last "utmkit-count N" N
last_count() { sed -n 's/^utmkit-count \([0-9]*\).*/\1/p' "$1" | tail -n 1; }
first_count() { sed -n 's/^utmkit-count \([0-9]*\).*/\1/p' "$1" | head -n 1; }
# type_into SOCK LINE: a command line typed on a guest's console
type_into() { printf '%s\n' "$2" | socat -t 1 - "UNIX-CONNECT:$1" >/dev/null 2>&1; }

# pair NAME: $T/NAME.utm counting, with a disk, and its copy $T/NAME-dst.utm
pair() {
	guest "$1" "utmkit.count=1" --disk 16M
	vm-pack -q -F tar "$T/$1.utm" - | on_dest vm-create -q --from - --keep-identity "$T/$1-dst.utm" ||
		not_ok "vm-pack | vm-create --from - --keep-identity"
	_bundles="$_bundles $T/$1-dst.utm"
	at_exit "XDG_RUNTIME_DIR=$RUN2 vm-stop -q --force $T/$1-dst.utm >/dev/null 2>&1"
	uuid=$(vm-config "$T/$1.utm" get uuid)
	src_rt=$RUN1/vm/$uuid dst_rt=$RUN2/vm/$uuid
}

# ---- precopy over loopback TCP, shared nothing but the packed images ----
pair m1
check "the source starts" sh -c "vm-run -d '$T/m1.utm' >/dev/null"
wait_for "$src_rt/console.log" "utmkit-count [3-9]" "$(secs 120)" || not_ok "the guest did not count"
check "vm-run -d --incoming returns once QEMU listens" \
	sh -c "XDG_RUNTIME_DIR=$RUN2 vm-run -d --incoming tcp:127.0.0.1:$port '$T/m1-dst.utm' >/dev/null"
check_match "the destination waits (inmigrate)" "$(on_dest vm-qmp "$T/m1-dst.utm" query-status 2>&1)" '"inmigrate"'
src_pid=$(cat "$src_rt/pid")
vm-migrate --json --max-downtime 300 "$T/m1.utm" "tcp:127.0.0.1:$port" >"$T/m1.json" 2>"$T/m1.err"
check_eq "vm-migrate exits 0" "$?" 0
check_match "--json: completed, with QEMU's downtime" "$(cat "$T/m1.json")" '"status":"completed".*"downtime-ms":[0-9]+'
check "the source QEMU is gone" wait_gone "$src_pid" 10
check "the source's lock is free" sh -c "! vm-ls --json | grep -q '\"running\"'"
check_match "the destination answers vm-qmp: running" "$(on_dest vm-qmp "$T/m1-dst.utm" query-status 2>&1)" \
	'"status":"running"'
last_src=$(last_count "$src_rt/console.log")
wait_for "$dst_rt/console.log" "utmkit-count" "$(secs 30)"
sleep "$(secs 1)"
first_dst=$(first_count "$dst_rt/console.log")
check "the count goes on at the destination ($last_src, then $first_dst ...)" \
	[ -n "$first_dst" ] && [ "$first_dst" -gt 0 ] && [ "$first_dst" -ge "$last_src" ] && [ "$first_dst" -le $((last_src + 5)) ]
check "no restart: no banner at the destination" sh -c "! grep -q 'utmkit demo guest' '$dst_rt/console.log'"
check "and it keeps counting" sh -c "[ \"\$(sed -n 's/^utmkit-count \([0-9]*\).*/\1/p' '$dst_rt/console.log' | tail -n 1)\" -gt $first_dst ]"
check "vm-stop stops the destination" on_dest vm-stop -q --force "$T/m1-dst.utm"

# ---- a failure leaves the source running, with QEMU's reason ----
pair m2
vm-run -d "$T/m2.utm" >/dev/null
vm-migrate "$T/m2.utm" "tcp:127.0.0.1:$((port + 10))" 2>"$T/m2.err"
check_eq "nobody listens: exit status 1" "$?" 1
check_match "... with QEMU's reason" "$(cat "$T/m2.err")" "failed: .*(refused|Failed to connect).*runs on here"
check_match "... and the source runs on" "$(vm-qmp "$T/m2.utm" query-status 2>&1)" '"status":"running"'
check_status "exec: is refused (the sandbox)" 2 vm-migrate "$T/m2.utm" "exec:cat >/dev/null" 2>/dev/null

# ---- --copy-storage: the disk goes too, through the destination's NBD ----
wait_for "$src_rt/console.log" "UTMKIT-READY" "$(secs 120)"
type_into "$src_rt/console.sock" "echo MARK-$$ | dd of=/dev/vda conv=fsync"
wait_for "$src_rt/console.log" "records out" "$(secs 30)"
check "the destination's image does not hold the mark yet" sh -c "! grep -q MARK-$$ '$T/m2-dst.utm/Data/'*.qcow2"
on_dest vm-run -d --incoming "tcp:127.0.0.1:$((port + 1))" "$T/m2-dst.utm" >/dev/null
vm-migrate --copy-storage --dest-qmp "$dst_rt/qmp.sock" --nbd "tcp:127.0.0.1:$((port + 2))" \
	"$T/m2.utm" "tcp:127.0.0.1:$((port + 1))" 2>"$T/m2.err"
check_eq "vm-migrate --copy-storage exits 0" "$?" 0
check_match "the destination runs" "$(on_dest vm-qmp "$T/m2-dst.utm" query-status 2>&1)" '"status":"running"'
type_into "$dst_rt/console.sock" "sync; echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vda bs=32 count=1 | grep -a -o MARK-[0-9]*"
wait_for "$dst_rt/console.log" "^MARK-$$" "$(secs 30)"
check "the guest reads back what it wrote before the move" grep -q "^MARK-$$" "$dst_rt/console.log"
on_dest vm-stop -q --force "$T/m2-dst.utm"
check "the destination's own image holds it" grep -q "MARK-$$" "$T/m2-dst.utm/Data/hd0.qcow2"

# ---- shared storage over a unix socket: the destination names the source's images ----
# Both sandboxed: each QEMU gets the one image as an fd set (a read-write and
# a read-only descriptor); the source must let go of its lock at the switch
# and the destination take it.
pair m3
# both QEMUs (as their unprivileged user) make and reach the socket: a folder they may use
sockdir=$(mktemp -d /tmp/utmkit-mig.XXXXXX)
chmod 1777 "$sockdir"
at_exit "rm -rf '$sockdir'"
on_dest vm-config -q "$T/m3-dst.utm" add allow_paths "$T/m3.utm/Data"
on_dest vm-config -q "$T/m3-dst.utm" set drive.hd0.image "$T/m3.utm/Data/hd0.qcow2"
vm-run -q -d "$T/m3.utm" >/dev/null
wait_for "$src_rt/console.log" "UTMKIT-READY" "$(secs 120)" || not_ok "the guest did not start"
type_into "$src_rt/console.sock" "echo SHARED-$$ | dd of=/dev/vda conv=fsync"
wait_for "$src_rt/console.log" "records out" "$(secs 30)"
src_pid=$(cat "$src_rt/pid")
on_dest vm-run -q -d --incoming "unix:$sockdir/m3.mig" "$T/m3-dst.utm" >/dev/null
vm-migrate -q --dest-qmp "$dst_rt/qmp.sock" "$T/m3.utm" "unix:$sockdir/m3.mig" 2>"$T/m3.err"
check_eq "shared storage, sandboxed, over unix: vm-migrate exits 0 ($(cat "$T/m3.err"))" "$?" 0
check_match "... the destination runs" "$(on_dest vm-qmp "$T/m3-dst.utm" query-status 2>&1)" '"status":"running"'
check_match "... on the source's image (its fd set's name)" \
	"$(on_dest vm-qmp "$T/m3-dst.utm" query-fdsets 2>&1)" "m3.utm/Data/hd0.qcow2"
check "... the source QEMU is gone" wait_gone "$src_pid" 10
type_into "$dst_rt/console.sock" "echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vda bs=32 count=1 | grep -a -o SHARED-[0-9]*"
wait_for "$dst_rt/console.log" "^SHARED-$$" "$(secs 30)"
check "... the guest reads what it wrote before the move" grep -q "^SHARED-$$" "$dst_rt/console.log"
type_into "$dst_rt/console.sock" "echo AFTER-$$ | dd of=/dev/vda bs=512 seek=8 conv=fsync && echo WROTE-AFTER"
wait_for "$dst_rt/console.log" "^WROTE-AFTER" "$(secs 30)"
check "... and writes to the shared image after it (the lock moved)" grep -q "^WROTE-AFTER" "$dst_rt/console.log"
on_dest vm-stop -q --force "$T/m3-dst.utm"
check "the shared image holds what the destination wrote" grep -q "AFTER-$$" "$T/m3.utm/Data/hd0.qcow2"

# ---- the destination cannot take over: the source resumes ----
# Another process holds the destination's image (qemu-io, writing): QEMU
# there cannot lock it when it would start. vm-migrate quits it, resumes
# the source and says where the guest is.
pair m4
vm-run -d "$T/m4.utm" >/dev/null
wait_for "$src_rt/console.log" "utmkit-count [1-9]" "$(secs 120)" || not_ok "the guest did not count"
on_dest vm-run -d --incoming "tcp:127.0.0.1:$((port + 3))" "$T/m4-dst.utm" >/dev/null
qemu-io -f qcow2 -c "sleep $(($(secs 120) * 1000))" "$T/m4-dst.utm/Data/hd0.qcow2" >/dev/null 2>&1 &
holder=$!
at_exit "kill $holder 2>/dev/null"
sleep 1
vm-migrate --dest-qmp "$dst_rt/qmp.sock" "$T/m4.utm" "tcp:127.0.0.1:$((port + 3))" 2>"$T/m4.err"
check_eq "the destination did not run: exit status 1" "$?" 1
check_match "... saying so, and where the guest is" "$(cat "$T/m4.err")" \
	"did not start running \(its status: paused\).*the VM runs on here"
check "... the destination was quit" wait_gone "$(cat "$dst_rt/pid" 2>/dev/null || echo 0)" 10
check_match "... the source runs again" "$(vm-qmp "$T/m4.utm" query-status 2>&1)" '"status":"running"'
kill "$holder" 2>/dev/null
c1=$(last_count "$src_rt/console.log")
sleep "$(secs 3)"
check "... and its guest counts on ($c1, then $(last_count "$src_rt/console.log"))" \
	[ "$(last_count "$src_rt/console.log")" -gt "$c1" ]
vm-stop -q --force "$T/m4.utm"

# ---- postcopy: memory that never converges; the destination pulls the rest ----
# The guest rewrites 32 MiB of random data without end; at 16 MB/s precopy
# cannot finish, and after three passes vm-migrate switches to postcopy.
# userfaultfd at the destination: QEMU as root (--no-sandbox) where the
# host keeps it from unprivileged users (vm.unprivileged_userfaultfd=0).
pair m5
vm-run -d "$T/m5.utm" >/dev/null
wait_for "$src_rt/console.log" "UTMKIT-READY" "$(secs 120)" || not_ok "the guest did not start"
type_into "$src_rt/console.sock" "dd if=/dev/urandom of=/a bs=1M count=32 2>/dev/null; (while :; do cp /a /b; done) & echo DIRTYING"
wait_for "$src_rt/console.log" "^DIRTYING" "$(secs 60)"
src_pid=$(cat "$src_rt/pid")
if [ "$(sysctl -n vm.unprivileged_userfaultfd 2>/dev/null)" = 1 ]; then
	dsb=""
else
	dsb="--no-sandbox"
	# a sandboxed destination has no postcopy: refused before anything moves
	on_dest vm-run -q -d --incoming "tcp:127.0.0.1:$((port + 5))" "$T/m5-dst.utm" >/dev/null
	vm-migrate --postcopy --dest-qmp "$dst_rt/qmp.sock" "$T/m5.utm" "tcp:127.0.0.1:$((port + 5))" 2>"$T/m5.err"
	check_eq "--postcopy to a destination without userfaultfd: exit status 1" "$?" 1
	check_match "... saying why and what to do" "$(cat "$T/m5.err")" \
		"--postcopy: the destination cannot take it .*userfaultfd.*--no-sandbox"
	check_match "... the source runs on" "$(vm-qmp "$T/m5.utm" query-status 2>&1)" '"status":"running"'
	on_dest vm-stop -q --force "$T/m5-dst.utm"
fi
on_dest vm-run -q -d $dsb --incoming "tcp:127.0.0.1:$((port + 4))" "$T/m5-dst.utm" >/dev/null
if grep -q "userfaultfd not available" "$dst_rt/qemu.log" 2>/dev/null; then
	skip "postcopy: no userfaultfd for QEMU on this host ($(grep userfaultfd "$dst_rt/qemu.log"))"
else
	vm-migrate --json --postcopy --no-auto-converge --bandwidth 16M --dest-qmp "$dst_rt/qmp.sock" \
		"$T/m5.utm" "tcp:127.0.0.1:$((port + 4))" >"$T/m5.json" 2>"$T/m5.err"
	check_eq "--postcopy: vm-migrate exits 0 ($(tail -n 1 "$T/m5.err"))" "$?" 0
	check_match "--json: completed in postcopy" "$(cat "$T/m5.json")" '"status":"completed".*"postcopy":true'
	check "the source QEMU is gone" wait_gone "$src_pid" 10
	check_match "the destination runs" "$(on_dest vm-qmp "$T/m5-dst.utm" query-status 2>&1)" '"status":"running"'
	wait_for "$dst_rt/console.log" "utmkit-count" "$(secs 30)"
	c1=$(last_count "$dst_rt/console.log")
	sleep "$(secs 3)"
	check "its guest counts on (${c1:-none}, then $(last_count "$dst_rt/console.log"))" \
		[ -n "$c1" ] && [ "$(last_count "$dst_rt/console.log")" -gt "$c1" ]
fi
on_dest vm-stop -q --force "$T/m5-dst.utm"
