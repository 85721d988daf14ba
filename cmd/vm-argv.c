/* vm-argv: print the QEMU command line for a bundle. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "argv.h"
#include "libvirt.h"
#include "tool.h"

enum { OPT_NO_SANDBOX = CLI_LONG_ONLY, OPT_ALLOW_PATH, OPT_DISPLAY, OPT_LIBVIRT };

static const struct cli_option options[] = {
    CLI_FLAG('0', "null", "NUL-separated words (for xargs -0)"),
    CLI_FLAG('j', "json", "a JSON array of words"),
    CLI_FLAG(OPT_LIBVIRT, "libvirt", "a libvirt domain XML instead (domain type kvm or qemu\n"
				      "from the accelerator verdict); what libvirt cannot say\n"
				      "goes into <qemu:commandline>, each item a warning"),
    CLI_VALUE('a', "accel", "A", "accelerator: auto, kvm or tcg (default: the config's, then\n"
				 "$VM_ACCEL, then auto)"),
    CLI_FLAG('S', "paused", "start with the CPUs stopped (-S)"),
    CLI_FLAG('s', "snapshot", "discard disk writes (-snapshot)"),
    CLI_FLAG('x', "exit-device", "add isa-debug-exit so the guest sets the exit status (x86)"),
    CLI_FLAG(OPT_NO_SANDBOX, "no-sandbox", "leave out QEMU's seccomp sandbox (-sandbox)"),
    CLI_VALUE(OPT_ALLOW_PATH, "allow-path", "PATH", "the config may name PATH (a file or folder) outside\n"
						      "the bundle"),
    CLI_VALUE(OPT_DISPLAY, "display", "D", "none, vnc, spice or vnc:PORT instead of the config's\n"
					     "display (vm-run --display)"),
    CLI_FLAG('q', "quiet", "no notices, only errors"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-argv [-0] [--json] [--accel auto|kvm|tcg] [--paused] [--snapshot]\n"
	     "               [--exit-device] [--no-sandbox] [--allow-path PATH]...\n"
	     "               [--display none|vnc|spice|vnc:PORT] BUNDLE\n"
	     "       vm-argv --libvirt [--accel auto|kvm|tcg] [--exit-device] [--allow-path PATH]... BUNDLE\n",
    .about = "Print the QEMU command line for BUNDLE, program first.\n",
    .options = options,
};

/* The domain type is the accelerator vm-run would use: auto is decided
 * here, by the probe (its verdict is cached for the host's boot). */
static int print_libvirt(struct bundle *b, const struct argv_opts *ao)
{
	struct accel_choice ac;
	char *err = NULL;
	if (accel_choose(ao->accel, &b->cfg, &ac, &err) < 0)
		vm_errx(EXIT_USAGE, "%s", err);
	vm_info("accelerator %s", ac.reason);
	struct libvirt_opts lo = {.domain_type = !strcmp(ac.accel, "kvm") ? "kvm" : "qemu",
				  .qemu_dir = ao->qemu_dir, .exit_device = ao->exit_device};
	struct strv warnings = {0};
	char *xml = libvirt_domain_xml(b, &lo, &warnings, &err);
	char *name = bundle_display_name(b->path);
	for (size_t i = 0; i < warnings.n; i++)
		vm_warnx("%s: %s", name, warnings.v[i]);
	int status = 0;
	if (xml)
		fputs(xml, stdout);
	else
		vm_warnx("%s", err);
	if (!xml)
		status = EXIT_FAIL;
	free(name);
	free(xml);
	free(err);
	strv_free(&warnings);
	accel_choice_free(&ac);
	bundle_close(b);
	return status;
}

int main(int argc, char **argv)
{
	enum { SHELL, NUL, JSON, LIBVIRT } mode = SHELL;
	struct argv_opts o = ARGV_OPTS_INIT;
	struct strv allow = {0};
	int ch;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case '0': mode = NUL; break;
		case 'j': mode = JSON; break;
		case 'a': o.accel = optarg; break;
		case 'S': o.paused = true; break;
		case 's': o.snapshot = true; break;
		case 'x': o.exit_device = true; break;
		case OPT_NO_SANDBOX: o.no_sandbox = true; break;
		case OPT_ALLOW_PATH: strv_push(&allow, optarg); break;
		case OPT_DISPLAY: o.display = optarg; break;
		case OPT_LIBVIRT: mode = LIBVIRT; break;
		}
	}
	if (argc - optind != 1)
		tool_usage_error(&cli);
	struct bundle b;
	bundle_open_or_die(&b, argv[optind]);
	b.allow = allow;
	/* The same request vm-run starts from; auto stays "kvm, else tcg" here
	 * (vm-run decides it by probing). */
	const char *source;
	char *err = NULL;
	if (accel_request(o.accel, &b.cfg, &o.accel, &source, &err) < 0)
		vm_errx(EXIT_USAGE, "%s", err);
	struct display_spec ds;
	char *derr = NULL;
	if (o.display && display_parse(o.display, &ds, &derr) < 0)
		vm_errx(EXIT_USAGE, "%s", derr);
	o.qemu_dir = getenv("VM_QEMU_DIR") && *getenv("VM_QEMU_DIR") ? getenv("VM_QEMU_DIR") : NULL;
	if (mode == LIBVIRT)
		return print_libvirt(&b, &o);
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
		print_json(stdout, a, CLI_JSON_COMPACT);
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
	return 0;
}
