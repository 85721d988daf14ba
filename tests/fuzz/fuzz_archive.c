/* Archive entries on import (vm-create --from: bundle_import, which unpacks
 * with bundle_unpack and then opens and saves the bundle). The input is the
 * archive file: zip or tar, any compression libarchive reads here. It is
 * imported into a folder of the harness's private temporary folder; after
 * each run nothing may be left beside the new bundle (a failed import leaves
 * nothing at all), and nothing may be written outside it. Files are capped
 * at 64 MiB (RLIMIT_FSIZE) so a decompression bomb ends as an error. */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "archive.h"
#include "bundle.h"
#include "fuzz.h"

static char *in_path, *work_dir, *out_path, *canary_dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	vm_quiet = true;
	const char *t = fuzz_tmpdir();
	in_path = path_join(t, "in.archive");
	work_dir = path_join(t, "work");
	out_path = path_join(work_dir, "out.utm");
	canary_dir = path_join(t, "canary");
	if (mkdir(work_dir, 0700) < 0 || mkdir(canary_dir, 0700) < 0)
		abort();
	struct rlimit rl = {64 << 20, 64 << 20};
	setrlimit(RLIMIT_FSIZE, &rl);
	return 0;
}

/* Names in dir other than "." and ".."; the first one in *first. */
static int entries(const char *dir, char **first)
{
	DIR *d = opendir(dir);
	FUZZ_ASSERT(d, "%s: cannot open", dir);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!n && first)
			*first = xstrdup(de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* past the limit a write fails with EFBIG; libFuzzer's own SIGXFSZ
	 * handler, set after LLVMFuzzerInitialize, would call it a crash */
	static bool once;
	if (!once) {
		signal(SIGXFSZ, SIG_IGN);
		once = true;
	}
	if (write_file_atomic(in_path, (const char *)data, size, 0600) < 0)
		abort();
	char *err = NULL;
	int r = bundle_import(in_path, out_path, 0, &err);
	if (r < 0) {
		FUZZ_ASSERT(err && *err, "a failed import gives no error");
		free(err);
	} else {
		/* what was imported opens */
		struct bundle b;
		if (bundle_open(&b, out_path, &err) == 0)
			bundle_close(&b);
		else
			free(err);
	}

	char *first = NULL;
	int n = entries(work_dir, &first);
	FUZZ_ASSERT(n == (r == 0) && (!first || !strcmp(first, "out.utm")),
		    "import %s, and the folder holds %d entries (%s)", r == 0 ? "succeeded" : "failed", n,
		    first ? first : "");
	free(first);
	FUZZ_ASSERT(entries(canary_dir, NULL) == 0, "something was written outside the import folder");
	char *t = NULL;
	FUZZ_ASSERT(entries(fuzz_tmpdir(), &t) == 3, "something was written beside the import folder");
	free(t);
	rm_rf(out_path);
	return 0;
}
