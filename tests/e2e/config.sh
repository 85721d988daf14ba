#!/bin/sh
# vm-create, vm-config and vm-argv from the outside: output, exit statuses,
# and bad input that must leave a bundle byte-for-byte unchanged.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

out=$(vm-create --name "My VM" --memory 1G --cpus 2 --disk 2G --cdrom - --forward tcp:2222-:22 "with space/my vm" 2>&1)
check_status "vm-create fails when the parent folder is missing" 1 vm-create "no/such/dir/x" 2>/dev/null
mkdir "with space"
out=$(vm-create --name "My VM" --memory 1G --cpus 2 --disk 2G --cdrom - --forward tcp:2222-:22 "with space/my vm")
check_eq "vm-create prints the bundle path" "$out" "with space/my vm.utm"
B="with space/my vm.utm"
check "the bundle has vm.conf and a qcow2 disk" test -f "$B/vm.conf" -a -f "$B/Data/hd0.qcow2"
check_eq "the disk has the asked size" "$(qemu-img info --output=json "$B/Data/hd0.qcow2" | jq '."virtual-size"')" 2147483648
check_eq "get memory prints MiB" "$(vm-config "$B" get memory)" 1024
check_eq "get cpus" "$(vm-config "$B" get cpus)" 2
check_eq "defaults fill in: machine" "$(vm-config "$B" get machine)" q35
check_match "a fresh UUID" "$(vm-config "$B" get uuid)" '^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$'
check_match "a generated MAC" "$(vm-config "$B" get net.net0.mac)" '^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$'
check_eq "the forward rule" "$(vm-config "$B" get net.net0.forward)" "tcp::2222-:22"
u1=$(vm-config "$B" get uuid)
vm-create -q "second" && check "two bundles never share a UUID" test "$u1" != "$(vm-config second.utm get uuid)"

check "set two keys at once" vm-config "$B" set memory 2G drive.cd0.interface scsi
check_eq "set memory 2G" "$(vm-config "$B" get memory)" 2048
check_eq "sizes in MiB too" "$(vm-config "$B" set memory 1536M && vm-config "$B" get memory)" 1536
check "add to a list" vm-config "$B" add net.net0.forward udp::5353-:53
check_eq "the list has both" "$(vm-config "$B" get net.net0.forward | wc -l)" 2
check "unset resets to the default" vm-config "$B" unset cpus
check_eq "cpus back to 1" "$(vm-config "$B" get cpus)" 1
check_status "get of an unset key exits 1" 1 vm-config "$B" get notes
check "show --json is valid JSON with every field" sh -c "vm-config '$B' show --json | jq -e '.memory == 1536 and (.drives | length) == 2 and .nets[0].forward[1] == \"udp::5353-:53\"' >/dev/null"
check "validate a good bundle" vm-config -q "$B" validate

# Bad input: one clear line, status 1 (2 for usage), the bundle unchanged.
cp "$B/vm.conf" before.conf
bad() { # bad DESC STATUS PATTERN CMD...
	d=$1 want=$2 pat=$3
	shift 3
	"$@" 2>err.txt >/dev/null
	got=$?
	if [ "$got" -ne "$want" ]; then
		not_ok "$d: status $got, wanted $want"
	elif ! grep -Eq -- "$pat" err.txt; then
		not_ok "$d: message '$(cat err.txt)' lacks /$pat/"
	elif [ "$want" -ne 2 ] && [ "$(wc -l <err.txt)" -ne 1 ]; then
		not_ok "$d: wanted one line, got: $(cat err.txt)"
	elif ! cmp -s before.conf "$B/vm.conf"; then
		not_ok "$d: the bundle changed"
	else
		ok "$d"
	fi
}
bad "unknown key" 1 "^vm-config: .*vm.conf: frob: unknown key" vm-config "$B" set frob 1
bad "wrong type" 1 "cpus: 'many' is not an integer" vm-config "$B" set cpus many
bad "bad enum" 1 "arch: 'vax' is not one of" vm-config "$B" set arch vax
bad "bad size" 1 "memory: '12Q'" vm-config "$B" set memory 12Q
bad "drive path with .." 1 "drive.hd0.image: '../../etc/shadow' leaves the bundle" vm-config "$B" set drive.hd0.image ../../etc/shadow
bad "one bad pair spoils the set" 1 "cpus" vm-config "$B" set memory 4G cpus -3
bad "missing bundle" 1 "^vm-config: nosuch: no such bundle" vm-config nosuch get memory
bad "usage error" 2 "^usage: vm-config" vm-config "$B" set memory
bad "unknown verb" 2 "unknown command" vm-config "$B" frob
bad "vm-argv on a missing bundle" 1 "^vm-argv: nosuch: no such bundle" vm-argv nosuch
bad "vm-argv bad accel" 2 "accelerator 'fast'" vm-argv --accel fast "$B"

# A broken vm.conf: errors name the file and line, tools refuse it.
mkdir -p broken.utm/Data
printf "name = 'x'\nmemory = 512\ncpus = lots\n" >broken.utm/vm.conf
msg=$(vm-argv broken.utm 2>&1)
check_status "a bad value in vm.conf: exit 1" 1 vm-argv broken.utm 2>/dev/null
check_match "the error names file and line" "$msg" "^vm-argv: broken.utm/vm.conf:3: cpus: 'lots'"
printf "name = 'trunc" >broken.utm/vm.conf
check_match "a truncated vm.conf" "$(vm-config broken.utm show 2>&1)" "broken.utm/vm.conf:1: "
chmod 000 broken.utm/vm.conf
if [ "$(id -u)" != 0 ]; then
	check_match "an unreadable vm.conf" "$(vm-config broken.utm show 2>&1)" "Permission denied"
fi
chmod 644 broken.utm/vm.conf
printf "uuid = '11111111-2222-4333-8444-555555555555'\ndrive hd0 {\n  image = '../../etc/shadow'\n}\n" >broken.utm/vm.conf
check_match "a drive with .. is refused by vm-argv" "$(vm-argv broken.utm 2>&1)" "drive.hd0.image: '../../etc/shadow' leaves the bundle"

# vm-argv output forms agree.
sh_words=$(eval "set -- $(vm-argv "$B")"; echo $#)
nul_words=$(vm-argv -0 "$B" | tr -cd '\0' | wc -c)
json_words=$(vm-argv --json "$B" | jq length)
check_eq "-0 and shell forms have the same words" "$nul_words" "$sh_words"
check_eq "--json and shell forms have the same words" "$json_words" "$sh_words"
check_eq "deterministic" "$(vm-argv "$B" | md5sum)" "$(vm-argv "$B" | md5sum)"
check_match "paths with spaces are quoted" "$(vm-argv "$B")" "'if=none,id=drive-hd0,file=[^']*with space/my vm.utm/Data/hd0.qcow2,[^']*'"

# Bundles by name through $VM_PATH
check_eq "VM_PATH lookup" "$(VM_PATH="$T/nothing:$T/with space" vm-config "my vm" get name)" "My VM"

# A failed create leaves nothing behind
check_status "vm-create with a bad size fails" 2 vm-create --disk 0 bad1 2>/dev/null
check_status "vm-create with an unreadable kernel fails" 1 vm-create --kernel /nonexistent bad2 2>/dev/null
check "nothing left behind" sh -c "! ls -a | grep -q -e bad1 -e bad2 -e '\.tmp\.'"
check_status "vm-create refuses an existing bundle" 1 vm-create second 2>/dev/null

# Long paths
long=$(printf 'd%.0s' $(seq 1 200))
mkdir -p "$long/$long"
check "a bundle at a long path" sh -c "vm-create -q '$long/$long/vm' && vm-argv '$long/$long/vm.utm' >/dev/null"

# --help and --version everywhere
for t in vm-create vm-config vm-argv; do
	check "$t --help exits 0" sh -c "$t --help | grep -q usage"
	check "$t --version" sh -c "$t --version | grep -q utmkit"
	check_status "$t with a bad option exits 2" 2 $t --frobnicate 2>/dev/null
done
