#!/bin/sh
# Issue 15 (5-8) at the tools: the leftovers of a killed import go at the
# next import; names with control characters are escaped in vm-ls and in
# messages; a bundle written by vm-pack reads back; names that cannot be
# bundles are refused with one clear line.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# --- 7: vm-create -N none, vm-pack: the config.plist reads back -----------------------
vm-create -q -N none x >/dev/null || not_ok "vm-create -N none"
vm-pack -q x.utm x.utm.zip || not_ok "vm-pack"
mkdir u && (cd u && unzip -q ../x.utm.zip && rm x.utm/vm.conf) || not_ok "unzip"
check "a packed -N none bundle's config.plist reads back" vm-config -q u/x.utm validate

# --- 5: a killed import's temporary bundle is removed by the next import ---------------
mkdir -p stale/.y.utm.tmp.AbC123/Data && head -c 1048576 /dev/urandom >stale/.y.utm.tmp.AbC123/Data/big
touch -d '2 hours ago' stale/.y.utm.tmp.AbC123
mkdir -p stale/.y.utm.tmp.Live12 && touch -d '2 hours ago' stale/.y.utm.tmp.Live12
# an import still running holds its lock: that one stays
flock stale/.y.utm.tmp.Live12 sleep 30 &
lockpid=$!
at_exit "kill $lockpid 2>/dev/null"
sleep 0.3
vm-create -q --from x.utm.zip stale/y.utm >/dev/null 2>err || not_ok "import: $(cat err)"
check "a killed import's leftovers are gone after the next import" [ ! -e stale/.y.utm.tmp.AbC123 ]
check "... but not those of one that still runs" [ -d stale/.y.utm.tmp.Live12 ]
kill $lockpid 2>/dev/null

# --- 6: control characters of a name ----------------------------------------------------
esc=$(printf 'a\033]0;PWNED\007b')
vm-create -q -N none "$esc" >/dev/null || not_ok "vm-create with an escape in the name"
out=$(vm-ls . 2>&1)
check "vm-ls prints no control character of a name" sh -c "! printf '%s' \"\$1\" | LC_ALL=C grep -q \"\$(printf '[\001-\011\013-\037\177]')\"" sh "$out"
check_match "... but escapes them" "$out" 'a\\x1b\]0;PWNED\\x07b'
out=$(vm-config "$esc" get nosuchkey 2>&1)
check "messages escape them too" sh -c "! printf '%s' \"\$1\" | LC_ALL=C grep -q \"\$(printf '\033')\"" sh "$out"

# --- 8: names that cannot be bundles -------------------------------------------------------
one_line() { [ "$(printf '%s\n' "$1" | wc -l)" -eq 1 ]; }
out=$(vm-create -q / 2>&1); rc=$?
check_eq "vm-create / is refused" "$rc:$(one_line "$out" && echo 1)" "2:1"
check "... and makes no /.utm" [ ! -e /.utm ]
out=$(vm-create -q "" 2>&1); rc=$?
check_eq "vm-create '' is refused" "$rc" 2
check "... and makes no hidden .utm" [ ! -e .utm ]
long=$(head -c 250 /dev/zero | tr '\0' n)
out=$(vm-create -q "$long" 2>&1); rc=$?
check_eq "a 250-byte name: refused with status 2" "$rc" 2
check_match "... saying it is too long" "$out" "too long \(at most 239 bytes"
ok239=$(head -c 239 /dev/zero | tr '\0' n)
check "a 239-byte name works" vm-create -q -N none "$ok239"
huge=$(head -c 5000 /dev/zero | tr '\0' n)
out=$(vm-config "$huge" show 2>&1)
check_match "a path over PATH_MAX: not 'no such bundle'" "$out" "File name too long"

# vm-config validate refuses what vm-run refuses: a drive outside the bundle
vm-create -q -N none v >/dev/null
printf "drive cd {\n image = '/etc/passwd'\n media = 'cdrom'\n}\n" >>v.utm/vm.conf
out=$(vm-config v.utm validate 2>&1); rc=$?
check_eq "validate: a drive outside the bundle is not valid" "$rc" 1
check_match "... saying why, as vm-run does" "$out" "'/etc/passwd' is outside the bundle"
