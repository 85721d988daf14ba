/* lib/qmp.c against a scripted fake QMP peer (a forked child on a
 * socketpair), and lib/qmp_args.c: key=value parsing and schema checks. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "fakeqmp.h"
#include "qmp.h"
#include "qmp_args.h"
#include "testutil.h"


static long long ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *jstring(struct json_object *o, const char *key)
{
	struct json_object *v;
	assert_true(json_object_object_get_ex(o, key, &v));
	return xstrdup(json_object_get_string(v));
}

static void check_str(struct json_object *o, const char *key, const char *want)
{
	char *s = jstring(o, key);
	assert_string_equal(s, want);
	free(s);
}

/* basic: greeting, capabilities, a command and its return */
static void peer_basic(int fd)
{
	p_greet(fd);
	long id = p_expect(fd, "query-status");
	p_reply(fd, id, "{\"status\": \"running\", \"running\": true}");
	p_drain(fd);
}

static void basic(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_basic);
	struct json_object *ret = NULL;
	char *err = NULL;
	assert_non_null(qmp_greeting(q));
	assert_int_equal(qmp_execute(q, "query-status", NULL, 2000, &ret, &err), 0);
	check_str(ret, "status", "running");
	json_object_put(ret);
	end_peer(q);
}

/* every message dribbled out two bytes at a time */
static void peer_split(int fd)
{
	p_slow(fd, GREETING, 2);
	long id = p_expect(fd, "qmp_capabilities");
	char *s = xasprintf("{\"return\": {}, \"id\": %ld}\r\n", id);
	p_slow(fd, s, 1);
	free(s);
	id = p_expect(fd, "query-name");
	/* split inside a multi-byte UTF-8 character and a \u escape */
	s = xasprintf("{\"return\": {\"name\": \"caf\xc3\xa9 \\u2603\"}, \"id\": %ld}\r\n", id);
	p_slow(fd, s, 1);
	free(s);
	p_drain(fd);
}

static void split_messages(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_split);
	struct json_object *ret = NULL;
	char *err = NULL;
	assert_int_equal(qmp_execute(q, "query-name", NULL, 5000, &ret, &err), 0);
	check_str(ret, "name", "caf\xc3\xa9 \xe2\x98\x83");
	json_object_put(ret);
	end_peer(q);
}

/* greeting and an event in one write, capabilities reply and an event in
 * another (no line end between them); then two
 * commands answered out of order in one write, with events around them */
static void peer_merged_main(int fd)
{
	long a = p_expect(fd, "cmd-a");
	long b = p_expect(fd, "cmd-b");
	struct buf s = {0};
	buf_puts(&s, event_text("STOP"));
	buf_printf(&s, "{\"return\": \"b\", \"id\": %ld}\r\n", b);
	buf_puts(&s, event_text("RESUME"));
	buf_printf(&s, "{\"return\": \"a\", \"id\": %ld}", a);
	buf_puts(&s, event_text("RESET"));
	p_write(fd, s.s, s.len);
	buf_free(&s);
	p_drain(fd);
}

static void peer_merged_all(int fd)
{
	char *s = xasprintf("%s%s", GREETING, event_text("EARLY"));
	p_puts(fd, s);
	free(s);
	long id = p_expect(fd, "qmp_capabilities");
	s = xasprintf("{\"return\": {}, \"id\": %ld}%s", id, event_text("EARLY2"));
	p_puts(fd, s);
	free(s);
	peer_merged_main(fd);
}

static void expect_event(struct qmp *q, const char *name)
{
	struct json_object *ev = NULL;
	char *err = NULL;
	assert_int_equal(qmp_next_event(q, 1000, &ev, &err), 1);
	check_str(ev, "event", name);
	json_object_put(ev);
}

static void merged_messages(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_merged_all);
	struct json_object *msg = NULL;
	char *err = NULL;
	long a = qmp_send(q, "cmd-a", NULL, &err);
	long b = qmp_send(q, "cmd-b", NULL, &err);
	assert_true(a > 0 && b > a);
	/* a's reply comes last; b's is stashed meanwhile */
	assert_int_equal(qmp_read_reply(q, a, 2000, &msg, &err), 0);
	check_str(msg, "return", "a");
	json_object_put(msg);
	assert_int_equal(qmp_read_reply(q, b, 0, &msg, &err), 0);
	check_str(msg, "return", "b");
	json_object_put(msg);
	/* the events, in order, RESET included though it followed a reply
	 * without a line end */
	expect_event(q, "EARLY");
	expect_event(q, "EARLY2");
	expect_event(q, "STOP");
	expect_event(q, "RESUME");
	expect_event(q, "RESET");
	struct json_object *ev = NULL;
	assert_int_equal(qmp_next_event(q, 0, &ev, &err), 0);
	end_peer(q);
}

/* events between replies; waiting for one event by name keeps the others */
static void peer_events(int fd)
{
	p_greet(fd);
	long id = p_expect(fd, "stop");
	p_puts(fd, event_text("A"));
	p_puts(fd, event_text("B"));
	p_reply(fd, id, "{}");
	p_puts(fd, event_text("C"));
	id = p_expect(fd, "cont");
	p_puts(fd, event_text("D"));
	p_reply(fd, id, "{}");
	p_drain(fd);
}

static void events_between_replies(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_events);
	char *err = NULL;
	struct json_object *ev = NULL;
	assert_int_equal(qmp_execute(q, "stop", NULL, 2000, NULL, &err), 0);
	assert_int_equal(qmp_execute(q, "cont", NULL, 2000, NULL, &err), 0);
	assert_int_equal(qmp_wait_event(q, "C", 1000, &ev, &err), 1);
	check_str(ev, "event", "C");
	json_object_put(ev);
	assert_int_equal(qmp_events_queued(q), 3);
	expect_event(q, "A");
	expect_event(q, "B");
	expect_event(q, "D");
	assert_int_equal(qmp_wait_event(q, "NEVER", 50, &ev, &err), 0);
	assert_true(qmp_last_was_timeout(q));
	end_peer(q);
}

/* the peer goes away in the middle of a reply */
static void peer_vanish(int fd)
{
	p_greet(fd);
	long id = p_expect(fd, "query-block");
	char *s = xasprintf("{\"return\": [{\"device\": \"ide0\", \"id\": %ld", id);
	p_puts(fd, s);
	free(s);
	/* exit: the socket closes */
}

static void peer_vanishes(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_vanish);
	struct json_object *ret = NULL;
	char *err = NULL;
	long long t0 = ms_now();
	assert_int_equal(qmp_execute(q, "query-block", NULL, 5000, &ret, &err), -1);
	assert_true(ms_now() - t0 < 2000); /* noticed at once, not at the timeout */
	assert_non_null(strstr(err, "closed in the middle"));
	assert_false(qmp_last_was_timeout(q));
	assert_false(qmp_last_was_qmp_error(q));
	assert_true(qmp_is_closed(q));
	free(err);
	/* later calls fail the same way, without hanging */
	assert_int_equal(qmp_execute(q, "query-status", NULL, 5000, &ret, &err), -1);
	free(err);
	assert_int_equal(qmp_next_event(q, -1, &ret, &err), -1);
	free(err);
	end_peer(q);
}

/* a peer that reads commands and never answers */
static void peer_silent(int fd)
{
	p_greet(fd);
	p_expect(fd, "query-status");
	long id = p_expect(fd, "query-name");
	p_reply(fd, id, "{\"name\": \"late\"}");
	/* and now an answer to the first: too late, it must be dropped */
	p_reply(fd, 2, "{\"status\": \"late\"}");
	id = p_expect(fd, "query-kvm");
	p_reply(fd, id, "{\"enabled\": false}");
	p_drain(fd);
}

static void never_answers(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_silent);
	struct json_object *ret = NULL;
	char *err = NULL;
	long long t0 = ms_now();
	assert_int_equal(qmp_execute(q, "query-status", NULL, 200, &ret, &err), -1);
	long long took = ms_now() - t0;
	assert_true(took >= 190 && took < 1500);
	assert_true(qmp_last_was_timeout(q));
	assert_non_null(strstr(err, "timed out"));
	free(err);
	/* the connection still works; the late reply does not confuse it */
	assert_int_equal(qmp_execute(q, "query-name", NULL, 2000, &ret, &err), 0);
	check_str(ret, "name", "late");
	json_object_put(ret);
	assert_int_equal(qmp_execute(q, "query-kvm", NULL, 2000, &ret, &err), 0);
	json_object_put(ret);
	end_peer(q);
}

/* no greeting at all (another client holds QEMU's monitor) */
static void peer_mute(int fd)
{
	p_drain(fd);
}

static void greeting_timeout(void **state)
{
	(void)state;
	char *err = NULL;
	long long t0 = ms_now();
	struct qmp *q = start_peer(peer_mute, 150, &err);
	assert_null(q);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(ms_now() - t0 < 1500);
	assert_non_null(strstr(err, "greeting"));
	free(err);
	int st;
	waitpid(peer_pid, &st, 0);
}

/* a 1 MB reply, and a 1 MB command sent while the peer writes 1 MB of
 * events without reading (the client must read while it writes) */
#define BIG (1 << 20)
static void peer_big(int fd)
{
	p_greet(fd);
	long id = p_expect(fd, "big");
	struct buf s = {0};
	buf_puts(&s, "{\"return\": {\"data\": \"");
	for (int i = 0; i < BIG / 16; i++)
		buf_puts(&s, "0123456789abcdef");
	buf_printf(&s, "\", \"list\": [");
	for (int i = 0; i < 10000; i++)
		buf_printf(&s, "%s%d", i ? "," : "", i);
	buf_printf(&s, "]}, \"id\": %ld}\r\n", id);
	p_write(fd, s.s, s.len);
	buf_free(&s);
	/* wait for the start of the big command, then flood before reading on */
	char c;
	if (read(fd, &c, 1) != 1)
		_exit(7);
	for (int i = 0; i < BIG / 64; i++)
		p_puts(fd, event_text("FLOOD"));
	struct json_object *cmd = p_read_cmd(fd); /* the rest of it */
	if (!cmd)
		_exit(8);
	json_object_put(cmd);
	p_reply(fd, 99, "{}"); /* not its id: dropped */
	p_drain(fd);
}

static void huge_messages(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_big);
	struct json_object *ret = NULL, *v;
	char *err = NULL;
	assert_int_equal(qmp_execute(q, "big", NULL, 10000, &ret, &err), 0);
	assert_true(json_object_object_get_ex(ret, "data", &v));
	assert_int_equal(json_object_get_string_len(v), BIG);
	assert_true(json_object_object_get_ex(ret, "list", &v));
	assert_int_equal(json_object_array_length(v), 10000);
	json_object_put(ret);

	struct buf big = {0};
	for (int i = 0; i < BIG / 16; i++)
		buf_puts(&big, "fedcba9876543210");
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "blob", json_object_new_string(big.s));
	buf_free(&big);
	long id = qmp_send(q, "huge", args, &err);
	if (id < 0)
		fail_msg("send: %s", err);
	json_object_put(args);
	/* the flood was read while sending; the queue keeps the newest */
	assert_true(qmp_events_queued(q) > 0);
	end_peer(q);
}

/* invalid JSON from the peer */
static void peer_garbage(int fd)
{
	p_greet(fd);
	p_expect(fd, "query-status");
	p_puts(fd, "{\"return\": nope}\r\n");
	p_drain(fd);
}

static void invalid_json(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_garbage);
	struct json_object *ret = NULL;
	char *err = NULL;
	assert_int_equal(qmp_execute(q, "query-status", NULL, 2000, &ret, &err), -1);
	assert_non_null(strstr(err, "invalid JSON"));
	assert_false(qmp_last_was_timeout(q));
	free(err);
	assert_true(qmp_is_closed(q));
	end_peer(q);
}

static void peer_nul(int fd)
{
	p_puts(fd, "{\"QMP\": {\"version\"");
	p_write(fd, "\0", 1);
	p_drain(fd);
}

static void nul_byte(void **state)
{
	(void)state;
	char *err = NULL;
	struct qmp *q = start_peer(peer_nul, 2000, &err);
	assert_null(q);
	assert_non_null(strstr(err, "invalid JSON"));
	free(err);
	int st;
	waitpid(peer_pid, &st, 0);
}

/* QMP error replies, an error without an id, and a raw object's own id */
static void peer_errors(int fd)
{
	p_greet(fd);
	long id = p_expect(fd, "blockdev-del");
	char *s = xasprintf("{\"id\": %ld, \"error\": {\"class\": \"GenericError\", "
			    "\"desc\": \"Failed to find node with node-name='nope'\"}}\r\n",
			    id);
	p_puts(fd, s);
	free(s);
	/* a reply without id belongs to the oldest request */
	p_expect(fd, "first");
	p_expect(fd, "second");
	p_puts(fd, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n");
	p_reply(fd, 4, "\"second\"");
	/* the client's raw object with an id of its own */
	struct json_object *cmd = p_read_cmd(fd);
	if (!cmd || strcmp(p_exec(cmd), "query-name") != 0)
		_exit(9);
	p_reply(fd, p_id(cmd), "{}");
	json_object_put(cmd);
	/* HMP */
	id = p_expect(fd, "human-monitor-command");
	p_reply(fd, id, "\"VM status: running\\r\\n\"");
	p_drain(fd);
}

static void qmp_errors(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_errors);
	struct json_object *ret = NULL, *msg = NULL, *args = json_object_new_object();
	char *err = NULL;
	json_object_object_add(args, "node-name", json_object_new_string("nope"));
	assert_int_equal(qmp_execute(q, "blockdev-del", args, 2000, &ret, &err), -1);
	json_object_put(args);
	assert_string_equal(err, "GenericError: Failed to find node with node-name='nope'");
	assert_true(qmp_last_was_qmp_error(q));
	assert_false(qmp_last_was_timeout(q));
	free(err);

	long a = qmp_send(q, "first", NULL, &err);
	long b = qmp_send(q, "second", NULL, &err);
	assert_int_equal(b, 4);
	assert_int_equal(qmp_read_reply(q, b, 2000, &msg, &err), 0);
	check_str(msg, "return", "second");
	json_object_put(msg);
	assert_int_equal(qmp_read_reply(q, a, 0, &msg, &err), 0);
	char *e = qmp_error_string(msg);
	assert_string_equal(e, "GenericError: JSON parse error");
	free(e);
	json_object_put(msg);

	struct json_object *raw = json_tokener_parse("{\"execute\": \"query-name\", \"id\": [\"mine\"]}");
	long id = qmp_send_object(q, raw, &err);
	assert_true(id > 0);
	assert_int_equal(qmp_read_reply(q, id, 2000, &msg, &err), 0);
	struct json_object *v;
	assert_true(json_object_object_get_ex(msg, "id", &v));
	assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), "[\"mine\"]");
	json_object_put(msg);
	/* the caller's object is left as it was */
	assert_true(json_object_object_get_ex(raw, "id", &v));
	assert_true(json_object_is_type(v, json_type_array));
	json_object_put(raw);
	raw = json_tokener_parse("{\"arguments\": {}}");
	assert_int_equal(qmp_send_object(q, raw, &err), -1);
	free(err);
	json_object_put(raw);

	char *out = NULL;
	assert_int_equal(qmp_hmp(q, "info status", 2000, &out, &err), 0);
	assert_string_equal(out, "VM status: running\r\n");
	free(out);
	end_peer(q);
}

/* qmp_capabilities goes out before the greeting is read (this peer greets
 * only once it has it), and its reply is not waited for */
static void peer_caps_first(int fd)
{
	long id = p_expect(fd, "qmp_capabilities");
	p_puts(fd, GREETING);
	p_reply(fd, id, "{}");
	p_reply(fd, p_expect(fd, "query-name"), "{\"name\": \"early\"}");
	p_drain(fd);
}

static void caps_before_greeting(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_caps_first);
	struct json_object *ret = NULL;
	char *err = NULL;
	assert_int_equal(qmp_execute(q, "query-name", NULL, 2000, &ret, &err), 0);
	check_str(ret, "name", "early");
	json_object_put(ret);
	end_peer(q);
}

/* a refused qmp_capabilities fails the next command with QEMU's words */
static void peer_caps_refused(int fd)
{
	p_puts(fd, GREETING);
	long id = p_expect(fd, "qmp_capabilities");
	char *s = xasprintf("{\"error\": {\"class\": \"GenericError\", \"desc\": "
			    "\"no capabilities for you\"}, \"id\": %ld}\r\n", id);
	p_puts(fd, s);
	free(s);
	p_drain(fd);
}

static void caps_refused(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_caps_refused);
	char *err = NULL;
	assert_int_equal(qmp_execute(q, "query-name", NULL, 2000, NULL, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "qmp_capabilities: GenericError: no capabilities for you"));
	free(err);
	assert_true(qmp_is_closed(q));
	end_peer(q);
}

/* ordered: commands go out without ids and replies are matched by order;
 * the late reply of an abandoned request is dropped, not handed to the
 * next one; a raw command's own id comes back in its reply */
static void p_expect_noid(int fd, const char *execute)
{
	struct json_object *cmd = p_read_cmd(fd);
	if (!cmd || strcmp(p_exec(cmd), execute) != 0)
		_exit(5);
	if (json_object_object_get_ex(cmd, "id", NULL))
		_exit(6);
	json_object_put(cmd);
}

static void peer_ordered(int fd)
{
	p_greet(fd);
	p_expect_noid(fd, "cmd-a");
	p_expect_noid(fd, "cmd-b");
	p_expect_noid(fd, "cmd-c");
	p_puts(fd, "{\"return\": \"a\"}\r\n");
	p_puts(fd, event_text("STOP"));
	p_puts(fd, "{\"return\": \"b\"}\r\n{\"return\": \"c\"}\r\n");
	p_drain(fd);
}

static void ordered_replies(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_ordered);
	struct json_object *msg = NULL, *v;
	char *err = NULL;
	qmp_set_ordered(q, true);
	long a = qmp_send(q, "cmd-a", NULL, &err);
	long b = qmp_send(q, "cmd-b", NULL, &err);
	struct json_object *raw = json_tokener_parse("{\"execute\": \"cmd-c\", \"id\": \"mine\"}");
	long c = qmp_send_object(q, raw, &err);
	json_object_put(raw);
	assert_true(a > 0 && b > a && c > b);
	qmp_abandon(q, a);
	assert_int_equal(qmp_read_reply(q, b, 2000, &msg, &err), 0);
	check_str(msg, "return", "b");
	json_object_put(msg);
	assert_int_equal(qmp_read_reply(q, c, 2000, &msg, &err), 0);
	check_str(msg, "return", "c");
	assert_true(json_object_object_get_ex(msg, "id", &v));
	assert_string_equal(json_object_get_string(v), "mine");
	json_object_put(msg);
	expect_event(q, "STOP");
	end_peer(q);
}

/* qmp_connect over a real socket path, longer than sun_path allows */
static void connect_paths(void **state)
{
	(void)state;
	char *tmp = test_tmpdir();
	struct buf dir = {0};
	buf_puts(&dir, tmp);
	for (int i = 0; i < 6; i++)
		buf_puts(&dir, "/a-rather-long-folder-name");
	assert_int_equal(mkdir_p(dir.s, 0700), 0);
	char *path = path_join(dir.s, "qmp.sock");
	assert_true(strlen(path) > sizeof(((struct sockaddr_un *)0)->sun_path));
	char *err = NULL;

	/* nothing there */
	assert_null(qmp_connect(path, 1000, &err));
	assert_int_equal(errno, ENOENT);
	free(err);

	/* listen there (through the same /proc trick the library uses) */
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int dfd = open(dir.s, O_PATH | O_DIRECTORY);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/qmp.sock", dfd);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
	close(dfd);
	assert_int_equal(listen(ls, 4), 0);
	peer_pid = fork();
	if (peer_pid == 0) {
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			_exit(10);
		peer_basic(c);
		_exit(0);
	}
	close(ls);
	struct qmp *q = qmp_connect(path, 2000, &err);
	if (!q)
		fail_msg("connect: %s", err);
	struct json_object *ret = NULL;
	assert_int_equal(qmp_execute(q, "query-status", NULL, 2000, &ret, &err), 0);
	json_object_put(ret);
	end_peer(q);

	/* a socket file nobody listens on */
	assert_null(qmp_connect(path, 1000, &err));
	assert_int_equal(errno, ECONNREFUSED);
	free(err);

	rm_rf(tmp);
	free(tmp);
	free(path);
	buf_free(&dir);
}

/* ---- qmp_args ---- */

static char *args_json(int argc, char *const argv[])
{
	char *err = NULL;
	struct json_object *o = qmp_parse_args(argc, argv, &err);
	if (!o)
		return err;
	char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static void parse_args(void **state)
{
	(void)state;
	char *const a[] = {"n=1",
			   "f=-2.5",
			   "b=true",
			   "z=null",
			   "s=hello world",
			   "q=\"42\"",
			   "l=[1, \"x\"]",
			   "o={\"k\": {}}",
			   "a.b.c=x",
			   "a.b.d=01",
			   "a.e=caf\xc3\xa9",
			   "empty=",
			   "nan=NaN",
			   "path=/dev/sda",
			   "eq=a=b"};
	char *s = args_json(15, a);
	assert_string_equal(s, "{\"n\":1,\"f\":-2.5,\"b\":true,\"z\":null,\"s\":\"hello world\","
			       "\"q\":\"42\",\"l\":[1,\"x\"],\"o\":{\"k\":{}},"
			       "\"a\":{\"b\":{\"c\":\"x\",\"d\":\"01\"},\"e\":\"caf\xc3\xa9\"},"
			       "\"empty\":\"\",\"nan\":\"NaN\",\"path\":\"/dev/sda\",\"eq\":\"a=b\"}");
	free(s);

	char *const dup[] = {"a=1", "a=2"};
	s = args_json(2, dup);
	assert_non_null(strstr(s, "more than once"));
	free(s);
	char *const clash[] = {"a=1", "a.b=2"};
	s = args_json(2, clash);
	assert_non_null(strstr(s, "already given"));
	free(s);
	char *const noeq[] = {"novalue"};
	s = args_json(1, noeq);
	assert_non_null(strstr(s, "KEY=VALUE"));
	free(s);
	char *const emptykey[] = {"a..b=1"};
	s = args_json(1, emptykey);
	assert_non_null(strstr(s, "empty key"));
	free(s);
}

static char *line_json(const char *line)
{
	char *err = NULL;
	struct json_object *o = qmp_parse_line(line, NULL, &err);
	if (!o)
		return err ? err : xstrdup("(nothing)");
	char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static void parse_lines(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"query-status", "{\"execute\":\"query-status\"}"},
	    {"  stop  ", "{\"execute\":\"stop\"}"},
	    {"", "(nothing)"},
	    {"# a comment", "(nothing)"},
	    {"blockdev-del node-name=123", "{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":123}}"},
	    {"blockdev-del node-name='123'", "{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"123\"}}"},
	    {"x a=\"two words\" b='it''s' c=a\\ b", "{\"execute\":\"x\",\"arguments\":{\"a\":\"two words\",\"b\":\"its\",\"c\":\"a b\"}}"},
	    {"x v={\"a b\": [1, 2]} w=[ 1 , {\"}\": \"]\"} ]", "{\"execute\":\"x\",\"arguments\":{\"v\":{\"a b\":[1,2]},\"w\":[1,{\"}\":\"]\"}]}}"},
	    {"x a.b=1 a.c=\"q\\\"x\"", "{\"execute\":\"x\",\"arguments\":{\"a\":{\"b\":1,\"c\":\"q\\\"x\"}}}"},
	    {"{\"execute\": \"stop\", \"id\": 7}  ", "{\"execute\":\"stop\",\"id\":7}"},
	    {"{\"execute\": 3}", "a JSON command needs \"execute\": \"NAME\""},
	    {"{\"execute\": \"x\"", "invalid JSON"},
	    {"x a='open", "unterminated '"},
	    {"x a={\"b\": 1", "unbalanced {"},
	    {"a=1", "expected a command name first"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *s = line_json(cases[i].in);
		if (strcmp(s, cases[i].out) != 0)
			fail_msg("%s\n  got  %s\n  want %s", cases[i].in, s, cases[i].out);
		free(s);
	}
}

/* A small schema in query-qmp-schema's shape. */
static const char schema_text[] =
    "["
    "{\"name\": \"str\", \"meta-type\": \"builtin\", \"json-type\": \"string\"},"
    "{\"name\": \"int\", \"meta-type\": \"builtin\", \"json-type\": \"int\"},"
    "{\"name\": \"bool\", \"meta-type\": \"builtin\", \"json-type\": \"boolean\"},"
    "{\"name\": \"null\", \"meta-type\": \"builtin\", \"json-type\": \"null\"},"
    "{\"name\": \"any\", \"meta-type\": \"builtin\", \"json-type\": \"value\"},"
    "{\"name\": \"0\", \"meta-type\": \"object\", \"members\": []},"
    "{\"name\": \"query-status\", \"meta-type\": \"command\", \"arg-type\": \"0\", \"ret-type\": \"1\"},"
    "{\"name\": \"1\", \"meta-type\": \"object\", \"members\": [{\"name\": \"running\", \"type\": \"bool\"}]},"
    "{\"name\": \"blockdev-change-medium\", \"meta-type\": \"command\", \"arg-type\": \"16\", \"ret-type\": \"0\"},"
    "{\"name\": \"16\", \"meta-type\": \"object\", \"members\": ["
    "  {\"name\": \"id\", \"type\": \"str\", \"default\": null},"
    "  {\"name\": \"filename\", \"type\": \"str\"},"
    "  {\"name\": \"force\", \"type\": \"bool\", \"default\": null},"
    "  {\"name\": \"read-only-mode\", \"type\": \"273\", \"default\": null}]},"
    "{\"name\": \"273\", \"meta-type\": \"enum\", \"values\": [\"retain\", \"read-only\", \"read-write\"]},"
    "{\"name\": \"netdev_add\", \"meta-type\": \"command\", \"arg-type\": \"100\", \"ret-type\": \"0\"},"
    "{\"name\": \"100\", \"meta-type\": \"object\", \"tag\": \"type\","
    "  \"members\": [{\"name\": \"id\", \"type\": \"str\"}, {\"name\": \"type\", \"type\": \"347\"}],"
    "  \"variants\": [{\"case\": \"user\", \"type\": \"349\"}, {\"case\": \"none\", \"type\": \"0\"}]},"
    "{\"name\": \"347\", \"meta-type\": \"enum\", \"values\": [\"user\", \"none\"]},"
    "{\"name\": \"349\", \"meta-type\": \"object\", \"members\": ["
    "  {\"name\": \"net\", \"type\": \"str\", \"default\": null},"
    "  {\"name\": \"hostfwd\", \"type\": \"[350]\", \"default\": null},"
    "  {\"name\": \"opts\", \"type\": \"351\", \"default\": null}]},"
    "{\"name\": \"[350]\", \"meta-type\": \"array\", \"element-type\": \"350\"},"
    "{\"name\": \"350\", \"meta-type\": \"object\", \"members\": [{\"name\": \"str\", \"type\": \"str\"}]},"
    "{\"name\": \"351\", \"meta-type\": \"object\", \"members\": [{\"name\": \"depth\", \"type\": \"int\"}, {\"name\": \"alt\", \"type\": \"352\", \"default\": null}]},"
    "{\"name\": \"352\", \"meta-type\": \"alternate\", \"members\": [{\"type\": \"str\"}, {\"type\": \"null\"}]},"
    "{\"name\": \"device_add\", \"meta-type\": \"command\", \"arg-type\": \"186\", \"ret-type\": \"0\"},"
    "{\"name\": \"186\", \"meta-type\": \"object\", \"members\": [{\"name\": \"driver\", \"type\": \"str\"}, {\"name\": \"id\", \"type\": \"str\", \"default\": null}]},"
    "{\"name\": \"SHUTDOWN\", \"meta-type\": \"event\", \"arg-type\": \"0\"}"
    "]";

static char *check(const struct qmp_schema *s, const char *line)
{
	char *err = NULL;
	bool shorthand;
	struct json_object *cmd = qmp_parse_line(line, &shorthand, &err), *v, *args = NULL;
	if (!cmd)
		return err;
	json_object_object_get_ex(cmd, "execute", &v);
	json_object_object_get_ex(cmd, "arguments", &args);
	char *out;
	if (qmp_schema_check(s, json_object_get_string(v), args, shorthand, &err) < 0)
		out = err;
	else
		out = xstrdup(args ? json_object_to_json_string_ext(
					 args, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
				   : "ok");
	json_object_put(cmd);
	return out;
}

static void schema_checks(void **state)
{
	(void)state;
	struct json_object *j = json_tokener_parse(schema_text);
	assert_non_null(j);
	struct qmp_schema *s = qmp_schema_new(j);
	json_object_put(j);
	assert_non_null(s);
	const struct strv *cmds = qmp_schema_commands(s);
	assert_int_equal(cmds->n, 4);
	assert_string_equal(cmds->v[0], "blockdev-change-medium");
	assert_string_equal(cmds->v[3], "query-status");

	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"query-status", "ok"},
	    {"query-stat", "unknown command 'query-stat'"},
	    {"query-status x=1", "query-status: unknown argument 'x'"},
	    {"blockdev-change-medium", "blockdev-change-medium: missing argument 'filename'"},
	    {"blockdev-change-medium filename=123 id=7", "{\"filename\":\"123\",\"id\":\"7\"}"},
	    {"blockdev-change-medium filename=a force=yes", "blockdev-change-medium: argument 'force': expected bool, got string"},
	    {"blockdev-change-medium filename=a read-only-mode=rw", "blockdev-change-medium: argument 'read-only-mode': 'rw' is not one of: retain, read-only, read-write"},
	    {"{\"execute\": \"blockdev-change-medium\", \"arguments\": {\"filename\": 1}}", "blockdev-change-medium: argument 'filename': expected str, got int"},
	    {"netdev_add id=n type=user net=10.0.0.0/8", "{\"id\":\"n\",\"type\":\"user\",\"net\":\"10.0.0.0/8\"}"},
	    {"netdev_add id=n type=none net=x", "netdev_add: unknown argument 'net'"},
	    {"netdev_add id=n type=usr net=x", "netdev_add: argument 'type': 'usr' is not one of: user, none"},
	    {"netdev_add id=n type=user hostfwd=[{\"str\": \"tcp::1-:2\"}, {}]", "netdev_add: missing argument 'hostfwd[1].str'"},
	    {"netdev_add id=n type=user opts.depth=x", "netdev_add: argument 'opts.depth': expected int, got string"},
	    {"netdev_add id=n type=user opts.depth=1 opts.alt=null", "{\"id\":\"n\",\"type\":\"user\",\"opts\":{\"depth\":1,\"alt\":null}}"},
	    {"netdev_add id=n type=user opts.depth=1 opts.alt=5", "{\"id\":\"n\",\"type\":\"user\",\"opts\":{\"depth\":1,\"alt\":\"5\"}}"},
	    {"netdev_add id=n type=user opts.depth=1 opts.alt=[]", "netdev_add: argument 'opts.alt': expected str or null, got array"},
	    {"device_add driver=virtio-blk-pci drive=d0 id=x", "{\"driver\":\"virtio-blk-pci\",\"drive\":\"d0\",\"id\":\"x\"}"},
	    {"device_add drive=d0", "device_add: missing argument 'driver'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *got = check(s, cases[i].in);
		if (strcmp(got, cases[i].out) != 0)
			fail_msg("%s\n  got  %s\n  want %s", cases[i].in, got, cases[i].out);
		free(got);
	}

	struct strv c = {0};
	qmp_schema_complete(s, "blockdev-change-medium", "f", &c);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.v[0], "filename=");
	assert_string_equal(c.v[1], "force=");
	strv_free(&c);
	qmp_schema_complete(s, "blockdev-change-medium", "read-only-mode=read-", &c);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.v[0], "read-only-mode=read-only");
	strv_free(&c);
	qmp_schema_complete(s, "blockdev-change-medium", "force=t", &c);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.v[0], "force=true");
	strv_free(&c);
	qmp_schema_complete(s, "netdev_add", "o", &c);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.v[0], "opts.");
	strv_free(&c);
	qmp_schema_complete(s, "netdev_add", "opts.d", &c);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.v[0], "opts.depth=");
	strv_free(&c);
	qmp_schema_complete(s, "nosuch", "x", &c);
	assert_int_equal(c.n, 0);

	struct buf b = {0};
	assert_int_equal(qmp_schema_describe(s, "blockdev-change-medium", &b), 0);
	assert_non_null(strstr(b.s, "filename        str\n"));
	assert_non_null(strstr(b.s, "read-only-mode  enum (optional): retain read-only read-write\n"));
	assert_non_null(strstr(b.s, "returns: {}"));
	b.len = 0;
	assert_int_equal(qmp_schema_describe(s, "netdev_add", &b), 0);
	assert_non_null(strstr(b.s, "with type=user: [net], [hostfwd], [opts]"));
	b.len = 0;
	assert_int_equal(qmp_schema_describe(s, "query-status", &b), 0);
	assert_non_null(strstr(b.s, "query-status (no arguments)\nreturns: object\n    running  bool\n"));
	assert_int_equal(qmp_schema_describe(s, "nosuch", &b), -1);
	buf_free(&b);
	qmp_schema_free(s);
}

/* Schemas that are not what QEMU sends: no assertion in json-c, no endless
 * recursion (found by tests/fuzz/fuzz_qmp_args). */
static void odd_schemas(void **state)
{
	(void)state;
	struct json_object *j = json_tokener_parse(
	    "[{\"name\": \"c\", \"meta-type\": \"command\", \"arg-type\": \"o\"},"
	    "{\"name\": \"o\", \"meta-type\": \"object\", \"members\": \"x\", \"tag\": \"t\", \"variants\": 5},"
	    "{\"name\": \"d\", \"meta-type\": \"command\", \"arg-type\": \"p\"},"
	    "{\"name\": \"p\", \"meta-type\": \"object\", \"members\": [{\"name\": \"a\", \"type\": \"alt\"},"
	    "{\"name\": \"e\", \"type\": \"en\", \"default\": null}]},"
	    "{\"name\": \"alt\", \"meta-type\": \"alternate\", \"members\": [{\"type\": \"alt\"}]},"
	    "{\"name\": \"en\", \"meta-type\": \"enum\", \"values\": {}}]");
	assert_non_null(j);
	struct qmp_schema *s = qmp_schema_new(j);
	json_object_put(j);
	struct buf b = {0};
	assert_int_equal(qmp_schema_describe(s, "c", &b), 0);
	assert_int_equal(qmp_schema_describe(s, "d", &b), 0);
	buf_free(&b);
	struct strv comp = {0};
	qmp_schema_complete(s, "d", "e=", &comp);
	assert_int_equal(comp.n, 0);
	strv_free(&comp);
	char *e = check(s, "c");
	assert_string_equal(e, "ok");
	free(e);
	e = check(s, "d a=1");
	assert_string_equal(e, "d: argument 'a': expected alt, got int");
	free(e);
	e = check(s, "d a=x e=y");
	assert_string_equal(e, "d: argument 'a': expected alt, got string");
	free(e);
	qmp_schema_free(s);
}

/* ---- issue 15 (4): what a hostile peer can make the client hold ---- */

/* a greeting that never ends */
static void peer_endless_greeting(int fd)
{
	p_puts(fd, "{\"QMP\": {\"version\": \"");
	char *chunk = xmalloc(1 << 20);
	memset(chunk, 'a', 1 << 20);
	for (int i = 0; i < 40; i++)
		p_write(fd, chunk, 1 << 20);
	free(chunk);
	p_drain(fd);
}

static void endless_message_capped(void **state)
{
	(void)state;
	char *err = NULL;
	struct qmp *q = start_peer(peer_endless_greeting, 20000, &err);
	assert_null(q);
	assert_non_null(err);
	assert_non_null(strstr(err, "longer than 16 MiB"));
	free(err);
	int st;
	assert_int_equal(waitpid(peer_pid, &st, 0), peer_pid);
}

/* 400 events of 100 KB, then an end */
static void peer_big_events(int fd)
{
	p_greet(fd);
	struct buf b = {0};
	buf_puts(&b, "{\"event\": \"BIG\", \"data\": {\"x\": \"");
	for (int i = 0; i < 100000; i++)
		buf_puts(&b, "x");
	buf_puts(&b, "\"}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n");
	for (int i = 0; i < 400; i++)
		p_write(fd, b.s, b.len);
	buf_free(&b);
	p_puts(fd, event_text("LAST"));
	p_drain(fd);
}

static void event_backlog_capped(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_big_events);
	char *err = NULL;
	struct json_object *ev = NULL;
	/* read all without taking events: LAST arrives, the oldest go */
	long long end = ms_now() + 20000;
	bool last = false;
	while (!last && ms_now() < end) {
		assert_true(qmp_poll(q, 1000, &err) >= 0);
		last = qmp_wait_event(q, "LAST", 0, &ev, &err) == 1;
	}
	assert_true(last);
	json_object_put(ev);
	size_t n = qmp_events_queued(q);
	if (n * 100000 > (16u << 20))
		fail_msg("%zu events of 100 KB queued", n);
	assert_true(n > 10); /* the newest are kept */
	end_peer(q);
}

/* a string that is not UTF-8 */
static void peer_bad_utf8(int fd)
{
	p_greet(fd);
	p_puts(fd, "{\"event\": \"X\", \"data\": {\"s\": \"a\xff\xfe\"}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n");
	p_drain(fd);
}

static void invalid_utf8_refused(void **state)
{
	(void)state;
	char *err = NULL;
	struct qmp *q = start_peer(peer_bad_utf8, 5000, &err);
	struct json_object *ev = NULL;
	if (q) /* else refused in the handshake, which read the event too */
		assert_int_equal(qmp_next_event(q, 5000, &ev, &err), -1);
	assert_string_equal(err, "invalid JSON from QMP peer: not UTF-8");
	free(err);
	if (q) {
		end_peer(q);
	} else {
		int st;
		assert_int_equal(waitpid(peer_pid, &st, 0), peer_pid);
	}
}

/* ---- queued sends (vm-qmp -): many commands, one send ---- */

static void peer_queued(int fd)
{
	p_greet(fd);
	p_expect_noid(fd, "cmd-a");
	p_expect_noid(fd, "cmd-b");
	p_expect_noid(fd, "cmd-c");
	p_puts(fd, "{\"return\": \"a\"}\r\n{\"return\": \"b\"}\r\n{\"return\": \"c\"}\r\n");
	p_drain(fd);
}

/* Queued commands wait for qmp_flush, or for the next qmp_send, which
 * sends them first: the order on the wire is the order queued. */
static void queued_commands(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_queued);
	struct json_object *msg = NULL;
	char *err = NULL;
	qmp_set_ordered(q, true);
	struct json_object *a = json_tokener_parse("{\"execute\": \"cmd-a\"}");
	struct json_object *b = json_tokener_parse("{\"execute\": \"cmd-b\"}");
	long ia = qmp_queue_object(q, a, &err);
	long ib = qmp_queue_object(q, b, &err);
	json_object_put(a);
	json_object_put(b);
	assert_true(ia > 0 && ib > ia);
	assert_true(qmp_unsent(q));
	assert_true(qmp_in_flight(q) >= 2);
	long ic = qmp_send(q, "cmd-c", NULL, &err);
	assert_true(ic > ib);
	assert_false(qmp_unsent(q));
	assert_int_equal(qmp_read_reply(q, ia, 2000, &msg, &err), 0);
	check_str(msg, "return", "a");
	json_object_put(msg);
	assert_int_equal(qmp_read_reply(q, ib, 2000, &msg, &err), 0);
	check_str(msg, "return", "b");
	json_object_put(msg);
	assert_int_equal(qmp_read_reply(q, ic, 2000, &msg, &err), 0);
	check_str(msg, "return", "c");
	json_object_put(msg);
	assert_int_equal(qmp_in_flight(q), 0);
	/* not an object: refused, nothing queued */
	struct json_object *bad = json_object_new_int(1);
	assert_int_equal(qmp_queue_object(q, bad, &err), -1);
	json_object_put(bad);
	free(err);
	assert_false(qmp_unsent(q));
	end_peer(q);
}

#define QUEUED_MANY 10000

/* The peer starts reading late, one byte at a time (as QEMU 7.2 does), and
 * answers each command as it comes. */
static void peer_queued_many(int fd)
{
	p_greet(fd);
	struct timespec ts = {0, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	for (int i = 0; i < QUEUED_MANY; i++) {
		p_expect_noid(fd, "query-status");
		char r[64];
		snprintf(r, sizeof r, "{\"return\": %d}\r\n", i);
		p_puts(fd, r);
	}
	p_drain(fd);
}

/* More queued than the socket holds: qmp_flush sends what it takes and
 * says so (0); the rest goes out as the peer reads, while its replies are
 * taken in; every reply comes, in order. */
static void queued_past_the_socket(void **state)
{
	(void)state;
	struct qmp *q = start_ok(peer_queued_many);
	char *err = NULL;
	qmp_set_ordered(q, true);
	struct json_object *cmd = json_tokener_parse("{\"execute\": \"query-status\"}");
	long first = -1;
	for (int i = 0; i < QUEUED_MANY; i++) {
		long id = qmp_queue_object(q, cmd, &err);
		assert_true(id > 0);
		if (i == 0)
			first = id;
	}
	json_object_put(cmd);
	assert_int_equal(qmp_flush(q, &err), 0);
	assert_true(qmp_unsent(q));
	int flushes = 1;
	while (qmp_unsent(q)) {
		struct pollfd p = {.fd = qmp_fd(q), .events = POLLIN | POLLOUT};
		assert_true(poll(&p, 1, 10000) > 0);
		if (p.revents & POLLIN)
			assert_true(qmp_poll(q, 0, &err) >= 0);
		if (p.revents & POLLOUT) {
			assert_true(qmp_flush(q, &err) >= 0);
			flushes++;
		}
	}
	assert_true(flushes > 1);
	for (int i = 0; i < QUEUED_MANY; i++) {
		struct json_object *msg = NULL, *v;
		assert_int_equal(qmp_read_reply(q, first + i, 10000, &msg, &err), 0);
		assert_true(json_object_object_get_ex(msg, "return", &v));
		assert_int_equal(json_object_get_int(v), i);
		json_object_put(msg);
	}
	assert_int_equal(qmp_in_flight(q), 0);
	end_peer(q);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(basic),
	    cmocka_unit_test(split_messages),
	    cmocka_unit_test(merged_messages),
	    cmocka_unit_test(events_between_replies),
	    cmocka_unit_test(peer_vanishes),
	    cmocka_unit_test(never_answers),
	    cmocka_unit_test(greeting_timeout),
	    cmocka_unit_test(huge_messages),
	    cmocka_unit_test(invalid_json),
	    cmocka_unit_test(nul_byte),
	    cmocka_unit_test(qmp_errors),
	    cmocka_unit_test(caps_before_greeting),
	    cmocka_unit_test(caps_refused),
	    cmocka_unit_test(ordered_replies),
	    cmocka_unit_test(connect_paths),
	    cmocka_unit_test(parse_args),
	    cmocka_unit_test(parse_lines),
	    cmocka_unit_test(schema_checks),
	    cmocka_unit_test(odd_schemas),
	    cmocka_unit_test(endless_message_capped),
	    cmocka_unit_test(event_backlog_capped),
	    cmocka_unit_test(invalid_utf8_refused),
	    cmocka_unit_test(queued_commands),
	    cmocka_unit_test(queued_past_the_socket),
	};
	return cmocka_run_group_tests_name("qmp", tests, NULL, NULL);
}
