#!/bin/sh
# cloud-init NoCloud seeds (lib/cloudinit.c): vm-create --cloud-init and
# vm-disk cloud-init write Data/seed.iso, labelled cidata, on a read-only
# virtio disk (a CD-ROM where asked or where the machine has no virtio);
# the image is read back by libarchive (bsdtar), by isoinfo and by blkid;
# SSH keys land in meta-data; bad input (a missing file, YAML without its
# #cloud-config line, a private key) is one clear line naming the file and
# leaves no bundle, no image and no config change behind. Then the demo
# guest finds the seed by its label, reads it, and sees a new one that
# vm-disk puts into the running VM.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/disk.inc
. "$(dirname "$0")/disk.inc"
cd "$T" || exit 1

KEY1='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc ana@host'
KEY2='ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLpaxL/sM2csKQbe4Qx4IzgfsVS2eaJZBxRDeweVNluCVa07FtYLqLxYqgqExITdwpLscE2hYC+i+Bn3D2BNOrU= ci@lab'
F="$T/my files"
mkdir -p "$F"
printf '#cloud-config\n# hello from utmkit\nhostname: web\n' >"$F/user data"
printf '%s\n' "$KEY1" >"$F/id_ed25519.pub"
printf '# the lab key\n\n%s\n' "$KEY2" >"$F/authorized_keys"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n' >"$F/id_ed25519"
printf 'users:\n  - default\n' >"$F/no header.yaml"

# iso_ok DESC ISO: the image is a cidata seed (all three readers agree)
iso_ok() {
	check_match "$1: isoinfo -d: ISO 9660, volume id CIDATA" "$(isoinfo -d -i "$2" 2>&1)" '^Volume id: CIDATA$'
	check_match "$1: blkid: label cidata (the Joliet label, which cloud-init matches)" \
		"$(blkid -o export "$2")" '^LABEL=cidata$'
}

# ---- vm-create --cloud-init --------------------------------------------------------
B="$T/vm one.utm"
check_eq "vm-create --cloud-init --ssh-key (paths with spaces)" \
	"$(vm-create -d 64M -N none --cloud-init "$F/user data" --ssh-key "$F/id_ed25519.pub" \
		--ssh-key "$F/authorized_keys" "$T/vm one")" "$B"
ISO="$B/Data/seed.iso"
check "Data/seed.iso is there" test -f "$ISO"
check_eq "the config has the drive seed with it" "$(vm-config "$B" get drive.seed.image)" seed.iso
check_eq "...a disk, not a CD-ROM (q35's CD-ROM is AHCI, which cloud kernels lack)" "$(vm-config "$B" get drive.seed.media)" disk
check_eq "...on virtio" "$(vm-config "$B" get drive.seed.interface)" virtio
check_eq "...read-only" "$(vm-config "$B" get drive.seed.readonly)" true
check_eq "...raw, not probed" "$(vm-config "$B" get drive.seed.format)" raw
check_match "vm-disk list: seed, a read-only virtio disk" "$(vm-disk "$B" list)" '^seed +virtio +disk +raw .* ro +seed.iso$'
check_match "vm-argv: QEMU gets the seed read-only" "$(vm-argv "$B")" 'id=drive-seed,file=[^,]*/Data/seed\.iso,format=raw,readonly=on'
check_match "vm-argv: a virtio-blk device behind a root port of its own (so it can be unplugged)" \
	"$(vm-argv "$B")" 'pcie-root-port,id=rp-seed,.* virtio-blk-pci,bus=rp-seed,drive=drive-seed,id=seed'
check "vm-create --set drive.seed.media=cdrom: the seed on a CD-ROM" vm-create -q -N none \
	--set drive.seed.media=cdrom --cloud-init "$F/user data" "$T/on cd"
check_match "...on the machine's CD-ROM bus" "$(vm-disk "$T/on cd.utm" list)" '^seed +ide +cdrom +raw .* ro,removable +seed.iso$'
check_match "...read-only in argv" "$(vm-argv "$T/on cd.utm")" 'media=cdrom,file=[^,]*/Data/seed\.iso,format=raw,readonly=on'
check "vm-create -a m68k (no virtio): a CD-ROM seed" vm-create -q -N none -a m68k --cloud-init "$F/user data" "$T/q800"
check_eq "...media cdrom" "$(vm-config "$T/q800.utm" get drive.seed.media)" cdrom
check_eq "bsdtar (libarchive) lists user-data and meta-data" \
	"$(bsdtar -tf "$ISO" | grep -v '^\.$' | sort | tr '\n' ' ')" "meta-data user-data "
check "bsdtar: user-data is the file as given" sh -c "bsdtar -xOf '$ISO' user-data | cmp -s - '$F/user data'"
iso_ok "vm-create" "$ISO"
check_eq "isoinfo -f -R: the Rock Ridge names" "$(isoinfo -f -R -i "$ISO" | sort | tr '\n' ' ')" "/meta-data /user-data "
check "isoinfo -x: user-data matches" sh -c "isoinfo -R -i '$ISO' -x /user-data | cmp -s - '$F/user data'"
md=$(isoinfo -R -i "$ISO" -x /meta-data)
uuid=$(vm-config "$B" get uuid)
check_match "meta-data: instance-id is the bundle's UUID" "$md" "^instance-id: \"$uuid\"\$"
check_match "meta-data: local-hostname from the name, made a host name" "$md" '^local-hostname: "vm-one"$'
# shellcheck disable=SC2016 # $1 and $2 are sh -c's
check "meta-data: public-keys, the key of the .pub" sh -c 'printf "%s\n" "$1" | grep -qxF "  - \"$2\""' _ "$md" "$KEY1"
# shellcheck disable=SC2016
check "meta-data: ... and of the authorized_keys file (comments skipped)" sh -c 'printf "%s\n" "$1" | grep -qxF "  - \"$2\""' _ "$md" "$KEY2"
check_eq "meta-data: two keys, nothing else" "$(printf '%s\n' "$md" | grep -c '^  - ')" 2
check "no temporary files beside the bundle or in Data/" \
	sh -c "! ls -A '$T' '$B/Data' | grep -q '^\.'"

# --meta-data (keys appended) and --network-config
printf 'instance-id: lab-7\nlocal-hostname: lab7\n' >"$F/meta data"
printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n' >"$F/net.yaml"
check "vm-create --meta-data --network-config" vm-create -q -N none --cloud-init "$F/user data" \
	--meta-data "$F/meta data" --network-config "$F/net.yaml" --ssh-key "$F/id_ed25519.pub" "$T/given"
ISO2="$T/given.utm/Data/seed.iso"
check_eq "the given meta-data, the key added at its end" "$(bsdtar -xOf "$ISO2" meta-data)" \
	"$(printf 'instance-id: lab-7\nlocal-hostname: lab7\npublic-keys:\n  - "%s"' "$KEY1")"
check "network-config as given" sh -c "bsdtar -xOf '$ISO2' network-config | cmp -s - '$F/net.yaml'"
check_eq "isoinfo lists the three files" "$(isoinfo -f -R -i "$ISO2" | sort | tr '\n' ' ')" \
	"/meta-data /network-config /user-data "
check "empty user-data (/dev/null) for keys only" vm-create -q -N none --cloud-init /dev/null \
	--ssh-key "$F/id_ed25519.pub" "$T/keysonly"
check_eq "...an empty user-data in the seed" "$(bsdtar -xOf "$T/keysonly.utm/Data/seed.iso" user-data | wc -c)" 0

# create_bad DESC STATUS PATTERN ARGS...: vm-create fails with STATUS and one
# line matching PATTERN; no bundle, no temporary folder is left.
create_bad() {
	_d=$1 _want=$2 _pat=$3
	shift 3
	vm-create "$@" "$T/failed" >/dev/null 2>"$T/err.txt"
	_got=$?
	if [ "$_got" -ne "$_want" ]; then
		not_ok "$_d: status $_got, wanted $_want ($(head -n 3 "$T/err.txt"))"
	elif ! grep -Eq -- "$_pat" "$T/err.txt"; then
		not_ok "$_d: message '$(cat "$T/err.txt")' lacks /$_pat/"
	elif [ "$_want" -ne 2 ] && [ "$(wc -l <"$T/err.txt")" -ne 1 ]; then
		not_ok "$_d: wanted one line, got: $(cat "$T/err.txt")"
	elif [ -e "$T/failed.utm" ] || [ -n "$(find "$T" -maxdepth 1 -name '.failed*')" ]; then
		not_ok "$_d: a bundle or a temporary folder was left: $(ls -A "$T")"
	else
		ok "$_d"
	fi
	rm -rf "$T/failed.utm"
}
create_bad "a missing user-data file: status 1, the file named" 1 \
	"^vm-create: $T/my files/nosuch: No such file or directory\$" -d 64M --cloud-init "$F/nosuch"
create_bad "user-data that cloud-init would ignore (no #cloud-config line)" 1 \
	"^vm-create: $T/my files/no header.yaml: cloud-init would ignore it: the first line must be #cloud-config .*not 'users:'\$" \
	-d 64M --cloud-init "$F/no header.yaml"
create_bad "a private key for --ssh-key: refused, pointing at the .pub" 1 \
	"^vm-create: $T/my files/id_ed25519: a private key, which must not be copied into a VM; give its public key \($T/my files/id_ed25519.pub\)\$" \
	-d 64M --cloud-init "$F/user data" --ssh-key "$F/id_ed25519"
printf '%s\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5Wc lost\n' "$KEY1" >"$F/typo.pub"
create_bad "a key with a character lost: the file and line named" 1 "^vm-create: $T/my files/typo.pub:2: not an SSH public key" \
	--cloud-init "$F/user data" --ssh-key "$F/typo.pub"
create_bad "a missing --ssh-key file" 1 "nosuch.pub: No such file or directory" \
	--cloud-init "$F/user data" --ssh-key "$F/nosuch.pub"
create_bad "a missing --meta-data file" 1 "nosuch-md: No such file or directory" \
	--cloud-init "$F/user data" --meta-data "$F/nosuch-md"
printf 'instance-id: x\npublic-keys: [a]\n' >"$F/md-keys"
create_bad "--ssh-key with meta-data that has public-keys" 1 "md-keys: has public-keys already" \
	--cloud-init "$F/user data" --meta-data "$F/md-keys" --ssh-key "$F/id_ed25519.pub"
create_bad "--ssh-key without --cloud-init: usage" 2 "^vm-create: --ssh-key: only with --cloud-init\$" \
	--ssh-key "$F/id_ed25519.pub"
create_bad "--cloud-init with --from: usage" 2 "no other configuration options" \
	--from "$T/x.tar" --cloud-init "$F/user data"
create_bad "a user-data folder" 1 "my files: Is a directory" --cloud-init "$F"

# ---- vm-disk cloud-init on an existing bundle ----------------------------------------
vm-create -q -d 64M -N none --name "Lab Box" "$T/lab box" || { not_ok "vm-create lab box"; exit 1; }
B="$T/lab box.utm"
D="$B/Data"
check "vm-disk cloud-init on a bundle without a seed" vm-disk "$B" cloud-init "$F/user data" --ssh-key "$F/id_ed25519.pub"
check_eq "...a read-only virtio disk seed" "$(vm-config "$B" get drive.seed.interface)/$(vm-config "$B" get drive.seed.media)/$(vm-config "$B" get drive.seed.readonly)" virtio/disk/true
check_eq "...with Data/seed.iso" "$(vm-config "$B" get drive.seed.image)" seed.iso
iso_ok "vm-disk" "$D/seed.iso"
check "...user-data as given" sh -c "bsdtar -xOf '$D/seed.iso' user-data | cmp -s - '$F/user data'"
check_eq "...meta-data: the bundle's UUID and name, the key" "$(bsdtar -xOf "$D/seed.iso" meta-data)" \
	"$(printf 'instance-id: "%s"\nlocal-hostname: "lab-box"\npublic-keys:\n  - "%s"' "$(vm-config "$B" get uuid)" "$KEY1")"
printf '#!/bin/sh\necho second seed\n' >"$F/script"
check "run again: the seed is replaced" vm-disk "$B" cloud-init "$F/script"
check "...with the new user-data" sh -c "bsdtar -xOf '$D/seed.iso' user-data | cmp -s - '$F/script'"
check_eq "...no key now" "$(bsdtar -xOf "$D/seed.iso" meta-data | grep -c public-keys)" 0
check_eq "...still one seed drive" "$(vm-disk "$B" list --json | jq '[.[] | select(.id == "seed")] | length')" 1
check "...no temporary or backup files in Data/" sh -c "! ls -A '$D' | grep -q '^\.'"
check "--id ci2: another drive, Data/ci2.iso" vm-disk "$B" cloud-init "$F/user data" --id ci2
check_eq "...named in the config" "$(vm-config "$B" get drive.ci2.image)" ci2.iso
check "...labelled cidata too" sh -c "blkid -o export '$D/ci2.iso' | grep -qx LABEL=cidata"
check "--interface ide: a CD-ROM seed" vm-disk "$B" cloud-init "$F/user data" --id ci3 --interface ide
check_eq "...media cdrom on ide" "$(vm-config "$B" get drive.ci3.media)/$(vm-config "$B" get drive.ci3.interface)" cdrom/ide

cp "$D/seed.iso" "$T/seed.before"
bad "vm-disk: a private key" 1 "id_ed25519: a private key" vm-disk "$B" cloud-init "$F/user data" --ssh-key "$F/id_ed25519"
bad "vm-disk: user-data without its first line" 1 "no header.yaml: cloud-init would ignore it" vm-disk "$B" cloud-init "$F/no header.yaml"
bad "vm-disk: a missing user-data file" 1 "my files/nosuch: No such file or directory" vm-disk "$B" cloud-init "$F/nosuch"
check "...the seed is as it was" cmp -s "$D/seed.iso" "$T/seed.before"
: >"$D/other.iso"
bad "vm-disk: Data/ID.iso that is not the drive's is never replaced" 1 "other.iso: already exists and is not the medium of drive other" \
	vm-disk "$B" cloud-init "$F/user data" --id other
check_eq "...and it is untouched" "$(wc -c <"$D/other.iso")" 0
bad "vm-disk: a drive that is not removable" 1 "drive hd0: not removable \(a virtio disk\)" vm-disk "$B" cloud-init "$F/user data" --id hd0
bad "vm-disk: --interface for a drive that exists" 1 "--interface: drive seed exists" vm-disk "$B" cloud-init "$F/user data" -i scsi
bad "vm-disk: --ssh-key is not an option of insert" 2 "--ssh-key: not an option of insert" vm-disk "$B" insert seed "$D/seed.iso" --ssh-key "$F/id_ed25519.pub"
bad "vm-disk: cloud-init needs its USER_DATA" 2 "usage:" vm-disk "$B" cloud-init
check "no temporary files left in Data/" sh -c "! ls -A '$D' | grep -q '^\.'"
check_match "vm-disk --help shows cloud-init and its options" "$(vm-disk --help | tr '\n' ' ')" \
	'BUNDLE cloud-init USER_DATA.*--meta-data FILE.*--ssh-key FILE.*--network-config FILE'

# UTM's config.plist: the seed is a CD drive with its image (no format key,
# not "removable": UTM's removable drives are the ones without an image)
if vm-create -q --from "$VM_TOP/tests/samples/System 7.5.3 (Config Only).utm.zip" "$T/utm seven" 2>"$T/err.txt"; then
	U="$T/utm seven.utm"
	check "config.plist bundle: vm-disk cloud-init" vm-disk "$U" cloud-init "$F/user data" --ssh-key "$F/id_ed25519.pub"
	check_eq "...the drive in config.plist names Data/seed.iso" "$(vm-config "$U" get drive.seed.image)" seed.iso
	check_eq "...a CD" "$(vm-config "$U" get drive.seed.media)" cdrom
	check "...labelled cidata" sh -c "blkid -o export '$U/Data/seed.iso' | grep -qx LABEL=cidata"
	check "...run again" vm-disk "$U" cloud-init "$F/script"
else
	not_ok "vm-create --from a UTM sample: $(cat "$T/err.txt")"
fi

# ---- shell completion ------------------------------------------------------------------
mkdir -p "$T/comp"
: >"$T/comp/user-data"
bcomp() { (cd "$T/comp" && bash_complete "$VM_TOP/share/completion/utmkit.bash" "$@"); }
check_match "bash: vm-create --clo offers --cloud-init (and --clone)" "$(bcomp vm-create --clo)" '--cloud-init'
check_eq "bash: vm-create --cloud-init FILE" "$(bcomp vm-create --cloud-init us)" "user-data"
check_eq "bash: vm-create --ssh-key FILE" "$(bcomp vm-create --ssh-key us)" "user-data"
check_match "bash: vm-disk BUNDLE offers cloud-init" "$(bcomp vm-disk "$B" '')" '(^| )cloud-init( |$)'
check_eq "bash: vm-disk BUNDLE cloud-init USER_DATA" "$(bcomp vm-disk "$B" cloud-init us)" "user-data"
check_match "bash: vm-disk --me offers --meta-data" "$(bcomp vm-disk "$B" cloud-init x --me)" '^--meta-data$'

# ---- the guest reads the seed --------------------------------------------------------------
need_guest
# Find the disc by its label as cloud-init does (the primary volume id at
# byte 32808 of the device), mount it, check user-data and meta-data.
# shellcheck disable=SC2016 # run by the guest's shell
find_seed='for d in /dev/sr* /dev/sd* /dev/vd*; do l=$(dd if=$d bs=1 skip=32808 count=6 2>/dev/null); [ $l = CIDATA ] 2>/dev/null && mount -t iso9660 -o ro $d /mnt && break; done'
guest_bundle "$T/guest vm.utm" --cloud-init "$F/user data" --ssh-key "$F/id_ed25519.pub"
G="$T/guest vm.utm"
gu=$(vm-config "$G" get uuid)
vm-config "$G" set append "console=ttyS0 quiet utmkit.exit=status utmkit.cmd=\"$find_seed; grep -q 'hello from utmkit' /mnt/user-data && grep -q $gu /mnt/meta-data && grep -q ana@host /mnt/meta-data\""
vm-run --exit-device "$G" >"$T/guest.out" 2>&1 </dev/null
check_eq "the guest finds the seed by its label and reads user-data, instance-id and key (exit status)" "$?" 0

# live: a new seed goes into the running VM: the virtio seed is unplugged
# and the new one plugged (a disk has no tray)
vm-config "$G" set append "console=ttyS0 quiet"
boot "$G"
# the device may take a moment to appear after a plug: retry
# shellcheck disable=SC2016 # run by the guest's shell
mountseed="for i in \$(seq 50); do ($find_seed) 2>/dev/null; grep -q ' /mnt ' /proc/mounts && break; sleep 0.2; done"
check_eq "the running guest reads the seed on its virtio disk" \
	"$(gsh "$mountseed; head -n 2 /mnt/user-data | tail -n 1; umount /mnt")" "# hello from utmkit"
check "vm-disk cloud-init on the running VM (unplug and plug)" vm-disk "$G" cloud-init "$F/script"
check_eq "the guest sees the new seed" "$(gsh "$mountseed; tail -n 1 /mnt/user-data; umount /mnt")" "echo second seed"
check_eq "query-block: the running VM has the new seed, read-only" \
	"$(vm-disk "$G" list --json | jq -r '.[] | select(.id == "seed") | "\(.running.inserted) \(.readonly)"')" "$G/Data/seed.iso true"
check_eq "...and so will the next boot" "$(vm-config "$G" get drive.seed.image)" seed.iso
check "no backup left in Data/" sh -c "! ls -A '$G/Data' | grep -q '^\.'"
B=$G
bad "running: a new IDE CD-ROM cannot be hot-plugged; nothing made" 1 "drive s2: ide drives cannot be hot-plugged" \
	vm-disk "$G" cloud-init "$F/user data" --id s2 --interface ide
check "...no Data/s2.iso" test ! -e "$G/Data/s2.iso"
check "vm-stop" vm-stop -q "$G"
echo "1..$_n"
