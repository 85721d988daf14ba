#!/bin/sh
# kill -9 of vm-config set at every point where it changes a file (see
# faults.inc), on a vm.conf bundle and on a UTM config.plist bundle: the
# configuration is afterwards byte for byte the old one or the new one, never
# torn, and decodes; the next change, under the bundle's lock, removes the
# temporary file the killed one left, so nothing stray travels with the
# bundle (vm-pack, cp -r). And vm-config upgrade, UTM 3 to 4, killed at every
# point: the bundle reads as the same model, legacy or upgraded, its disk is
# found, and upgrading again finishes the job.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/faults.inc
. "$(dirname "$0")/faults.inc"
need_strace
cd "$T" || exit 1

# --- vm.conf -------------------------------------------------------------------------
vm-create -q --memory 256M --disk 16M --name "Fault VM" orig.utm || { not_ok "vm-create"; exit 1; }
cp -a orig.utm want.utm
vm-config want.utm set memory 512M notes "changed by the test" || not_ok "vm-config set"

setup_conf() { rm -rf w.utm && cp -a orig.utm w.utm; }
# old or new, byte for byte; decodes; the next locked write tidies up
check_conf() {
	if cmp -s w.utm/vm.conf orig.utm/vm.conf; then
		m=256
	elif cmp -s w.utm/vm.conf want.utm/vm.conf; then
		m=512
	else
		echo "vm.conf is neither the old nor the new file: $(head -c 300 w.utm/vm.conf | tr '\n' '|')"
		return 1
	fi
	vm-config -q w.utm validate || { echo "validate failed"; return 1; }
	[ "$(vm-config w.utm get memory)" = $m ] || { echo "get memory: not $m"; return 1; }
	vm-config w.utm set cpus 2 2>&1 || { echo "the next vm-config set failed"; return 1; }
	left=$(strays w.utm vm.conf Data)
	[ -z "$left" ] || { echo "left in the bundle after the next set: $left"; return 1; }
	[ "$(vm-config w.utm get cpus)" = 2 ] || { echo "the next set did not land"; return 1; }
}
fault_loop "vm-config set (vm.conf): old or new file, never torn" setup_conf check_conf \
	vm-config w.utm set memory 512M notes "changed by the test"

# --- config.plist (UTM's format, written through libplist) ---------------------------
vm-pack -q orig.utm orig.utm.zip || not_ok "vm-pack"
mkdir plist
(cd plist && unzip -q ../orig.utm.zip && rm orig.utm/vm.conf) || not_ok "unzip"
cp -a plist/orig.utm plwant.utm
vm-config plwant.utm set memory 512M notes "changed by the test" || not_ok "vm-config set (plist)"
check "the config.plist changed" sh -c '! cmp -s plist/orig.utm/config.plist plwant.utm/config.plist'

setup_plist() { rm -rf w.utm && cp -a plist/orig.utm w.utm; }
check_plist() {
	if cmp -s w.utm/config.plist plist/orig.utm/config.plist; then
		m=256
	elif cmp -s w.utm/config.plist plwant.utm/config.plist; then
		m=512
	else
		echo "config.plist is neither the old nor the new file"
		return 1
	fi
	vm-config -q w.utm validate || { echo "validate failed"; return 1; }
	[ "$(vm-config w.utm get memory)" = $m ] || { echo "get memory: not $m"; return 1; }
	vm-config w.utm set cpus 2 2>&1 || { echo "the next vm-config set failed"; return 1; }
	left=$(strays w.utm config.plist Data)
	[ -z "$left" ] || { echo "left in the bundle after the next set: $left"; return 1; }
}
fault_loop "vm-config set (config.plist): old or new file, never torn" setup_plist check_plist \
	vm-config w.utm set memory 512M notes "changed by the test"

# --- vm-config upgrade (UTM 3 to 4: a new config.plist, Images/ renamed Data/) -----------
SAMPLE="${VM_SAMPLES:-$VM_TOP/tests/samples}/Mac OS 9.2.2 (config only).utm.zip"
if [ -f "$SAMPLE" ] && command -v unzip >/dev/null; then
	mkdir up
	(cd up && unzip -q "$SAMPLE") || not_ok "unzip the UTM 3 sample"
	mv up/*.utm up/orig.utm
	setup_up() { rm -rf w.utm && cp -a up/orig.utm w.utm; }
	setup_up
	vm-config w.utm show >model.txt 2>/dev/null # the name comes from the folder's
	# the same model, legacy or upgraded; the disk found; upgrading (again) finishes
	check_up() {
		[ "$(vm-config w.utm show 2>/dev/null)" = "$(cat model.txt)" ] || { echo "show differs"; return 1; }
		sz=$(vm-disk w.utm list --json 2>/dev/null | jq -r '.[] | select(.id == "drive0") | "\(.error) \(.virtual_size)"')
		[ "$sz" = "null 2147483648" ] || { echo "drive0's image: $sz"; return 1; }
		out=$(vm-config -q w.utm upgrade 2>&1) || case $out in *"not a UTM 3 bundle; nothing to upgrade") ;; *)
			echo "upgrade again: $out"
			return 1
			;;
		esac
		[ "$(vm-config w.utm show 2>/dev/null)" = "$(cat model.txt)" ] || { echo "show differs after upgrading"; return 1; }
		# UTM 3's view.plist may stay when the kill came just before its removal
		left=$(strays w.utm config.plist Data MacOS9.2.2.icns screenshot.png view.plist)
		[ -z "$left" ] || { echo "left in the bundle: $left"; return 1; }
		[ -f "w.utm/Data/Mac OS 9.2.2.qcow2" ] || { echo "the disk is not in Data/"; return 1; }
	}
	fault_loop "vm-config upgrade: UTM 3 or UTM 4, the disk always found" setup_up check_up \
		vm-config -q w.utm upgrade
else
	skip "the UTM 3 sample or unzip is missing"
fi
