/* The QEMU guest agent client (agent.h). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"
#include "runtime.h"
#include "util.h"

struct agent {
	struct qmp *q;
	int lock_fd; /* RUNTIME/qga.lock, held while connected; -1: none */
	char *name;
	volatile sig_atomic_t *intr;
};

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *agent_b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = b64[v >> 18];
		*o++ = b64[(v >> 12) & 63];
		*o++ = b64[(v >> 6) & 63];
		*o++ = b64[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = b64[v >> 18];
		*o++ = b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

unsigned char *agent_b64_decode(const char *s, size_t *len)
{
	static signed char val[256];
	if (!val['B']) {
		memset(val, -1, sizeof val);
		for (int i = 0; i < 64; i++)
			val[(unsigned char)b64[i]] = (signed char)i;
	}
	size_t n = strlen(s);
	unsigned char *out = xmalloc(n / 4 * 3 + 3), *o = out;
	uint32_t acc = 0;
	int bits = 0;
	size_t pad = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '=') {
			pad++;
			continue;
		}
		if (c == '\n' || c == '\r')
			continue;
		if (val[c] < 0 || pad) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)val[c];
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (unsigned char)(acc >> bits);
		}
	}
	if (pad > 2) {
		free(out);
		return NULL;
	}
	*len = (size_t)(o - out);
	return out;
}

/* ---- the connection ---- */

static int sync_agent(struct agent *a, int sync_ms, char **err)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* a number no earlier client used: its sync reply, left unread, is not ours */
	int64_t n = 1 + (int64_t)(((uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)getpid() << 20) & 0x3fffffff);
	char *e = NULL;
	if (qmp_resync(a->q, &e) < 0)
		goto fail;
	struct json_object *args = json_object_new_object(), *ret = NULL;
	json_object_object_add(args, "id", json_object_new_int64(n));
	int r = qmp_execute(a->q, "guest-sync-delimited", args, sync_ms, &ret, &e);
	json_object_put(args);
	if (r < 0)
		goto fail;
	bool same = json_object_is_type(ret, json_type_int) && json_object_get_int64(ret) == n;
	json_object_put(ret);
	if (!same) {
		vm_set_err(err, "the guest agent in VM %s answered the sync with another number", a->name);
		return -1;
	}
	return 0;
fail:
	if (qmp_last_was_timeout(a->q)) {
		vm_set_err(err, "no guest agent answers in VM %s: is qemu-guest-agent installed and running?",
			   a->name);
		errno = ETIMEDOUT;
	} else {
		vm_set_err(err, "guest agent of VM %s: %s", a->name, e);
		errno = EPROTO;
	}
	free(e);
	return -1;
}

/* An agent on q (its turn's lock lock_fd, or -1), once it answers the
 * sync; NULL with *err and errno, q and lock_fd closed. */
static struct agent *agent_new(struct qmp *q, int lock_fd, const char *vm_name, int sync_ms, char **err)
{
	struct agent *a = xcalloc(1, sizeof *a);
	a->q = q;
	a->lock_fd = lock_fd;
	a->name = xstrdup(vm_name);
	if (sync_agent(a, sync_ms, err) < 0) {
		int e = errno;
		agent_close(a);
		errno = e;
		return NULL;
	}
	return a;
}

struct agent *agent_open_fd(int fd, const char *vm_name, int sync_ms, char **err)
{
	return agent_new(qmp_open_plain(fd, AGENT_CMD_MS), -1, vm_name, sync_ms, err);
}

/* The turn of this client: the lock's fd, or -1 with *err and errno. */
static int take_turn(const char *dir, const char *vm_name, int lock_ms, char **err)
{
	char *path = path_join(dir, RT_QGA_LOCK);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int en = errno;
	free(path);
	if (fd < 0) {
		vm_set_err(err, "guest agent of VM %s: %s/%s: %s", vm_name, dir, RT_QGA_LOCK, strerror(en));
		errno = en;
		return -1;
	}
	double until = lock_ms >= 0 ? now_ms() + lock_ms : 0;
	for (;;) {
		if (flock(fd, lock_ms < 0 ? LOCK_EX : LOCK_EX | LOCK_NB) == 0)
			return fd;
		en = errno;
		if (en == EINTR && lock_ms < 0)
			break; /* a signal: the caller's to handle */
		if (en != EWOULDBLOCK && en != EINTR)
			break;
		if (lock_ms >= 0 && now_ms() >= until) {
			en = EBUSY;
			break;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	close(fd);
	if (en == EBUSY)
		vm_set_err(err, "the guest agent of VM %s is busy with another client", vm_name);
	else
		vm_set_err(err, "guest agent of VM %s: waiting for its turn: %s", vm_name, strerror(en));
	errno = en;
	return -1;
}

struct agent *agent_connect(const char *dir, const char *vm_name, int lock_ms, int sync_ms, char **err)
{
	char *path = path_join(dir, RT_QGA), *e = NULL;
	if (!file_exists(path)) {
		free(path);
		vm_set_err(err, "VM %s has no guest agent channel (it runs with agent = false, "
				"or was started without one)", vm_name);
		errno = ENOENT;
		return NULL;
	}
	int lfd = take_turn(dir, vm_name, lock_ms, err);
	if (lfd < 0) {
		free(path);
		return NULL;
	}
	struct qmp *q = qmp_connect_plain(path, sync_ms, &e);
	free(path);
	if (!q) {
		close(lfd);
		int en = errno;
		if (en == ENOENT || en == ECONNREFUSED)
			vm_set_err(err, "VM %s has no guest agent channel (it runs with agent = false, "
					"or was started without one)", vm_name);
		else
			vm_set_err(err, "guest agent of VM %s: %s", vm_name, e);
		free(e);
		errno = en;
		return NULL;
	}
	return agent_new(q, lfd, vm_name, sync_ms, err);
}

void agent_close(struct agent *a)
{
	if (!a)
		return;
	qmp_close(a->q);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	free(a->name);
	free(a);
}

void agent_set_interrupt(struct agent *a, volatile sig_atomic_t *flag)
{
	a->intr = flag;
	qmp_set_interrupt(a->q, flag);
}

int agent_command(struct agent *a, const char *cmd, struct json_object *args, int timeout_ms,
		  struct json_object **ret, char **err)
{
	char *e = NULL;
	if (qmp_execute(a->q, cmd, args, timeout_ms, ret, &e) == 0)
		return 0;
	if (qmp_last_was_timeout(a->q))
		vm_set_err(err, "%s: the guest agent of VM %s did not answer in time", cmd, a->name);
	else
		vm_set_err(err, "%s: %s", cmd, e);
	free(e);
	return -1;
}

int agent_ping(struct agent *a, char **err)
{
	return agent_command(a, "guest-ping", NULL, AGENT_CMD_MS, NULL, err);
}

int agent_info(struct agent *a, struct json_object **ret, char **err)
{
	return agent_command(a, "guest-info", NULL, AGENT_CMD_MS, ret, err);
}

int agent_interfaces(struct agent *a, struct json_object **ret, char **err)
{
	return agent_command(a, "guest-network-get-interfaces", NULL, AGENT_CMD_MS, ret, err);
}

int agent_set_time(struct agent *a, char **err)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "time", json_object_new_int64((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec));
	int r = agent_command(a, "guest-set-time", args, AGENT_CMD_MS, NULL, err);
	json_object_put(args);
	return r;
}

static int count_command(struct agent *a, const char *cmd, int *count, char **err)
{
	struct json_object *ret = NULL;
	if (agent_command(a, cmd, NULL, AGENT_FREEZE_MS, &ret, err) < 0)
		return -1;
	if (count)
		*count = json_object_get_int(ret);
	json_object_put(ret);
	return 0;
}

int agent_fsfreeze(struct agent *a, int *count, char **err)
{
	return count_command(a, "guest-fsfreeze-freeze", count, err);
}

int agent_fsthaw(struct agent *a, int *count, char **err)
{
	return count_command(a, "guest-fsfreeze-thaw", count, err);
}

int agent_fsfreeze_status(struct agent *a, char **status, char **err)
{
	struct json_object *ret = NULL;
	if (agent_command(a, "guest-fsfreeze-status", NULL, AGENT_CMD_MS, &ret, err) < 0)
		return -1;
	*status = xstrdup(json_object_is_type(ret, json_type_string) ? json_object_get_string(ret) : "unknown");
	json_object_put(ret);
	return 0;
}

/* A wait that a qemu-ga that works never ends: it answers guest-shutdown
 * only with an error. */
#define AGENT_SHUTDOWN_ERROR_MS 1000

int agent_shutdown(struct agent *a, const char *mode, char **err)
{
	struct json_object *args = json_object_new_object(), *msg = NULL;
	json_object_object_add(args, "mode", json_object_new_string(mode));
	char *e = NULL;
	long id = qmp_send(a->q, "guest-shutdown", args, &e);
	json_object_put(args);
	if (id < 0) {
		vm_set_err(err, "guest-shutdown: %s", e);
		free(e);
		return -1;
	}
	int r = qmp_read_reply(a->q, id, AGENT_SHUTDOWN_ERROR_MS, &msg, &e);
	free(e);
	if (r < 0) {
		qmp_abandon(a->q, id);
		return 0; /* no answer (or the guest went away): it shuts down */
	}
	char *why = qmp_error_string(msg);
	json_object_put(msg);
	if (why) {
		vm_set_err(err, "guest-shutdown: %s", why);
		free(why);
		return -1;
	}
	return 0;
}

/* ---- guest-exec ---- */

static struct json_object *string_array(const char *const *v)
{
	struct json_object *arr = json_object_new_array();
	for (; v && *v; v++)
		json_object_array_add(arr, json_object_new_string(*v));
	return arr;
}

static bool interrupted(const struct agent *a)
{
	return a->intr && *a->intr;
}

/* Start argv; *pid. AGENT_EXEC_NOT_RUN when the agent refused. */
static int exec_start(struct agent *a, const struct agent_exec *e, int64_t *pid, char **err)
{
	struct json_object *args = json_object_new_object(), *ret = NULL, *v;
	json_object_object_add(args, "path", json_object_new_string(e->argv[0]));
	json_object_object_add(args, "arg", string_array(e->argv + 1));
	if (e->env)
		json_object_object_add(args, "env", string_array(e->env));
	if (e->input) {
		char *in = agent_b64_encode(e->input, e->input_len);
		json_object_object_add(args, "input-data", json_object_new_string(in));
		free(in);
	}
	json_object_object_add(args, "capture-output", json_object_new_boolean(1));
	char *er = NULL;
	int r = qmp_execute(a->q, "guest-exec", args, AGENT_CMD_MS, &ret, &er);
	json_object_put(args);
	if (r < 0) {
		bool refused = qmp_last_was_qmp_error(a->q);
		vm_set_err(err, "%s: %s", e->argv[0], er);
		free(er);
		return refused ? AGENT_EXEC_NOT_RUN : AGENT_EXEC_FAILED;
	}
	bool has = json_object_object_get_ex(ret, "pid", &v);
	*pid = has ? json_object_get_int64(v) : -1;
	json_object_put(ret);
	if (!has) {
		vm_set_err(err, "guest-exec: no pid in the agent's reply");
		return AGENT_EXEC_FAILED;
	}
	return 0;
}

/* Kill a guest process through another guest-exec (the agent has no
 * command for it); best effort. */
static void exec_kill(struct agent *a, int64_t pid)
{
	char p[32];
	snprintf(p, sizeof p, "%" PRId64, pid);
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "path", json_object_new_string("kill"));
	const char *const av[] = {"-KILL", p, NULL};
	json_object_object_add(args, "arg", string_array(av));
	volatile sig_atomic_t *intr = a->intr;
	qmp_set_interrupt(a->q, NULL);
	char *e = NULL;
	if (qmp_execute(a->q, "guest-exec", args, 5000, NULL, &e) < 0)
		free(e);
	qmp_set_interrupt(a->q, intr);
	json_object_put(args);
}

static int emit(const struct agent_exec *e, int stream, struct json_object *ret, const char *key,
		char **err)
{
	struct json_object *v;
	if (!json_object_object_get_ex(ret, key, &v) || !json_object_is_type(v, json_type_string))
		return 0;
	size_t n;
	unsigned char *data = agent_b64_decode(json_object_get_string(v), &n);
	if (!data) {
		vm_set_err(err, "guest-exec-status: %s is not base64", key);
		return -1;
	}
	int r = n && e->output ? e->output(e->ctx, stream, (const char *)data, n) : 0;
	free(data);
	if (r < 0)
		vm_set_err(err, "writing the command's output: %s", strerror(errno));
	return r < 0 ? -1 : 0;
}

int agent_exec(struct agent *a, const struct agent_exec *e, int *status, char **err)
{
	int64_t pid;
	int r = exec_start(a, e, &pid, err);
	if (r < 0)
		return r;
	double deadline = e->timeout_ms >= 0 ? now_ms() + e->timeout_ms : 0;
	/* Poll quickly first (a short command is done in a few ms), then back
	 * off to 50 ms. */
	long wait_us = 500;
	for (;;) {
		struct json_object *args = json_object_new_object(), *ret = NULL, *v;
		json_object_object_add(args, "pid", json_object_new_int64(pid));
		char *er = NULL;
		r = qmp_execute(a->q, "guest-exec-status", args, AGENT_CMD_MS, &ret, &er);
		json_object_put(args);
		if (r < 0) {
			if (interrupted(a))
				exec_kill(a, pid);
			vm_set_err(err, "guest-exec-status: %s", er);
			free(er);
			return AGENT_EXEC_FAILED;
		}
		bool exited = json_object_object_get_ex(ret, "exited", &v) && json_object_get_boolean(v);
		if (emit(e, AGENT_STDOUT, ret, "out-data", err) < 0 || emit(e, AGENT_STDERR, ret, "err-data", err) < 0) {
			json_object_put(ret);
			if (!exited)
				exec_kill(a, pid);
			return AGENT_EXEC_FAILED;
		}
		if (exited) {
			bool trunc = (json_object_object_get_ex(ret, "out-truncated", &v) && json_object_get_boolean(v)) ||
				     (json_object_object_get_ex(ret, "err-truncated", &v) && json_object_get_boolean(v));
			if (trunc && e->output) {
				static const char note[] = "vm-guest: the guest agent cut the command's output at 16 MiB\n";
				e->output(e->ctx, AGENT_STDERR, note, sizeof note - 1);
			}
			if (json_object_object_get_ex(ret, "signal", &v))
				*status = 128 + json_object_get_int(v);
			else if (json_object_object_get_ex(ret, "exitcode", &v))
				*status = json_object_get_int(v);
			else
				*status = 0;
			json_object_put(ret);
			return 0;
		}
		json_object_put(ret);
		if (deadline && now_ms() >= deadline) {
			exec_kill(a, pid);
			vm_set_err(err, "%s: still running after %g s; killed", e->argv[0], e->timeout_ms / 1000.0);
			return AGENT_EXEC_TIMEOUT;
		}
		struct timespec ts = {0, wait_us * 1000};
		if (nanosleep(&ts, NULL) < 0 && interrupted(a)) {
			exec_kill(a, pid);
			vm_set_err(err, "interrupted");
			return AGENT_EXEC_FAILED;
		}
		wait_us = wait_us * 2 > 50000 ? 50000 : wait_us * 2;
	}
}

/* Run a helper command in the guest; its status and stdout (malloc'd). */
struct capture {
	struct buf out;
};

static int capture_out(void *ctx, int stream, const char *data, size_t len)
{
	if (stream == AGENT_STDOUT)
		buf_add(&((struct capture *)ctx)->out, data, len);
	return 0;
}

static int run_helper(struct agent *a, const char *const *argv, int *status, char **out, char **err)
{
	struct capture c = {0};
	struct agent_exec e = {.argv = argv, .timeout_ms = AGENT_CMD_MS, .output = capture_out, .ctx = &c};
	int r = agent_exec(a, &e, status, err);
	if (r == 0 && out)
		*out = c.out.s ? c.out.s : xstrdup("");
	else
		buf_free(&c.out);
	return r < 0 ? -1 : 0;
}

/* ---- files ---- */

static int file_open(struct agent *a, const char *path, const char *mode, int64_t *handle, char **err)
{
	struct json_object *args = json_object_new_object(), *ret = NULL;
	json_object_object_add(args, "path", json_object_new_string(path));
	json_object_object_add(args, "mode", json_object_new_string(mode));
	int r = agent_command(a, "guest-file-open", args, AGENT_CMD_MS, &ret, err);
	json_object_put(args);
	if (r < 0)
		return -1;
	*handle = json_object_get_int64(ret);
	json_object_put(ret);
	return 0;
}

static int file_close(struct agent *a, int64_t handle, char **err)
{
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "handle", json_object_new_int64(handle));
	int r = agent_command(a, "guest-file-close", args, AGENT_CMD_MS, NULL, err);
	json_object_put(args);
	return r;
}

/* Fill buf from fd up to n bytes (short only at the end); -1 on error. */
static ssize_t read_full(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int agent_file_put(struct agent *a, int fd_in, const char *path, int mode, uint64_t *bytes, char **err)
{
	int64_t h;
	uint64_t total = 0;
	if (file_open(a, path, "w", &h, err) < 0)
		return -1;
	/* One write at a time: qemu-ga 7.2 loses the reply to a request that
	 * arrives while it handles a big one (tried: two writes in flight) */
	char *buf = xmalloc(AGENT_WRITE_CHUNK);
	int r = 0;
	for (;;) {
		ssize_t n = read_full(fd_in, buf, AGENT_WRITE_CHUNK);
		if (n < 0) {
			vm_set_err(err, "reading: %s", strerror(errno));
			r = -1;
			break;
		}
		if (n == 0)
			break;
		char *enc = agent_b64_encode(buf, (size_t)n);
		struct json_object *args = json_object_new_object(), *ret = NULL, *v;
		json_object_object_add(args, "handle", json_object_new_int64(h));
		json_object_object_add(args, "buf-b64", json_object_new_string(enc));
		free(enc);
		r = agent_command(a, "guest-file-write", args, AGENT_CMD_MS, &ret, err);
		json_object_put(args);
		if (r < 0)
			break;
		int64_t wrote = json_object_object_get_ex(ret, "count", &v) ? json_object_get_int64(v) : -1;
		json_object_put(ret);
		if (wrote != n) {
			vm_set_err(err, "%s: the guest wrote %" PRId64 " of %zd bytes", path, wrote, n);
			r = -1;
			break;
		}
		total += (uint64_t)n;
		if (interrupted(a)) {
			vm_set_err(err, "interrupted");
			r = -1;
			break;
		}
	}
	free(buf);
	char *e2 = NULL;
	if (file_close(a, h, r < 0 ? &e2 : err) < 0 && r == 0)
		r = -1;
	free(e2);
	if (r == 0 && mode >= 0) {
		char m[16];
		snprintf(m, sizeof m, "%o", mode & 07777);
		const char *const av[] = {"chmod", m, "--", path, NULL};
		int st;
		if (run_helper(a, av, &st, NULL, err) < 0)
			r = -1;
		else if (st != 0) {
			vm_set_err(err, "%s: chmod %s in the guest failed (status %d)", path, m, st);
			r = -1;
		}
	}
	if (bytes)
		*bytes = total;
	return r;
}

int agent_file_get(struct agent *a, const char *path, int fd_out, int *mode, uint64_t *bytes, char **err)
{
	int64_t h;
	uint64_t total = 0;
	if (file_open(a, path, "r", &h, err) < 0)
		return -1;
	if (mode) {
		*mode = -1;
		const char *const av[] = {"stat", "-L", "-c", "%a", "--", path, NULL};
		char *out = NULL, *e = NULL;
		int st;
		if (run_helper(a, av, &st, &out, &e) == 0 && st == 0) {
			char *end;
			long m = strtol(out, &end, 8);
			if (end != out && (*end == '\n' || !*end) && m >= 0 && m <= 07777)
				*mode = (int)m;
		}
		free(out);
		free(e);
	}
	int r = 0;
	for (bool eof = false; !eof;) {
		struct json_object *args = json_object_new_object(), *ret = NULL, *v;
		json_object_object_add(args, "handle", json_object_new_int64(h));
		json_object_object_add(args, "count", json_object_new_int64(AGENT_READ_CHUNK));
		r = agent_command(a, "guest-file-read", args, AGENT_CMD_MS, &ret, err);
		json_object_put(args);
		if (r < 0)
			break;
		eof = json_object_object_get_ex(ret, "eof", &v) && json_object_get_boolean(v);
		size_t n = 0;
		unsigned char *data = NULL;
		if (json_object_object_get_ex(ret, "buf-b64", &v))
			data = agent_b64_decode(json_object_get_string(v), &n);
		if (!data) {
			vm_set_err(err, "guest-file-read: no base64 data in the reply");
			json_object_put(ret);
			r = -1;
			break;
		}
		if (n == 0)
			eof = true;
		json_object_put(ret);
		if (write_full(fd_out, data, n) < 0) {
			vm_set_err(err, "writing: %s", strerror(errno));
			free(data);
			r = -1;
			break;
		}
		free(data);
		total += n;
		if (interrupted(a)) {
			vm_set_err(err, "interrupted");
			r = -1;
			break;
		}
	}
	char *e2 = NULL;
	if (file_close(a, h, r < 0 ? &e2 : err) < 0 && r == 0)
		r = -1;
	free(e2);
	if (bytes)
		*bytes = total;
	return r;
}
