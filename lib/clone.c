/* Cloning a bundle (clone.h). */
#include "clone.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "media.h"
#include "proc.h"
#include "runtime.h"
#include "suspend.h"

/* One region [off, off+len) of in to the same place in out. */
static int copy_range(int in, int out, off_t off, off_t len)
{
	bool fallback = false;
	while (len > 0) {
		ssize_t n;
		if (!fallback) {
			loff_t a = off, b = off;
			n = copy_file_range(in, &a, out, &b, (size_t)len, 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
				fallback = true;
				continue;
			}
		} else {
			char buf[1 << 16];
			n = pread(in, buf, len < (off_t)sizeof buf ? (size_t)len : sizeof buf, off);
			if (n > 0 && pwrite(out, buf, (size_t)n, off) != n)
				n = -1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (errno = EIO, -1);
		off += n;
		len -= n;
	}
	return 0;
}

int copy_file_sparse(const char *src, const char *dst, char **err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, r = -1;
	struct stat st;
	const char *bad = src;
	if (in < 0 || fstat(in, &st) < 0)
		goto out;
	bad = dst;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777);
	if (out < 0)
		goto out;
	if (ioctl(out, FICLONE, in) == 0) {
		r = 0;
		goto out;
	}
	if (ftruncate(out, st.st_size) < 0)
		goto out;
	for (off_t off = 0; off < st.st_size;) {
		off_t data = lseek(in, off, SEEK_DATA), hole;
		if (data < 0 && errno == ENXIO)
			break; /* a hole to the end */
		if (data < 0) { /* no SEEK_DATA here: all data */
			data = off;
			hole = st.st_size;
		} else if ((hole = lseek(in, data, SEEK_HOLE)) < 0) {
			hole = st.st_size;
		}
		if (copy_range(in, out, data, hole - data) < 0)
			goto out;
		off = hole;
	}
	r = 0;
out:
	if (r < 0)
		vm_set_err(err, "%s: %s", bad, strerror(errno));
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && r == 0) {
		vm_set_err(err, "%s: %s", dst, strerror(errno));
		r = -1;
	}
	return r;
}

struct clone_ctx {
	int flags;
	struct strv linked; /* names in Data/ that become overlays */
	char *err;
};

static bool is_tmp_name(const char *n)
{
	return strstr(n, ".tmp.") != NULL;
}

/* The tree at src into dst (made), leaving out what the clone does not get. */
static int copy_tree(struct clone_ctx *c, const char *src, const char *dst, bool in_data)
{
	DIR *d = opendir(src);
	if (!d) {
		vm_set_err(&c->err, "%s: %s", src, strerror(errno));
		return -1;
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || is_tmp_name(n))
			continue;
		if (in_data && !strcmp(n, SUSPEND_FILE) && !(c->flags & CLONE_WITH_STATE))
			continue;
		if (in_data && strv_contains(&c->linked, n))
			continue; /* an overlay, made later */
		char *s = path_join(src, n), *t = path_join(dst, n);
		struct stat st;
		if (lstat(s, &st) < 0) {
			vm_set_err(&c->err, "%s: %s", s, strerror(errno));
			r = -1;
		} else if (S_ISDIR(st.st_mode)) {
			if (mkdir(t, st.st_mode & 0777) < 0) {
				vm_set_err(&c->err, "%s: %s", t, strerror(errno));
				r = -1;
			} else {
				r = copy_tree(c, s, t, !in_data && !strcmp(n, "Data"));
			}
		} else if (S_ISLNK(st.st_mode)) {
			char link[PATH_MAX];
			ssize_t k = readlink(s, link, sizeof link - 1);
			if (k < 0 || (link[k] = '\0', symlink(link, t) < 0)) {
				vm_set_err(&c->err, "%s: %s", t, strerror(errno));
				r = -1;
			}
		} else if (S_ISREG(st.st_mode)) {
			r = copy_file_sparse(s, t, &c->err);
		}
		free(s);
		free(t);
	}
	closedir(d);
	return r;
}

/* The drives whose image is a file in Data/ and a disk (not a CD-ROM):
 * what --linked makes overlays of. */
static void linked_drives(const struct bundle *b, struct strv *names)
{
	for (size_t i = 0; i < b->cfg.ndrives; i++) {
		const struct vm_drive *d = &b->cfg.drives[i];
		if (!d->image || strchr(d->image, '/') || media_is_cdrom(d) || strv_contains(names, d->image))
			continue;
		strv_push(names, d->image);
	}
}

static int make_overlay(const struct bundle *src, const struct vm_drive *d, const char *tmp, char **err)
{
	char *base = bundle_resolve(src, d->image, err);
	if (!base)
		return -1;
	char *abs = realpath(base, NULL);
	const char *fmt = abs ? media_drive_format(d, abs, err) : NULL;
	int r = -1;
	if (!abs) {
		vm_set_err(err, "%s: %s", base, strerror(errno));
	} else if (fmt) {
		char *ov = xasprintf("%s/Data/%s", tmp, d->image);
		char *av[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-b", abs, "-F", (char *)fmt, ov, NULL};
		struct buf eo = {0};
		int st = proc_run(av, NULL, &eo);
		if (st == 0) {
			r = 0;
			/* its clones read it: it must not change under them */
			struct stat sb;
			if (stat(abs, &sb) == 0)
				chmod(abs, sb.st_mode & ~(mode_t)0222);
		} else {
			char *line = proc_error_line("qemu-img", st, &eo);
			vm_set_err(err, "%s", line);
			free(line);
		}
		buf_free(&eo);
		free(ov);
	}
	free(abs);
	free(base);
	return r;
}

static void remove_tree(const char *path)
{
	char *av[] = {"rm", "-rf", "--", (char *)path, NULL};
	proc_run(av, NULL, NULL);
}

int bundle_clone(const char *srcname, const char *dst, const char *name, int flags, char **err)
{
	struct bundle src, nb;
	if (bundle_open(&src, srcname, err) < 0)
		return -1;
	int r = -1;
	struct clone_ctx c = {.flags = flags};
	char *tmp = NULL, *rt = bundle_runtime_path(&src, NULL, NULL);
	if (rt && runtime_locked(rt)) {
		vm_set_err(err, "%s: the VM is running; stop it first (vm-stop, or vm-stop --save to clone "
				"its state with --with-state)", src.path);
		goto out;
	}
	if ((flags & CLONE_WITH_STATE) && !suspend_exists(&src)) {
		vm_set_err(err, "%s: --with-state: no saved state (vm-stop --save makes one)", src.path);
		goto out;
	}
	struct stat st;
	if (lstat(dst, &st) == 0) {
		vm_set_err(err, "%s: already exists", dst);
		goto out;
	}
	const char *slash = strrchr(dst, '/');
	tmp = slash ? xasprintf("%.*s/.%s.tmp.XXXXXX", (int)(slash - dst), dst, slash + 1)
		    : xasprintf(".%s.tmp.XXXXXX", dst);
	if (!mkdtemp(tmp)) {
		vm_set_err(err, "%s: cannot create: %s", dst, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	chmod(tmp, 0755);
	if (flags & CLONE_LINKED)
		linked_drives(&src, &c.linked);
	if (copy_tree(&c, src.path, tmp, false) < 0) {
		*err = c.err;
		c.err = NULL;
		goto out;
	}
	for (size_t i = 0; i < c.linked.n; i++) {
		const struct vm_drive *d = NULL;
		for (size_t j = 0; j < src.cfg.ndrives && !d; j++)
			if (src.cfg.drives[j].image && !strcmp(src.cfg.drives[j].image, c.linked.v[i]))
				d = &src.cfg.drives[j];
		if (make_overlay(&src, d, tmp, err) < 0)
			goto out;
	}
	bool quiet = vm_quiet;
	vm_quiet = true; /* notices would name the temporary folder */
	int or = bundle_open(&nb, tmp, err);
	vm_quiet = quiet;
	if (or < 0)
		goto out;
	config_new_identity(&nb.cfg);
	free(nb.cfg.name);
	nb.cfg.name = name ? xstrdup(name) : bundle_display_name(dst);
	for (size_t i = 0; i < nb.cfg.ndrives; i++) {
		struct vm_drive *d = &nb.cfg.drives[i];
		if (d->image && strv_contains(&c.linked, d->image)) {
			free(d->format);
			d->format = xstrdup("qcow2");
		}
	}
	int sr = bundle_save(&nb, err);
	bundle_close(&nb);
	if (sr < 0)
		goto out;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) < 0) {
		vm_set_err(err, "%s: %s", dst, strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (r < 0 && tmp)
		remove_tree(tmp);
	free(c.err);
	strv_free(&c.linked);
	free(tmp);
	free(rt);
	bundle_close(&src);
	return r;
}
