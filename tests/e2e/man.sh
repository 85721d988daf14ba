#!/bin/sh
# The manual pages: mandoc finds nothing to warn about, every page documents
# exactly the long options its tool's --help lists, and utm-bundle(5)
# documents every configuration key.
. "$(dirname "$0")/lib.sh"
LC_ALL=C
export LC_ALL
MAN="$VM_TOP/man"
_failed=0
not_ok() { _failed=$((_failed + 1)); _n=$((_n + 1)); echo "not ok $_n - $*"; }

if ! command -v mandoc >/dev/null 2>&1; then
	skip "mandoc is not installed"
	echo "1..$_n"
	exit 0
fi

# The page as plain text: mandoc's overstrike (bold, underline) removed.
render() {
	mandoc -T ascii "$1" | sed 's/.\x08//g'
}

# Long options in a text: --word, not preceded by a word character or dash.
long_opts() {
	grep -oE -- '(^|[^A-Za-z0-9_-])--[A-Za-z0-9][A-Za-z0-9-]*' | sed 's/^[^-]*--/--/' | sort -u
}

# The sections of a rendered page where a tool's own options are documented:
# SYNOPSIS and OPTIONS, or DESCRIPTION when a page has no OPTIONS section.
# (EXAMPLES and SEE ALSO may well show other tools' options.)
option_text() {
	if grep -qx 'OPTIONS' "$1"; then
		want='sec == "SYNOPSIS" || sec == "OPTIONS"'
	else
		want='sec == "SYNOPSIS" || sec == "DESCRIPTION"'
	fi
	awk "/^[A-Z][A-Z ]*[A-Z]\$/ { sec = \$0; next } $want" "$1"
}

npages=0
for page in "$MAN"/*.[15]; do
	[ -f "$page" ] || continue
	npages=$((npages + 1))
	name=${page##*/}
	out=$(mandoc -T lint -W warning "$page" 2>&1)
	if [ -z "$out" ]; then
		ok "mandoc -T lint -W warning $name is silent"
	else
		not_ok "mandoc -T lint -W warning $name: $(printf '%s\n' "$out" | wc -l) messages, first: $(printf '%s\n' "$out" | head -n 1)"
	fi
done
[ "$npages" -gt 0 ] || not_ok "no manual pages in $MAN"

# Every tool with a page: --help and the page list the same long options.
for page in "$MAN"/vm-*.1; do
	[ -f "$page" ] || continue
	name=${page##*/}
	tool=${name%.1}
	if [ ! -x "$VM_BIN/$tool" ]; then
		skip "$name: bin/$tool is not built"
		continue
	fi
	"$VM_BIN/$tool" --help >"$T/help" 2>&1
	long_opts <"$T/help" >"$T/help.opts"
	render "$page" >"$T/page.txt"
	long_opts <"$T/page.txt" >"$T/page.all"
	option_text "$T/page.txt" | long_opts >"$T/page.opts"
	if [ ! -s "$T/help.opts" ]; then
		not_ok "$tool --help lists no long options"
		continue
	fi
	missing=$(comm -23 "$T/help.opts" "$T/page.all" | tr '\n' ' ')
	check_eq "$name documents every long option of $tool --help" "$missing" ""
	extra=$(comm -13 "$T/help.opts" "$T/page.opts" | tr '\n' ' ')
	check_eq "$name documents no long option $tool --help lacks" "$extra" ""
done

# utm-bundle(5): every key of vm-config keys is an item (.It Ic KEY) in the
# subsection for its section, and every such item is a real key.
bundle_page="$MAN/utm-bundle.5"
if [ ! -f "$bundle_page" ]; then
	not_ok "man/utm-bundle.5 exists"
elif [ ! -x "$VM_BIN/vm-config" ]; then
	skip "utm-bundle.5 keys: bin/vm-config is not built"
else
	"$VM_BIN/vm-config" keys | awk '{ print $1 }' | sed 's/\.ID\./../' | sort -u >"$T/keys"
	# .Ss headings name the section kind; items are ".It Ic key ..."
	awk '
		/^\.Sh / { kind = ""; next }
		/^\.Ss / {
			h = tolower($0)
			kind = h ~ /keys/ && h ~ /global|top/ ? "top" : \
			       h ~ /drive/ ? "drive" : h ~ /serial/ ? "serial" : \
			       h ~ /share/ ? "share" : h ~ /net/ ? "net" : ""
			next
		}
		kind != "" && /^\.It Ic [a-z_]+/ {
			print (kind == "top" ? "" : kind "..") $3
		}
	' "$bundle_page" | sort -u >"$T/documented"
	nkeys=$(wc -l <"$T/keys")
	check "vm-config keys lists keys" test "$nkeys" -gt 10
	missing=$(comm -23 "$T/keys" "$T/documented" | sed 's/\.\./.ID./' | tr '\n' ' ')
	check_eq "utm-bundle.5 documents every key of vm-config keys" "$missing" ""
	extra=$(comm -13 "$T/keys" "$T/documented" | sed 's/\.\./.ID./' | tr '\n' ' ')
	check_eq "utm-bundle.5 documents no key vm-config lacks" "$extra" ""
fi

echo "1..$_n"
[ "$_failed" -eq 0 ]
