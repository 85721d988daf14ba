/* The runtime directory: the lock decides "running", leftovers of a crash
 * are cleaned by the next lock, waits are bounded, and the state comes from
 * the lock (and QMP, tested end to end). */
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "argv.h"
#include "runtime.h"
#include "testutil.h"

static void touch(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	write_text(p, "x\n");
	free(p);
}

static bool exists_in(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	bool e = file_exists(p);
	free(p);
	return e;
}

static void lock_once(void **state)
{
	char *tmp = test_tmpdir();
	char *dir = path_join(tmp, "vm/UUID");
	struct runtime a, b;
	pid_t holder = -1;
	char *err = NULL;
	assert_false(runtime_locked(dir));
	assert_int_equal(runtime_lock(dir, &a, &holder, &err), 0);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_true(runtime_locked(dir));

	/* held, no pid yet */
	double t0 = now_ms();
	assert_int_equal(runtime_lock(dir, &b, &holder, &err), 1);
	assert_int_equal(holder, 0);
	assert_true(now_ms() - t0 < 500); /* "at once" */

	/* held, with a live pid */
	char *pid = xasprintf("%d\n", (int)getpid());
	assert_int_equal(runtime_write_file(dir, RT_PID, pid), 0);
	free(pid);
	assert_int_equal(runtime_read_pid(dir), getpid());
	assert_int_equal(runtime_lock(dir, &b, &holder, &err), 1);
	assert_int_equal(holder, getpid());

	runtime_clean(dir);
	runtime_release(&a);
	assert_false(runtime_locked(dir));
	assert_int_equal(runtime_lock(dir, &b, &holder, &err), 0);
	runtime_release(&b);
	rm_rf(tmp);
	free(tmp);
	free(dir);
}

static void leftovers_cleaned(void **state)
{
	char *tmp = test_tmpdir();
	const char *files[] = {RT_PID, RT_QMP, RT_CONSOLE, RT_ACCEL, RT_SWTPM, RT_SWTPM_PID, RT_VNC};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		touch(tmp, files[i]);
	touch(tmp, RT_CONSOLE_LOG);
	touch(tmp, RT_QEMU_LOG);
	struct runtime rt;
	char *err = NULL;
	assert_int_equal(runtime_lock(tmp, &rt, NULL, &err), 0);
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		assert_false(exists_in(tmp, files[i]));
	assert_true(exists_in(tmp, RT_CONSOLE_LOG)); /* logs stay for a post-mortem */
	assert_true(exists_in(tmp, RT_QEMU_LOG));
	assert_true(exists_in(tmp, RT_LOCK));
	runtime_release(&rt);
	rm_rf(tmp);
	free(tmp);
}

/* A child that holds the lock, like QEMU inheriting it, for ms milliseconds. */
static pid_t hold_lock_in_child(const char *dir, int ms)
{
	struct runtime rt;
	char *err = NULL;
	assert_int_equal(runtime_lock(dir, &rt, NULL, &err), 0);
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		usleep((useconds_t)ms * 1000);
		_exit(0);
	}
	runtime_release(&rt); /* the child's copy keeps it */
	return p;
}

static void wait_unlocked(void **state)
{
	char *tmp = test_tmpdir();
	assert_int_equal(runtime_wait_unlocked(tmp, 100), 0); /* no lock file at all */
	pid_t p = hold_lock_in_child(tmp, 5000);
	assert_true(runtime_locked(tmp));
	double t0 = now_ms();
	assert_int_equal(runtime_wait_unlocked(tmp, 200), 1); /* timeout */
	double took = now_ms() - t0;
	assert_true(took >= 190 && took < 1000);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	assert_int_equal(runtime_wait_unlocked(tmp, 1000), 0);

	p = hold_lock_in_child(tmp, 150);
	t0 = now_ms();
	assert_int_equal(runtime_wait_unlocked(tmp, 5000), 0); /* ends when the holder does */
	took = now_ms() - t0;
	assert_true(took < 1000);
	waitpid(p, NULL, 0);
	/* SIGALRM is back to what it was */
	struct sigaction sa;
	sigaction(SIGALRM, NULL, &sa);
	assert_true(sa.sa_handler == SIG_DFL);
	rm_rf(tmp);
	free(tmp);
}

static void states(void **state)
{
	char *tmp = test_tmpdir();
	struct vm_status st;
	/* stale files, no lock holder: stopped */
	touch(tmp, RT_PID);
	touch(tmp, RT_QMP);
	assert_int_equal(runtime_state_dir(tmp, 100, &st), 0);
	assert_int_equal(st.state, VM_STOPPED);
	assert_int_equal(st.pid, 0);
	assert_string_equal(vm_state_name(st.state), "stopped");
	vm_status_free(&st);

	/* locked, no pid file yet: starting */
	struct runtime rt;
	char *err = NULL;
	assert_int_equal(runtime_lock(tmp, &rt, NULL, &err), 0);
	assert_int_equal(runtime_state_dir(tmp, 100, &st), 0);
	assert_int_equal(st.state, VM_STARTING);
	vm_status_free(&st);

	/* locked, QEMU's pid gone: stopping */
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	char *pid = xasprintf("%d\n", (int)p);
	runtime_write_file(tmp, RT_PID, pid);
	free(pid);
	assert_int_equal(runtime_state_dir(tmp, 100, &st), 0);
	assert_int_equal(st.state, VM_STOPPING);
	vm_status_free(&st);

	/* locked, alive, nothing on QMP: unknown, with the reason */
	pid = xasprintf("%d\n", (int)getpid());
	runtime_write_file(tmp, RT_PID, pid);
	free(pid);
	runtime_write_file(tmp, RT_ACCEL, "tcg\n");
	assert_int_equal(runtime_state_dir(tmp, 100, &st), 0);
	assert_int_equal(st.state, VM_UNKNOWN);
	assert_int_equal(st.pid, getpid());
	assert_string_equal(st.accel, "tcg");
	assert_non_null(st.error);
	vm_status_free(&st);
	runtime_release(&rt);
	rm_rf(tmp);
	free(tmp);
}

static void qmp_states(void **state)
{
	assert_int_equal(runtime_state_from_qmp("running", true), VM_RUNNING);
	assert_int_equal(runtime_state_from_qmp("paused", false), VM_PAUSED);
	assert_int_equal(runtime_state_from_qmp("prelaunch", false), VM_PAUSED);
	assert_int_equal(runtime_state_from_qmp("suspended", false), VM_PAUSED);
	assert_int_equal(runtime_state_from_qmp(NULL, false), VM_PAUSED);
	assert_string_equal(vm_state_name(VM_UNKNOWN), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lock_once),     cmocka_unit_test(leftovers_cleaned),
	    cmocka_unit_test(wait_unlocked), cmocka_unit_test(states),
	    cmocka_unit_test(qmp_states),
	};
	return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
