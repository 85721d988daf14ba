/* vm-argv: print the QEMU command line for a bundle. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "argv.h"

static const char usage[] =
    "usage: vm-argv [-0] [--json] [--accel auto|kvm|tcg] [--paused] [--snapshot]\n"
    "               [--exit-device] [--no-sandbox] [--allow-path PATH]... BUNDLE\n"
    "Print the QEMU command line for BUNDLE, program first.\n"
    "  -0, --null        NUL-separated words (for xargs -0)\n"
    "  -j, --json        a JSON array of words\n"
    "  -a, --accel A     accelerator: auto, kvm or tcg (default: the config's, then\n"
    "                    $VM_ACCEL, then auto)\n"
    "  -S, --paused      start with the CPUs stopped (-S)\n"
    "  -s, --snapshot    discard disk writes (-snapshot)\n"
    "  -x, --exit-device add isa-debug-exit so the guest sets the exit status (x86)\n"
    "      --no-sandbox  leave out QEMU's seccomp sandbox (-sandbox)\n"
    "      --allow-path PATH  the config may name PATH (a file or folder) outside the bundle\n"
    "  -h, --help        this help\n"
    "  -V, --version     print the version\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"null", no_argument, NULL, '0'},	    {"json", no_argument, NULL, 'j'},
	    {"accel", required_argument, NULL, 'a'}, {"paused", no_argument, NULL, 'S'},
	    {"snapshot", no_argument, NULL, 's'},   {"exit-device", no_argument, NULL, 'x'},
	    {"no-sandbox", no_argument, NULL, 'N'}, {"allow-path", required_argument, NULL, 'P'},
	    CLI_COMMON_LONGOPTS,		    {NULL, 0, NULL, 0}};
	enum { SHELL, NUL, JSON } mode = SHELL;
	struct argv_opts o = ARGV_OPTS_INIT;
	struct strv allow = {0};
	int ch;
	while ((ch = getopt_long(argc, argv, "0ja:Ssx" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		switch (ch) {
		case '0': mode = NUL; break;
		case 'j': mode = JSON; break;
		case 'a': o.accel = optarg; break;
		case 'S': o.paused = true; break;
		case 's': o.snapshot = true; break;
		case 'x': o.exit_device = true; break;
		case 'N': o.no_sandbox = true; break;
		case 'P': strv_push(&allow, optarg); break;
		default: cli_common(ch, usage);
		}
	}
	if (argc - optind != 1)
		usage_exit(usage, EXIT_USAGE);
	struct bundle b;
	bundle_open_or_die(&b, argv[optind]);
	b.allow = allow;
	/* The same request vm-run starts from; auto stays "kvm, else tcg" here
	 * (vm-run decides it by probing). */
	const char *source;
	char *err = NULL;
	if (accel_request(o.accel, &b.cfg, &o.accel, &source, &err) < 0)
		vm_errx(EXIT_USAGE, "%s", err);
	o.qemu_dir = getenv("VM_QEMU_DIR") && *getenv("VM_QEMU_DIR") ? getenv("VM_QEMU_DIR") : NULL;
	struct strv av = {0};
	if (argv_build(&b, &o, &av, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		strv_free(&av);
		bundle_close(&b);
		return EXIT_FAIL;
	}
	if (mode == JSON) {
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < av.n; i++)
			json_object_array_add(a, json_object_new_string(av.v[i]));
		puts(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(a);
	} else if (mode == NUL) {
		for (size_t i = 0; i < av.n; i++)
			fwrite(av.v[i], 1, strlen(av.v[i]) + 1, stdout);
	} else {
		struct buf line = {0};
		shell_quote_argv(&line, &av);
		puts(line.s);
		buf_free(&line);
	}
	strv_free(&av);
	bundle_close(&b);
	if (fflush(stdout) == EOF || ferror(stdout))
		vm_err(EXIT_FAIL, "stdout");
	return 0;
}
