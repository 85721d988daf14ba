/* The .utm bundle on disk: find, open, save, create, resolve paths. */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *strip_slashes(const char *p)
{
	char *s = xstrdup(p);
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

char *bundle_find(const char *arg)
{
	if (strlen(arg) >= PATH_MAX) { /* not "no such bundle": no path can be that long */
		errno = ENAMETOOLONG;
		return NULL;
	}
	char *p = strip_slashes(arg);
	if (is_dir(p))
		return p;
	char *withext = xasprintf("%s.utm", p);
	if (is_dir(withext)) {
		free(p);
		return withext;
	}
	free(withext);
	if (!strchr(p, '/')) {
		const char *vp = getenv("VM_PATH");
		if (vp && *vp) {
			char *dirs = xstrdup(vp), *save = NULL;
			for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
				char *c1 = xasprintf("%s/%s.utm", d, p), *c2 = xasprintf("%s/%s", d, p);
				char *hit = is_dir(c1) ? c1 : is_dir(c2) ? c2 : NULL;
				if (hit) {
					free(hit == c1 ? c2 : c1);
					free(dirs);
					free(p);
					return hit;
				}
				free(c1);
				free(c2);
			}
			free(dirs);
		}
	}
	free(p);
	errno = ENOENT;
	return NULL;
}

char *bundle_display_name(const char *path)
{
	char *s = strip_slashes(path);
	const char *base = strrchr(s, '/');
	base = base ? base + 1 : s;
	size_t n = strlen(base);
	if (n > 4 && !strcmp(base + n - 4, ".utm"))
		n -= 4;
	char *name = strndup(base, n);
	free(s);
	return name;
}

int bundle_open_flags(struct bundle *b, const char *arg, int flags, char **err)
{
	memset(b, 0, sizeof *b);
	b->lock_fd = -1;
	b->path = bundle_find(arg);
	if (!b->path && errno == ENAMETOOLONG) {
		*err = xasprintf("%.64s...: %s", arg, strerror(errno));
		return -1;
	}
	if (!b->path) {
		*err = xasprintf("%s: no such bundle%s", arg,
				 strchr(arg, '/') || !getenv("VM_PATH") ? "" : " (searched $VM_PATH)");
		return -1;
	}
	if (flags & BUNDLE_LOCK) {
		b->lock_fd = open(b->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (b->lock_fd < 0 || flock(b->lock_fd, LOCK_EX) < 0) {
			*err = xasprintf("%s: cannot lock: %s", b->path, strerror(errno));
			goto fail;
		}
	}
	b->conf_path = path_join(b->path, "vm.conf");
	char *plist = path_join(b->path, "config.plist");
	if (!file_exists(b->conf_path) && file_exists(plist)) {
		free(b->conf_path);
		b->conf_path = plist;
		b->format = BUNDLE_PLIST;
		size_t plen;
		char *data = read_regular_file(b->conf_path, CONFIG_PLIST_MAX, &plen, err);
		if (!data)
			goto fail;
		int pr = config_parse_plist(&b->cfg, b->conf_path, data, plen, &b->plist_doc, &b->plist, err);
		free(data);
		if (pr < 0)
			goto fail;
		if (b->plist.kind == PLIST_UTM_LEGACY) {
			/* an upgrade stopped between its two renames: the images are in Data/ */
			char *im = path_join(b->path, "Images"), *da = path_join(b->path, "Data");
			if (!is_dir(im) && is_dir(da))
				b->plist.data_dir = "Data";
			free(im);
			free(da);
		}
		if (b->plist.notices.len && !vm_quiet)
			fputs(b->plist.notices.s, stderr);
		return 0;
	}
	free(plist);
	size_t len;
	char *text = read_regular_file(b->conf_path, CONFIG_VMCONF_MAX, &len, err);
	if (!text)
		goto fail;
	if (strlen(text) != len) {
		*err = xasprintf("%s: contains a NUL byte", b->conf_path);
		free(text);
		goto fail;
	}
	int r = config_parse_vmconf(&b->cfg, b->conf_path, text, err);
	free(text);
	if (r < 0)
		goto fail;
	return 0;
fail:
	bundle_close(b);
	return -1;
}

int bundle_open(struct bundle *b, const char *arg, char **err)
{
	return bundle_open_flags(b, arg, 0, err);
}

void bundle_close(struct bundle *b)
{
	config_free(&b->cfg);
	strv_free(&b->allow);
	config_plist_free(b->plist_doc);
	plist_meta_free(&b->plist);
	free(b->path);
	free(b->conf_path);
	if (b->lock_fd >= 0)
		close(b->lock_fd); /* releases the flock */
	memset(b, 0, sizeof *b);
	b->lock_fd = -1;
}

void bundle_effective_config(const struct bundle *b, struct vm_config *out)
{
	config_copy(out, &b->cfg);
	config_apply_defaults(out);
}

/* A writer killed (SIGKILL) between its temporary file and the rename
 * leaves NAME.tmp.XXXXXX (write_file_atomic, mkstemp) or NAME.tmp.PID
 * (vm-disk's images in Data/) behind, where it would travel with the bundle
 * (vm-pack, cp -r). Every writer of these holds the bundle's lock, as the
 * caller does: any such file is stale. */
void bundle_drop_stale_tmp(const struct bundle *b, const char *subdir, const char *name)
{
	if (b->lock_fd < 0)
		return;
	char *prefix = xasprintf("%s.tmp.", name);
	size_t plen = strlen(prefix);
	int fd = openat(b->lock_fd, subdir ? subdir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d && fd >= 0)
		close(fd);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		const char *tail = de->d_name + plen;
		if (strncmp(de->d_name, prefix, plen) || !*tail)
			continue;
		if (strlen(tail) == 6 || !tail[strspn(tail, "0123456789")])
			unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d)
		closedir(d);
	free(prefix);
}

int bundle_save(struct bundle *b, char **err)
{
	const char *base = strrchr(b->conf_path, '/');
	bundle_drop_stale_tmp(b, NULL, base ? base + 1 : b->conf_path);
	if (b->format == BUNDLE_PLIST) {
		if (b->plist.readonly) {
			*err = xstrdup(b->plist.readonly);
			return -1;
		}
		void *doc = config_plist_copy(b->plist_doc);
		if (config_plist_update(doc, &b->cfg, 0, NULL, b->conf_path, err) < 0) {
			config_plist_free(doc);
			return -1;
		}
		size_t xlen;
		char *xml = config_plist_xml(doc, &xlen);
		int wr = xml ? write_file_atomic(b->conf_path, xml, xlen, 0644) : -1;
		free(xml);
		if (wr < 0) {
			*err = xasprintf("%s: %s", b->conf_path, strerror(errno));
			config_plist_free(doc);
			return -1;
		}
		config_plist_free(b->plist_doc);
		b->plist_doc = doc;
		return 0;
	}
	char *text = config_format_vmconf(&b->cfg);
	int r = write_file_atomic(b->conf_path, text, strlen(text), 0644);
	free(text);
	if (r < 0) {
		*err = xasprintf("%s: %s", b->conf_path, strerror(errno));
		return -1;
	}
	return 0;
}

int bundle_upgrade(struct bundle *b, char **err)
{
	if (b->format != BUNDLE_PLIST || b->plist.kind != PLIST_UTM_LEGACY) {
		*err = xasprintf("%s: not a UTM 3 bundle; nothing to upgrade", b->conf_path);
		return -1;
	}
	char *name = bundle_display_name(b->path);
	void *doc = config_plist_upgrade(b->plist_doc, &b->cfg, name, b->conf_path, err);
	free(name);
	if (!doc)
		return -1;
	size_t xlen;
	char *xml = config_plist_xml(doc, &xlen);
	config_plist_free(doc);
	bundle_drop_stale_tmp(b, NULL, ".config.plist.v4");
	char *tmp = path_join(b->path, ".config.plist.v4"), *images = path_join(b->path, "Images"),
	     *data = path_join(b->path, "Data"), *view = path_join(b->path, "view.plist");
	int ret = -1;
	if (!xml || write_file_atomic(tmp, xml, xlen, 0644) < 0) {
		*err = xasprintf("%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (is_dir(images)) {
		if (is_dir(data) && rmdir(data) < 0) {
			*err = xasprintf("%s: both Images/ and a non-empty Data/; not upgraded", b->path);
			unlink(tmp);
			goto out;
		}
		if (rename(images, data) < 0) {
			*err = xasprintf("%s: %s", images, strerror(errno));
			unlink(tmp);
			goto out;
		}
	} else if (!is_dir(data) && mkdir(data, 0755) < 0) {
		*err = xasprintf("%s: %s", data, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, b->conf_path) < 0) {
		*err = xasprintf("%s: %s", b->conf_path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	size_t vlen;
	char *vdata = read_regular_file(view, CONFIG_PLIST_MAX, &vlen, NULL);
	if (vdata) {
		struct buf notes = {0};
		config_plist_view_notes(vdata, vlen, &notes);
		if (notes.len)
			fprintf(stderr, "%s: view.plist held what UTM 4 keeps elsewhere:\n%s", b->path, notes.s);
		buf_free(&notes);
		free(vdata);
		unlink(view);
	}
	ret = 0;
out:
	free(xml);
	free(tmp);
	free(images);
	free(data);
	free(view);
	return ret;
}

/* Ctrl-C during create: the handler only notes it; the create path sees the
 * failed step (its child got the signal too) and removes the temporary folder. */
static volatile sig_atomic_t create_interrupted;
static void note_signal(int sig)
{
	create_interrupted = sig;
}

int bundle_create(const char *path, const struct vm_config *cfg,
		  int (*make_data)(const char *tmp_bundle, void *arg), void *arg, char **err)
{
	char *target = strip_slashes(path);
	struct stat st;
	if (lstat(target, &st) == 0) {
		*err = xasprintf("%s: already exists", target);
		free(target);
		return -1;
	}
	char *slash = strrchr(target, '/');
	char *dir = slash ? (slash == target ? xstrdup("/") : strndup(target, (size_t)(slash - target)))
			  : xstrdup(".");
	char *base = xstrdup(slash ? slash + 1 : target);
	char *tmp = xasprintf("%s/.%s.tmp.XXXXXX", dir, base);
	free(base);
	free(dir);

	struct sigaction sa = {.sa_handler = note_signal}, old[3];
	int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	create_interrupted = 0;

	int ret = -1;
	if (!mkdtemp(tmp)) {
		*err = xasprintf("%s: cannot create: %s", target, strerror(errno));
		goto out;
	}
	chmod(tmp, 0755);
	char *data = path_join(tmp, "Data");
	int r = mkdir(data, 0755);
	free(data);
	if (r < 0) {
		*err = xasprintf("%s: %s", target, strerror(errno));
		goto cleanup;
	}
	char *conf = path_join(tmp, "vm.conf"), *text = config_format_vmconf(cfg);
	r = write_file_atomic(conf, text, strlen(text), 0644);
	free(text);
	free(conf);
	if (r < 0) {
		*err = xasprintf("%s: %s", target, strerror(errno));
		goto cleanup;
	}
	if (make_data && make_data(tmp, arg) < 0) {
		*err = xasprintf("%s: not created", target);
		goto cleanup;
	}
	if (create_interrupted) {
		*err = xasprintf("%s: interrupted; not created", target);
		goto cleanup;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_NOREPLACE) < 0) {
		*err = xasprintf("%s: %s", target, strerror(errno));
		goto cleanup;
	}
	ret = 0;
	goto out;
cleanup:
	rm_rf(tmp);
out:
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	free(tmp);
	free(target);
	if (ret < 0 && create_interrupted)
		raise(create_interrupted);
	return ret;
}

/* Is path (real) at or under dir (made real where it exists)? */
static bool path_under(const char *path, const char *dir)
{
	char *rd = realpath(dir, NULL);
	const char *d = rd ? rd : dir;
	size_t n = strlen(d);
	while (n > 1 && d[n - 1] == '/')
		n--;
	bool in = !strncmp(path, d, n) && (path[n] == '/' || path[n] == '\0' || (n == 1 && d[0] == '/'));
	free(rd);
	return in;
}

/* allow: the allow_paths of the config in question (the bundle's, or one
 * about to be saved). */
static int check_outside(const struct bundle *b, const struct strv *allow, const char *path, char **err)
{
	/* Compare the file's real path, so a link or ".." cannot walk out of
	 * an allowed folder; a missing file is judged by its name. */
	char *real = realpath(path, NULL);
	const char *p = real ? real : path;
	bool ok = path[0] == '/' && !(!real && strstr(path, "/.."));
	bool allowed = false;
	char *rb = realpath(b->path, NULL);
	if (ok && rb && path_under(p, rb))
		allowed = true;
	for (size_t i = 0; ok && !allowed && i < b->allow.n; i++)
		allowed = path_under(p, b->allow.v[i]);
	for (size_t i = 0; ok && !allowed && i < allow->n; i++)
		allowed = allow->v[i][0] == '/' && path_under(p, allow->v[i]);
	free(rb);
	if (!allowed)
		*err = xasprintf("%s: '%s' is outside the bundle (allow it: --allow-path, or the "
				 "config's allow_paths)",
				 b->conf_path, path);
	free(real);
	return allowed ? 0 : -1;
}

int bundle_check_outside(const struct bundle *b, const char *path, char **err)
{
	return check_outside(b, &b->cfg.allow_paths, path, err);
}

char *bundle_resolve(const struct bundle *b, const char *name, char **err)
{
	if (name[0] == '/') {
		if (bundle_check_outside(b, name, err) < 0)
			return NULL;
		return xstrdup(name); /* the user allowed this path explicitly */
	}
	if (!bundle_name_is_safe(name)) {
		*err = xasprintf("%s: '%s' leaves the bundle", b->conf_path, name);
		return NULL;
	}
	/* Absolute, so the argv works from any working directory. */
	char *realb = realpath(b->path, NULL);
	char *data = path_join(realb ? realb : b->path, b->plist.data_dir ? b->plist.data_dir : "Data");
	char *p = path_join(data, name);
	free(data);
	/* A symlink inside Data/ must not lead out of the bundle either. */
	char *real = realpath(p, NULL);
	if (real && realb) {
		size_t n = strlen(realb);
		if (strncmp(real, realb, n) != 0 || (real[n] != '/' && real[n] != '\0')) {
			*err = xasprintf("%s: '%s' leads out of the bundle (to %s)", b->conf_path, name, real);
			free(real);
			free(realb);
			free(p);
			return NULL;
		}
	}
	free(real);
	free(realb);
	return p;
}

int bundle_check_paths(const struct bundle *b, const struct vm_config *c, struct buf *errs)
{
	int n = 0;
	struct strv keys = {0}, names = {0};
	const char *single[] = {"kernel", c->kernel, "initrd", c->initrd, "bios", c->bios, "dtb", c->dtb};
	for (size_t i = 0; i < sizeof single / sizeof *single; i += 2)
		if (single[i + 1]) {
			strv_push(&keys, single[i]);
			strv_push(&names, single[i + 1]);
		}
	for (size_t i = 0; i < c->ndrives; i++)
		if (c->drives[i].image) {
			strv_pushf(&keys, "drive.%s.image", c->drives[i].id);
			strv_push(&names, c->drives[i].image);
		}
	for (size_t i = 0; i < c->nshares; i++)
		if (c->shares[i].path && c->shares[i].path[0] == '/') {
			strv_pushf(&keys, "share.%s.path", c->shares[i].id);
			strv_push(&names, c->shares[i].path);
		}
	for (size_t i = 0; i < names.n; i++) {
		/* a relative name is checked by config_validate (no "..") */
		if (names.v[i][0] != '/')
			continue;
		char *e = NULL;
		if (check_outside(b, &c->allow_paths, names.v[i], &e) < 0) {
			/* "FILE: 'PATH' is outside ...": name the key after the file */
			const char *rest = strstr(e, ": '");
			buf_printf(errs, "%s: %s:%s\n", b->conf_path, keys.v[i], rest ? rest + 1 : e);
			n++;
		}
		free(e);
	}
	strv_free(&keys);
	strv_free(&names);
	return n;
}
