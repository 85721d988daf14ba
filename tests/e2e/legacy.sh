#!/bin/sh
# A UTM 3 (ConfigurationVersion 2) bundle with UEFI and the efi_vars.fd
# entry UTM 3 listed as ImageType none: QEMU gets efi_vars.fd once, as the
# pflash variable store (not also as a disk: "Failed to get shared write
# lock"), and a drive with InterfaceType none becomes a bare -drive if=none.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$vars" ] || vars=/usr/share/OVMF/OVMF_VARS.fd
if [ ! -f "$vars" ]; then
	skip "no OVMF variable store (install ovmf)"
	exit 0
fi

b="$T/legacy.utm"
mkdir -p "$b/Images"
cp "$vars" "$b/Images/efi_vars.fd"
qemu-img create -q -f qcow2 "$b/Images/hd.qcow2" 64M
truncate -s 1M "$b/Images/raw.img"
drive() {
	printf '<dict><key>DriveName</key><string>%s</string><key>ImagePath</key><string>%s</string>' "$1" "$2"
	printf '<key>ImageType</key><string>%s</string><key>InterfaceType</key><string>%s</string></dict>\n' "$3" "$4"
}
{
	cat <<'X'
<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>ConfigurationVersion</key><integer>2</integer>
<key>System</key><dict><key>Architecture</key><string>x86_64</string><key>Target</key><string>q35</string>
<key>Memory</key><integer>256</integer><key>BootUefi</key><true/>
<key>SystemUUID</key><string>5A1B2C3D-1111-4222-8333-444455556666</string></dict>
<key>Networking</key><dict><key>NetworkEnabled</key><false/></dict>
<key>Drives</key><array>
X
	drive efi_vars efi_vars.fd none none
	drive drive1 hd.qcow2 disk virtio
	drive raw0 raw.img disk none
	echo '</array></dict></plist>'
} >"$b/config.plist"
_bundles="$_bundles $b"

av=$(vm-argv -q "$b" 2>&1)
check_eq "efi_vars.fd is named once (the pflash store)" "$(printf '%s\n' "$av" | grep -o 'efi_vars\.fd' | wc -l)" 1
check_match "interface none: a bare -drive if=none" "$av" "-drive if=none,id=drive-raw0,"
check "interface none: no device for it" sh -c "! printf '%s' '$av' | grep -q 'drive=drive-raw0'"
out=$(vm-run -q -d --paused "$b" 2>&1 </dev/null)
rc=$?
check_eq "legacy UEFI bundle starts ($out)" "$rc" 0
check_match "QEMU answers query-status" "$(vm-qmp "$b" query-status 2>/dev/null | jq -r .status)" '^(paused|prelaunch)$'
check "no write lock failure in QEMU's log" sh -c "! grep -qi 'lock' '$(rtdir "$b")/qemu.log' 2>/dev/null"
vm-stop -q --force "$b" >/dev/null 2>&1
check "the Drives entries are unchanged on disk" grep -q '<string>efi_vars.fd</string>' "$b/config.plist"
