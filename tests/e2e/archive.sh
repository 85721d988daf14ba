#!/bin/sh
# vm-pack and vm-create --from: round trips through zip, tar.gz and tar.zst,
# stdin/stdout, a sparse 20 GiB image, UTM's own .utm.zip samples, hostile
# archives, usage errors, and interrupted runs that must leave nothing behind.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
SAMPLES=${VM_SAMPLES:-$VM_TOP/tests/samples}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
# no bundle, no temporary folder or file left in the current folder
nothing_left() { ! ls -a | grep -q -e "$1" -e '\.tmp\.'; }
# vm.conf without its identity lines
conf_sans_id() { grep -v -e '^uuid = ' -e "mac = " "$1"; }

vm-create -q --disk 1G --name "Src VM" src
B=src.utm
echo "some notes" >"$B/Data/file with space é.txt"
ln -s "file with space é.txt" "$B/Data/link"
dd if=/dev/urandom of="$B/Data/hd0.qcow2" bs=64k count=4 seek=8 conv=notrunc status=none
uuid0=$(vm-config $B get uuid)
mac0=$(vm-config $B get net.net0.mac)

for fmt in utm.zip tar.gz tar.zst; do
	check_status "vm-pack to .$fmt" 0 vm-pack $B "out.$fmt"
	check_eq "vm-pack prints nothing (.$fmt)" "$(vm-pack -f $B "out.$fmt" 2>&1)" ""
	out=$(vm-create --from "out.$fmt" "new-$fmt")
	check_eq "vm-create --from .$fmt prints the path" "$out" "new-$fmt.utm"
	N="new-$fmt.utm"
	check "the disk is byte for byte the same (.$fmt)" cmp -s $B/Data/hd0.qcow2 "$N/Data/hd0.qcow2"
	check "other files come along (.$fmt)" cmp -s "$B/Data/file with space é.txt" "$N/Data/file with space é.txt"
	check_eq "a link inside the bundle stays a link (.$fmt)" "$(readlink "$N/Data/link")" "file with space é.txt"
	check "the config is the same but for UUID and MAC (.$fmt)" \
		sh -c "[ \"\$(grep -v -e '^uuid = ' -e 'mac = ' $B/vm.conf)\" = \"\$(grep -v -e '^uuid = ' -e 'mac = ' '$N/vm.conf')\" ]"
	u=$(vm-config "$N" get uuid)
	check_match "a fresh UUID (.$fmt)" "$u" '^[0-9A-F]{8}-'
	check "the UUID is new (.$fmt)" test "$u" != "$uuid0"
	check "the MAC is new (.$fmt)" test "$(vm-config "$N" get net.net0.mac)" != "$mac0"
	check_eq "the name is kept (.$fmt)" "$(vm-config "$N" get name)" "Src VM"
	vm-create -q --keep-identity --from "out.$fmt" "kept-$fmt"
	check "--keep-identity: vm.conf byte for byte (.$fmt)" cmp -s $B/vm.conf "kept-$fmt.utm/vm.conf"
done
check "the zip is UTM's layout: one src.utm/ folder" sh -c "unzip -Z1 out.utm.zip | grep -v '^src.utm/' | wc -l | grep -qx 0"
# UTM reads config.plist: a zip of a vm.conf bundle carries one made from it
if command -v python3 >/dev/null; then
	unzip -p out.utm.zip src.utm/config.plist >utm.plist
	check "the zip's config.plist has UTM's ten sections, the UUID and the MAC" python3 -c "
import plistlib, sys
p = plistlib.load(open('utm.plist', 'rb'))
dicts = ['Information', 'System', 'QEMU', 'Input', 'Sharing']
arrays = ['Display', 'Drive', 'Network', 'Serial', 'Sound']
ok = all(isinstance(p.get(k), dict) for k in dicts) and all(isinstance(p.get(k), list) for k in arrays)
ok = ok and p['ConfigurationVersion'] == 4 and p['Backend'] == 'QEMU'
ok = ok and p['Information']['UUID'] == '$uuid0' and p['Network'][0]['MacAddress'].lower() == '$mac0'
sys.exit(0 if ok else 1)"
fi
mkdir -p plonly && (cd plonly && unzip -q ../out.utm.zip && rm src.utm/vm.conf)
check_eq "the config.plist decodes to the same configuration" \
	"$(vm-config plonly/src.utm show --json | jq -S 'del(.name)')" "$(vm-config $B show --json | jq -S 'del(.name)')"
check "importing the zip keeps vm.conf and drops the made config.plist" \
	sh -c "test -f new-utm.zip.utm/vm.conf && test ! -e new-utm.zip.utm/config.plist"
# ... unless UTM changed config.plist after the packing: then it wins
if command -v python3 >/dev/null; then
	(cd plonly && unzip -qo ../out.utm.zip src.utm/vm.conf && touch -d '+1 hour' src.utm/config.plist &&
		python3 -c "
import os, zipfile
with zipfile.ZipFile('../edited.zip', 'w', zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk('src.utm'):
        for f in files: z.write(os.path.join(root, f))")
	vm-create --from edited.zip edited >/dev/null 2>err.txt
	check "a config.plist newer than vm.conf wins" sh -c "test -f edited.utm/config.plist && test ! -e edited.utm/vm.conf"
	check_match "with a notice" "$(cat err.txt)" "edited.utm: config.plist is newer than vm.conf"
fi
check "the tar.gz lists with GNU tar, without warnings" sh -c "tar tzf out.tar.gz 2>&1 >/dev/null | wc -c | grep -qx 0"

# stdin and stdout
check "pack to stdout, import from stdin" sh -c "vm-pack --format tar.zst $B - | vm-create -q --from - piped"
check "the piped copy has the disk" cmp -s $B/Data/hd0.qcow2 piped.utm/Data/hd0.qcow2
check "a zip through a pipe" sh -c "vm-pack -F zip $B - | vm-create -q --from - pipedzip && cmp -s $B/Data/hd0.qcow2 pipedzip.utm/Data/hd0.qcow2"
check_eq "no progress in a pipe" "$(vm-pack -F tar $B - 2>&1 >/dev/null | wc -c)" 0

# A 20 GiB raw image holding 50 MiB: time and space follow the 50 MiB.
S=sparse.utm
vm-create -q sparse
truncate -s 20G $S/Data/big.raw
for off in 0 2000 7000 13000 20470; do # MiB
	dd if=/dev/urandom of=$S/Data/big.raw bs=1M count=10 seek=$off conv=notrunc status=none
done
sum_regions() { for off in 0 2000 7000 13000 20470; do dd if="$1" bs=1M count=10 skip=$off status=none; done | md5sum; }
want=$(sum_regions $S/Data/big.raw)
t0=$(now)
vm-pack $S sparse.tar.zst
tp=$(elapsed "$t0")
size=$(stat -c %s sparse.tar.zst)
echo "# sparse 20 GiB/50 MiB: pack ${tp}s, archive $size bytes"
check "the archive is about the data's size (< 55 MiB): $size" test "$size" -lt 57671680
check "packing takes seconds, not minutes: ${tp}s" lt "$tp" 10
t0=$(now)
vm-create -q --from sparse.tar.zst sparse2
tu=$(elapsed "$t0")
used=$(du -k sparse2.utm/Data/big.raw | cut -f1)
echo "# sparse 20 GiB/50 MiB: unpack ${tu}s, du ${used} KiB"
check "unpacking takes seconds: ${tu}s" lt "$tu" 10
check "the unpacked image is sparse: du ${used} KiB" test "$used" -lt 56320
check_eq "the unpacked image has its full size" "$(stat -c %s sparse2.utm/Data/big.raw)" 21474836480
check_eq "the data regions are intact" "$(sum_regions sparse2.utm/Data/big.raw)" "$want"
check_eq "the holes read as zeros" "$(dd if=sparse2.utm/Data/big.raw bs=1M skip=5000 count=1 status=none | tr -d '\0' | wc -c)" 0
# zip has no sparse entries: the zeros are deflated, and unzipped as holes
truncate -s 1G zs.raw && mkdir -p zsparse.utm/Data && mv zs.raw zsparse.utm/Data/ && cp sparse.utm/vm.conf zsparse.utm/
dd if=/dev/urandom of=zsparse.utm/Data/zs.raw bs=1M count=4 seek=600 conv=notrunc status=none
vm-pack zsparse.utm zsparse.zip
vm-create -q --from zsparse.zip zsparse2
used=$(du -k zsparse2.utm/Data/zs.raw | cut -f1)
check "a zipped image unpacks sparse: du ${used} KiB" test "$used" -lt 8192
check "and equal" cmp -s zsparse.utm/Data/zs.raw zsparse2.utm/Data/zs.raw

# Progress shows on a terminal (script(1) gives one), after the first second.
if command -v script >/dev/null; then
	script -qfec "vm-pack zsparse.utm tty.zip" /dev/null >tty.out 2>&1
	check_match "progress on a terminal" "$(tr '\r' '\n' <tty.out)" "vm-pack: tty.zip: packed [0-9.]+ [KMG]iB of 1.0 GiB"
	check "the progress line is cleared at the end" sh -c "tail -c 4 tty.out | od -c | grep -q '\\[   K'"
	rm -f tty.zip
else
	skip "script(1) not installed"
fi

# UTM's own archives: each extracts whole, and opens.
found=0
for z in "$SAMPLES"/*.utm.zip; do
	[ -f "$z" ] || continue
	found=1
	n=$(basename "$z" .utm.zip)
	N="imp-$n.utm"
	check_status "import $n" 0 vm-create -q --from "$z" "imp-$n"
	check "$n: config.plist and Data/ (or UTM 3's Images/)" sh -c "test -f '$N/config.plist' && { test -d '$N/Data' || test -d '$N/Images'; }"
	check "$n: no __MACOSX or AppleDouble files" sh -c "! find '$N' -name '__MACOSX' -o -name '._*' | grep -q ."
	want=$(unzip -Z1 "$z" | grep -v -e '^__MACOSX/' -e '/$' | sed "s|^[^/]*/||" | sort)
	got=$(cd "$N" && find . -type f | sed 's|^\./||' | sort)
	check_eq "$n: every file of the zip" "$got" "$want"
	check "$n: vm-config show works" sh -c "vm-config '$N' show >/dev/null 2>&1"
	mkdir -p orig && (cd orig && unzip -qo "$z")
	orig_uuid=$(vm-config "orig/$n.utm" get uuid 2>/dev/null)
	if vm-config "$N" show 2>&1 | grep -q "read-only"; then
		check_eq "$n: read-only UTM 3 bundle keeps its UUID" "$(vm-config "$N" get uuid 2>/dev/null)" "$orig_uuid"
	else
		check "$n: a new UUID" test "$(vm-config "$N" get uuid 2>/dev/null)" != "$orig_uuid"
		check_eq "$n: only UUID and MAC lines differ in config.plist" \
			"$(diff "orig/$n.utm/config.plist" "$N/config.plist" | grep '^[<>]' | grep -v -e '<string>[0-9A-F-]\{36\}</string>' -e '<string>[0-9A-Fa-f:]\{17\}</string>')" ""
	fi
done
[ "$found" = 1 ] || skip "no UTM samples in $SAMPLES"

# Hostile archives (crafted with Python): one line naming archive and entry,
# status 1, nothing created, nothing outside.
hostile() { # hostile DESC PATTERN ARCHIVE
	vm-create --from "$3" victim 2>err.txt >/dev/null
	got=$?
	if [ "$got" -ne 1 ]; then
		not_ok "$1: status $got, wanted 1"
	elif [ "$(wc -l <err.txt)" -ne 1 ] || ! grep -Eq -- "^vm-create: $3: $2" err.txt; then
		not_ok "$1: message '$(cat err.txt)' lacks /$2/"
	elif ! nothing_left victim; then
		not_ok "$1: something was left behind: $(ls -a)"
	elif [ -e "$T/evil" ] || [ -e /tmp/utmkit-evil ]; then
		not_ok "$1: wrote outside"
	else
		ok "$1"
	fi
}
if command -v python3 >/dev/null; then
	python3 - <<'EOF'
import io, tarfile, zipfile
def tar(name, entries, mode="w"):
    with tarfile.open(name, mode) as t:
        for e in entries:
            ti = tarfile.TarInfo(e[0])
            kind = e[1]
            if kind == "file":
                data = e[2].encode(); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
            else:
                if kind == "dir": ti.type = tarfile.DIRTYPE
                if kind == "sym": ti.type = tarfile.SYMTYPE; ti.linkname = e[2]
                if kind == "hard": ti.type = tarfile.LNKTYPE; ti.linkname = e[2]
                if kind == "chr": ti.type = tarfile.CHRTYPE; ti.devmajor, ti.devminor = 1, 3
                t.addfile(ti)
conf = ("x.utm/vm.conf", "file", "name = 'x'\n")
tar("slip.tar", [conf, ("x.utm/../../evil", "file", "x")])
tar("abs.tar.gz", [conf, ("/tmp/utmkit-evil", "file", "x")], "w:gz")
tar("symout.tar", [conf, ("x.utm/Data", "dir"), ("x.utm/Data/l", "sym", "/etc")])
tar("through.tar", [conf, ("x.utm/l", "sym", "Data"), ("x.utm/Data", "dir"), ("x.utm/l/evil", "file", "x")])
tar("hard.tar", [conf, ("x.utm/h", "hard", "/etc/passwd")])
tar("dev.tar", [conf, ("x.utm/Data/null", "chr")])
tar("two.tar", [conf, ("y.utm/vm.conf", "file", "x")])
tar("nobundle.tar", [("x.utm/readme", "file", "x")])
with zipfile.ZipFile("slip.zip", "w") as z:
    z.writestr("x.utm/vm.conf", "name = 'x'\n")
    z.writestr("x.utm/../../evil", "x")
# a zip whose entry inflates to 64 MiB while its headers say 1 MiB
with zipfile.ZipFile("bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("x.utm/vm.conf", "name = 'x'\n")
    z.writestr("x.utm/Data/bomb.img", bytes(64 << 20))
b = bytearray(open("bomb.zip", "rb").read())
real, claimed = (64 << 20).to_bytes(4, "little"), (1 << 20).to_bytes(4, "little")
for sig, off in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
    i = b.find(sig)
    while i >= 0:
        if b[i + off:i + off + 4] == real:
            b[i + off:i + off + 4] = claimed
        i = b.find(sig, i + 1)
open("bomb.zip", "wb").write(b)
EOF
	hostile "zip-slip in a tar" "x.utm/../../evil: a '..' in the path" slip.tar
	hostile "zip-slip in a zip" "x.utm/../../evil: a '..' in the path" slip.zip
	hostile "an absolute path" "/tmp/utmkit-evil: an absolute path" abs.tar.gz
	hostile "a symlink out" "x.utm/Data/l: a symbolic link to '/etc'" symout.tar
	hostile "a file through a link" "x.utm/l/evil: 'l' on its path is a link" through.tar
	hostile "a hard link" "x.utm/h: a hard link" hard.tar
	hostile "a device node" "x.utm/Data/null: a character device" dev.tar
	hostile "two top-level folders" "y.utm/vm.conf: a second top-level folder" two.tar
	hostile "not a bundle" "x.utm/ has no vm.conf or config.plist" nobundle.tar
	hostile "an entry bigger than declared" "x.utm/Data/bomb.img: more data than the 1048576 bytes" bomb.zip
else
	skip "python3 not installed: no hostile archives"
fi
head -c 100000 out.tar.gz >cut.tar.gz
hostile "a truncated archive" ".*(runcated|EOF|premature)" cut.tar.gz
echo "not an archive" >junk.zip
hostile "not an archive" "Unrecognized archive format" junk.zip
hostile "a missing archive" ".*No such file" nosuch.zip

# Interrupted: the temporary bundle or archive is removed.
vm-create -q --from zsparse.zip --keep-identity slow 2>/dev/null & # takes seconds
pid=$!
sleep "$(secs 0.5)"
kill -INT $pid
wait $pid
check "an interrupted import leaves nothing behind" nothing_left slow
vm-pack zsparse.zip slowpack.zip 2>/dev/null # not a bundle
vm-pack zsparse.utm slowpack.zip 2>/dev/null &
pid=$!
sleep "$(secs 0.5)"
kill -TERM $pid
wait $pid
check "an interrupted pack leaves nothing behind" nothing_left slowpack

# Usage and other errors
err() { # err DESC STATUS PATTERN CMD...
	d=$1 want=$2 pat=$3
	shift 3
	"$@" >/dev/null 2>err.txt
	got=$?
	if [ "$got" -ne "$want" ]; then
		not_ok "$d: status $got, wanted $want ($(cat err.txt))"
	elif ! grep -Eq -- "$pat" err.txt; then
		not_ok "$d: '$(cat err.txt)' lacks /$pat/"
	else
		ok "$d"
	fi
}
err "--keep-identity without --from" 2 "only with --from" vm-create --keep-identity x
err "--from with configuration options" 2 "no other configuration options" vm-create --from out.tar.gz --memory 1G x
err "import over an existing bundle" 1 "^vm-create: src.utm: already exists" vm-create --from out.tar.gz src
err "pack to stdout needs --format" 2 "give the format" vm-pack $B -
err "pack to an unknown type" 2 "unknown archive type" vm-pack $B out.rar
err "a bad --format" 2 "not one of zip" vm-pack --format rar $B -
err "pack over an existing file" 1 "^vm-pack: out.tar.gz: already exists$" vm-pack $B out.tar.gz
check "--force replaces it" vm-pack --force $B out.tar.gz
err "pack a missing bundle" 1 "^vm-pack: nosuch: no such bundle" vm-pack nosuch x.zip
err "pack a folder that is not a bundle" 1 "not a VM bundle" vm-pack orig x.zip
err "pack into a missing folder" 1 "^vm-pack: no/such/x.zip: No such file" vm-pack $B no/such/x.zip
# a running VM (its runtime lock held) is not packed
if command -v flock >/dev/null; then
	rt="$XDG_RUNTIME_DIR/vm/$(vm-config $B get uuid)"
	mkdir -p "$rt"
	exec 9>"$rt/lock"
	flock 9
	err "a running VM is not packed" 1 "^vm-pack: src.utm: the VM is running" vm-pack $B running.zip
	exec 9>&-
	check "no archive of the running VM" test ! -e running.zip
else
	skip "flock(1) not installed"
fi
err "vm-pack usage" 2 "^usage: vm-pack" vm-pack $B
check "no temporary files anywhere" nothing_left nothing-by-this-name
check "vm-pack --help" sh -c "vm-pack --help | grep -q -- --format"
check "vm-pack --version" sh -c "vm-pack --version | grep -q utmkit"
check "vm-pack -v names the entries" sh -c "vm-pack -v -F tar $B - 2>&1 >/dev/null | grep -q 'vm-pack: src.utm/Data/hd0.qcow2'"
