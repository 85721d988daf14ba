/* The configuration model: codec, key paths, validation, sizes. */
#include "bundle.h"
#include "config.h"
#include "testutil.h"

static const char sample[] =
    "name = 'web server'\n"
    "uuid = '11111111-2222-4333-8444-555555555555'\n"
    "notes = 'it\\'s \"quoted\" \\\\ ${HOME}'\n"
    "memory = 2048\n"
    "cpus = 2\n"
    "cpu_flags = {'+avx2', '-hle'}\n"
    "rng = true\n"
    "drive hd0 {\n  image = 'hd0.qcow2'\n}\n"
    "net net0 {\n  mac = '52:54:00:12:34:56'\n  forward = {'tcp::8080-:80'}\n}\n";

static void parse_ok(struct vm_config *c, const char *text)
{
	char *err = NULL;
	if (config_parse_vmconf(c, "vm.conf", text, &err) < 0)
		fail_msg("parse: %s", err);
}

static char *parse_err(const char *text)
{
	struct vm_config c;
	char *err = NULL;
	assert_int_equal(config_parse_vmconf(&c, "x/vm.conf", text, &err), -1);
	assert_non_null(err);
	return err;
}

/* config_copy goes through the field table: a deep copy that writes the
 * same vm.conf, shares no pointer, and keeps every section in order. */
static void copy_is_deep(void **state)
{
	(void)state;
	struct vm_config c, d;
	parse_ok(&c, sample);
	char *err = NULL;
	assert_int_equal(config_set(&c, "serial.s0.mode", "pty", &err), 0);
	assert_int_equal(config_set(&c, "share.sh0.path", "/srv", &err), 0);
	assert_int_equal(config_set(&c, "drive.cd0.media", "cdrom", &err), 0);
	assert_int_equal(config_set(&c, "tcg_tb_size", "64", &err), 0);
	config_copy(&d, &c);
	char *a = config_format_vmconf(&c), *b = config_format_vmconf(&d);
	assert_string_equal(a, b);
	assert_ptr_not_equal(c.name, d.name);
	assert_ptr_not_equal(c.drives, d.drives);
	assert_ptr_not_equal(c.nets[0].forward.v[0], d.nets[0].forward.v[0]);
	assert_string_equal(d.source, c.source);
	assert_int_equal(d.ndrives, 2);
	assert_string_equal(d.drives[1].id, "cd0");
	config_free(&c); /* d stands alone */
	char *b2 = config_format_vmconf(&d);
	assert_string_equal(b, b2);
	free(a);
	free(b);
	free(b2);
	config_free(&d);
}

static void roundtrip(void **state)
{
	(void)state;
	struct vm_config c, d;
	parse_ok(&c, sample);
	assert_string_equal(c.name, "web server");
	assert_int_equal(c.memory, 2048);
	assert_int_equal(c.cpu_flags.n, 2);
	assert_true(c.rng);
	assert_string_equal(c.notes, "it's \"quoted\" \\ ${HOME}");
	assert_int_equal(c.ndrives, 1);
	assert_string_equal(c.nets[0].forward.v[0], "tcp::8080-:80");
	/* a value with quotes, backslashes and ${...} survives a write and read */
	free(c.notes);
	c.notes = xstrdup("it's \"quoted\" \\ ${HOME} \\n\nsecond line");
	char *text = config_format_vmconf(&c);
	parse_ok(&d, text);
	assert_string_equal(d.notes, c.notes);
	char *text2 = config_format_vmconf(&d);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	config_free(&c);
	config_free(&d);
}

static void errors_name_file_and_line(void **state)
{
	(void)state;
	char *e = parse_err("name = 'x'\n\nmemory = lots\n");
	assert_non_null(strstr(e, "x/vm.conf:3:"));
	assert_non_null(strstr(e, "memory"));
	free(e);
	e = parse_err("name = 'x'\nfrobnicate = 1\n");
	assert_non_null(strstr(e, "x/vm.conf:2:"));
	assert_non_null(strstr(e, "frobnicate"));
	free(e);
	e = parse_err("arch = 'vax'\n");
	assert_non_null(strstr(e, "arch"));
	assert_non_null(strstr(e, "x86_64"));
	free(e);
	e = parse_err("drive a {\n image = 'x'\n}\ndrive a {\n}\n"); /* duplicate id */
	free(e);
	e = parse_err("drive a {\n readonly = maybe\n}\n");
	assert_non_null(strstr(e, "drive.a.readonly"));
	free(e);
	e = parse_err("name = 'truncated"); /* truncated file */
	assert_non_null(strstr(e, "x/vm.conf"));
	free(e);
}

static void key_paths(void **state)
{
	(void)state;
	struct vm_config c;
	parse_ok(&c, sample);
	char *err = NULL;
	struct buf out = {0};
	assert_int_equal(config_set(&c, "memory", "4G", &err), 0);
	assert_int_equal(c.memory, 4096);
	assert_int_equal(config_get(&c, "memory", &out, &err), 0);
	assert_string_equal(out.s, "4096");
	buf_free(&out);
	assert_int_equal(config_set(&c, "memory", "1.5G", &err), 0);
	assert_int_equal(c.memory, 1536);
	/* refusals change nothing */
	assert_int_equal(config_set(&c, "memory", "12345K", &err), -1);
	free(err);
	assert_int_equal(c.memory, 1536);
	assert_int_equal(config_set(&c, "cpus", "0", &err), -1);
	free(err);
	assert_int_equal(config_set(&c, "cpus", "two", &err), -1);
	assert_non_null(strstr(err, "cpus"));
	free(err);
	assert_int_equal(config_set(&c, "nosuch", "1", &err), -1);
	assert_non_null(strstr(err, "unknown key"));
	free(err);
	assert_int_equal(config_set(&c, "drive.hd0.interface", "token-ring", &err), -1);
	assert_non_null(strstr(err, "virtio"));
	free(err);
	assert_int_equal(config_set(&c, "drive.bad id.image", "x", &err), -1);
	free(err);
	/* a new section comes into being */
	assert_int_equal(config_set(&c, "drive.cd0.media", "cdrom", &err), 0);
	assert_int_equal(c.ndrives, 2);
	assert_non_null(config_drive(&c, "cd0"));
	assert_int_equal(config_add(&c, "net.net0.forward", "udp::53-:53", &err), 0);
	assert_int_equal(c.nets[0].forward.n, 2);
	assert_int_equal(config_get(&c, "net.net0.forward", &out, &err), 0);
	assert_string_equal(out.s, "tcp::8080-:80\nudp::53-:53");
	buf_free(&out);
	assert_int_equal(config_unset(&c, "drive.cd0", &err), 0);
	assert_int_equal(c.ndrives, 1);
	assert_int_equal(config_unset(&c, "drive.cd0", &err), -1);
	free(err);
	assert_int_equal(config_unset(&c, "notes", &err), 0);
	assert_null(c.notes);
	assert_int_equal(config_get(&c, "notes", &out, &err), 1);
	free(err);
	buf_free(&out);
	char *id = config_new_id(&c, SEC_DRIVE, "hd");
	assert_string_equal(id, "hd1");
	free(id);
	config_free(&c);
}

static int problems(const char *text, const char *needle)
{
	struct vm_config c;
	parse_ok(&c, text);
	config_apply_defaults(&c);
	struct buf errs = {0};
	int n = config_validate(&c, &errs);
	if (needle && (!errs.s || !strstr(errs.s, needle)))
		fail_msg("expected '%s' in: %s", needle, errs.s ? errs.s : "(nothing)");
	buf_free(&errs);
	config_free(&c);
	return n;
}

static void validation(void **state)
{
	(void)state;
	const char *u = "uuid = '11111111-2222-4333-8444-555555555555'\n";
	char *t;
	assert_int_equal(problems(sample, NULL), 0);
	assert_true(problems("name = 'x'\n", "uuid: not set") > 0);
	t = xasprintf("%sdrive hd0 {\n image = '../../etc/shadow'\n}\n", u);
	assert_true(problems(t, "drive.hd0.image") > 0);
	free(t);
	t = xasprintf("%sinitrd = 'i'\n", u);
	assert_true(problems(t, "needs kernel") > 0);
	free(t);
	t = xasprintf("%snet n {\n mac = '01:00:00:00:00:01'\n}\n", u);
	assert_true(problems(t, "unicast") > 0);
	free(t);
	t = xasprintf("%snet n {\n mac = '52:54:00:00:00:01'\n forward = {'tcp:22'}\n}\n", u);
	assert_true(problems(t, "net.n.forward") > 0);
	free(t);
	t = xasprintf("%snet n {\n mode = 'mcast'\n mac = '52:54:00:00:00:01'\n}\n", u);
	assert_true(problems(t, "net.n.address") > 0);
	free(t);
	t = xasprintf("%sdrive d {\n interface = 'ide'\n}\n", u);
	assert_true(problems(t, "only removable drives may be empty") > 0);
	free(t);
	t = xasprintf("%scpu_flags = {'avx'}\n", u);
	assert_true(problems(t, "cpu_flags") > 0);
	free(t);
}

static void defaults(void **state)
{
	(void)state;
	struct vm_config c;
	parse_ok(&c, "arch = 'aarch64'\ndrive a {\n media = 'cdrom'\n}\ndrive b {\n image = 'b.qcow2'\n}\n");
	config_apply_defaults(&c);
	assert_string_equal(c.machine, "virt");
	assert_string_equal(c.drives[0].interface, "scsi");
	assert_true(c.drives[0].readonly);
	assert_string_equal(c.drives[1].interface, "virtio");
	assert_int_equal(c.memory, 512);
	config_free(&c);
	parse_ok(&c, "arch = 'm68k'\n");
	config_apply_defaults(&c);
	assert_string_equal(c.machine, "q800");
	config_free(&c);
	parse_ok(&c, "machine = 'pc'\ndrive a {\n media = 'cdrom'\n}\n");
	config_apply_defaults(&c);
	assert_string_equal(c.arch, "x86_64");
	assert_string_equal(c.drives[0].interface, "ide");
	config_free(&c);
	/* identity: fresh UUID and MACs each time */
	parse_ok(&c, "net n {\n}\n");
	config_new_identity(&c);
	assert_true(uuid_valid(c.uuid));
	assert_true(mac_valid(c.nets[0].mac));
	char *first = xstrdup(c.uuid);
	config_new_identity(&c);
	assert_string_not_equal(first, c.uuid);
	free(first);
	config_free(&c);
}

static void sizes(void **state)
{
	(void)state;
	uint64_t b;
	assert_int_equal(parse_size("512", 1 << 20, &b), 0);
	assert_int_equal(b, 512ULL << 20);
	assert_int_equal(parse_size("2G", 1, &b), 0);
	assert_int_equal(b, 2ULL << 30);
	assert_int_equal(parse_size("1.5G", 1, &b), 0);
	assert_int_equal(b, 3ULL << 29);
	assert_int_equal(parse_size("10GiB", 1, &b), 0);
	assert_int_equal(b, 10ULL << 30);
	assert_int_equal(parse_size("4096K", 1, &b), 0);
	assert_int_equal(b, 4ULL << 20);
	assert_int_equal(parse_size("", 1, &b), -1);
	assert_int_equal(parse_size("G", 1, &b), -1);
	assert_int_equal(parse_size("-1G", 1, &b), -1);
	assert_int_equal(parse_size("1X", 1, &b), -1);
	assert_int_equal(parse_size("99999999999999999999", 1, &b), -1);
	assert_int_equal(parse_size("17179869184T", 1, &b), -1);
	char *s = format_size(2ULL << 30);
	assert_string_equal(s, "2G");
	free(s);
	s = format_size(1536ULL << 20);
	assert_string_equal(s, "1536M");
	free(s);
	struct buf q = {0};
	shell_quote(&q, "a b'c");
	assert_string_equal(q.s, "'a b'\\''c'");
	buf_free(&q);
	shell_quote(&q, "plain,x=1");
	assert_string_equal(q.s, "plain,x=1");
	buf_free(&q);
	shell_quote(&q, "");
	assert_string_equal(q.s, "''");
	buf_free(&q);
}

static void safe_names(void **state)
{
	(void)state;
	assert_true(bundle_name_is_safe("hd0.qcow2"));
	assert_true(bundle_name_is_safe("sub/dir/x.img"));
	assert_true(bundle_name_is_safe("..hidden"));
	assert_false(bundle_name_is_safe("../x"));
	assert_false(bundle_name_is_safe("a/../../x"));
	assert_false(bundle_name_is_safe("a/.."));
	assert_false(bundle_name_is_safe("/etc/passwd"));
	assert_false(bundle_name_is_safe(""));
	char *n = bundle_display_name("/x/y/My VM.utm/");
	assert_string_equal(n, "My VM");
	free(n);
}

static void bundle_find_by_vm_path(void **state)
{
	(void)state;
	char *tmp = test_tmpdir(), *d1 = xasprintf("%s/one", tmp), *d2 = xasprintf("%s/two", tmp);
	char *b = xasprintf("%s/web.utm", d2);
	mkdir_p(b, 0755);
	mkdir_p(d1, 0755);
	char *vp = xasprintf("%s:%s", d1, d2);
	setenv("VM_PATH", vp, 1);
	char *found = bundle_find("web");
	assert_non_null(found);
	assert_string_equal(found, b);
	free(found);
	assert_null(bundle_find("nope"));
	unsetenv("VM_PATH");
	rm_rf(tmp);
	free(tmp);
	free(d1);
	free(d2);
	free(b);
	free(vp);
}

static int fail_make_data(const char *tmp, void *arg)
{
	*(char **)arg = xstrdup(tmp);
	return -1;
}

static void create_is_atomic(void **state)
{
	(void)state;
	char *tmp = test_tmpdir(), *target = xasprintf("%s/new.utm", tmp), *seen = NULL, *err = NULL;
	struct vm_config c;
	parse_ok(&c, sample);
	assert_int_equal(bundle_create(target, &c, fail_make_data, &seen, &err), -1);
	free(err);
	assert_non_null(seen);
	assert_false(file_exists(seen));   /* the temporary folder is gone */
	assert_false(file_exists(target)); /* and nothing was created */
	free(seen);
	assert_int_equal(bundle_create(target, &c, NULL, NULL, &err), 0);
	assert_int_equal(bundle_create(target, &c, NULL, NULL, &err), -1); /* exists */
	assert_non_null(strstr(err, "already exists"));
	free(err);
	struct bundle b;
	assert_int_equal(bundle_open(&b, target, &err), 0);
	assert_string_equal(b.cfg.name, "web server");
	bundle_close(&b);
	config_free(&c);
	rm_rf(tmp);
	free(tmp);
	free(target);
}

/* Issue 15: the field table's grammars, checked by config_validate whatever
 * codec stored the value (a plist's strings bypass config_field_set). */
static void grammars_in_validation(void **state)
{
	(void)state;
	const char *u = "uuid = '11111111-2222-4333-8444-555555555555'\n";
	char *t = xasprintf("%snet br0 {\n mode = 'bridge'\n bridge = 'br0,helper=touch /tmp/PWNED;'\n"
			    " mac = '52:54:00:00:00:01'\n}\n",
			    u);
	assert_int_equal(problems(t, "net.br0.bridge: 'br0,helper=touch /tmp/PWNED;' is not an interface name"), 1);
	free(t);
	t = xasprintf("%ssound = 'intel-hda,x=y'\ndisplay_device = 'virtio-vga,x=y'\n", u);
	assert_int_equal(problems(t, "display_device: 'virtio-vga,x=y' is not a QEMU device name"), 2);
	free(t);
	t = xasprintf("%snet n {\n mac = '52:54:00:00:00:01'\n subnet = '10.0.2.0/24,x'\n address = 'h:1,x'\n}\n", u);
	assert_int_equal(problems(t, "net.n.subnet: '10.0.2.0/24,x' is not an IPv4 network"), 2);
	free(t);
	/* an enum and an id stored past config_field_set */
	struct vm_config c;
	parse_ok(&c, sample);
	config_apply_defaults(&c);
	free(c.display);
	c.display = xstrdup("vnc,x=y");
	struct vm_net *n = config_add_net(&c, "a,b");
	n->mac = xstrdup("52:54:00:00:00:09");
	struct buf errs = {0};
	assert_int_equal(config_validate(&c, &errs), 2);
	assert_non_null(strstr(errs.s, "display: 'vnc,x=y' is not a known value"));
	assert_non_null(strstr(errs.s, "net.a,b: bad net id"));
	buf_free(&errs);
	config_free(&c);
}

/* Issue 15 (2): libconfuse expands ${VAR} from the environment in double
 * quotes and bare words; the text must stay as written. */
static void no_environment_expansion(void **state)
{
	(void)state;
	setenv("UTMKIT_TEST_SECRET", "s3cr3t", 1);
	struct vm_config c;
	parse_ok(&c, "notes = \"a ${UTMKIT_TEST_SECRET} b \\\"${UTMKIT_TEST_SECRET:-x}\\\" \\044\"\n"
		     "name = ${UTMKIT_TEST_SECRET}\n"
		     "# a comment with ${UTMKIT_TEST_SECRET} and 'quotes\n"
		     "cpu_flags = {\"${UTMKIT_TEST_SECRET}\", ${UTMKIT_TEST_SECRET:-d}, '${X}'}\n"
		     "/* block ${UTMKIT_TEST_SECRET} \" */ append = 'it\\'s ${UTMKIT_TEST_SECRET}'\n");
	assert_string_equal(c.notes, "a ${UTMKIT_TEST_SECRET} b \"${UTMKIT_TEST_SECRET:-x}\" $");
	assert_string_equal(c.name, "${UTMKIT_TEST_SECRET}");
	assert_int_equal(c.cpu_flags.n, 3);
	assert_string_equal(c.cpu_flags.v[0], "${UTMKIT_TEST_SECRET}");
	assert_string_equal(c.cpu_flags.v[1], "${UTMKIT_TEST_SECRET:-d}");
	assert_string_equal(c.cpu_flags.v[2], "${X}");
	assert_string_equal(c.append, "it's ${UTMKIT_TEST_SECRET}");
	/* written back, read again: the same text */
	char *text = config_format_vmconf(&c);
	assert_null(strstr(text, "s3cr3t"));
	struct vm_config d;
	parse_ok(&d, text);
	assert_string_equal(d.notes, c.notes);
	free(text);
	config_free(&c);
	config_free(&d);
	/* line numbers are unchanged */
	char *e = parse_err("notes = \"${A}\"\nname = ${B}\nmemory = lots\n");
	assert_non_null(strstr(e, "x/vm.conf:3:"));
	free(e);
	unsetenv("UTMKIT_TEST_SECRET");
}

/* Issue 15 (3): libconfuse compares each section's title with all before
 * it; more than 4096 sections (and lists) are refused before parsing. */
static void too_many_sections(void **state)
{
	(void)state;
	struct buf b = {0};
	for (int i = 0; i < 100000; i++)
		buf_printf(&b, "drive d%d {}\n", i);
	char *e = parse_err(b.s);
	assert_string_equal(e, "x/vm.conf: more than 4096 sections and lists");
	free(e);
	buf_free(&b);
	/* braces in strings and comments do not count */
	buf_puts(&b, "notes = '");
	for (int i = 0; i < 5000; i++)
		buf_puts(&b, "{");
	buf_puts(&b, "'\n# {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n");
	struct vm_config c;
	parse_ok(&c, b.s);
	config_free(&c);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(roundtrip),	    cmocka_unit_test(copy_is_deep),	    cmocka_unit_test(errors_name_file_and_line),
	    cmocka_unit_test(key_paths),	    cmocka_unit_test(validation),
	    cmocka_unit_test(defaults),		    cmocka_unit_test(sizes),
	    cmocka_unit_test(safe_names),	    cmocka_unit_test(bundle_find_by_vm_path),
	    cmocka_unit_test(create_is_atomic),	    cmocka_unit_test(grammars_in_validation),
	    cmocka_unit_test(no_environment_expansion),
	    cmocka_unit_test(too_many_sections),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
