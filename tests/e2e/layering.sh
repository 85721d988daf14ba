#!/bin/sh
# The library's layering: lib/ modules (X.c with X.h) include each other
# without a cycle, and nothing in lib/ exits: errors are returned (char
# **err), exits are the tools' (cmd/tool.c).
. "$(dirname "$0")/lib.sh"
LIB=$VM_TOP/lib

# The module graph: an edge "A B" when A.c or A.h includes "B.h" (B in lib/).
for f in "$LIB"/*.c "$LIB"/*.h; do
	a=$(basename "$f"); a=${a%.*}
	echo "$a $a"
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' "$f" | while read -r b; do
		[ -f "$LIB/$b.h" ] && [ "$b" != "$a" ] && echo "$a $b"
	done
done | sort -u >"$T/edges"
check "the include graph has edges" test "$(wc -l <"$T/edges")" -gt 20
if tsort "$T/edges" >"$T/order" 2>"$T/tsort.err"; then
	ok "lib/ has no include cycle ($(wc -l <"$T/order") modules)"
else
	not_ok "lib/ has an include cycle: $(grep -v 'input contains a loop' "$T/tsort.err" | sed 's/^tsort: //' | tr '\n' ' ')"
fi
# a cycle this check must find (so it is not blind)
{ cat "$T/edges"; echo "util config"; } >"$T/edges.bad"
check "...and it would see one (util -> config -> util)" sh -c '! tsort "$1" >/dev/null 2>&1' _ "$T/edges.bad"
check_eq "the codecs depend on the model only (and dl, util)" \
	"$(grep -E '^config_(vmconf|plist|json) ' "$T/edges" | awk '$1 != $2 { print $2 }' | sort -u | tr '\n' ' ')" \
	"config dl "
check_eq "the model knows no bundle or codec" \
	"$(awk '$1 == "config" && $2 != "config" { print $2 }' "$T/edges" | tr '\n' ' ')" "util "

# No exit in lib/ (a forked child's _exit is not the library ending its caller).
hits=$(grep -nE '(^|[^_a-zA-Z0-9])(exit|quick_exit|_Exit)[[:space:]]*\(' "$LIB"/*.c | sed "s|^$LIB/||")
check_eq "no exit() in lib/" "$hits" ""
# Nor the tool layer's exiting helpers.
awk -v lib="$LIB/" '
	/^[a-zA-Z].*\(/ && !/;[[:space:]]*$/ { fn = $0; sub(/\(.*/, "", fn); sub(/.*[ *]/, "", fn) }
	/(^|[^_a-zA-Z0-9])(vm_errx|vm_err|vm_exit_error|usage_exit|version_exit|cli_common|bundle_open_or_die|bundle_open_flags_or_die|tool_[a-z_]+)[[:space:]]*\(/ {
		f = FILENAME; sub(lib, "", f)
		print f ":" FNR ": " fn
	}
' "$LIB"/*.c >"$T/calls"
check_eq "no call in lib/ of the tool layer's exiting helpers" "$(tr '\n' ' ' <"$T/calls")" ""
check_eq "lib/ includes nothing from cmd/" "$(grep -l '#include "\.\./cmd\|#include "tool\.h"' "$LIB"/*.[ch])" ""

echo "1..$_n"
