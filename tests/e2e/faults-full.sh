#!/bin/sh
# A full disk (a 2 MiB tmpfs) under the tools that write: vm-pack, vm-create
# (a copied kernel, a new disk, an import), vm-config set, vm-disk create,
# attach --copy and mkiso. Each exits 1 with a message that names the file and
# says "No space left on device", and leaves nothing half-written: no output,
# no temporary file, the old configuration byte for byte. Once there is room
# again, the same commands work.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/faults.inc
. "$(dirname "$0")/faults.inc"
cd "$T" || exit 1

mkdir full
if ! mount -t tmpfs -o size=2M,mode=755 tmpfs "$T/full" 2>/dev/null; then
	skip "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)"
	exit 0
fi
# shellcheck disable=SC2016 # expanded at exit
at_exit 'umount "$T/full" 2>/dev/null || umount -l "$T/full"'
F=full
NOSPC="No space left on device"

# fill: leave about $1 KiB free on the tmpfs (0: none at all)
fill() {
	rm -f $F/fill
	avail=$(df -k --output=avail $F | tail -n 1)
	if [ "$1" -eq 0 ]; then
		dd if=/dev/zero of=$F/fill bs=4k status=none 2>/dev/null
	else
		dd if=/dev/zero of=$F/fill bs=1k count=$((avail - $1)) status=none
	fi
}
# listing DIR: what DIR holds, hidden files too, one line
listing() { strays "$1"; }

# full_fails DESC PATTERN CMD...: CMD exits 1 saying PATTERN and "No space left"
full_fails() {
	_d=$1 _pat=$2
	shift 2
	"$@" >/dev/null 2>"$T/err"
	_st=$?
	if [ $_st -ne 1 ]; then
		not_ok "$_d: status $_st, wanted 1 ($(head -n 2 "$T/err"))"
	elif ! grep -q "$NOSPC" "$T/err" || ! grep -Eq -- "$_pat" "$T/err"; then
		not_ok "$_d: the message does not say /$_pat/ and '$NOSPC': $(cat "$T/err")"
	elif grep -qv "^$1: " "$T/err"; then
		not_ok "$_d: a line does not start with '$1: ': $(cat "$T/err")"
	else
		ok "$_d"
	fi
}

vm-create -q --memory 256M src.utm || { not_ok "vm-create"; exit 1; }
head -c 3000000 /dev/urandom >src.utm/Data/big.bin # does not compress, does not fit
head -c 3000000 /dev/urandom >kernel.bin

# --- vm-pack ------------------------------------------------------------------------------
for fmt in tar.zst utm.zip; do
	full_fails "vm-pack .$fmt to a full disk: exit 1, says why" "^vm-pack: $F/s.$fmt: " vm-pack src.utm "$F/s.$fmt"
	check_eq "...nothing left (.$fmt)" "$(listing $F)" ""
done

# --- vm-create ----------------------------------------------------------------------------
full_fails "vm-create --kernel (a copy) on a full disk: exit 1, says why" "^vm-create: $F/k.utm: not created" \
	vm-create --kernel kernel.bin "$F/k.utm"
check_eq "...no bundle, no temporary folder" "$(listing $F)" ""

fill 64
full_fails "vm-create --disk (qemu-img) on a full disk: exit 1, says why" "^vm-create: $F/d.utm: not created" \
	vm-create --disk 4G "$F/d.utm"
check_eq "...no bundle, no temporary folder" "$(listing $F)" "fill "
rm -f $F/fill

vm-pack -q src.utm src.tar.zst || not_ok "vm-pack"
full_fails "vm-create --from (import) on a full disk: exit 1, says why" "^vm-create: src.tar.zst: src.utm/Data/big.bin: " \
	vm-create --from src.tar.zst "$F/i.utm"
check_eq "...no bundle, no temporary folder" "$(listing $F)" ""

# --- vm-config set ------------------------------------------------------------------------
vm-create -q --memory 256M "$F/c.utm" || not_ok "vm-create on the tmpfs"
cp $F/c.utm/vm.conf before.conf
fill 0
full_fails "vm-config set on a full disk: exit 1, names vm.conf" "^vm-config: $F/c.utm/vm.conf: $NOSPC" \
	vm-config "$F/c.utm" set memory 512M notes "a change that does not fit"
check "...the old vm.conf, byte for byte" cmp -s before.conf $F/c.utm/vm.conf
check_eq "...no temporary file" "$(listing $F/c.utm)" "Data vm.conf "

# --- vm-disk ------------------------------------------------------------------------------
fill 8
full_fails "vm-disk create on a full disk: exit 1, says why" "^vm-disk: $F/c.utm: drive hd1: " \
	vm-disk "$F/c.utm" create hd1 4G
check "...the config unchanged" cmp -s before.conf $F/c.utm/vm.conf
check_eq "...no image, no temporary file" "$(listing $F/c.utm/Data)" ""

rm -f $F/fill
head -c 3145728 /dev/urandom >disk.raw
full_fails "vm-disk attach --copy on a full disk: exit 1, says why" "^vm-disk: $F/c.utm: " \
	vm-disk "$F/c.utm" attach --copy disk.raw
check "...the config unchanged" cmp -s before.conf $F/c.utm/vm.conf
check_eq "...no copy, no temporary file" "$(listing $F/c.utm/Data)" ""

mkdir iso && cp kernel.bin iso/
full_fails "vm-disk mkiso to a full disk: exit 1, says why" "^vm-disk: $F/x.iso: " vm-disk mkiso "$F/x.iso" iso
check_eq "...no image, no temporary file" "$(listing $F)" "c.utm "

# --- room again: the same commands work ----------------------------------------------------------
rm -f $F/fill
check "room again: vm-config set works" vm-config "$F/c.utm" set memory 512M
check "room again: vm-disk create works" vm-disk -q "$F/c.utm" create hd1 64M
rm -f src.utm/Data/big.bin
check "room again: vm-pack works" vm-pack -q src.utm "$F/s.tar.zst"
