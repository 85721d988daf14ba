#!/bin/sh
# Hostile configuration files (issue 15, 3): every one gets a one-line error
# naming the file, quickly, never a signal, a hang, memory in proportion to
# the input, or the contents of a file that is not a configuration.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

vm-create -q --disk 16M x.utm >/dev/null || { not_ok "vm-create"; exit 1; }
vm-pack -q x.utm x.utm.zip || { not_ok "vm-pack"; exit 1; }

# run_limited DESC CMD...: at most 10 s and 512 MiB; prints the output, the
# status in $rc (124: timed out, >128: a signal)
# (not the memory under ASan or valgrind, which reserve terabytes of address
# space for themselves; the time bound holds for every build)
mem_kib=524288
case "${VM_BIN:-}" in */asan/*) mem_kib=unlimited ;; esac
[ "${VM_VALGRIND:-}" = 1 ] && mem_kib=unlimited
run_limited() {
	out=$( (ulimit -v "$mem_kib"; timeout "$(secs 10)" "$@") 2>&1)
	rc=$?
}
# one_line_error DESC PATTERN CMD...: fails with status 1 and one line matching PATTERN
one_line_error() {
	d=$1 pat=$2
	shift 2
	run_limited "$@"
	if [ $rc -ne 1 ]; then
		not_ok "$d (status $rc: $(printf '%s' "$out" | head -c 200))"
	elif [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ] || ! printf '%s\n' "$out" | grep -Eq -- "$pat"; then
		not_ok "$d (output: $(printf '%s' "$out" | head -c 300))"
	else
		ok "$d"
	fi
}

# --- vm.conf that is not a regular file ------------------------------------------------
cp -a x.utm fifo.utm && rm fifo.utm/vm.conf && mkfifo fifo.utm/vm.conf
one_line_error "a FIFO vm.conf: refused at once" "fifo.utm/vm.conf: not a regular file" vm-config fifo.utm show

cp -a x.utm zero.utm && ln -sf /dev/zero zero.utm/vm.conf
one_line_error "a vm.conf linked to /dev/zero: refused" "zero.utm/vm.conf: is a symbolic link" vm-config zero.utm show

printf 'root:SECRETHASH:19000:0:99999:7:::\n' >secret
chmod 600 secret
cp -a x.utm shadow.utm && ln -sf "$T/secret" shadow.utm/vm.conf
one_line_error "a vm.conf linked to another file: refused" "shadow.utm/vm.conf: is a symbolic link" vm-argv shadow.utm
check "... without its contents in the message" sh -c "! printf '%s' \"\$1\" | grep -q SECRETHASH" sh "$out"
# vm-ls lists the bundles it can read: a warning, and the bundle as invalid
# ls_invalid DESC WARNING BUNDLE
ls_invalid() {
	run_limited vm-ls "$3"
	if [ $rc -gt 1 ] || ! printf '%s\n' "$out" | head -1 | grep -Eq -- "^vm-ls: .*$2" ||
		! printf '%s\n' "$out" | grep -Eq ' invalid '; then
		not_ok "$1 (status $rc: $(printf '%s' "$out" | head -c 300))"
	else
		ok "$1"
	fi
}
ls_invalid "vm-ls on it: a warning, listed as invalid" "shadow.utm/vm.conf: is a symbolic link" shadow.utm

# --- sizes ---------------------------------------------------------------------------------
cp -a x.utm long.utm
{ cat x.utm/vm.conf; printf "notes = '"; head -c 4194304 /dev/zero | tr '\0' a; printf "'\n"; } >long.utm/vm.conf
one_line_error "a 4 MiB value in vm.conf: refused unread" "long.utm/vm.conf: larger than 1048576 bytes" vm-config long.utm show
start=$(date +%s)
run_limited vm-ls long.utm
check "... and vm-ls is quick about it" [ $(($(date +%s) - start)) -le 2 ]

cp -a x.utm many.utm
awk 'BEGIN { for (i = 0; i < 20000; i++) printf "drive d%d {\n}\n", i }' >>many.utm/vm.conf
one_line_error "20,000 sections in vm.conf: refused" "many.utm/vm.conf: more than 4096 sections and lists" vm-config many.utm show

# --- config.plist nested 50,000 deep ---------------------------------------------------
mkdir deep && (cd deep && unzip -q ../x.utm.zip && rm x.utm/vm.conf) || not_ok "unzip"
awk 'BEGIN {
	print "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict><key>Backend</key><string>QEMU</string><key>X</key>"
	for (i = 0; i < 50000; i++) printf "<array>"
	for (i = 0; i < 50000; i++) printf "</array>"
	print "</dict></plist>" }' >deep/x.utm/config.plist
msg="config.plist: arrays and dictionaries nested more than 128 deep"
one_line_error "a config.plist nested 50,000 deep: vm-config" "$msg" vm-config deep/x.utm show
one_line_error "... vm-argv" "$msg" vm-argv deep/x.utm
ls_invalid "... vm-ls" "$msg" deep/x.utm
(cd deep && zip -qr ../deep.utm.zip x.utm) || not_ok "zip"
one_line_error "... the importer" "$msg" vm-create --from deep.utm.zip imported.utm
left=$(ls -A | grep -c 'imported')
check_eq "... which leaves nothing behind" "$left" 0
