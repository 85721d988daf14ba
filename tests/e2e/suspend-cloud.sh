#!/bin/sh
# Boot once, save, restore per CI job, on the real Debian 12 cloud image
# (scripts/mkimage, make image) under TCG: one cold boot to SSH, vm-stop
# --save, then 10 x vm-run --snapshot -d: each run answers SSH with the same
# boot id (the same saved moment), a file written in one run is gone in the
# next (disk writes and RAM discarded), and the state file never changes.
# Prints cold boot to SSH and resume to SSH. Skips, saying why, without the
# image. Slow under TCG: minutes.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

IMAGE=$VM_TOP/build/image/debian12.qcow2
if [ ! -f "$IMAGE" ]; then
	skip "no cloud image $IMAGE: not built (make image, or copy one there)"
	echo "1..$_n"
	exit 0
fi
for t in qemu-system-x86_64 ssh ssh-keygen python3; do
	if ! command -v "$t" >/dev/null; then
		skip "$t is not installed"
		echo "1..$_n"
		exit 0
	fi
done
# QEMU (as utmkit or nobody, under root) opens the image by its path
chmod 711 "$T"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ssh-keygen -q -t ed25519 -N '' -f "$T/key" || exit 1
printf '#cloud-config\nhostname: saved\nmanage_etc_hosts: localhost\n' >"$T/user-data"
gssh() {
	ssh -q -i "$T/key" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 debian@127.0.0.1 "$@" </dev/null
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_ssh LIMIT_S: until SSH answers; prints the milliseconds it took
wait_ssh() {
	_t0=$(now_ms)
	while ! gssh true 2>/dev/null; do
		[ $(($(now_ms) - _t0)) -ge $(($1 * 1000)) ] && return 1
		sleep 0.2
	done
	echo $(($(now_ms) - _t0))
}

B="$T/ci.utm"
vm-create -q -m 1G -F "tcp:$PORT-:22" --cloud-init "$T/user-data" --ssh-key "$T/key.pub" "$T/ci" ||
	{ not_ok "vm-create"; exit 1; }
at_exit "vm-stop -q --force \"$B\" >/dev/null 2>&1"
vm-disk "$B" create root --backing "$IMAGE" >/dev/null || { not_ok "vm-disk create root"; exit 1; }

t0=$(now_ms)
check "cold vm-run -d" sh -c 'vm-run -q -d "$1" >/dev/null' _ "$B"
if ! cold=$(wait_ssh 900); then
	not_ok "cold boot: no SSH within 900 s"
	echo "1..$_n"
	exit 0
fi
cold=$(($(now_ms) - t0))
ok "cold boot: SSH answers"
echo "# cold vm-run -d to SSH: $cold ms"
gssh cloud-init status --wait >/dev/null 2>&1
boot_id=$(gssh cat /proc/sys/kernel/random/boot_id)
check_match "a boot id" "$boot_id" '^[0-9a-f-]{36}$'
t0=$(now_ms)
check "vm-stop --save" vm-stop -q --save "$B"
echo "# vm-stop --save of the 1 GiB guest: $(($(now_ms) - t0)) ms, $(($(stat -c %s "$B/Data/vmstate") / 1048576)) MiB"
sum=$(md5sum <"$B/Data/vmstate")

same=0 clean=0 best=999999
for run in 1 2 3 4 5 6 7 8 9 10; do
	t0=$(now_ms)
	if ! vm-run -q --snapshot -d "$B" >/dev/null; then
		not_ok "run $run: vm-run --snapshot -d"
		continue
	fi
	run_ms=$(($(now_ms) - t0))
	if ! wait_ssh 120 >/dev/null; then
		not_ok "run $run: no SSH after the resume"
		vm-stop -q -f "$B"
		continue
	fi
	ms=$(($(now_ms) - t0))
	[ "$ms" -lt "$best" ] && best=$ms
	echo "# run $run: vm-run -d returned (the guest runs) after $run_ms ms; SSH answered after $ms ms"
	[ "$(gssh cat /proc/sys/kernel/random/boot_id)" = "$boot_id" ] && same=$((same + 1))
	[ "$(gssh 'cat /var/tmp/ci-run 2>/dev/null || echo none')" = none ] && clean=$((clean + 1))
	gssh "echo $run | sudo tee /var/tmp/ci-run >/dev/null; sync"
	vm-stop -q -f "$B"
done
check_eq "10 runs from one saved state: all the same boot id" "$same" 10
check_eq "...none sees the file an earlier run wrote" "$clean" 10
check_eq "...the state file is unchanged" "$(md5sum <"$B/Data/vmstate")" "$sum"
echo "# resume to SSH: best $best ms; cold boot $cold ms ($(awk -v c="$cold" -v r="$best" 'BEGIN { printf "%.1f", c / r }')x faster)"
echo "1..$_n"
