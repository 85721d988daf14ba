/* Starting and stopping QEMU (launch.h). */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "firmware.h"
#include "migrate.h"
#include "qmp.h"
#include "runtime.h"

/* ---- the stop sequence ---- */

static void note(struct stop_seq *s, enum stop_event ev, const char *detail)
{
	if (s->note)
		s->note(s->ctx, ev, detail);
}

static void set_stage(struct stop_seq *s, enum stop_stage st, int ms)
{
	s->stage = st;
	s->deadline = ms >= 0 ? now_ms() + ms : 0;
}

static void quit(struct stop_seq *s)
{
	char *err = NULL;
	set_stage(s, STOP_QUIT, s->quit_ms);
	if (s->q && !qmp_is_closed(s->q)) {
		note(s, STOP_EV_QUIT, NULL);
		if (qmp_send(s->q, "quit", NULL, &err) >= 0)
			return;
		note(s, STOP_EV_QUIT_FAILED, err);
		free(err);
	} else if (s->pid > 0) {
		note(s, STOP_EV_TERM, NULL);
	}
	if (s->pid > 0)
		kill(s->pid, SIGTERM); /* QEMU's SIGTERM is a clean quit */
}

void stop_seq_escalate(struct stop_seq *s)
{
	switch (s->stage) {
	case STOP_IDLE:
	case STOP_POWERDOWN:
	case STOP_AGENT:
		quit(s);
		break;
	case STOP_QUIT:
	case STOP_KILL:
		set_stage(s, STOP_KILL, s->kill_ms);
		if (s->pid > 0) {
			note(s, STOP_EV_KILL, NULL);
			kill(s->pid, SIGKILL);
			s->killed = true;
		}
		break;
	}
}

void stop_seq_begin(struct stop_seq *s, bool force)
{
	if (force || !s->q) {
		stop_seq_escalate(s);
		return;
	}
	/* A guest whose CPUs are stopped cannot answer the power button. When
	 * QEMU cannot say, the button is tried. */
	char *err = NULL;
	struct json_object *ret = NULL, *v;
	if (qmp_execute(s->q, "query-status", NULL, LAUNCH_QMP_MS, &ret, &err) == 0) {
		bool running = json_object_object_get_ex(ret, "running", &v) && json_object_get_boolean(v);
		json_object_put(ret);
		if (!running) {
			note(s, STOP_EV_CPUS_STOPPED, NULL);
			stop_seq_escalate(s);
			return;
		}
	}
	free(err);
	err = NULL;
	note(s, STOP_EV_POWERDOWN, NULL);
	if (qmp_execute(s->q, "system_powerdown", NULL, LAUNCH_QMP_MS, NULL, &err) < 0) {
		note(s, STOP_EV_POWERDOWN_FAILED, err);
		free(err);
		stop_seq_escalate(s);
		return;
	}
	set_stage(s, STOP_POWERDOWN, s->powerdown_ms);
}

int stop_seq_timeout(const struct stop_seq *s)
{
	if (!s->deadline)
		return -1;
	double left = s->deadline - now_ms();
	return left <= 0 ? 0 : (int)left + 1;
}

/* How long a guest agent gets to answer the sync in a stop sequence. */
#define STOP_AGENT_SYNC_MS 2000

/* After the power button: guest-shutdown through the guest agent, when
 * one answers. true when asked. */
static bool agent_stop(struct stop_seq *s)
{
	char *err = NULL;
	struct agent *a = agent_connect(s->agent_dir, s->name ? s->name : "?", STOP_AGENT_SYNC_MS,
					STOP_AGENT_SYNC_MS, &err);
	if (a && agent_shutdown(a, "powerdown", &err) == 0) {
		agent_close(a);
		return true;
	}
	agent_close(a);
	note(s, STOP_EV_AGENT_NONE, err);
	free(err);
	return false;
}

bool stop_seq_tick(struct stop_seq *s)
{
	if (!s->deadline || now_ms() < s->deadline)
		return false;
	if (s->stage == STOP_POWERDOWN && s->agent_dir) {
		note(s, STOP_EV_POWERDOWN_TIMEOUT, "agent");
		if (agent_stop(s)) {
			set_stage(s, STOP_AGENT, s->powerdown_ms);
			return true;
		}
	} else if (s->stage == STOP_POWERDOWN) {
		note(s, STOP_EV_POWERDOWN_TIMEOUT, NULL);
	} else if (s->stage == STOP_AGENT) {
		note(s, STOP_EV_AGENT_TIMEOUT, NULL);
	}
	stop_seq_escalate(s);
	return true;
}

/* Did QEMU say SHUTDOWN on this connection? It has exited: everything it
 * wrote is waiting on the socket. */
static bool saw_shutdown(struct qmp *q)
{
	struct json_object *ev = NULL;
	int r = qmp_wait_event(q, "SHUTDOWN", 0, &ev, NULL);
	json_object_put(ev);
	return r == 1;
}

int vm_stop(const char *dir, const struct vm_stop_opts *o, char **err)
{
	if (!runtime_locked(dir))
		return 1;
	pid_t pid = runtime_read_pid(dir);
	char *qerr = NULL;
	struct qmp *q = runtime_qmp_connect(dir, NULL, o->qmp_ms, &qerr);
	/* QEMU hung up in the middle of the handshake: it is going away */
	bool hung_up = !q && errno == EPROTO;
	if (!q && o->no_qmp)
		o->no_qmp(o->ctx, qerr);
	free(qerr);

	struct stop_seq s = {.q = q, .pid = pid, .powerdown_ms = o->timeout_ms, .quit_ms = o->grace_ms,
			     .kill_ms = o->grace_ms, .note = o->note, .ctx = o->ctx, .name = o->name};
	char *qga = path_join(dir, RT_QGA);
	if (file_exists(qga))
		s.agent_dir = dir;
	free(qga);
	stop_seq_begin(&s, o->force);
	int r = 0;
	for (;;) {
		/* QEMU keeps our connection until it exits: QMP stays usable for quit. */
		if (runtime_wait_unlocked(dir, stop_seq_timeout(&s)) == 0)
			break;
		if (s.stage == STOP_KILL) {
			vm_set_err(err, "still running (the lock %s/%s is held)", dir, RT_LOCK);
			r = -1;
			goto out;
		}
		stop_seq_tick(&s);
	}
	if (!s.killed && (q ? !saw_shutdown(q) : hung_up)) {
		vm_set_err(err, "QEMU exited without shutting down (killed or crashed)");
		r = -1;
	} else {
		static const char *const by[] = {[STOP_IDLE] = "quit", [STOP_POWERDOWN] = "the power button",
						 [STOP_AGENT] = "the guest agent", [STOP_QUIT] = "quit",
						 [STOP_KILL] = "kill"};
		if (o->stopped_by)
			*o->stopped_by = by[s.stage];
	}
	/* Tidy what a detached QEMU leaves behind, unless a new run already took over. */
	struct runtime rt;
	char *e2 = NULL;
	int v = vm_verbose;
	vm_verbose = 0; /* runtime_lock's note on leftovers says nothing new here */
	if (runtime_lock(dir, &rt, NULL, &e2) == 0)
		runtime_release(&rt);
	vm_verbose = v;
	free(e2);
out:
	qmp_close(q);
	return r;
}

/* ---- starting QEMU ---- */

int launch_choose_user(const char *name, struct launch_user *u, char **err)
{
	memset(u, 0, sizeof *u);
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(name ? name : "utmkit");
	if (!pw && !name)
		pw = getpwnam(name = "nobody");
	if (!pw) {
		vm_set_err(err, "%s: no such user (--runas, $VM_RUNAS)", name ? name : "utmkit");
		return -1;
	}
	if (pw->pw_uid == 0)
		return 0; /* asked for root: so be it */
	u->drop = true;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->name = xstrdup(pw->pw_name);
	return 0;
}

void launch_user_free(struct launch_user *u)
{
	free(u->name);
	memset(u, 0, sizeof *u);
}

int launch_lock(const char *dir, struct runtime *rt, char **err)
{
	pid_t holder = 0;
	int r = runtime_lock(dir, rt, &holder, err);
	if (r == 1 && holder)
		vm_set_err(err, "already running (pid %d)", (int)holder);
	else if (r == 1)
		vm_set_err(err, "already running or in use (%s/%s is locked)", dir, RT_LOCK);
	return r;
}

int launch_sandbox_check(const struct vm_config *eff, char **err)
{
	for (size_t i = 0; i < eff->nnets; i++)
		if (!strcmp(eff->nets[i].mode, "bridge")) {
			vm_set_err(err, "net.%s.mode is bridge: QEMU would spawn qemu-bridge-helper, which "
					"the sandbox forbids; use a tap device, or --no-sandbox",
				   eff->nets[i].id);
			return -1;
		}
	return 0;
}

bool launch_console_socket(const struct vm_config *eff)
{
	return eff->nserials == 0 || !strcmp(eff->serials[0].mode, "socket");
}

void vm_proc_init(struct vm_proc *p)
{
	memset(p, 0, sizeof *p);
	p->lock_fd = p->logfd = p->rtfd = p->qmp_lfd = p->session_lfd = p->con_lfd = p->qga_lfd = -1;
	p->priv[0] = p->priv[1] = -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* What only QEMU needs, once it has it (or will not run). */
static void close_for_qemu(struct vm_proc *p)
{
	close_fd(&p->logfd);
	close_fd(&p->rtfd);
	close_fd(&p->qmp_lfd);
	close_fd(&p->session_lfd);
	close_fd(&p->con_lfd);
	close_fd(&p->qga_lfd);
	close_fd(&p->priv[1]);
	for (size_t i = 0; i < p->nfiles; i++)
		close(p->files[i]);
	free(p->files);
	p->files = NULL;
	p->nfiles = 0;
}

void vm_proc_free(struct vm_proc *p)
{
	close_for_qemu(p);
	close_fd(&p->priv[0]);
	qmp_close(p->q);
	p->q = p->stop.q = NULL;
	strv_free(&p->argv);
	launch_user_free(&p->user);
	free(p->rtdir);
	p->rtdir = NULL;
	free(p->incoming);
	p->incoming = NULL;
}

static void keep_open(int fd)
{
	int fl = fd >= 0 ? fcntl(fd, F_GETFD) : -1;
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

/* In the child, before exec: the user QEMU runs as, and no other groups. */
static void drop_privileges(const struct launch_user *u)
{
	if (!u->drop)
		return;
	if (setgroups(1, &u->gid) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0 || setuid(0) == 0)
		_exit(126); /* never run QEMU as root by accident */
}

static void child_signals(const struct vm_proc *p)
{
	signal(SIGPIPE, SIG_DFL);
	if (p->child_mask)
		sigprocmask(SIG_SETMASK, p->child_mask, NULL);
}

/* After a fork whose child writes its exec errno to ep[1]: 0 when the exec
 * worked, else that errno (the child is reaped). */
static int exec_errno(pid_t pid, int ep[2])
{
	close(ep[1]);
	int en = 0;
	ssize_t rn;
	while ((rn = read(ep[0], &en, sizeof en)) < 0 && errno == EINTR)
		;
	close(ep[0]);
	if (rn != (ssize_t)sizeof en)
		return 0;
	waitpid(pid, NULL, 0);
	return en ? en : EIO;
}

_Noreturn static void exec_failed(int ep)
{
	int en = errno;
	ssize_t unused = write(ep, &en, sizeof en);
	(void)unused;
	_exit(127);
}

/* argv_opts.open_file: the launcher opens what QEMU would, and QEMU inherits it. */
static int open_for_qemu(void *ctx, const char *path, int flags, char **err)
{
	struct vm_proc *p = ctx;
	int fd = open(path, flags | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	p->files = xrealloc(p->files, (p->nfiles + 1) * sizeof *p->files);
	p->files[p->nfiles++] = fd;
	return fd;
}

static int listen_in(const char *dir, const char *name, char **err)
{
	char *path = path_join(dir, name);
	int fd = unix_listen(path, 64, err);
	free(path);
	return fd;
}

/* swtpm with its control socket passed as a listening descriptor; it ends
 * by itself when QEMU closes the connection (--terminate). State lives in the
 * bundle, as in UTM: Data/tpmdata. */
static int start_swtpm(struct vm_proc *p, const struct launch_opts *o, char **err)
{
	const struct launch_user *u = &p->user;
	int lfd = listen_in(p->rtdir, RT_SWTPM, err);
	if (lfd < 0)
		return -1;
	int r = -1, datafd = -1, statefd = -1, logfd = -1, pidfd = -1;
	char *sock = path_join(p->rtdir, RT_SWTPM);
	char *datad = path_join(o->b->path, "Data");
	char *statef = path_join(datad, "tpmdata");
	char *logf = path_join(p->rtdir, RT_SWTPM_LOG);
	char *pidf = path_join(p->rtdir, RT_SWTPM_PID); /* ours: swtpm's --pid needs /proc */
	char *state = NULL, *ctrl = NULL, *logarg = NULL;
	/* QEMU connects to it as its own user */
	if (u->drop && chown(sock, u->uid, u->gid) < 0) {
		vm_set_err(err, "%s: %s", sock, strerror(errno));
		goto out;
	}
	/* swtpm gets its files as descriptors, like QEMU: as QEMU's user it
	 * may not reach their folders. Its state is one file it rewrites in
	 * place and opens by name, so it starts in Data/ (its cwd is reachable
	 * whatever the folders above it allow) and the file is its user's.
	 * /proc/self/fd would not do: swtpm makes itself undumpable. */
	datafd = open(datad, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (datafd < 0) {
		vm_set_err(err, "%s: %s", datad, strerror(errno));
		goto out;
	}
	statefd = open(statef, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	logfd = open(logf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	pidfd = open(pidf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	const char *bad = statefd < 0 ? statef : logfd < 0 ? logf : pidfd < 0 ? pidf : NULL;
	if (!bad && u->drop && fchown(statefd, u->uid, u->gid) < 0)
		bad = statef;
	if (!bad && u->drop && fchown(logfd, u->uid, u->gid) < 0)
		bad = logf;
	if (bad) {
		vm_set_err(err, "%s: %s", bad, strerror(errno));
		goto out;
	}
	state = xstrdup("backend-uri=file://tpmdata");
	ctrl = xasprintf("type=unixio,fd=%d", lfd);
	logarg = xasprintf("fd=%d,level=1", logfd);
	char *const av[] = {"swtpm", "socket", "--tpm2", "--terminate", "--tpmstate", state,
			    "--ctrl", ctrl, "--log", logarg, NULL};
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		vm_set_err(err, "pipe: %s", strerror(errno));
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		vm_set_err(err, "fork: %s", strerror(errno));
		close(ep[0]);
		close(ep[1]);
		goto out;
	}
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
		child_signals(p);
		if (fchdir(datafd) < 0)
			_exit(126);
		drop_privileges(u);
		execvp(av[0], av);
		exec_failed(ep[1]);
	}
	int e = exec_errno(pid, ep);
	if (e) {
		vm_set_err(err, "swtpm: %s%s", strerror(e),
			   e == ENOENT ? " (the config has tpm = true: install swtpm)" : "");
		goto out;
	}
	p->swtpm = pid;
	dprintf(pidfd, "%d\n", (int)pid);
	vm_info("%s: swtpm started (pid %d)", o->name, (int)pid);
	r = 0;
out:
	close(lfd);
	close_fd(&datafd);
	close_fd(&statefd);
	close_fd(&logfd);
	close_fd(&pidfd);
	free(sock);
	free(datad);
	free(statef);
	free(logf);
	free(pidf);
	free(state);
	free(ctrl);
	free(logarg);
	return r;
}

int launch_prepare(struct vm_proc *p, const struct launch_opts *o, char **err)
{
	/* Under the lock: no other start makes it at the same time. */
	int er = firmware_ensure_efi_vars(o->b, err);
	if (er < 0)
		return -1;
	if (er > 0)
		vm_info("%s: made a fresh UEFI variable store (efi_vars)", o->name);
	p->rtdir = xstrdup(o->runtime_dir);
	p->lock_fd = o->lock_fd;
	p->child_mask = o->child_mask;
	if (o->user) {
		p->user = *o->user;
		p->user.name = o->user->name ? xstrdup(o->user->name) : NULL;
	}
	struct argv_opts ao = o->argv;
	char *logpath = path_join(p->rtdir, RT_QEMU_LOG);
	p->logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (p->logfd < 0)
		vm_set_err(err, "%s: %s", logpath, strerror(errno));
	free(logpath);
	if (p->logfd < 0)
		return -1;
	if (p->user.drop) {
		/* QEMU's own sockets (display, serial ports) are made in the runtime
		 * dir by QEMU's user; it stays 0700, and the launcher's are root's 0600. */
		if (chown(p->rtdir, p->user.uid, p->user.gid) < 0 ||
		    (p->rtfd = open(p->rtdir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
			vm_set_err(err, "%s: %s", p->rtdir, strerror(errno));
			return -1;
		}
		ao.runtime_dirfd = p->rtfd;
		ao.open_file = open_for_qemu;
		ao.open_ctx = p;
	}
	if ((p->qmp_lfd = listen_in(p->rtdir, RT_QMP, err)) < 0 ||
	    (p->session_lfd = listen_in(p->rtdir, RT_QMP_SESSION, err)) < 0)
		return -1;
	if (launch_console_socket(o->eff) && (p->con_lfd = listen_in(p->rtdir, RT_CONSOLE, err)) < 0)
		return -1;
	if (config_agent(o->eff) && (p->qga_lfd = listen_in(p->rtdir, RT_QGA, err)) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->priv) < 0) {
		vm_set_err(err, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (o->eff->tpm && start_swtpm(p, o, err) < 0)
		return -1;
	ao.runtime_dir = p->rtdir;
	ao.qmp_fd = p->qmp_lfd;
	ao.qmp_session_fd = p->session_lfd;
	ao.console_fd = p->con_lfd;
	ao.qga_fd = p->qga_lfd;
	if (argv_build(o->b, &ao, &p->argv, err) < 0)
		return -1;
	strv_push(&p->argv, "-chardev");
	strv_pushf(&p->argv, "socket,id=vmrun,fd=%d", p->priv[1]);
	strv_push(&p->argv, "-mon");
	strv_push(&p->argv, "chardev=vmrun,mode=control");
	if (o->incoming) {
		if (migrate_uri_check(o->incoming, err) < 0)
			return -1;
		strv_push(&p->argv, "-incoming");
		strv_push(&p->argv, "defer");
		p->incoming = xstrdup(o->incoming);
	} else if (o->resume) {
		strv_push(&p->argv, "-incoming");
		strv_push(&p->argv, "defer");
	}
	if (ao.accel)
		runtime_write_file(p->rtdir, RT_ACCEL, ao.accel);
	return 0;
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

char *launch_find_program(const char *name)
{
	const char *path = getenv("PATH");
	char *copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
	char *hit = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir && !hit; dir = strtok_r(NULL, ":", &save)) {
		char *f = path_join(*dir ? dir : ".", name);
		struct stat st;
		if (stat(f, &st) == 0 && S_ISREG(st.st_mode) && access(f, X_OK) == 0)
			hit = f;
		else
			free(f);
	}
	free(copy);
	return hit;
}

int launch_spawn(struct vm_proc *p, const struct launch_opts *o, char **err)
{
	char **av = p->argv.v;
	const char *pkg = qemu_package(config_qemu_arch(o->eff->arch));
	/* Find QEMU as the caller, on the caller's PATH: QEMU's user may not
	 * search root's folders, and a missing binary must say "not found". */
	char *qemu = !strchr(av[0], '/')			 ? launch_find_program(av[0])
		     : access(av[0], F_OK) == 0 || errno != ENOENT ? xstrdup(av[0])
								 : NULL;
	if (!qemu) {
		vm_set_err(err, "%s: not found (install %s, or set VM_QEMU_DIR)", av[0], pkg);
		return -1;
	}
	free(av[0]);
	av[0] = qemu;

	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		vm_set_err(err, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		vm_set_err(err, "fork: %s", strerror(errno));
		close(ep[0]);
		close(ep[1]);
		return -1;
	}
	if (pid == 0) {
		setsid();
		/* A first serial port on "stdio" gets this terminal in the
		 * foreground; otherwise QEMU reads nothing and writes to its log. */
		if (!o->stdio_serial) {
			int dn = open("/dev/null", O_RDONLY);
			if (dn >= 0)
				dup2(dn, 0);
			dup2(p->logfd, 1);
		}
		dup2(p->logfd, 2);
		umask(077); /* what QEMU creates (display socket, console log) is private */
		close_inherited();
		keep_open(p->lock_fd);
		keep_open(p->qmp_lfd);
		keep_open(p->session_lfd);
		keep_open(p->con_lfd);
		keep_open(p->qga_lfd);
		keep_open(p->priv[1]);
		keep_open(p->rtfd);
		for (size_t i = 0; i < p->nfiles; i++)
			keep_open(p->files[i]);
		drop_privileges(&p->user);
		child_signals(p);
		execv(av[0], av);
		exec_failed(ep[1]);
	}
	p->pid = pid;
	close_for_qemu(p);
	int en = exec_errno(pid, ep);
	if (en) {
		p->pid = 0;
		if (en == ENOENT)
			vm_set_err(err, "%s: not found (install %s, or set VM_QEMU_DIR)", av[0], pkg);
		else
			vm_set_err(err, "%s: %s", av[0], strerror(en));
		return -1;
	}
	char *pidtext = xasprintf("%d\n", (int)pid);
	runtime_write_file(p->rtdir, RT_PID, pidtext);
	free(pidtext);
	return 0;
}

static size_t log_size(const char *dir)
{
	char *f = path_join(dir, RT_QEMU_LOG);
	struct stat st;
	size_t n = stat(f, &st) == 0 ? (size_t)st.st_size : 0;
	free(f);
	return n;
}

char *launch_qemu_error(const char *dir, size_t offset)
{
	char *f = path_join(dir, RT_QEMU_LOG);
	size_t len = 0;
	char *log = read_file(f, &len);
	free(f);
	if (!log)
		return NULL;
	/* QEMU's own error lines carry its name ("qemu-system-x86_64: ...");
	 * a hint may follow on a line of its own, which is not the reason */
	char *own = NULL, *best = NULL, *last = NULL;
	char *s = offset <= len ? log + offset : log + len;
	for (char *line = strtok(s, "\r\n"); line; line = strtok(NULL, "\r\n")) {
		while (*line == ' ')
			line++;
		if (!*line)
			continue;
		last = line;
		if (!strstr(line, "warning:")) {
			best = line;
			if (has_prefix(line, "qemu-"))
				own = line;
		}
	}
	char *r = own ? xstrdup(own) : best ? xstrdup(best) : last ? xstrdup(last) : NULL;
	free(log);
	return r;
}

static void kill_qemu(struct vm_proc *p, int *st)
{
	kill(p->pid, SIGKILL);
	waitpid(p->pid, st, 0);
	p->exited = true;
}

char *launch_display_uri(const struct launch_opts *lo)
{
	struct display_spec ds;
	char *uri = NULL, *e = NULL;
	if (display_resolve(lo->eff, lo->argv.display, &ds, &e) == 0)
		uri = display_uri(&ds, lo->runtime_dir);
	free(e);
	if (uri) {
		runtime_write_file(lo->runtime_dir, RT_DISPLAY, uri);
	} else {
		char *f = path_join(lo->runtime_dir, RT_DISPLAY);
		unlink(f);
		free(f);
	}
	return uri;
}

int launch_wait_ready(struct vm_proc *p, int sigfd, bool bounded, int *sig, char **err)
{
	double start_deadline = now_ms() + LAUNCH_START_TIMEOUT_MS;
	for (bool ready = false; !ready;) {
		struct pollfd pf[2] = {{.fd = p->priv[0], .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
		int left = bounded ? (int)(start_deadline - now_ms()) : -1;
		if (bounded && left <= 0) {
			kill_qemu(p, NULL);
			vm_set_err(err, "QEMU did not answer on QMP within %d s", LAUNCH_START_TIMEOUT_MS / 1000);
			return -1;
		}
		int r = poll(pf, 2, left);
		if (r < 0 && errno != EINTR) {
			vm_set_err(err, "poll: %s", strerror(errno));
			return -1;
		}
		if (r > 0 && pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if ((int)si.ssi_signo == SIGCHLD)
					continue; /* the EOF on the monitor tells */
				kill_qemu(p, NULL);
				*sig = (int)si.ssi_signo;
				return 1;
			}
		}
		if (r > 0 && pf[0].revents)
			ready = true;
	}
	/* A loaded host can take seconds to finish the handshake: allow what is
	 * left of the start timeout, not one command's worth. */
	int open_ms = (int)(start_deadline - now_ms());
	char *qerr = NULL;
	p->q = qmp_open_fd(p->priv[0], open_ms > LAUNCH_QMP_MS ? open_ms : LAUNCH_QMP_MS, &qerr);
	p->priv[0] = -1; /* qmp_open_fd owns it, even when it fails */
	/* The greeting comes before QEMU makes the -device list (it can still
	 * fail there); an answer needs its main loop, which runs only after. */
	if (p->q) {
		open_ms = (int)(start_deadline - now_ms());
		if (qmp_execute(p->q, "query-status", NULL, open_ms > LAUNCH_QMP_MS ? open_ms : LAUNCH_QMP_MS, NULL,
				&qerr) < 0) {
			qmp_close(p->q);
			p->q = NULL;
		}
	}
	if (!p->q) {
		int st = 0;
		/* A QEMU that failed closes the monitor as it exits: give it a
		 * moment; one alive but mute is killed, not waited for. */
		pid_t w = 0;
		for (int i = 0; i < 200 && (w = waitpid(p->pid, &st, WNOHANG)) == 0; i++)
			usleep(10000);
		p->exited = true;
		char *why = NULL;
		if (w == 0) {
			kill_qemu(p, &st);
			vm_set_err(err, "QEMU did not complete the QMP handshake: %s", qerr);
		} else if ((why = launch_qemu_error(p->rtdir, 0))) {
			vm_set_err(err, "%s", why);
		} else if (WIFSIGNALED(st)) {
			vm_set_err(err, "QEMU was killed by signal %d while starting", WTERMSIG(st));
		} else {
			vm_set_err(err, "QEMU exited with status %d while starting (%s)", WEXITSTATUS(st), qerr);
		}
		free(why);
		free(qerr);
		return -1;
	}
	if (p->incoming && migrate_incoming(p->q, p->incoming, LAUNCH_QMP_MS, err) < 0) {
		kill_qemu(p, NULL);
		return -1;
	}
	p->log_at_ready = log_size(p->rtdir);
	p->stop.q = p->q;
	p->stop.pid = p->pid;
	return 0;
}

static void launch_reap(struct vm_proc *p)
{
	int st;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
		if (w == p->pid) {
			p->wstatus = st;
			p->exited = true;
		} else if (w == p->swtpm) {
			p->swtpm = 0;
		}
	}
}

static void on_signal(struct vm_proc *p, struct launch_sup *s, int sig)
{
	if (sig == SIGCHLD) {
		launch_reap(p);
		return;
	}
	if (s->cause == LAUNCH_CAUSE_NONE)
		s->cause = sig;
	if (p->stop.stage == STOP_IDLE) {
		note(&p->stop, STOP_EV_REQUEST, NULL);
		stop_seq_begin(&p->stop, false);
	} else {
		stop_seq_escalate(&p->stop);
	}
}

void launch_supervise(struct vm_proc *p, struct launch_sup *s)
{
	while (!p->exited && !s->leave) {
		struct pollfd pf[8];
		int n = 0, i_q = -1;
		pf[n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
		if (p->q && !qmp_is_closed(p->q)) {
			pf[n] = (struct pollfd){.fd = qmp_fd(p->q), .events = POLLIN};
			i_q = n++;
		}
		int mine = n;
		if (s->add_fds)
			n += s->add_fds(s->ctx, pf + n, (int)(sizeof pf / sizeof *pf) - n);
		int timeout = stop_seq_timeout(&p->stop);
		if (s->run_deadline && s->cause == LAUNCH_CAUSE_NONE) {
			double left = s->run_deadline - now_ms();
			int t = left <= 0 ? 0 : (int)left + 1;
			timeout = timeout < 0 || t < timeout ? t : timeout;
		}
		int r = poll(pf, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (s->run_deadline && s->cause == LAUNCH_CAUSE_NONE && now_ms() >= s->run_deadline) {
			s->cause = LAUNCH_CAUSE_TIMEOUT;
			note(&p->stop, STOP_EV_RUN_TIMEOUT, NULL);
			stop_seq_begin(&p->stop, true); /* straight to quit */
		}
		stop_seq_tick(&p->stop);
		if (r <= 0)
			continue;
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
				on_signal(p, s, (int)si.ssi_signo);
		}
		if (i_q >= 0 && pf[i_q].revents) {
			char *err = NULL;
			if (qmp_poll(p->q, 0, &err) < 0)
				free(err); /* QEMU is going away: SIGCHLD follows */
			struct json_object *ev;
			while (qmp_next_event(p->q, 0, &ev, NULL) == 1)
				json_object_put(ev);
		}
		if (s->on_fds && n > mine)
			s->on_fds(s->ctx, pf + mine, n - mine);
	}
}

int launch_exit_status(const struct vm_proc *p, bool exit_device, char **why)
{
	int st = p->wstatus;
	*why = NULL;
	if (WIFSIGNALED(st)) {
		*why = xasprintf("QEMU was killed by signal %d", WTERMSIG(st));
		return -1;
	}
	int code = WEXITSTATUS(st);
	*why = code ? launch_qemu_error(p->rtdir, p->log_at_ready) : NULL;
	if (exit_device && (code & 1) && (code > 1 || !*why)) {
		/* isa-debug-exit: QEMU exits (N << 1) | 1 */
		free(*why);
		*why = NULL;
		return code >> 1;
	}
	if (code == 0)
		return 0;
	if (!*why)
		*why = launch_qemu_error(p->rtdir, 0);
	if (!*why)
		*why = xasprintf("QEMU exited with status %d", code);
	return -1;
}

void launch_end(struct vm_proc *p)
{
	pid_t pid = p->swtpm;
	p->swtpm = 0;
	if (pid <= 0 || waitpid(pid, NULL, WNOHANG) != 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100 && waitpid(pid, NULL, WNOHANG) == 0; i++)
		usleep(10000);
	if (kill(pid, 0) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}
