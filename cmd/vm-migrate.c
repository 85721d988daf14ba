/* vm-migrate: move a running VM to a QEMU waiting for it (vm-run --incoming),
 * on this host or another. The mechanism is lib/migrate.c; this keeps the
 * options, the progress line on a terminal and the end: the source QEMU is
 * quit only once the destination has the VM. */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "qmp.h"
#include "runtime.h"
#include "tool.h"

enum {
	OPT_MAX_DOWNTIME = CLI_LONG_ONLY,
	OPT_BANDWIDTH,
	OPT_POSTCOPY,
	OPT_NO_AUTO_CONVERGE,
	OPT_COPY_STORAGE,
	OPT_DEST_QMP,
	OPT_NBD,
};

static const struct cli_option options[] = {
    CLI_FLAG('j', "json", "the result as JSON on stdout"),
    CLI_VALUE(OPT_MAX_DOWNTIME, "max-downtime", "MS", "the longest the guest may stand still at the switch\n"
							"(default: QEMU's, 300 ms)"),
    CLI_VALUE(OPT_BANDWIDTH, "bandwidth", "RATE", "at most RATE bytes per second (512M, 1G; default:\n"
						  "unlimited)"),
    CLI_FLAG(OPT_POSTCOPY, "postcopy", "when memory does not converge, switch to postcopy:\n"
				       "the destination runs and pulls the rest"),
    CLI_FLAG(OPT_NO_AUTO_CONVERGE, "no-auto-converge", "never slow the guest's CPUs down to converge"),
    CLI_FLAG(OPT_COPY_STORAGE, "copy-storage", "copy the disks too (storage not shared): the\n"
					       "destination serves its images over NBD"),
    CLI_VALUE(OPT_DEST_QMP, "dest-qmp", "SOCKET", "the destination's QMP socket (to copy storage;\n"
						  "confirms that it runs)"),
    CLI_VALUE(OPT_NBD, "nbd", "URI", "where the destination serves its disks (default: the\n"
				     "migration's host, port + 1; or PATH.nbd)"),
    CLI_VALUE('t', "timeout", "SECONDS", "cancel a migration that takes longer (exit status 3)"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-migrate [--json] [--max-downtime MS] [--bandwidth RATE] [--postcopy]\n"
	     "                  [--no-auto-converge] [--copy-storage] [--dest-qmp SOCKET] [--nbd URI]\n"
	     "                  [--timeout SECONDS] BUNDLE tcp:HOST:PORT|unix:PATH\n",
    .about = "Move the running VM in BUNDLE to the QEMU waiting at the address (vm-run --incoming).\n",
    .options = options,
};

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct ui {
	const char *name;
	bool tty;
	bool shown;
};

static void mib(char *out, size_t n, uint64_t bytes)
{
	snprintf(out, n, "%.0f MiB", (double)bytes / (1 << 20));
}

static void on_progress(void *ctx, const struct migrate_progress *p)
{
	struct ui *u = ctx;
	if (!u->tty || vm_quiet)
		return;
	char left[32], total[32];
	mib(left, sizeof left, p->remaining);
	mib(total, sizeof total, p->total);
	unsigned pct = p->total ? (unsigned)(100.0 * (double)(p->total - p->remaining) / (double)p->total) : 0;
	if (!strcmp(p->phase, "disks")) {
		fprintf(stderr, "\r\033[Kvm-migrate: %s: disks %u%% of %s, %s left", u->name, pct, total, left);
	} else {
		fprintf(stderr, "\r\033[Kvm-migrate: %s: %s%s %.1f MB/s, %s of %s left, dirty %llu pages/s, pass %llu",
			u->name, p->postcopy ? "postcopy " : "", p->status, p->mbps / 8, left, total,
			(unsigned long long)p->dirty_rate, (unsigned long long)p->iterations);
		if (p->cpu_throttle)
			fprintf(stderr, ", CPUs throttled %d%%", p->cpu_throttle);
	}
	u->shown = true;
}

static void end_line(struct ui *u)
{
	if (u->shown)
		fputc('\n', stderr);
	u->shown = false;
}

int main(int argc, char **argv)
{
	struct migrate_opts o = {.auto_converge = true, .interrupted = &interrupted};
	const char *dest_qmp = NULL;
	bool json = false;
	int ch;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		long long v;
		const char *e = NULL;
		switch (ch) {
		case 'j': json = true; break;
		case OPT_MAX_DOWNTIME:
			if (parse_int(optarg, 1, 3600000, &v, &e) < 0)
				vm_errx(EXIT_USAGE, "--max-downtime %s: %s (milliseconds)", optarg, e);
			o.max_downtime_ms = (int)v;
			break;
		case OPT_BANDWIDTH:
			if (parse_size(optarg, 1, &o.bandwidth) < 0 || !o.bandwidth)
				vm_errx(EXIT_USAGE, "--bandwidth %s: not a rate in bytes per second (100M, 1G)", optarg);
			break;
		case OPT_POSTCOPY: o.postcopy = true; break;
		case OPT_NO_AUTO_CONVERGE: o.auto_converge = false; break;
		case OPT_COPY_STORAGE: o.copy_storage = true; break;
		case OPT_DEST_QMP: dest_qmp = optarg; break;
		case OPT_NBD: o.nbd_uri = optarg; break;
		case 't': o.timeout_ms = tool_seconds("--timeout", optarg); break;
		}
	}
	if (argc - optind != 2)
		tool_usage_error(&cli);
	o.uri = argv[optind + 1];
	char *err = NULL;
	if (migrate_uri_check(o.uri, &err) < 0 || (o.nbd_uri && migrate_uri_check(o.nbd_uri, &err) < 0))
		vm_errx(EXIT_USAGE, "%s", err);
	if (o.copy_storage && !dest_qmp)
		vm_errx(EXIT_USAGE, "--copy-storage needs --dest-qmp SOCKET: the destination serves its disks "
				    "(see vm-migrate(1) for a remote one)");

	struct bundle b;
	bundle_open_or_die(&b, argv[optind]);
	struct ui u = {.name = NULL, .tty = isatty(STDERR_FILENO)};
	char *name = bundle_display_name(b.path);
	u.name = name;
	char *dir = tool_runtime_dir(&b);
	if (!runtime_locked(dir))
		vm_errx(EXIT_FAIL, "%s: not running", name);
	/* the session monitor: qmp.sock stays free for vm-stop, vm-ls, vm-qmp */
	struct qmp *q = runtime_qmp_connect(dir, RT_QMP_SESSION, 5000, &err);
	if (!q)
		vm_errx(EXIT_FAIL, "%s: QMP: %s", name, err);
	if (dest_qmp && !(o.dest = qmp_connect(dest_qmp, 5000, &err)))
		vm_errx(EXIT_FAIL, "%s: the destination's QMP: %s", dest_qmp, err);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	o.progress = on_progress;
	o.ctx = &u;

	struct migrate_result res;
	int r = migrate_run(q, &o, &res, &err);
	end_line(&u);
	if (r < 0) {
		bool timeout = err && !strcmp(err, "timed out");
		/* say where the guest is: it runs on here unless the switch went too far */
		json_object *st = NULL, *sv;
		char *se = NULL;
		const char *state = NULL;
		if (qmp_execute(q, "query-status", NULL, 5000, &st, &se) == 0 && json_object_object_get_ex(st, "status", &sv))
			state = json_object_get_string(sv);
		if (state && !strcmp(state, "running"))
			vm_warnx("%s: migration to %s failed: %s; the VM runs on here", name, o.uri, err ? err : "?");
		else
			vm_warnx("%s: migration to %s failed: %s; the VM is %s here", name, o.uri, err ? err : "?",
				 state ? state : "in an unknown state");
		json_object_put(st);
		free(se);
		qmp_close(o.dest);
		qmp_close(q);
		vm_exit_error(timeout ? EXIT_TIMEOUT : EXIT_FAIL);
	}
	/* The destination has it: the source goes, and its lock with it. */
	char *qe = NULL;
	if (qmp_execute(q, "quit", NULL, 5000, NULL, &qe) < 0)
		vm_info("%s: quit: %s", name, qe);
	free(qe);
	int status = EXIT_OK;
	if (runtime_wait_unlocked(dir, 30000) != 0) {
		vm_warnx("%s: moved, but the source QEMU (pid %d) has not exited", name, (int)runtime_read_pid(dir));
		status = EXIT_FAIL;
	}
	if (json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "status", json_object_new_string("completed"));
		json_object_object_add(j, "uri", json_object_new_string(o.uri));
		json_object_object_add(j, "total-ms", json_object_new_int64(res.total_ms));
		json_object_object_add(j, "downtime-ms", json_object_new_int64(res.downtime_ms));
		json_object_object_add(j, "setup-ms", json_object_new_int64(res.setup_ms));
		json_object_object_add(j, "transferred", json_object_new_int64((int64_t)res.transferred));
		json_object_object_add(j, "mbps", json_object_new_double(res.mbps));
		json_object_object_add(j, "postcopy", json_object_new_boolean(res.postcopy));
		json_object_object_add(j, "disks", json_object_new_int(res.disks));
		if (o.dest)
			json_object_object_add(j, "destination-running", json_object_new_boolean(res.dest_running));
		print_json(stdout, j, CLI_JSON_AUTO);
		json_object_put(j);
	} else if (!vm_quiet) {
		char moved[32];
		mib(moved, sizeof moved, res.transferred);
		vm_warnx("%s: moved to %s in %.1f s (downtime %lld ms, %s at %.1f MB/s%s%s)", name, o.uri,
			 (double)res.total_ms / 1000, (long long)res.downtime_ms, moved, res.mbps / 8,
			 res.postcopy ? ", postcopy" : "", res.disks ? ", disks copied" : "");
	}
	qmp_close(o.dest);
	qmp_close(q);
	free(dir);
	free(name);
	free(err);
	bundle_close(&b);
	return status;
}
