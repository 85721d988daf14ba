#!/bin/sh
# Writers at once on one bundle: every vm-config set that exits 0 has its
# change in the file at the end (no lost update), and one that fails says why.
# First a forced interleaving: strace holds one writer for half a second
# between reading the config and writing it, while a second writer runs; then
# twelve rounds of six writers of different keys at once; then vm-config set and
# vm-disk create at once; then vm-config set while vm-pack reads the bundle.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

vm-create -q --memory 256M --name race b.utm || { not_ok "vm-create"; exit 1; }

# landed NAME STATUS KEY VALUE: a writer that exited 0 has its value in the file;
# one that failed said so on stderr ($T/NAME.err)
landed() {
	if [ "$2" -eq 0 ]; then
		_v=$(vm-config b.utm get "$3" 2>&1)
		[ "$_v" = "$4" ] || { echo "$1 exited 0 but $3 is '$_v', not '$4' (a lost update)"; return 1; }
	else
		[ -s "$T/$1.err" ] || { echo "$1 failed ($2) without a message"; return 1; }
	fi
}

# --- forced interleaving ----------------------------------------------------------
if command -v strace >/dev/null && strace -qq -o /dev/null true 2>/dev/null; then
	# fchmod is the first call of the atomic write, after the config was read
	strace -qq -o /dev/null -e inject=fchmod:delay_enter=500000 \
		vm-config b.utm set memory 300M 2>"$T/slow.err" &
	spid=$!
	sleep 0.2
	vm-config b.utm set notes "written meanwhile" 2>"$T/fast.err"
	fst=$?
	wait $spid
	sst=$?
	why=$(landed slow $sst memory 300 && landed fast $fst notes "written meanwhile")
	check_eq "a writer held between its read and its write loses no other writer's change" "$why" ""
	check "...and at least one of them succeeded" test $sst -eq 0 -o $fst -eq 0
else
	skip "strace is missing or cannot trace here"
fi

# --- six writers at once, twenty rounds --------------------------------------------------
why=""
i=0
while [ $i -lt 12 ] && [ -z "$why" ]; do
	i=$((i + 1))
	vm-config b.utm set memory $((300 + i))M 2>"$T/w1.err" & p1=$!
	vm-config b.utm set cpus $((i % 4 + 1)) 2>"$T/w2.err" & p2=$!
	vm-config b.utm set notes "round $i" 2>"$T/w3.err" & p3=$!
	vm-config b.utm set name "race $i" 2>"$T/w4.err" & p4=$!
	vm-config b.utm set machine "pc-q35-$i" 2>"$T/w5.err" & p5=$!
	vm-config b.utm set net.net0.mac "52:54:00:00:00:$((10 + i))" 2>"$T/w6.err" & p6=$!
	wait $p1; s1=$?
	wait $p2; s2=$?
	wait $p3; s3=$?
	wait $p4; s4=$?
	wait $p5; s5=$?
	wait $p6; s6=$?
	why=$(landed w1 $s1 memory $((300 + i)) && landed w2 $s2 cpus $((i % 4 + 1)) &&
		landed w3 $s3 notes "round $i" && landed w4 $s4 name "race $i" &&
		landed w5 $s5 machine "pc-q35-$i" && landed w6 $s6 net.net0.mac "52:54:00:00:00:$((10 + i))")
	[ -n "$why" ] && why="round $i: $why"
	[ $((s1 + s2 + s3 + s4 + s5 + s6)) -eq 0 ] || why="${why:-round $i: a writer failed: $(cat "$T"/w?.err)}"
done
check_eq "six vm-config set at once, 12 rounds: every change lands" "$why" ""
check "...and the config is valid" vm-config -q b.utm validate
check_eq "...and nothing is left beside it" "$(ls -A b.utm)" "Data
vm.conf"

# --- vm-config set and vm-disk create at once ---------------------------------------------
why=""
i=0
while [ $i -lt 5 ] && [ -z "$why" ]; do
	i=$((i + 1))
	vm-disk -q b.utm create "d$i" 16M 2>"$T/d.err" & p1=$!
	vm-config b.utm set notes "disk round $i" 2>"$T/c.err" & p2=$!
	wait $p1; s1=$?
	wait $p2; s2=$?
	why=$(landed d $s1 "drive.d$i.image" "d$i.qcow2" && landed c $s2 notes "disk round $i")
	[ -n "$why" ] && why="round $i: $why"
done
check_eq "vm-disk create and vm-config set at once: both land" "$why" ""

# --- vm-config set while vm-pack reads --------------------------------------------------
head -c 4000000 /dev/urandom >b.utm/Data/big.bin
vm-pack -q b.utm b.tar 2>"$T/p.err" & p1=$!
sleep 0.05
vm-config b.utm set notes "after the pack" 2>"$T/c.err"
s2=$?
wait $p1
s1=$?
check_eq "vm-pack and vm-config set at once: both succeed" "$s1 $s2" "0 0"
check_eq "...the change landed" "$(vm-config b.utm get notes)" "after the pack"
vm-create -q --keep-identity --from b.tar imp.utm
n=$(vm-config imp.utm get notes)
case $n in "disk round 5" | "after the pack") ok "...the archive holds a whole config, before or after ($n)" ;;
*) not_ok "...the archive's config: notes '$n'" ;; esac
