/* lib/snapshot.c: live jobs against a scripted fake QMP peer
 * (tests/unit/fakeqmp.h), offline refusals on real images (qemu-img). */
#include <sys/stat.h>

#include "fakeqmp.h"
#include "snapshot.h"

static char *dir;

static void open_bundle(struct bundle *b, const char *name, const char *conf)
{
	char *path = xasprintf("%s/%s.utm", dir, name), *data = path_join(path, "Data");
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(mkdir(data, 0755), 0);
	char *f = path_join(path, "vm.conf"), *err = NULL;
	write_text(f, conf);
	free(f);
	if (bundle_open_flags(b, path, BUNDLE_LOCK, &err) < 0)
		fail_msg("%s", err);
	free(path);
	free(data);
}

/* The job id snapshot_run_job uses: vm-disk-PID of the test process. */
static void job_event(int fd, const char *status)
{
	char *s = xasprintf("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"JOB_STATUS_CHANGE\", "
			    "\"data\": {\"id\": \"vm-disk-%ld\", \"status\": \"%s\"}}\r\n",
			    (long)getppid(), status);
	p_puts(fd, s);
	free(s);
}

static void peer_job_fails(int fd)
{
	p_greet(fd);
	char *job = xasprintf("vm-disk-%ld", (long)getppid());
	p_reply(fd, p_expect_args(fd, "snapshot-save", "tag", "s1", "job-id", job, NULL), "{}");
	job_event(fd, "running");
	job_event(fd, "concluded");
	char *jobs = xasprintf("[{\"id\": \"%s\", \"status\": \"concluded\", \"error\": "
			       "\"Device 'hd0' is writable but does not support snapshots\"}]",
			       job);
	p_reply(fd, p_expect(fd, "query-jobs"), jobs);
	p_reply(fd, p_expect_args(fd, "job-dismiss", "id", job, NULL), "{}");
	free(jobs);
	free(job);
	p_drain(fd);
}

/* a job that concludes with an error: QEMU's error, and the job dismissed */
static void job_failure(void **state)
{
	(void)state;
	struct bundle b;
	open_bundle(&b, "job", "uuid = '11111111-2222-4333-8444-555555555555'\n");
	struct qmp *q = start_ok(peer_job_fails);
	struct media m;
	media_init(&m, &b, q);
	struct json_object *a = json_tokener_parse("{\"tag\": \"s1\", \"devices\": []}");
	char *err = NULL;
	assert_int_equal(snapshot_run_job(&m, "snapshot-save", a, "s1", &err), -1);
	assert_string_equal(err, "s1: Device 'hd0' is writable but does not support snapshots");
	free(err);
	media_free(&m);
	end_peer(q);
	bundle_close(&b);
}

static void peer_job_slow(int fd)
{
	p_greet(fd);
	p_reply(fd, p_expect(fd, "snapshot-save"), "{}");
	job_event(fd, "running");
	p_drain(fd);
}

/* a job that does not conclude in time: MEDIA_TIMEOUT */
static void job_timeout(void **state)
{
	(void)state;
	struct bundle b;
	open_bundle(&b, "slow", "uuid = '11111111-2222-4333-8444-555555555555'\n");
	struct qmp *q = start_ok(peer_job_slow);
	struct media m;
	media_init(&m, &b, q);
	m.timeout_ms = 300;
	char *err = NULL;
	assert_int_equal(snapshot_run_job(&m, "snapshot-save", json_object_new_object(), "s1", &err), MEDIA_TIMEOUT);
	assert_non_null(strstr(err, "s1: job vm-disk-"));
	assert_non_null(strstr(err, "still running"));
	free(err);
	media_free(&m);
	end_peer(q);
	bundle_close(&b);
}

/* offline: a raw image cannot hold one, named; a name of digits is refused */
static void offline_refusals(void **state)
{
	(void)state;
	struct bundle b;
	open_bundle(&b, "raw", "uuid = '11111111-2222-4333-8444-555555555555'\n"
			       "drive r1 {\nimage = 'r1.img'\nformat = 'raw'\n}\n");
	char *img = xasprintf("%s/Data/r1.img", b.path), *zeros = xcalloc(1, 1 << 20);
	assert_int_equal(write_file_atomic(img, zeros, 1 << 20, 0644), 0);
	struct media m;
	media_init(&m, &b, NULL);
	char *err = NULL;
	assert_int_equal(snapshot_create(&m, "s1", &err), -1);
	assert_non_null(strstr(err, "drive r1: a raw image (r1.img) cannot hold snapshots"));
	free(err);
	err = NULL;
	assert_int_equal(snapshot_delete(&m, "42", &err), -1);
	assert_non_null(strstr(err, "digits only"));
	free(err);
	free(img);
	free(zeros);
	media_free(&m);
	bundle_close(&b);
}

/* offline on a qcow2 image: create, list, the name taken, delete */
static void offline_cycle(void **state)
{
	(void)state;
	struct bundle b;
	open_bundle(&b, "q", "uuid = '11111111-2222-4333-8444-555555555555'\n"
			     "drive hd0 {\nimage = 'hd0.qcow2'\n}\n");
	char *img = xasprintf("%s/Data/hd0.qcow2", b.path), *err = NULL;
	if (disk_create(img, "qcow2", 1 << 20, NULL, NULL, &err) < 0)
		skip();
	struct media m;
	media_init(&m, &b, NULL);
	if (snapshot_create(&m, "s1", &err) < 0)
		fail_msg("%s", err);
	assert_int_equal(snapshot_create(&m, "s1", &err), -1);
	assert_string_equal(err, "snapshot s1: exists (drive hd0)");
	free(err);
	err = NULL;
	struct snapshot_drive *s;
	size_t n;
	assert_int_equal(snapshot_drives(&m, &s, &n, &err), 0);
	struct json_object *list = snapshot_list(s, n);
	assert_int_equal(json_object_array_length(list), 1);
	struct json_object *name;
	json_object_object_get_ex(json_object_array_get_idx(list, 0), "name", &name);
	assert_string_equal(json_object_get_string(name), "s1");
	json_object_put(list);
	snapshot_drives_free(s, n);
	if (snapshot_delete(&m, "s1", &err) < 0)
		fail_msg("%s", err);
	assert_int_equal(snapshot_revert(&m, "s1", &err), -1);
	assert_string_equal(err, "snapshot s1: no such snapshot");
	free(err);
	free(img);
	media_free(&m);
	bundle_close(&b);
}

int main(void)
{
	dir = test_tmpdir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(job_failure),
	    cmocka_unit_test(job_timeout),
	    cmocka_unit_test(offline_refusals),
	    cmocka_unit_test(offline_cycle),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char *rm = xasprintf("rm -rf '%s'", dir);
	if (system(rm) != 0)
		r = 1;
	free(rm);
	free(dir);
	return r;
}
