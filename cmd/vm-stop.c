/* vm-stop: stop a running VM: the ACPI power button, then QMP quit, then
 * SIGKILL, and return only when the VM is gone (its lock is free), so a
 * following vm-run never races with it. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "bundle.h"
#include "qmp.h"
#include "runtime.h"
#include "tool.h"

static const char usage[] =
    "usage: vm-stop [options] BUNDLE...\n"
    "Stop running VMs: ACPI power-off, then QMP quit, then kill; wait until they are gone.\n"
    "  -t, --timeout SECONDS  how long the guest gets to power off (default 30)\n"
    "  -f, --force            skip the power button: quit QEMU at once\n"
    "  -q, --quiet            no messages but errors\n"
    "  -v, --verbose          say each step\n"
    "  -h, --help             this help\n"
    "  -V, --version          print the version\n";

#define QMP_MS 2000
#define GRACE_MS 5000

/* Did QEMU say SHUTDOWN on this connection? It has exited: everything it
 * wrote is waiting on the socket. */
static bool saw_shutdown(struct qmp *q)
{
	struct json_object *ev = NULL;
	int r = qmp_wait_event(q, "SHUTDOWN", 0, &ev, NULL);
	json_object_put(ev);
	return r == 1;
}

static int stop_one(const char *arg, int timeout_ms, bool force)
{
	struct bundle b;
	char *err = NULL;
	if (bundle_open(&b, arg, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		return EXIT_FAIL;
	}
	char *name = bundle_display_name(b.path);
	char *dir = bundle_runtime_path(&b, NULL);
	int status = EXIT_OK;
	if (!runtime_locked(dir)) {
		if (!vm_quiet)
			vm_warnx("%s: not running", name);
		goto out;
	}
	pid_t pid = runtime_read_pid(dir);
	char *sock = path_join(dir, RT_QMP);
	struct qmp *q = qmp_connect(sock, QMP_MS, &err);
	free(sock);
	/* QEMU hung up in the middle of the handshake: it is going away */
	bool hung_up = !q && errno == EPROTO;
	if (!q) {
		vm_info("%s: QMP: %s", name, err);
		free(err);
		err = NULL;
	}

	bool polite = !force && q, killed = false;
	if (polite) {
		/* A guest whose CPUs are stopped cannot answer the power button. */
		struct json_object *ret = NULL, *v;
		if (qmp_execute(q, "query-status", NULL, QMP_MS, &ret, &err) == 0) {
			if (!json_object_object_get_ex(ret, "running", &v) || !json_object_get_boolean(v)) {
				vm_info("%s: the CPUs are not running; skipping the power button", name);
				polite = false;
			}
			json_object_put(ret);
		} else {
			free(err);
			err = NULL;
		}
	}
	if (polite) {
		vm_info("%s: pressing the power button (waiting up to %d s)", name, timeout_ms / 1000);
		if (qmp_execute(q, "system_powerdown", NULL, QMP_MS, NULL, &err) < 0) {
			vm_info("%s: system_powerdown: %s", name, err);
			free(err);
			err = NULL;
		} else {
			/* QEMU keeps our connection until it exits; leave it so QMP stays
			 * usable for quit. */
			if (runtime_wait_unlocked(dir, timeout_ms) == 0)
				goto gone;
			if (!vm_quiet)
				vm_warnx("%s: the guest did not power off within %d s; quitting", name,
					 timeout_ms / 1000);
		}
	}
	if (q) {
		vm_info("%s: QMP quit", name);
		if (qmp_execute(q, "quit", NULL, QMP_MS, NULL, &err) < 0) {
			vm_info("%s: quit: %s", name, err);
			free(err);
			err = NULL;
		}
	} else if (pid > 0) {
		vm_info("%s: SIGTERM to QEMU (pid %d)", name, (int)pid);
		kill(pid, SIGTERM); /* QEMU's SIGTERM is a clean quit */
	}
	if (runtime_wait_unlocked(dir, GRACE_MS) == 0)
		goto gone;
	if (pid > 0) {
		vm_warnx("%s: QEMU (pid %d) did not quit; killing it", name, (int)pid);
		kill(pid, SIGKILL);
		killed = true;
	}
	if (runtime_wait_unlocked(dir, GRACE_MS) == 0)
		goto gone;
	vm_warnx("%s: still running (the lock %s/%s is held)", name, dir, RT_LOCK);
	status = EXIT_FAIL;
	goto close;
gone:
	/* QEMU announces every shutdown, the guest's, a quit or a SIGTERM, with
	 * a SHUTDOWN event before it exits; without one, something else killed
	 * it or it crashed while we waited. The VM is gone, but not stopped. */
	if (!killed && (q ? !saw_shutdown(q) : hung_up)) {
		vm_warnx("%s: QEMU exited without shutting down (killed or crashed)", name);
		status = EXIT_FAIL;
	}
	/* Tidy what a detached QEMU leaves behind, unless a new run already took over. */
	{
		struct runtime rt;
		char *e2 = NULL;
		int v = vm_verbose;
		vm_verbose = 0; /* runtime_lock's note on leftovers says nothing new here */
		if (runtime_lock(dir, &rt, NULL, &e2) == 0)
			runtime_release(&rt);
		vm_verbose = v;
		free(e2);
	}
	if (status == EXIT_OK)
		vm_info("%s: stopped", name);
close:
	if (q)
		qmp_close(q);
out:
	free(dir);
	free(name);
	bundle_close(&b);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {"force", no_argument, NULL, 'f'},
	    CLI_COMMON_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	long long timeout_s = 30;
	bool force = false;
	const char *e = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "t:f" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (parse_int(optarg, 0, 1000000, &timeout_s, &e) < 0)
				vm_errx(EXIT_USAGE, "--timeout %s: %s (seconds)", optarg, e);
			break;
		case 'f': force = true; break;
		default: cli_common(ch, usage);
		}
	}
	if (optind >= argc)
		usage_exit(usage, EXIT_USAGE);
	signal(SIGPIPE, SIG_IGN);
	if (argc - optind == 1)
		return stop_one(argv[optind], (int)timeout_s * 1000, force);
	/* Several VMs stop side by side: the total is the slowest, not the sum. */
	int status = EXIT_OK;
	fflush(NULL);
	for (int i = optind; i < argc; i++) {
		pid_t p = fork();
		if (p < 0) {
			vm_warn("fork");
			status = EXIT_FAIL;
		} else if (p == 0) {
			_exit(stop_one(argv[i], (int)timeout_s * 1000, force));
		}
	}
	int st;
	pid_t p;
	while ((p = wait(&st)) > 0 || (p < 0 && errno == EINTR))
		if (p > 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
			status = EXIT_FAIL;
	return status;
}
