/* lib/disk.c: reading qemu-img's JSON, telling images from other files by
 * their first bytes, and the qemu-img round trip (create, info, snapshot,
 * resize, convert) with its errors as one line. */
#include <fcntl.h>
#include <sys/stat.h>

#include "disk.h"
#include "testutil.h"

static const char info_json[] =
    "{\"snapshots\": [{\"icount\": 0, \"vm-clock-nsec\": 5, \"name\": \"before\", \"date-sec\": 1700000000,"
    " \"date-nsec\": 1, \"vm-clock-sec\": 2, \"id\": \"1\", \"vm-state-size\": 92274688},"
    " {\"name\": \"disk-only\", \"id\": \"2\", \"vm-state-size\": 0, \"date-sec\": 1700000100}],"
    " \"virtual-size\": 10737418240, \"filename\": \"hd0.qcow2\", \"cluster-size\": 65536,"
    " \"format\": \"qcow2\", \"actual-size\": 200704, \"backing-filename\": \"base.qcow2\","
    " \"dirty-flag\": false}";

static void parse_info(void **state)
{
	struct disk_info d;
	char *err = NULL;
	assert_int_equal(disk_info_parse(info_json, &d, &err), 0);
	assert_string_equal(d.format, "qcow2");
	assert_string_equal(d.filename, "hd0.qcow2");
	assert_string_equal(d.backing, "base.qcow2");
	assert_true(d.virtual_size == 10737418240ULL);
	assert_true(d.has_actual_size);
	assert_int_equal(d.actual_size, 200704);
	assert_int_equal(d.nsnaps, 2);
	const struct disk_snapshot *s = disk_find_snapshot(&d, "before");
	assert_non_null(s);
	assert_string_equal(s->id, "1");
	assert_int_equal(s->vm_state_size, 92274688);
	assert_int_equal(s->date_sec, 1700000000);
	assert_true(s->vm_clock_nsec == 2000000005ULL);
	assert_int_equal(disk_find_snapshot(&d, "disk-only")->vm_state_size, 0);
	assert_null(disk_find_snapshot(&d, "nope"));
	disk_info_free(&d);

	/* a raw image without snapshots or actual size (QMP's ImageInfo may lack it) */
	assert_int_equal(disk_info_parse("{\"format\":\"raw\",\"virtual-size\":512}", &d, &err), 0);
	assert_int_equal(d.nsnaps, 0);
	assert_false(d.has_actual_size);
	assert_null(d.backing);
	disk_info_free(&d);

	/* broken input: one line, nothing allocated */
	assert_int_equal(disk_info_parse("{\"format\":\"raw\"}", &d, &err), -1);
	assert_non_null(strstr(err, "virtual size"));
	free(err);
	assert_int_equal(disk_info_parse("qemu-img: oops", &d, &err), -1);
	assert_non_null(strstr(err, "not JSON"));
	free(err);
	assert_int_equal(disk_info_parse("", &d, &err), -1);
	free(err);
	assert_int_equal(disk_info_parse("[1,2]", &d, &err), -1);
	free(err);
}

static char *make_file(const char *dir, const char *name, const void *data, size_t len, off_t size)
{
	char *p = path_join(dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	if (size)
		assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
	return p;
}

static void probe(void **state)
{
	char *tmp = test_tmpdir(), *err = NULL;
	static const struct {
		const char *name, *magic;
		size_t len;
		off_t size;
		const char *format; /* NULL: refused, with this in the message: */
		const char *why;
	} cases[] = {
	    {"a.qcow2", "QFI\xfb\0\0\0\3", 8, 4096, "qcow2", NULL},
	    {"a.vmdk", "KDMV", 4, 4096, "vmdk", NULL},
	    {"a.vhdx", "vhdxfile", 8, 4096, "vhdx", NULL},
	    {"a.img", "", 0, 1 << 20, "raw", NULL},
	    {"a.iso", "\0\0", 2, 2048 * 20, "raw", NULL},
	    {"a.gz", "\x1f\x8b\x08\0", 4, 4096, NULL, "a gzip file, not a disk image"},
	    {"a.xz", "\xfd" "7zXZ\0", 6, 4096, NULL, "an xz file"},
	    {"a.zip", "PK\x03\x04", 4, 4096, NULL, "a zip file"},
	    {"a.elf", "\x7f" "ELF", 4, 4096, NULL, "an ELF program"},
	    {"a.txt", "hello\n", 6, 0, NULL, "6 bytes, not a whole number of 512-byte sectors"},
	    {"empty", "", 0, 0, NULL, "empty, not a disk image"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *p = make_file(tmp, cases[i].name, cases[i].magic, cases[i].len, cases[i].size);
		const char *f = disk_probe(p, &err);
		if (cases[i].format) {
			if (!f)
				fail_msg("%s: %s", cases[i].name, err);
			assert_string_equal(f, cases[i].format);
		} else {
			assert_null(f);
			if (!strstr(err, cases[i].why) || !strstr(err, cases[i].name))
				fail_msg("%s: '%s' lacks '%s'", cases[i].name, err, cases[i].why);
			free(err);
		}
		free(p);
	}
	/* a tar archive: "ustar" at 257 */
	char tarh[512] = "file.txt";
	memcpy(tarh + 257, "ustar", 5);
	char *tar = make_file(tmp, "a.tar", tarh, sizeof tarh, 10240);
	assert_null(disk_probe(tar, &err));
	assert_non_null(strstr(err, "a tar archive"));
	free(err);
	free(tar);
	/* folders and missing files */
	assert_null(disk_probe(tmp, &err));
	assert_non_null(strstr(err, "a folder, not a disk image"));
	free(err);
	char *missing = path_join(tmp, "missing.img");
	assert_null(disk_probe(missing, &err));
	assert_non_null(strstr(err, "missing.img: No such file or directory"));
	free(err);
	free(missing);
	rm_rf(tmp);
	free(tmp);
}

static void human(void **state)
{
	static const struct {
		uint64_t n;
		const char *s;
	} t[] = {
	    {0, "0"},	       {512, "512"},	{1024, "1K"},	       {200704, "196K"},
	    {1536, "1.5K"},    {10485760, "10M"}, {1610612736, "1.5G"}, {1073741824ULL * 40, "40G"},
	    {1099511627776ULL, "1T"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char *s = disk_human_size(t[i].n);
		assert_string_equal(s, t[i].s);
		free(s);
	}
}

static bool have_qemu_img(void)
{
	return system("qemu-img --version >/dev/null 2>&1") == 0;
}

static void qemu_img_round_trip(void **state)
{
	if (!have_qemu_img())
		skip();
	char *tmp = test_tmpdir(), *err = NULL;
	char *base = path_join(tmp, "base.qcow2"), *ov = path_join(tmp, "over lay.qcow2"),
	     *raw = path_join(tmp, "copy.img");
	struct disk_info d;

	assert_int_equal(disk_create(base, "qcow2", 64ULL << 20, NULL, NULL, &err), 0);
	assert_string_equal(disk_probe(base, &err), "qcow2");
	assert_int_equal(disk_info(base, "qcow2", false, &d, &err), 0);
	assert_true(d.virtual_size == 64ULL << 20);
	disk_info_free(&d);

	/* an overlay takes its size from the backing file */
	assert_int_equal(disk_create(ov, "qcow2", 0, "base.qcow2", "qcow2", &err), 0);
	assert_int_equal(disk_info(ov, NULL, false, &d, &err), 0);
	assert_string_equal(d.backing, "base.qcow2");
	assert_true(d.virtual_size == 64ULL << 20);
	disk_info_free(&d);

	/* snapshots: create, find, refuse a second of the same name, apply, delete */
	assert_int_equal(disk_snapshot(base, DISK_SNAP_CREATE, "s1", &err), 0);
	assert_int_equal(disk_info(base, "qcow2", false, &d, &err), 0);
	assert_non_null(disk_find_snapshot(&d, "s1"));
	disk_info_free(&d);
	assert_int_equal(disk_snapshot(base, DISK_SNAP_APPLY, "s1", &err), 0);
	assert_int_equal(disk_snapshot(base, DISK_SNAP_DELETE, "s1", &err), 0);
	assert_int_equal(disk_snapshot(base, DISK_SNAP_DELETE, "s1", &err), -1);
	assert_true(has_prefix(err, "qemu-img: ")); /* qemu-img's own reason, one line */
	assert_null(strchr(err, '\n'));
	free(err);

	/* resize: grow; a shrink without --shrink is refused with the real
	 * reason (not the warning qemu-img prints after it) */
	assert_int_equal(disk_resize(base, "qcow2", 128ULL << 20, false, &err), 0);
	assert_int_equal(disk_resize(base, "qcow2", 32ULL << 20, false, &err), -1);
	assert_non_null(strstr(err, "--shrink"));
	assert_null(strstr(err, "warning"));
	free(err);
	assert_int_equal(disk_resize(base, "qcow2", 32ULL << 20, true, &err), 0);

	/* convert: a flat copy in another format */
	assert_int_equal(disk_convert(ov, "qcow2", raw, "raw", &err), 0);
	assert_string_equal(disk_probe(raw, &err), "raw");

	/* failures name the file */
	char *missing = path_join(tmp, "missing.qcow2");
	assert_int_equal(disk_info(missing, NULL, false, &d, &err), -1);
	assert_non_null(strstr(err, "missing.qcow2"));
	free(err);
	free(missing);

	rm_rf(tmp);
	free(base);
	free(ov);
	free(raw);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_info),
	    cmocka_unit_test(probe),
	    cmocka_unit_test(human),
	    cmocka_unit_test(qemu_img_round_trip),
	};
	return cmocka_run_group_tests_name("disk", tests, NULL, NULL);
}
