/* ISO 9660 images through libarchive's iso9660 writer. */
#include "iso.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive_dl.h"
#include "util.h"

struct iso {
	struct archive *a;
	char *path, *tmp;
	int fd;
	bool failed;
	bool discarding; /* iso_discard: what libarchive still writes goes nowhere */
};

static la_ssize_t write_cb(struct archive *a, void *arg, const void *data, size_t len)
{
	struct iso *w = arg;
	if (w->discarding)
		return (la_ssize_t)len;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(w->fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			archive_set_error(a, errno, "%s", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return (la_ssize_t)len;
}

bool iso_label_valid(const char *s, const char **why)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0) {
		*why = "is empty";
		return false;
	}
	if (n > ISO_LABEL_MAX) {
		*why = "is longer than 32 characters";
		return false;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p > 0x7e) {
			*why = "has characters other than printable ASCII";
			return false;
		}
	}
	return true;
}

static int fail(struct iso *w, char **err, const char *what)
{
	w->failed = true;
	const char *e = archive_error_string(w->a);
	*err = xasprintf("%s: %s: %s", w->path, what, e ? e : strerror(archive_errno(w->a)));
	return -1;
}

struct iso *iso_create(const char *path, const struct iso_opts *o, char **err)
{
	static const struct iso_opts none = {0};
	if (!o)
		o = &none;
	const char *label = o->label ? o->label : "CDROM", *why;
	if (!iso_label_valid(label, &why)) {
		*err = xasprintf("%s: label '%s' %s", path, label, why);
		return NULL;
	}
	if (libarchive_load(err) < 0)
		return NULL;
	struct iso *w = xcalloc(1, sizeof *w);
	w->path = xstrdup(path);
	/* a hidden temporary name in the same folder, so the rename is atomic */
	const char *slash = strrchr(path, '/');
	w->tmp = slash ? xasprintf("%.*s/.%s.tmp.XXXXXX", (int)(slash - path), path, slash + 1)
		       : xasprintf(".%s.tmp.XXXXXX", path);
	w->fd = mkstemp(w->tmp);
	if (w->fd < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		free(w->tmp);
		w->tmp = NULL;
		iso_discard(w);
		return NULL;
	}
	fchmod(w->fd, 0644);
	w->a = archive_write_new();
	if (archive_write_set_format_iso9660(w->a) != ARCHIVE_OK ||
	    archive_write_set_format_option(w->a, "iso9660", "volume-id", label) != ARCHIVE_OK ||
	    archive_write_set_format_option(w->a, "iso9660", "joliet", o->no_joliet ? NULL : "1") !=
		ARCHIVE_OK ||
	    /* strict: modes as they are (mkisofs -R), not made world-readable (-r) */
	    archive_write_set_format_option(w->a, "iso9660", "rockridge", o->no_rockridge ? NULL : "strict") !=
		ARCHIVE_OK ||
	    /* level 3: files of 4 GiB and more are split into extents */
	    archive_write_set_format_option(w->a, "iso9660", "iso-level", "3") != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK || /* no padding */
	    archive_write_open2(w->a, w, NULL, write_cb, NULL, NULL) != ARCHIVE_OK) {
		fail(w, err, "cannot start the image");
		iso_discard(w);
		return NULL;
	}
	return w;
}

static char *clean_name(const char *name)
{
	while (*name == '/')
		name++;
	char *s = xstrdup(name);
	size_t n = strlen(s);
	while (n && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

static struct archive_entry *new_entry(const char *name, mode_t type, mode_t perm, time_t mtime)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm & 07777);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, mtime, 0);
	return e;
}

int iso_add_data(struct iso *w, const char *name, const void *data, size_t len, char **err)
{
	char *n = clean_name(name);
	if (!*n) {
		free(n);
		*err = xasprintf("%s: an empty file name", w->path);
		return -1;
	}
	struct archive_entry *e = new_entry(n, AE_IFREG, 0644, time(NULL));
	archive_entry_set_size(e, (la_int64_t)len);
	int r = 0;
	if (archive_write_header(w->a, e) != ARCHIVE_OK)
		r = fail(w, err, n);
	else if (len && archive_write_data(w->a, data, len) != (la_ssize_t)len)
		r = fail(w, err, n);
	archive_entry_free(e);
	free(n);
	return r;
}

static int add_file(struct iso *w, const char *name, const char *host, const struct stat *st, char **err)
{
	int fd = open(host, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err = xasprintf("%s: %s", host, strerror(errno));
		return -1;
	}
	struct archive_entry *e = new_entry(name, AE_IFREG, st->st_mode, st->st_mtime);
	archive_entry_set_size(e, st->st_size);
	int r = 0;
	if (archive_write_header(w->a, e) != ARCHIVE_OK) {
		r = fail(w, err, name);
		goto out;
	}
	char chunk[65536];
	off_t left = st->st_size;
	while (left > 0) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = xasprintf("%s: %s", host, n < 0 ? strerror(errno) : "file shrank while being read");
			w->failed = true;
			r = -1;
			goto out;
		}
		if (n > left)
			n = (ssize_t)left; /* grew meanwhile: take what the header said */
		if (archive_write_data(w->a, chunk, (size_t)n) != n) {
			r = fail(w, err, name);
			goto out;
		}
		left -= n;
	}
out:
	archive_entry_free(e);
	close(fd);
	return r;
}

static int add_tree(struct iso *w, const char *name, const char *host, int depth, char **err)
{
	struct stat st;
	if (lstat(host, &st) < 0) {
		*err = xasprintf("%s: %s", host, strerror(errno));
		return -1;
	}
	if (S_ISREG(st.st_mode)) {
		if (!*name) {
			*err = xasprintf("%s: a file needs a name in the image", host);
			return -1;
		}
		return add_file(w, name, host, &st, err);
	}
	if (S_ISLNK(st.st_mode)) {
		if (!*name) {
			*err = xasprintf("%s: a symlink needs a name in the image", host);
			return -1;
		}
		char *target = xmalloc((size_t)st.st_size + 1);
		ssize_t n = readlink(host, target, (size_t)st.st_size + 1);
		if (n < 0 || n > st.st_size) {
			*err = xasprintf("%s: %s", host, n < 0 ? strerror(errno) : "symlink changed");
			free(target);
			return -1;
		}
		target[n] = '\0';
		struct archive_entry *e = new_entry(name, AE_IFLNK, 0777, st.st_mtime);
		archive_entry_set_symlink(e, target);
		int r = archive_write_header(w->a, e) == ARCHIVE_OK ? 0 : fail(w, err, name);
		archive_entry_free(e);
		free(target);
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		*err = xasprintf("%s: not a regular file, symlink or folder", host);
		return -1;
	}
	if (depth > 64) {
		*err = xasprintf("%s: folders nested too deep", host);
		return -1;
	}
	if (*name) {
		struct archive_entry *e = new_entry(name, AE_IFDIR, st.st_mode, st.st_mtime);
		int r = archive_write_header(w->a, e) == ARCHIVE_OK ? 0 : fail(w, err, name);
		archive_entry_free(e);
		if (r < 0)
			return r;
	}
	struct dirent **list;
	int n = scandir(host, &list, NULL, alphasort);
	if (n < 0) {
		*err = xasprintf("%s: %s", host, strerror(errno));
		return -1;
	}
	int r = 0;
	for (int i = 0; i < n; i++) {
		const char *d = list[i]->d_name;
		if (r == 0 && strcmp(d, ".") && strcmp(d, "..")) {
			char *sub = *name ? xasprintf("%s/%s", name, d) : xstrdup(d);
			char *hp = path_join(host, d);
			r = add_tree(w, sub, hp, depth + 1, err);
			free(sub);
			free(hp);
		}
		free(list[i]);
	}
	free(list);
	return r;
}

int iso_add_path(struct iso *w, const char *name, const char *host_path, char **err)
{
	char *n = clean_name(name);
	int r = add_tree(w, n, host_path, 0, err);
	if (r < 0)
		w->failed = true;
	free(n);
	return r;
}

int iso_commit(struct iso *w, char **err)
{
	int r = 0;
	if (w->failed) {
		*err = xasprintf("%s: not written after an earlier error", w->path);
		r = -1;
	} else if (archive_write_close(w->a) != ARCHIVE_OK) {
		r = fail(w, err, "cannot write the image");
	} else if (fsync(w->fd) < 0 || close(w->fd) < 0) {
		w->fd = -1;
		*err = xasprintf("%s: %s", w->path, strerror(errno));
		r = -1;
	} else {
		w->fd = -1;
		if (rename(w->tmp, w->path) < 0) {
			*err = xasprintf("%s: %s", w->path, strerror(errno));
			r = -1;
		} else {
			free(w->tmp);
			w->tmp = NULL; /* nothing left to remove */
		}
	}
	iso_discard(w);
	return r;
}

void iso_discard(struct iso *w)
{
	if (!w)
		return;
	w->discarding = true;
	if (w->a)
		archive_write_free(w->a); /* closes (and so writes out) an open archive: to nowhere */
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	free(w->tmp);
	free(w->path);
	free(w);
}
