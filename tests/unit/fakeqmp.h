/* A scripted fake QMP peer for unit tests: a forked child on a socketpair
 * runs a script (p_greet, p_expect, p_reply ...; no cmocka there, a wrong
 * command is _exit(5)), the test talks to it through lib/qmp.c (start_ok,
 * end_peer checks that the script ran to its end). */
#ifndef TEST_FAKEQMP_H
#define TEST_FAKEQMP_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qmp.h"
#include "testutil.h"

/* A file may greet otherwise (test_launch: without oob) by defining it first. */
#ifndef GREETING
#define GREETING                                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "          \
	"\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n"
#endif

/* ---- the peer's side (runs in the child; no cmocka there) ---- */

static inline void p_write(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return; /* the client has what it wanted and left */
			_exit(3);
		}
		s += w;
		n -= (size_t)w;
	}
}

static inline void p_puts(int fd, const char *s)
{
	p_write(fd, s, strlen(s));
}

/* Dribble s out chunk bytes at a time so the client sees many partial reads. */
static inline void p_slow(int fd, const char *s, size_t chunk)
{
	for (size_t n = strlen(s); n > 0;) {
		size_t k = n < chunk ? n : chunk;
		p_write(fd, s, k);
		s += k;
		n -= k;
		struct timespec ts = {0, 200 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* One command line from the client, parsed; NULL at EOF. With saw_ff (the
 * guest agent's framing), 0xFF bytes before it are dropped and *saw_ff says
 * whether there were any; without, they stay in the line. */
static inline struct json_object *p_read_cmd_ff(int fd, bool *saw_ff)
{
	struct buf b = {0};
	unsigned char c;
	if (saw_ff)
		*saw_ff = false;
	for (;;) {
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf_free(&b);
			return NULL;
		}
		if (c == 0xFF && saw_ff) {
			*saw_ff = true;
			continue;
		}
		if (c == '\n')
			break;
		buf_add(&b, (char *)&c, 1);
	}
	struct json_object *o = json_tokener_parse(b.s ? b.s : "");
	buf_free(&b);
	return o;
}

static inline struct json_object *p_read_cmd(int fd)
{
	return p_read_cmd_ff(fd, NULL);
}

static inline long p_id(struct json_object *cmd)
{
	struct json_object *v;
	if (!json_object_object_get_ex(cmd, "id", &v))
		_exit(4);
	return (long)json_object_get_int64(v);
}

static inline const char *p_exec(struct json_object *cmd)
{
	struct json_object *v;
	json_object_object_get_ex(cmd, "execute", &v);
	return json_object_get_string(v);
}

static inline long p_expect(int fd, const char *execute)
{
	struct json_object *cmd = p_read_cmd(fd);
	if (!cmd || strcmp(p_exec(cmd), execute) != 0)
		_exit(5);
	long id = p_id(cmd);
	json_object_put(cmd);
	return id;
}

static inline void p_reply(int fd, long id, const char *ret)
{
	char *s = xasprintf("{\"return\": %s, \"id\": %ld}\r\n", ret, id);
	p_puts(fd, s);
	free(s);
}

static inline void p_greet(int fd)
{
	p_puts(fd, GREETING);
	p_reply(fd, p_expect(fd, "qmp_capabilities"), "{}");
}

/* Wait for the client to hang up. */
static inline void p_drain(int fd)
{
	char c;
	while (read(fd, &c, 1) > 0 || errno == EINTR)
		;
}

static inline const char *event_text(const char *name)
{
	static char s[256];
	snprintf(s, sizeof s,
		 "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"%s\"}\r\n",
		 name);
	return s;
}

/* ---- the test's side ---- */

static pid_t peer_pid __attribute__((unused));

/* The peer, fn, forked on a socketpair; the test's end of it. */
static inline int fork_peer(void (*fn)(int))
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	peer_pid = fork();
	assert_true(peer_pid >= 0);
	if (peer_pid == 0) {
		close(sv[0]);
		fn(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	return sv[0];
}

/* Reap the peer (its socket closed); it must have run its script to the end. */
static inline void reap_peer(void)
{
	int st;
	assert_int_equal(waitpid(peer_pid, &st, 0), peer_pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("peer failed: status %d", st);
}

static inline struct qmp *start_peer(void (*fn)(int), int timeout_ms, char **err)
{
	return qmp_open_fd(fork_peer(fn), timeout_ms, err);
}

static inline void end_peer(struct qmp *q)
{
	qmp_close(q);
	reap_peer();
}

static inline struct qmp *start_ok(void (*fn)(int))
{
	char *err = NULL;
	struct qmp *q = start_peer(fn, 5000, &err);
	if (!q)
		fail_msg("handshake: %s", err);
	return q;
}


/* The next command must be execute with these string arguments (key, value,
 * ... NULL; a NULL value: the key is absent); the command's id. */
static inline long p_expect_args(int fd, const char *execute, ...)
{
	struct json_object *cmd = p_read_cmd(fd), *args = NULL, *v;
	if (!cmd || strcmp(p_exec(cmd), execute) != 0)
		_exit(5);
	json_object_object_get_ex(cmd, "arguments", &args);
	va_list ap;
	va_start(ap, execute);
	for (const char *k; (k = va_arg(ap, const char *));) {
		const char *want = va_arg(ap, const char *);
		bool has = args && json_object_object_get_ex(args, k, &v);
		if (want ? !has || strcmp(json_object_get_string(v), want) : has)
			_exit(6);
	}
	va_end(ap);
	long id = p_id(cmd);
	json_object_put(cmd);
	return id;
}

/* An error reply of class GenericError. */
static inline void p_error(int fd, long id, const char *desc)
{
	char *s = xasprintf("{\"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}, \"id\": %ld}\r\n",
			    desc, id);
	p_puts(fd, s);
	free(s);
}

#endif
