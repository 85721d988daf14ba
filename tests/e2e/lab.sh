#!/bin/sh
# End-to-end test of the lab example (share/examples/lab/Makefile): make -j3
# creates a router and two hosts from the demo guest, links them on socket
# networks, boots them detached, waits for each, and pings host2 from host1's
# console across the router; make clean stops them and deletes the bundles.
#   - the ping gets replies, and the three VMs run until make clean
#   - make clean leaves no QEMU running and no bundle, in a folder with a space
#   - after a failed start (the router's port is taken), make clean still
#     removes what was made
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"

need_guest
for c in make socat jq; do
	if ! command -v "$c" >/dev/null; then
		skip "$c not installed"
		exit 0
	fi
done

LABMK="$VM_TOP/share/examples/lab"
LAB="$T/my lab"

# lab ARGS...: make in the lab folder with this test's tools, guest and ports
lab() {
	make -s -C "$LABMK" BIN="${VM_BIN:-$VM_TOP/bin}" GUEST="$GUEST_DIR" \
		LAB_PORT_BASE="$port" MEMORY=128M "$@"
}

# free PORT: nothing listens on TCP PORT (true when ss is missing)
free() {
	! command -v ss >/dev/null || [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# Two free ports for lan1 and lan2, different for each run of this test.
port=$((20000 + ($$ % 10000) * 2))
tries=0
while ! free "$port" || ! free $((port + 1)); do
	port=$((port + 2))
	tries=$((tries + 1))
	[ "$tries" -lt 50 ] || break
done

# shellcheck disable=SC2016 # expanded at exit
at_exit 'lab LAB="$LAB" clean >/dev/null 2>&1; lab LAB="$T/bad" clean >/dev/null 2>&1'

t0=$(now_ms)
lab -j3 LAB="$LAB" >"$T/make.log" 2>&1
rc=$?
t1=$(now_ms)
check_eq "make -j3 builds, boots and pings (in $(((t1 - t0) / 1000))s)" "$rc" 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/make.log"
check "host1's ping got replies across the router" \
	grep -Eq '^host1: 3 packets transmitted, [1-3] packets received' "$T/make.log"
check "make says the hosts reach each other" \
	grep -q '^lab: host1 reaches host2 through the router' "$T/make.log"

states=$(vm-ls --json "$LAB" | jq -r 'map(.name + "=" + .state) | sort | join(" ")')
check_eq "the three VMs run" "$states" "host1=running host2=running router=running"
pids=$(vm-ls --json "$LAB" | jq -r '.[].pid // empty')

# A second lab on the same ports: the router cannot listen, so make fails
# before any host starts; make clean removes the bundles all the same.
if lab -j3 LAB="$T/bad" >"$T/bad.log" 2>&1; then
	not_ok "a lab whose router's port is taken fails"
else
	ok "a lab whose router's port is taken fails"
fi
check "vm-run says why" grep -q 'Address already in use' "$T/bad.log"
check "its bundles were made" test -d "$T/bad/router.utm"
lab LAB="$T/bad" clean >/dev/null 2>&1
check_eq "make clean after the failure" "$?" 0
check "no bundle or lab folder is left" test ! -e "$T/bad"

lab LAB="$LAB" clean >"$T/clean.log" 2>&1
check_eq "make clean" "$?" 0
gone=yes
for p in $pids; do
	wait_gone "$p" 10 || gone="no ($p)"
done
check_eq "make clean leaves no VM running" "$gone" yes
check "make clean leaves no bundle (nor the empty lab folder)" test ! -e "$LAB"
check "make clean again is a no-op" lab LAB="$LAB" clean
