#!/bin/sh
# A real cloud guest: the Debian 12 image of scripts/mkimage (make image)
# boots from its own disk through firmware, as users' cloud images do. One
# bundle, two boots:
#   1. UEFI (OVMF): cloud-init reads the seed of vm-create --cloud-init, sets
#      the hostname, runs the runcmd and installs the --ssh-key for the
#      default user; SSH through the -F forward answers; vm-stop powers the
#      systemd guest off politely (ACPI, no quit, no kill).
#   Offline: fsck of the root filesystem is clean; vm-disk inspect names
#      Debian 12; vm-disk copy-in puts a file in it.
#   2. BIOS (SeaBIOS): the guest reads the copied file; a live snapshot
#      (memory and disk), a file written after it, a revert: the file is
#      gone, the guest runs on, and after vm-stop fsck is clean again.
# Slow under TCG: minutes. Skips, saying why, when the image is not built.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/disk.inc
. "$(dirname "$0")/disk.inc"
cd "$T" || exit 1

IMAGE=$VM_TOP/build/image/debian12.qcow2
if [ ! -f "$IMAGE" ]; then
	why=$(cat "$VM_TOP/build/image/mkimage.err" 2>/dev/null)
	skip "no cloud image $IMAGE: ${why:-not built (make image)}"
	echo "1..$_n"
	exit 0
fi
for t in qemu-system-x86_64 ssh ssh-keygen e2fsck python3; do
	if ! command -v "$t" >/dev/null; then
		skip "$t is not installed"
		echo "1..$_n"
		exit 0
	fi
done
LIBGUESTFS_OK=
ldconfig -p 2>/dev/null | grep -q 'libguestfs\.so\.0 ' && LIBGUESTFS_OK=1
export LIBGUESTFS_BACKEND=direct

# The root partition of mkimage's layout: from 34 MiB to 1 MiB before the
# end of its 2 GiB disk.
ROOT_OFF=$((34 * 1048576))
ROOT_SIZE=$(((2048 - 35) * 1048576))

# fsck_root DESC: e2fsck -fn of the root filesystem of drive root (host
# tools only: QEMU's raw driver cuts the partition out of the qcow2 chain)
fsck_root() {
	rm -f "$T/rootfs.raw"
	if ! qemu-img convert -O raw --image-opts \
		"driver=raw,offset=$ROOT_OFF,size=$ROOT_SIZE,file.driver=qcow2,file.file.filename=$B/Data/root.qcow2" \
		"$T/rootfs.raw" 2>"$T/fsck.err"; then
		not_ok "$1: qemu-img convert: $(cat "$T/fsck.err")"
		return
	fi
	if e2fsck -fn "$T/rootfs.raw" >"$T/fsck.out" 2>&1; then
		ok "$1"
	else
		not_ok "$1: $(tail -n 5 "$T/fsck.out" | tr '\n' ' ')"
	fi
	rm -f "$T/rootfs.raw"
}

# A free TCP port for the SSH forward
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ssh-keygen -q -t ed25519 -N '' -f "$T/key" || exit 1
cat >"$T/user-data" <<EOF
#cloud-config
hostname: cloudy
manage_etc_hosts: localhost
runcmd:
  - echo "runcmd-ran-$$" > /var/tmp/utmkit-marker
EOF

# gssh CMD: run CMD in the guest as the image's default user
gssh() {
	ssh -q -i "$T/key" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 debian@127.0.0.1 "$@" </dev/null
}

# wait_ssh WHAT: until SSH answers (at most 15 minutes under TCG), or the VM
# is gone; prints the seconds it took
wait_ssh() {
	_t0=$(date +%s)
	while ! gssh true 2>/dev/null; do
		if [ $(($(date +%s) - _t0)) -ge 900 ]; then
			not_ok "$1: no SSH within 900 s; console: $(tail -n 5 "$RT/console.log" | tr '\n' ' ')"
			return 1
		fi
		if ! vm-ls --json "$B" | grep -q '"running"'; then
			not_ok "$1: the VM stopped; console: $(tail -n 5 "$RT/console.log" | tr '\n' ' ')"
			return 1
		fi
		sleep 2
	done
	ok "$1: SSH answers with the key after $(($(date +%s) - _t0)) s"
	echo "# $1: boot to SSH under TCG: $(($(date +%s) - _t0)) s"
}

# stop_politely WHAT: vm-stop -v; the guest powers itself off in its timeout
# (systemd under TCG on a busy 2-core host has taken over 30 s: 120 s)
stop_politely() {
	_t0=$(date +%s)
	vm-stop -v -t "$(secs 120)" "$B" >"$T/stop.out" 2>&1
	_rc=$?
	_s=$(($(date +%s) - _t0))
	echo "# $1: vm-stop took $_s s"
	check_eq "$1: vm-stop: status 0" "$_rc" 0
	if grep -Eqi 'quit|kill' "$T/stop.out"; then
		not_ok "$1: vm-stop needed quit or kill: $(tr '\n' ' ' <"$T/stop.out")"
	else
		ok "$1: the guest powered off on the ACPI button in $_s s (no quit, no kill)"
	fi
}

# ---- the bundle --------------------------------------------------------------
B="$T/cloud.utm"
check_eq "vm-create --cloud-init --ssh-key -F tcp:$PORT-:22 -f uefi" \
	"$(vm-create -m 1G -f uefi -F "tcp:$PORT-:22" --cloud-init "$T/user-data" --ssh-key "$T/key.pub" "$T/cloud")" "$B"
_bundles="$_bundles $B"

check "the image as the root disk (a qcow2 overlay on it)" vm-disk "$B" create root --backing "$IMAGE"
# The seed is a read-only virtio disk (the cloud kernel has no AHCI) and
# boots last: SeaBIOS given it first hangs instead of trying the next disk.
check_eq "the seed: a read-only virtio disk" \
	"$(vm-config "$B" get drive.seed.interface) $(vm-config "$B" get drive.seed.media) $(vm-config "$B" get drive.seed.readonly)" \
	"virtio disk true"
check_eq "the seed boots last" "$(vm-config "$B" get drive.seed.bootindex)" 100
RT="$XDG_RUNTIME_DIR/vm/$(vm-config "$B" get uuid)"

# ---- boot 1: UEFI, cloud-init ------------------------------------------------------
check "vm-run -d (UEFI)" sh -c "vm-run -q -d \"\$1\" >/dev/null" _ "$B"
if wait_ssh "UEFI boot"; then
	# runcmd runs late (cloud-final); wait for cloud-init to finish
	check_match "cloud-init finished without errors" "$(gssh cloud-init status --wait 2>&1)" 'status: done'
	check_eq "cloud-init set the hostname from user-data" "$(gssh hostname)" cloudy
	check_eq "cloud-init ran the runcmd" "$(gssh cat /var/tmp/utmkit-marker)" "runcmd-ran-$$"
	check_match "...from the NoCloud seed" "$(gssh cat /run/cloud-init/ds-identify.log /var/lib/cloud/instance/datasource 2>&1)" 'NoCloud'
	check_eq "the default user has sudo" "$(gssh sudo -n id -u)" 0
	check_match "booted through UEFI" "$(gssh 'test -d /sys/firmware/efi && echo efi')" '^efi$'
fi
stop_politely "UEFI boot"

# ---- offline ----------------------------------------------------------------------
fsck_root "after vm-stop, fsck of the root filesystem is clean"
if [ -n "$LIBGUESTFS_OK" ]; then
	vm-disk "$B" inspect --json >"$T/inspect.json" 2>"$T/inspect.err"
	check_eq "vm-disk inspect: status 0" "$?" 0
	if jq -e '.operating_systems | length == 1 and (.[0] | .distro == "debian" and .major_version == 12
		and .hostname == "cloudy" and .drive == "root")' "$T/inspect.json" >/dev/null; then
		ok "vm-disk inspect: Debian 12, hostname cloudy, on drive root"
	else
		not_ok "vm-disk inspect: $(cat "$T/inspect.json" "$T/inspect.err")"
	fi
	echo "copied-in-$$" >"$T/copied.txt"
	check "vm-disk copy-in a file to /var/tmp" vm-disk "$B" copy-in root "$T/copied.txt" /var/tmp
	fsck_root "after copy-in, fsck is clean"
else
	skip "vm-disk inspect and copy-in: libguestfs is not installed"
fi

# ---- boot 2: BIOS, the copied file, a live snapshot -------------------------------------
vm-config "$B" set firmware bios
check "vm-run -d (BIOS)" sh -c "vm-run -q -d \"\$1\" >/dev/null" _ "$B"
if wait_ssh "BIOS boot"; then
	check_match "booted through BIOS" "$(gssh 'test -d /sys/firmware/efi || echo bios')" '^bios$'
	if [ -n "$LIBGUESTFS_OK" ]; then
		check_eq "the guest reads the file copied in offline" "$(gssh cat /var/tmp/copied.txt)" "copied-in-$$"
	fi
	check "a live snapshot" vm-disk "$B" snapshot create before
	gssh 'echo after | sudo tee /var/tmp/after >/dev/null && sync'
	check_eq "a file written after it" "$(gssh cat /var/tmp/after)" after
	check "revert, live" vm-disk "$B" snapshot revert before
	# TCP sessions of before the revert are gone; a new one answers
	if wait_ssh "after the revert"; then
		check_eq "the file written after the snapshot is gone" "$(gssh 'cat /var/tmp/after 2>&1')" \
			"cat: /var/tmp/after: No such file or directory"
		check_eq "the guest runs on: cloud-init's marker is there" "$(gssh cat /var/tmp/utmkit-marker)" "runcmd-ran-$$"
		check_eq "...no filesystem errors in the kernel log" \
			"$(gssh 'sudo dmesg | grep -ci "EXT4-fs error"')" 0
	fi
fi
stop_politely "BIOS boot"
fsck_root "after the snapshot, revert and vm-stop, fsck is clean"
echo "1..$_n"
