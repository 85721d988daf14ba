#!/bin/sh
# vm-disk's offline work through libguestfs (its appliance boots under TCG
# here, some 15-30 s a command): mkfs, inspect with no operating system,
# copy-in of a minimal root tree, ls, copy-out, inspect finding the OS; then
# the guest boots and reads the copied file from the disk.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/disk.inc
. "$(dirname "$0")/disk.inc"
need_guest
cd "$T" || exit 1
if ! ldconfig -p 2>/dev/null | grep -q 'libguestfs\.so\.0 '; then
	skip "libguestfs is not installed (Debian packages libguestfs0 supermin linux-image-amd64)"
	echo "1..$_n"
	exit 0
fi
export LIBGUESTFS_BACKEND=direct

# jcheck DESC FILTER FILE: FILE holds one JSON value and jq -e FILTER holds
# for it (jq reads an empty file as no input, and -e then passes on nothing)
jcheck() {
	if [ -s "$3" ] && [ "$(jq -s length "$3" 2>/dev/null)" = 1 ] && jq -e "$2" "$3" >/dev/null; then
		ok "$1"
	else
		not_ok "$1 ($(cat "$3"))"
	fi
}

guest_bundle "$T/g.utm" --cdrom -
B="$T/g.utm"
check "create a data disk" vm-disk "$B" create data 64M

# refusals that come before the appliance starts
bad "mkfs on a CD-ROM drive: read-only" 1 "drive cd0: read-only" vm-disk "$B" mkfs cd0 ext4
bad "mkfs: an unknown drive" 1 "drive zz: no such drive" vm-disk "$B" mkfs zz ext4
bad "mkfs: not a filesystem type" 1 "'ext4;rm': not a filesystem type" vm-disk "$B" mkfs data 'ext4;rm'
bad "copy-in: a missing host file" 1 "nosuch: No such file or directory" vm-disk "$B" copy-in data "$T/nosuch" /
bad "copy-out: a missing host folder" 1 "nodir: No such file or directory" vm-disk "$B" copy-out data /x "$T/nodir"
bad "ls: an empty drive" 1 "drive cd0: no medium" vm-disk "$B" ls cd0 /

t0=$(date +%s)
check "mkfs data ext4 --label seed" vm-disk "$B" mkfs data ext4 --label seed
echo "# mkfs (one appliance launch): $(($(date +%s) - t0)) s"
bad "mkfs over a filesystem needs --force" 1 "drive data already holds a filesystem \(ext4\); --force to replace it" vm-disk "$B" mkfs data ext4

vm-disk "$B" inspect --json >"$T/inspect0.json" 2>"$T/inspect0.err"
check_eq "inspect with no operating system: status 0" "$?" 0
jcheck "...JSON: no operating system, the ext4 filesystem labelled seed on drive data" '
	(.operating_systems | length) == 0 and
	(.filesystems | map(select(.drive == "data" and .type == "ext4" and .label == "seed"
		and .size == 67108864)) | length) == 1' "$T/inspect0.json"
check_match "...and says so, naming the bundle" "$(cat "$T/inspect0.err")" "^vm-disk: .*g.utm: no operating system found \(1 filesystem\)$"

# a minimal Debian-like root, as libguestfs's inspection recognizes one
mkdir -p "$T/root/etc" "$T/root/bin" "$T/root/srv"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' \
	>"$T/root/etc/os-release"
echo labhost >"$T/root/etc/hostname"
echo 'LABEL=seed / ext4 defaults 0 1' >"$T/root/etc/fstab"
echo "seeded-offline-$$" >"$T/note.txt"
check "copy-in folders and a file" vm-disk "$B" copy-in data "$T/root/etc" "$T/root/bin" "$T/root/srv" "$T/note.txt" /
check_eq "ls /" "$(vm-disk "$B" ls data / | tr '\n' ' ')" "bin etc lost+found note.txt srv "
mkdir "$T/out"
check "copy-out a file and a folder" vm-disk "$B" copy-out data /note.txt /etc "$T/out"
check "copy-out: the file round-trips" cmp "$T/note.txt" "$T/out/note.txt"
check "copy-out: the folder too" cmp "$T/root/etc/os-release" "$T/out/etc/os-release"

vm-disk "$B" inspect --json >"$T/inspect1.json" 2>"$T/inspect1.err"
check_eq "inspect: status 0, nothing on stderr" "$?:$(cat "$T/inspect1.err")" "0:"
jcheck "inspect: Debian 12 on drive data, its hostname and root" '
	(.operating_systems | length) == 1 and (.operating_systems[0] | .type == "linux" and
	.distro == "debian" and .major_version == 12 and .hostname == "labhost" and .drive == "data"
	and .root == "/dev/sda" and (.mountpoints | length) >= 1)' "$T/inspect1.json"

# the guest reads what was copied in
boot "$B"
check_eq "the booted guest reads the copied file from vda" \
	"$(gsh 'mount -o ro /dev/vda /mnt && cat /mnt/note.txt')" "seeded-offline-$$"
bad "libguestfs work while it runs is refused" 1 "the VM is running; stop it first" vm-disk "$B" copy-in data "$T/note.txt" /
check "vm-stop" vm-stop -q "$B"

# The appliance follows vm-run's KVM verdict: where KVM must not be used
# (VM_ACCEL=tcg here; the probe's "no" on a kvm_pvm or nested host), vm-disk
# gives libguestfs force_tcg, so its QEMU runs TCG without -cpu host.
VM_ACCEL=tcg LIBGUESTFS_DEBUG=1 LIBGUESTFS_TRACE=1 vm-disk -v "$B" ls data / >"$T/tcg.out" 2>"$T/tcg.err"
check_eq "VM_ACCEL=tcg: ls works" "$?:$(tr '\n' ' ' <"$T/tcg.out")" "0:bin etc lost+found note.txt srv "
check "...libguestfs is given force_tcg" grep -q '^libguestfs: trace: set_backend_settings "force_tcg"$' "$T/tcg.err"
check "...its QEMU runs accel=tcg" grep -q -- '-machine accel=tcg' "$T/tcg.err"
check "...without -cpu host" sh -c "! grep -q -- '-cpu host' '$T/tcg.err'"
check_match "...vm-disk -v says why" "$(cat "$T/tcg.err")" '^vm-disk: libguestfs appliance: tcg, as VM_ACCEL asks$'
# settings of the user's own are kept, force_tcg added
VM_ACCEL=tcg LIBGUESTFS_BACKEND_SETTINGS=gdb_off LIBGUESTFS_TRACE=1 vm-disk "$B" ls data /srv >/dev/null 2>"$T/tcg2.err"
check "...added to LIBGUESTFS_BACKEND_SETTINGS" grep -q '^libguestfs: trace: set_backend_settings "gdb_off force_tcg"$' "$T/tcg2.err"

# A launch that fails says why in its one line: the appliance's QEMU aborts
# as it does on a kvm_pvm host (its feature probes answer as the real one).
cat >"$T/qemu-aborts" <<'EOF2'
#!/bin/sh
case " $* " in *" -kernel "*) ;; *) exec qemu-system-x86_64 "$@" ;; esac
echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0" >&2
exit 1
EOF2
chmod +x "$T/qemu-aborts"
bad "a failed appliance launch names QEMU's reason" 1 \
	"^vm-disk: .*g\.utm: libguestfs: cannot start its appliance: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0 \(guestfs_launch failed" \
	env LIBGUESTFS_HV="$T/qemu-aborts" vm-disk "$B" ls data /
bad "...and a missing QEMU is named" 1 \
	"cannot start its appliance: .*nosuch-qemu: No such file or directory" \
	env LIBGUESTFS_HV="$T/nosuch-qemu" vm-disk "$B" ls data /
echo "1..$_n"
