#!/bin/sh
# The libFuzzer harnesses (tests/fuzz), a short run: build them (clang with
# libFuzzer; skipped when that is missing), then for each one replay every
# input in tests/fuzz/regress/NAME (each a crash fuzzing once found) and
# fuzz for FUZZ_TIME seconds (default 3) from the seeds in
# tests/fuzz/corpus/NAME. One TAP line per harness. A crash input is kept in
# build/fuzz/artifacts/NAME/ to be added to tests/fuzz/regress/NAME once
# fixed. The long run is `make fuzz FUZZ_SECONDS=N`.
. "$(dirname "$0")/lib.sh"
FUZZ_TIME=${FUZZ_TIME:-3}
FZ="$VM_TOP/tests/fuzz"
names=$(cd "$FZ" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')

cc=${FUZZ_CC:-clang}
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n > 1 && d[0] == 1; }\n' >"$T/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$T/probe.c" -o "$T/probe" >"$T/probe.log" 2>&1; then
	for n in $names; do
		skip "fuzz_$n: $cc cannot build libFuzzer harnesses (apt-get install clang libclang-rt-dev)"
	done
	echo "1..$_n"
	exit 0
fi

# a make of its own: not the jobserver of the make check that runs this
if ! (unset MAKEFLAGS MFLAGS MAKELEVEL; make -C "$VM_TOP" -s -j2 fuzz-build FUZZ_CC="$cc") >"$T/build.log" 2>&1; then
	not_ok "the fuzz harnesses build"
	tail -n 30 "$T/build.log" | sed 's/^/# /'
	echo "1..$_n"
	exit 1
fi

for n in $names; do
	bin="$VM_TOP/build/fuzz/fuzz_$n"
	art="$VM_TOP/build/fuzz/artifacts/$n"
	mkdir -p "$art" "$T/corpus-$n"
	log="$T/$n.log"
	nreg=0
	if [ -d "$FZ/regress/$n" ]; then
		nreg=$(ls "$FZ/regress/$n" | wc -l)
	fi
	if [ "$nreg" -gt 0 ] && ! "$bin" -runs=1 -artifact_prefix="$art/" "$FZ/regress/$n"/* >"$log" 2>&1; then
		not_ok "fuzz_$n: a regression input in tests/fuzz/regress/$n crashes again"
		grep -E 'ERROR|SUMMARY|^fuzz|Running:' "$log" | tail -n 12 | sed 's/^/# /'
		continue
	fi
	seeds=
	[ -d "$FZ/corpus/$n" ] && seeds="$FZ/corpus/$n"
	# shellcheck disable=SC2086
	if "$bin" -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/" "$T/corpus-$n" $seeds >"$log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		reg=
		[ "$nreg" -gt 0 ] && reg=" and $nreg regression inputs"
		ok "fuzz_$n: ${execs:-?} runs in ${FUZZ_TIME}s$reg find nothing"
	else
		not_ok "fuzz_$n: fuzzing found a crash ($(sed -n 's/^INFO: Seed: /seed /p' "$log"))"
		grep -E 'ERROR|SUMMARY|^fuzz|Test unit written|    #[0-9] ' "$log" | tail -n 20 | sed 's/^/# /'
	fi
done
echo "1..$_n"
