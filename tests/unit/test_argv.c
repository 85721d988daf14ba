/* Golden tests for the argv mapping: tests/golden/NAME.conf -> NAME.argv.
 * UPDATE_GOLDEN=1 rewrites the .argv files (review the diff!). */
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>

#include "argv.h"
#include "testutil.h"

static char *golden_dir;

static char *render(const char *conf_name)
{
	char *tmp = test_tmpdir();
	char *bpath = xasprintf("%s/vm.utm", tmp);
	char *data = xasprintf("%s/Data", bpath);
	mkdir_p(data, 0755);
	char *src = xasprintf("%s/%s", golden_dir, conf_name), *text = read_file(src, NULL);
	assert_non_null(text);
	char *conf = xasprintf("%s/vm.conf", bpath);
	write_text(conf, text);

	struct bundle b;
	char *err = NULL;
	if (bundle_open(&b, bpath, &err) < 0)
		fail_msg("%s: %s", conf_name, err);
	struct argv_opts o = ARGV_OPTS_INIT;
	o.runtime_dir = "/run/vm/TEST";
	struct strv av = {0};
	if (argv_build(&b, &o, &av, &err) < 0)
		fail_msg("%s: %s", conf_name, err);
	/* the bundle's real path varies between runs */
	char *real = realpath(bpath, NULL);
	struct buf out = {0};
	for (size_t i = 0; i < av.n; i++) {
		const char *s = av.v[i];
		for (const char *hit; (hit = strstr(s, real));) {
			buf_add(&out, s, (size_t)(hit - s));
			buf_puts(&out, "@BUNDLE@");
			s = hit + strlen(real);
		}
		buf_puts(&out, s);
		buf_puts(&out, "\n");
	}
	strv_free(&av);
	bundle_close(&b);
	rm_rf(tmp);
	free(real);
	free(tmp);
	free(bpath);
	free(data);
	free(src);
	free(text);
	free(conf);
	return out.s;
}

static void golden(void **state)
{
	const char *name = *state;
	char *got = render(name);
	char *want_path = xasprintf("%s/%.*s.argv", golden_dir, (int)(strlen(name) - 5), name);
	if (getenv("UPDATE_GOLDEN"))
		write_text(want_path, got);
	char *want = read_file(want_path, NULL);
	if (!want)
		fail_msg("%s: missing (run with UPDATE_GOLDEN=1)", want_path);
	assert_string_equal(got, want);
	free(got);
	free(want);
	free(want_path);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_conf(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && !strcmp(d->d_name + n - 5, ".conf");
}

/* Options change the argv the way vm-run needs. */
static void options(void **state)
{
	(void)state;
	char *tmp = test_tmpdir(), *bpath = xasprintf("%s/o.utm", tmp), *data = xasprintf("%s/Data", bpath);
	mkdir_p(data, 0755);
	char *conf = xasprintf("%s/vm.conf", bpath);
	write_text(conf, "uuid = '11111111-2222-4333-8444-555555555555'\nname = 'a,b'\n");
	struct bundle b;
	char *err = NULL;
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	struct argv_opts o = ARGV_OPTS_INIT;
	o.runtime_dir = "/r";
	o.accel = "kvm";
	o.paused = o.snapshot = o.exit_device = true;
	o.qmp_fd = 7;
	o.qemu_dir = "/opt/q";
	struct strv av = {0};
	assert_int_equal(argv_build(&b, &o, &av, &err), 0);
	assert_string_equal(av.v[0], "/opt/q/qemu-system-x86_64");
	assert_true(strv_contains(&av, "guest=a,,b"));
	assert_true(strv_contains(&av, "-S"));
	assert_true(strv_contains(&av, "-snapshot"));
	assert_true(strv_contains(&av, "isa-debug-exit,iobase=0xf4,iosize=0x04"));
	assert_true(strv_contains(&av, "socket,id=qmp,fd=7,server=on,wait=off"));
	assert_true(strv_contains(&av, "host")); /* -cpu host under KVM */
	assert_false(strv_contains(&av, "tcg"));
	strv_free(&av);
	bundle_close(&b);
	rm_rf(tmp);
	free(tmp);
	free(bpath);
	free(data);
	free(conf);
}

/* A drive naming a path outside the bundle is refused, naming the key. */
static void escape_refused(void **state)
{
	(void)state;
	char *tmp = test_tmpdir(), *bpath = xasprintf("%s/e.utm", tmp), *data = xasprintf("%s/Data", bpath);
	mkdir_p(data, 0755);
	char *conf = xasprintf("%s/vm.conf", bpath);
	write_text(conf, "uuid = '11111111-2222-4333-8444-555555555555'\n"
			 "drive hd0 {\n image = '../../etc/shadow'\n}\n");
	struct bundle b;
	char *err = NULL;
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	struct argv_opts o = ARGV_OPTS_INIT;
	o.runtime_dir = "/r";
	struct strv av = {0};
	assert_int_equal(argv_build(&b, &o, &av, &err), -1);
	assert_non_null(strstr(err, "drive.hd0.image"));
	assert_non_null(strstr(err, "leaves the bundle"));
	free(err);
	/* a symlink in Data/ that leads out is refused too */
	char *link = xasprintf("%s/evil", data);
	assert_int_equal(symlink("/etc/passwd", link), 0);
	write_text(conf, "uuid = '11111111-2222-4333-8444-555555555555'\n"
			 "drive hd0 {\n image = 'evil'\n}\n");
	bundle_close(&b);
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	strv_free(&av);
	assert_int_equal(argv_build(&b, &o, &av, &err), -1);
	assert_non_null(strstr(err, "leads out of the bundle"));
	free(err);
	strv_free(&av);
	bundle_close(&b);
	rm_rf(tmp);
	free(link);
	free(tmp);
	free(bpath);
	free(data);
	free(conf);
}

/* An absolute path outside the bundle needs --allow-path or allow_paths;
 * a link or ".." cannot walk out of an allowed folder. */
static void outside_paths(void **state)
{
	(void)state;
	char *tmp = test_tmpdir(), *bpath = xasprintf("%s/o.utm", tmp), *data = xasprintf("%s/Data", bpath);
	char *isos = xasprintf("%s/isos", tmp), *iso = xasprintf("%s/isos/x.iso", tmp);
	mkdir_p(data, 0755);
	mkdir_p(isos, 0755);
	write_text(iso, "iso");
	char *conf = xasprintf("%s/vm.conf", bpath);
	char *text = xasprintf("uuid = '11111111-2222-4333-8444-555555555555'\n"
			       "drive cd0 {\n image = '%s'\n media = 'cdrom'\n}\n", iso);
	write_text(conf, text);
	struct bundle b;
	char *err = NULL;
	struct argv_opts o = ARGV_OPTS_INIT;
	o.runtime_dir = "/r";
	struct strv av = {0};
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	assert_int_equal(argv_build(&b, &o, &av, &err), -1);
	assert_non_null(strstr(err, "drive.cd0.image"));
	assert_non_null(strstr(err, "outside the bundle"));
	free(err);
	strv_free(&av);
	/* the user allows the folder on the command line */
	strv_push(&b.allow, isos);
	assert_int_equal(argv_build(&b, &o, &av, &err), 0);
	strv_free(&av);
	/* /etc/shadow through the allowed folder is still refused */
	bundle_close(&b);
	free(text);
	text = xasprintf("uuid = '11111111-2222-4333-8444-555555555555'\n"
			 "allow_paths = {'%s'}\n"
			 "drive hd0 {\n image = '%s/../../../../../../../etc/shadow'\n}\n", isos, isos);
	write_text(conf, text);
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	assert_int_equal(argv_build(&b, &o, &av, &err), -1);
	assert_non_null(strstr(err, "outside the bundle"));
	free(err);
	strv_free(&av);
	bundle_close(&b);
	/* the config's allow_paths allows the file */
	free(text);
	text = xasprintf("uuid = '11111111-2222-4333-8444-555555555555'\n"
			 "allow_paths = {'%s'}\n"
			 "drive cd0 {\n image = '%s'\n media = 'cdrom'\n}\n", iso, iso);
	write_text(conf, text);
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	assert_int_equal(argv_build(&b, &o, &av, &err), 0);
	strv_free(&av);
	bundle_close(&b);
	rm_rf(tmp);
	free(text);
	free(iso);
	free(isos);
	free(tmp);
	free(bpath);
	free(data);
	free(conf);
}

static int fake_fd = 100;
static int fake_open(void *ctx, const char *path, int flags, char **err)
{
	struct strv *log = ctx;
	(void)err;
	strv_pushf(log, "%s %d", strrchr(path, '/') + 1, flags & O_ACCMODE);
	return fake_fd++;
}

/* With open_file (QEMU as another user), files become fd sets and /dev/fd/N,
 * runtime sockets /proc/self/fd/N/NAME, and -sandbox is there. */
static void fd_passing(void **state)
{
	(void)state;
	char *tmp = test_tmpdir(), *bpath = xasprintf("%s/f.utm", tmp), *data = xasprintf("%s/Data", bpath);
	mkdir_p(data, 0755);
	char *conf = xasprintf("%s/vm.conf", bpath);
	write_text(conf, "uuid = '11111111-2222-4333-8444-555555555555'\n"
			 "kernel = 'vmlinuz'\ndisplay = 'vnc'\n"
			 "drive hd0 {\n image = 'hd0.qcow2'\n format = 'qcow2'\n}\n"
			 "drive cd0 {\n image = 'x.iso'\n media = 'cdrom'\n}\n");
	struct bundle b;
	char *err = NULL;
	struct strv log = {0}, av = {0};
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	struct argv_opts o = ARGV_OPTS_INIT;
	o.runtime_dir = "/r";
	o.runtime_dirfd = 9;
	o.open_file = fake_open;
	o.open_ctx = &log;
	fake_fd = 100;
	assert_int_equal(argv_build(&b, &o, &av, &err), 0);
	assert_true(strv_contains(&av, "-sandbox"));
	assert_true(strv_contains(&av, QEMU_SANDBOX));
	assert_true(strv_contains(&av, "/dev/fd/100"));		/* the kernel */
	char *rd = realpath(data, NULL);
	char *hd0 = xasprintf("fd=101,set=1,opaque=%s/hd0.qcow2", rd);
	char *hd0ro = xasprintf("fd=102,set=1,opaque=%s/hd0.qcow2", rd);
	assert_true(strv_contains(&av, hd0));	/* hd0, read-write */
	assert_true(strv_contains(&av, hd0ro));	/* hd0, read-only */
	free(hd0);
	free(hd0ro);
	free(rd);
	assert_true(strv_contains(&av, "if=none,id=drive-hd0,file=/dev/fdset/1,format=qcow2,discard=unmap,detect-zeroes=unmap"));
	rd = realpath(data, NULL);
	char *cd0 = xasprintf("fd=103,set=2,opaque=%s/x.iso", rd);
	assert_true(strv_contains(&av, cd0)); /* cd0 */
	free(cd0);
	free(rd);
	assert_true(strv_contains(&av, "unix:/proc/self/fd/9/vnc.sock"));
	assert_true(strv_contains(&log, "vmlinuz 0"));
	assert_true(strv_contains(&log, "hd0.qcow2 2"));
	assert_true(strv_contains(&log, "x.iso 0"));
	assert_true(strv_contains(&log, "console.log 1"));
	strv_free(&av);
	/* --no-sandbox */
	o.no_sandbox = true;
	o.open_file = NULL;
	o.runtime_dirfd = -1;
	assert_int_equal(argv_build(&b, &o, &av, &err), 0);
	assert_false(strv_contains(&av, "-sandbox"));
	strv_free(&av);
	strv_free(&log);
	bundle_close(&b);
	rm_rf(tmp);
	free(tmp);
	free(bpath);
	free(data);
	free(conf);
}

int main(void)
{
	golden_dir = xasprintf("%s/tests/golden", VM_SRCDIR);
	struct dirent **names;
	int n = scandir(golden_dir, &names, is_conf, by_name);
	if (n < 20) {
		fprintf(stderr, "need at least 20 golden configs, found %d\n", n);
		return 1;
	}
	struct CMUnitTest *tests = xcalloc((size_t)n + 4, sizeof *tests);
	for (int i = 0; i < n; i++) {
		tests[i].name = names[i]->d_name;
		tests[i].test_func = golden;
		tests[i].initial_state = names[i]->d_name;
	}
	tests[n] = (struct CMUnitTest)cmocka_unit_test(options);
	tests[n + 1] = (struct CMUnitTest)cmocka_unit_test(escape_refused);
	tests[n + 2] = (struct CMUnitTest)cmocka_unit_test(outside_paths);
	tests[n + 3] = (struct CMUnitTest)cmocka_unit_test(fd_passing);
	return _cmocka_run_group_tests("argv", tests, (size_t)n + 4, NULL, NULL);
}
