#!/bin/sh
# vm-disk on a stopped VM (no QEMU boots here): create, attach, detach,
# insert, eject, resize and qemu-img snapshots, each checked in the config
# and with qemu-img; mkiso; and bad input, each one clear line with the
# config and images unchanged.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/disk.inc
. "$(dirname "$0")/disk.inc"
cd "$T" || exit 1

vm-create -q --disk 1G --cdrom - --net none "o p" || { not_ok "vm-create"; exit 1; }
B="$T/o p.utm"
D="$B/Data"

# --- list ----------------------------------------------------------------------
out=$(vm-disk "$B" list)
check_match "list: a header" "$(echo "$out" | head -n 1)" '^ID +INTERFACE +MEDIA +FORMAT +SIZE +ALLOC +FLAGS +IMAGE$'
check_match "list: the disk, its format, size and boot flag" "$out" '^hd0 +virtio +disk +qcow2 +1G +[0-9.]+K +boot +hd0.qcow2$'
check_match "list: the empty CD-ROM" "$out" '^cd0 +ide +cdrom +- +- +- +ro,removable +\(empty\)$'
check "list --json: bytes, flags, no running part when stopped" sh -c "vm-disk '$B' list --json | jq -e '
	length == 2 and .[0].id == \"hd0\" and .[0].virtual_size == 1073741824 and .[0].format == \"qcow2\"
	and .[0].boot and (.[0].readonly | not) and .[1].media == \"cdrom\" and .[1].readonly
	and .[1].removable and .[1].image == null and (.[0] | has(\"running\") | not)' >/dev/null"

# --- create --------------------------------------------------------------------
check "create d1 64M" vm-disk "$B" create d1 64M
check_eq "create: the image is Data/d1.qcow2 of 64 MiB" "$(qimg "$D/d1.qcow2" virtual-size)" 67108864
check_eq "create: the config names it" "$(vm-config "$B" get drive.d1.image)" d1.qcow2
check_eq "create: with its format" "$(vm-config "$B" get drive.d1.format)" qcow2
check "create r1 16M --format raw" vm-disk "$B" create r1 16M --format raw
check_eq "create --format raw: Data/r1.img, raw" "$(qimg "$D/r1.img" format)" raw
check "create ov --backing: an overlay" vm-disk "$B" create ov --backing "$D/hd0.qcow2"
check_eq "the overlay names its backing file by its bare name" "$(qimg "$D/ov.qcow2" backing-filename)" hd0.qcow2
check_eq "the overlay has the backing file's size" "$(qimg "$D/ov.qcow2" virtual-size)" 1073741824
check "create --interface scsi" vm-disk "$B" create s1 8M -i scsi
check_eq "create --interface: in the config" "$(vm-config "$B" get drive.s1.interface)" scsi
check "no temporary files left in Data/" sh -c "! ls -A '$D' | grep -q '^\.'"

bad "create: an id that exists" 1 "drive d1: already exists" vm-disk "$B" create d1 1G
bad "create: a bad id" 1 "drive a.b: not a valid id" vm-disk "$B" create a.b 1G
bad "create: a bad size" 1 "'12Q': not a size" vm-disk "$B" create d2 12Q
bad "create: an unknown format" 2 "--format vmdk: qcow2 or raw" vm-disk "$B" create d2 1G --format vmdk
bad "create: a bad interface" 1 "interface: 'sata' is not one of" vm-disk "$B" create d2 1G -i sata
bad "create: a missing backing file" 1 "nosuch.qcow2: No such file" vm-disk "$B" create d2 --backing nosuch.qcow2
check "create: failures leave no image" test ! -e "$D/d2.qcow2" -a ! -e "$D/a.b.qcow2"
touch "$D/taken.qcow2"
bad "create: a file of that name in Data/" 1 "taken.qcow2 already exists" vm-disk "$B" create taken 1G
check_eq "...and it is not replaced" "$(wc -c <"$D/taken.qcow2")" 0
rm -f "$D/taken.qcow2"

# --- attach, detach --------------------------------------------------------------
qemu-img create -q -f qcow2 "$T/ext disk.qcow2" 32M
check_eq "attach FILE: prints the new id" "$(vm-disk "$B" attach "$T/ext disk.qcow2")" hd1
check_eq "attach: a file outside the bundle is named by its absolute path" "$(vm-config "$B" get drive.hd1.image)" "$T/ext disk.qcow2"
check_eq "attach --copy --id --readonly" "$(vm-disk "$B" attach --copy --id imp --readonly "$T/ext disk.qcow2")" imp
check_eq "attach --copy: the copy in Data/ is named by its bare name" "$(vm-config "$B" get drive.imp.image)" "ext disk.qcow2"
check "attach --copy: a qcow2 copy in Data/" test "$(qimg "$D/ext disk.qcow2" format)" = qcow2
check_eq "attach --readonly: in the config" "$(vm-config "$B" get drive.imp.readonly)" true
check_eq "attach ID --cdrom: an empty CD-ROM drive" "$(vm-disk "$B" attach cd9 --cdrom)" cd9
check_eq "...media cdrom" "$(vm-config "$B" get drive.cd9.media)" cdrom
check_status "...with no image" 1 vm-config "$B" get drive.cd9.image 2>/dev/null

printf 'just text\n' >"$T/notes.txt"
gzip -c "$T/ext disk.qcow2" >"$T/disk.qcow2.gz"
bad "attach: a missing file" 1 "nosuch.img: No such file or directory" vm-disk "$B" attach "$T/nosuch.img"
bad "attach: a text file is not a disk" 1 "notes.txt: 10 bytes, not a whole number of 512-byte sectors; not a disk image" vm-disk "$B" attach "$T/notes.txt"
bad "attach: a gzip file is not a disk" 1 "disk.qcow2.gz: a gzip file, not a disk image" vm-disk "$B" attach "$T/disk.qcow2.gz"
bad "attach: a folder is not a disk" 1 "a folder, not a disk image" vm-disk "$B" attach "$T"
bad "attach --copy: the name is taken in Data/" 1 "already exists in Data/" vm-disk "$B" attach --copy "$T/ext disk.qcow2"
bad "attach: a cdrom on virtio" 1 "a cdrom cannot be on virtio" vm-disk "$B" attach "$T/ext disk.qcow2" --cdrom -i virtio

check "detach hd1" vm-disk "$B" detach hd1
check_status "detach: the drive is gone from the config" 1 vm-config "$B" get drive.hd1.image 2>/dev/null
check "detach: the image stays" test -f "$T/ext disk.qcow2"
bad "detach: an unknown drive" 1 "drive zz: no such drive \(drives: hd0, cd0, " vm-disk "$B" detach zz

# --- insert, eject -----------------------------------------------------------------
mkdir -p "$T/isodir/sub"
echo "hello from the iso" >"$T/isodir/hello.txt"
echo "deeper" >"$T/isodir/sub/deep.txt"
check "mkiso: a folder and a file, with a label" vm-disk mkiso "$T/media.iso" "$T/isodir" "$T/notes.txt" --label cidata
check_match "mkiso: blkid sees an iso9660 image labelled cidata" "$(blkid -o export "$T/media.iso")" 'LABEL=cidata'
check_eq "mkiso: the files at the root, Rock Ridge names" "$(bsdtar -tf "$T/media.iso" | grep -v '^\.$' | sort | tr '\n' ' ')" "hello.txt notes.txt sub sub/deep.txt "
check_eq "mkiso: contents" "$(bsdtar -xOf "$T/media.iso" sub/deep.txt)" deeper
check_status "mkiso: a missing input fails" 1 vm-disk mkiso "$T/bad.iso" "$T/nosuch" 2>/dev/null
check_status "mkiso: a label of 33 characters fails" 1 vm-disk mkiso "$T/bad.iso" "$T/isodir" --label 123456789012345678901234567890123 2>/dev/null
check "mkiso: failures leave no image and no temporary file" sh -c "! ls -A '$T' | grep -q 'bad.iso'"
check_status "mkiso: no inputs is a usage error" 2 vm-disk mkiso "$T/bad.iso" 2>/dev/null

check "insert cd0 ISO" vm-disk "$B" insert cd0 "$T/media.iso"
check_eq "insert: the config names the disc" "$(vm-config "$B" get drive.cd0.image)" "$T/media.iso"
check_eq "insert: and its format" "$(vm-config "$B" get drive.cd0.format)" raw
check "eject cd0" vm-disk "$B" eject cd0
check_status "eject: the config has no disc" 1 vm-config "$B" get drive.cd0.image 2>/dev/null
check "eject of an empty drive is fine" vm-disk "$B" eject cd0
check "insert --copy" vm-disk "$B" insert cd9 "$T/media.iso" --copy
check_eq "insert --copy: the copy in Data/" "$(vm-config "$B" get drive.cd9.image)" media.iso
bad "insert: a disk is not removable" 1 "drive hd0: not removable \(a virtio disk\)" vm-disk "$B" insert hd0 "$T/media.iso"
bad "eject: a disk is not removable" 1 "drive hd0: not removable" vm-disk "$B" eject hd0
bad "insert: an unknown drive" 1 "drive zz: no such drive" vm-disk "$B" insert zz "$T/media.iso"
bad "insert: a missing file" 1 "nosuch.iso: No such file" vm-disk "$B" insert cd0 "$T/nosuch.iso"
bad "insert: not an image" 1 "not a disk image" vm-disk "$B" insert cd0 "$T/notes.txt"

# --- resize --------------------------------------------------------------------------
check "resize d1 128M" vm-disk "$B" resize d1 128M
check_eq "resize: qemu-img sees 128 MiB" "$(qimg "$D/d1.qcow2" virtual-size)" 134217728
check "resize d1 +64M" vm-disk "$B" resize d1 +64M
check_eq "resize +: 192 MiB" "$(qimg "$D/d1.qcow2" virtual-size)" 201326592
bad "resize: smaller needs --shrink" 1 "drive d1: 64M is smaller than its size 192M; shrinking loses the data" vm-disk "$B" resize d1 64M
check_eq "...the size is unchanged" "$(qimg "$D/d1.qcow2" virtual-size)" 201326592
check "resize --shrink" vm-disk "$B" resize d1 64M --shrink
check_eq "resize --shrink: 64 MiB" "$(qimg "$D/d1.qcow2" virtual-size)" 67108864
bad "resize: a CD-ROM" 1 "drive cd9: read-only" vm-disk "$B" resize cd9 1G
bad "resize: an option of another command" 2 "--shrink: not an option of eject" vm-disk "$B" eject cd0 --shrink

# --- snapshots (qemu-img) ------------------------------------------------------------
bad "snapshot with a raw drive: refused, naming it" 1 "drive r1: a raw image \(r1.img\) cannot hold snapshots" vm-disk "$B" snapshot create s1
check_eq "...and no drive got one" "$(qemu-img snapshot -l "$D/hd0.qcow2")" ""
check "detach the raw drive" vm-disk "$B" detach r1
check "snapshot create s1" vm-disk "$B" snapshot create s1
check_eq "snapshot: every writable qcow2 drive has it" "$(for f in hd0 d1 ov s1; do qemu-img snapshot -l "$D/$f.qcow2" | awk '$2 == "s1" { printf "%s ", $2 }'; done)" "s1 s1 s1 s1 "
check_eq "snapshot: not the read-only one" "$(qemu-img snapshot -l "$D/ext disk.qcow2")" ""
out=$(vm-disk "$B" snapshot list)
check_match "snapshot list: name, date, no VM state, drives" "$out" '^s1 +[0-9-]+ [0-9:]+ +- +hd0,d1,ov,s1$'
check "snapshot list --json" sh -c "vm-disk '$B' snapshot list --json | jq -e '.[0].name == \"s1\" and .[0].vm_state_size == 0 and (.[0].drives | length) == 4 and (.[0].date_sec > 0)' >/dev/null"
bad "snapshot create: a name that exists" 1 "snapshot s1: exists \(drive hd0\)" vm-disk "$B" snapshot create s1
bad "snapshot: a name of digits" 1 "digits only" vm-disk "$B" snapshot create 123
check "snapshot revert s1" vm-disk "$B" snapshot revert s1
check "snapshot create after a new drive" vm-disk "$B" create late 8M
bad "snapshot revert: a drive that lacks it" 1 "snapshot s1: drive late does not have it" vm-disk "$B" snapshot revert s1
check "snapshot delete s1" vm-disk "$B" snapshot delete s1
check_eq "snapshot delete: gone from every drive" "$(qemu-img snapshot -l "$D/hd0.qcow2")$(qemu-img snapshot -l "$D/d1.qcow2")" ""
bad "snapshot delete: no such snapshot" 1 "snapshot s1: no such snapshot" vm-disk "$B" snapshot delete s1
bad "snapshot revert: no such snapshot" 1 "snapshot nope: no such snapshot" vm-disk "$B" snapshot revert nope
bad "snapshot: an unknown operation" 2 "snapshot frob: unknown" vm-disk "$B" snapshot frob x
vm-config "$B" set firmware uefi
cp "$B/vm.conf" "$T/uefi.conf"
bad "snapshot with a UEFI variable store: refused, naming it" 1 "efi_vars: the UEFI variable store \(efi_vars.fd, a raw pflash drive\) cannot hold snapshots" vm-disk "$B" snapshot create s2
vm-config "$B" unset firmware

# --- usage and other bad input ----------------------------------------------------------
check_status "no command: usage" 2 vm-disk "$B" 2>/dev/null
bad "unknown command" 2 "frob: unknown command" vm-disk "$B" frob
bad "too many arguments" 2 "usage:" vm-disk "$B" eject cd0 cd9
check "--help exits 0 and shows every command" sh -c "vm-disk --help | grep -q mkiso"
bad "a missing bundle" 1 "^vm-disk: nosuch: no such bundle" vm-disk nosuch list
rm "$D/s1.qcow2"
out=$(vm-disk "$B" list 2>"$T/err.txt")
check_eq "list: a missing image makes the status 1" "$?" 1
check_match "...says which" "$(cat "$T/err.txt")" "drive s1: .*s1.qcow2: No such file"
check_match "...and still lists the others" "$out" '^d1 +virtio +disk +qcow2 +64M'

# libarchive (with ICU and libxml2 behind it) is opened only by the commands
# that write or read archives and ISO images: list never loads it (start-up
# time), mkiso does. Not under valgrind, whose own loader would answer LD_DEBUG.
if [ "${VM_VALGRIND:-}" != 1 ]; then
	libs=$(LD_DEBUG=libs vm-disk "$B" list 2>&1 >/dev/null)
	check_eq "list: libarchive not loaded" "$(printf '%s\n' "$libs" | grep -c 'libarchive')" 0
	libs=$(LD_DEBUG=libs vm-disk -q mkiso "$T/dl.iso" "$T/notes.txt" 2>&1 >/dev/null)
	check_match "mkiso: libarchive loaded on demand" "$libs" "calling init: .*libarchive.so"
fi
echo "1..$_n"
