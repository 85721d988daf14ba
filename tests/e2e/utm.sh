#!/bin/sh
# UTM bundles (config.plist): every sample in ../shared/utm-samples opens,
# shows as JSON, starts real QEMU paused where that QEMU is installed, and
# survives vm-config set with every other plist key unchanged.
. "$(dirname "$0")/lib.sh"

SAMPLES=${UTM_SAMPLES:-$VM_TOP/tests/samples}
if [ ! -d "$SAMPLES" ]; then
	skip "no UTM samples at $SAMPLES"
	exit 0
fi

qmp_status() {
	# through vm-qmp, which waits for a slow QEMU as long as -t allows
	vm-qmp -t 60 -s "$1" query-status 2>/dev/null | jq -r '.status // empty' 2>/dev/null
	vm-qmp -q -t 10 -s "$1" quit >/dev/null 2>&1
}

unzip_to() {
	if command -v bsdtar >/dev/null; then
		bsdtar -xf "$1" -C "$2"
	else
		python3 -m zipfile -e "$1" "$2"
	fi
}

# plist_json FILE: the plist as canonical JSON (python's plistlib), for diffs.
plist_json() {
	python3 -c 'import json,plistlib,sys,datetime
def conv(o):
    if isinstance(o, bytes): return o.hex()
    if isinstance(o, datetime.datetime): return o.isoformat()
    raise TypeError(o)
print(json.dumps(plistlib.load(open(sys.argv[1],"rb")), sort_keys=True, indent=1, default=conv))' "$1"
}

mkdir -p "$T/x"
for z in "$SAMPLES"/*.utm.zip; do
	unzip_to "$z" "$T/x" || not_ok "$(basename "$z"): cannot extract"
done
rm -rf "$T/x/__MACOSX"

for b in "$T"/x/*.utm; do
	name=$(basename "$b" .utm)
	json=$(vm-config "$b" show --json 2>"$T/err")
	check "$name: vm-config show --json" test -n "$json"
	ndrives=$(printf '%s' "$json" | jq '.drives | length')
	want=$(python3 -c 'import plistlib,sys
p=plistlib.load(open(sys.argv[1],"rb"))
d=p.get("Drive", p.get("Drives", []))
print(sum(1 for x in d if x.get("ImageType","disk") in ("Disk","CD","None","disk","cd")))' "$b/config.plist")
	check_eq "$name: drives as UTM lists them" "$ndrives" "$want"
	arch=$(vm-config "$b" get arch 2>/dev/null)
	if ! command -v "qemu-system-$arch" >/dev/null; then
		skip "$name: qemu-system-$arch not installed"
		continue
	fi
	# placeholder images for what the config.zip left out
	ddir="$b/Data"
	[ -d "$b/Images" ] && ddir="$b/Images"
	printf '%s' "$json" | jq -r '.drives[].image // empty, .bios // empty, .kernel // empty' |
		while read -r f; do
			[ -e "$ddir/$f" ] && continue
			case "$f" in
			*.qcow2) qemu-img create -q -f qcow2 "$ddir/$f" 64M ;;
			*) truncate -s 1M "$ddir/$f" ;;
			esac
		done
	ev=$(vm-config "$b" get efi_vars 2>/dev/null) && [ ! -e "$ddir/$ev" ] &&
		cp /usr/share/OVMF/OVMF_VARS_4M.fd "$ddir/$ev"
	export XDG_RUNTIME_DIR="$T/run-$arch"
	mkdir -p -m 700 "$XDG_RUNTIME_DIR"
	uuid=$(vm-config "$b" get uuid)
	sock="$XDG_RUNTIME_DIR/vm/$uuid/qmp.sock"
	if ! vm-argv -0 -S --accel tcg "$b" >"$T/$arch.argv0" 2>"$T/$arch.argverr"; then
		not_ok "$name: vm-argv failed: $(cat "$T/$arch.argverr")"
		continue
	fi
	if qemu_bg "$T/$arch.argv0" "$sock" "$T/$arch.err"; then
		status=$(qmp_status "$sock")
		check_eq "$name: real qemu-system-$arch starts paused and answers query-status" "$status" "prelaunch"
	elif [ "$arch" = m68k ] && grep -qi "rom\|bios" "$T/$arch.err"; then
		# a placeholder Quadra800.rom is not a Mac ROM: QEMU says so clearly
		ok "$name: QEMU refuses the placeholder Mac ROM clearly ($(head -n 1 "$T/$arch.err"))"
	else
		not_ok "$name: QEMU refused the argv: $(tail -n 2 "$T/$arch.err")"
	fi
	qemu_bg_stop
done

# Round trip: set one key, only that key changes in the plist.
b=$(ls -d "$T"/x/macOS*.utm | head -n 1)
if [ -n "$b" ]; then
	plist_json "$b/config.plist" >"$T/before.json"
	check "macOS 12: vm-config set memory 1G" vm-config "$b" set memory 1G
	plist_json "$b/config.plist" >"$T/after.json"
	check_eq "macOS 12: MemorySize is 1024" "$(jq .System.MemorySize "$T/after.json")" "1024"
	jq 'del(.System.MemorySize)' "$T/before.json" >"$T/b2.json"
	jq 'del(.System.MemorySize)' "$T/after.json" >"$T/a2.json"
	check "macOS 12: every other key unchanged" cmp -s "$T/b2.json" "$T/a2.json"
	check_eq "macOS 12: re-reads as 1024" "$(vm-config "$b" get memory)" "1024"
	vm-config "$b" set net.net0.forward tcp::2222-:22 >/dev/null 2>&1
	check_eq "macOS 12: port forward written in UTM's keys" \
		"$(plist_json "$b/config.plist" | jq -c '.Network[0].PortForward')" \
		'[{"GuestPort":22,"HostPort":2222,"Protocol":"TCP"}]'
	check_status "macOS 12: vnc display refused (config.plist has no place)" 1 \
		vm-config "$b" set display vnc 2>/dev/null
fi

# A legacy (ConfigurationVersion 2) bundle is read-only with a notice.
b=$(ls -d "$T"/x/Mac\ OS\ 9*.utm | head -n 1)
if [ -n "$b" ]; then
	err=$(vm-config "$b" show 2>&1 >/dev/null)
	check_match "Mac OS 9: legacy notice" "$err" "ConfigurationVersion 2.*read-only"
	check_status "Mac OS 9: set refused" 1 vm-config "$b" set memory 512 2>/dev/null
	before=$(vm-config "$b" show 2>/dev/null)
	check "Mac OS 9: upgrade" vm-config -q "$b" upgrade
	check "Mac OS 9: Images/ became Data/" test -f "$b/Data/Mac OS 9.2.2.qcow2" -a ! -e "$b/Images" -a ! -e "$b/view.plist"
	check_eq "Mac OS 9: ConfigurationVersion 4" \
		"$(plist_json "$b/config.plist" | jq -r '"\(.Backend) \(.ConfigurationVersion) \(.Sound[0].Hardware) \(.Information.Icon)"')" \
		"QEMU 4 screamer MacOS9.2.2.icns"
	check_eq "Mac OS 9: same model after the upgrade" "$(vm-config "$b" show 2>/dev/null)" "$before"
	check "Mac OS 9: writable after the upgrade" vm-config "$b" set memory 512
	if command -v qemu-system-ppc >/dev/null; then
		export XDG_RUNTIME_DIR="$T/run-upgraded"
		mkdir -p -m 700 "$XDG_RUNTIME_DIR"
		vm-argv -0 -S --accel tcg "$b" >"$T/up.argv0" 2>/dev/null
		if qemu_bg "$T/up.argv0" "$XDG_RUNTIME_DIR/vm/$(vm-config "$b" get uuid)/qmp.sock" "$T/up.err"; then
			check_eq "Mac OS 9 upgraded: qemu-system-ppc starts paused" \
				"$(qmp_status "$XDG_RUNTIME_DIR/vm/$(vm-config "$b" get uuid)/qmp.sock")" "prelaunch"
		else
			not_ok "Mac OS 9 upgraded: QEMU refused the argv: $(tail -n 2 "$T/up.err")"
		fi
		qemu_bg_stop
	fi
fi

# Errors name the file and the key path.
bad="$T/bad.utm"
mkdir -p "$bad/Data"
cp "$T/x/System 7.5.3 (Config Only).utm/config.plist" "$bad/config.plist" 2>/dev/null &&
	sed -i 's|<string>m68k</string>|<string>vax</string>|' "$bad/config.plist"
err=$(vm-config "$bad" show 2>&1)
check_match "bad architecture: file and key path" "$err" "bad.utm/config.plist: System.Architecture: 'vax' is not one of"
head -c 300 "$T/x/System 7.5.3 (Config Only).utm/config.plist" >"$bad/config.plist"
check_status "truncated config.plist: clear error" 1 vm-config "$bad" show 2>/dev/null

# Apple backend: show works; a macOS guest is refused by vm-argv.
ap="$T/apple.utm"
mkdir -p "$ap/Data"
sed 's/XXX_VM_ID/11111111-2222-4333-8444-555555555555/; s/XXX_NAME/apple/' \
	"$SAMPLES/apple-backend-linux.config.plist" >"$ap/config.plist"
check_eq "Apple: memory" "$(vm-config "$ap" get memory)" "4096"
check_eq "Apple: cpus" "$(vm-config "$ap" get cpus)" "2"
sed -i 's|<string>Linux</string>|<string>macOS</string>|' "$ap/config.plist"
err=$(vm-argv "$ap" 2>&1)
check_match "Apple macOS guest refused" "$err" "a macOS guest needs Apple's Virtualization.framework; it cannot run on QEMU"

# libplist is opened only when a config.plist is read: a vm.conf bundle's
# tools never load it (start-up time), a UTM bundle's do. Not under valgrind,
# whose own loader would answer LD_DEBUG.
if [ "${VM_VALGRIND:-}" != 1 ]; then
	vm-create -q "$T/plain" >/dev/null
	libs=$(LD_DEBUG=libs vm-config "$T/plain.utm" get uuid 2>&1 >/dev/null)
	check_eq "vm.conf bundle: libplist not loaded" "$(printf '%s\n' "$libs" | grep -c 'libplist')" 0
	libs=$(LD_DEBUG=libs vm-config "$ap" get memory 2>&1 >/dev/null)
	check_match "config.plist bundle: libplist loaded on demand" "$libs" "calling init: .*libplist-2.0.so"
fi

# vm-create --from an archive that lacks a drive's image ("config only"
# bundles): a warning naming the drive and the image, and how to make one;
# the archive's screenshot and custom icon stay (UTM shows them).
mac="$SAMPLES/macOS 12 X86-64 (config only).utm.zip"
if [ -f "$mac" ] && command -v zip >/dev/null; then
	cp "$mac" "$T/noimg.zip"
	zip -q -d "$T/noimg.zip" "macOS 12 X86-64 (config only).utm/Data/disk-0.qcow2"
	err=$(vm-create -q --from "$T/noimg.zip" "$T/noimg.utm" 2>&1)
	check_eq "import without an image: succeeds" "$?" 0
	check_match "import without an image: warns, naming drive and image" "$err" \
		"noimg.utm: drive [A-Za-z0-9_-]+: its image disk-0.qcow2 is not in the archive"
	check_match "import without an image: says how to make it (UTM's 10 GiB)" "$err" \
		"qemu-img create -f qcow2 .*noimg.utm/Data/disk-0.qcow2'? 10G"
	check_eq "import without an image: one warning (the others are there)" "$(printf '%s\n' "$err" | grep -c 'not in the archive')" 1
	check "import keeps screenshot.png" test -s "$T/noimg.utm/screenshot.png"
	check "import keeps the custom icon" test -s "$T/noimg.utm/Data/macOS12.png"
	err=$(vm-create -q --from "$mac" "$T/withimg.utm" 2>&1)
	check "import with every image: no such warning" sh -c "! printf '%s' '$err' | grep -q 'not in the archive'"
else
	skip "no macOS 12 sample or no zip"
fi

echo "1..$_n"
