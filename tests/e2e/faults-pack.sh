#!/bin/sh
# kill -9 of vm-pack and of vm-create --from (import) at every point where
# they change a file (see faults.inc), for tar.zst and zip: the archive is
# absent or complete (it imports, the disk comes back byte for byte); the
# imported bundle is absent or complete. What the killed tool left beside its
# output (a hidden temporary file or folder) never blocks the next run.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/faults.inc
. "$(dirname "$0")/faults.inc"
need_strace
cd "$T" || exit 1

vm-create -q --memory 256M --disk 16M --name "Packed VM" src.utm || { not_ok "vm-create"; exit 1; }
# data that does not compress, so the archive takes many writes
head -c 40000 /dev/urandom >src.utm/Data/blob.bin
dd if=/dev/urandom of=src.utm/Data/hd0.qcow2 bs=64k count=1 seek=4 conv=notrunc status=none
mkdir out

# same_bundle DIR: DIR holds what src.utm holds (the config but for identity)
same_bundle() {
	cmp -s src.utm/Data/blob.bin "$1/Data/blob.bin" || { echo "$1: blob.bin differs"; return 1; }
	cmp -s src.utm/Data/hd0.qcow2 "$1/Data/hd0.qcow2" || { echo "$1: hd0.qcow2 differs"; return 1; }
	vm-config -q "$1" validate || { echo "$1: validate failed"; return 1; }
	[ "$(vm-config "$1" get name)" = "Packed VM" ] || { echo "$1: not the same config"; return 1; }
}

# --- vm-pack -------------------------------------------------------------------------------
for fmt in tar.zst utm.zip; do
	setup_pack() { rm -rf out/* out/.[!.]* chk.utm; }
	check_pack() {
		a=out/src.$fmt
		if [ -e "$a" ]; then
			vm-create -q --from "$a" chk.utm 2>&1 || { echo "the archive does not import"; return 1; }
			same_bundle chk.utm || return 1
			rm -rf chk.utm
		fi
		# the next run is not blocked by what this one left
		vm-pack -q -f src.utm "$a" 2>&1 || { echo "vm-pack again failed"; return 1; }
	}
	fault_loop "vm-pack (.$fmt): the archive absent or complete" setup_pack check_pack \
		vm-pack src.utm "out/src.$fmt"
done

# --- vm-create --from ----------------------------------------------------------------------
# the zip: its import also drops the config.plist vm-pack made for UTM
vm-pack -q src.utm src.utm.zip || not_ok "vm-pack"
setup_import() { rm -rf out/* out/.[!.]*; }
check_import() {
	if [ -e out/imp.utm ]; then
		same_bundle out/imp.utm || return 1
		left=$(strays out/imp.utm vm.conf Data)$(strays out/imp.utm/Data hd0.qcow2 blob.bin)
		[ -z "$left" ] || { echo "stray files in the bundle: $left"; return 1; }
	else
		vm-create -q --from src.utm.zip out/imp.utm 2>&1 || { echo "vm-create --from again failed"; return 1; }
	fi
}
fault_loop "vm-create --from .utm.zip: the bundle absent or complete" setup_import check_import \
	vm-create -q --from src.utm.zip out/imp.utm
