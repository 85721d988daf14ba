#!/bin/sh
# The files that fit utmkit into a system: the vm@.service unit template, the
# example crontab, and the Debian package (debian/): built with
# dpkg-buildpackage from a copy of the tree, then checked from the outside
# (dpkg -I, dpkg -c) and from the inside (dpkg -x: every tool runs, the man
# pages, share files and completion links are there, the demo guest boots with
# the packaged tools). Slow: it compiles everything (about a minute on 2 cores).
. "$(dirname "$0")/lib.sh"
top=$VM_TOP

# --- vm@.service ----------------------------------------------------------
unit=$top/share/systemd/vm@.service
check "vm@.service exists" test -f "$unit"
ustop=$(sed -n 's/^ExecStop=//p' "$unit")
check_match "ExecStart runs vm-run in the foreground on the instance" \
	"$(sed -n 's/^ExecStart=//p' "$unit")" '^vm-run( -[a-z-]+)* (-- )?%[iI]$'
check_match "ExecStop stops the instance with vm-stop" "$ustop" '^vm-stop( -[a-z-]+)* (-- )?%[iI]$'
check_match "VM_PATH is set, default /var/lib/utmkit/vms" \
	"$(grep '^Environment=VM_PATH=' "$unit")" '=/var/lib/utmkit/vms$'
check_match "KillMode lets vm-stop shut QEMU down politely" \
	"$(grep '^KillMode=' "$unit")" '=(mixed|process)$'
# vm-stop waits its --timeout for the guest, then a few seconds to quit and
# kill: systemd must wait longer than that before it kills everything.
vmstop_default=$(vm-stop --help | sed -n 's/.*--timeout.*(default \([0-9]*\)).*/\1/p')
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
case $ustop in *" -t "* | *--timeout*) not_ok "ExecStop should use vm-stop's default timeout" ;; esac
if [ -n "$vmstop_default" ] && [ -n "$stop_s" ] && [ "$stop_s" -ge $((vmstop_default + 15)) ]; then
	ok "TimeoutStopSec=${stop_s}s covers vm-stop's ${vmstop_default} s and its grace"
else
	not_ok "TimeoutStopSec ('$stop_s') must be at least vm-stop's default ('$vmstop_default' s) + 15"
fi
if command -v systemd-analyze >/dev/null 2>&1; then
	# systemd resolves bare command names in its own fixed PATH; point it at
	# this tree's tools so verify also checks that they exist.
	mkdir -p "$T/unit"
	sed -e "s|^ExecStart=vm-run|ExecStart=$VM_BIN/vm-run|" \
		-e "s|^ExecStop=vm-stop|ExecStop=$VM_BIN/vm-stop|" "$unit" >"$T/unit/vm@.service"
	out=$(cd "$T/unit" && systemd-analyze verify --man=no ./vm@.service 2>&1)
	check_eq "systemd-analyze verify vm@.service is clean" "$out" ""
else
	skip "systemd-analyze is not installed"
fi

# --- the example crontab ---------------------------------------------------
# Run each job line as cron would (sh -c, \% made %) with a vm-disk that logs
# its arguments and lists snapshots of 10, 3 and 0 days ago and a manual one.
tab=$top/share/examples/crontab
mkdir -p "$T/cron/bin"
cat >"$T/cron/bin/vm-disk" <<'EOF'
#!/bin/sh
echo "$*" >>"$CRON_LOG"
case "$*" in *"snapshot list --json"*) cat "$CRON_JSON" ;; esac
EOF
chmod +x "$T/cron/bin/vm-disk"
old=$(date -d '10 days ago' +%F) recent=$(date -d '3 days ago' +%F) today=$(date +%F)
printf '[{"name":"nightly-%s","date":"%sT03:15:00Z"},{"name":"before-upgrade","date":"%sT12:00:00Z"},{"name":"nightly-%s","date":"%sT03:15:00Z"},{"name":"nightly-%s","date":"%sT03:15:00Z"}]\n' \
	"$old" "$old" "$old" "$recent" "$recent" "$today" "$today" >"$T/cron/compact.json"
sed 's/\[{/[\n  {/; s/},{/},\n  {/g; s/}\]/}\n]/; s/":"/": "/g; s/","/", "/g' \
	"$T/cron/compact.json" >"$T/cron/pretty.json"
jobs=$(grep -E '^[0-9*]' "$tab" | sed -E 's/^([^[:space:]]+[[:space:]]+){5}//')
check_eq "the crontab has two jobs" "$(printf '%s\n' "$jobs" | grep -c .)" 2
check_eq "every % in a job is escaped for cron" \
	"$(printf '%s\n' "$jobs" | sed 's/\\%//g' | grep -c '%')" 0
for shape in compact pretty; do
	: >"$T/cron/log"
	printf '%s\n' "$jobs" | sed 's/\\%/%/g' | while IFS= read -r job; do
		CRON_LOG=$T/cron/log CRON_JSON=$T/cron/$shape.json PATH="$T/cron/bin:$PATH" \
			sh -c "$job" </dev/null
	done
	log=$(cat "$T/cron/log")
	check_match "cron ($shape JSON): tonight's snapshot is nightly-$today" "$log" \
		"^-q debian snapshot create nightly-$today\$"
	check_match "cron ($shape JSON): the 10-day-old snapshot is deleted" "$log" \
		"^-q debian snapshot delete nightly-$old\$"
	check_eq "cron ($shape JSON): nothing else is deleted" \
		"$(printf '%s\n' "$log" | grep -c 'snapshot delete')" 1
done

# --- make install DESTDIR= ------------------------------------------------------
# Completions where the shells look, and the demo guest beside the lab
# example, so an installed lab needs no GUEST=. From this tree's build (up to
# date after make all guest: nothing is compiled).
if [ -f "$GUEST_DIR/vmlinuz" ] && [ -f "$GUEST_DIR/initrd.img" ]; then
	inst=$T/inst
	make -s -C "$top" install DESTDIR="$inst" PREFIX=/opt/utm >"$T/install.log" 2>&1
	check_eq "make install DESTDIR=... PREFIX=/opt/utm: status 0" "$?" 0
	dst=$inst/opt/utm
	for c in "$top"/cmd/vm-*.c; do
		t=$(basename "$c" .c)
		check "make install: bash completion for $t in share/bash-completion/completions" \
			cmp -s "$dst/share/bash-completion/completions/$t" "$top/share/completion/utmkit.bash"
	done
	check_eq "...links relative to the tree (the DESTDIR is not in them)" \
		"$(readlink "$dst/share/bash-completion/completions/vm-run")" ../../utmkit/completion/utmkit.bash
	check_match "...and it loads" \
		"$(bash -c '. "$1" && complete -p vm-disk' _ "$dst/share/bash-completion/completions/vm-disk" 2>&1)" \
		'complete -F _utmkit vm-disk'
	check "make install: zsh completion in share/zsh/vendor-completions" \
		cmp -s "$dst/share/zsh/vendor-completions/_utmkit" "$top/share/completion/_utmkit"
	check "make install: the demo guest's kernel in DATADIR/guest" cmp -s "$dst/share/utmkit/guest/vmlinuz" "$GUEST_DIR/vmlinuz"
	check "...and its initrd" cmp -s "$dst/share/utmkit/guest/initrd.img" "$GUEST_DIR/initrd.img"
	# the installed lab example finds it: its vm-create names the installed guest
	lab=$(make -n -C "$dst/share/utmkit/examples/lab" --no-print-directory LAB="$T/labvms" create-router 2>&1)
	check_match "the installed lab example boots the installed guest without GUEST=" "$lab" \
		"--kernel \"$dst/share/utmkit/guest/vmlinuz\" --initrd \"$dst/share/utmkit/guest/initrd.img\""
	make -s -C "$top" install DESTDIR="$T/inst2" WITH_GUEST=no >/dev/null 2>&1
	check "make install WITH_GUEST=no: no guest" test ! -e "$T/inst2/usr/local/share/utmkit/guest/vmlinuz"
else
	skip "make install: no demo guest in $GUEST_DIR (make guest)"
fi

# --- the Debian package -----------------------------------------------------
if ! command -v dpkg-buildpackage >/dev/null 2>&1 || ! command -v dh >/dev/null 2>&1; then
	skip "the Debian package: dpkg-dev and debhelper are not installed (scripts/install-deps)"
	exit 0
fi
version=$(sed -n 's/^#define VM_VERSION "\(.*\)"/\1/p' "$top/lib/util.h")
check_match "debian/changelog is at the tools' version $version" \
	"$(head -n 1 "$top/debian/changelog")" "^utmkit \\($version(-[0-9.]+)?\\) "

# Every library the Makefile links has its -dev package in Build-Depends.
bdeps=$(sed -n '/^Build-Depends:/,/^[A-Z][A-Za-z-]*:/p' "$top/debian/control" |
	sed '$d; s/^Build-Depends://' | tr ',' '\n' | sed 's/^[[:space:]]*//; s/[[:space:](].*//' | grep .)
for l in $(sed -n 's/^LIBS_[A-Za-z_-]*[[:space:]]*=//p' "$top/Makefile" | tr ' ' '\n' | sed -n 's/^-l//p' | sort -u); do
	so=$(${CC:-cc} -print-file-name="lib$l.so")
	case $so in
	/*) ;;
	*) echo "# lib$l.so not found; cannot check its -dev package"; continue ;;
	esac
	so=$(realpath -s "$so")
	pkg=$(dpkg -S "$so" 2>/dev/null | sed -n '1s/[:,].*//p')
	case $pkg in
	'' | libc6-dev) continue ;; # libc (-lm) comes with build-essential
	esac
	if printf '%s\n' "$bdeps" | grep -qx "$pkg"; then
		ok "Build-Depends has $pkg (for -l$l)"
	else
		not_ok "Build-Depends lacks $pkg (the Makefile links -l$l)"
	fi
done
unmet=$(cd "$top" && dpkg-checkbuilddeps 2>&1) ||
	echo "# not installed here (the build goes on; a missing library fails the compile):${unmet#*:}"

# Build from a copy of the tree, without what a build or test left in it.
src=$T/pkg/utmkit
mkdir -p "$src"
(cd "$top" && tar -cf - --exclude=./build --exclude=./bin --exclude=./.git \
	--exclude=./debian/utmkit --exclude=./debian/.debhelper --exclude=./debian/files \
	--exclude='./debian/*.substvars' --exclude=./debian/debhelper-build-stamp \
	--exclude='./debian/*.debhelper.log' .) | tar -xf - -C "$src"
start=$(date +%s)
(cd "$src" && DEB_BUILD_OPTIONS="nocheck noautodbgsym" \
	dpkg-buildpackage -us -uc -b -d -J2 >"$T/pkg/build.log" 2>&1)
rc=$?
echo "# dpkg-buildpackage took $(($(date +%s) - start)) s"
if [ $rc -ne 0 ]; then
	not_ok "dpkg-buildpackage -us -uc -b (status $rc)"
	tail -n 30 "$T/pkg/build.log" | sed 's/^/# /'
	exit 1
fi
ok "dpkg-buildpackage -us -uc -b builds the package"
deb=
for f in "$T"/pkg/utmkit_"$version"*_*.deb; do [ -f "$f" ] && deb=$f; done
check "the .deb is utmkit_${version}_ARCH.deb" test -f "$deb"
[ -f "$deb" ] || exit 1

field() { dpkg-deb -f "$deb" "$1"; }
check_eq "Package: utmkit" "$(field Package)" utmkit
check_match "Version: $version" "$(field Version)" "^$version(-[0-9.]+)?\$"
deps=$(field Depends)
check_match "Depends: qemu-system-x86 | qemu-system" "$deps" '(^|, )qemu-system-x86 \| qemu-system(,|$)'
check_match "Depends: qemu-utils" "$deps" '(^|, )qemu-utils(,|$)'
check_match "Depends: adduser (postinst makes the sandbox user)" "$deps" '(^|, )adduser(,|$)'
dpkg-deb -e "$deb" "$T/control"
check "postinst makes the system user utmkit" sh -c "tr -d '\\\\\n' <'$T/control/postinst' | grep -q 'adduser --system.*utmkit'"
recs=$(field Recommends)
for p in ovmf qemu-efi-aarch64 swtpm libguestfs0; do
	check_match "Recommends: $p" "$recs" "(^|, )$p(,|$)"
done
# Libraries loaded with dlopen (dl_open_syms: libguestfs, libplist, libarchive)
# escape shlibs:Depends: their packages must be in Depends or Recommends, and
# those every tool may need at once (config.plist, archives, ISO images) in
# Depends.
for p in libplist3 libarchive13; do
	check_match "Depends: $p (opened with dlopen)" "$deps" "(^|, )$p(,|\$)"
done
sed -n 's/.*\(dlopen\|dl_open_syms\)("\([^"]*\)".*/\2/p' "$top"/lib/*.c "$top"/cmd/*.c | sort -u >"$T/dlopen.list"
check "the dlopen'ed libraries are found in the sources" test -s "$T/dlopen.list"
while read -r so; do
	p=$(dpkg -S "*/$so" 2>/dev/null | grep -E "/$so\$" | sed -n '1s/[:,].*//p')
	if [ -z "$p" ]; then
		echo "# $so (dlopen) is not installed here; cannot check its package"
		continue
	fi
	check_match "Depends or Recommends: $p (for dlopen(\"$so\"))" "$deps, $recs" "(^| )$p(,| |\$)"
done <"$T/dlopen.list"
check_eq "one maintainer script, postinst (the unit template is not enabled)" \
	"$(dpkg-deb -I "$deb" | grep -E '^ +[0-9]+ bytes, +[0-9]+ lines +[*]? *(pre|post)(inst|rm)' | grep -oE '(pre|post)(inst|rm)')" postinst
check "postinst enables and starts no unit" sh -c "! grep -Eq 'deb-systemd-(helper|invoke)' '$T/control/postinst'"
if command -v apt-get >/dev/null 2>&1; then
	apt_sim() { apt-get -s -qq install "$1" >/dev/null 2>&1; }
	check "apt-get can install it here (simulated)" apt_sim "$deb"
fi

root=$T/root
dpkg -x "$deb" "$root"
check_eq "Depends: no library comes from elsewhere: every NEEDED library's package is in Depends" \
	"$(for b in "$root"/usr/bin/*; do
		objdump -p "$b" | sed -n 's/^ *NEEDED *//p'
	done | sort -u | while read -r so; do
		p=$(dpkg -S "*/$so" 2>/dev/null | grep -E "/$so\$" | sed -n '1s/[:,].*//p')
		[ -n "$p" ] || continue
		printf '%s\n' "$deps" | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -qx "$p" ||
			echo "$so ($p)"
	done)" ""

# Every tool is packaged and runs from the package.
for c in "$src"/cmd/vm-*.c; do
	t=$(basename "$c" .c)
	if [ -x "$root/usr/bin/$t" ]; then
		check_eq "/usr/bin/$t --version" "$("$root/usr/bin/$t" --version 2>&1)" "$t (utmkit) $version"
	else
		not_ok "/usr/bin/$t is not in the package"
	fi
	check "bash completion for $t is linked" test -f "$root/usr/share/bash-completion/completions/$t"
done
for m in "$src"/man/*.[15]; do
	[ -e "$m" ] || continue
	n=$(basename "$m") s=${m##*.}
	check "man page $n is in /usr/share/man/man$s" test -f "$root/usr/share/man/man$s/$n.gz"
done
(cd "$src/share" && find . -type f) | sort >"$T/pkg/share.list"
miss=$(while read -r f; do
	cmp -s "$src/share/$f" "$root/usr/share/utmkit/$f" || echo "$f"
done <"$T/pkg/share.list")
check_eq "every file of share/ is in /usr/share/utmkit ($(wc -l <"$T/pkg/share.list") files)" "$miss" ""
if [ -f "$root/lib/systemd/system/vm@.service" ] || [ -f "$root/usr/lib/systemd/system/vm@.service" ]; then
	ok "vm@.service is where systemd looks"
else
	not_ok "vm@.service is not in /lib/systemd/system or /usr/lib/systemd/system"
fi
check "zsh completion is in /usr/share/zsh/vendor-completions" \
	test -f "$root/usr/share/zsh/vendor-completions/_utmkit"
check_match "the packaged bash completion loads" \
	"$(bash -c '. "$1" && complete -p vm-run' _ "$root/usr/share/bash-completion/completions/vm-run" 2>&1)" \
	'complete -F _utmkit vm-run'

# make demo's flow with the packaged tools: create, boot the demo guest on the
# console, see its banner, and it powers off with status 0.
if [ -f "$GUEST_DIR/vmlinuz" ] && [ -f "$GUEST_DIR/initrd.img" ] &&
	command -v qemu-system-x86_64 >/dev/null 2>&1; then
	P="$root/usr/bin"
	"$P/vm-create" -q --name demo --cpus 1 --memory 256M --kernel "$GUEST_DIR/vmlinuz" \
		--initrd "$GUEST_DIR/initrd.img" --append "console=ttyS0 quiet utmkit.run=demo" \
		"$T/demo.utm" >/dev/null
	check "packaged vm-create makes the demo bundle" test -f "$T/demo.utm/vm.conf"
	check_match "packaged vm-argv prints a QEMU command line" \
		"$("$P/vm-argv" "$T/demo.utm" 2>&1 | head -n 1)" 'qemu-system-x86_64'
	"$P/vm-run" --console --timeout 120 "$T/demo.utm" </dev/null >"$T/demo.out" 2>&1
	rc=$?
	check_eq "packaged vm-run boots the demo guest; it powers off with status 0" "$rc" 0
	check_match "the guest printed its banner" "$(cat "$T/demo.out")" 'utmkit demo guest'
	check_match "packaged vm-ls sees it stopped" "$("$P/vm-ls" "$T" 2>&1)" 'demo +stopped'
else
	skip "the demo flow: no demo guest in $GUEST_DIR (make guest) or no qemu-system-x86_64"
fi
