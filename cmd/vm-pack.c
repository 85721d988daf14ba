/* vm-pack: pack a bundle into an archive that vm-create --from (and UTM, for
 * .utm.zip) imports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "bundle.h"
#include "runtime.h"
#include "tool.h"

static const struct cli_option options[] = {
    CLI_VALUE('F', "format", "FMT", "zip, tar, tar.gz, tar.zst, tar.xz or tar.bz2\n"
				    "(default: from OUT's name; needed for -)"),
    CLI_FLAG('f', "force", "replace OUT if it exists"),
    CLI_FLAG('q', "quiet", "no progress, no notices"),
    CLI_FLAG('v', "verbose", "name each entry on stderr"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-pack [options] BUNDLE OUT\n",
    .about = "Pack a VM bundle into an archive: OUT.utm.zip (as UTM shares them), .zip, .tar,\n"
	     ".tar.gz, .tar.zst, .tar.xz or .tar.bz2; OUT - writes to stdout.\n",
    .options = options,
};

/* A running VM's disks change under us: refuse. Only bundles whose
 * configuration this build reads have a runtime directory to look at. */
static void refuse_running(const char *path)
{
	struct bundle b;
	char *err = NULL;
	if (bundle_open(&b, path, &err) < 0) {
		free(err);
		return;
	}
	char *rt = tool_runtime_dir(&b);
	bool running = runtime_locked(rt);
	free(rt);
	bundle_close(&b);
	if (running)
		vm_errx(EXIT_FAIL, "%s: the VM is running; stop it before packing", path);
}

int main(int argc, char **argv)
{
	enum pack_format fmt = PACK_NONE;
	int flags = 0, ch;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case 'F':
			fmt = pack_format_parse(optarg);
			if (fmt == PACK_NONE)
				vm_errx(EXIT_USAGE, "--format %s: not one of zip, tar, tar.gz, tar.zst, tar.xz, tar.bz2",
					optarg);
			break;
		case 'f': flags |= PACK_FORCE; break;
		}
	}
	if (argc - optind != 2)
		tool_usage_error(&cli);
	const char *name = argv[optind], *out = argv[optind + 1];
	if (fmt == PACK_NONE) {
		if (!strcmp(out, "-"))
			vm_errx(EXIT_USAGE, "-: give the format of stdout with --format");
		fmt = pack_format_from_name(out);
		if (fmt == PACK_NONE)
			vm_errx(EXIT_USAGE, "%s: unknown archive type; name it .utm.zip, .zip, .tar, .tar.gz, "
					    ".tar.zst, .tar.xz or .tar.bz2, or give --format",
				out);
	}
	if (!strcmp(out, "-") && isatty(STDOUT_FILENO))
		vm_errx(EXIT_USAGE, "-: will not write an archive to a terminal");
	char *path = bundle_find(name);
	if (!path)
		vm_errx(EXIT_FAIL, "%s: no such bundle%s", name,
			strchr(name, '/') || !getenv("VM_PATH") ? "" : " (searched $VM_PATH)");
	refuse_running(path);
	if (!vm_quiet && isatty(STDERR_FILENO))
		flags |= PACK_PROGRESS;
	if (vm_verbose)
		flags |= PACK_VERBOSE;
	char *err = NULL;
	if (bundle_pack(path, out, fmt, flags, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		free(path);
		return EXIT_FAIL;
	}
	free(path);
	return 0;
}
