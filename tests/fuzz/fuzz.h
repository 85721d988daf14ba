/* Shared helpers for the libFuzzer harnesses in tests/fuzz (see fuzz.mk).
 * Each harness is one file that defines LLVMFuzzerTestOneInput; everything it
 * allocates is freed (LeakSanitizer runs), and anything it writes goes to one
 * private temporary folder made at start-up and removed at exit. */
#ifndef VM_FUZZ_H
#define VM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

/* What every tool does with a parsed model: validate it, print it as JSON,
 * and make the effective config (a copy with defaults), validated too;
 * that copy is left in *eff (config_free it). */
static inline void fuzz_use_model(const struct vm_config *c, bool pretty, struct vm_config *eff)
{
	struct buf errs = {0};
	config_validate(c, &errs);
	buf_free(&errs);
	free(config_format_json(c, pretty));
	config_copy(eff, c);
	config_apply_defaults(eff);
	errs = (struct buf){0};
	config_validate(eff, &errs);
	buf_free(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input as a C string (it stops at the first NUL, as it would in a file
 * read by the tools); free() it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A property that must hold: on failure print why and abort, which libFuzzer
 * reports as a crash with the input that broke it. */
#define FUZZ_ASSERT(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static char *fuzz_tmp_root;
static pid_t fuzz_tmp_owner;

static inline void fuzz_tmp_cleanup(void)
{
	if (fuzz_tmp_root && getpid() == fuzz_tmp_owner) /* never from a forked child */
		rm_rf(fuzz_tmp_root);
	free(fuzz_tmp_root);
	fuzz_tmp_root = NULL;
}

/* The private folder: $FUZZ_TMPDIR, else /dev/shm (no disk I/O for the
 * fsyncs of atomic writes), else $TMPDIR or /tmp. Removed at exit. */
static inline const char *fuzz_tmpdir(void)
{
	if (fuzz_tmp_root)
		return fuzz_tmp_root;
	const char *bases[] = {getenv("FUZZ_TMPDIR"), "/dev/shm", getenv("TMPDIR"), "/tmp"};
	for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
		if (!bases[i] || !*bases[i] || access(bases[i], W_OK) != 0)
			continue;
		char *t = xasprintf("%s/utmkit-fuzz.XXXXXX", bases[i]);
		if (mkdtemp(t)) {
			fuzz_tmp_root = t;
			fuzz_tmp_owner = getpid();
			atexit(fuzz_tmp_cleanup);
			return t;
		}
		free(t);
	}
	fprintf(stderr, "fuzz: cannot make a temporary folder\n");
	abort();
}

#endif
