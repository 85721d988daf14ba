/* Helpers shared by the C unit tests. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* A scratch folder removed at exit. */
static inline char *test_tmpdir(void)
{
	char *t = xstrdup("/tmp/utmkit-unit.XXXXXX");
	if (!mkdtemp(t))
		abort();
	return t;
}

static inline void write_text(const char *path, const char *text)
{
	if (write_file_atomic(path, text, strlen(text), 0644) < 0)
		fail_msg("cannot write %s", path);
}

#endif
