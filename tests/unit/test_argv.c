/* Golden tests for the argv mapping: tests/golden/NAME.conf -> NAME.argv.
 * UPDATE_GOLDEN=1 rewrites the .argv files (review the diff!). */
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>

#include "argv.h"
#include "qopt.h"
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
	/* read-write from the start: no read-only fd of the set holds a lock */
	assert_true(strv_contains(
	    &av, "if=none,id=drive-hd0,file=/dev/fdset/1,format=qcow2,discard=unmap,detect-zeroes=unmap,auto-read-only=off"));
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


/* ---- issue 15: no config value adds a key to a QEMU option ---- */

/* The options whose value QEMU splits at ',' (",," a literal comma). */
static bool splits_at_commas(const char *opt)
{
	static const char *const opts[] = {"-name", "-machine", "-accel", "-cpu", "-drive", "-device", "-netdev",
					   "-net", "-chardev", "-mon", "-serial", "-gdb", "-fsdev", "-spice",
					   "-vnc", "-audiodev", "-tpmdev", "-add-fd", "-rtc", "-sandbox", NULL};
	return str_in(opt, opts);
}

/* The keys of an option string as QEMU reads them: NULL when none is
 * "x-injected" and it is no JSON, else the offending option. keys_opt: the
 * one option whose keys the value may add (machine_props to -machine). */
static const char *injected(const struct strv *av, const char *keys_opt)
{
	for (size_t i = 1; i + 1 < av->n; i++) {
		if (!splits_at_commas(av->v[i]) || (keys_opt && !strcmp(av->v[i], keys_opt)))
			continue;
		const char *v = av->v[++i];
		if (v[0] == '{')
			return v;
		for (const char *p = v;;) {
			const char *e = p;
			while (*e && !(*e == ',' && e[1] != ',')) /* ",," is a literal comma */
				e += *e == ',' ? 2 : 1;
			if (!strncmp(p, "x-injected", 10))
				return v;
			if (!*e)
				break;
			p = e + 1;
		}
	}
	return NULL;
}

static const char walk_base[] =
    "uuid = '11111111-2222-4333-8444-555555555555'\n"
    "name = 'walk'\ncpu = 'max'\ncpu_flags = {'+avx'}\nmachine_props = 'hpet=off'\n"
    "kernel = 'vmlinuz'\ninitrd = 'initrd'\ndtb = 'x.dtb'\nappend = 'console=ttyS0'\n"
    "display = 'vnc'\ndisplay_device = 'virtio-vga'\nsound = 'AC97'\nusb = '3.0'\ntpm = true\n"
    "tcg_thread = 'multi'\ntcg_tb_size = 64\nallow_paths = {'%s'}\n%s"
    "drive d0 {\n image = 'd0.qcow2'\n format = 'qcow2'\n}\n"
    "drive cd {\n image = 'x.iso'\n media = 'cdrom'\n}\n"
    "drive fl {\n image = 'fl.img'\n interface = 'floppy'\n}\n"
    "net u {\n mode = 'user'\n subnet = '10.0.2.0/24'\n forward = {'tcp::2222-:22'}\n mac = '52:54:00:00:00:01'\n}\n"
    "net t {\n mode = 'tap'\n ifname = 'tap0'\n mac = '52:54:00:00:00:02'\n}\n"
    "net b {\n mode = 'bridge'\n bridge = 'br0'\n mac = '52:54:00:00:00:03'\n}\n"
    "net s {\n mode = 'socket'\n address = '127.0.0.1:1234'\n mac = '52:54:00:00:00:04'\n}\n"
    "net m {\n mode = 'mcast'\n address = '230.0.0.1:1234'\n mac = '52:54:00:00:00:05'\n}\n"
    "net o {\n model = ''\n mac = '52:54:00:00:00:06'\n}\n"
    "serial f {\n mode = 'file'\n path = 'serial.log'\n}\n"
    "serial p {\n mode = 'socket'\n target = 'monitor'\n}\n"
    "share h {\n path = '%s/h'\n tag = 'hostshare'\n}\n";

/* Every field of the table, in every section of a bundle that uses it
 * (two bundles: -bios, and UEFI for efi_vars), set to hostile values as
 * vm-config set does: refused with an error naming the key, or in the
 * argv with no key added. extra_args alone is raw, by design, and
 * machine_props adds keys to -machine only. */
static void every_field_hostile(void **state)
{
	(void)state;
	char *tmp = test_tmpdir(), *bpath = xasprintf("%s/w.utm", tmp), *data = xasprintf("%s/Data", bpath);
	char *allowed = xasprintf("%s/allowed", tmp), *hd = xasprintf("%s/h", allowed);
	mkdir_p(data, 0755);
	mkdir_p(hd, 0755);
	char *conf = xasprintf("%s/vm.conf", bpath), *abs_hostile = xasprintf("%s/v,x-injected=on", allowed);
	const char *hostile[] = {"v,x-injected=on", ",x-injected=on", "v,,,x-injected=on", abs_hostile,
				 "{\"x-injected\":\"on\"}", "v\nx-injected=on", "v x-injected=on,", "v=1,x-injected=on"};
	const char *firmwares[] = {"bios = 'bios.bin'\n", "firmware = 'uefi'\n"};
	int refused = 0, escaped = 0, used_free_text = 0;
	for (int fw = 0; fw < 2; fw++) {
		char *text = xasprintf(walk_base, allowed, firmwares[fw], allowed);
		write_text(conf, text);
		free(text);
		struct bundle b;
		char *err = NULL;
		if (bundle_open(&b, bpath, &err) < 0)
			fail_msg("%s", err);
		struct argv_opts o = ARGV_OPTS_INIT;
		o.runtime_dir = "/r";
		struct strv av = {0};
		if (argv_build(&b, &o, &av, &err) < 0)
			fail_msg("the base bundle: %s", err);
		assert_null(injected(&av, NULL));
		strv_free(&av);
		struct vm_config orig;
		config_copy(&orig, &b.cfg);
		for (int k = SEC_TOP; k < SEC_COUNT; k++) {
			const struct section_desc *sd = &config_sections[k];
			size_t nelem = k == SEC_TOP ? 1 : config_section_count(&orig, k);
			for (size_t ei = 0; ei < nelem; ei++) {
				const char *id = k == SEC_TOP ? NULL : *(char *const *)config_section_elem(&orig, k, ei);
				for (const struct field *f = sd->fields; f->key; f++) {
					if (k == SEC_TOP && !strcmp(f->key, "extra_args"))
						continue; /* the deliberate way to pass raw arguments */
					char *key = id ? xasprintf("%s.%s.%s", sd->name, id, f->key) : xstrdup(f->key);
					for (size_t h = 0; h < sizeof hostile / sizeof *hostile; h++) {
						config_free(&b.cfg);
						config_copy(&b.cfg, &orig);
						if (config_set(&b.cfg, key, hostile[h], &err) < 0) {
							if (!strstr(err, key))
								fail_msg("set %s: the error does not name the key: %s", key, err);
							free(err);
							refused++;
							continue;
						}
						/* what vm-config set checks before it saves */
						struct vm_config eff;
						bundle_effective_config(&b, &eff);
						char *problem = config_first_problem(&eff);
						config_free(&eff);
						if (argv_build(&b, &o, &av, &err) < 0) {
							if (!strstr(err, key))
								fail_msg("argv %s = '%s': the error does not name the key: %s", key,
									 hostile[h], err);
							free(err);
							free(problem);
							strv_free(&av);
							refused++;
							continue;
						}
						if (problem)
							fail_msg("%s = '%s': argv built although '%s'", key, hostile[h], problem);
						/* machine_props is -machine's KEY=VALUE list by design
						 * (UTM's MachinePropertyOverride): keys there only */
						const char *bad = injected(&av, strcmp(key, "machine_props") ? NULL : "-machine");
						if (bad)
							fail_msg("%s = '%s' added a key: %s", key, hostile[h], bad);
						char *esc = qopt_escape(hostile[h]);
						for (size_t i = 0; i < av.n; i++)
							if (strstr(av.v[i], esc)) {
								used_free_text++;
								break;
							}
						free(esc);
						escaped++;
						strv_free(&av);
					}
					free(key);
				}
			}
		}
		config_free(&orig);
		bundle_close(&b);
	}
	print_message("every field: %d hostile values refused naming the key, %d in the argv without a new key "
		       "(%d of them seen escaped)\n",
		       refused, escaped, used_free_text);
	assert_true(refused > 100);
	assert_true(used_free_text >= 8); /* name, drive images, serial path, share path... reached QEMU escaped */
	rm_rf(tmp);
	free(tmp);
	free(bpath);
	free(data);
	free(allowed);
	free(hd);
	free(conf);
	free(abs_hostile);
}

/* The reproduction of issue 15: a bridge name with a helper= in it. */
static void bridge_helper_refused(void **state)
{
	(void)state;
	char *tmp = test_tmpdir(), *bpath = xasprintf("%s/br.utm", tmp), *data = xasprintf("%s/Data", bpath);
	mkdir_p(data, 0755);
	char *conf = xasprintf("%s/vm.conf", bpath);
	write_text(conf, "uuid = '11111111-2222-4333-8444-555555555555'\n"
			 "net br0 {\n mode = 'bridge'\n bridge = 'br0,helper=touch /tmp/PWNED;'\n"
			 " mac = '52:54:00:00:00:01'\n}\n");
	struct bundle b;
	char *err = NULL;
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	struct argv_opts o = ARGV_OPTS_INIT;
	o.runtime_dir = "/r";
	struct strv av = {0};
	assert_int_equal(argv_build(&b, &o, &av, &err), -1);
	assert_non_null(strstr(err, "net.br0.bridge: 'br0,helper=touch /tmp/PWNED;' is not an interface name"));
	free(err);
	strv_free(&av);
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
	struct CMUnitTest *tests = xcalloc((size_t)n + 6, sizeof *tests);
	for (int i = 0; i < n; i++) {
		tests[i].name = names[i]->d_name;
		tests[i].test_func = golden;
		tests[i].initial_state = names[i]->d_name;
	}
	tests[n] = (struct CMUnitTest)cmocka_unit_test(options);
	tests[n + 1] = (struct CMUnitTest)cmocka_unit_test(escape_refused);
	tests[n + 2] = (struct CMUnitTest)cmocka_unit_test(outside_paths);
	tests[n + 3] = (struct CMUnitTest)cmocka_unit_test(fd_passing);
	tests[n + 4] = (struct CMUnitTest)cmocka_unit_test(every_field_hostile);
	tests[n + 5] = (struct CMUnitTest)cmocka_unit_test(bridge_helper_refused);
	return _cmocka_run_group_tests("argv", tests, (size_t)n + 6, NULL, NULL);
}
