#!/bin/sh
# kill -9 at every point where a tool changes a file (see faults.inc), for
# the tools that make disk images: vm-create with a new qcow2 disk and a
# copied kernel, and vm-disk create. Afterwards the new bundle is absent or
# complete (its config decodes, its image passes qemu-img check, the copied
# kernel is whole); the drive is in the config only with a whole image; what
# the killed tool left never blocks the next run.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/faults.inc
. "$(dirname "$0")/faults.inc"
need_strace
cd "$T" || exit 1

head -c 50000 /dev/urandom >kernel.bin

# --- vm-create --disk --kernel -------------------------------------------------------------
setup_create() { rm -rf n.utm .n.utm.tmp.*; }
complete_bundle() {
	vm-config -q n.utm validate || { echo "validate failed"; return 1; }
	[ "$(vm-config n.utm get drive.hd0.image)" = hd0.qcow2 ] || { echo "no drive hd0 in the config"; return 1; }
	qemu-img check -q n.utm/Data/hd0.qcow2 || { echo "hd0.qcow2 fails qemu-img check"; return 1; }
	cmp -s kernel.bin n.utm/Data/kernel.bin || { echo "the kernel copy differs"; return 1; }
	left=$(strays n.utm vm.conf Data)$(strays n.utm/Data hd0.qcow2 kernel.bin)
	[ -z "$left" ] || { echo "stray files in the bundle: $left"; return 1; }
}
check_create() {
	if [ -e n.utm ]; then
		complete_bundle || return 1
	else
		# absent: the same command now works
		vm-create -q --disk 32M --kernel kernel.bin n.utm 2>&1 || { echo "vm-create again failed"; return 1; }
		complete_bundle || return 1
	fi
}
fault_loop "vm-create --disk --kernel: the bundle absent or complete" setup_create check_create \
	vm-create -q --disk 32M --kernel kernel.bin n.utm

# --- vm-disk create ------------------------------------------------------------------------
vm-create -q --memory 256M orig.utm || { not_ok "vm-create"; exit 1; }
setup_disk() { rm -rf w.utm && cp -a orig.utm w.utm; }
check_disk() {
	vm-config -q w.utm validate || { echo "validate failed"; return 1; }
	img=w.utm/Data/hd1.qcow2
	if vm-config w.utm get drive.hd1.image >/dev/null 2>&1; then
		qemu-img check -q "$img" || { echo "the config has hd1 but its image fails qemu-img check"; return 1; }
	elif [ -e "$img" ]; then
		# an image made but not yet in the config: whole, and named by the retry's refusal
		qemu-img check -q "$img" || { echo "an unused hd1.qcow2 fails qemu-img check"; return 1; }
		err=$(vm-disk w.utm create hd1 32M 2>&1)
		case $err in *"drive hd1: $img already exists"*) ;; *)
			echo "the retry over the unused image says: $err"
			return 1
			;;
		esac
		rm "$img"
	fi
	vm-config w.utm get drive.hd1.image >/dev/null 2>&1 || vm-disk w.utm create hd1 32M 2>&1 ||
		{ echo "vm-disk create again failed"; return 1; }
	qemu-img check -q "$img" || { echo "hd1.qcow2 fails qemu-img check after the retry"; return 1; }
	left=$(strays w.utm/Data hd1.qcow2)
	[ -z "$left" ] || { echo "stray files in Data/ after the retry: $left"; return 1; }
}
fault_loop "vm-disk create: the drive in the config only with a whole image" setup_disk check_disk \
	vm-disk w.utm create hd1 32M
