#!/bin/sh
# shellcheck disable=SC2016 # guest commands in single quotes: their $( ) runs in the guest
# vm-disk on a running VM (the demo guest under TCG, booted once): an ISO made
# here inserted, seen in query-block and mounted by the guest; a locked tray;
# eject and insert again; hot-plug and unplug of a virtio disk seen in the
# guest's /sys/block; a live resize; live snapshots (save, change a file,
# load, the old content is back) and their refusals; then, stopped, the
# snapshot made live listed and removed with qemu-img.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/disk.inc
. "$(dirname "$0")/disk.inc"
need_guest
cd "$T" || exit 1

# a default q35 bundle: its spare PCIe root ports (vm-argv) take hot-plugged disks
guest_bundle "$T/live.utm" --disk 1G --cdrom -
B="$T/live.utm"
mkdir -p "$T/iso"
echo "hello-from-the-iso" >"$T/iso/hello.txt"
vm-disk mkiso "$T/seed.iso" "$T/iso" --label cidata || not_ok "mkiso"
boot "$B"

# the guest's CD-ROM driver notices a new disc within a moment: retry
mountcd='for i in $(seq 50); do mount -t iso9660 -o ro /dev/sr0 /mnt 2>/dev/null && break; sleep 0.2; done; grep -q " /mnt " /proc/mounts'

# --- removable media ------------------------------------------------------------------
t0=$(date +%s%N)
check "insert cd0 ISO into the running VM" vm-disk "$B" insert cd0 "$T/seed.iso"
t1=$(date +%s%N)
echo "# live insert: $(((t1 - t0) / 1000000)) ms"
# QEMU (sandboxed, as another user) got the file as an fd set whose opaque
# name is the path: query-block says /dev/fdset/N, query-fdsets names it.
qemu_file() {
	_f=$(vm-qmp "$B" query-block | jq -r --arg id "$1" '.[] | select(.qdev == $id) | .inserted.file')
	case $_f in
	/dev/fdset/*) vm-qmp "$B" query-fdsets | jq -r --argjson n "${_f#/dev/fdset/}" \
		'.[] | select(.["fdset-id"] == $n) | .fds[0].opaque' ;;
	*) echo "$_f" ;;
	esac
}
check_eq "query-block: QEMU has the ISO in cd0" "$(qemu_file cd0)" "$T/seed.iso"
check_eq "the config has it too" "$(vm-config "$B" get drive.cd0.image)" "$T/seed.iso"
check_eq "list --json: what runs now" "$(vm-disk "$B" list --json | jq -r '.[1].running.inserted')" "$T/seed.iso"
check_eq "the guest mounts /dev/sr0 and reads the file" \
	"$(gsh "$mountcd && cat /mnt/hello.txt")" "hello-from-the-iso"
bad "eject of a locked tray (the guest has the disc mounted)" 1 \
	"drive cd0: the guest has locked the tray \(a mounted disc\?\)" vm-disk "$B" eject cd0
check_eq "...the disc is still in" "$(qemu_file cd0)" "$T/seed.iso"
gsh 'umount /mnt' >/dev/null
t0=$(date +%s%N)
check "eject once the guest has unmounted it" vm-disk "$B" eject cd0
t1=$(date +%s%N)
echo "# live eject: $(((t1 - t0) / 1000000)) ms"
check_eq "query-block: no medium" \
	"$(vm-qmp "$B" query-block | jq -r '.[] | select(.qdev == "cd0") | .inserted.file // "none"')" none
check_status "the config has no disc" 1 vm-config "$B" get drive.cd0.image 2>/dev/null
check "insert again" vm-disk "$B" insert cd0 "$T/seed.iso"
check_eq "the guest reads the disc again" \
	"$(gsh "$mountcd && cat /mnt/hello.txt; umount /mnt")" "hello-from-the-iso"
bad "eject: a disk is not removable" 1 "drive hd0: not removable" vm-disk "$B" eject hd0
bad "eject: an unknown drive" 1 "drive zz: no such drive" vm-disk "$B" eject zz

# --- hot-plug ------------------------------------------------------------------------------
qemu-img create -q -f qcow2 "$T/extra.qcow2" 64M
check_eq "/sys/block before" "$(gsh 'ls /sys/block')" "sr0 vda"
check_eq "attach: hot-plug a virtio disk" "$(vm-disk "$B" attach "$T/extra.qcow2" --id vd1)" vd1
check_eq "the guest sees vdb" "$(gsh 'for i in $(seq 50); do [ -e /sys/block/vdb ] && break; sleep 0.2; done; ls /sys/block')" "sr0 vda vdb"
check_eq "the config has the drive" "$(vm-config "$B" get drive.vd1.image)" "$T/extra.qcow2"
check_eq "query-block: QEMU has it (list --json, what runs now)" \
	"$(vm-disk "$B" list --json | jq -r '.[] | select(.id == "vd1") | .running.inserted')" "$T/extra.qcow2"
check_eq "query-pci: a virtio block device behind a spare root port" \
	"$(vm-qmp "$B" query-pci | jq -r '.[].devices[] | select(.qdev_id | test("^rp[0-9]")) | .pci_bridge.devices[]? | select(.qdev_id == "vd1") | .id.device')" 4162
t0=$(date +%s%N)
check "detach: unplug it (waits for DEVICE_DELETED)" vm-disk "$B" detach vd1
t1=$(date +%s%N)
echo "# live unplug: $(((t1 - t0) / 1000000)) ms"
check_eq "the guest no longer has vdb" "$(gsh 'ls /sys/block')" "sr0 vda"
check_status "the config no longer has it" 1 vm-config "$B" get drive.vd1.image 2>/dev/null
check_eq "QEMU no longer has it" "$(vm-qmp "$B" query-block | jq '[.[] | select(.qdev | test("vd1"))] | length')" 0
bad "detach of the boot disk of a running VM" 1 "drive hd0: the boot disk of a running VM" vm-disk "$B" detach hd0
bad "detach of an IDE CD-ROM while running" 1 "drive cd0: ide drives cannot be unplugged while the VM runs" vm-disk "$B" detach cd0
bad "attach: IDE cannot be hot-plugged" 1 "drive cd1: ide drives cannot be hot-plugged" vm-disk "$B" attach "$T/seed.iso" --cdrom
bad "attach: a non-image file" 1 "not a disk image" vm-disk "$B" attach "$T/iso/hello.txt"
bad "libguestfs work on a running VM" 1 "the VM is running; stop it first" vm-disk "$B" ls hd0 /

# --- live resize -------------------------------------------------------------------------------
check_eq "vda before: 1 GiB in sectors" "$(gsh 'cat /sys/block/vda/size')" 2097152
check "resize hd0 +512M while running" vm-disk "$B" resize hd0 +512M
check_eq "the guest sees the new size at once" "$(gsh 'cat /sys/block/vda/size')" 3145728
check_eq "the image has it" "$(qimg "$B/Data/hd0.qcow2" virtual-size)" 1610612736
bad "resize smaller without --shrink" 1 "is smaller than its size 1.5G" vm-disk "$B" resize hd0 1G

# --- live snapshots ------------------------------------------------------------------------------
check_eq "the guest writes 'one' to a file on vda" \
	"$(gsh 'mke2fs -q /dev/vda >/dev/null && mount /dev/vda /mnt && echo one >/mnt/marker && sync && cat /mnt/marker')" one
t0=$(date +%s%N)
check "snapshot create s1 (snapshot-save job)" vm-disk "$B" snapshot create s1
t1=$(date +%s%N)
echo "# live snapshot-save: $(((t1 - t0) / 1000000)) ms"
check "snapshot list --json: s1 with the VM state, on hd0" sh -c "vm-disk '$B' snapshot list --json | jq -e '
	length == 1 and .[0].name == \"s1\" and .[0].vm_state_size > 0 and .[0].drives == [\"hd0\"]' >/dev/null"
check_eq "the VM runs on after the save" "$(vm-qmp "$B" query-status | jq -r .status)" running
check_eq "the guest changes the file to 'two'" "$(gsh 'echo two >/mnt/marker && sync && cat /mnt/marker')" two
check "snapshot revert s1 (snapshot-load job)" vm-disk "$B" snapshot revert s1
check_eq "the VM runs after the load" "$(vm-qmp "$B" query-status | jq -r .status)" running
check_eq "the guest sees 'one' again" "$(gsh 'cat /mnt/marker')" one
bad "snapshot create: the name exists" 1 "snapshot s1: exists \(drive hd0\)" vm-disk "$B" snapshot create s1
bad "snapshot revert: no such snapshot" 1 "snapshot s9: no such snapshot" vm-disk "$B" snapshot revert s9
check "snapshot delete s1 (snapshot-delete job)" vm-disk "$B" snapshot delete s1
check_eq "snapshot list: empty" "$(vm-disk "$B" snapshot list --json)" "[]"
bad "snapshot delete: no such snapshot" 1 "snapshot s1: no such snapshot" vm-disk "$B" snapshot delete s1
check_eq "no job left behind" "$(vm-qmp "$B" query-jobs | jq length)" 0
check "create a raw disk while running (hot-plugged)" vm-disk "$B" create raw0 16M --format raw
check_eq "the guest sees it" "$(gsh 'for i in $(seq 50); do [ -e /sys/block/vdb ] && break; sleep 0.2; done; ls /sys/block')" "sr0 vda vdb"
bad "snapshot with a raw drive: refused, naming it" 1 "drive raw0: a raw image \(raw0.img\) cannot hold snapshots" vm-disk "$B" snapshot create s2
check "detach it again" vm-disk "$B" detach raw0
check "snapshot create s2, kept for the offline part" vm-disk "$B" snapshot create s2

# --- stopped: the live snapshot through qemu-img --------------------------------------------------
check "vm-stop" vm-stop -q "$B"
check_match "snapshot list after vm-stop: s2 with its VM state" "$(vm-disk "$B" snapshot list)" '^s2 +[0-9-]+ [0-9:]+ +[0-9.]+[KMG] +hd0$'
check "snapshot revert s2 offline" vm-disk "$B" snapshot revert s2
check "snapshot delete s2 offline" vm-disk "$B" snapshot delete s2
check_eq "qemu-img: no snapshot left" "$(qemu-img snapshot -l "$B/Data/hd0.qcow2")" ""
check_eq "the config kept the disc for the next boot" "$(vm-config "$B" get drive.cd0.image)" "$T/seed.iso"
echo "1..$_n"
