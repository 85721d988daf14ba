/* lib/launch.c without QEMU: vm_stop()'s sequence (power button, quit,
 * SIGKILL, the SHUTDOWN check) against a fake QEMU, a forked child that
 * holds the runtime lock and answers QMP on RUNTIME/qmp.sock as scripted;
 * the stop sequence's first steps; QEMU's error line from qemu.log; unix
 * sockets at paths longer than sun_path. */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "launch.h"
#include "qmp.h"
#include "runtime.h"
#include "testutil.h"

#define GREETING                                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "          \
	"\"package\": \"\"}, \"capabilities\": []}}\r\n"
#include "fakeqmp.h"

#define SHUTDOWN_EV "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"SHUTDOWN\"}\r\n"

/* ---- the fake QEMU (runs in the child; no cmocka there) ---- */

/* The next command's name (static), or NULL at EOF; its id in *id (-1: none). */
static const char *p_next(int fd, long *id)
{
	static char name[64];
	struct json_object *o = p_read_cmd(fd), *v;
	if (!o)
		return NULL;
	if (!json_object_object_get_ex(o, "execute", &v))
		_exit(4);
	snprintf(name, sizeof name, "%s", json_object_get_string(v));
	*id = json_object_object_get_ex(o, "id", &v) ? (long)json_object_get_int64(v) : -1;
	json_object_put(o);
	return name;
}

enum peer {
	PEER_POWEROFF, /* the guest powers off at the button */
	PEER_DEAF,     /* the guest ignores the button; quit works */
	PEER_STUCK,    /* nothing but SIGKILL ends it */
	PEER_PAUSED,   /* CPUs stopped: quit at once */
	PEER_CRASH,    /* exits after the button without a SHUTDOWN */
	PEER_NO_QMP,   /* no monitor at all: SIGTERM ends it */
};

static void peer(const char *dir, enum peer how, int ready)
{
	struct runtime rt;
	char *err = NULL;
	if (runtime_lock(dir, &rt, NULL, &err) != 0)
		_exit(6);
	char *pid = xasprintf("%d\n", (int)getpid());
	runtime_write_file(dir, RT_PID, pid);
	int lfd = -1;
	if (how != PEER_NO_QMP) {
		char *sock = path_join(dir, RT_QMP);
		lfd = unix_listen(sock, 4, &err);
		if (lfd < 0)
			_exit(7);
	}
	if (write(ready, "x", 1) != 1)
		_exit(8);
	close(ready);
	if (how == PEER_NO_QMP)
		for (;;)
			pause();
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		_exit(9);
	p_puts(fd, GREETING);
	long id;
	for (const char *cmd; (cmd = p_next(fd, &id));) {
		if (!strcmp(cmd, "query-status")) {
			p_reply(fd, id, how == PEER_PAUSED ? "{\"status\": \"paused\", \"running\": false}"
							   : "{\"status\": \"running\", \"running\": true}");
			continue;
		}
		p_reply(fd, id, "{}");
		if (!strcmp(cmd, "system_powerdown") && how == PEER_CRASH)
			_exit(0);
		if ((!strcmp(cmd, "system_powerdown") && how == PEER_POWEROFF) ||
		    (!strcmp(cmd, "quit") && how != PEER_STUCK)) {
			p_puts(fd, SHUTDOWN_EV);
			_exit(0);
		}
	}
	for (;;)
		pause();
}

/* ---- the test's side ---- */

struct run {
	char *dir;
	pid_t pid;
	enum stop_event ev[16];
	int nev;
	bool no_qmp;
};

static void on_note(void *ctx, enum stop_event ev, const char *detail)
{
	struct run *r = ctx;
	if (r->nev < 16)
		r->ev[r->nev++] = ev;
}

static void on_no_qmp(void *ctx, const char *detail)
{
	((struct run *)ctx)->no_qmp = true;
}

static void start(struct run *r, enum peer how)
{
	memset(r, 0, sizeof *r);
	r->dir = test_tmpdir();
	int p[2];
	assert_int_equal(pipe(p), 0);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		close(p[0]);
		peer(r->dir, how, p[1]);
	}
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
}

/* vm_stop() with short deadlines; returns its result, *err kept in r. */
static int stop(struct run *r, bool force, char **err)
{
	struct vm_stop_opts o = VM_STOP_OPTS_INIT;
	o.timeout_ms = 300;
	o.grace_ms = 300;
	o.force = force;
	o.note = on_note;
	o.no_qmp = on_no_qmp;
	o.ctx = r;
	return vm_stop(r->dir, &o, err);
}

static void finish(struct run *r, int want_sig)
{
	int st;
	assert_int_equal(waitpid(r->pid, &st, 0), r->pid);
	if (want_sig)
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == want_sig);
	else
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* vm_stop tidied the runtime dir */
	char *pidf = path_join(r->dir, RT_PID);
	assert_false(file_exists(pidf));
	free(pidf);
	rm_rf(r->dir);
	free(r->dir);
}

static void events_are(const struct run *r, const enum stop_event *want, int n)
{
	for (int i = 0; i < n && i < r->nev; i++)
		if (r->ev[i] != want[i])
			fail_msg("event %d: %d, expected %d", i, r->ev[i], want[i]);
	assert_int_equal(r->nev, n);
}

static void powers_off(void **state)
{
	struct run r;
	char *err = NULL;
	start(&r, PEER_POWEROFF);
	assert_int_equal(stop(&r, false, &err), 0);
	events_are(&r, (enum stop_event[]){STOP_EV_POWERDOWN}, 1);
	finish(&r, 0);
}

static void deaf_guest_is_quit(void **state)
{
	struct run r;
	char *err = NULL;
	start(&r, PEER_DEAF);
	double t0 = now_ms();
	assert_int_equal(stop(&r, false, &err), 0);
	assert_true(now_ms() - t0 >= 300); /* the guest had its time */
	events_are(&r, (enum stop_event[]){STOP_EV_POWERDOWN, STOP_EV_POWERDOWN_TIMEOUT, STOP_EV_QUIT}, 3);
	finish(&r, 0);
}

static void stuck_qemu_is_killed(void **state)
{
	struct run r;
	char *err = NULL;
	start(&r, PEER_STUCK);
	assert_int_equal(stop(&r, false, &err), 0); /* killed: no SHUTDOWN expected */
	events_are(&r,
		   (enum stop_event[]){STOP_EV_POWERDOWN, STOP_EV_POWERDOWN_TIMEOUT, STOP_EV_QUIT, STOP_EV_KILL},
		   4);
	finish(&r, SIGKILL);
}

static void force_skips_the_button(void **state)
{
	struct run r;
	char *err = NULL;
	start(&r, PEER_DEAF);
	assert_int_equal(stop(&r, true, &err), 0);
	events_are(&r, (enum stop_event[]){STOP_EV_QUIT}, 1);
	finish(&r, 0);
}

static void paused_guest_quits_at_once(void **state)
{
	struct run r;
	char *err = NULL;
	start(&r, PEER_PAUSED);
	assert_int_equal(stop(&r, false, &err), 0);
	events_are(&r, (enum stop_event[]){STOP_EV_CPUS_STOPPED, STOP_EV_QUIT}, 2);
	finish(&r, 0);
}

static void crash_is_a_failure(void **state)
{
	struct run r;
	char *err = NULL;
	start(&r, PEER_CRASH);
	assert_int_equal(stop(&r, false, &err), -1);
	assert_non_null(strstr(err, "without shutting down"));
	free(err);
	finish(&r, 0);
}

static void no_qmp_means_sigterm(void **state)
{
	struct run r;
	char *err = NULL;
	start(&r, PEER_NO_QMP);
	assert_int_equal(stop(&r, false, &err), 0);
	assert_true(r.no_qmp);
	events_are(&r, (enum stop_event[]){STOP_EV_TERM}, 1);
	finish(&r, SIGTERM);
}

static void not_running(void **state)
{
	char *dir = test_tmpdir(), *err = NULL;
	struct run r = {0};
	struct vm_stop_opts o = VM_STOP_OPTS_INIT;
	o.note = on_note;
	o.ctx = &r;
	assert_int_equal(vm_stop(dir, &o, &err), 1);
	assert_int_equal(r.nev, 0);
	rm_rf(dir);
	free(dir);
}

/* The supervisor's timeout path: force goes straight to quit, and with
 * neither QMP nor a pid there is nothing to send, only deadlines. */
static void seq_deadlines(void **state)
{
	struct run r = {0};
	struct stop_seq s = {.powerdown_ms = 50, .quit_ms = 20, .kill_ms = -1, .note = on_note, .ctx = &r};
	stop_seq_begin(&s, true);
	assert_int_equal(s.stage, STOP_QUIT);
	assert_int_equal(r.nev, 0);
	int t = stop_seq_timeout(&s);
	assert_true(t > 0 && t <= 21);
	assert_false(stop_seq_tick(&s));
	usleep(25000);
	assert_true(stop_seq_tick(&s));
	assert_int_equal(s.stage, STOP_KILL);
	assert_int_equal(stop_seq_timeout(&s), -1); /* kill_ms -1: the caller waits */
	assert_false(s.killed);                     /* no pid: nothing killed */
}

static void qemu_error_line(void **state)
{
	char *dir = test_tmpdir();
	char *log = path_join(dir, RT_QEMU_LOG);
	write_text(log, "qemu: warning: one\nqemu: -drive x: Could not open 'x'\n  qemu: warning: two\n");
	char *e = launch_qemu_error(dir, 0);
	assert_string_equal(e, "qemu: -drive x: Could not open 'x'");
	free(e);
	e = launch_qemu_error(dir, strlen("qemu: warning: one\nqemu: -drive x: Could not open 'x'\n"));
	assert_string_equal(e, "qemu: warning: two"); /* only warnings: the last line */
	free(e);
	unlink(log);
	assert_null(launch_qemu_error(dir, 0));
	free(log);
	rm_rf(dir);
	free(dir);
}

/* A socket path longer than sun_path (108 bytes) listens and connects. */
static void long_socket_path(void **state)
{
	char *dir = test_tmpdir(), *err = NULL;
	char *deep = xasprintf("%s/%0150d", dir, 0);
	assert_int_equal(mkdir_p(deep, 0700), 0);
	char *sock = path_join(deep, "s.sock");
	assert_true(strlen(sock) > 108);
	int l = unix_listen(sock, 4, &err);
	if (l < 0)
		fail_msg("%s", err);
	int c = unix_connect(sock, &err);
	if (c < 0)
		fail_msg("%s", err);
	int a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	assert_int_equal(write(c, "hi", 2), 2);
	char buf[2];
	assert_int_equal(read(a, buf, 2), 2);
	close(a);
	close(c);
	close(l);
	unlink(sock);
	assert_int_equal(unix_connect(sock, &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "s.sock"));
	free(err);
	free(sock);
	free(deep);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(powers_off),
	    cmocka_unit_test(deaf_guest_is_quit),
	    cmocka_unit_test(stuck_qemu_is_killed),
	    cmocka_unit_test(force_skips_the_button),
	    cmocka_unit_test(paused_guest_quits_at_once),
	    cmocka_unit_test(crash_is_a_failure),
	    cmocka_unit_test(no_qmp_means_sigterm),
	    cmocka_unit_test(not_running),
	    cmocka_unit_test(seq_deadlines),
	    cmocka_unit_test(qemu_error_line),
	    cmocka_unit_test(long_socket_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
