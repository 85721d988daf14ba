/* Bundle archives with libarchive: pack a bundle (zip, tar and compressed
 * tar), and a safe, sparse-aware extract for import. See archive.h.
 *
 * Sparse files. Packing finds the data regions of each file with
 * SEEK_DATA/SEEK_HOLE; tar formats store them as a GNU pax 1.0 sparse entry
 * (archive_entry_sparse_add_entry), so a 20 GiB raw image holding 50 MiB
 * costs 50 MiB of reading and writing. Holes are still "written" through
 * archive_write_data (the pax writer skips them without touching the bytes),
 * one 1 MiB call per MiB of hole, which is cheap. Zip has no sparse entries:
 * its holes go through deflate as zeros. Extracting writes each block from
 * archive_read_data_block at its offset and leaves every aligned run of
 * zeros unwritten, then sets the file's full size with ftruncate, so both tar
 * sparse entries and zipped zeros come out as holes.
 *
 * Safety. Entries are created below the target folder with openat() and
 * O_NOFOLLOW on every component, so no entry can reach through a link, even
 * one the archive made; names with ".." or a leading "/" are refused before
 * that. Symbolic links must be relative and free of "..": such a link (and
 * any chain of them) only points down into its own folder. */
/* <archive.h>, found through -Ilib: this module's header, which then
 * includes libarchive's (see archive.h) */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "archive_dl.h"
#include "util.h"

#define IO_CHUNK (1u << 20) /* read and write unit */
#define ZERO_GRAIN 4096u    /* aligned runs of zeros this long become holes */

/* ---- formats ---- */

static const struct {
	const char *word;
	enum pack_format f;
} format_words[] = {
    {"zip", PACK_ZIP},	       {"tar", PACK_TAR},	 {"tar.gz", PACK_TAR_GZ}, {"tgz", PACK_TAR_GZ},
    {"tar.zst", PACK_TAR_ZST}, {"tzst", PACK_TAR_ZST}, {"tar.xz", PACK_TAR_XZ}, {"txz", PACK_TAR_XZ},
    {"tar.bz2", PACK_TAR_BZ2}, {"tbz2", PACK_TAR_BZ2},
};
#define NWORDS (sizeof format_words / sizeof format_words[0])

enum pack_format pack_format_parse(const char *word)
{
	for (size_t i = 0; i < NWORDS; i++)
		if (!strcasecmp(word, format_words[i].word))
			return format_words[i].f;
	return PACK_NONE;
}

enum pack_format pack_format_from_name(const char *path)
{
	size_t n = strlen(path);
	enum pack_format best = PACK_NONE;
	size_t best_len = 0;
	for (size_t i = 0; i < NWORDS; i++) {
		size_t w = strlen(format_words[i].word);
		/* ".WORD" at the end, after something */
		if (n > w + 1 && path[n - w - 1] == '.' && path[n - w - 2] != '/' &&
		    !strcasecmp(path + n - w, format_words[i].word) && w > best_len) {
			best = format_words[i].f;
			best_len = w;
		}
	}
	return best;
}

const char *pack_format_name(enum pack_format f)
{
	for (size_t i = 0; i < NWORDS; i++)
		if (format_words[i].f == f)
			return format_words[i].word;
	return "none";
}

/* ---- progress on a terminal ---- */

struct progress {
	bool on, shown;
	const char *name, *verb;
	uint64_t total; /* 0: unknown */
	double start, last;
};

static void progress_init(struct progress *p, bool on, const char *name, const char *verb, uint64_t total)
{
	*p = (struct progress){.on = on, .name = name, .verb = verb, .total = total};
	p->start = p->last = now_ms() / 1e3;
}

static void human(char out[32], uint64_t b)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(out, 32, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* Quiet for the first second, then at most five updates a second. */
static void progress_show(struct progress *p, uint64_t done)
{
	if (!p->on)
		return;
	double t = now_ms() / 1e3;
	if (t - p->start < 1.0 || t - p->last < 0.2)
		return;
	p->last = t;
	char d[32], tot[32];
	human(d, done);
	if (p->total) {
		human(tot, p->total);
		unsigned pct = done >= p->total ? 100 : (unsigned)(done * 100 / p->total);
		fprintf(stderr, "\r%s: %s: %s %s of %s (%u%%)\033[K", getprogname(), p->name, p->verb, d, tot,
			pct);
	} else {
		fprintf(stderr, "\r%s: %s: %s %s\033[K", getprogname(), p->name, p->verb, d);
	}
	p->shown = true;
}

static void progress_end(struct progress *p)
{
	if (p->shown)
		fputs("\r\033[K", stderr);
	p->shown = false;
}

/* ---- interruption ----
 * While packing or importing, SIGINT/SIGTERM/SIGHUP set a flag the loops
 * check, so the temporary output is removed before the signal takes effect.
 * A handler that was already installed (bundle_create's) is called too. */

static volatile sig_atomic_t interrupted;
static const int trapped[3] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction saved[3];
static bool saved_valid[3];

static void on_signal(int sig)
{
	interrupted = sig;
	for (int i = 0; i < 3; i++)
		if (trapped[i] == sig && saved_valid[i] && !(saved[i].sa_flags & SA_SIGINFO) &&
		    saved[i].sa_handler != SIG_DFL && saved[i].sa_handler != SIG_IGN)
			saved[i].sa_handler(sig);
}

static void trap_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	for (int i = 0; i < 3; i++) {
		saved_valid[i] = sigaction(trapped[i], NULL, &saved[i]) == 0;
		if (saved_valid[i] && saved[i].sa_handler == SIG_IGN && !(saved[i].sa_flags & SA_SIGINFO)) {
			saved_valid[i] = false; /* ignored (nohup): leave it so */
			continue;
		}
		sigaction(trapped[i], &sa, NULL);
	}
}

static void untrap_signals(void)
{
	for (int i = 0; i < 3; i++)
		if (saved_valid[i])
			sigaction(trapped[i], &saved[i], NULL);
	memset(saved_valid, 0, sizeof saved_valid);
}

/* ---- shared helpers ---- */

/* File names are bytes here and UTF-8 in zip and pax headers, whatever the
 * user's locale: libarchive converts with the thread's LC_CTYPE, so pack and
 * unpack run under C.UTF-8. (Names that are not UTF-8 are stored as bytes,
 * hdrcharset=BINARY.) */
struct names_locale {
	locale_t loc, old;
};

static void utf8_names_begin(struct names_locale *l)
{
	l->loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	l->old = l->loc ? uselocale(l->loc) : (locale_t)0;
}

static void utf8_names_end(struct names_locale *l)
{
	if (l->loc) {
		uselocale(l->old);
		freelocale(l->loc);
	}
}

/* An entry name fit for a one-line message: control characters become '?'. */
static char *printable(const char *s)
{
	char *p = xstrdup(s ? s : "(no name)");
	for (unsigned char *c = (unsigned char *)p; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			*c = '?';
	return p;
}

/* libarchive's message, on one line. */
static char *archive_msg(struct archive *a, const char *fallback)
{
	const char *m = archive_error_string(a);
	char *s = printable(m && *m ? m : fallback);
	size_t n = strlen(s);
	while (n && (s[n - 1] == '.' || s[n - 1] == ' ' || s[n - 1] == '?'))
		s[--n] = '\0';
	return s;
}

/* A symbolic link target that stays inside the folder the link is in:
 * relative, with no ".." component. Chains of such links cannot leave it. */
static bool link_target_ok(const char *t)
{
	return *t && t[0] != '/' && bundle_name_is_safe(t);
}

static bool is_zero(const char *p, size_t n)
{
	if (n < 16) {
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return false;
		return true;
	}
	static const char z[16];
	return !memcmp(p, z, 16) && !memcmp(p, p + 16, n - 16);
}

static int pwrite_all(int fd, const char *p, size_t n, off_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Write p at off, leaving every ZERO_GRAIN-aligned run of zeros as a hole. */
/* Writes the runs of p that are not zeros (holes stay holes); adds the
 * bytes it wrote to *data when data is not NULL. */
static int write_sparse_count(int fd, const char *p, size_t n, off_t off, uint64_t *data)
{
	size_t i = 0;
	while (i < n) {
		size_t start;
		bool zero = true;
		for (start = i; i < n;) {
			size_t step = ZERO_GRAIN - (size_t)((uint64_t)(off + (off_t)i) % ZERO_GRAIN);
			if (step > n - i)
				step = n - i;
			bool z = is_zero(p + i, step);
			if (i == start)
				zero = z;
			else if (z != zero)
				break;
			i += step;
		}
		if (!zero && pwrite_all(fd, p + start, i - start, off + (off_t)start) < 0)
			return -1;
		if (!zero && data)
			*data += i - start;
	}
	return 0;
}

/* ---- pack ---- */

struct region {
	int64_t off, len;
};

struct packer {
	struct archive *a;
	enum pack_format f;
	int flags;
	const char *bundle; /* the bundle as named, for messages */
	const char *out;    /* the output as named */
	char *top;	    /* "NAME.utm" */
	char *buf, *zeros;
	struct progress prog;
	uint64_t done;
	char *plist;	   /* zip: a config.plist for UTM made from vm.conf, or NULL */
	size_t plist_len;
	struct stat conf_st; /* vm.conf's, for the made config.plist's entry */
	char *err;
};

static int pack_fail(struct packer *p, const char *rel, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pack_fail(struct packer *p, const char *rel, const char *fmt, ...)
{
	if (p->err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		vm_oom();
	va_end(ap);
	char *name = printable(rel);
	p->err = rel ? xasprintf("%s/%s: %s", p->bundle, name, msg) : xasprintf("%s: %s", p->out, msg);
	free(name);
	free(msg);
	return -1;
}

static int pack_archive_fail(struct packer *p, const char *what)
{
	char *m = archive_msg(p->a, "write error");
	char *w = printable(what);
	/* libarchive's "Write error" leaves out why (a full disk): add errno's
	 * text, but not for the codes it uses for bad data (EILSEQ) or misuse
	 * (EINVAL) */
	int e = archive_errno(p->a);
	if (e > 0 && e != EILSEQ && e != EINVAL && !strstr(m, strerror(e)))
		pack_fail(p, NULL, "%s: %s: %s", w, m, strerror(e));
	else
		pack_fail(p, NULL, "%s: %s", w, m);
	free(w);
	free(m);
	return -1;
}

/* The data regions of fd, in order. Without SEEK_DATA support, one region. */
static int file_map(int fd, int64_t size, struct region **out, size_t *n)
{
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	int64_t off = 0;
	while (off < size) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break; /* a hole to the end */
		if (d < 0 && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP)) {
			d = off; /* no hole support: all data */
			if (*n == cap)
				*out = xrealloc(*out, (cap = cap ? cap * 2 : 8) * sizeof **out);
			(*out)[(*n)++] = (struct region){off, size - off};
			break;
		}
		if (d < 0)
			return -1;
		if (d >= size)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return -1;
		if (h > size)
			h = size;
		if (*n == cap)
			*out = xrealloc(*out, (cap = cap ? cap * 2 : 8) * sizeof **out);
		(*out)[(*n)++] = (struct region){d, h - d};
		off = h;
	}
	return 0;
}

static bool map_is_sparse(const struct region *m, size_t n, int64_t size)
{
	return size > 0 && !(n == 1 && m[0].off == 0 && m[0].len == size);
}

/* Feed n bytes of entry data to the archive. */
static int feed(struct packer *p, const char *what, const void *data, size_t n)
{
	while (n) {
		if (interrupted)
			return pack_fail(p, NULL, "interrupted");
		la_ssize_t w = archive_write_data(p->a, data, n);
		if (w < 0)
			return pack_archive_fail(p, what);
		if (w == 0)
			return pack_fail(p, NULL, "%s: the archive took no more data", what);
		data = (const char *)data + w;
		n -= (size_t)w;
	}
	return 0;
}

static struct archive_entry *new_entry(struct packer *p, const char *rel, const struct stat *st)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		vm_oom();
	char *name = *rel ? xasprintf("%s/%s%s", p->top, rel, S_ISDIR(st->st_mode) ? "/" : "")
			  : xasprintf("%s/", p->top);
	archive_entry_copy_pathname(e, name);
	archive_entry_set_filetype(e, st->st_mode & S_IFMT);
	archive_entry_set_perm(e, st->st_mode & 0777);
	archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	archive_entry_set_size(e, S_ISREG(st->st_mode) ? st->st_size : 0);
	if (p->flags & PACK_VERBOSE)
		vm_warnx("%s", name);
	free(name);
	return e;
}

static int write_header(struct packer *p, struct archive_entry *e, const char *rel)
{
	int r = archive_write_header(p->a, e);
	if (r < ARCHIVE_WARN)
		return pack_archive_fail(p, archive_entry_pathname(e) ? archive_entry_pathname(e) : rel);
	return 0;
}

static int pack_file(struct packer *p, int dfd, const char *name, const char *rel)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		pack_fail(p, rel, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct region *map;
	size_t n;
	int ret = -1;
	struct archive_entry *e = NULL;
	if (file_map(fd, st.st_size, &map, &n) < 0) {
		pack_fail(p, rel, "%s", strerror(errno));
		goto out;
	}
	e = new_entry(p, rel, &st);
	if (p->f != PACK_ZIP && map_is_sparse(map, n, st.st_size)) {
		for (size_t i = 0; i < n; i++)
			archive_entry_sparse_add_entry(e, map[i].off, map[i].len);
		/* a file ending in a hole (or all hole) ends with an empty region */
		if (!n || map[n - 1].off + map[n - 1].len < st.st_size)
			archive_entry_sparse_add_entry(e, st.st_size, 0);
	}
	if (write_header(p, e, rel) < 0)
		goto out;
	const char *ename = archive_entry_pathname(e);
	int64_t pos = 0;
	for (size_t i = 0; i <= n; i++) {
		int64_t hole_end = i < n ? map[i].off : st.st_size;
		/* holes: the pax writer skips them, zip deflates them */
		while (pos < hole_end) {
			size_t k = hole_end - pos < IO_CHUNK ? (size_t)(hole_end - pos) : IO_CHUNK;
			if (feed(p, ename, p->zeros, k) < 0)
				goto out;
			pos += (int64_t)k;
			if (p->f == PACK_ZIP)
				progress_show(&p->prog, p->done += k);
		}
		if (i == n)
			break;
		int64_t end = map[i].off + map[i].len;
		while (pos < end) {
			size_t want = end - pos < IO_CHUNK ? (size_t)(end - pos) : IO_CHUNK;
			ssize_t r = pread(fd, p->buf, want, pos);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				pack_fail(p, rel, "%s", strerror(errno));
				goto out;
			}
			if (r == 0) {
				pack_fail(p, rel, "shrank while being packed");
				goto out;
			}
			if (feed(p, ename, p->buf, (size_t)r) < 0)
				goto out;
			pos += r;
			progress_show(&p->prog, p->done += (uint64_t)r);
		}
	}
	ret = 0;
out:
	if (e)
		archive_entry_free(e);
	free(map);
	close(fd);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a folder, sorted, so archives of the same bundle are alike. */
static int list_dir(int dfd, struct strv *names)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct dirent *de;
	while ((errno = 0, de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strv_push(names, de->d_name);
	int saved_errno = errno;
	closedir(d);
	if (saved_errno) {
		errno = saved_errno;
		return -1;
	}
	if (names->n)
		qsort(names->v, names->n, sizeof *names->v, cmp_str);
	return 0;
}

/* The config.plist made for UTM, in place of any in the bundle. */
static int pack_plist(struct packer *p)
{
	struct stat st = p->conf_st;
	st.st_mode = S_IFREG | 0644;
	st.st_size = (off_t)p->plist_len;
	struct archive_entry *e = new_entry(p, "config.plist", &st);
	int r = write_header(p, e, "config.plist");
	if (r == 0)
		r = feed(p, "config.plist", p->plist, p->plist_len);
	archive_entry_free(e);
	return r;
}

/* Visit the tree: mode 0 sums the progress total, 1 writes entries. */
static int pack_tree(struct packer *p, int dfd, const char *rel, int mode, uint64_t *total)
{
	struct strv names = {0};
	if (p->plist && !*rel)
		strv_push(&names, "config.plist");
	if (list_dir(dfd, &names) < 0) {
		pack_fail(p, *rel ? rel : ".", "%s", strerror(errno));
		strv_free(&names);
		return -1;
	}
	int ret = 0;
	for (size_t i = 0; i < names.n && ret == 0; i++) {
		const char *name = names.v[i];
		if (i && !strcmp(name, names.v[i - 1]))
			continue; /* the made config.plist and the bundle's own */
		if (p->plist && !*rel && !strcmp(name, "config.plist")) {
			if (mode)
				ret = pack_plist(p);
			continue;
		}
		char *r = *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
		struct stat st;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = pack_fail(p, r, "%s", strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			struct archive_entry *e = mode ? new_entry(p, r, &st) : NULL;
			if (e) {
				ret = write_header(p, e, r);
				archive_entry_free(e);
			}
			int sub = ret ? -1 : openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (!ret && sub < 0)
				ret = pack_fail(p, r, "%s", strerror(errno));
			if (!ret) {
				ret = pack_tree(p, sub, r, mode, total);
				close(sub);
			}
		} else if (S_ISREG(st.st_mode)) {
			if (mode) {
				ret = pack_file(p, dfd, name, r);
			} else if (p->f == PACK_ZIP) {
				*total += (uint64_t)st.st_size;
			} else {
				int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
				struct region *map = NULL;
				size_t n = 0;
				if (fd >= 0 && file_map(fd, st.st_size, &map, &n) == 0)
					for (size_t j = 0; j < n; j++)
						*total += (uint64_t)map[j].len;
				free(map);
				if (fd >= 0)
					close(fd);
			}
		} else if (S_ISLNK(st.st_mode)) {
			struct buf t = {0};
			size_t cap = (size_t)st.st_size + 1;
			for (;;) {
				char *tb = xmalloc(cap);
				ssize_t k = readlinkat(dfd, name, tb, cap);
				if (k >= 0 && (size_t)k < cap)
					buf_add(&t, tb, (size_t)k);
				free(tb);
				if (k < 0) {
					ret = pack_fail(p, r, "%s", strerror(errno));
					break;
				}
				if ((size_t)k < cap)
					break;
				cap *= 2;
			}
			if (!ret && !link_target_ok(t.s ? t.s : "")) {
				char *pt = printable(t.s ? t.s : "");
				ret = pack_fail(p, r, "a symbolic link to '%s', outside its folder; not packed", pt);
				free(pt);
			} else if (!ret && mode) {
				struct archive_entry *e = new_entry(p, r, &st);
				archive_entry_copy_symlink(e, t.s);
				ret = write_header(p, e, r);
				archive_entry_free(e);
			}
			buf_free(&t);
		} else {
			const char *kind = S_ISSOCK(st.st_mode)	 ? "a socket"
					   : S_ISFIFO(st.st_mode) ? "a fifo"
								  : "a device node";
			ret = pack_fail(p, r, "%s cannot be packed", kind);
		}
		free(r);
	}
	strv_free(&names);
	return ret;
}

/* Open a bundle in a temporary folder without the codec's notices, which
 * would name that folder (the user sees them on the bundle's first use). */
static int bundle_open_quiet(struct bundle *b, const char *dir, char **err)
{
	bool quiet = vm_quiet;
	vm_quiet = true;
	int r = bundle_open(b, dir, err);
	vm_quiet = quiet;
	return r;
}

/* UTM reads config.plist, not vm.conf: a zip of a vm.conf bundle gets one
 * made from it (beside vm.conf, which stays the reference here). What
 * config.plist cannot hold is left out, with a notice. */
static void make_utm_plist(struct packer *p, const char *dir, int dfd)
{
	if (fstatat(dfd, "vm.conf", &p->conf_st, 0) < 0 || !S_ISREG(p->conf_st.st_mode))
		return;
	struct bundle b;
	char *e = NULL;
	int r = bundle_open_quiet(&b, dir, &e);
	if (r < 0) {
		vm_warnx("%s; %s gets no config.plist for UTM", e, p->out);
		free(e);
		return;
	}
	/* Made with every default filled in, as UTM's defaults are not ours; the
	 * notice lists only what the bundle itself sets (a default such as
	 * accel = auto has no place in config.plist, and needs none). */
	struct buf skipped = {0}, ignored = {0};
	void *doc = NULL;
	if (b.format == BUNDLE_VMCONF) {
		struct vm_config eff;
		bundle_effective_config(&b, &eff);
		if (!b.cfg.uuid) { /* UTM requires one (vm-run does without) */
			char u[37];
			uuid_generate_str(u);
			b.cfg.uuid = xstrdup(u);
			eff.uuid = xstrdup(u);
		}
		doc = config_plist_new(&eff, CONFIG_PLIST_LENIENT, &ignored, &e);
		config_free(&eff);
		char *e2 = NULL;
		config_plist_free(config_plist_new(&b.cfg, CONFIG_PLIST_LENIENT, &skipped, &e2));
		free(e2);
	}
	buf_free(&ignored);
	bundle_close(&b);
	if (!doc) {
		if (e)
			vm_warnx("%s; %s gets no config.plist for UTM", e, p->out);
		free(e);
		buf_free(&skipped);
		return;
	}
	if (skipped.len && !vm_quiet) {
		while (skipped.len && skipped.s[skipped.len - 1] == '\n')
			skipped.s[--skipped.len] = '\0';
		struct buf one = {0};
		for (const char *c = skipped.s; *c; c++)
			*c == '\n' ? buf_puts(&one, "; ") : buf_add(&one, c, 1);
		vm_warnx("%s: config.plist for UTM leaves out %s", p->out, one.s);
		buf_free(&one);
	}
	buf_free(&skipped);
	p->plist = config_plist_xml(doc, &p->plist_len);
	config_plist_free(doc);
}

static char *top_name(const char *dir)
{
	char *real = realpath(dir, NULL);
	if (!real)
		real = xstrdup(dir);
	char *name = bundle_display_name(real);
	free(real);
	if (!*name) {
		free(name);
		name = xstrdup("bundle");
	}
	char *top = xasprintf("%s.utm", name);
	free(name);
	return top;
}

static int setup_writer(struct packer *p, int fd)
{
	struct archive *a = p->a = archive_write_new();
	if (!a)
		vm_oom();
	int r = ARCHIVE_OK;
	if (p->f == PACK_ZIP) {
		r = archive_write_set_format_zip(a);
		if (r == ARCHIVE_OK)
			r = archive_write_zip_set_compression_deflate(a);
	} else {
		r = archive_write_set_format_pax_restricted(a);
		if (r == ARCHIVE_OK)
			switch (p->f) {
			case PACK_TAR_GZ: r = archive_write_add_filter_gzip(a); break;
			case PACK_TAR_ZST: r = archive_write_add_filter_zstd(a); break;
			case PACK_TAR_XZ: r = archive_write_add_filter_xz(a); break;
			case PACK_TAR_BZ2: r = archive_write_add_filter_bzip2(a); break;
			default: break;
			}
	}
	/* no padding of the last block to 10240 bytes on pipes: zeros after a
	 * compressed stream are garbage to zstd, xz and unzip */
	if (r == ARCHIVE_OK)
		r = archive_write_set_bytes_in_last_block(a, 1);
	if (r == ARCHIVE_OK)
		r = archive_write_open_fd(a, fd);
	if (r != ARCHIVE_OK)
		return pack_archive_fail(p, pack_format_name(p->f));
	return 0;
}

int bundle_pack(const char *dir, const char *out, enum pack_format f, int flags, char **err)
{
	struct packer p = {.f = f, .flags = flags, .bundle = dir, .out = out};
	bool to_stdout = !strcmp(out, "-");
	char *tmp = NULL;
	int ofd = -1, ret = -1;
	if (libarchive_load(err) < 0)
		return -1;
	p.top = top_name(dir);
	struct names_locale nl;
	utf8_names_begin(&nl);
	/* a shared lock: vm-config and friends (exclusive) wait until we are done */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		*err = xasprintf("%s: %s", dir, strerror(errno));
		free(p.top);
		utf8_names_end(&nl);
		return -1;
	}
	if (flock(dfd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK && !vm_quiet)
		vm_warnx("%s: waiting for the tool changing it to finish", dir);
	if (flock(dfd, LOCK_SH) < 0) {
		pack_fail(&p, NULL, "%s: cannot lock: %s", dir, strerror(errno));
		goto out;
	}
	struct stat st;
	if (fstatat(dfd, "vm.conf", &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    fstatat(dfd, "config.plist", &st, AT_SYMLINK_NOFOLLOW) < 0) {
		*err = xasprintf("%s: no vm.conf or config.plist: not a VM bundle", dir);
		goto out;
	}
	if (f == PACK_NONE) {
		*err = xasprintf("%s: unknown archive format", out);
		goto out;
	}
	if (to_stdout) {
		if (isatty(STDOUT_FILENO)) {
			*err = xasprintf("-: will not write an archive to a terminal");
			goto out;
		}
		ofd = STDOUT_FILENO;
	} else {
		if (!(flags & PACK_FORCE) && lstat(out, &st) == 0) {
			*err = xasprintf("%s: already exists", out);
			goto out;
		}
		const char *slash = strrchr(out, '/');
		tmp = slash ? xasprintf("%.*s/.%s.tmp.XXXXXX", (int)(slash - out), out, slash + 1)
			    : xasprintf(".%s.tmp.XXXXXX", out);
		ofd = mkstemp(tmp);
		if (ofd < 0) {
			*err = xasprintf("%s: %s", out, strerror(errno));
			goto out;
		}
		mode_t um = umask(0);
		umask(um);
		fchmod(ofd, 0666 & ~um);
	}
	trap_signals();
	p.buf = xmalloc(IO_CHUNK);
	p.zeros = xcalloc(1, IO_CHUNK);
	if (f == PACK_ZIP)
		make_utm_plist(&p, dir, dfd);
	uint64_t total = 0;
	if (flags & PACK_PROGRESS)
		pack_tree(&p, dfd, "", 0, &total);
	progress_init(&p.prog, (flags & PACK_PROGRESS) && !p.err, out, "packed", total);
	if (!p.err && setup_writer(&p, ofd) == 0) {
		struct stat dst;
		if (fstat(dfd, &dst) < 0) {
			pack_fail(&p, NULL, "%s: %s", dir, strerror(errno));
		} else {
			struct archive_entry *e = new_entry(&p, "", &dst);
			if (write_header(&p, e, "") == 0)
				pack_tree(&p, dfd, "", 1, &total);
			archive_entry_free(e);
		}
		if (!p.err && archive_write_close(p.a) != ARCHIVE_OK)
			pack_archive_fail(&p, "close");
	}
	progress_end(&p.prog);
	if (!p.err && !to_stdout) {
		if (fsync(ofd) < 0 || close(ofd) < 0)
			pack_fail(&p, NULL, "%s", strerror(errno));
		ofd = -1;
		if (!p.err && (flags & PACK_FORCE ? rename(tmp, out)
						  : renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE)) < 0)
			pack_fail(&p, NULL, "%s", errno == EEXIST ? "already exists" : strerror(errno));
	}
	if (p.err) {
		*err = p.err;
		p.err = NULL;
	} else {
		ret = 0;
	}
	untrap_signals();
out:
	if (p.a)
		archive_write_free(p.a);
	if (ofd >= 0 && !to_stdout)
		close(ofd);
	if (tmp && ret < 0)
		unlink(tmp);
	if (ret < 0 && p.err) {
		*err = p.err;
		p.err = NULL;
	}
	free(tmp);
	free(p.buf);
	free(p.zeros);
	free(p.plist);
	free(p.top);
	close(dfd); /* drops the lock */
	utf8_names_end(&nl);
	if (ret < 0 && interrupted)
		raise(interrupted);
	return ret;
}

/* ---- unpack ---- */

struct unpacker {
	struct archive *a;
	const char *archive; /* as named, for messages */
	int flags;
	int dirfd;
	char *top;
	char *entry; /* the current entry, printable */
	struct progress prog;
	char *err;
	/* Data written (zero runs are holes and cost nothing) against the free
	 * space there was: an archive that expands past it (a zip bomb, entries
	 * sharing one compressed stream) is stopped with this reserve left. */
	uint64_t written, room;
};

/* Free space kept for everything else on that file system. */
#define UNPACK_RESERVE(avail) ((avail) / 20 < (256u << 20) ? (avail) / 20 : (uint64_t)(256u << 20))

static int unpack_fail(struct unpacker *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int unpack_fail(struct unpacker *u, const char *fmt, ...)
{
	if (u->err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		vm_oom();
	va_end(ap);
	u->err = u->entry ? xasprintf("%s: %s: %s", u->archive, u->entry, msg)
			  : xasprintf("%s: %s", u->archive, msg);
	free(msg);
	return -1;
}

static int unpack_archive_fail(struct unpacker *u, const char *fallback)
{
	char *m = archive_msg(u->a, fallback);
	unpack_fail(u, "%s", m);
	free(m);
	return -1;
}

/* Split an entry name into components, dropping "" and "."; refuses
 * absolute names and "..". */
static const char *split_name(const char *name, struct strv *parts)
{
	if (name[0] == '/')
		return "an absolute path is not allowed";
	const char *p = name;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "a '..' in the path is not allowed";
		if (n && !(n == 1 && p[0] == '.')) {
			char *c = strndup(p, n);
			strv_push(parts, c);
			free(c);
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return NULL;
}

/* Open the folder that holds parts[0..n-1] below the target, creating the
 * missing folders; never through a link. Returns a new descriptor or -1. */
static int open_parent(struct unpacker *u, char *const *parts, size_t n)
{
	int cur = dup(u->dirfd);
	if (cur < 0)
		return unpack_fail(u, "%s", strerror(errno));
	for (size_t i = 0; i < n; i++) {
		if (mkdirat(cur, parts[i], 0755) < 0 && errno != EEXIST) {
			close(cur);
			return unpack_fail(u, "%s", strerror(errno));
		}
		int next = openat(cur, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		struct stat st;
		bool link = next < 0 && fstatat(cur, parts[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode);
		close(cur);
		if (next < 0) {
			char *c = printable(parts[i]);
			if (e == ELOOP || e == ENOTDIR)
				unpack_fail(u, "'%s' on its path is a %s, not a folder", c, link ? "link" : "file");
			else
				unpack_fail(u, "%s: %s", c, strerror(e));
			free(c);
			return -1;
		}
		cur = next;
	}
	return cur;
}

static int extract_file(struct unpacker *u, struct archive_entry *e, int pfd, const char *last)
{
	mode_t mode = (archive_entry_perm(e) & 0777) | 0600;
	int fd = openat(pfd, last, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		if (errno == ELOOP)
			return unpack_fail(u, "a link is in the way");
		return unpack_fail(u, "%s", strerror(errno));
	}
	int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
	int64_t end = 0;
	int ret = -1;
	for (;;) {
		if (interrupted) {
			unpack_fail(u, "interrupted");
			goto out;
		}
		const void *blk;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(u->a, &blk, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			unpack_archive_fail(u, "read error");
			goto out;
		}
		if (off < 0 || (declared >= 0 && (off > declared || (int64_t)len > declared - off))) {
			unpack_fail(u, "more data than the %lld bytes its header declares", (long long)declared);
			goto out;
		}
		if (write_sparse_count(fd, blk, len, off, &u->written) < 0) {
			unpack_fail(u, "%s", strerror(errno));
			goto out;
		}
		if (u->written > u->room) {
			char h[32];
			human(h, u->room);
			unpack_fail(u, "%s (the archive expands past the %s free, less a reserve)", strerror(ENOSPC), h);
			goto out;
		}
		if (off + (int64_t)len > end)
			end = off + (int64_t)len;
		progress_show(&u->prog, (uint64_t)archive_filter_bytes(u->a, -1));
	}
	if (ftruncate(fd, declared >= 0 ? declared : end) < 0) {
		unpack_fail(u, "%s", strerror(errno));
		goto out;
	}
	if (archive_entry_mtime_is_set(e)) {
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
					 {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
		futimens(fd, ts);
	}
	if (fsync(fd) < 0) {
		unpack_fail(u, "%s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (close(fd) < 0 && ret == 0)
		ret = unpack_fail(u, "%s", strerror(errno));
	return ret;
}

static const char *forbidden_kind(mode_t type)
{
	switch (type) {
	case AE_IFCHR: return "a character device; device nodes are not allowed";
	case AE_IFBLK: return "a block device; device nodes are not allowed";
	case AE_IFIFO: return "a fifo; fifos are not allowed";
	case AE_IFSOCK: return "a socket; sockets are not allowed";
	default: return "an entry of unknown type";
	}
}

static int unpack_entry(struct unpacker *u, struct archive_entry *e)
{
	const char *name = archive_entry_pathname_utf8(e);
	if (!name)
		name = archive_entry_pathname(e);
	free(u->entry);
	u->entry = printable(name);
	if (!name || !*name)
		return unpack_fail(u, "an entry without a name");
	struct strv parts = {0};
	int ret = -1, pfd = -1;
	const char *why = split_name(name, &parts);
	if (why) {
		unpack_fail(u, "%s", why);
		goto out;
	}
	mode_t type = archive_entry_filetype(e);
	bool is_dir = type == AE_IFDIR;
	/* "./": the archive's root, nothing to make */
	if (parts.n == 0 && is_dir) {
		ret = 0;
		goto out;
	}
	if (parts.n == 0) {
		unpack_fail(u, "not a valid name");
		goto out;
	}
	/* macOS metadata: __MACOSX/ from the Finder, "._NAME" AppleDouble files */
	if (!strcmp(parts.v[0], "__MACOSX") || has_prefix(parts.v[parts.n - 1], "._")) {
		ret = 0;
		goto out;
	}
	if (!u->top) {
		if (parts.n == 1 && !is_dir) {
			unpack_fail(u, "not inside a folder (a bundle archive holds one NAME.utm/ folder)");
			goto out;
		}
		u->top = xstrdup(parts.v[0]);
	} else if (strcmp(parts.v[0], u->top)) {
		char *t = printable(u->top);
		unpack_fail(u, "a second top-level folder (a bundle archive holds one folder, here %s/)", t);
		free(t);
		goto out;
	}
	if (archive_entry_hardlink(e) || archive_entry_hardlink_utf8(e)) {
		unpack_fail(u, "a hard link; hard links are not allowed");
		goto out;
	}
	if (parts.n == 1) {
		/* the top-level folder itself: the target folder stands for it */
		if (!is_dir)
			unpack_fail(u, "the top-level entry is not a folder");
		else
			ret = 0;
		goto out;
	}
	if (!is_dir && type != AE_IFREG && type != AE_IFLNK) {
		unpack_fail(u, "%s", forbidden_kind(type));
		goto out;
	}
	const char *target = NULL;
	if (type == AE_IFLNK) {
		target = archive_entry_symlink_utf8(e);
		if (!target)
			target = archive_entry_symlink(e);
		if (!target || !link_target_ok(target)) {
			char *t = printable(target ? target : "");
			unpack_fail(u, "a symbolic link to '%s' leads out of its folder; not allowed", t);
			free(t);
			goto out;
		}
	}
	if (u->flags & IMPORT_VERBOSE)
		vm_warnx("%s", u->entry);
	/* folders below the top one: parts[1..n-2]; the entry: parts[n-1] */
	pfd = open_parent(u, parts.v + 1, parts.n - 2);
	if (pfd < 0)
		goto out;
	const char *last = parts.v[parts.n - 1];
	if (is_dir) {
		if (mkdirat(pfd, last, 0755) < 0 && errno != EEXIST) {
			unpack_fail(u, "%s", strerror(errno));
			goto out;
		}
		int fd = openat(pfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			unpack_fail(u, "%s", errno == ELOOP || errno == ENOTDIR ? "something else is in the way"
									 : strerror(errno));
			goto out;
		}
		fchmod(fd, (archive_entry_perm(e) & 0777) | 0700);
		close(fd);
		ret = 0;
	} else if (type == AE_IFLNK) {
		if (symlinkat(target, pfd, last) < 0)
			unpack_fail(u, "%s", strerror(errno));
		else
			ret = 0;
	} else {
		ret = extract_file(u, e, pfd, last);
	}
out:
	if (pfd >= 0)
		close(pfd);
	strv_free(&parts);
	return ret;
}

int bundle_unpack(const char *archive, const char *dir, int flags, char **top, char **err)
{
	bool from_stdin = !strcmp(archive, "-");
	struct unpacker u = {.archive = from_stdin ? "stdin" : archive, .flags = flags, .dirfd = -1};
	if (top)
		*top = NULL;
	if (libarchive_load(err) < 0)
		return -1;
	u.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (u.dirfd < 0) {
		*err = xasprintf("%s: %s", dir, strerror(errno));
		return -1;
	}
	struct statvfs vfs;
	u.room = UINT64_MAX;
	if (fstatvfs(u.dirfd, &vfs) == 0) {
		uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		u.room = avail - UNPACK_RESERVE(avail);
	}
	/* VM_UNPACK_ROOM (bytes): a smaller room, for tests */
	const char *room = getenv("VM_UNPACK_ROOM");
	if (room && *room)
		u.room = strtoull(room, NULL, 10);
	struct names_locale nl;
	utf8_names_begin(&nl);
	int ret = -1;
	struct stat st;
	uint64_t total = 0;
	if (from_stdin && isatty(STDIN_FILENO)) {
		unpack_fail(&u, "will not read an archive from a terminal");
		goto out;
	}
	if ((from_stdin ? fstat(STDIN_FILENO, &st) : stat(archive, &st)) < 0) {
		unpack_fail(&u, "%s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		unpack_fail(&u, "a folder, not an archive");
		goto out;
	}
	if (S_ISREG(st.st_mode))
		total = (uint64_t)st.st_size;
	u.a = archive_read_new();
	if (!u.a)
		vm_oom();
	/* the compressors vm-pack writes, and lz4; not support_filter_all,
	 * whose rarer filters run external programs on the input */
	archive_read_support_filter_gzip(u.a);
	archive_read_support_filter_bzip2(u.a);
	archive_read_support_filter_xz(u.a);
	archive_read_support_filter_lzma(u.a);
	archive_read_support_filter_zstd(u.a);
	archive_read_support_filter_lz4(u.a);
	archive_read_support_format_tar(u.a);
	archive_read_support_format_zip(u.a);
	int r = from_stdin ? archive_read_open_fd(u.a, STDIN_FILENO, 1 << 16)
			   : archive_read_open_filename(u.a, archive, 1 << 16);
	if (r != ARCHIVE_OK) {
		unpack_archive_fail(&u, "cannot open");
		goto out;
	}
	progress_init(&u.prog, flags & IMPORT_PROGRESS, u.archive, "read", total);
	for (;;) {
		if (interrupted) {
			unpack_fail(&u, "interrupted");
			break;
		}
		struct archive_entry *e;
		r = archive_read_next_header(u.a, &e);
		if (r == ARCHIVE_EOF) {
			ret = 0;
			break;
		}
		if (r < ARCHIVE_WARN) {
			char *m = archive_msg(u.a, "read error");
			if (u.entry) {
				char *prev = u.entry;
				u.entry = NULL;
				unpack_fail(&u, "after %s: %s", prev, m);
				free(prev);
			} else {
				unpack_fail(&u, "%s", m);
			}
			free(m);
			break;
		}
		if (unpack_entry(&u, e) < 0)
			break;
		progress_show(&u.prog, (uint64_t)archive_filter_bytes(u.a, -1));
	}
	progress_end(&u.prog);
	if (ret == 0 && !u.top) {
		free(u.entry);
		u.entry = NULL;
		ret = unpack_fail(&u, "no bundle in the archive");
	}
	if (ret == 0 && archive_read_close(u.a) != ARCHIVE_OK)
		ret = unpack_archive_fail(&u, "read error");
out:
	if (u.a)
		archive_read_free(u.a);
	close(u.dirfd);
	free(u.entry);
	utf8_names_end(&nl);
	if (ret < 0) {
		*err = u.err;
		free(u.top);
	} else {
		if (top)
			*top = u.top;
		else
			free(u.top);
		free(u.err);
	}
	return ret;
}

/* ---- import ---- */

struct import_ctx {
	const char *archive, *path;
	int flags;
	char *err;
	int lock_fd; /* the temporary bundle, flock'ed while this import lives */
};

/* An import killed (SIGKILL, a crash) leaves its temporary bundle
 * ".NAME.utm.tmp.XXXXXX" beside NAME.utm, possibly gigabytes. Each import
 * holds a lock on its own for as long as it runs, so one that can be locked
 * is dead; the age check covers the moment between mkdtemp and the lock. */
#define STALE_IMPORT_AGE 60

static void drop_stale_imports(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xasprintf("%.*s", (int)(slash - path) + (slash == path), path) : xstrdup(".");
	char *prefix = xasprintf(".%s.tmp.", slash ? slash + 1 : path);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!has_prefix(de->d_name, prefix) || strlen(de->d_name) != strlen(prefix) + 6)
			continue;
		char *p = path_join(dir, de->d_name);
		struct stat st;
		int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_mtime < time(NULL) - STALE_IMPORT_AGE &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0) {
			if (!vm_quiet)
				vm_warnx("%s: removing what an import that was killed left", p);
			rm_rf(p);
		}
		if (fd >= 0)
			close(fd);
		free(p);
	}
	if (d)
		closedir(d);
	free(prefix);
	free(dir);
}

/* "TMP/vm.conf:3: x" -> "ARCHIVE: TOP/vm.conf:3: x" */
static char *relabel(const char *msg, const char *tmp, const char *archive, const char *top)
{
	size_t n = strlen(tmp);
	if (!strncmp(msg, tmp, n) && msg[n] == '/')
		return xasprintf("%s: %s%s", archive, top, msg + n);
	return xasprintf("%s: %s", archive, msg);
}

static int new_identity(struct import_ctx *c, const char *tmp, const char *top, bool plist)
{
	struct bundle b;
	char *e = NULL;
	const char *aname = strcmp(c->archive, "-") ? c->archive : "stdin";
	int r = bundle_open_quiet(&b, tmp, &e);
	bool opened = r == 0; /* a config that cannot be read is no bundle: refused */
	if (r == 0) {
		config_new_identity(&b.cfg);
		r = bundle_save(&b, &e);
		bundle_close(&b);
	}
	if (r == 0)
		return 0;
	if (plist && opened) {
		/* a config.plist that cannot be written (UTM 3's, until upgraded):
		 * the copy is still usable */
		size_t n = strlen(tmp);
		const char *rest = !strncmp(e, tmp, n) && e[n] == '/' ? e + n : NULL;
		vm_warnx("%s%s; kept the archive's UUID and MAC addresses", rest ? c->path : "", rest ? rest : e);
		free(e);
		return 0;
	}
	c->err = relabel(e, tmp, aname, top);
	free(e);
	return -1;
}

/* allow_paths is the user's own permission for host files outside the
 * bundle: one that came in an archive was somebody else's, so it goes. */
static int drop_allow_paths(struct import_ctx *c, const char *tmp, const char *top)
{
	struct bundle b;
	char *e = NULL;
	int r = bundle_open_quiet(&b, tmp, &e);
	bool opened = r == 0;
	if (r == 0 && b.cfg.allow_paths.n) {
		vm_warnx("%s: the archive's allow_paths (%zu host path%s) were dropped; add what you trust with "
			 "vm-config add allow_paths PATH",
			 c->path, b.cfg.allow_paths.n, b.cfg.allow_paths.n == 1 ? "" : "s");
		strv_free(&b.cfg.allow_paths);
		r = bundle_save(&b, &e);
	}
	if (opened)
		bundle_close(&b);
	if (r == 0)
		return 0;
	c->err = relabel(e, tmp, strcmp(c->archive, "-") ? c->archive : "stdin", top);
	free(e);
	return -1;
}

/* What an imported bundle needs its user to know now, not at vm-run:
 * - "Config only" bundles people share leave out disk images: name the
 *   drive, the image and how to make one, of the size UTM gives new disks
 *   (10 GiB). Removable drives, CD-ROMs and images the VM only keeps (media
 *   none) need none.
 * - extra_args (and machine_props) reach QEMU as they are written: from an
 *   archive they are somebody else's, so the user sees them (they stay, as
 *   UTM's AdditionalArguments do). */
static void warn_on_import(struct import_ctx *c, const char *tmp)
{
	struct bundle b;
	char *e = NULL;
	if (bundle_open_quiet(&b, tmp, &e) < 0) {
		free(e);
		return;
	}
	char *rtmp = realpath(tmp, NULL);
	size_t n = rtmp ? strlen(rtmp) : 0;
	for (size_t i = 0; i < b.cfg.ndrives; i++) {
		const struct vm_drive *d = &b.cfg.drives[i];
		if (!d->image || d->removable || (d->media && strcmp(d->media, "disk")))
			continue;
		char *p = bundle_resolve(&b, d->image, &e);
		if (p && !file_exists(p)) {
			/* where it will be once the bundle is in place */
			char *final = rtmp && !strncmp(p, rtmp, n) && p[n] == '/' ? path_join(c->path, p + n + 1)
										: xstrdup(p);
			size_t len = strlen(d->image);
			bool raw = len > 4 && (!strcmp(d->image + len - 4, ".img") || !strcmp(d->image + len - 4, ".raw"));
			struct buf q = {0};
			shell_quote(&q, final);
			vm_warnx("%s: drive %s: its image %s is not in the archive; make an empty %s disk of UTM's "
				 "size with: qemu-img create -f %s %s 10G",
				 c->path, d->id, d->image, raw ? "raw" : "qcow2", raw ? "raw" : "qcow2", q.s);
			buf_free(&q);
			free(final);
		}
		free(p);
		free(e);
		e = NULL;
	}
	free(rtmp);
	if (b.cfg.extra_args.n) {
		struct buf args = {0};
		for (size_t i = 0; i < b.cfg.extra_args.n; i++)
			buf_printf(&args, "%s'%s'", i ? " " : "", b.cfg.extra_args.v[i]);
		char *t = printable(args.s);
		vm_warnx("%s: the archive passes QEMU raw arguments (extra_args): %s; remove what you do not trust "
			 "with vm-config unset extra_args",
			 c->path, t);
		free(t);
		buf_free(&args);
	}
	if (b.cfg.machine_props && *b.cfg.machine_props) {
		char *t = printable(b.cfg.machine_props);
		vm_warnx("%s: the archive sets QEMU machine properties (machine_props): %s", c->path, t);
		free(t);
	}
	bundle_close(&b);
}

static int import_into(const char *tmp, void *arg)
{
	struct import_ctx *c = arg;
	c->lock_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->lock_fd >= 0)
		flock(c->lock_fd, LOCK_EX);
	/* bundle_create made a vm.conf and an empty Data/; the archive brings its own */
	char *p = path_join(tmp, "vm.conf");
	unlink(p);
	free(p);
	p = path_join(tmp, "Data");
	rmdir(p);
	free(p);

	char *top = NULL;
	trap_signals();
	int r = bundle_unpack(c->archive, tmp, c->flags, &top, &c->err);
	untrap_signals();
	if (r < 0)
		return -1;
	struct stat st;
	char *conf = path_join(tmp, "vm.conf"), *plist = path_join(tmp, "config.plist");
	struct stat pst;
	bool has_conf = lstat(conf, &st) == 0, has_plist = lstat(plist, &pst) == 0;
	if (has_conf && has_plist) {
		/* vm-pack puts a config.plist made from vm.conf in zip archives for
		 * UTM. A newer one was changed in UTM since: it wins. Otherwise it
		 * is that copy, and vm.conf is the reference. */
		if (pst.st_mtime > st.st_mtime + 1) {
			unlink(conf);
			has_conf = false;
			if (!vm_quiet)
				vm_warnx("%s: config.plist is newer than vm.conf (changed in UTM): using config.plist",
					 c->path);
		} else {
			unlink(plist);
			has_plist = false;
		}
	}
	free(conf);
	free(plist);
	if (!has_conf && !has_plist) {
		char *t = printable(top);
		c->err = xasprintf("%s: %s/ has no vm.conf or config.plist: not a VM bundle",
				   strcmp(c->archive, "-") ? c->archive : "stdin", t);
		free(t);
		r = -1;
	} else if (!(c->flags & IMPORT_KEEP_IDENTITY)) {
		r = new_identity(c, tmp, top, !has_conf);
	}
	if (r == 0 && has_conf)
		r = drop_allow_paths(c, tmp, top);
	if (r == 0)
		warn_on_import(c, tmp);
	free(top);
	return r;
}

int bundle_import(const char *archive, const char *path, int flags, char **err)
{
	struct import_ctx c = {.archive = archive, .path = path, .flags = flags, .lock_fd = -1};
	/* before a bundle is begun: without libarchive there is nothing to clean up */
	if (libarchive_load(err) < 0)
		return -1;
	drop_stale_imports(path);
	struct vm_config placeholder;
	config_init(&placeholder);
	char *cerr = NULL;
	int r = bundle_create(path, &placeholder, import_into, &c, &cerr);
	config_free(&placeholder);
	if (c.lock_fd >= 0)
		close(c.lock_fd); /* after the rename: never unlocked under the temporary name */
	if (r < 0) {
		if (c.err) {
			*err = c.err;
			free(cerr);
		} else {
			*err = cerr;
		}
		return -1;
	}
	free(c.err);
	return 0;
}
