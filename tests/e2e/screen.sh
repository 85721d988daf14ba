#!/bin/sh
# GUI guests: vm-argv --display for one run, vm-ls --json's display_uri,
# and vm-screen on the demo guest with a VGA device: a PNG screenshot of a
# sane size that is not blank (SeaBIOS and the kernel print on the VGA text
# screen), keys sent with --keys.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/vmrun.inc
. "$(dirname "$0")/vmrun.inc"
need_guest

guest gui "utmkit.run=shell console=tty0" -D vnc -s display_device=VGA
b="$T/gui.utm"
rt=$(rtdir "$b")

# --- the display for one run ----------------------------------------------------
av=$(vm-argv --display spice "$b")
check_match "vm-argv --display spice: a SPICE socket" "$av" "-spice unix=on,addr=$rt/spice.sock"
check "vm-argv --display spice: no VNC" sh -c "! printf '%s' '$av' | grep -q -- -vnc"
check_match "vm-argv --display vnc:5907: 127.0.0.1, display 7" "$(vm-argv --display vnc:5907 "$b")" "-vnc 127\\.0\\.0\\.1:7"
av=$(vm-argv --display none "$b")
check_match "vm-argv --display none: -display none" "$av" "-display none"
check "vm-argv --display none: no display device" sh -c "! printf '%s' '$av' | grep -q -- '-device VGA'"
check_status "vm-argv --display bogus: usage error" 2 vm-argv --display bogus "$b" 2>/dev/null
check_status "vm-argv --display vnc:80: usage error" 2 vm-argv --display vnc:80 "$b" 2>/dev/null

# --- vm-run --display: one run, its URI said with -v and kept for vm-ls -------------
out=$(vm-run -v -d --paused --display vnc:5911 "$b" 2>&1 </dev/null)
check_match "vm-run --display vnc:5911 -v: the viewer's URI" "$out" "display vnc://127\.0\.0\.1:5911"
check_eq "vm-ls --json: display_uri of this run" "$(vm-ls --json "$b" | jq -r '.[0].display_uri')" "vnc://127.0.0.1:5911"
vm-stop -q --force "$b"
check_status "vm-run --display bogus: usage error" 2 vm-run -d --display bogus "$b" 2>/dev/null

# --- a running VM ---------------------------------------------------------------
out=$(vm-run -q -d "$b" 2>&1 </dev/null)
check_eq "GUI guest starts ($out)" "$?" 0
check_eq "vm-ls --json: display_uri" "$(vm-ls --json "$b" | jq -r '.[0].display_uri')" "vnc+unix://$rt/vnc.sock"
wait_for "$rt/console.log" "utmkit demo guest|Linux version|login|#" 60 || :
sleep "$(secs 2)"
vm-screen "$b" "$T/shot.png" 2>"$T/shot.err"
check_eq "vm-screen: exit 0 ($(cat "$T/shot.err"))" "$?" 0
check "vm-screen: no temporary file left" sh -c "! ls -A '$T' | grep -q '^\\.shot'"
info=$(python3 - "$T/shot.png" <<'PY'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", d[16:24])
idat, i = b"", 8
while i < len(d):
    n, t = struct.unpack(">I4s", d[i:i + 8])
    if t == b"IDAT":
        idat += d[i + 8:i + 8 + n]
    i += 12 + n
px = zlib.decompress(idat)
print(w, h, len(set(px)))
PY
)
set -- $info
check "screenshot: a PNG of a sane size (${1:-?}x${2:-?})" test "${1:-0}" -ge 320 -a "${2:-0}" -ge 200 -a "${1:-0}" -le 4096
check "screenshot: not blank (${3:-0} distinct bytes)" test "${3:-0}" -gt 2
check "vm-screen --keys ctrl-alt-del: accepted" vm-screen "$b" --keys ctrl-alt-del
check "vm-screen --keys: several, aliases" vm-screen "$b" --keys shift-a --keys enter
check_status "vm-screen --keys bogus!: usage error" 2 vm-screen "$b" --keys 'ctrl-!' 2>/dev/null
err=$(vm-screen "$b" --keys nosuchkey 2>&1)
check_match "vm-screen: QEMU's refusal of an unknown key, exit 1" "$err" "send-key nosuchkey"
vm-stop -q --force "$b"
err=$(vm-screen "$b" "$T/x.png" 2>&1)
check_match "vm-screen on a stopped VM: not running" "$err" "gui: not running"
check "vm-screen on a stopped VM: no file" test ! -e "$T/x.png"
