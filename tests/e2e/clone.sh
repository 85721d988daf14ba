#!/bin/sh
# vm-create --clone: a new identity (UUID, MAC, name), disks copied sparse;
# --linked: qcow2 overlays on the source's images (read-only files after);
# --with-state: the saved state goes along and the clone resumes it; no
# clone of a running VM. The demo guest (TCG) shows the MAC it sees.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest
command -v socat >/dev/null || { skip "socat is not installed"; echo "1..$_n"; exit 0; }

BOOT=120
# QEMU (as utmkit or nobody, under root) opens a linked clone's backing
# file by its path: the folders above the source must let it through.
chmod 711 "$T"
S=$T/src.utm
vm-create -q --memory 256M --kernel "$GUEST_DIR/vmlinuz" --initrd "$GUEST_DIR/initrd.img" \
	--append "console=ttyS0 quiet utmkit.run=shell" --disk 20G "$S" || { not_ok "vm-create"; exit 1; }
_bundles="$_bundles $S"
disk=$(vm-config "$S" get drive.hd0.image)
# gsh RT CMD: type CMD on the console of the VM with runtime dir RT
gsh() { { printf '%s\n' "$2"; sleep 1; } | socat -u - "UNIX-CONNECT:$1/console.sock"; }
macs() { vm-config "$1" get net.net0.mac; }

# ---- a full clone ---------------------------------------------------------
check_eq "vm-create --clone: prints the path" "$(vm-create --clone "$S" "$T/full")" "$T/full.utm"
_bundles="$_bundles $T/full.utm"
F=$T/full.utm
check "a new UUID" test "$(vm-config "$F" get uuid)" != "$(vm-config "$S" get uuid)"
check_eq "the name from PATH" "$(vm-config "$F" get name)" full
check "new MAC addresses" test "$(macs "$F")" != "$(macs "$S")"
check "the disk copied" cmp -s "$S/Data/$disk" "$F/Data/$disk"
check "...sparse (20 GiB, a few blocks on disk)" test "$(du -k "$F/Data/$disk" | cut -f1)" -lt 10240
check "the kernel copied" cmp -s "$S/Data/vmlinuz" "$F/Data/vmlinuz"
check_eq "vm-create --clone --name" "$(vm-create --clone "$S" --name 'Second one' "$T/named")" "$T/named.utm"
check_eq "...the name given" "$(vm-config "$T/named.utm" get name)" "Second one"
vm-create -q --clone "$S" "$T/full" 2>"$T/exists.err"
check_eq "onto an existing bundle: refused" "$?" 1
vm-create -q --clone "$S" --memory 1G "$T/x" 2>/dev/null
check_eq "--clone with a configuration option: usage error" "$?" 2
check "nothing half-made left beside" sh -c '! ls -a "$1" | grep -q "\.tmp\."' _ "$T"

# ---- the clone boots with its own MAC --------------------------------------------
RF=$(rtdir "$F")
check "the clone boots" sh -c 'vm-run -q -d "$1" >/dev/null' _ "$F"
check "...booted" wait_for "$RF/console.log" UTMKIT-READY $BOOT
gsh "$RF" 'echo "mac=$(cat /sys/class/net/eth0/address)"'
fmac=$(vm-config "$F" get net.net0.mac | tr A-F a-f)
check "...the guest sees the clone's MAC ($fmac)" wait_for "$RF/console.log" "mac=$fmac" 30
vm-stop -q -f "$F"

# ---- a running source is refused -------------------------------------------------
RS=$(rtdir "$S")
vm-run -q -d "$S" >/dev/null
vm-create -q --clone "$S" "$T/busy" 2>"$T/busy.err"
check_eq "cloning a running VM: refused" "$?" 1
check_match "...saying so" "$(cat "$T/busy.err")" 'running; stop it first'
check "...nothing made" test ! -e "$T/busy.utm"

# ---- --with-state ---------------------------------------------------------------
check "source booted" wait_for "$RS/console.log" UTMKIT-READY $BOOT
gsh "$RS" 'echo cloned-ram >/tmp/marker'
check "source saved" vm-stop -q --save "$S"
check "a plain clone leaves the state behind" sh -c 'vm-create -q --clone "$1" "$2" && test ! -e "$2.utm/Data/vmstate"' _ "$S" "$T/nostate"
check "--with-state copies it" sh -c 'vm-create -q --clone "$1" --with-state "$2" && test -f "$2.utm/Data/vmstate"' _ "$S" "$T/ws"
_bundles="$_bundles $T/ws.utm"
W=$T/ws.utm
RW=$(rtdir "$W")
check_eq "...vm-ls: suspended" "$(state "$W")" suspended
check "...the clone resumes it" sh -c 'vm-run -q -d "$1" >/dev/null' _ "$W"
gsh "$RW" 'echo "m=$(cat /tmp/marker)"'
check "...with the source's RAM" wait_for "$RW/console.log" 'm=cloned-ram' 30
check "...and no boot" sh -c '! grep -q UTMKIT-READY "$1"' _ "$RW/console.log"
vm-stop -q -f "$W"
check "the source's state is still there" test -f "$S/Data/vmstate"
vm-create -q --clone "$T/nostate.utm" --with-state "$T/ws2" 2>"$T/ws2.err"
check_eq "--with-state without a saved state: refused" "$?" 1

# ---- --linked ----------------------------------------------------------------
t0=$(now_ms)
check "vm-create --clone --linked" sh -c 'vm-create -q --clone "$1" --linked "$2"' _ "$S" "$T/lnk"
echo "# linked clone of a 20 GiB bundle: $(($(now_ms) - t0)) ms"
L=$T/lnk.utm
_bundles="$_bundles $L"
info=$(qemu-img info --output=json "$L/Data/$disk")
check_eq "...the disk is a qcow2 overlay" "$(echo "$info" | jq -r .format)" qcow2
check_eq "...on the source's image" "$(echo "$info" | jq -r '."full-backing-filename"')" "$(realpath "$S/Data/$disk")"
check_eq "...of the same size" "$(echo "$info" | jq -r '."virtual-size"')" 21474836480
check_eq "...the config says qcow2" "$(vm-config "$L" get drive.hd0.format)" qcow2
check "...the source's image is read-only now" sh -c '[ -z "$(find "$1" -perm /222)" ]' _ "$S/Data/$disk"
check "...the kernel is a copy" cmp -s "$S/Data/vmlinuz" "$L/Data/vmlinuz"
check "...no saved state" test ! -e "$L/Data/vmstate"
check "the linked clone boots" sh -c 'vm-run -q --fresh -d "$1" >/dev/null' _ "$L"
check "...booted" wait_for "$(rtdir "$L")/console.log" UTMKIT-READY $BOOT
vm-stop -q -f "$L"
echo "1..$_n"
