/* lib/agent.c against a scripted fake guest agent (a forked child on a
 * socketpair, as tests/unit/fakeqmp.h's QMP peer): the delimited sync that
 * skips what an earlier client left, no answer, guest-exec's polling and
 * output, file copies in chunks both ways, base64. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "agent.h"
#include "fakeqmp.h"
#include "testutil.h"

/* ---- the peer's side ---- */

static struct json_object *a_args(struct json_object *cmd)
{
	struct json_object *v = NULL;
	json_object_object_get_ex(cmd, "arguments", &v);
	return v;
}

/* The next command must be execute; returns it (the caller puts it). */
static struct json_object *a_expect(int fd, const char *execute)
{
	struct json_object *cmd = p_read_cmd(fd);
	if (!cmd || strcmp(p_exec(cmd), execute) != 0)
		_exit(5);
	return cmd;
}

/* Answer the sync; stale: first what an earlier client left unread (a
 * reply with our very id and another number, half a message), then the
 * delimiter. */
static void a_sync(int fd, bool stale)
{
	bool ff;
	struct json_object *cmd = p_read_cmd_ff(fd, &ff), *v;
	if (!cmd || !ff || strcmp(p_exec(cmd), "guest-sync-delimited"))
		_exit(7);
	json_object_object_get_ex(a_args(cmd), "id", &v);
	long long n = json_object_get_int64(v);
	long id = p_id(cmd);
	json_object_put(cmd);
	if (stale) {
		char *s = xasprintf("{\"return\": %lld, \"id\": %ld}\n{\"return\": {\"count\": 3, \"buf-b64\": \"QUJD", n + 1,
				    id);
		p_puts(fd, s);
		free(s);
	}
	char *s = xasprintf("\xff{\"return\": %lld, \"id\": %ld}\n", n, id);
	p_slow(fd, s, 3);
	free(s);
}

static const char *a_str(struct json_object *cmd, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(a_args(cmd), key, &v))
		_exit(8);
	return json_object_get_string(v);
}

/* ---- the test's side ---- */

static struct agent *start_agent(void (*fn)(int), int sync_ms, char **err)
{
	return agent_open_fd(fork_peer(fn), "web", sync_ms, err);
}

static void end_agent(struct agent *a)
{
	agent_close(a);
	reap_peer();
}

static struct agent *start_agent_ok(void (*fn)(int))
{
	char *err = NULL;
	struct agent *a = start_agent(fn, 5000, &err);
	if (!a)
		fail_msg("sync: %s", err);
	return a;
}

/* ---- sync ---- */

static void peer_stale(int fd)
{
	a_sync(fd, true);
	struct json_object *cmd = a_expect(fd, "guest-ping");
	p_reply(fd, p_id(cmd), "{}");
	json_object_put(cmd);
	p_drain(fd);
}

static void sync_skips_stale_output(void **state)
{
	(void)state;
	struct agent *a = start_agent_ok(peer_stale);
	char *err = NULL;
	assert_int_equal(agent_ping(a, &err), 0);
	end_agent(a);
}

static void peer_mute(int fd)
{
	/* reads the sync and says nothing, as a guest without qemu-ga */
	struct json_object *cmd = p_read_cmd(fd);
	json_object_put(cmd);
	p_drain(fd);
}

static void no_agent_answers(void **state)
{
	(void)state;
	char *err = NULL;
	double t0 = now_ms();
	struct agent *a = start_agent(peer_mute, 300, &err);
	int e = errno;
	assert_null(a);
	assert_int_equal(e, ETIMEDOUT);
	assert_string_equal(err, "no guest agent answers in VM web: is qemu-guest-agent installed and running?");
	assert_true(now_ms() - t0 < 2000);
	free(err);
	int st;
	waitpid(peer_pid, &st, 0);
}

/* ---- exec ---- */

struct out {
	struct buf o, e;
};

static int collect(void *ctx, int stream, const char *data, size_t len)
{
	struct out *c = ctx;
	buf_add(stream == AGENT_STDOUT ? &c->o : &c->e, data, len);
	return 0;
}

static void peer_exec(int fd)
{
	a_sync(fd, false);
	struct json_object *cmd = a_expect(fd, "guest-exec"), *v;
	/* path, arg, env, input-data ("input"), capture-output */
	if (strcmp(a_str(cmd, "path"), "sh") || strcmp(a_str(cmd, "input-data"), "aW5wdXQ="))
		_exit(9);
	json_object_object_get_ex(a_args(cmd), "arg", &v);
	if (json_object_array_length(v) != 2 || strcmp(json_object_get_string(json_object_array_get_idx(v, 1)), "x"))
		_exit(10);
	json_object_object_get_ex(a_args(cmd), "env", &v);
	if (json_object_array_length(v) != 1 || strcmp(json_object_get_string(json_object_array_get_idx(v, 0)), "K=V"))
		_exit(11);
	p_reply(fd, p_id(cmd), "{\"pid\": 42}");
	json_object_put(cmd);
	/* running, with what it wrote so far (an agent that streams) */
	cmd = a_expect(fd, "guest-exec-status");
	p_reply(fd, p_id(cmd), "{\"exited\": false, \"out-data\": \"cGFy\"}");
	json_object_put(cmd);
	cmd = a_expect(fd, "guest-exec-status");
	p_reply(fd, p_id(cmd), "{\"exited\": false}");
	json_object_put(cmd);
	cmd = a_expect(fd, "guest-exec-status");
	if (strcmp(a_str(cmd, "pid"), "42"))
		_exit(12);
	p_reply(fd, p_id(cmd), "{\"exited\": true, \"exitcode\": 3, \"out-data\": \"dGlhbAo=\", \"err-data\": \"b29wcw==\"}");
	json_object_put(cmd);
	/* then one ended by a signal */
	cmd = a_expect(fd, "guest-exec");
	p_reply(fd, p_id(cmd), "{\"pid\": 43}");
	json_object_put(cmd);
	cmd = a_expect(fd, "guest-exec-status");
	p_reply(fd, p_id(cmd), "{\"exited\": true, \"signal\": 9}");
	json_object_put(cmd);
	/* and one the agent cannot start */
	cmd = a_expect(fd, "guest-exec");
	p_error(fd, p_id(cmd), "Failed to execute child process (No such file or directory)");
	json_object_put(cmd);
	p_drain(fd);
}

static void exec_polls_and_streams(void **state)
{
	(void)state;
	struct agent *a = start_agent_ok(peer_exec);
	struct out c = {0};
	const char *const argv[] = {"sh", "-c", "x", NULL}, *const env[] = {"K=V", NULL};
	struct agent_exec e = {.argv = argv, .env = env, .input = "input", .input_len = 5, .timeout_ms = -1,
			       .output = collect, .ctx = &c};
	int status = -1;
	char *err = NULL;
	assert_int_equal(agent_exec(a, &e, &status, &err), 0);
	assert_int_equal(status, 3);
	buf_add(&c.o, "", 1);
	buf_add(&c.e, "", 1);
	assert_string_equal(c.o.s, "partial\n");
	assert_string_equal(c.e.s, "oops");
	struct agent_exec e2 = {.argv = argv, .timeout_ms = -1};
	assert_int_equal(agent_exec(a, &e2, &status, &err), 0);
	assert_int_equal(status, 128 + 9);
	assert_int_equal(agent_exec(a, &e2, &status, &err), AGENT_EXEC_NOT_RUN);
	assert_non_null(strstr(err, "No such file"));
	free(err);
	buf_free(&c.o);
	buf_free(&c.e);
	end_agent(a);
}

/* ---- files ---- */

static char *tmpd;
#define PUT_SIZE (AGENT_WRITE_CHUNK * 5 / 2) /* two whole chunks and a half */
#define GET_SIZE (AGENT_READ_CHUNK * 5 / 2)

static unsigned char *pattern(size_t n, unsigned seed)
{
	unsigned char *p = xmalloc(n);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		p[i] = (unsigned char)(seed >> 16);
	}
	return p;
}

static void peer_put(int fd)
{
	a_sync(fd, false);
	struct json_object *cmd = a_expect(fd, "guest-file-open");
	if (strcmp(a_str(cmd, "path"), "/g/file") || strcmp(a_str(cmd, "mode"), "w"))
		_exit(9);
	p_reply(fd, p_id(cmd), "5");
	json_object_put(cmd);
	struct buf got = {0};
	int writes = 0;
	for (;;) {
		cmd = p_read_cmd(fd);
		if (!cmd)
			_exit(10);
		if (!strcmp(p_exec(cmd), "guest-file-close"))
			break;
		if (strcmp(p_exec(cmd), "guest-file-write") || strcmp(a_str(cmd, "handle"), "5"))
			_exit(11);
		size_t n;
		unsigned char *d = agent_b64_decode(a_str(cmd, "buf-b64"), &n);
		if (!d || n > AGENT_WRITE_CHUNK)
			_exit(12);
		buf_add(&got, (char *)d, n);
		char *r = xasprintf("{\"count\": %zu, \"eof\": false}", n);
		p_reply(fd, p_id(cmd), r);
		free(r);
		free(d);
		json_object_put(cmd);
		writes++;
	}
	p_reply(fd, p_id(cmd), "{}");
	json_object_put(cmd);
	/* the mode, through chmod in the guest */
	cmd = a_expect(fd, "guest-exec");
	struct json_object *v;
	json_object_object_get_ex(a_args(cmd), "arg", &v);
	if (strcmp(a_str(cmd, "path"), "chmod") ||
	    strcmp(json_object_get_string(json_object_array_get_idx(v, 0)), "640"))
		_exit(13);
	p_reply(fd, p_id(cmd), "{\"pid\": 7}");
	json_object_put(cmd);
	cmd = a_expect(fd, "guest-exec-status");
	p_reply(fd, p_id(cmd), "{\"exited\": true, \"exitcode\": 0}");
	json_object_put(cmd);
	char *f = path_join(tmpd, "put.out");
	if (writes != 3 || write_file_atomic(f, got.s, got.len, 0600) < 0)
		_exit(14);
	free(f);
	buf_free(&got);
	p_drain(fd);
}

static void file_put_in_chunks(void **state)
{
	(void)state;
	unsigned char *data = pattern(PUT_SIZE, 1);
	char *in = path_join(tmpd, "put.in");
	assert_int_equal(write_file_atomic(in, (char *)data, PUT_SIZE, 0600), 0);
	int fd = open(in, O_RDONLY);
	assert_true(fd >= 0);
	struct agent *a = start_agent_ok(peer_put);
	uint64_t bytes = 0;
	char *err = NULL;
	int r = agent_file_put(a, fd, "/g/file", 0640, &bytes, &err);
	if (r < 0)
		fail_msg("put: %s", err);
	assert_int_equal(bytes, PUT_SIZE);
	end_agent(a);
	close(fd);
	char *out = path_join(tmpd, "put.out");
	size_t n;
	char *got = read_file(out, &n);
	assert_non_null(got);
	assert_int_equal(n, PUT_SIZE);
	assert_memory_equal(got, data, PUT_SIZE);
	free(got);
	free(out);
	free(in);
	free(data);
}

static void peer_get(int fd)
{
	a_sync(fd, false);
	struct json_object *cmd = a_expect(fd, "guest-file-open");
	if (strcmp(a_str(cmd, "mode"), "r"))
		_exit(9);
	p_reply(fd, p_id(cmd), "6");
	json_object_put(cmd);
	cmd = a_expect(fd, "guest-exec"); /* stat, for the mode */
	p_reply(fd, p_id(cmd), "{\"pid\": 8}");
	json_object_put(cmd);
	cmd = a_expect(fd, "guest-exec-status");
	p_reply(fd, p_id(cmd), "{\"exited\": true, \"exitcode\": 0, \"out-data\": \"NzU1Cg==\"}"); /* 755 */
	json_object_put(cmd);
	unsigned char *data = pattern(GET_SIZE, 2);
	for (size_t off = 0;;) {
		cmd = a_expect(fd, "guest-file-read");
		size_t want = (size_t)atoll(a_str(cmd, "count"));
		size_t n = GET_SIZE - off < want ? GET_SIZE - off : want;
		char *b = agent_b64_encode(data + off, n);
		off += n;
		char *r = xasprintf("{\"count\": %zu, \"buf-b64\": \"%s\", \"eof\": %s}", n, b,
				    off == GET_SIZE ? "true" : "false");
		p_reply(fd, p_id(cmd), r);
		free(r);
		free(b);
		json_object_put(cmd);
		if (off == GET_SIZE)
			break;
	}
	free(data);
	cmd = a_expect(fd, "guest-file-close");
	p_reply(fd, p_id(cmd), "{}");
	json_object_put(cmd);
	p_drain(fd);
}

static void file_get_in_chunks(void **state)
{
	(void)state;
	char *out = path_join(tmpd, "get.out");
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	struct agent *a = start_agent_ok(peer_get);
	uint64_t bytes = 0;
	int mode = 0;
	char *err = NULL;
	if (agent_file_get(a, "/g/file", fd, &mode, &bytes, &err) < 0)
		fail_msg("get: %s", err);
	end_agent(a);
	close(fd);
	assert_int_equal(bytes, GET_SIZE);
	assert_int_equal(mode, 0755);
	unsigned char *data = pattern(GET_SIZE, 2);
	size_t n;
	char *got = read_file(out, &n);
	assert_int_equal(n, GET_SIZE);
	assert_memory_equal(got, data, GET_SIZE);
	free(got);
	free(data);
	free(out);
}

/* ---- base64 ---- */

static void base64(void **state)
{
	(void)state;
	static const char *const want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	for (size_t i = 0; i < 7; i++) {
		char *e = agent_b64_encode("foobar", i);
		assert_string_equal(e, want[i]);
		size_t n;
		unsigned char *d = agent_b64_decode(e, &n);
		assert_int_equal(n, i);
		assert_memory_equal(d, "foobar", i);
		free(d);
		free(e);
	}
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	char *e = agent_b64_encode(all, sizeof all);
	size_t n;
	unsigned char *d = agent_b64_decode(e, &n);
	assert_int_equal(n, 256);
	assert_memory_equal(d, all, 256);
	free(d);
	free(e);
	assert_null(agent_b64_decode("Zm9v!", &n));
	assert_null(agent_b64_decode("Zg==Zg", &n));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	tmpd = test_tmpdir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sync_skips_stale_output),
	    cmocka_unit_test(no_agent_answers),
	    cmocka_unit_test(exec_polls_and_streams),
	    cmocka_unit_test(file_put_in_chunks),
	    cmocka_unit_test(file_get_in_chunks),
	    cmocka_unit_test(base64),
	};
	int r = cmocka_run_group_tests_name("agent", tests, NULL, NULL);
	rm_rf(tmpd);
	free(tmpd);
	return r;
}
