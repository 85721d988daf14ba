#!/bin/sh
# The QEMU guest agent (vm-guest, lib/agent.c) on the real Debian 12 cloud
# image of scripts/mkimage, which has qemu-guest-agent: one boot (BIOS, TCG)
# for every assertion: exec with output, stderr, stdin, exit status, 10 MB of
# output and a 5 s command; cp both ways of a 20 MB binary file; ip shows
# 10.0.2.15; a live snapshot freezes the filesystems around it; vm-stop
# falls back to guest-shutdown when the guest ignores the ACPI button. And
# first, quickly: the error when no agent answers (the demo guest has none).
# Slow under TCG: minutes. Skips, saying why, when the image is not built.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
cd "$T" || exit 1

# ---- no agent: the demo guest ---------------------------------------------------------
if [ -f "$GUEST_DIR/vmlinuz" ] && command -v qemu-system-x86_64 >/dev/null; then
	guest demo "utmkit.run=shell"
	vm-run -q -d "$T/demo.utm" >/dev/null
	check_eq "demo guest: vm-run -d" "$?" 0
	check "the demo guest has the agent's socket" test -S "$(rtdir "$T/demo.utm")/qga.sock"
	t0=$(now_ms)
	vm-guest "$T/demo.utm" ping 2>"$T/noagent.err"
	rc=$?
	t1=$(now_ms)
	check_eq "no agent: vm-guest ping fails (status 1)" "$rc" 1
	check_eq "...saying so" "$(cat "$T/noagent.err")" \
		"vm-guest: no guest agent answers in VM demo: is qemu-guest-agent installed and running?"
	check "...within 5 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt "$(ms 5000)"
	# (vm-ls gives QMP 1 s: on a host busy booting other guests it may say
	# "unknown" for a moment; ask again then)
	for _try in 1 2 3; do
		ls_out=$(vm-ls --json "$T/demo.utm" | tr -d '\n ')
		case $ls_out in *'"state":"unknown"'*) sleep 1 ;; *) break ;; esac
	done
	check_match "vm-ls --json: the socket, no agent" "$ls_out" '"agent_socket":".*qga.sock","agent":false'
	vm-stop -q --force "$T/demo.utm"
	vm-config "$T/demo.utm" set agent false
	check "agent = false: no channel in the command line" sh -c '! vm-argv "$1" | grep -q guest_agent' _ "$T/demo.utm"
else
	skip "no agent: the demo guest is not built (make guest)"
fi

# ---- the Debian cloud image ------------------------------------------------------------
IMAGE=$VM_TOP/build/image/debian12.qcow2
if [ ! -f "$IMAGE" ]; then
	skip "no cloud image $IMAGE: not built (make image)"
	echo "1..$_n"
	exit 0
fi
for t in qemu-system-x86_64 sha256sum; do
	if ! command -v "$t" >/dev/null; then
		skip "$t is not installed"
		echo "1..$_n"
		exit 0
	fi
done
printf '#cloud-config\nhostname: agent\n' >"$T/user-data"
B="$T/deb.utm"
check_eq "vm-create --cloud-init" "$(vm-create -m 1G --cloud-init "$T/user-data" "$T/deb")" "$B"
_bundles="$_bundles $B"
check "the image as the root disk (a qcow2 overlay)" vm-disk -q "$B" create root --backing "$IMAGE"
check "vm-run -d" sh -c 'vm-run -q -d "$1" >/dev/null' _ "$B"
t0=$(date +%s)
if ! vm-guest --wait 900 "$B" ping 2>"$T/ping.err"; then
	not_ok "the agent answers after boot: $(cat "$T/ping.err"); console: $(tail -n 5 "$(rtdir "$B")/console.log" | tr '\n' ' ')"
	echo "1..$_n"
	exit 1
fi
ok "the agent answers $(($(date +%s) - t0)) s after vm-run"
check_match "vm-ls --json: the agent answers" "$(vm-ls --json "$B")" '"agent": true'
check_match "info: the version and guest-exec" "$(vm-guest "$B" info)" 'guest-exec'

# exec: output, stderr, exit status, stdin
check_eq "exec: stdout" "$(vm-guest "$B" exec -- echo hello world)" "hello world"
check_eq "exec: stderr apart from stdout" \
	"$(vm-guest "$B" exec -- sh -c 'echo out; echo err >&2' 2>"$T/err")|$(cat "$T/err")" "out|err"
check_status "exec: the command's exit status" 7 vm-guest "$B" exec -- sh -c 'exit 7'
check_status "exec: 128 + the signal that ended it" 137 vm-guest "$B" exec -- sh -c 'kill -9 $$'
check_status "exec: no such program: 127" 127 vm-guest "$B" exec -- /no/such/program
check_eq "exec: stdin from a pipe" "$(printf 'a\nb\nc\n' | vm-guest "$B" exec -- wc -l)" 3
printf 'from a file' >"$T/in.txt"
check_eq "exec: --input FILE" "$(vm-guest "$B" exec --input "$T/in.txt" -- cat)" "from a file"
check_eq "exec: --env" "$(vm-guest "$B" exec --env GREETING=hi -- sh -c 'echo $GREETING')" "hi"
vm-guest "$B" exec -- head -c 10000000 /dev/zero >"$T/10m"
check_eq "exec: 10 MB of output, whole" "$(wc -c <"$T/10m")" 10000000
t0=$(now_ms)
check_eq "exec: a command that runs 5 s" "$(vm-guest "$B" exec -- sh -c 'sleep 5; echo slept')" slept
t1=$(now_ms)
check "...took 5 s or more ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 5000
check_status "exec --timeout: killed, status 124" 124 vm-guest "$B" exec --timeout 1 -- sleep 60
t0=$(now_ms)
vm-guest "$B" exec -- true
t1=$(now_ms)
echo "# exec -- true: $((t1 - t0)) ms"
# QEMU serves one client at a time: a second one waits for its turn
vm-guest "$B" exec -- sh -c 'sleep 2; echo first' >"$T/first" &
bg=$!
sleep 0.5
check_eq "two clients at once: the second waits its turn" "$(vm-guest "$B" exec -- echo second)" second
wait $bg
check_eq "...and the first got its answer" "$(cat "$T/first")" first
check_match "...vm-ls --json meanwhile: busy is answering" \
	"$(vm-guest "$B" exec -- sleep 2 & sleep 0.5; vm-ls --json "$B"; wait)" '"agent": true'

# cp: 20 MB of random bytes both ways, mode kept
head -c 20000000 /dev/urandom >"$T/big.bin"
chmod 640 "$T/big.bin"
want=$(sha256sum <"$T/big.bin" | cut -d' ' -f1)
t0=$(now_ms)
check "cp HOST :GUEST (20 MB)" vm-guest "$B" cp "$T/big.bin" :/var/tmp/big.bin
t1=$(now_ms)
echo "# cp in: 20 MB in $((t1 - t0)) ms"
check_eq "...the guest's checksum" "$(vm-guest "$B" exec -- sha256sum /var/tmp/big.bin | cut -d' ' -f1)" "$want"
check_eq "...its mode kept" "$(vm-guest "$B" exec -- stat -c %a /var/tmp/big.bin)" 640
t0=$(now_ms)
check "cp :GUEST HOST (20 MB)" vm-guest "$B" cp :/var/tmp/big.bin "$T/back.bin"
t1=$(now_ms)
echo "# cp out: 20 MB in $((t1 - t0)) ms"
check_eq "...the checksum" "$(sha256sum <"$T/back.bin" | cut -d' ' -f1)" "$want"
check_eq "...its mode kept" "$(stat -c %a "$T/back.bin")" 640
check_eq "cp - :GUEST and cp :GUEST -" \
	"$(printf 'piped' | vm-guest "$B" cp - :/var/tmp/p.txt && vm-guest "$B" cp :/var/tmp/p.txt -)" piped
check_status "cp of a missing guest file fails" 1 vm-guest "$B" cp :/no/such/file "$T/x"
check "...and leaves no file" test ! -e "$T/x"

# ip
check_match "ip: 10.0.2.15" "$(vm-guest "$B" ip)" '10\.0\.2\.15/24'
check_match "ip --json" "$(vm-guest "$B" ip --json)" '"ip-address": ?"10.0.2.15"'
check "time-sync" vm-guest "$B" time-sync

# a live snapshot freezes the filesystems around it
vm-disk -v "$B" snapshot create frozen >"$T/snap.out" 2>&1
check_eq "snapshot create on the running VM" "$?" 0
check_match "...froze the guest's filesystems and says so" "$(cat "$T/snap.out")" 'froze [0-9]+ filesystem'
check_eq "...and thawed them after" "$(vm-guest "$B" exec --timeout 60 -- sh -c 'echo w >/var/tmp/w && cat /var/tmp/w')" w
check_match "fsfreeze, fsthaw" "$(vm-guest "$B" fsfreeze && vm-guest "$B" fsthaw)" 'thawed [1-9]'

# vm-stop: the guest ignores the ACPI button; the agent shuts it down
vm-guest "$B" exec -- sh -c 'mkdir -p /etc/systemd/logind.conf.d &&
	printf "[Login]\nHandlePowerKey=ignore\n" >/etc/systemd/logind.conf.d/ignore.conf &&
	systemctl restart systemd-logind'
check_eq "the guest ignores the power button now" "$?" 0
t0=$(date +%s)
vm-stop -v -t 20 "$B" >"$T/stop.out" 2>&1
check_eq "vm-stop: status 0" "$?" 0
echo "# vm-stop took $(($(date +%s) - t0)) s"
check_match "...through the guest agent" "$(cat "$T/stop.out")" 'stopped \(the guest agent\)'
if grep -Eqi 'QMP quit|kill' "$T/stop.out"; then
	not_ok "...without quit or kill: $(tr '\n' ' ' <"$T/stop.out")"
else
	ok "...without quit or kill"
fi

# vm-run in the foreground: Ctrl-C goes the same way (the button, then the agent)
vm-run -v --stop-timeout 20 "$B" </dev/null >/dev/null 2>"$T/fg.err" &
fg=$!
_i=0
until vm-qmp "$B" query-status >/dev/null 2>&1 || [ $_i -ge 300 ]; do sleep 0.2; _i=$((_i + 1)); done
if vm-guest --wait 900 "$B" ping 2>"$T/ping.err"; then
	t0=$(date +%s)
	kill -INT $fg
	wait $fg
	check_eq "vm-run, Ctrl-C: exit 130" "$?" 130
	echo "# vm-run's stop took $(($(date +%s) - t0)) s"
	check_match "...the button ignored, it tried the guest agent" "$(cat "$T/fg.err")" \
		'did not power off in 20 s; trying its guest agent'
	if grep -Eqi 'quitting QEMU|killing' "$T/fg.err"; then
		not_ok "...which powered it off, without quit or kill: $(tr '\n' ' ' <"$T/fg.err")"
	else
		ok "...which powered it off, without quit or kill"
	fi
else
	not_ok "the agent answers after a foreground vm-run: $(cat "$T/ping.err")"
	kill -TERM $fg
	wait $fg
fi
echo "1..$_n"
