# libFuzzer harnesses (tests/fuzz/fuzz_NAME.c), included from the Makefile.
#
#   make fuzz-build                     build them (clang, libFuzzer, ASan, UBSan)
#   make fuzz [FUZZ_SECONDS=60] [FUZZ=NAME...]   run each for that long
#
# The library is built again with the sanitizers and coverage into
# build/fuzz/lib (build/lib and build/libvm.a are never touched). Seeds are in
# tests/fuzz/corpus/NAME (committed, small); what the fuzzer adds goes to
# build/fuzz/corpus/NAME, crash inputs to build/fuzz/artifacts/NAME. Every
# crash found becomes a file in tests/fuzz/regress/NAME, which
# tests/e2e/fuzz.sh replays in `make check`.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# The tools' flags, less any sanitizer of SANITIZE=1 and its -O1.
FUZZ_CFLAGS = $(filter-out -fsanitize=% -O1,$(ALL_CFLAGS)) -O1 -gline-tables-only $(FUZZ_SAN)
FUZZ_LIBS = -larchive $(LIBS_BASE) -pthread

FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_BINS := $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_LIB_OBJ := $(patsubst lib/%.c,build/fuzz/lib/%.o,$(LIB_SRC))
FUZZ ?= $(FUZZ_NAMES)

build/fuzz/lib/%.o: lib/%.c $(wildcard lib/*.h) | build/fuzz/lib
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/libvm.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h build/fuzz/libvm.a $(wildcard lib/*.h)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< -o $@ $(ALL_LDFLAGS) \
		build/fuzz/libvm.a $(FUZZ_LIBS)

build/fuzz/lib:
	mkdir -p $@

fuzz-build: $(FUZZ_BINS)

# Each harness for FUZZ_SECONDS with its seeds; one line each with the
# executions and what it found. Fails if anything crashed.
fuzz: fuzz-build
	@tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ)

.PHONY: fuzz fuzz-build
