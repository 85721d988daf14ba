/* The runtime directory of a VM: lock, pid file, leftovers, state (runtime.h). */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"

const char *vm_state_name(enum vm_state s)
{
	switch (s) {
	case VM_STOPPED: return "stopped";
	case VM_STARTING: return "starting";
	case VM_RUNNING: return "running";
	case VM_PAUSED: return "paused";
	case VM_STOPPING: return "stopping";
	case VM_UNKNOWN: return "unknown";
	}
	return "unknown";
}

/* Files a run leaves in the runtime dir; the logs stay for a post-mortem
 * and are truncated by the next run. */
static const char *const leftovers[] = {
    RT_PID, RT_QMP, RT_QMP_SESSION, RT_CONSOLE, RT_VNC, RT_SPICE, RT_SWTPM, RT_SWTPM_PID, RT_ACCEL, RT_QGA, RT_QGA_LOCK, NULL,
};

void runtime_clean(const char *dir)
{
	for (const char *const *f = leftovers; *f; f++) {
		char *p = path_join(dir, *f);
		unlink(p);
		free(p);
	}
}

static bool has_leftovers(const char *dir)
{
	for (const char *const *f = leftovers; *f; f++) {
		char *p = path_join(dir, *f);
		bool e = file_exists(p);
		free(p);
		if (e)
			return true;
	}
	return false;
}

int runtime_write_file(const char *dir, const char *name, const char *text)
{
	char *p = path_join(dir, name);
	int r = write_file_atomic(p, text, strlen(text), 0600);
	free(p);
	return r;
}

pid_t runtime_read_pid(const char *dir)
{
	char *p = path_join(dir, RT_PID);
	char *s = read_file(p, NULL);
	free(p);
	if (!s)
		return 0;
	s[strcspn(s, "\n")] = '\0';
	long long v = 0;
	const char *e = NULL;
	if (parse_int(s, 1, INT32_MAX, &v, &e) < 0)
		v = 0;
	free(s);
	return (pid_t)v;
}

char *runtime_base(char **err)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *base;
	if (xdg && *xdg) {
		base = path_join(xdg, "vm");
		if (mkdir_p(base, 0700) < 0)
			goto fail;
		return base;
	}
	base = xasprintf("/tmp/vm-%u", (unsigned)getuid());
	if (mkdir(base, 0700) < 0 && errno != EEXIST)
		goto fail;
	/* /tmp is shared: the folder must be ours and private, not a planted link */
	struct stat st;
	if (lstat(base, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077)) {
		vm_set_err(err, "%s: not a private folder owned by uid %u", base, (unsigned)getuid());
		free(base);
		return NULL;
	}
	return base;
fail:
	vm_set_err(err, "%s: %s", base, strerror(errno));
	free(base);
	return NULL;
}

char *bundle_runtime_path(const struct bundle *b, const char *file, char **err)
{
	char *base = runtime_base(err);
	if (!base)
		return NULL;
	const char *uuid = b->cfg.uuid ? b->cfg.uuid : "no-uuid";
	char *dir = path_join(base, uuid);
	free(base);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		vm_set_err(err, "%s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	if (!file)
		return dir;
	char *p = path_join(dir, file);
	free(dir);
	return p;
}

struct qmp *runtime_qmp_connect(const char *dir, const char *name, int timeout_ms, char **err)
{
	char *sock = path_join(dir, name ? name : RT_QMP);
	struct qmp *q = qmp_connect(sock, timeout_ms, err);
	int e = errno;
	free(sock);
	errno = e;
	return q;
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

int runtime_lock(const char *dir, struct runtime *rt, pid_t *holder, char **err)
{
	rt->dir = NULL;
	rt->lock_fd = -1;
	if (holder)
		*holder = 0;
	if (mkdir_p(dir, 0700) < 0) {
		*err = xasprintf("%s: %s", dir, strerror(errno));
		return -1;
	}
	char *lp = path_join(dir, RT_LOCK);
	int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = xasprintf("%s: %s", lp, strerror(errno));
		free(lp);
		return -1;
	}
	free(lp);
	/* A state query (vm-ls) holds a shared lock for microseconds: retry a
	 * little before believing the VM runs. 50 ms stays "at once" for a user. */
	for (int i = 0;; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			*err = xasprintf("%s/%s: flock: %s", dir, RT_LOCK, strerror(errno));
			close(fd);
			return -1;
		}
		if (i >= 10) {
			close(fd);
			if (holder) {
				pid_t pid = runtime_read_pid(dir);
				*holder = pid_alive(pid) ? pid : 0;
			}
			return 1;
		}
		usleep(5000);
	}
	if (has_leftovers(dir)) {
		pid_t old = runtime_read_pid(dir);
		if (old)
			vm_info("%s: removing the leftovers of an earlier run (pid %d)", dir, (int)old);
		else
			vm_info("%s: removing the leftovers of an earlier run", dir);
		runtime_clean(dir);
	}
	rt->dir = xstrdup(dir);
	rt->lock_fd = fd;
	return 0;
}

void runtime_release(struct runtime *rt)
{
	if (rt->lock_fd >= 0)
		close(rt->lock_fd);
	rt->lock_fd = -1;
	free(rt->dir);
	rt->dir = NULL;
}

static int open_lock_ro(const char *dir)
{
	char *lp = path_join(dir, RT_LOCK);
	int fd = open(lp, O_RDONLY | O_CLOEXEC);
	free(lp);
	return fd;
}

bool runtime_locked(const char *dir)
{
	int fd = open_lock_ro(dir);
	if (fd < 0)
		return false;
	int r;
	while ((r = flock(fd, LOCK_SH | LOCK_NB)) < 0 && errno == EINTR)
		;
	bool held = r < 0 && errno == EWOULDBLOCK;
	close(fd); /* drops our shared lock, if taken */
	return held;
}

static void on_tick(int sig)
{
	(void)sig;
}

int runtime_wait_unlocked(const char *dir, int timeout_ms)
{
	int fd = open_lock_ro(dir);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	/* Block in flock(2) so the wait ends the moment the lock is released; a
	 * repeating timer signal (no SA_RESTART) bounds it. */
	struct sigaction sa = {.sa_handler = on_tick}, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	sigset_t set, oldset;
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &set, &oldset);
	timer_t tid;
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM};
	bool have_timer = timer_create(CLOCK_MONOTONIC, &sev, &tid) == 0;
	if (have_timer) {
		struct itimerspec its = {.it_value = {0, 50 * 1000000}, .it_interval = {0, 50 * 1000000}};
		timer_settime(tid, 0, &its, NULL);
	}
	double deadline = now_ms() + timeout_ms;
	int result = 1;
	for (;;) {
		int r = have_timer ? flock(fd, LOCK_SH) : flock(fd, LOCK_SH | LOCK_NB);
		if (r == 0) {
			result = 0;
			break;
		}
		if (errno != EINTR && errno != EWOULDBLOCK)
			break;
		if (timeout_ms >= 0 && now_ms() >= deadline)
			break;
		if (!have_timer)
			usleep(10000);
	}
	if (have_timer)
		timer_delete(tid);
	sigprocmask(SIG_SETMASK, &oldset, NULL);
	sigaction(SIGALRM, &old, NULL);
	close(fd);
	return result;
}

enum vm_state runtime_state_from_qmp(const char *status, bool running)
{
	if (running || (status && !strcmp(status, "running")))
		return VM_RUNNING;
	return VM_PAUSED;
}

void vm_status_free(struct vm_status *st)
{
	free(st->accel);
	free(st->qmp_status);
	free(st->error);
	free(st->dir);
	memset(st, 0, sizeof *st);
}

static char *read_trimmed(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	char *s = read_file(p, NULL);
	free(p);
	if (s)
		s[strcspn(s, "\n")] = '\0';
	return s;
}

int runtime_state_dir(const char *dir, int qmp_timeout_ms, struct vm_status *st)
{
	memset(st, 0, sizeof *st);
	st->dir = xstrdup(dir);
	if (!runtime_locked(dir)) {
		st->state = VM_STOPPED;
		return 0;
	}
	st->pid = runtime_read_pid(dir);
	if (!st->pid) {
		st->state = VM_STARTING;
		return 0;
	}
	if (!pid_alive(st->pid)) {
		st->state = VM_STOPPING;
		st->pid = 0;
		return 0;
	}
	st->accel = read_trimmed(dir, RT_ACCEL);
	char *err = NULL;
	struct qmp *q = runtime_qmp_connect(dir, NULL, qmp_timeout_ms, &err);
	if (!q) {
		st->state = VM_UNKNOWN;
		st->error = err ? err : xstrdup("QMP did not answer");
		return 0;
	}
	struct json_object *ret = NULL, *v;
	if (qmp_execute(q, "query-status", NULL, qmp_timeout_ms, &ret, &err) < 0) {
		st->state = VM_UNKNOWN;
		st->error = err;
		qmp_close(q);
		return 0;
	}
	const char *status = NULL;
	bool running = false;
	if (json_object_object_get_ex(ret, "status", &v))
		status = json_object_get_string(v);
	if (json_object_object_get_ex(ret, "running", &v))
		running = json_object_get_boolean(v);
	st->qmp_status = status ? xstrdup(status) : NULL;
	st->state = runtime_state_from_qmp(status, running);
	json_object_put(ret);
	ret = NULL;
	if (qmp_execute(q, "query-kvm", NULL, qmp_timeout_ms, &ret, &err) == 0) {
		if (json_object_object_get_ex(ret, "enabled", &v)) {
			free(st->accel);
			st->accel = xstrdup(json_object_get_boolean(v) ? "kvm" : "tcg");
		}
		json_object_put(ret);
	} else {
		free(err);
	}
	qmp_close(q);
	return 0;
}

int runtime_state(const struct bundle *b, int qmp_timeout_ms, struct vm_status *st)
{
	char *dir = bundle_runtime_path(b, NULL, NULL);
	if (!dir) {
		memset(st, 0, sizeof *st);
		return -1;
	}
	int r = runtime_state_dir(dir, qmp_timeout_ms, st);
	free(dir);
	return r;
}
