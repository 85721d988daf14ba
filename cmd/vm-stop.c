/* vm-stop: stop a running VM: the ACPI power button, then QMP quit, then
 * SIGKILL, and return only when the VM is gone (its lock is free), so a
 * following vm-run never races with it. The sequence is vm_stop()
 * (lib/launch.c), the one vm-run's Ctrl-C runs too. */
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>

#include "bundle.h"
#include "launch.h"
#include "runtime.h"
#include "suspend.h"
#include "tool.h"

static const struct cli_option options[] = {
    CLI_VALUE('t', "timeout", "SECONDS", "how long the guest gets to power off (default 30);\n"
					 "0: no timeout, wait forever"),
    CLI_FLAG('f', "force", "skip the power button: quit QEMU at once"),
    CLI_FLAG('s', "save", "suspend: save the VM's whole state in the bundle (Data/vmstate),\n"
			  "then quit; the next vm-run resumes it"),
    CLI_FLAG('q', "quiet", "no messages but errors"),
    CLI_FLAG('v', "verbose", "say each step"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-stop [options] BUNDLE...\n",
    .about = "Stop running VMs: ACPI power-off, then QMP quit, then kill; wait until they are gone.\n",
    .options = options,
};

struct stop_ctx {
	const char *name;
	int timeout_ms; /* CLI_FOREVER: no deadline */
	pid_t pid; /* for the messages: the pid file vm_stop() reads too */
};

static void on_no_qmp(void *ctx, const char *detail)
{
	vm_info("%s: QMP: %s", ((struct stop_ctx *)ctx)->name, detail);
}

/* The steps of the stop sequence, in vm-stop's words. */
static void on_step(void *ctx, enum stop_event ev, const char *detail)
{
	const struct stop_ctx *c = ctx;
	switch (ev) {
	case STOP_EV_CPUS_STOPPED:
		vm_info("%s: the CPUs are not running; skipping the power button", c->name);
		break;
	case STOP_EV_POWERDOWN:
		if (c->timeout_ms == CLI_FOREVER)
			vm_info("%s: pressing the power button (waiting until the guest powers off)", c->name);
		else
			vm_info("%s: pressing the power button (waiting up to %g s)", c->name, c->timeout_ms / 1000.0);
		break;
	case STOP_EV_POWERDOWN_FAILED: vm_info("%s: system_powerdown: %s", c->name, detail); break;
	case STOP_EV_POWERDOWN_TIMEOUT:
		if (!vm_quiet)
			vm_warnx("%s: the guest did not power off within %g s; %s", c->name, c->timeout_ms / 1000.0,
				 detail ? "trying its guest agent" : "quitting");
		break;
	case STOP_EV_AGENT_NONE: vm_info("%s: %s; quitting", c->name, detail); break;
	case STOP_EV_AGENT_TIMEOUT:
		if (!vm_quiet)
			vm_warnx("%s: the guest did not power off within %g s of guest-shutdown; quitting", c->name,
				 c->timeout_ms / 1000.0);
		break;

	case STOP_EV_QUIT: vm_info("%s: QMP quit", c->name); break;
	case STOP_EV_QUIT_FAILED: vm_info("%s: quit: %s", c->name, detail); break;
	case STOP_EV_TERM: vm_info("%s: SIGTERM to QEMU (pid %d)", c->name, (int)c->pid); break;
	case STOP_EV_KILL: vm_warnx("%s: QEMU (pid %d) did not quit; killing it", c->name, (int)c->pid); break;
	default: break;
	}
}

static int stop_one(const char *arg, int timeout_ms, bool force, bool save)
{
	struct bundle b;
	char *err = NULL;
	if (bundle_open(&b, arg, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		return EXIT_FAIL;
	}
	struct stop_ctx c = {.name = bundle_display_name(b.path), .timeout_ms = timeout_ms};
	char *dir = tool_runtime_dir(&b);
	c.pid = runtime_read_pid(dir);
	struct vm_stop_opts o = VM_STOP_OPTS_INIT;
	o.timeout_ms = timeout_ms;
	o.force = force;
	o.note = on_step;
	o.no_qmp = on_no_qmp;
	o.ctx = &c;
	o.name = c.name;
	const char *by = NULL;
	o.stopped_by = &by;
	int status = EXIT_OK, r = save ? suspend_and_stop(&b, dir, &o, &err) : vm_stop(dir, &o, &err);
	if (r == 0 && save)
		by = "its state saved in Data/vmstate";
	if (r == 0)
		vm_info("%s: stopped (%s)", c.name, by ? by : "?");
	if (r == 1 && !vm_quiet)
		vm_warnx("%s: not running", c.name);
	if (r < 0) {
		vm_warnx("%s: %s", c.name, err);
		free(err);
		status = EXIT_FAIL;
	}
	free(dir);
	free((char *)c.name);
	bundle_close(&b);
	return status;
}

int main(int argc, char **argv)
{
	int timeout_ms = 30000, ch;
	bool force = false, save = false;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case 't': timeout_ms = tool_seconds("--timeout", optarg); break;
		case 'f': force = true; break;
		case 's': save = true; break;
		}
	}
	if (optind >= argc)
		tool_usage_error(&cli);
	signal(SIGPIPE, SIG_IGN);
	if (argc - optind == 1)
		return stop_one(argv[optind], timeout_ms, force, save);
	/* Several VMs stop side by side: the total is the slowest, not the sum. */
	int status = EXIT_OK;
	fflush(NULL);
	for (int i = optind; i < argc; i++) {
		pid_t p = fork();
		if (p < 0) {
			vm_warn("fork");
			status = EXIT_FAIL;
		} else if (p == 0) {
			_exit(stop_one(argv[i], timeout_ms, force, save));
		}
	}
	int st;
	for (pid_t p; (p = wait(&st)) > 0 || (p < 0 && errno == EINTR);)
		if (p > 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
			status = EXIT_FAIL;
	return status;
}
