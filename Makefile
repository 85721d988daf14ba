# utmkit: build lib/libvm.a, the tools in cmd/, tests, man pages.
# make [all] | check | demo | bench | install | clean | lint | fuzz
# SANITIZE=1 builds with AddressSanitizer and UBSan; VALGRIND=1 runs e2e tools under valgrind.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/utmkit
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
DESTDIR ?=
# make install builds and installs the demo guest (DATADIR/guest) unless
# WITH_GUEST=no (the Debian package: it would be the build host's kernel).
WITH_GUEST ?= yes

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
# libxml-2.0: its headers only; lib/libvirt.c opens libxml2 on first use.
PKGS = libconfuse json-c libbsd-overlay libplist-2.0 libxml-2.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) -D_GNU_SOURCE -Ilib \
	-DVM_DATADIR='"$(DATADIR)"' -DVM_SRCDIR='"$(CURDIR)"'
ALL_LDFLAGS = $(LDFLAGS) -Wl,--as-needed
# A sanitizer build lives in its own tree (build/asan, with its tools in
# build/asan/bin), so it never mixes objects with the normal one.
B = build
BIN = bin
ifeq ($(SANITIZE),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1
ALL_LDFLAGS += -fsanitize=address,undefined
B = build/asan
BIN = build/asan/bin
endif

# Each tool links only what it uses; --as-needed drops the rest. The small
# libraries (LIBS_STATIC*) are linked in statically: loading each shared one
# costs every run of a tool about 0.2 ms, and vm-qmp's one-shot budget is
# 3 ms. libplist (lib/config_plist.c) and libarchive, with ICU and libxml2
# behind it (lib/archive_dl.c), are opened on first use.
LIBS_STATIC = -lconfuse -ljson-c -lbsd -lmd
LIBS_STATIC_vm-qmp = -ledit -ltinfo
LIBS_BASE = -Wl,-Bstatic $(LIBS_STATIC) -Wl,-Bdynamic -lm
ifeq ($(SANITIZE),1)
# ASan intercepts the XDR calls of libtirpc, which libguestfs (dlopen'ed by
# vm-disk) uses; its interceptors find the real ones only if libtirpc is
# loaded at start.
LIBS_vm-disk += -Wl,--no-as-needed -l:libtirpc.so.3 -Wl,--as-needed
endif

LIB_SRC := $(sort $(wildcard lib/*.c))
LIB_OBJ := $(patsubst lib/%.c,$(B)/lib/%.o,$(LIB_SRC))
TOOL_SRC := $(sort $(wildcard cmd/vm-*.c))
# The tool layer (cmd/tool.c: exits, the option loop, the stdout check):
# linked into every tool, never into libvm.a, which returns its errors.
TOOL_OBJ := $(B)/tool.o
TOOLS := $(patsubst cmd/%.c,$(BIN)/%,$(TOOL_SRC))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNITS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
MANS := $(sort $(wildcard man/*.[15]))

all: $(TOOLS)

$(B)/lib/%.o: lib/%.c $(wildcard lib/*.h) | $(B)/lib
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(B)/libvm.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(TOOL_OBJ): cmd/tool.c cmd/tool.h $(wildcard lib/*.h) | $(B)/lib
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BIN)/%: cmd/%.c $(TOOL_OBJ) $(B)/libvm.a cmd/tool.h $(wildcard lib/*.h) | $(BIN)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(TOOL_OBJ) $(B)/libvm.a \
		-Wl,-Bstatic $(LIBS_STATIC_$*) $(LIBS_STATIC) -Wl,-Bdynamic $(LIBS_$*) -lm

# The unit tests link the library alone: it never exits, so they need no tool layer.
$(B)/tests/%: tests/unit/%.c $(B)/libvm.a $(wildcard lib/*.h tests/unit/*.h) | $(B)/tests
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(B)/libvm.a -lcmocka -ledit -larchive -lplist-2.0 $(LIBS_BASE)

$(B)/lib $(B)/tests $(BIN):
	mkdir -p $@

deps:
	@scripts/install-deps

# The demo guest: a Debian kernel and a busybox initramfs (scripts/mkguest).
GUEST = build/guest/vmlinuz build/guest/initrd.img
guest: $(GUEST)
$(GUEST) &: scripts/mkguest $(wildcard share/guest/*)
	scripts/mkguest build/guest

# The Debian 12 cloud image the e2e tests boot through firmware
# (scripts/mkimage). Always "built": the script returns at once when its
# stamp matches the recipe. make check goes on without it (the tests that
# need it skip, saying why: mkimage leaves its reason in build/image/mkimage.err).
IMAGE = build/image/debian12.qcow2
image:
	scripts/mkimage build/image

# SANITIZE=1: the whole suite on the sanitizer build. VALGRIND=1: every tool
# the end-to-end tests run goes through valgrind (tests/run makes wrappers).
check: deps
	$(MAKE) all units guest
	@scripts/mkimage build/image || echo "make: no cloud image; the tests that boot it skip" >&2
	@VM_BUILD=$(B) VM_BINDIR=$(BIN) VALGRIND=$(VALGRIND) tests/run $(TESTS)

units: $(UNITS)

demo: deps
	$(MAKE) all guest
	@scripts/demo

bench: deps
	$(MAKE) all guest
	@scripts/bench

lint:
	@for m in $(MANS); do mandoc -T lint -W warning $$m || exit 1; done

# The completions go where bash-completion (one name per command, loaded on
# first use) and zsh look, as links to the one script of each in DATADIR.
install: all $(if $(filter yes,$(WITH_GUEST)),guest)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DATADIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)
	for m in $(MANS); do s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s; done
	cp -R share/. $(DESTDIR)$(DATADIR)/
	for t in $(notdir $(TOOLS)); do \
		ln -sfr $(DESTDIR)$(DATADIR)/completion/utmkit.bash $(DESTDIR)$(BASHCOMPDIR)/$$t || exit 1; done
	ln -sfr $(DESTDIR)$(DATADIR)/completion/_utmkit $(DESTDIR)$(ZSHCOMPDIR)/_utmkit
ifeq ($(WITH_GUEST),yes)
	install -d $(DESTDIR)$(DATADIR)/guest
	install -m 644 $(GUEST) $(DESTDIR)$(DATADIR)/guest/
endif

clean:
	rm -rf build bin

.PHONY: all check units demo bench lint install clean deps guest image

# libFuzzer harnesses (tests/fuzz): make fuzz FUZZ_SECONDS=N
-include tests/fuzz/fuzz.mk
.SECONDARY:
