/* vm-run: start a VM (UTM's UTMQemu / QEMULauncher for the command line).
 *
 * The mechanism is lib/launch.c: the lock (inherited by QEMU, so it lives
 * exactly as long as the VM), the sockets passed to QEMU as listening
 * descriptors, a private QMP monitor whose greeting says "QEMU is ready",
 * QEMU in its own session (a terminal's Ctrl-C reaches only vm-run, which
 * turns it into the stop sequence), qemu.log's last error line as the reason
 * of a failure. vm-run keeps the options, the terminal (raw mode, the
 * console relay) and the messages. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "accel.h"
#include "console.h"
#include "launch.h"
#include "qmp.h"
#include "runtime.h"
#include "suspend.h"
#include "tool.h"

enum { OPT_STOP_TIMEOUT = CLI_LONG_ONLY, OPT_RUNAS, OPT_NO_SANDBOX, OPT_ALLOW_PATH, OPT_DISPLAY, OPT_INCOMING, OPT_FRESH };

static const struct cli_option options[] = {
    CLI_VALUE('a', "accel", "ACCEL", "auto, kvm or tcg (default: the config, $VM_ACCEL, auto)"),
    CLI_FLAG('c', "console", "the first serial port on this terminal; Ctrl-] detaches"),
    CLI_VALUE(OPT_DISPLAY, "display", "D", "none, vnc, spice or vnc:PORT (127.0.0.1) for this run\n"
					   "instead of the config's display"),
    CLI_FLAG('d', "detach", "return once the VM answers on QMP; print QEMU's pid"),
    CLI_FLAG('p', "paused", "start with the CPUs stopped"),
    CLI_FLAG('s', "snapshot", "discard all disk writes when the VM stops; a saved state\n"
			      "(vm-stop --save) is resumed and kept"),
    CLI_FLAG(OPT_FRESH, "fresh", "boot, not resume: discard the saved state (kept with --snapshot)"),
    CLI_VALUE('t', "timeout", "SECONDS", "stop a foreground VM that runs longer (exit status 3;\n"
					 "0: no timeout, run until it stops)"),
    CLI_FLAG('x', "exit-device", "isa-debug-exit at port 0xf4: the guest sets the exit status"),
    CLI_VALUE(OPT_STOP_TIMEOUT, "stop-timeout", "SECONDS", "how long Ctrl-C waits for an ACPI power-off\n"
							   "(default 30); 0: no timeout, wait forever"),
    CLI_VALUE(OPT_RUNAS, "runas", "USER", "as root: the user QEMU runs as (default: $VM_RUNAS,\n"
					  "utmkit, nobody)"),
    CLI_FLAG(OPT_NO_SANDBOX, "no-sandbox", "no seccomp filter, and QEMU keeps the caller's user (warns)"),
    CLI_VALUE(OPT_ALLOW_PATH, "allow-path", "PATH", "the config may name PATH (a file or folder) outside\n"
						      "the bundle"),
    CLI_VALUE(OPT_INCOMING, "incoming", "URI", "wait for a migration (vm-migrate) on tcp:HOST:PORT or\n"
					      "unix:PATH"),
    CLI_FLAG('q', "quiet", "no messages but errors"),
    CLI_FLAG('v', "verbose", "say what is chosen and why; -vv: the QEMU command line too"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-run [options] BUNDLE\n",
    .about = "Start the VM in BUNDLE, in the foreground until it stops, or detached.\n",
    .options = options,
};

#define QUIT_GRACE_MS 5000

static struct {
	char *name;
	char *rtdir;
	struct runtime rt;
	struct vm_proc p;
	bool raw;
	struct termios saved_tty;
	int stop_timeout_ms; /* --stop-timeout; CLI_FOREVER: no deadline */
	struct console_relay con; /* --console */
} S = {.rt = {.lock_fd = -1}, .con = {.con = -1}, .stop_timeout_ms = 30000};

static void tty_restore(void)
{
	if (S.raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &S.saved_tty);
		S.raw = false;
	}
}

static void tty_raw(void)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &S.saved_tty) < 0)
		return;
	struct termios t = S.saved_tty;
	cfmakeraw(&t);
	static bool registered;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) {
		S.raw = true;
		if (!registered)
			atexit(tty_restore);
		registered = true;
	}
}

/* In raw mode a message needs a carriage return of its own. */
#define say(...)                                                                                   \
	do {                                                                                       \
		bool r_ = S.raw;                                                                   \
		tty_restore();                                                                     \
		vm_warnx(__VA_ARGS__);                                                             \
		if (r_)                                                                            \
			tty_raw();                                                                 \
	} while (0)

/* The VM is gone: remove its runtime files, drop the lock. */
static void finish(void)
{
	launch_end(&S.p);
	if (S.rtdir && S.rt.lock_fd >= 0)
		runtime_clean(S.rtdir);
	runtime_release(&S.rt);
	tty_restore();
}

_Noreturn static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	finish();
	vm_warnx("%s: %s", S.name, msg);
	free(msg);
	vm_exit_error(status);
}

/* The stop sequence's steps, in vm-run's words. */
static void on_stop_step(void *ctx, enum stop_event ev, const char *detail)
{
	const struct launch_sup *s = ctx;
	if (ev == STOP_EV_REQUEST && isatty(STDERR_FILENO) && !vm_quiet)
		say("%s: powering off the guest (%s again to quit at once)", S.name,
		    s->cause == SIGINT ? "Ctrl-C" : "the signal");
	else if (ev == STOP_EV_RUN_TIMEOUT)
		say("%s: --timeout: the VM ran too long; stopping it", S.name);
	else if (ev == STOP_EV_POWERDOWN_TIMEOUT)
		say("%s: the guest did not power off in %g s; %s", S.name, S.stop_timeout_ms / 1000.0,
		    detail ? "trying its guest agent" : "quitting");
	else if (ev == STOP_EV_AGENT_NONE)
		vm_info("%s: %s; quitting", S.name, detail);
	else if (ev == STOP_EV_AGENT_TIMEOUT)
		say("%s: the guest did not power off after guest-shutdown; quitting", S.name);
	else if (ev == STOP_EV_QUIT || ev == STOP_EV_TERM)
		vm_info("%s: quitting QEMU", S.name);
	else if (ev == STOP_EV_KILL)
		vm_info("%s: killing QEMU (pid %d)", S.name, (int)S.p.pid);
}

int main(int argc, char **argv)
{
	const char *accel_opt = NULL, *runas = NULL, *incoming = NULL;
	struct strv allow = {0};
	bool console = false, detach = false, fresh = false;
	struct argv_opts o = ARGV_OPTS_INIT;
	int timeout_ms = CLI_FOREVER, ch;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case 'a': accel_opt = optarg; break;
		case 'c': console = true; break;
		case 'd': detach = true; break;
		case 'p': o.paused = true; break;
		case 's': o.snapshot = true; break;
		case 'x': o.exit_device = true; break;
		case 't': timeout_ms = tool_seconds("--timeout", optarg); break;
		case OPT_STOP_TIMEOUT: S.stop_timeout_ms = tool_seconds("--stop-timeout", optarg); break;
		case OPT_RUNAS: runas = optarg; break;
		case OPT_NO_SANDBOX: o.no_sandbox = true; break;
		case OPT_ALLOW_PATH: strv_push(&allow, optarg); break;
		case OPT_DISPLAY: o.display = optarg; break;
		case OPT_INCOMING: incoming = optarg; break;
		case OPT_FRESH: fresh = true; break;
		}
	}
	if (argc - optind != 1)
		tool_usage_error(&cli);
	if (detach && console)
		vm_errx(EXIT_USAGE, "--console and --detach exclude each other");
	if (detach && timeout_ms != CLI_FOREVER)
		vm_errx(EXIT_USAGE, "--timeout applies to a foreground VM, not with --detach");
	struct display_spec ds;
	char *err = NULL;
	if (o.display && display_parse(o.display, &ds, &err) < 0)
		vm_errx(EXIT_USAGE, "%s", err);

	struct bundle b;
	bundle_open_or_die(&b, argv[optind]);
	b.allow = allow;
	S.name = bundle_display_name(b.path);
	struct vm_config eff;
	bundle_effective_config(&b, &eff);

	if (o.exit_device && !config_is_x86(&eff))
		vm_errx(EXIT_FAIL, "%s: --exit-device needs an x86 guest (isa-debug-exit); this one is %s",
			S.name, eff.arch);
	if (console && !launch_console_socket(&eff))
		vm_errx(EXIT_FAIL,
			"%s: --console needs the first serial port on a socket; serial.%s.mode is %s",
			S.name, eff.serials[0].id, eff.serials[0].mode);

	/* The sandbox (see vm-run(1), SECURITY). */
	struct launch_user user = {0};
	if (o.no_sandbox) {
		vm_warnx("%s: --no-sandbox: QEMU runs without its seccomp filter%s", S.name,
			 geteuid() == 0 ? ", as root" : "");
	} else {
		if (launch_sandbox_check(&eff, &err) < 0)
			vm_errx(EXIT_FAIL, "%s: %s", S.name, err);
		const char *env = getenv("VM_RUNAS");
		if (launch_choose_user(runas ? runas : env && *env ? env : NULL, &user, &err) < 0)
			vm_errx(runas ? EXIT_USAGE : EXIT_FAIL, "%s", err);
		if (user.drop)
			vm_info("%s: QEMU runs as %s (uid %u)", S.name, user.name, (unsigned)user.uid);
	}

	struct accel_choice ac;
	if (accel_choose(accel_opt, &eff, &ac, &err) < 0)
		vm_errx(accel_opt ? EXIT_USAGE : EXIT_FAIL, "%s", err);
	vm_info("%s: accelerator %s", S.name, ac.reason);
	if (!strcmp(ac.accel, "tcg") && eff.cpus > 1)
		vm_info("%s: TCG threads: %s", S.name,
			!strcmp(eff.tcg_thread, "auto")
			    ? "one per vCPU where the guest's memory model allows (QEMU's default)"
			    : eff.tcg_thread);

	/* The lock, before anything touches the runtime dir. */
	S.rtdir = tool_runtime_dir(&b);
	if (launch_lock(S.rtdir, &S.rt, &err) != 0)
		vm_errx(EXIT_FAIL, "%s: %s", S.name, err);

	/* Signals become events of the loop from here on (nothing half-started
	 * is left behind by a Ctrl-C); the children get the old mask back. */
	sigset_t mask, oldmask;
	sigemptyset(&mask);
	for (const int *sg = (const int[]){SIGINT, SIGTERM, SIGHUP, SIGCHLD, 0}; *sg; sg++)
		sigaddset(&mask, *sg);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	vm_proc_init(&S.p);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		die(EXIT_FAIL, "signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	/* A saved state (vm-stop --save): resumed, or discarded by --fresh. */
	bool resume = !fresh && suspend_exists(&b), paused = o.paused;
	if (fresh && !o.snapshot && suspend_discard(&b, &err) < 0)
		die(EXIT_FAIL, "%s", err);
	if (resume)
		o.paused = true; /* the CPUs run once the state is loaded (and consumed) */
	o.accel = ac.accel;
	o.qemu_dir = getenv("VM_QEMU_DIR") && *getenv("VM_QEMU_DIR") ? getenv("VM_QEMU_DIR") : NULL;
	struct launch_opts lo = {.name = S.name, .b = &b, .eff = &eff, .runtime_dir = S.rtdir,
				 .lock_fd = S.rt.lock_fd, .user = &user, .argv = o, .child_mask = &oldmask, .incoming = incoming,
				 .stdio_serial = !detach && eff.nserials && !strcmp(eff.serials[0].mode, "stdio"),
				 .resume = resume};
	if (launch_prepare(&S.p, &lo, &err) < 0)
		die(EXIT_FAIL, "%s", err);
	if (resume && suspend_check(&b, S.p.argv.v, &err) < 0)
		die(EXIT_FAIL, "%s", err);
	if (vm_verbose > 1) {
		struct buf cmd = {0};
		shell_quote_argv(&cmd, &S.p.argv);
		vm_info("%s: %s", S.name, cmd.s);
		buf_free(&cmd);
	}
	/* Connect to the console before QEMU runs: not a byte of output is lost. */
	char *conpath = path_join(S.rtdir, RT_CONSOLE);
	if (console && (S.con.con = unix_connect(conpath, &err)) < 0)
		die(EXIT_FAIL, "%s", err);
	free(conpath);
	if (launch_spawn(&S.p, &lo, &err) < 0)
		die(EXIT_FAIL, "%s", err);

	/* Wait for the private monitor's greeting: QEMU is up. */
	int sig = 0, rr = launch_wait_ready(&S.p, sfd, detach, &sig, &err);
	if (rr < 0)
		die(EXIT_FAIL, "%s", err);
	if (rr == 1) {
		finish();
		exit(128 + sig);
	}
	bool clock = false;
	if (resume && suspend_resume(S.p.q, &b, S.rtdir, S.name, o.snapshot, !paused, &clock, &err) < 0) {
		kill(S.p.pid, SIGKILL);
		waitpid(S.p.pid, NULL, 0);
		die(EXIT_FAIL, "%s", err);
	}
	if (resume)
		vm_info("%s: resumed from the saved state%s%s", S.name, o.snapshot ? " (kept)" : "",
			clock ? "; the guest's clock set through its agent" : "");

	char *uri = launch_display_uri(&lo);
	if (uri)
		vm_info("%s: display %s", S.name, uri);
	free(uri);
	int status = EXIT_OK;
	if (detach) {
		printf("%d\n", (int)S.p.pid);
		/* QEMU (and swtpm) run on; the lock goes with QEMU's copy. */
		runtime_release(&S.rt);
		goto out;
	}
	if (!vm_quiet && !console && isatty(STDERR_FILENO))
		vm_warnx("%s: running (pid %d), console log %s/%s; Ctrl-C powers it off", S.name,
			 (int)S.p.pid, S.rtdir, RT_CONSOLE_LOG);
	struct launch_sup sup = {.sigfd = sfd};
	if (console) {
		fcntl(S.con.con, F_SETFL, fcntl(S.con.con, F_GETFL) | O_NONBLOCK);
		tty_raw();
		console_relay_init(&S.con, S.con.con, S.raw, &sup.leave);
		sup.add_fds = console_relay_fds;
		sup.on_fds = console_relay_io;
		sup.ctx = &S.con;
		if (S.raw && !vm_quiet)
			say("%s: console attached; Ctrl-] detaches", S.name);
	}
	if (timeout_ms != CLI_FOREVER)
		sup.run_deadline = now_ms() + timeout_ms;
	S.p.stop = (struct stop_seq){.q = S.p.q, .pid = S.p.pid, .powerdown_ms = S.stop_timeout_ms,
				     .quit_ms = QUIT_GRACE_MS, .kill_ms = -1, .note = on_stop_step, .ctx = &sup,
				     .agent_dir = config_agent(&eff) ? S.rtdir : NULL, .name = S.name};
	launch_supervise(&S.p, &sup); /* until QEMU exits, or Ctrl-] on the console */
	if (sup.leave) {
		tty_restore();
		if (!vm_quiet)
			vm_warnx("%s: detached; the VM runs on (pid %d): vm-stop %s stops it", S.name,
				 (int)S.p.pid, b.path);
		runtime_release(&S.rt);
		goto out;
	}
	console_relay_drain(&S.con);
	tty_restore();
	char *why = NULL;
	if (sup.cause == LAUNCH_CAUSE_TIMEOUT)
		status = EXIT_TIMEOUT;
	else if (sup.cause > 0)
		status = 128 + sup.cause;
	else if ((status = launch_exit_status(&S.p, o.exit_device, &why)) < 0)
		status = EXIT_FAIL;
	finish();
	if (why)
		vm_warnx("%s: %s", S.name, why);
	free(why);
out:
	if (S.con.con >= 0)
		close(S.con.con);
	close(sfd);
	vm_proc_free(&S.p);
	launch_user_free(&user);
	config_free(&eff);
	accel_choice_free(&ac);
	bundle_close(&b);
	free(S.rtdir);
	free(S.name);
	return status;
}
