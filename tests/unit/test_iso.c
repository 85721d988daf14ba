/* lib/iso.c: ISO 9660 images with a label, Rock Ridge names and Joliet,
 * written atomically: what a failed or discarded image leaves behind is
 * nothing. The images are read back with libarchive's reader and by looking
 * at the volume descriptors themselves. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "iso.h"
#include "testutil.h"

/* name -> content of every regular file in the image (as "name=content\n",
 * sorted by the order libarchive reads them), symlinks as "name->target". */
static char *read_back(const char *path)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_iso9660(a);
	if (archive_read_open_filename(a, path, 10240) != ARCHIVE_OK)
		fail_msg("%s: %s", path, archive_error_string(a));
	struct buf out = {0};
	struct archive_entry *e;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (archive_entry_filetype(e) == AE_IFLNK) {
			buf_printf(&out, "%s->%s\n", name, archive_entry_symlink(e));
		} else if (archive_entry_filetype(e) == AE_IFREG) {
			char data[256] = "";
			la_ssize_t n = archive_read_data(a, data, sizeof data - 1);
			data[n > 0 ? n : 0] = '\0';
			buf_printf(&out, "%s=%s|%o\n", name, data, (unsigned)archive_entry_perm(e));
		} else if (archive_entry_filetype(e) == AE_IFDIR) {
			buf_printf(&out, "%s/\n", name);
		}
	}
	archive_read_free(a);
	return out.s ? out.s : xstrdup("");
}

/* The volume identifier of descriptor n (0: primary at sector 16, 1: the next,
 * the Joliet one when present), blanks trimmed; Joliet is UCS-2 big endian. */
static char *volume_id(const char *path, int n)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	unsigned char d[2048];
	assert_int_equal(pread(fd, d, sizeof d, (off_t)(16 + n) * 2048), (ssize_t)sizeof d);
	close(fd);
	char id[33] = "";
	size_t k = 0;
	if (d[0] == 2) { /* supplementary: UCS-2 */
		for (int i = 40; i < 72; i += 2)
			id[k++] = (char)d[i + 1];
	} else {
		memcpy(id, d + 40, 32);
		k = 32;
	}
	id[k] = '\0';
	while (k && (id[k - 1] == ' ' || id[k - 1] == '\0'))
		id[--k] = '\0';
	return xstrdup(id);
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void seed_with_label(void **state)
{
	char *tmp = test_tmpdir(), *iso = path_join(tmp, "seed.iso"), *err = NULL;
	struct iso_opts o = {.label = "cidata"};
	struct iso *w = iso_create(iso, &o, &err);
	assert_non_null(w);
	assert_false(file_exists(iso)); /* only a temporary name so far */
	assert_int_equal(iso_add_data(w, "meta-data", "instance-id: x\n", 15, &err), 0);
	assert_int_equal(iso_add_data(w, "user-data", "#cloud-config\n", 14, &err), 0);
	assert_int_equal(iso_add_data(w, "/nested/dir/file.txt", "deep", 4, &err), 0);
	assert_int_equal(iso_commit(w, &err), 0);
	assert_true(file_exists(iso));
	assert_int_equal(count_entries(tmp), 1); /* no temporary file left */

	char *text = read_back(iso);
	assert_non_null(strstr(text, "meta-data=instance-id: x\n|644\n"));
	assert_non_null(strstr(text, "user-data=#cloud-config\n|644\n"));
	assert_non_null(strstr(text, "nested/dir/file.txt=deep|644\n"));
	free(text);
	/* the primary descriptor holds d-characters; Joliet keeps the case,
	 * which is what blkid (and so cloud-init) reads */
	char *pvd = volume_id(iso, 0), *joliet = volume_id(iso, 1);
	assert_string_equal(pvd, "CIDATA");
	assert_string_equal(joliet, "cidata");
	free(pvd);
	free(joliet);
	rm_rf(tmp);
	free(iso);
	free(tmp);
}

static void tree_from_host(void **state)
{
	char *tmp = test_tmpdir();
	char *src = path_join(tmp, "src"), *sub = path_join(src, "sub"), *iso = path_join(tmp, "t.iso");
	assert_int_equal(mkdir_p(sub, 0755), 0);
	char *f1 = path_join(src, "A long File Name.txt"), *f2 = path_join(sub, "run.sh"),
	     *ln = path_join(src, "link");
	write_text(f1, "one");
	write_text(f2, "#!/bin/sh\n");
	assert_int_equal(chmod(f2, 0755), 0);
	assert_int_equal(symlink("sub/run.sh", ln), 0);

	char *err = NULL;
	struct iso *w = iso_create(iso, NULL, &err);
	assert_non_null(w);
	assert_int_equal(iso_add_path(w, "", src, &err), 0);	  /* contents at the root */
	assert_int_equal(iso_add_path(w, "copy.txt", f1, &err), 0); /* one file, renamed */
	assert_int_equal(iso_commit(w, &err), 0);

	char *text = read_back(iso);
	/* Rock Ridge: long mixed-case names, modes and symlinks as they were */
	assert_non_null(strstr(text, "A long File Name.txt=one|644\n"));
	assert_non_null(strstr(text, "sub/run.sh=#!/bin/sh\n|755\n"));
	assert_non_null(strstr(text, "link->sub/run.sh\n"));
	assert_non_null(strstr(text, "copy.txt=one|644\n"));
	free(text);
	char *label = volume_id(iso, 0);
	assert_string_equal(label, "CDROM"); /* the default */
	free(label);

	/* the same tree again gives the same file list (sorted walk) */
	char *iso2 = path_join(tmp, "t2.iso");
	w = iso_create(iso2, NULL, &err);
	assert_int_equal(iso_add_path(w, "/", src, &err), 0);
	assert_int_equal(iso_add_path(w, "copy.txt", f1, &err), 0);
	assert_int_equal(iso_commit(w, &err), 0);
	char *a = read_back(iso), *b = read_back(iso2);
	assert_string_equal(a, b);
	free(a);
	free(b);
	free(iso2);

	rm_rf(tmp);
	free(f1);
	free(f2);
	free(ln);
	free(src);
	free(sub);
	free(iso);
	free(tmp);
}

static void failures_leave_nothing(void **state)
{
	char *tmp = test_tmpdir(), *iso = path_join(tmp, "bad.iso"), *err = NULL;
	const char *why;

	/* labels: 1..32 printable characters */
	assert_true(iso_label_valid("cidata", &why));
	assert_true(iso_label_valid("My Disc 2024", &why));
	assert_false(iso_label_valid("", &why));
	assert_false(iso_label_valid("123456789012345678901234567890123", &why));
	assert_false(iso_label_valid("tab\there", &why));
	struct iso_opts o = {.label = "123456789012345678901234567890123"};
	assert_null(iso_create(iso, &o, &err));
	assert_non_null(strstr(err, "longer than 32"));
	free(err);
	err = NULL;
	assert_int_equal(count_entries(tmp), 0);

	/* a missing input: the error names it, commit refuses, nothing remains */
	struct iso *w = iso_create(iso, NULL, &err);
	assert_non_null(w);
	char *missing = path_join(tmp, "no-such-file");
	assert_int_equal(iso_add_path(w, "x", missing, &err), -1);
	assert_non_null(strstr(err, "no-such-file: No such file"));
	free(err);
	err = NULL;
	assert_int_equal(iso_commit(w, &err), -1);
	free(err);
	err = NULL;
	assert_false(file_exists(iso));
	assert_int_equal(count_entries(tmp), 0);

	/* a FIFO is not something an image can hold */
	char *fifo = path_join(tmp, "fifo");
	assert_int_equal(mkfifo(fifo, 0644), 0);
	w = iso_create(iso, NULL, &err);
	assert_int_equal(iso_add_path(w, "f", fifo, &err), -1);
	assert_non_null(strstr(err, "not a regular file"));
	free(err);
	err = NULL;
	iso_discard(w);
	unlink(fifo);
	assert_int_equal(count_entries(tmp), 0);

	/* discard after good writes: still nothing; an existing image is untouched */
	write_text(iso, "old");
	w = iso_create(iso, NULL, &err);
	assert_int_equal(iso_add_data(w, "a", "b", 1, &err), 0);
	iso_discard(w);
	iso_discard(NULL);
	char *old = read_file(iso, NULL);
	assert_string_equal(old, "old");
	free(old);
	assert_int_equal(count_entries(tmp), 1);

	/* a folder that does not exist for the image itself */
	char *nodir = path_join(tmp, "no/such/dir/x.iso");
	assert_null(iso_create(nodir, NULL, &err));
	assert_non_null(strstr(err, "x.iso"));
	free(err);

	rm_rf(tmp);
	free(nodir);
	free(fifo);
	free(missing);
	free(iso);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(seed_with_label),
	    cmocka_unit_test(tree_from_host),
	    cmocka_unit_test(failures_leave_nothing),
	};
	return cmocka_run_group_tests_name("iso", tests, NULL, NULL);
}
