# Shared helpers for end-to-end tests: TAP output, a scratch folder, cleanup.
# Source it: . "$(dirname "$0")/lib.sh"
set -u
VM_TOP=${VM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
VM_BIN=${VM_BIN:-$VM_TOP/bin}
PATH="$VM_BIN:$PATH"
export VM_ACCEL=tcg
GUEST_DIR="$VM_TOP/build/guest"
T=$(mktemp -d "${TMPDIR:-/tmp}/utmkit-test.XXXXXX")
# A private runtime dir per test file so parallel tests never meet.
export XDG_RUNTIME_DIR="$T/run"
mkdir -p "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
_n=0
_cleanup_cmds=""
# Time limits stretch by SLOW where the tools run slower: 10 under valgrind
# (make check VALGRIND=1). ms N: a limit of N ms; secs S: a sleep of S s.
if [ "${VM_VALGRIND:-}" = 1 ]; then SLOW=10; else SLOW=1; fi
ms() { echo $(($1 * SLOW)); }
secs() { echo "$1 $SLOW" | awk '{ print $1 * $2 }'; }

cleanup() {
	eval "$_cleanup_cmds"
	# kill any QEMU or tool still running from this test's runtime dir
	for p in "$XDG_RUNTIME_DIR"/vm/*/pid; do
		[ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
at_exit() { _cleanup_cmds="$_cleanup_cmds
$1"; }

ok() { _n=$((_n + 1)); echo "ok $_n - $*"; }
not_ok() { _n=$((_n + 1)); echo "not ok $_n - $*"; }

# check DESC CMD...: passes when CMD exits 0
check() {
	d=$1; shift
	if "$@"; then ok "$d"; else not_ok "$d (command: $*)"; fi
}
# check_fail DESC STATUS CMD...: passes when CMD exits with STATUS
check_status() {
	d=$1; want=$2; shift 2
	"$@"; got=$?
	if [ "$got" -eq "$want" ]; then ok "$d"; else not_ok "$d (status $got, wanted $want)"; fi
}
# check_eq DESC GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', wanted '$3')"; fi
}
# check_match DESC TEXT PATTERN (grep -E)
check_match() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then ok "$1"; else not_ok "$1 ('$2' does not match /$3/)"; fi
}
skip() { _n=$((_n + 1)); echo "ok $_n - # SKIP $*"; }

# bash_complete SCRIPT WORD...: what utmkit's bash completion SCRIPT offers
# for WORD... (the last is the word under the cursor, as bash splits them:
# "--accel=k" is "--accel" "=" "k"): the sorted replies, on one line.
bash_complete() {
	# shellcheck disable=SC2016 # the script's own $1, $@
	bash -c '. "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
_utmkit "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf "%s\n" "${COMPREPLY[@]}" | sort -u | grep .
' _ "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'
}

# qemu_bg ARGV0 SOCK ERR: start the NUL-separated QEMU command line in ARGV0
# in the background (as printed, seccomp sandbox and all, which forbids
# -daemonize's fork); 0 once SOCK listens and QEMU lives, with $qemu_pid set.
# Stop it with qemu_bg_stop.
qemu_bg() {
	xargs -0 -a "$1" sh -c 'exec "$0" "$@"' 2>"$3" &
	qemu_pid=$!
	_i=0
	while [ ! -S "$2" ] && kill -0 "$qemu_pid" 2>/dev/null && [ $_i -lt 400 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	[ -S "$2" ] && kill -0 "$qemu_pid" 2>/dev/null
}
qemu_bg_stop() {
	kill "$qemu_pid" 2>/dev/null
	wait "$qemu_pid" 2>/dev/null || : # 143 when TERM came before QEMU's handler
}
