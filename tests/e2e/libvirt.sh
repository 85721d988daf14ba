#!/bin/sh
# vm-argv --libvirt against a real libvirtd: every golden configuration's
# domain XML validates (virt-xml-validate); each x86 one is defined, started
# (TCG: domain type qemu), answers query-status through virsh, has the
# bundle's own files as its disks, and is destroyed and undefined; the demo
# guest boots under libvirt to its marker on the serial console (the pty's
# log, RUNTIME/console.log). libvirtd and virtlogd are started here when
# they do not run (and stopped again); the test skips, saying why, only
# where they cannot start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vmrun.inc"

for t in virsh virt-xml-validate libvirtd virtlogd; do
	if ! command -v "$t" >/dev/null; then
		skip "$t not installed (scripts/install-deps: libvirt-clients, libvirt-daemon-system)"
		exit 0
	fi
done

# ---- every golden's XML validates (no daemon needed) ----
share="/tmp/utmkit-golden share, with comma"
mkdir -p "$share"
chmod 755 "$share"
at_exit "rm -rf \"$share\""
# QEMU runs as libvirt's user (libvirt-qemu): the bundles must be reachable
chmod 755 "$T"
n_golden=0
for conf in "$VM_TOP"/tests/golden/*.conf; do
	g=$(basename "$conf" .conf)
	b="$T/lv-$g.utm"
	mkdir -p "$b/Data"
	# a fresh identity and free ports: other tests and VMs may hold the goldens'
	sed -e "s/^uuid = .*/uuid = '$(cat /proc/sys/kernel/random/uuid)'/" \
		-e "s/tcp::2222-/tcp:127.0.0.1:0-/; s/udp:127.0.0.1:5353-/udp:127.0.0.1:0-/" \
		-e "s/127.0.0.1:20001/127.0.0.1:$((30000 + $$ % 20000))/" "$conf" >"$b/vm.conf"
	vm-config "$b" set name "utmkit-lv-$$-$g" >/dev/null
	# the images the config names, each in the format its name says
	for img in $(sed -n "s/^[[:space:]]*image = '\(.*\)'/\1/p" "$b/vm.conf"); do
		case $img in
		*.qcow2) qemu-img create -q -f qcow2 "$b/Data/$img" 16M ;;
		*) qemu-img create -q -f raw "$b/Data/$img" 1M ;;
		esac
	done
	# a kernel QEMU can load: the demo guest's, where it is built
	for f in kernel initrd dtb bios; do
		v=$(sed -n "s/^$f = '\(.*\)'/\1/p" "$b/vm.conf")
		[ -z "$v" ] && continue
		case $f in
		kernel) cp "$GUEST_DIR/vmlinuz" "$b/Data/$v" 2>/dev/null || : >"$b/Data/$v" ;;
		initrd) cp "$GUEST_DIR/initrd.img" "$b/Data/$v" 2>/dev/null || : >"$b/Data/$v" ;;
		*) : >"$b/Data/$v" ;;
		esac
	done
	chmod -R a+rwX "$b"
	if ! vm-argv --libvirt "$b" >"$T/$g.xml" 2>"$T/$g.err"; then
		not_ok "$g: vm-argv --libvirt failed: $(cat "$T/$g.err")"
		continue
	fi
	check "$g: the domain XML validates" virt-xml-validate "$T/$g.xml" domain
	n_golden=$((n_golden + 1))
done
check "every golden configuration was mapped" [ "$n_golden" -gt 20 ]

# the warnings: what libvirt cannot say is on stderr, and in <qemu:commandline>
check_match "port forwards: a warning" "$(cat "$T/x86-net-forward.err")" "net.net0: port forwards: .*<qemu:commandline>"
check "port forwards: the NIC in qemu:commandline" grep -q 'hostfwd=tcp:127.0.0.1:0-:22' "$T/x86-net-forward.xml"
check_match "NVMe: a warning" "$(cat "$T/x86-q35-disks.err")" "drive.nv0: interface nvme"
check_match "extra_args: a warning" "$(cat "$T/x86-extra.err")" "extra_args: 4 arguments"
check "no warning where libvirt says it all" [ ! -s "$T/x86-devices.err" ]
check "MACs are kept" grep -q '<mac address="52:54:00:12:34:57"/>' "$T/x86-net-e1000.xml"
check "TCG: domain type qemu" grep -q '<domain [^>]*type="qemu"' "$T/x86-minimal.xml"
check "UEFI: loader and the bundle's nvram" grep -q "<nvram[^>]*>$T/lv-x86-uefi.utm/Data/efi_vars.fd<" "$T/x86-uefi.xml"

# ---- a real libvirtd ----
uri=qemu:///system
# virtlogd (the serial logs) is started here when missing, and again before
# each domain: one started by a test has been seen to vanish mid-run
virtlogd_started=""
ensure_virtlogd() {
	[ -S /run/libvirt/virtlogd-sock ] && pgrep -x virtlogd >/dev/null && return 0
	virtlogd -d && [ -z "$virtlogd_started" ] && virtlogd_started=1 &&
		at_exit 'kill "$(cat /run/virtlogd.pid)" 2>/dev/null'
	i=0
	while [ ! -S /run/libvirt/virtlogd-sock ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
ensure_virtlogd
if ! virsh -c $uri version >/dev/null 2>&1; then
	libvirtd -d >"$T/libvirtd.err" 2>&1 && at_exit 'kill "$(cat /run/libvirtd.pid)" 2>/dev/null'
	i=0
	while ! virsh -c $uri version >/dev/null 2>&1 && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
fi
if ! virsh -c $uri version >/dev/null 2>&1; then
	skip "libvirtd cannot start here: $(cat "$T/libvirtd.err" 2>/dev/null | tail -n 1)"
	exit 0
fi
export LIBVIRT_DEFAULT_URI=$uri

# domain NAME: defined from XML, started, answering, its disks the bundle's
domain_cycle() {
	g=$1 dom=utmkit-lv-$$-$1 b="$T/lv-$1.utm"
	at_exit "virsh destroy $dom >/dev/null 2>&1; virsh undefine --nvram $dom >/dev/null 2>&1"
	# argv.sh, run alongside, removes the goldens' shared folder when it ends
	mkdir -p "$share"
	ensure_virtlogd
	if ! virsh define "$T/$g.xml" >"$T/$g.virsh" 2>&1; then
		not_ok "$g: virsh define: $(cat "$T/$g.virsh")"
		return
	fi
	if ! virsh start "$dom" >"$T/$g.virsh" 2>&1; then
		not_ok "$g: virsh start: $(tail -n 2 "$T/$g.virsh" | tr '\n' ' ')"
		virsh undefine --nvram "$dom" >/dev/null 2>&1
		return
	fi
	ok "$g: virsh define and start"
	check_match "$g: query-status through virsh" \
		"$(virsh qemu-monitor-command "$dom" '{"execute":"query-status"}' 2>&1)" '"status":"running"'
	# (NVMe disks are in <qemu:commandline>: libvirt does not list them)
	want=$(sed -n "s/^[[:space:]]*image = '\(.*\)'/\1/p" "$b/vm.conf" | grep -v '^nv' | sort | tr '\n' ' ')
	got=$(virsh domblklist "$dom" | awk '$2 ~ /^\// { print $2 }' | sed "s|^$b/Data/||" | sort | tr '\n' ' ')
	check_eq "$g: the disks are the bundle's files" "$got" "$want"
	check "$g: virsh destroy" virsh destroy "$dom" >/dev/null
	check "$g: virsh undefine" virsh undefine --nvram "$dom" >/dev/null
}

for conf in "$VM_TOP"/tests/golden/x86-*.conf "$VM_TOP"/tests/golden/i386-*.conf; do
	# a USB NIC goes to <qemu:commandline>, which QEMU reads before the
	# USB controller libvirt adds: not a config libvirt can express
	if grep -q "model = 'usb-" "$conf"; then
		skip "$(basename "$conf" .conf): a USB NIC (libvirt's <interface> has none)"
		continue
	fi
	domain_cycle "$(basename "$conf" .conf)"
done

# ---- the demo guest boots under libvirt to its marker ----
if [ ! -f "$GUEST_DIR/vmlinuz" ]; then
	skip "demo guest not built in $GUEST_DIR (run: make guest)"
	exit 0
fi
vm-create -q --memory 256M --net none --kernel "$GUEST_DIR/vmlinuz" --initrd "$GUEST_DIR/initrd.img" \
	--append "console=ttyS0" --name "utmkit-lv-$$-demo" "$T/lv-demo.utm" || not_ok "vm-create demo"
chmod -R a+rX "$T/lv-demo.utm"
vm-argv --libvirt "$T/lv-demo.utm" >"$T/demo.xml"
dom=utmkit-lv-$$-demo
ensure_virtlogd
at_exit "virsh destroy $dom >/dev/null 2>&1; virsh undefine $dom >/dev/null 2>&1"
check "demo: virsh define" virsh define "$T/demo.xml" >/dev/null
check "demo: virsh start" virsh start "$dom" >/dev/null
log="$(rtdir "$T/lv-demo.utm")/console.log"
wait_for "$log" "UTMKIT-READY" "$(secs 120)"
check "demo: the guest reached its marker on the serial console (its log)" grep -q "UTMKIT-READY" "$log"
check "demo: virsh console's pty" sh -c "virsh ttyconsole $dom | grep -q '^/dev/pts/'"
check "demo: virsh destroy" virsh destroy "$dom" >/dev/null
check "demo: virsh undefine" virsh undefine "$dom" >/dev/null
