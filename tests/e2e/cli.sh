#!/bin/sh
# The tools' command lines (lib/cli.c, cmd/tool.c): --help lists every option
# each tool takes and the common ones; a failed write to stdout (a full disk)
# is an error in every tool; durations (--timeout) share one meaning.
. "$(dirname "$0")/lib.sh"
# the tools whose options come from one table (lib/cli.h)
tools="vm-create vm-config vm-argv vm-pack vm-ls vm-qmp vm-run vm-stop"
cd "$T" || exit 1
unset VM_PATH

# --- --help -------------------------------------------------------------------
for t in $tools; do
	help=$("$t" --help 2>&1)
	check_eq "$t --help exits 0" "$?" 0
	for o in --help --version --quiet --verbose; do
		check_match "$t --help lists $o" "$help" "^  -[a-zA-Z], $o( |\$)"
	done
	# every long option --help lists is one the tool takes (with its argument
	# when --help names one): never "unrecognized"
	bad=""
	for o in $(printf '%s\n' "$help" | grep -E '^ +-' | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u); do
		case $o in --help | --version) continue ;; esac
		err=$(timeout 10 "$t" "$o" </dev/null 2>&1 >/dev/null)
		case $err in *unrecognized*) bad="$bad $o" ;; esac
	done
	check_eq "$t takes every long option its --help lists" "$bad" ""
	err=$("$t" --no-such-option 2>&1 >/dev/null)
	check_eq "$t --no-such-option: exit 2" "$?" 2
	check_match "...with the usage lines" "$err" "^usage: $t "
	check_eq "$t --version" "$("$t" --version)" "$t (utmkit) $(sed -n 's/^#define VM_VERSION "\(.*\)"/\1/p' "$VM_TOP/lib/util.h")"
done

# --- stdout on a full disk ------------------------------------------------------
if [ -w /dev/full ]; then
	for t in $tools; do
		"$t" --help >/dev/full 2>"$T/err"
		check_eq "$t --help >/dev/full: exit 1" "$?" 1
		check_match "...saying why" "$(cat "$T/err")" "^$t: stdout: No space left on device$"
	done
	vm-create -q -N none "$T/a.utm" >/dev/null
	vm-create "$T/b.utm" >/dev/full 2>"$T/err"
	check_eq "vm-create B >/dev/full: exit 1" "$?" 1
	check_match "...saying why" "$(cat "$T/err")" "^vm-create: stdout: No space left on device$"
	check_status "vm-argv B >/dev/full: exit 1" 1 vm-argv "$T/a.utm" >/dev/full 2>/dev/null
	check_status "vm-argv --json B >/dev/full: exit 1" 1 vm-argv --json "$T/a.utm" >/dev/full 2>/dev/null
	check_status "vm-config B show >/dev/full: exit 1" 1 vm-config "$T/a.utm" show >/dev/full 2>/dev/null
	check_status "vm-config B show --json >/dev/full: exit 1" 1 vm-config "$T/a.utm" show --json >/dev/full 2>/dev/null
	check_status "vm-config keys >/dev/full: exit 1" 1 vm-config keys >/dev/full 2>/dev/null
	check_status "vm-ls DIR >/dev/full: exit 1" 1 vm-ls "$T" >/dev/full 2>/dev/null
	check_status "vm-ls --json DIR >/dev/full: exit 1" 1 vm-ls --json "$T" >/dev/full 2>/dev/null
	check_status "vm-pack B - >/dev/full: exit 1" 1 vm-pack -q -F tar "$T/a.utm" - >/dev/full 2>/dev/null
	# the VM starts, but the pid it prints is lost: that is an error
	VM_ACCEL=tcg vm-run -q -d --paused "$T/a.utm" >/dev/full 2>"$T/err"
	check_eq "vm-run -d B >/dev/full: exit 1" "$?" 1
	check_match "...saying why" "$(cat "$T/err")" "^vm-run: stdout: No space left on device$"
	check_status "...and vm-stop stops that VM" 0 vm-stop -q --force "$T/a.utm"
	# and with room, all is well
	check_status "vm-ls DIR >/dev/null: exit 0" 0 vm-ls "$T" >/dev/null
else
	skip "no /dev/full"
fi

# --- durations ------------------------------------------------------------------
# 0 is no timeout (wait forever); a negative or non-numeric value is a usage error
for v in -1 x 1s inf; do
	err=$(vm-qmp -s "$T/none.sock" --timeout "$v" query-status 2>&1)
	check_eq "vm-qmp --timeout $v: exit 2" "$?" 2
	check_match "...naming the option" "$err" "^vm-qmp: --timeout $v: expected seconds, 0 \(no timeout\) to "
done
err=$(vm-qmp -s "$T/none.sock" --timeout 0 query-status 2>&1)
check_eq "vm-qmp --timeout 0 is accepted (the socket is missing: exit 1)" "$?" 1
vm-create -q -N none "$T/d.utm" >/dev/null
for opt in "vm-run --timeout" "vm-run --stop-timeout" "vm-stop --timeout" "vm-stop -t"; do
	t=${opt%% *} o=${opt#* } name=${opt#* }
	[ "$o" = -t ] && name=--timeout
	for v in -1 x 1s inf 2000001; do
		err=$($t "$o" "$v" "$T/d.utm" 2>&1 </dev/null)
		check_eq "$t $o $v: exit 2" "$?" 2
		check_match "...naming the option" "$err" "^$t: $name $v: expected seconds, 0 \(no timeout\) to "
	done
done
check_status "vm-stop --timeout 0 B (not running): exit 0" 0 vm-stop -q --timeout 0 "$T/d.utm"
check_status "vm-stop -t 0.5 B: fractions are seconds too" 0 vm-stop -q -t 0.5 "$T/d.utm"
# --timeout bounds a foreground VM; 0 (no deadline) goes with --detach too
check_status "vm-run --detach --timeout 1: usage error 2" 2 vm-run --detach --timeout 1 "$T/none.utm" 2>/dev/null
check_status "vm-run --detach --timeout 0 is accepted (no such bundle: exit 1)" 1 \
	vm-run --detach --timeout 0 --stop-timeout 0 "$T/none.utm" 2>/dev/null

# --- a library that cannot be opened is an error, not an exit ------------------
# A libplist without its functions (as a too old one would be): the bundle
# with a config.plist fails to open, the tool goes on with the others.
if command -v cc >/dev/null 2>&1; then
	mkdir -p "$T/fakelib" "$T/vms"
	echo 'int not_libplist;' >"$T/fake.c"
	cc -shared -fPIC -o "$T/fakelib/libplist-2.0.so.3" "$T/fake.c"
	vm-create -q -N none "$T/vms/a.utm" >/dev/null
	mkdir "$T/vms/u.utm"
	cp "$VM_TOP/tests/samples/apple-backend-linux.config.plist" "$T/vms/u.utm/config.plist"
	out=$(LD_LIBRARY_PATH=$T/fakelib vm-ls "$T/vms" 2>"$T/err")
	check_eq "vm-ls with no usable libplist: exit 1" "$?" 1
	check_match "...lists the vm.conf bundle" "$out" "^a +stopped "
	check_match "...and the other as invalid" "$out" " invalid .*/vms/u\.utm$"
	check_match "...saying why" "$(cat "$T/err")" \
		"^vm-ls: cannot read or write config.plist: libplist: no plist_[a-z_]+ \(libplist-2.0.so.3 too old\?\)$"
	check_match "...while a usable libplist reads it" "$(vm-ls "$T/vms" 2>&1)" " stopped .*/vms/u\.utm$"
else
	skip "no C compiler for a fake libplist"
fi

# --- vm-disk: one table, each subcommand with its own options -------------------
help=$(vm-disk --help 2>&1)
check_eq "vm-disk --help exits 0" "$?" 0
for o in --help --version --quiet --verbose --timeout; do
	check_match "vm-disk --help lists $o" "$help" "^  -[a-zA-Z], $o( |\$)"
done
bad=""
for o in $(printf '%s\n' "$help" | grep -E '^ +-' | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u); do
	case $o in --help | --version) continue ;; esac
	err=$(timeout 10 vm-disk "$o" </dev/null 2>&1 >/dev/null)
	case $err in *unrecognized*) bad="$bad $o" ;; esac
done
check_eq "vm-disk takes every long option its --help lists" "$bad" ""
err=$(vm-disk --no-such-option 2>&1 >/dev/null)
check_eq "vm-disk --no-such-option: exit 2" "$?" 2
check_match "...with the usage lines" "$err" "^usage: vm-disk "
vm-create -q -N none "$T/d.utm" >/dev/null
vm-disk -q "$T/d.utm" create hd0 1M
err=$(vm-disk "$T/d.utm" list --force 2>&1)
check_eq "vm-disk B list --force: exit 2" "$?" 2
check_eq "...naming the option and the subcommand" "$err" "vm-disk: --force: not an option of list"
err=$(vm-disk mkiso "$T/x.iso" "$T" --id x 2>&1)
check_eq "vm-disk mkiso --id: exit 2" "$?" 2
check_eq "...naming the option" "$err" "vm-disk: --id: not an option of mkiso"
check_status "vm-disk B list --json -t 5 (--timeout: any subcommand's)" 0 vm-disk "$T/d.utm" list --json -t 5 >/dev/null
check_status "vm-disk B snapshot list --timeout 0 (0: no timeout)" 0 vm-disk --timeout 0 "$T/d.utm" snapshot list >/dev/null
err=$(vm-disk --timeout -1 "$T/d.utm" list 2>&1)
check_eq "vm-disk --timeout -1: exit 2" "$?" 2
check_match "...naming the option" "$err" "^vm-disk: --timeout -1: expected seconds, 0 \(no timeout\) to "
if [ -w /dev/full ]; then
	vm-disk --help >/dev/full 2>"$T/err"
	check_eq "vm-disk --help >/dev/full: exit 1" "$?" 1
	check_match "...saying why" "$(cat "$T/err")" "^vm-disk: stdout: No space left on device$"
	check_status "vm-disk B list >/dev/full: exit 1" 1 vm-disk "$T/d.utm" list >/dev/full 2>/dev/null
	check_status "vm-disk B list --json >/dev/full: exit 1" 1 vm-disk "$T/d.utm" list --json >/dev/full 2>/dev/null
	check_status "vm-disk B snapshot list >/dev/full: exit 1" 1 vm-disk "$T/d.utm" snapshot list >/dev/full 2>/dev/null
else
	skip "no /dev/full"
fi

echo "1..$_n"
