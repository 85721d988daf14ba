/* Bundle archives: the safety rules of the extractor against archives crafted
 * here with libarchive, sparse files both ways, and import's atomicity. */
#include <archive.h> /* lib/archive.h, which brings libarchive's */
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "bundle.h"
#include "testutil.h"

/* One entry of a crafted archive. */
struct ent {
	const char *name;
	mode_t type;	  /* AE_IFREG (default), AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO */
	const char *data; /* file contents */
	const char *link; /* symlink target; with type 0 and hard: a hard link */
	bool hard;
	size_t len; /* of data, when not strlen (zeros) */
};

enum { TAR, TGZ, ZIP };

static void make_archive(const char *path, int kind, const struct ent *ents, size_t n)
{
	struct archive *a = archive_write_new();
	if (kind == ZIP) {
		archive_write_set_format_zip(a);
	} else {
		archive_write_set_format_pax_restricted(a);
		if (kind == TGZ)
			archive_write_add_filter_gzip(a);
	}
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_copy_pathname(e, ents[i].name);
		mode_t type = ents[i].type ? ents[i].type : AE_IFREG;
		archive_entry_set_filetype(e, type);
		archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
		size_t len = ents[i].len ? ents[i].len : ents[i].data ? strlen(ents[i].data) : 0;
		if (ents[i].hard) {
			archive_entry_copy_hardlink(e, ents[i].link);
		} else if (type == AE_IFLNK) {
			archive_entry_copy_symlink(e, ents[i].link);
		} else if (type == AE_IFCHR) {
			archive_entry_set_rdevmajor(e, 1);
			archive_entry_set_rdevminor(e, 3);
		}
		archive_entry_set_size(e, type == AE_IFREG && !ents[i].hard ? (la_int64_t)len : 0);
		assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
		if (len)
			assert_int_equal(archive_write_data(a, ents[i].data, len), (la_ssize_t)len);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

struct fixture {
	char *tmp;  /* the scratch folder */
	char *dest; /* tmp/a/b/dest: escapes would land in tmp/a or tmp/a/b */
	char *arc;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof *f);
	f->tmp = test_tmpdir();
	f->dest = xasprintf("%s/a/b/dest", f->tmp);
	mkdir_p(f->dest, 0755);
	f->arc = xasprintf("%s/test.archive", f->tmp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rm_rf(f->tmp);
	free(f->tmp);
	free(f->dest);
	free(f->arc);
	free(f);
	return 0;
}

/* Nothing of the archive outside dest: tmp/a and tmp/a/b hold only what setup made. */
static void assert_nothing_outside(struct fixture *f)
{
	char *evil1 = xasprintf("%s/a/evil", f->tmp), *evil2 = xasprintf("%s/a/b/evil", f->tmp),
	     *evil3 = xasprintf("%s/evil", f->tmp);
	assert_false(file_exists(evil1));
	assert_false(file_exists(evil2));
	assert_false(file_exists(evil3));
	assert_false(file_exists("/tmp/utmkit-evil"));
	free(evil1);
	free(evil2);
	free(evil3);
}

/* Unpack f->arc into a fresh dest and expect an error containing want (and
 * the archive's name), on one line. */
static void expect_refused(struct fixture *f, const char *want)
{
	rm_rf(f->dest);
	mkdir(f->dest, 0755);
	char *err = NULL, *top = NULL;
	int r = bundle_unpack(f->arc, f->dest, 0, &top, &err);
	if (r == 0)
		fail_msg("extracted, but wanted an error with '%s'", want);
	assert_null(top);
	assert_non_null(err);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	if (getenv("TEST_VERBOSE"))
		print_message("refused: %s\n", err);
	assert_true(has_prefix(err, f->arc));
	assert_null(strchr(err, '\n'));
	free(err);
	assert_nothing_outside(f);
}

static void refuse(struct fixture *f, int kind, const struct ent *ents, size_t n, const char *want)
{
	make_archive(f->arc, kind, ents, n);
	expect_refused(f, want);
}

#define REFUSE(f, kind, want, ...)                                                                 \
	do {                                                                                       \
		const struct ent list_[] = {__VA_ARGS__};                                          \
		refuse(f, kind, list_, sizeof list_ / sizeof list_[0], want);                      \
	} while (0)

static void absolute_paths(void **state)
{
	struct fixture *f = *state;
	REFUSE(f, TAR, "/tmp/utmkit-evil: an absolute path", {"/tmp/utmkit-evil", .data = "x"});
	REFUSE(f, ZIP, "an absolute path", {"/tmp/utmkit-evil", .data = "x"});
	REFUSE(f, TAR, "an absolute path", {"x.utm/", .type = AE_IFDIR}, {"/tmp/utmkit-evil", .data = "x"});
}

static void dotdot_escapes(void **state)
{
	struct fixture *f = *state;
	REFUSE(f, TAR, "x.utm/../../evil: a '..'", {"x.utm/", .type = AE_IFDIR}, {"x.utm/../../evil", .data = "x"});
	REFUSE(f, ZIP, "a '..'", {"x.utm/Data/../../../evil", .data = "x"});
	REFUSE(f, TGZ, "a '..'", {"../evil", .data = "x"});
	REFUSE(f, TAR, "a '..'", {"x.utm/..", .type = AE_IFDIR});
}

static void links(void **state)
{
	struct fixture *f = *state;
	REFUSE(f, TAR, "a symbolic link to '/etc/passwd'", {"x.utm/", .type = AE_IFDIR},
	       {"x.utm/Data/l", .type = AE_IFLNK, .link = "/etc/passwd"});
	REFUSE(f, ZIP, "a symbolic link to '../../..' leads out", {"x.utm/Data/l", .type = AE_IFLNK, .link = "../../.."});
	REFUSE(f, TAR, "leads out", {"x.utm/l", .type = AE_IFLNK, .link = "Data/../../evil"});
	/* a link that stays inside is fine, but nothing is written through it */
	REFUSE(f, TAR, "'l' on its path is a link", {"x.utm/Data/", .type = AE_IFDIR}, {"x.utm/l", .type = AE_IFLNK, .link = "Data"},
	       {"x.utm/l/evil", .data = "x"});
	REFUSE(f, TAR, "a link is in the way", {"x.utm/Data/", .type = AE_IFDIR},
	       {"x.utm/Data/f", .type = AE_IFLNK, .link = "g"}, {"x.utm/Data/f", .data = "x"});
	REFUSE(f, TAR, "a hard link", {"x.utm/", .type = AE_IFDIR}, {"x.utm/vm.conf", .data = "x"},
	       {"x.utm/h", .link = "x.utm/vm.conf", .hard = true});
	REFUSE(f, TAR, "a hard link", {"x.utm/", .type = AE_IFDIR}, {"x.utm/h", .link = "/etc/passwd", .hard = true});
}

static void special_files(void **state)
{
	struct fixture *f = *state;
	REFUSE(f, TAR, "x.utm/Data/null: a character device", {"x.utm/", .type = AE_IFDIR},
	       {"x.utm/Data/null", .type = AE_IFCHR});
	REFUSE(f, TAR, "a fifo", {"x.utm/", .type = AE_IFDIR}, {"x.utm/fifo", .type = AE_IFIFO});
}

static void layout(void **state)
{
	struct fixture *f = *state;
	REFUSE(f, TAR, "b.utm/vm.conf: a second top-level folder", {"a.utm/vm.conf", .data = "x"},
	       {"b.utm/vm.conf", .data = "x"});
	REFUSE(f, ZIP, "vm.conf: not inside a folder", {"vm.conf", .data = "x"});
	REFUSE(f, TAR, "the top-level entry is not a folder", {"x.utm/", .type = AE_IFDIR}, {"x.utm", .data = "x"});
	REFUSE(f, TAR, "no bundle in the archive", );
	/* only macOS metadata: nothing of a bundle either */
	REFUSE(f, ZIP, "no bundle in the archive", {"__MACOSX/._x.utm", .data = "x"});
	write_text(f->arc, "this is not an archive, just some text\n");
	expect_refused(f, "Unrecognized archive format");
	char *missing = xasprintf("%s/missing.zip", f->tmp);
	char *err = NULL;
	assert_int_equal(bundle_unpack(missing, f->dest, 0, NULL, &err), -1);
	assert_true(has_prefix(err, missing));
	free(err);
	free(missing);
}

/* Cut an archive short: a clear error, whatever the format. */
static void truncated(void **state)
{
	struct fixture *f = *state;
	struct buf big = {0};
	for (int i = 0; i < 20000; i++)
		buf_printf(&big, "line %d of a file that is long enough to need many blocks\n", i);
	for (int kind = TAR; kind <= ZIP; kind++) {
		const struct ent ents[] = {{"x.utm/", .type = AE_IFDIR}, {"x.utm/vm.conf", .data = "name = 'x'\n"},
					   {"x.utm/Data/big", .data = big.s}};
		make_archive(f->arc, kind, ents, 3);
		struct stat st;
		assert_int_equal(stat(f->arc, &st), 0);
		assert_int_equal(truncate(f->arc, st.st_size / 2), 0);
		rm_rf(f->dest);
		mkdir(f->dest, 0755);
		char *err = NULL;
		assert_int_equal(bundle_unpack(f->arc, f->dest, 0, NULL, &err), -1);
		assert_true(has_prefix(err, f->arc));
		assert_null(strchr(err, '\n'));
		free(err);
	}
	buf_free(&big);
}

static uint32_t le32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A zip whose entry inflates to 64 MiB while its headers say 1 MiB. */
static void bigger_than_declared(void **state)
{
	struct fixture *f = *state;
	struct archive *a = archive_write_new();
	archive_write_set_format_zip(a);
	assert_int_equal(archive_write_open_filename(a, f->arc), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_copy_pathname(e, "x.utm/Data/bomb.img");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	const size_t real = 64u << 20, claimed = 1u << 20;
	archive_entry_set_size(e, (la_int64_t)real);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	char *zeros = xcalloc(1, 1 << 20);
	for (size_t i = 0; i < real; i += 1 << 20)
		assert_int_equal(archive_write_data(a, zeros, 1 << 20), 1 << 20);
	free(zeros);
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);

	/* rewrite the uncompressed size in the central directory, the local
	 * header and the data descriptor */
	size_t len;
	unsigned char *z = (unsigned char *)read_file(f->arc, &len);
	assert_non_null(z);
	int patched = 0;
	for (size_t i = 0; i + 46 <= len; i++) {
		size_t at = 0;
		if (!memcmp(z + i, "PK\1\2", 4))
			at = i + 24; /* central directory header */
		else if (!memcmp(z + i, "PK\3\4", 4))
			at = i + 22; /* local header */
		else if (!memcmp(z + i, "PK\7\10", 4))
			at = i + 12; /* data descriptor */
		if (at && le32(z + at) == real) {
			z[at] = claimed & 0xff;
			z[at + 1] = (claimed >> 8) & 0xff;
			z[at + 2] = (claimed >> 16) & 0xff;
			z[at + 3] = (claimed >> 24) & 0xff;
			patched++;
		}
	}
	assert_true(patched >= 1);
	assert_int_equal(write_file_atomic(f->arc, (char *)z, len, 0644), 0);
	free(z);
	expect_refused(f, "x.utm/Data/bomb.img: more data than the 1048576 bytes its header declares");
}

static long long allocated(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (long long)st.st_blocks * 512;
}

/* A good archive: contents, a link inside, macOS metadata skipped, and runs
 * of zeros left as holes. */
static void extracts(void **state)
{
	struct fixture *f = *state;
	/* data, almost 4 MiB of zeros, data again (written by hand below) */
	size_t n = 4u << 20;
	char *img = xcalloc(1, n);
	memset(img, 'x', 4096);
	memset(img + n - 4096, 'y', 4096);
	for (int kind = TAR; kind <= ZIP; kind++) {
		struct archive *a = archive_write_new();
		if (kind == ZIP)
			archive_write_set_format_zip(a);
		else
			archive_write_set_format_pax_restricted(a);
		if (kind == TGZ)
			archive_write_add_filter_gzip(a);
		assert_int_equal(archive_write_open_filename(a, f->arc), ARCHIVE_OK);
		const struct ent ents[] = {
		    {"./x.utm/", .type = AE_IFDIR},
		    {"__MACOSX/._x.utm", .data = "mac"},
		    {"x.utm/vm.conf", .data = "name = 'x'\n"},
		    {"x.utm/Data/", .type = AE_IFDIR},
		    {"x.utm/Data/._vm.conf", .data = "mac"},
		    {"x.utm/Data/sub/deep/file name é", .data = "deep"},
		    {"x.utm/Data/link", .type = AE_IFLNK, .link = "sub/deep"},
		};
		for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
			struct archive_entry *e = archive_entry_new();
			archive_entry_copy_pathname(e, ents[i].name);
			archive_entry_set_filetype(e, ents[i].type ? ents[i].type : AE_IFREG);
			archive_entry_set_perm(e, 0755);
			size_t l = ents[i].data ? strlen(ents[i].data) : 0;
			if (ents[i].type == AE_IFLNK)
				archive_entry_copy_symlink(e, ents[i].link);
			archive_entry_set_size(e, (la_int64_t)l);
			assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
			if (l)
				archive_write_data(a, ents[i].data, l);
			archive_entry_free(e);
		}
		struct archive_entry *e = archive_entry_new();
		archive_entry_copy_pathname(e, "x.utm/Data/disk.img");
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)n);
		archive_entry_set_mtime(e, 1000000000, 0);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, img, n), (la_ssize_t)n);
		archive_entry_free(e);
		assert_int_equal(archive_write_close(a), ARCHIVE_OK);
		archive_write_free(a);

		rm_rf(f->dest);
		mkdir(f->dest, 0755);
		char *err = NULL, *top = NULL;
		if (bundle_unpack(f->arc, f->dest, 0, &top, &err) < 0)
			fail_msg("%s", err);
		assert_string_equal(top, "x.utm");
		free(top);
		char *p = path_join(f->dest, "vm.conf");
		size_t len;
		char *text = read_file(p, &len);
		assert_string_equal(text, "name = 'x'\n");
		free(text);
		free(p);
		p = path_join(f->dest, "Data/link/file name é");
		text = read_file(p, &len);
		assert_non_null(text);
		assert_string_equal(text, "deep");
		free(text);
		free(p);
		p = path_join(f->dest, "Data/._vm.conf");
		assert_false(file_exists(p));
		free(p);
		p = path_join(f->dest, "__MACOSX");
		assert_false(file_exists(p));
		free(p);
		p = path_join(f->dest, "Data/disk.img");
		text = read_file(p, &len);
		assert_int_equal(len, n);
		assert_memory_equal(text, img, n);
		free(text);
		assert_true(allocated(p) <= 64 * 1024); /* the zeros are a hole */
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mtime, 1000000000);
		free(p);
	}
	free(img);
}

/* A bundle with a sparse image: packed to every format and back, equal
 * bytes, the image still sparse; tar archives hold only the data. */
static void pack_roundtrip(void **state)
{
	struct fixture *f = *state;
	char *b = path_join(f->tmp, "src.utm");
	char *data = path_join(b, "Data");
	mkdir_p(data, 0755);
	char *conf = path_join(b, "vm.conf");
	write_text(conf, "name = 'src'\n");
	char *img = path_join(data, "disk.raw");
	int fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1LL << 30), 0); /* 1 GiB */
	char blk[65536];
	memset(blk, 'd', sizeof blk);
	assert_int_equal(pwrite(fd, blk, sizeof blk, 0), (ssize_t)sizeof blk);
	assert_int_equal(pwrite(fd, blk, sizeof blk, 512LL << 20), (ssize_t)sizeof blk);
	close(fd);
	static const char *const names[] = {"out.tar", "out.tar.gz", "out.tar.zst", "out.utm.zip", "out.tar.xz"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *out = path_join(f->tmp, names[i]), *err = NULL;
		enum pack_format fmt = pack_format_from_name(out);
		assert_int_not_equal(fmt, PACK_NONE);
		if (bundle_pack(b, out, fmt, 0, &err) < 0)
			fail_msg("%s", err);
		struct stat st;
		assert_int_equal(stat(out, &st), 0);
		if (fmt != PACK_ZIP)
			assert_true(st.st_size < (1 << 20)); /* 128 KiB of data, not 1 GiB */
		/* an existing output is left alone without PACK_FORCE */
		assert_int_equal(bundle_pack(b, out, fmt, 0, &err), -1);
		assert_non_null(strstr(err, "already exists"));
		free(err);
		assert_int_equal(bundle_pack(b, out, fmt, PACK_FORCE, &err), 0);

		rm_rf(f->dest);
		mkdir(f->dest, 0755);
		char *top = NULL;
		if (bundle_unpack(out, f->dest, 0, &top, &err) < 0)
			fail_msg("%s: %s", names[i], err);
		assert_string_equal(top, "src.utm");
		free(top);
		char *got = path_join(f->dest, "Data/disk.raw");
		assert_int_equal(stat(got, &st), 0);
		assert_int_equal(st.st_size, 1LL << 30);
		assert_true(allocated(got) <= 1 << 20);
		int a = open(img, O_RDONLY), c = open(got, O_RDONLY);
		char x[65536], y[65536];
		for (off_t off = 0; off < (1LL << 30); off += 256LL << 20) { /* spot checks */
			assert_int_equal(pread(a, x, sizeof x, off), (ssize_t)sizeof x);
			assert_int_equal(pread(c, y, sizeof y, off), (ssize_t)sizeof y);
			assert_memory_equal(x, y, sizeof x);
		}
		close(a);
		close(c);
		free(got);
		free(out);
	}
	/* no temporary files beside the outputs */
	char *cmd = xasprintf("ls -a '%s' | grep -q '\\.tmp\\.'", f->tmp);
	assert_int_not_equal(system(cmd), 0);
	free(cmd);
	free(img);
	free(conf);
	free(data);
	free(b);
}

static void pack_refuses(void **state)
{
	struct fixture *f = *state;
	char *b = path_join(f->tmp, "bad.utm"), *err = NULL;
	char *out = path_join(f->tmp, "bad.tar");
	mkdir(b, 0755);
	assert_int_equal(bundle_pack(b, out, PACK_TAR, 0, &err), -1);
	assert_non_null(strstr(err, "not a VM bundle"));
	free(err);
	char *conf = path_join(b, "vm.conf"), *l = path_join(b, "escape");
	write_text(conf, "name = 'bad'\n");
	assert_int_equal(symlink("../../etc/passwd", l), 0);
	assert_int_equal(bundle_pack(b, out, PACK_TAR, 0, &err), -1);
	assert_non_null(strstr(err, "escape: a symbolic link to '../../etc/passwd'"));
	free(err);
	assert_false(file_exists(out));
	unlink(l);
	assert_int_equal(mkfifo(l, 0644), 0);
	assert_int_equal(bundle_pack(b, out, PACK_ZIP, 0, &err), -1);
	assert_non_null(strstr(err, "a fifo cannot be packed"));
	free(err);
	assert_false(file_exists(out));
	free(conf);
	free(l);
	free(out);
	free(b);
}

static void format_names(void **state)
{
	(void)state;
	assert_int_equal(pack_format_from_name("My VM.utm.zip"), PACK_ZIP);
	assert_int_equal(pack_format_from_name("a.tar"), PACK_TAR);
	assert_int_equal(pack_format_from_name("a.TAR.GZ"), PACK_TAR_GZ);
	assert_int_equal(pack_format_from_name("a.tgz"), PACK_TAR_GZ);
	assert_int_equal(pack_format_from_name("dir.d/a.tar.zst"), PACK_TAR_ZST);
	assert_int_equal(pack_format_from_name("a.tar.xz"), PACK_TAR_XZ);
	assert_int_equal(pack_format_from_name("a.tar.bz2"), PACK_TAR_BZ2);
	assert_int_equal(pack_format_from_name("a.gz"), PACK_NONE);
	assert_int_equal(pack_format_from_name("zip"), PACK_NONE);
	assert_int_equal(pack_format_from_name("dir/.zip"), PACK_NONE);
	assert_int_equal(pack_format_parse("tar.zst"), PACK_TAR_ZST);
	assert_int_equal(pack_format_parse("rar"), PACK_NONE);
	assert_string_equal(pack_format_name(PACK_TAR_GZ), "tar.gz");
}

/* bundle_import: a new identity, or the old one kept; a failure leaves
 * neither the bundle nor its temporary folder. */
static void import_identity_and_atomicity(void **state)
{
	struct fixture *f = *state;
	const char *conf = "name = 'imp'\n"
			   "uuid = '11111111-2222-4333-8444-555555555555'\n"
			   "net net0 {\n  mac = '52:54:00:12:34:56'\n}\n";
	const struct ent ents[] = {{"imp.utm/", .type = AE_IFDIR}, {"imp.utm/vm.conf", .data = conf},
				   {"imp.utm/Data/", .type = AE_IFDIR}, {"imp.utm/Data/disk.img", .data = "disk"}};
	make_archive(f->arc, TGZ, ents, 4);
	char *t1 = path_join(f->tmp, "new.utm"), *t2 = path_join(f->tmp, "kept.utm"), *err = NULL;
	if (bundle_import(f->arc, t1, 0, &err) < 0)
		fail_msg("%s", err);
	if (bundle_import(f->arc, t2, IMPORT_KEEP_IDENTITY, &err) < 0)
		fail_msg("%s", err);
	struct bundle b;
	assert_int_equal(bundle_open(&b, t1, &err), 0);
	assert_string_not_equal(b.cfg.uuid, "11111111-2222-4333-8444-555555555555");
	assert_string_not_equal(b.cfg.nets[0].mac, "52:54:00:12:34:56");
	assert_string_equal(b.cfg.name, "imp");
	bundle_close(&b);
	char *kept = path_join(t2, "vm.conf");
	size_t len;
	char *text = read_file(kept, &len);
	assert_string_equal(text, conf); /* byte for byte */
	free(text);
	free(kept);
	assert_int_equal(bundle_import(f->arc, t2, 0, &err), -1);
	assert_non_null(strstr(err, "already exists"));
	free(err);

	/* a hostile archive and a non-bundle: nothing left behind */
	char *t3 = path_join(f->tmp, "bad.utm");
	const struct ent bad[] = {{"imp.utm/vm.conf", .data = conf}, {"imp.utm/../evil", .data = "x"}};
	make_archive(f->arc, TAR, bad, 2);
	assert_int_equal(bundle_import(f->arc, t3, 0, &err), -1);
	assert_non_null(strstr(err, "imp.utm/../evil: a '..'"));
	free(err);
	const struct ent nob[] = {{"imp.utm/readme", .data = "x"}};
	make_archive(f->arc, ZIP, nob, 1);
	assert_int_equal(bundle_import(f->arc, t3, 0, &err), -1);
	assert_non_null(strstr(err, "imp.utm/ has no vm.conf or config.plist"));
	free(err);
	const struct ent badconf[] = {{"imp.utm/vm.conf", .data = "cpus = lots\n"}};
	make_archive(f->arc, ZIP, badconf, 1);
	assert_int_equal(bundle_import(f->arc, t3, 0, &err), -1);
	if (!has_prefix(err, f->arc) || !strstr(err, ": imp.utm/vm.conf:1: "))
		fail_msg("error '%s' does not name the archive's vm.conf", err);
	free(err);
	assert_false(file_exists(t3));
	char *cmd = xasprintf("ls -a '%s' | grep -q '\\.tmp\\.'", f->tmp);
	assert_int_not_equal(system(cmd), 0);
	free(cmd);
	assert_nothing_outside(f);
	free(t1);
	free(t2);
	free(t3);
}

/* Issue 15 (5): an archive that expands past the free space is stopped
 * (VM_UNPACK_ROOM stands for a small disk), and zeros cost nothing. */
static void expansion_bounded(void **state)
{
	struct fixture *f = *state;
	size_t n = 2u << 20;
	char *data = xmalloc(n + 1), *zeros = xcalloc(1, n * 8 + 1);
	memset(data, 'a', n);
	data[n] = '\0';
	/* 8 entries of 2 MiB (compressing to almost nothing) into 4 MiB of room */
	struct ent ents[9] = {{.name = "x.utm/", .type = AE_IFDIR}};
	char names[8][32];
	for (int i = 0; i < 8; i++) {
		snprintf(names[i], sizeof names[i], "x.utm/Data/f%d", i);
		ents[i + 1] = (struct ent){.name = names[i], .data = data};
	}
	make_archive(f->arc, ZIP, ents, 9);
	setenv("VM_UNPACK_ROOM", "4194304", 1);
	expect_refused(f, "No space left on device (the archive expands past");
	/* 16 MiB of zeros: holes, so it fits */
	make_archive(f->arc, ZIP, (struct ent[]){{.name = "x.utm/", .type = AE_IFDIR}, {.name = "x.utm/z", .data = zeros, .len = n * 8}}, 2);
	rm_rf(f->dest);
	mkdir(f->dest, 0755);
	char *err = NULL, *top = NULL;
	if (bundle_unpack(f->arc, f->dest, 0, &top, &err) < 0)
		fail_msg("%s", err);
	unsetenv("VM_UNPACK_ROOM");
	char *z = xasprintf("%s/z", f->dest);
	struct stat st;
	assert_int_equal(stat(z, &st), 0);
	assert_int_equal(st.st_size, (off_t)n * 8);
	assert_true(st.st_blocks * 512 < (off_t)n); /* a hole */
	free(z);
	free(top);
	free(err);
	free(data);
	free(zeros);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(absolute_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(dotdot_escapes, setup, teardown),
	    cmocka_unit_test_setup_teardown(links, setup, teardown),
	    cmocka_unit_test_setup_teardown(special_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(layout, setup, teardown),
	    cmocka_unit_test_setup_teardown(truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(bigger_than_declared, setup, teardown),
	    cmocka_unit_test_setup_teardown(extracts, setup, teardown),
	    cmocka_unit_test_setup_teardown(pack_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(pack_refuses, setup, teardown),
	    cmocka_unit_test(format_names),
	    cmocka_unit_test_setup_teardown(import_identity_and_atomicity, setup, teardown),
	    cmocka_unit_test_setup_teardown(expansion_bounded, setup, teardown),
	};
	return cmocka_run_group_tests_name("archive", tests, NULL, NULL);
}
