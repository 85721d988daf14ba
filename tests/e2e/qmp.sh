#!/bin/sh
# vm-qmp against real QEMU: one-shot commands and their errors, HMP, pipe
# mode (1000 pipelined commands, both forms, in order), events across
# stop/cont, --wait-event and its timeout, a dead and a stuck QEMU, the REPL
# under a pseudo-terminal (tmux), and a bundle started by vm-run whose guest
# powers off while --wait-event SHUTDOWN waits.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

QEMU=${QEMU:-qemu-system-x86_64}
if ! command -v "$QEMU" >/dev/null; then
	skip "$QEMU not installed"
	echo "1..$_n"
	exit 0
fi

qpids=""
# shellcheck disable=SC2016 # expanded at exit
at_exit 'for p in $qpids; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done'

# qemu_paused NAME: a QEMU with CPUs stopped and two QMP sockets,
# $T/NAME.sock and $T/NAME-2.sock (QEMU serves one client per socket);
# sets $qpid once both sockets are there.
qemu_paused() {
	"$QEMU" -S -display none -nodefaults -accel tcg -m 64 \
		-qmp "unix:$T/$1.sock,server=on,wait=off" \
		-qmp "unix:$T/$1-2.sock,server=on,wait=off" </dev/null >"$T/$1.log" 2>&1 &
	qpid=$!
	qpids="$qpids $qpid"
	_i=0
	while [ ! -S "$T/$1.sock" ] || [ ! -S "$T/$1-2.sock" ]; do
		[ "$_i" -ge 100 ] && { not_ok "QEMU $1 made its QMP sockets"; return 1; }
		sleep 0.1
		_i=$((_i + 1))
	done
}

qemu_paused q || exit 1
S="$T/q.sock"
S2="$T/q-2.sock"
q() { vm-qmp --socket "$S" "$@"; }

# --- one-shot -------------------------------------------------------------------
out=$(q query-status)
check_eq "query-status: compact JSON in a pipe" "$out" '{"status":"prelaunch","singlestep":false,"running":false}'
out=$(q --pretty query-status)
check_eq "--pretty: indented" "$(printf '%s\n' "$out" | head -n 2)" "{
  \"status\": \"prelaunch\","
check_eq "--pretty: an empty return stays {}" "$(q --pretty query-name)" "{}"

q query-qmp-schema >"$T/schema.json"
check_eq "query-qmp-schema: exit 0" "$?" 0
size=$(wc -c <"$T/schema.json")
check "query-qmp-schema: a big reply (${size} bytes)" test "$size" -gt 100000
check_eq "query-qmp-schema: valid JSON with commands" \
	"$(jq -r '[.[] | select(.name == "query-status")] | length' "$T/schema.json")" 1

out=$(q qom-get path=/machine property=type)
check_match "key=value arguments" "$out" '^"pc-i440fx-[0-9.]+-machine"$'
out=$(q --args '{"path": "/machine"}' qom-get property=type)
check_match "--args JSON with key=value on top" "$out" '^"pc-i440fx-'
out=$(q --args '{"path": "/machine", "property": "type"}' --compact qom-get)
check_match "--args alone" "$out" '^"pc-i440fx-'

out=$(q blockdev-del node-name=nope 2>&1)
rc=$?
check_eq "QMP error: exit 1" "$rc" 1
check_eq "QMP error: CLASS: desc" "$out" "vm-qmp: GenericError: Failed to find node with node-name='nope'"
out=$(q no-such-command 2>&1)
check_eq "unknown command: its class" "$out" "vm-qmp: CommandNotFound: The command no-such-command has not been found"
check_status "bad key=value: usage exit 2" 2 q qom-get novalue 2>/dev/null
check_status "--args not an object: exit 2" 2 q --args '[1]' qom-get 2>/dev/null
check_status "no bundle and no --socket: exit 2" 2 vm-qmp 2>/dev/null
check_status "--events with a command: exit 2" 2 q --events query-status 2>/dev/null
check_status "--timeout garbage: exit 2" 2 q --timeout soon query-status 2>/dev/null

# a non-ASCII value goes through and comes back as UTF-8
q qom-set path=/machine property=nope value='"h\u00e9llo"' 2>"$T/err"
check_match "non-ASCII argument reaches QEMU" "$(cat "$T/err")" "Property '.*nope' not found"

# --- HMP -----------------------------------------------------------------------------
ver=$("$QEMU" --version | sed -n 's/.*version \([0-9.]*\).*/\1/p')
out=$(q --hmp 'info version')
check_match "--hmp 'info version': the text" "$out" "^$ver"
check_status "--hmp: a failing HMP command exits 1" 1 q --hmp 'no_such_hmp_command' 2>/dev/null
out=$(q --hmp 'info status')
check_eq "--hmp: no carriage returns" "$(printf '%s' "$out" | tr -d '\r')" "$out"

# --- pipe mode -----------------------------------------------------------------------
{
	echo 'query-status'
	echo '{"execute": "query-name", "id": "mine"}'
	echo ''
	echo '# a comment'
	echo "qom-get path=/machine property=type"
	printf '%s\n' "broken a='open"
	echo '{"execute": "blockdev-del", "arguments": {"node-name": "nope"}, "id": 7}'
	printf 'query-status' # no newline at the end
} | q - >"$T/pipe.out" 2>"$T/pipe.err"
rc=$?
check_eq "pipe: a failed command makes the exit status 1" "$rc" 1
check_eq "pipe: one reply per command" "$(wc -l <"$T/pipe.out")" 6
check_eq "pipe: shorthand reply, no id" "$(sed -n 1p "$T/pipe.out")" \
	'{"return":{"status":"prelaunch","singlestep":false,"running":false}}'
check_eq "pipe: a full object keeps its own id" "$(sed -n 2p "$T/pipe.out")" '{"return":{},"id":"mine"}'
check_match "pipe: key=value line" "$(sed -n 3p "$T/pipe.out")" '"return":"pc-i440fx-'
check_match "pipe: a bad line gets an error reply in its place" "$(sed -n 4p "$T/pipe.out")" \
	'^\{"error":\{"class":"GenericError","desc":"line 6: unterminated'
check_match "pipe: ... and a diagnostic naming the line" "$(cat "$T/pipe.err")" "^vm-qmp: line 6: "
check_eq "pipe: QMP error in order, with its id" "$(sed -n 5p "$T/pipe.out" | jq -c '[.id, .error.class]')" '[7,"GenericError"]'
check_match "pipe: last line without newline" "$(sed -n 6p "$T/pipe.out")" '"status":"prelaunch"'

i=0
: >"$T/many.in"
while [ "$i" -lt 1000 ]; do
	if [ $((i % 2)) -eq 0 ]; then
		echo "{\"execute\":\"query-status\",\"id\":$i}"
	else
		echo "query-name"
	fi
	i=$((i + 1))
done >"$T/many.in"
start=$(date +%s)
q - <"$T/many.in" >"$T/many.out"
rc=$?
took=$(($(date +%s) - start))
check_eq "pipe: 1000 commands, exit 0" "$rc" 0
check_eq "pipe: 1000 replies" "$(wc -l <"$T/many.out")" 1000
check_eq "pipe: replies in order" "$(jq -r 'select(.id) | .id' "$T/many.out" | awk 'NR > 1 && $1 != prev + 2 { bad = 1 } { prev = $1 } END { print bad ? "out of order" : "in order" }')" "in order"
check "pipe: 1000 commands in ${took}s" test "$took" -lt 60

# more lines than vm-qmp keeps in flight (2048): the window is topped up as
# replies come, every reply in its line's place
awk 'BEGIN { for (i = 0; i < 5000; i++) if (i % 100 == 0) printf "{\"execute\":\"query-status\",\"id\":%d}\n", i; else print "query-status" }' >"$T/window.in"
q - <"$T/window.in" >"$T/window.out"
check_eq "pipe: 5000 commands past the window, exit 0" "$?" 0
check_eq "pipe: 5000 replies" "$(grep -c '^{"return":{"status":"prelaunch"' "$T/window.out")" 5000
check_eq "pipe: each id on its line's reply" "$(awk '/"id":/ { n++; if (index($0, "\"id\":" (NR - 1) "}") == 0) bad = 1 } END { print n, bad ? "misplaced" : "in place" }' "$T/window.out")" "50 in place"
# a reader stopped while QEMU answers all it was sent: once it goes on, every
# reply is in at once, and the lines left must still go out (it hung)
vm-qmp --socket "$S" - <"$T/window.in" >"$T/stopped.out" &
qpid=$!
sleep "$(secs 0.1)" # while the first window is out (the input is all read by then)
kill -STOP "$qpid"
sleep 3
kill -CONT "$qpid"
_i=0
while kill -0 "$qpid" 2>/dev/null && [ $_i -lt "$(secs 300)" ]; do sleep 0.1; _i=$((_i + 1)); done
if kill -0 "$qpid" 2>/dev/null; then
	kill "$qpid"
	not_ok "pipe: stopped, then continued: every line answered (hung at $(wc -l <"$T/stopped.out") replies)"
else
	wait "$qpid"
	check_eq "pipe: stopped, then continued: exit 0, 5000 replies" "$? $(grep -c '"return"' "$T/stopped.out")" "0 5000"
fi
out=$(echo query-status | q)
check_match "no COMMAND and stdin not a terminal: pipe mode" "$out" '^\{"return":\{"status":"prelaunch"'

# --- events ---------------------------------------------------------------------------
vm-qmp --socket "$S2" --events >"$T/events.out" 2>"$T/events.err" &
evpid=$!
at_exit "kill $evpid 2>/dev/null"
# connected (QEMU accepted: the socket shows twice in /proc/net/unix), then
# a moment for the capabilities handshake after which QEMU sends events
_i=0
while [ "$(grep -c "$S2\$" /proc/net/unix)" -lt 2 ] && [ "$_i" -lt 100 ]; do
	sleep 0.1
	_i=$((_i + 1))
done
sleep 0.5
q cont >/dev/null
q stop >/dev/null
_i=0
while [ "$(wc -l <"$T/events.out")" -lt 2 ] && [ "$_i" -lt 50 ]; do
	sleep 0.1
	_i=$((_i + 1))
done
kill "$evpid" 2>/dev/null
wait "$evpid" 2>/dev/null
check_eq "--events: RESUME then STOP, as JSON lines" "$(jq -r .event "$T/events.out" | tr '\n' ' ')" "RESUME STOP "

q cont >/dev/null
out=$(q --wait-event STOP stop)
check_eq "--wait-event STOP with the command that causes it" "$(printf '%s' "$out" | jq -r .event)" STOP
check_status "--wait-event on a paused VM's stop: no event, timeout" 3 q --timeout 0.5 --wait-event STOP stop 2>/dev/null
start=$(date +%s)
out=$(q --timeout 1 --wait-event RESUME 2>&1)
rc=$?
check_eq "--wait-event timeout: exit 3" "$rc" 3
check_eq "--wait-event timeout: message" "$out" "vm-qmp: timed out waiting for event RESUME"
check "--wait-event timeout: within the timeout" test $(($(date +%s) - start)) -le 3
out=$(q --timeout 0.5 --events)
check_eq "--events --timeout: ends, exit 0" "$?" 0

# --- the REPL, as a person uses it ----------------------------------------------------------
if command -v tmux >/dev/null; then
	tm() { tmux -L "utmkit-qmp-$$" "$@"; }
	at_exit "tmux -L utmkit-qmp-$$ kill-server 2>/dev/null"
	screen() { tm capture-pane -p -t repl -S -100; }
	# wait_screen PATTERN: until the screen shows PATTERN (grep -E), up to 15 s
	# (a busy host running three test files at once once took over 5 s)
	wait_screen() {
		_i=0
		while ! screen | grep -Eq -- "$1"; do
			[ "$_i" -ge 150 ] && return 1
			sleep 0.1
			_i=$((_i + 1))
		done
	}
	mkdir -p "$T/state"
	# (libedit leaks the names of added functions; not ours to fail on)
	tm new-session -d -s repl -x 100 -y 40 \
		"ASAN_OPTIONS=detect_leaks=0 XDG_STATE_HOME='$T/state' vm-qmp --socket '$S'; echo REPL-EXIT=\$?; sleep 60"
	check "REPL: banner and prompt" wait_screen '^\(qmp\) ?$'
	tm send-keys -t repl 'query-statu' Tab
	sleep 0.3
	tm send-keys -t repl Enter
	check "REPL: Tab completes a command; the reply is pretty JSON" wait_screen '^  "status": "paused",$'
	tm send-keys -t repl 'blockdev-change-medium fi' Tab
	check "REPL: Tab completes an argument name" wait_screen 'blockdev-change-medium filename=$'
	tm send-keys -t repl C-u 'blockdev-del nope=1' Enter
	check "REPL: unknown argument, nothing sent" wait_screen "^vm-qmp: blockdev-del: unknown argument 'nope'$"
	tm send-keys -t repl 'blockdev-del' Enter
	check "REPL: missing argument" wait_screen "^vm-qmp: blockdev-del: missing argument 'node-name'$"
	tm send-keys -t repl 'blockdev-del node-name=nope' Enter
	check "REPL: QMP errors" wait_screen "^vm-qmp: GenericError: Failed to find node with node-name='nope'$"
	tm send-keys -t repl 'help blockdev-del' Enter
	check "REPL: help COMMAND shows the arguments" wait_screen '^  node-name  str$'
	tm send-keys -t repl 'query-name half typed'
	sleep 0.3
	vm-qmp --socket "$S2" cont >/dev/null
	check "REPL: an event appears while typing" wait_screen '"event":"RESUME"'
	check "REPL: ... and the line being typed is kept" wait_screen '^\(qmp\) query-name half typed$'
	tm send-keys -t repl C-c
	check "REPL: Ctrl-C drops the line" wait_screen 'half typed\^C$'
	tm send-keys -t repl C-d
	check "REPL: Ctrl-D leaves, exit 0" wait_screen '^REPL-EXIT=0$'
	check "REPL: history kept, private" test "$(stat -c %a "$T/state/utmkit/qmp_history" 2>/dev/null)" = 600
	check "REPL: history has the commands" grep -q 'blockdev-del' "$T/state/utmkit/qmp_history"
	tm kill-server 2>/dev/null
else
	skip "REPL: tmux is not installed"
fi

# --- a dead and a stuck QEMU ----------------------------------------------------------------
qemu_paused dead || exit 1
deadpid=$qpid
kill -STOP "$deadpid"
start=$(date +%s)
out=$(vm-qmp --socket "$T/dead.sock" --timeout 1 query-status 2>&1)
rc=$?
check_eq "stuck QEMU: timeout exit 3" "$rc" 3
check_match "stuck QEMU: says so" "$out" "greeting"
check "stuck QEMU: within the timeout" test $(($(date +%s) - start)) -le 3
kill -9 "$deadpid"
wait "$deadpid" 2>/dev/null
start=$(date +%s)
out=$(vm-qmp --socket "$T/dead.sock" query-status 2>&1)
rc=$?
check_eq "dead QEMU (socket left behind): exit 1" "$rc" 1
check_eq "dead QEMU: message" "$out" "vm-qmp: $T/dead.sock: Connection refused"
check "dead QEMU: at once" test $(($(date +%s) - start)) -le 2
check_status "no socket at all: exit 1" 1 vm-qmp --socket "$T/none.sock" query-status 2>/dev/null

# --- quit -------------------------------------------------------------------------------
out=$(q --wait-event SHUTDOWN quit)
check_eq "quit: SHUTDOWN arrives before the socket closes" "$(printf '%s' "$out" | jq -r .event)" SHUTDOWN
_i=0
while kill -0 "$qpid" 2>/dev/null && [ "$_i" -lt 50 ]; do
	sleep 0.1
	_i=$((_i + 1))
done
check "quit: QEMU is gone" test "$_i" -lt 50

# --- a bundle started by vm-run ----------------------------------------------------------------
if [ -x "$VM_TOP/bin/vm-run" ] && [ -x "$VM_TOP/bin/vm-create" ] && [ -f "$GUEST_DIR/vmlinuz" ]; then
	# shellcheck source=tests/e2e/vmrun.inc
	. "$(dirname "$0")/vmrun.inc"
	guest demo ""
	out=$(vm-qmp "$T/demo.utm" query-status 2>&1)
	rc=$?
	check_eq "bundle not running: exit 1" "$rc" 1
	check_eq "bundle not running: message" "$out" "vm-qmp: demo: not running"
	vm-run -q -d "$T/demo.utm" >/dev/null
	check_eq "vm-run -d: QMP through the bundle" "$(vm-qmp "$T/demo.utm" query-status | jq -r .status)" running
	# a client that stays takes the session monitor, so one-shot commands
	# and vm-ls still find qmp.sock free
	vm-qmp "$T/demo.utm" --events >"$T/demo-events.out" 2>&1 &
	evpid=$!
	at_exit "kill $evpid 2>/dev/null"
	ss="$(rtdir "$T/demo.utm")/qmp-session.sock"
	_i=0
	while [ "$(grep -c "$ss\$" /proc/net/unix)" -lt 2 ] && [ "$_i" -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	check "--events on a bundle: connected to qmp-session.sock" test "$(grep -c "$ss\$" /proc/net/unix)" -ge 2
	check_eq "...a one-shot command answers meanwhile" \
		"$(vm-qmp --timeout 30 "$T/demo.utm" query-status | jq -r .status)" running
	check_eq "...vm-ls sees it running" "$(vm-ls --json "$T/demo.utm" | jq -r '.[0].state')" running
	vm-qmp "$T/demo.utm" stop >/dev/null
	vm-qmp "$T/demo.utm" cont >/dev/null
	_i=0
	while [ "$(wc -l <"$T/demo-events.out")" -lt 2 ] && [ "$_i" -lt 50 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	check_eq "...and --events sees what they did" "$(jq -r .event "$T/demo-events.out" | tr '\n' ' ')" "STOP RESUME "
	kill "$evpid" 2>/dev/null
	wait "$evpid" 2>/dev/null
	if wait_for "$(rtdir "$T/demo.utm")/console.log" UTMKIT-READY 120; then
		ok "the demo guest is up"
		out=$(vm-qmp --timeout 120 --wait-event SHUTDOWN "$T/demo.utm" system_powerdown)
		check_eq "--wait-event SHUTDOWN while the guest powers off" \
			"$(printf '%s' "$out" | jq -r '.event + " " + .data.reason')" "SHUTDOWN guest-shutdown"
		_i=0
		while vm-qmp "$T/demo.utm" query-status >/dev/null 2>&1 && [ "$_i" -lt 100 ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		check_eq "after power-off: not running" "$(vm-qmp "$T/demo.utm" query-status 2>&1)" "vm-qmp: demo: not running"
	else
		not_ok "the demo guest is up (no UTMKIT-READY on its console)"
	fi
else
	skip "bundle tests: vm-run, vm-create or the demo guest are not built"
fi

echo "1..$_n"
