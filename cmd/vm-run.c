/* vm-run: start a VM (UTM's UTMQemu / QEMULauncher for the command line).
 *
 * The argv comes from argv_build(). vm-run adds the parts only a launcher
 * has: the lock (inherited by QEMU, so it lives exactly as long as the VM),
 * the QMP and console sockets, created here and passed to QEMU as listening
 * descriptors (so a client can connect before QEMU is even up), and a
 * private QMP monitor on a socketpair: its greeting says "QEMU is ready"
 * with no polling, and it lets vm-run stop the VM without competing for the
 * public socket. QEMU runs in its own session so a terminal's Ctrl-C reaches
 * only vm-run, which turns it into an ACPI power-down. QEMU's stdout and
 * stderr go to RUNTIME/qemu.log; its last error line is what a failure
 * reports. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "argv.h"
#include "bundle.h"
#include "firmware.h"
#include "qmp.h"
#include "runtime.h"
#include "tool.h"

static const char usage[] =
    "usage: vm-run [options] BUNDLE\n"
    "Start the VM in BUNDLE, in the foreground until it stops, or detached.\n"
    "  -a, --accel ACCEL         auto, kvm or tcg (default: the config, $VM_ACCEL, auto)\n"
    "  -c, --console             the first serial port on this terminal; Ctrl-] detaches\n"
    "  -d, --detach              return once the VM answers on QMP; print QEMU's pid\n"
    "  -p, --paused              start with the CPUs stopped\n"
    "  -s, --snapshot            discard all disk writes when the VM stops\n"
    "  -t, --timeout SECONDS     stop a foreground VM that runs longer (exit status 3)\n"
    "  -x, --exit-device         isa-debug-exit at port 0xf4: the guest sets the exit status\n"
    "      --stop-timeout SECONDS  how long Ctrl-C waits for an ACPI power-off (default 30)\n"
    "      --runas USER          as root: the user QEMU runs as (default: $VM_RUNAS, utmkit, nobody)\n"
    "      --no-sandbox          no seccomp filter, and QEMU keeps the caller's user (warns)\n"
    "      --allow-path PATH     the config may name PATH (a file or folder) outside the bundle\n"
    "  -q, --quiet               no messages but errors\n"
    "  -v, --verbose             say what is chosen and why; -vv: the QEMU command line too\n"
    "  -h, --help                this help\n"
    "  -V, --version             print the version\n";

#define ESCAPE_KEY 0x1d /* Ctrl-] */
#define START_TIMEOUT_MS 60000
#define QUIT_GRACE_MS 5000
#define QMP_CMD_MS 2000

static struct {
	char *name;
	char *rtdir;
	struct runtime rt;
	pid_t qemu, swtpm;
	bool drop; /* QEMU runs as uid/gid, not as the (root) caller */
	uid_t uid;
	gid_t gid;
	int *fds; /* files opened for QEMU (argv_opts.open_file) */
	size_t nfds;
	bool raw;
	struct termios saved_tty;
	sigset_t oldmask;
} S = {.rt = {.lock_fd = -1}};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

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

static void stop_swtpm(void)
{
	if (S.swtpm <= 0)
		return;
	if (waitpid(S.swtpm, NULL, WNOHANG) == 0) {
		kill(S.swtpm, SIGTERM);
		for (int i = 0; i < 100 && waitpid(S.swtpm, NULL, WNOHANG) == 0; i++)
			usleep(10000);
		if (kill(S.swtpm, 0) == 0) {
			kill(S.swtpm, SIGKILL);
			waitpid(S.swtpm, NULL, 0);
		}
	}
	S.swtpm = 0;
}

/* The VM is gone: remove its runtime files, drop the lock. */
static void finish(void)
{
	stop_swtpm();
	if (S.rtdir && S.rt.lock_fd >= 0)
		runtime_clean(S.rtdir);
	runtime_release(&S.rt);
	tty_restore();
}

_Noreturn static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void die(int status, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	finish();
	vm_warnx("%s: %s", S.name, msg ? msg : fmt);
	free(msg);
	vm_exit_error(status);
}

/* A listening unix socket at dir/name, private to the user. */
static int listen_at(const char *dir, const char *name)
{
	char *path = path_join(dir, name);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		die(EXIT_FAIL, "%s: socket path too long (%zu bytes; the limit is %zu)", path,
		    strlen(path), sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(EXIT_FAIL, "socket: %s", strerror(errno));
	mode_t old = umask(0177); /* srw------- */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(fd, 64) < 0)
		die(EXIT_FAIL, "%s: %s", path, strerror(errno));
	free(path);
	return fd;
}

static int connect_to(const char *dir, const char *name)
{
	char *path = path_join(dir, name);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path) + 1); /* length checked by listen_at */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die(EXIT_FAIL, "%s: %s", path, strerror(errno));
	free(path);
	return fd;
}

static void keep_open(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

/* In a child before exec: nothing the caller of vm-run left open leaks
 * into QEMU or swtpm (a script's $(...) pipe would never see its end). */
static void close_inherited(void)
{
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0)
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static const char *qemu_package(const char *qarch)
{
	if (!strcmp(qarch, "x86_64") || !strcmp(qarch, "i386"))
		return "qemu-system-x86";
	if (!strcmp(qarch, "aarch64") || !strcmp(qarch, "arm"))
		return "qemu-system-arm";
	if (has_prefix(qarch, "ppc"))
		return "qemu-system-ppc";
	return "qemu-system-misc";
}

/* QEMU's reason for failing: the last line of its log that is not a
 * warning (or the last line at all), from offset on. */
static char *qemu_error(size_t offset)
{
	char *p = path_join(S.rtdir, RT_QEMU_LOG);
	size_t len = 0;
	char *log = read_file(p, &len);
	free(p);
	if (!log)
		return NULL;
	char *best = NULL, *last = NULL;
	char *s = offset <= len ? log + offset : log + len;
	for (char *line = strtok(s, "\r\n"); line; line = strtok(NULL, "\r\n")) {
		while (*line == ' ')
			line++;
		if (!*line)
			continue;
		last = line;
		if (!strstr(line, "warning:"))
			best = line;
	}
	char *r = best ? xstrdup(best) : last ? xstrdup(last) : NULL;
	free(log);
	return r;
}

static size_t log_size(void)
{
	char *p = path_join(S.rtdir, RT_QEMU_LOG);
	struct stat st;
	size_t n = stat(p, &st) == 0 ? (size_t)st.st_size : 0;
	free(p);
	return n;
}

/* swtpm with its control socket passed as a listening descriptor; it ends
 * by itself when QEMU closes the connection (--terminate). State lives in the
 * bundle, as in UTM: Data/tpmdata. */
/* name on $PATH (an executable regular file), malloc'd, or NULL. */
static char *find_on_path(const char *name)
{
	const char *path = getenv("PATH");
	char *copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
	char *hit = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir && !hit; dir = strtok_r(NULL, ":", &save)) {
		char *p = path_join(*dir ? dir : ".", name);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0)
			hit = p;
		else
			free(p);
	}
	free(copy);
	return hit;
}

/* As root, QEMU does not keep root: it runs as --runas, $VM_RUNAS, the
 * system user "utmkit" (the Debian package makes it) or else "nobody". */
static void choose_user(const char *runas)
{
	if (geteuid() != 0)
		return;
	const char *env = getenv("VM_RUNAS");
	const char *name = runas ? runas : env && *env ? env : NULL;
	struct passwd *pw = name ? getpwnam(name) : getpwnam("utmkit");
	if (!pw && !name)
		pw = getpwnam(name = "nobody");
	if (!pw)
		vm_errx(runas ? EXIT_USAGE : EXIT_FAIL, "%s: no such user (--runas, $VM_RUNAS)", name ? name : "utmkit");
	if (pw->pw_uid == 0)
		return; /* asked for root: so be it */
	S.drop = true;
	S.uid = pw->pw_uid;
	S.gid = pw->pw_gid;
	vm_info("%s: QEMU runs as %s (uid %u)", S.name, pw->pw_name, (unsigned)pw->pw_uid);
}

/* In the child, before exec: the user QEMU runs as, and no other groups. */
static void drop_privileges(void)
{
	if (!S.drop)
		return;
	if (setgroups(1, &S.gid) < 0 || setgid(S.gid) < 0 || setuid(S.uid) < 0 || setuid(0) == 0)
		_exit(126); /* never run QEMU as root by accident */
}

/* argv_opts.open_file: vm-run opens what QEMU would, and QEMU inherits it. */
static int open_for_qemu(void *ctx, const char *path, int flags, char **err)
{
	(void)ctx;
	int fd = open(path, flags | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	S.fds = xrealloc(S.fds, (S.nfds + 1) * sizeof *S.fds);
	S.fds[S.nfds++] = fd;
	return fd;
}

static void start_swtpm(const struct bundle *b)
{
	int lfd = listen_at(S.rtdir, RT_SWTPM);
	if (S.drop) {
		/* QEMU connects to it as its own user */
		char *p = path_join(S.rtdir, RT_SWTPM);
		if (chown(p, S.uid, S.gid) < 0)
			die(EXIT_FAIL, "%s: %s", p, strerror(errno));
		free(p);
	}
	/* swtpm gets its files as descriptors, like QEMU: as QEMU's user it
	 * may not reach their folders. Its state is one file it rewrites in
	 * place and opens by name, so it starts in Data/ (its cwd is reachable
	 * whatever the folders above it allow) and the file is its user's.
	 * /proc/self/fd would not do: swtpm makes itself undumpable. */
	char *datad = path_join(b->path, "Data");
	char *statef = path_join(datad, "tpmdata");
	int datafd = open(datad, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (datafd < 0)
		die(EXIT_FAIL, "%s: %s", datad, strerror(errno));
	free(datad);
	char *logf = path_join(S.rtdir, RT_SWTPM_LOG);
	char *pidf = path_join(S.rtdir, RT_SWTPM_PID); /* ours: swtpm's --pid needs /proc */
	int statefd = open(statef, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	int logfd = open(logf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	int pidfd = open(pidf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	const char *bad = statefd < 0 ? statef : logfd < 0 ? logf : pidfd < 0 ? pidf : NULL;
	if (bad)
		die(EXIT_FAIL, "%s: %s", bad, strerror(errno));
	if (S.drop && fchown(statefd, S.uid, S.gid) < 0)
		die(EXIT_FAIL, "%s: %s", statef, strerror(errno));
	if (S.drop && fchown(logfd, S.uid, S.gid) < 0)
		die(EXIT_FAIL, "%s: %s", logf, strerror(errno));
	char *state = xstrdup("backend-uri=file://tpmdata");
	char *ctrl = xasprintf("type=unixio,fd=%d", lfd);
	char *logarg = xasprintf("fd=%d,level=1", logfd);
	char *const av[] = {"swtpm", "socket", "--tpm2", "--terminate", "--tpmstate", state,
			    "--ctrl", ctrl, "--log", logarg, NULL};
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		die(EXIT_FAIL, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die(EXIT_FAIL, "fork: %s", strerror(errno));
	if (pid == 0) {
		setsid();
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 1);
			dup2(dn, 2);
		}
		close_inherited();
		keep_open(lfd);
		keep_open(logfd);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &S.oldmask, NULL);
		if (fchdir(datafd) < 0)
			_exit(126);
		drop_privileges();
		execvp(av[0], av);
		int e = errno;
		ssize_t unused = write(ep[1], &e, sizeof e);
		(void)unused;
		_exit(127);
	}
	close(ep[1]);
	close(lfd);
	close(statefd);
	close(datafd);
	close(logfd);
	int e = 0;
	ssize_t n = read(ep[0], &e, sizeof e);
	close(ep[0]);
	if (n == (ssize_t)sizeof e) {
		waitpid(pid, NULL, 0);
		die(EXIT_FAIL, "swtpm: %s%s", strerror(e),
		    e == ENOENT ? " (the config has tpm = true: install swtpm)" : "");
	}
	S.swtpm = pid;
	dprintf(pidfd, "%d\n", (int)pid);
	close(pidfd);
	vm_info("%s: swtpm started (pid %d)", S.name, (int)pid);
	free(state);
	free(statef);
	free(ctrl);
	free(logf);
	free(logarg);
	free(pidf);
}

static bool first_serial_is_socket(const struct vm_config *c)
{
	if (c->nserials == 0)
		return true;
	return !strcmp(c->serials[0].mode, "socket");
}

/* Exit statuses (documented in vm-run(1)). */
enum { CAUSE_NONE = 0, CAUSE_TIMEOUT = -1 };

struct sup {
	struct qmp *q; /* private monitor */
	int sfd;       /* signalfd */
	int con;       /* console socket, -1 when not proxied */
	bool in_open;  /* still reading stdin */
	int cause;     /* CAUSE_NONE, CAUSE_TIMEOUT or the signal that asked to stop */
	enum { ST_RUN, ST_POWERDOWN, ST_QUIT, ST_KILL } stage;
	double stage_deadline; /* 0: none */
	double run_deadline;   /* --timeout; 0: none */
	int stop_timeout_ms;
	bool detach_now;
	int wstatus;
	bool exited;
};

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pf = {.fd = fd, .events = POLLOUT};
				poll(&pf, 1, 1000);
				continue;
			}
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void do_quit(struct sup *s)
{
	char *err = NULL;
	if (s->q && !qmp_is_closed(s->q) && qmp_send(s->q, "quit", NULL, &err) >= 0)
		return;
	free(err);
	kill(S.qemu, SIGTERM); /* QEMU's SIGTERM is a clean quit */
}

static void escalate(struct sup *s)
{
	double now = now_ms();
	switch (s->stage) {
	case ST_RUN:
	case ST_POWERDOWN:
		vm_info("%s: quitting QEMU", S.name);
		do_quit(s);
		s->stage = ST_QUIT;
		s->stage_deadline = now + QUIT_GRACE_MS;
		break;
	case ST_QUIT:
	case ST_KILL:
		vm_info("%s: killing QEMU (pid %d)", S.name, (int)S.qemu);
		kill(S.qemu, SIGKILL);
		s->stage = ST_KILL;
		s->stage_deadline = 0;
		break;
	}
}

/* A polite stop: the ACPI power button, unless the CPUs are not running
 * (a paused guest cannot answer it): then quit at once. */
static void powerdown(struct sup *s)
{
	char *err = NULL;
	struct json_object *ret = NULL, *v;
	bool running = false;
	if (s->q && qmp_execute(s->q, "query-status", NULL, QMP_CMD_MS, &ret, &err) == 0) {
		running = json_object_object_get_ex(ret, "running", &v) && json_object_get_boolean(v);
		json_object_put(ret);
	}
	free(err);
	err = NULL;
	if (!running) {
		escalate(s);
		return;
	}
	if (qmp_execute(s->q, "system_powerdown", NULL, QMP_CMD_MS, NULL, &err) < 0) {
		free(err);
		escalate(s);
		return;
	}
	s->stage = ST_POWERDOWN;
	s->stage_deadline = now_ms() + s->stop_timeout_ms;
}

static void on_signal(struct sup *s, int sig)
{
	if (sig == SIGCHLD) {
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == S.qemu) {
				s->wstatus = st;
				s->exited = true;
			} else if (p == S.swtpm) {
				S.swtpm = 0;
			}
		}
		return;
	}
	if (s->cause == CAUSE_NONE)
		s->cause = sig;
	if (s->stage == ST_RUN) {
		if (isatty(STDERR_FILENO) && !vm_quiet)
			say("%s: powering off the guest (%s again to quit at once)", S.name,
			    sig == SIGINT ? "Ctrl-C" : "the signal");
		powerdown(s);
	} else {
		escalate(s);
	}
}

static void drain_console(struct sup *s)
{
	if (s->con < 0)
		return;
	char buf[16384];
	for (;;) {
		ssize_t n = read(s->con, buf, sizeof buf);
		if (n > 0) {
			write_all(STDOUT_FILENO, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
}

static void supervise(struct sup *s)
{
	char buf[16384];
	while (!s->exited && !s->detach_now) {
		struct pollfd pf[4];
		int n = 0, i_sig, i_q = -1, i_con = -1, i_in = -1;
		pf[n] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
		i_sig = n++;
		if (s->q && !qmp_is_closed(s->q)) {
			pf[n] = (struct pollfd){.fd = qmp_fd(s->q), .events = POLLIN};
			i_q = n++;
		}
		if (s->con >= 0) {
			pf[n] = (struct pollfd){.fd = s->con, .events = POLLIN};
			i_con = n++;
			if (s->in_open) {
				pf[n] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
				i_in = n++;
			}
		}
		double now = now_ms(), next = 0;
		if (s->run_deadline && s->cause == CAUSE_NONE)
			next = s->run_deadline;
		if (s->stage_deadline && (!next || s->stage_deadline < next))
			next = s->stage_deadline;
		int timeout = next ? (next <= now ? 0 : (int)(next - now) + 1) : -1;
		int r = poll(pf, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		now = now_ms();
		if (s->run_deadline && s->cause == CAUSE_NONE && now >= s->run_deadline) {
			say("%s: --timeout: the VM ran too long; stopping it", S.name);
			s->cause = CAUSE_TIMEOUT;
			s->stage = ST_POWERDOWN; /* escalate straight to quit */
			escalate(s);
		}
		if (s->stage_deadline && now >= s->stage_deadline) {
			if (s->stage == ST_POWERDOWN)
				say("%s: the guest did not power off in %d s; quitting", S.name,
				    s->stop_timeout_ms / 1000);
			escalate(s);
		}
		if (r <= 0)
			continue;
		if (pf[i_sig].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si)
				on_signal(s, (int)si.ssi_signo);
		}
		if (i_q >= 0 && pf[i_q].revents) {
			char *err = NULL;
			if (qmp_poll(s->q, 0, &err) < 0)
				free(err); /* QEMU is going away: SIGCHLD follows */
			struct json_object *ev;
			while (qmp_next_event(s->q, 0, &ev, NULL) == 1)
				json_object_put(ev);
		}
		if (i_con >= 0 && pf[i_con].revents) {
			ssize_t k = read(s->con, buf, sizeof buf);
			if (k > 0) {
				write_all(STDOUT_FILENO, buf, (size_t)k);
			} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(s->con);
				s->con = -1;
			}
		}
		if (i_in >= 0 && s->con >= 0 && pf[i_in].revents) {
			ssize_t k = read(STDIN_FILENO, buf, sizeof buf);
			if (k > 0) {
				size_t len = (size_t)k;
				if (S.raw) {
					char *esc = memchr(buf, ESCAPE_KEY, len);
					if (esc) {
						len = (size_t)(esc - buf);
						s->detach_now = true;
					}
				}
				write_all(s->con, buf, len);
			} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
				/* End of input: keep showing the console (no half-close: QEMU
				 * would take it for a disconnect). */
				s->in_open = false;
			}
		}
	}
}

int main(int argc, char **argv)
{
	enum { OPT_STOP_TIMEOUT = 256, OPT_RUNAS, OPT_NO_SANDBOX, OPT_ALLOW_PATH };
	static const struct option longopts[] = {
	    {"accel", required_argument, NULL, 'a'},
	    {"console", no_argument, NULL, 'c'},
	    {"detach", no_argument, NULL, 'd'},
	    {"paused", no_argument, NULL, 'p'},
	    {"snapshot", no_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, 't'},
	    {"exit-device", no_argument, NULL, 'x'},
	    {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
	    {"runas", required_argument, NULL, OPT_RUNAS},
	    {"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
	    {"allow-path", required_argument, NULL, OPT_ALLOW_PATH},
	    CLI_COMMON_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	const char *accel_opt = NULL, *runas = NULL;
	struct strv allow = {0};
	bool console = false, detach = false;
	struct argv_opts o = ARGV_OPTS_INIT;
	long long timeout_s = 0, stop_timeout_s = 30;
	const char *e = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "a:cdpst:x" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		switch (ch) {
		case 'a': accel_opt = optarg; break;
		case 'c': console = true; break;
		case 'd': detach = true; break;
		case 'p': o.paused = true; break;
		case 's': o.snapshot = true; break;
		case 'x': o.exit_device = true; break;
		case 't':
			if (parse_int(optarg, 1, 100000000, &timeout_s, &e) < 0)
				vm_errx(EXIT_USAGE, "--timeout %s: %s (seconds, at least 1)", optarg, e);
			break;
		case OPT_RUNAS: runas = optarg; break;
		case OPT_NO_SANDBOX: o.no_sandbox = true; break;
		case OPT_ALLOW_PATH: strv_push(&allow, optarg); break;
		case OPT_STOP_TIMEOUT:
			if (parse_int(optarg, 0, 100000000, &stop_timeout_s, &e) < 0)
				vm_errx(EXIT_USAGE, "--stop-timeout %s: %s (seconds)", optarg, e);
			break;
		default: cli_common(ch, usage);
		}
	}
	if (argc - optind != 1)
		usage_exit(usage, EXIT_USAGE);
	if (detach && console)
		vm_errx(EXIT_USAGE, "--console and --detach exclude each other");
	if (detach && timeout_s)
		vm_errx(EXIT_USAGE, "--timeout applies to a foreground VM, not with --detach");

	struct bundle b;
	bundle_open_or_die(&b, argv[optind]);
	b.allow = allow;
	S.name = bundle_display_name(b.path);
	struct vm_config eff;
	bundle_effective_config(&b, &eff);

	if (o.exit_device && !config_is_x86(&eff))
		vm_errx(EXIT_FAIL, "%s: --exit-device needs an x86 guest (isa-debug-exit); this one is %s",
			S.name, eff.arch);
	bool stdio_serial = !detach && eff.nserials && !strcmp(eff.serials[0].mode, "stdio");
	if (console && !first_serial_is_socket(&eff))
		vm_errx(EXIT_FAIL,
			"%s: --console needs the first serial port on a socket; serial.%s.mode is %s",
			S.name, eff.serials[0].id, eff.serials[0].mode);

	/* The sandbox (see vm-run(1), SECURITY). */
	if (o.no_sandbox) {
		vm_warnx("%s: --no-sandbox: QEMU runs without its seccomp filter%s", S.name,
			 geteuid() == 0 ? ", as root" : "");
	} else {
		for (size_t i = 0; i < eff.nnets; i++)
			if (!strcmp(eff.nets[i].mode, "bridge"))
				vm_errx(EXIT_FAIL,
					"%s: net.%s.mode is bridge: QEMU would spawn qemu-bridge-helper, which "
					"the sandbox forbids; use a tap device, or --no-sandbox",
					S.name, eff.nets[i].id);
		choose_user(runas);
	}

	struct accel_choice ac;
	char *err = NULL;
	if (accel_choose(accel_opt, &eff, &ac, &err) < 0)
		vm_errx(accel_opt ? EXIT_USAGE : EXIT_FAIL, "%s", err);
	vm_info("%s: accelerator %s", S.name, ac.reason);
	if (!strcmp(ac.accel, "tcg") && eff.cpus > 1)
		vm_info("%s: TCG threads: %s", S.name,
			!strcmp(eff.tcg_thread, "auto")
			    ? "one per vCPU where the guest's memory model allows (QEMU's default)"
			    : eff.tcg_thread);

	/* The lock, before anything touches the runtime dir. */
	S.rtdir = bundle_runtime_path(&b, NULL);
	pid_t holder = 0;
	int lr = runtime_lock(S.rtdir, &S.rt, &holder, &err);
	if (lr < 0)
		vm_errx(EXIT_FAIL, "%s: %s", S.name, err);
	if (lr == 1) {
		if (holder)
			vm_errx(EXIT_FAIL, "%s: already running (pid %d)", S.name, (int)holder);
		vm_errx(EXIT_FAIL, "%s: already running or in use (%s/%s is locked)", S.name, S.rtdir,
			RT_LOCK);
	}

	/* Under the lock: no other vm-run makes it at the same time. */
	int er = firmware_ensure_efi_vars(&b, &err);
	if (er < 0)
		vm_errx(EXIT_FAIL, "%s: %s", S.name, err);
	if (er > 0)
		vm_info("%s: made a fresh UEFI variable store (efi_vars)", S.name);

	/* Signals become events of the loop from here on (nothing half-started
	 * is left behind by a Ctrl-C); the children get the old mask back. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &S.oldmask);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		die(EXIT_FAIL, "signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	char *logpath = path_join(S.rtdir, RT_QEMU_LOG);
	int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		die(EXIT_FAIL, "%s: %s", logpath, strerror(errno));
	free(logpath);

	int rtfd = -1;
	if (S.drop) {
		/* QEMU's own sockets (display, serial ports) are made in the runtime
		 * dir by QEMU's user; it stays 0700, and vm-run's are root's 0600. */
		if (chown(S.rtdir, S.uid, S.gid) < 0)
			die(EXIT_FAIL, "%s: %s", S.rtdir, strerror(errno));
		rtfd = open(S.rtdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rtfd < 0)
			die(EXIT_FAIL, "%s: %s", S.rtdir, strerror(errno));
		o.runtime_dirfd = rtfd;
		o.open_file = open_for_qemu;
	}
	int qmp_lfd = listen_at(S.rtdir, RT_QMP);
	int session_lfd = listen_at(S.rtdir, RT_QMP_SESSION);
	int con_lfd = first_serial_is_socket(&eff) ? listen_at(S.rtdir, RT_CONSOLE) : -1;
	int priv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, priv) < 0)
		die(EXIT_FAIL, "socketpair: %s", strerror(errno));
	if (eff.tpm)
		start_swtpm(&b);

	o.runtime_dir = S.rtdir;
	o.accel = ac.accel;
	const char *qdir = getenv("VM_QEMU_DIR");
	o.qemu_dir = qdir && *qdir ? qdir : NULL;
	o.qmp_fd = qmp_lfd;
	o.qmp_session_fd = session_lfd;
	o.console_fd = con_lfd;
	struct strv av = {0};
	if (argv_build(&b, &o, &av, &err) < 0)
		die(EXIT_FAIL, "%s", err);
	strv_push(&av, "-chardev");
	strv_pushf(&av, "socket,id=vmrun,fd=%d", priv[1]);
	strv_push(&av, "-mon");
	strv_push(&av, "chardev=vmrun,mode=control");
	if (vm_verbose > 1) {
		struct buf cmd = {0};
		for (size_t i = 0; i < av.n; i++) {
			if (i)
				buf_puts(&cmd, " ");
			shell_quote(&cmd, av.v[i]);
		}
		vm_info("%s: %s", S.name, cmd.s);
		buf_free(&cmd);
	}
	runtime_write_file(S.rtdir, RT_ACCEL, ac.accel);


	/* Find QEMU as the caller, on the caller's PATH: QEMU's user may not
	 * search root's folders, and a missing binary must say "not found". */
	char *qemu = !strchr(av.v[0], '/')			      ? find_on_path(av.v[0])
		     : access(av.v[0], F_OK) == 0 || errno != ENOENT ? xstrdup(av.v[0])
								      : NULL;
	if (!qemu)
		die(EXIT_FAIL, "%s: not found (install %s, or set VM_QEMU_DIR)", av.v[0],
		    qemu_package(config_qemu_arch(eff.arch)));
	free(av.v[0]);
	av.v[0] = qemu;

	/* Connect to the console before QEMU runs: not a byte of output is lost. */
	int con = console ? connect_to(S.rtdir, RT_CONSOLE) : -1;

	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		die(EXIT_FAIL, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die(EXIT_FAIL, "fork: %s", strerror(errno));
	if (pid == 0) {
		setsid();
		/* A first serial port on "stdio" gets this terminal in the
		 * foreground; otherwise QEMU reads nothing and writes to its log. */
		if (!stdio_serial) {
			int dn = open("/dev/null", O_RDONLY);
			if (dn >= 0)
				dup2(dn, 0);
			dup2(logfd, 1);
		}
		dup2(logfd, 2);
		umask(077); /* what QEMU creates (display socket, console log) is private */
		close_inherited();
		keep_open(S.rt.lock_fd);
		keep_open(qmp_lfd);
		keep_open(session_lfd);
		if (con_lfd >= 0)
			keep_open(con_lfd);
		keep_open(priv[1]);
		if (rtfd >= 0)
			keep_open(rtfd);
		for (size_t i = 0; i < S.nfds; i++)
			keep_open(S.fds[i]);
		drop_privileges();
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &S.oldmask, NULL);
		execv(av.v[0], av.v);
		int en = errno;
		ssize_t unused = write(ep[1], &en, sizeof en);
		(void)unused;
		_exit(127);
	}
	S.qemu = pid;
	close(ep[1]);
	close(priv[1]);
	if (rtfd >= 0)
		close(rtfd);
	for (size_t i = 0; i < S.nfds; i++)
		close(S.fds[i]);
	free(S.fds);
	S.fds = NULL;
	S.nfds = 0;
	close(logfd);
	close(qmp_lfd);
	close(session_lfd);
	if (con_lfd >= 0)
		close(con_lfd);
	int en = 0;
	ssize_t rn;
	while ((rn = read(ep[0], &en, sizeof en)) < 0 && errno == EINTR)
		;
	close(ep[0]);
	if (rn == (ssize_t)sizeof en) {
		waitpid(pid, NULL, 0);
		if (en == ENOENT)
			die(EXIT_FAIL, "%s: not found (install %s, or set VM_QEMU_DIR)", av.v[0],
			    qemu_package(config_qemu_arch(eff.arch)));
		die(EXIT_FAIL, "%s: %s", av.v[0], strerror(en));
	}
	char *pidtext = xasprintf("%d\n", (int)pid);
	runtime_write_file(S.rtdir, RT_PID, pidtext);
	free(pidtext);

	/* Wait for the private monitor's greeting: QEMU is up. */
	struct sup s = {.sfd = sfd, .con = con, .in_open = true, .stop_timeout_ms = (int)stop_timeout_s * 1000};
	double start_deadline = now_ms() + START_TIMEOUT_MS;
	bool ready = false;
	while (!ready) {
		struct pollfd pf[2] = {{.fd = priv[0], .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		int left = detach ? (int)(start_deadline - now_ms()) : -1;
		if (detach && left <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			die(EXIT_FAIL, "QEMU did not answer on QMP within %d s", START_TIMEOUT_MS / 1000);
		}
		int r = poll(pf, 2, left);
		if (r < 0 && errno != EINTR)
			die(EXIT_FAIL, "poll: %s", strerror(errno));
		if (r > 0 && pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGCHLD)
					continue; /* the EOF on the monitor tells */
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
				finish();
				exit(128 + sig);
			}
		}
		if (r > 0 && pf[0].revents)
			ready = true;
	}
	/* A loaded host can take seconds to finish the handshake: allow what is
	 * left of the start timeout, not one command's worth. */
	int open_ms = (int)(start_deadline - now_ms());
	s.q = qmp_open_fd(priv[0], open_ms > QMP_CMD_MS ? open_ms : QMP_CMD_MS, &err);
	if (!s.q) {
		int st = 0;
		/* A QEMU that failed closes the monitor as it exits: give it a
		 * moment; one alive but mute is killed, not waited for. */
		pid_t w = 0;
		for (int i = 0; i < 200 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++)
			usleep(10000);
		if (w == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			die(EXIT_FAIL, "QEMU did not complete the QMP handshake: %s", err);
		}
		char *why = qemu_error(0);
		if (why)
			die(EXIT_FAIL, "%s", why);
		if (WIFSIGNALED(st))
			die(EXIT_FAIL, "QEMU was killed by signal %d while starting", WTERMSIG(st));
		die(EXIT_FAIL, "QEMU exited with status %d while starting (%s)", WEXITSTATUS(st), err);
	}
	size_t log_at_ready = log_size();

	int status = EXIT_OK;
	if (detach) {
		qmp_close(s.q);
		printf("%d\n", (int)pid);
		/* QEMU (and swtpm) run on; the lock goes with QEMU's copy. */
		runtime_release(&S.rt);
		goto out;
	}

	if (!vm_quiet && !console && isatty(STDERR_FILENO))
		vm_warnx("%s: running (pid %d), console log %s/%s; Ctrl-C powers it off", S.name,
			 (int)pid, S.rtdir, RT_CONSOLE_LOG);
	if (console) {
		set_nonblock(s.con);
		tty_raw();
		if (S.raw && !vm_quiet)
			say("%s: console attached; Ctrl-] detaches", S.name);
	}
	if (timeout_s)
		s.run_deadline = now_ms() + (double)timeout_s * 1000;

	supervise(&s);

	if (s.detach_now) {
		tty_restore();
		qmp_close(s.q);
		if (!vm_quiet)
			vm_warnx("%s: detached; the VM runs on (pid %d): vm-stop %s stops it", S.name,
				 (int)pid, b.path);
		runtime_release(&S.rt);
		goto out;
	}
	drain_console(&s);
	if (s.con >= 0)
		close(s.con);
	qmp_close(s.q);
	tty_restore();
	int st = s.wstatus;
	char *why = NULL;
	if (s.cause == CAUSE_TIMEOUT) {
		status = EXIT_TIMEOUT;
	} else if (s.cause > 0) {
		status = 128 + s.cause;
	} else if (WIFSIGNALED(st)) {
		why = xasprintf("QEMU was killed by signal %d", WTERMSIG(st));
		status = EXIT_FAIL;
	} else {
		int code = WEXITSTATUS(st);
		why = code ? qemu_error(log_at_ready) : NULL;
		if (o.exit_device && (code & 1) && (code > 1 || !why)) {
			/* isa-debug-exit: QEMU exits (N << 1) | 1 */
			status = code >> 1;
			free(why);
			why = NULL;
		} else if (code != 0) {
			if (!why)
				why = qemu_error(0);
			if (!why)
				why = xasprintf("QEMU exited with status %d", code);
			status = EXIT_FAIL;
		}
	}
	finish();
	if (why)
		vm_warnx("%s: %s", S.name, why);
	free(why);
out:
	close(sfd);
	strv_free(&av);
	config_free(&eff);
	accel_choice_free(&ac);
	bundle_close(&b);
	free(S.rtdir);
	free(S.name);
	if (fflush(stdout) != 0 && status == EXIT_OK)
		status = EXIT_FAIL; /* the pid could not be written */
	return status;
}
