#!/bin/sh
# Issue 15, item 1: no config value adds a key to a QEMU option. A value is
# refused (vm-config set, vm-create, vm-argv, vm-run) with an error naming
# its key, or reaches QEMU with its commas doubled; extra_args stays the
# one raw way in, and an imported bundle's raw arguments are shown.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# How many keys named x-injected the option strings of vm-argv -0 output
# FILE have (split at single commas, as QEMU does), a JSON one counting too;
# SKIP: an option whose keys the value may set (machine_props: -machine).
keys_of() {
	tr '\0' '\n' <"$1" | awk -v skip="${2:-}" '
	BEGIN { split("-name -machine -accel -cpu -drive -device -netdev -net -chardev -mon -serial -gdb -fsdev -spice -vnc -audiodev -tpmdev -add-fd -rtc -sandbox", a, " ")
		for (i in a) opt[a[i]] = 1 }
	(prev in opt) && prev != skip {
		v = $0; gsub(/,,/, "\001", v); n = split(v, p, ",")
		for (i = 1; i <= n; i++) if (p[i] ~ /^x-injected/ || (i == 1 && p[i] ~ /^[{]/)) c++
	}
	{ prev = $0 }
	END { print c + 0 }'
}

vm-create -q -N user br
B=br.utm
cp "$B/vm.conf" before.conf

# The reproduction: a bridge name carrying a helper= (run as root by QEMU).
vm-config "$B" set net.br0.mode bridge net.br0.bridge "br0,helper=touch $T/PWNED;" 2>err.txt
check_eq "vm-config set refuses a bridge with a comma (status 1)" "$?" 1
check_match "...naming the key and the grammar" "$(cat err.txt)" \
	"vm.conf: net\.br0\.bridge: 'br0,helper=touch .*/PWNED;' is not an interface name"
check "...and the bundle is unchanged" cmp -s before.conf "$B/vm.conf"

# The same value written into vm.conf by hand (or by an older utmkit).
sed -i "s|^net net0 {|net br0 {\n mode = 'bridge'\n bridge = 'br0,helper=touch $T/PWNED;'\n mac = '52:54:00:12:34:56'\n}\nnet net0 {|" "$B/vm.conf"
vm-config -q "$B" validate 2>err.txt
check_eq "vm-config validate: not valid" "$?" 1
check_match "...naming the key" "$(cat err.txt)" "net\.br0\.bridge: 'br0,helper=touch"
vm-argv -0 "$B" >argv.txt 2>err.txt
check_eq "vm-argv refuses it (status 1)" "$?" 1
check "...and prints no helper=" sh -c '! tr "\0" "\n" <argv.txt | grep -q "helper="'
check_match "...naming the key" "$(cat err.txt)" "net\.br0\.bridge: .* is not an interface name"
vm-run --no-sandbox "$B" >/dev/null 2>err.txt
check_eq "vm-run --no-sandbox refuses it (status 1)" "$?" 1
check "...and ran nothing" test ! -e "$T/PWNED"
cp before.conf "$B/vm.conf"

vm-create -q -N "bridge:br0,helper=x" nb 2>err.txt
check_eq "vm-create -N bridge:BR with a comma is refused (a usage error, status 2)" "$?" 2
check_match "...naming the key" "$(cat err.txt)" "net\.net0\.bridge: 'br0,helper=x' is not an interface name"
check "...and leaves no bundle" test ! -e nb.utm

# Every value QEMU reads as a name, an address or a number: refused at set.
bad() { # bad KEY VALUE
	vm-config "$B" set "$1" "$2" 2>err.txt
	st=$?
	if [ "$st" -ne 1 ]; then
		not_ok "set $1 '$2': status $st, wanted 1"
	elif ! grep -q -- "$1: '" err.txt; then
		not_ok "set $1 '$2': the error does not name the key: $(cat err.txt)"
	elif ! cmp -s before.conf "$B/vm.conf"; then
		not_ok "set $1 '$2': the bundle changed"
	else
		ok "set $1 '$2' refused: $(sed 's/.*is not //' err.txt)"
	fi
}
J=",x-injected=on"
bad sound "intel-hda$J"
bad display_device "virtio-vga$J"
bad machine "q35$J"
bad machine_props "hpet=off,$J"
bad cpu "max$J"
bad cpu_flags "+avx$J"
bad net.net0.subnet "10.0.2.0/24$J"
bad net.net0.ifname "tap0$J"
bad net.net0.bridge "br0$J"
bad net.net0.address "127.0.0.1:1234$J"
bad net.net0.address "1.2.3.4$J:1"
bad net.net0.forward "tcp:$J:22-:22"
bad net.net0.model "e1000$J"
bad net.net0.mac "52:54:00:00:00:01$J"
bad drive.hd0.format "qcow2$J"
bad uuid "11111111-2222-4333-8444-555555555555$J"
vm-config "$B" set share.s.path "$T" share.s.tag "tag$J" 2>err.txt
check_match "share.s.tag with a comma refused" "$(cat err.txt)" "share\.s\.tag: 'tag,x-injected=on' is not a 9p tag"

# Free text (names, file names) reaches QEMU with its commas doubled.
vm-config "$B" set name "a$J" drive.hd0.image "hd0$J.qcow2"
vm-argv -0 "$B" | tr '\0' '\n' >argv.txt
check "the name is escaped" grep -qx "guest=a,,x-injected=on" argv.txt
check "a file name is escaped" grep -q "file=.*/Data/hd0,,x-injected=on.qcow2," argv.txt

# Every key vm-config lists, set to a hostile value on a bundle using it:
# refused naming the key, or no option string of vm-argv gains the key.
cp before.conf "$B/vm.conf"
vm-config "$B" set display vnc sound AC97 tpm true kernel vmlinuz initrd initrd \
	net.t.mode tap net.t.mac 52:54:00:00:00:02 net.b.mode bridge net.b.bridge br0 net.b.mac 52:54:00:00:00:03 \
	net.s.mode socket net.s.address 127.0.0.1:1 net.s.mac 52:54:00:00:00:04 \
	net.m.mode mcast net.m.address 230.0.0.1:1 net.m.mac 52:54:00:00:00:05 \
	serial.f.mode file serial.f.path f.log share.s.path "$T" allow_paths "$T"
cp "$B/vm.conf" walk.conf
check "the walk's bundle uses every network mode, a serial file and a share" \
	sh -c 'vm-argv -0 "$1" | tr "\0" "\n" | grep -q "^bridge,id=net-b,br=br0$"' _ "$B"
check_eq "...and vm-argv finds no injected key in it" "$(vm-argv -0 "$B" >argv.bin && keys_of argv.bin)" 0
refused=0 built=0 walked=""
for key in $(vm-config keys | awk '{ print $1 }'); do
	[ "$key" = extra_args ] && continue # raw by design
	case $key in
	drive.ID.*) ids="hd0 cd0" ;;
	net.ID.*) ids="net0 t b s m" ;;
	serial.ID.*) ids="f" ;;
	share.ID.*) ids="s" ;;
	*) ids="-" ;;
	esac
	for id in $ids; do
		k=$(echo "$key" | sed "s/\.ID\./.$id./")
		for v in "v$J" "$J" "v,,,x-injected=on" "$T/v$J" "v=1$J"; do
			cp walk.conf "$B/vm.conf"
			if ! vm-config "$B" set "$k" "$v" 2>err.txt; then
				grep -q -- "$k" err.txt || not_ok "set $k '$v': the error does not name the key: $(cat err.txt)"
				refused=$((refused + 1))
			elif ! vm-argv -0 "$B" >argv.bin 2>err.txt; then
				grep -q -- "$k" err.txt || not_ok "vm-argv with $k '$v': the error does not name the key: $(cat err.txt)"
				refused=$((refused + 1))
			else
				skip=""
				[ "$k" = machine_props ] && skip=-machine
				n=$(keys_of argv.bin "$skip")
				[ "$n" -eq 0 ] || not_ok "$k '$v' adds a key: $(tr '\0' ' ' <argv.bin | grep -o '[^ ]*x-injected[^ ]*')"
				built=$((built + 1))
			fi
		done
		walked="$walked $k"
	done
done
ok "every key ($(echo $walked | wc -w) keys, $((refused + built)) hostile values): $refused refused naming the key, $built in the argv without a new key"
cp before.conf "$B/vm.conf"

# An imported bundle's raw arguments are shown, as its allow_paths are.
vm-config "$B" set extra_args -no-reboot
vm-config "$B" add extra_args "-device"
vm-config "$B" add extra_args "virtio-rng-pci"
vm-pack -q "$B" raw.zip
vm-create -q --from raw.zip imported 2>err.txt
check_eq "the import succeeds" "$?" 0
check_match "...and warns of extra_args, listing them" "$(cat err.txt)" \
	"raw arguments \(extra_args\): '-no-reboot' '-device' 'virtio-rng-pci'"
check_eq "...which stay (the deliberate way to pass QEMU arguments)" "$(vm-config imported.utm get extra_args | wc -l)" 3

echo "1..$_n"
