/* Offline disk work through libguestfs. */
#include "offline.h"

#include <errno.h>
#include <guestfs.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "dl.h"

/* libguestfs is loaded when an offline command first needs it, not linked:
 * it brings some sixty shared libraries (libvirt, glib, gnutls ...) that
 * every other vm-disk command, and every tool linking libvm.a, would load
 * at start-up for nothing. The header still gives the exact prototypes. */
#define GFS_FUNCS(X) \
	X(add_drive_opts) X(blockdev_getsize64) X(close) X(copy_in) X(copy_out) X(create) \
	X(exists) X(inspect_get_arch) X(inspect_get_distro) X(inspect_get_hostname) \
	X(inspect_get_major_version) X(inspect_get_minor_version) X(inspect_get_mountpoints) \
	X(inspect_get_osinfo) X(inspect_get_package_format) X(inspect_get_package_management) \
	X(inspect_get_product_name) X(inspect_get_type) X(inspect_os) X(is_dir) X(last_error) \
	X(launch) X(list_devices) X(list_filesystems) X(list_partitions) X(ls) X(mkfs_opts) \
	X(mount) X(mount_ro) X(part_to_dev) X(set_error_handler) X(shutdown) X(umount_all) \
	X(vfs_label) X(vfs_type) X(vfs_uuid) X(wipefs) \
	X(set_event_callback) X(delete_event_callback) X(get_backend_settings) X(set_backend_settings) \
	X(get_verbose)

#define GFS_DECL(n) static __typeof__(guestfs_##n) *gfs_##n;
GFS_FUNCS(GFS_DECL)

static int gfs_load(char **err)
{
#define GFS_SYM(n) {"guestfs_" #n, (void **)&gfs_##n},
	static const struct dl_sym syms[] = {GFS_FUNCS(GFS_SYM)};
#undef GFS_SYM
	static void *lib;
	if (!lib)
		lib = dl_open_syms("libguestfs.so.0", "libguestfs", "Debian package libguestfs0", syms,
				   sizeof syms / sizeof syms[0], err);
	return lib ? 0 : -1;
}

struct offline {
	guestfs_h *g;
	char **devices; /* /dev/sda ... in drive order */
	char **ids;	/* the drive ids, same order */
	size_t n;
};

static void free_strings(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static char *gerr(struct offline *o, const char *what)
{
	const char *e = o && o->g ? gfs_last_error(o->g) : NULL;
	if (!e || !*e)
		e = "failed";
	/* libguestfs errors can span lines (a tool's stderr): keep the first */
	size_t n = strcspn(e, "\n");
	return what ? xasprintf("%s: %.*s", what, (int)n, e) : xasprintf("%.*s", (int)n, e);
}

/* ---- the appliance's launch: the host's KVM verdict, and why it failed ---- */

/* libguestfs starts its appliance with KVM and -cpu host whenever /dev/kvm
 * opens; where KVM opens but does not run guests (nested, kvm_pvm) that QEMU
 * aborts. So the appliance gets vm-run's verdict (accel_choose: $VM_ACCEL,
 * else the probe, cached per boot): TCG is libguestfs's force_tcg setting,
 * added to what $LIBGUESTFS_BACKEND_SETTINGS gave unless that names it. */
static int appliance_accel(guestfs_h *g, char **err)
{
	struct accel_choice c;
	if (accel_choose(NULL, NULL, &c, err) < 0)
		return -1;
	bool tcg = !strcmp(c.accel, "tcg");
	vm_info("libguestfs appliance: %s", c.reason);
	accel_choice_free(&c);
	if (!tcg)
		return 0;
	char **s = gfs_get_backend_settings(g);
	if (!s) {
		*err = xasprintf("libguestfs: cannot read its backend settings");
		return -1;
	}
	size_t n = 0;
	bool named = false;
	for (; s[n]; n++)
		named |= !strncmp(s[n], "force_tcg", 9) && (!s[n][9] || s[n][9] == '=');
	int r = 0;
	if (!named) {
		s = xrealloc(s, (n + 2) * sizeof *s);
		s[n] = xstrdup("force_tcg");
		s[n + 1] = NULL;
		if (gfs_set_backend_settings(g, s) < 0) {
			*err = xasprintf("libguestfs: cannot set force_tcg");
			r = -1;
		}
	}
	free_strings(s);
	return r;
}

/* What the appliance (its QEMU and its kernel) printed while it started:
 * libguestfs's own error is only "guestfs_launch failed", the reason is in
 * here. Bounded; with LIBGUESTFS_DEBUG=1 it still goes to stderr as well. */
#define LAUNCH_LOG_MAX (256 * 1024)
struct launch_log {
	char *buf;
	size_t len;
};

static void launch_log_event(guestfs_h *g, void *opaque, uint64_t event, int handle, int flags,
			     const char *buf, size_t len, const uint64_t *array, size_t array_len)
{
	struct launch_log *l = opaque;
	size_t take = len < LAUNCH_LOG_MAX - l->len ? len : LAUNCH_LOG_MAX - l->len;
	if (take) {
		l->buf = xrealloc(l->buf, l->len + take + 1);
		memcpy(l->buf + l->len, buf, take);
		l->len += take;
		l->buf[l->len] = '\0';
	}
	if (gfs_get_verbose(g))
		fwrite(buf, 1, len, stderr);
}

/* The first line of the log that says why: QEMU's own ("qemu-system-x86_64:
 * ..."), else one naming an error or failure. NULL when none does. */
static char *launch_reason(const struct launch_log *l)
{
	static const char *const words[] = {"error", "Error", "ERROR", "failed", "cannot",
					    "No such file", "Kernel panic", NULL};
	if (!l->buf)
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		for (const char *p = l->buf; *p;) {
			size_t n = strcspn(p, "\r\n");
			char *line = xasprintf("%.*s", (int)n, p);
			p += n;
			p += strspn(p, "\r\n");
			bool hit = false;
			if (pass == 0) {
				/* a first word, up to ": ", that names a QEMU binary */
				size_t w = strcspn(line, " :");
				hit = line[w] == ':' && line[w + 1] == ' ' &&
				      memmem(line, w, "qemu", 4) != NULL;
			} else {
				for (const char *const *w = words; *w && !hit; w++)
					hit = strstr(line, *w) != NULL;
			}
			if (hit)
				return line;
			free(line);
		}
	}
	return NULL;
}

struct offline *offline_open(const struct offline_drive *drives, size_t n, char **err)
{
	/* The direct backend runs QEMU itself; libvirt's would need a daemon. */
	if (!getenv("LIBGUESTFS_BACKEND") && !getenv("LIBGUESTFS_ATTACH_METHOD"))
		setenv("LIBGUESTFS_BACKEND", "direct", 1);
	if (gfs_load(err) < 0)
		return NULL;
	struct offline *o = xcalloc(1, sizeof *o);
	o->g = gfs_create();
	if (!o->g) {
		*err = xasprintf("libguestfs: cannot start: %s", strerror(errno));
		free(o);
		return NULL;
	}
	gfs_set_error_handler(o->g, NULL, NULL);
	o->n = n;
	o->ids = xcalloc(n + 1, sizeof *o->ids);
	for (size_t i = 0; i < n; i++) {
		o->ids[i] = xstrdup(drives[i].id);
		if (gfs_add_drive_opts(o->g, drives[i].path, GUESTFS_ADD_DRIVE_OPTS_READONLY,
					   drives[i].readonly ? 1 : 0, GUESTFS_ADD_DRIVE_OPTS_FORMAT,
					   drives[i].format, -1) < 0) {
			*err = gerr(o, drives[i].id);
			offline_abort(o);
			return NULL;
		}
	}
	struct launch_log log = {0};
	if (appliance_accel(o->g, err) < 0) {
		offline_abort(o);
		return NULL;
	}
	int ev = gfs_set_event_callback(o->g, launch_log_event, GUESTFS_EVENT_APPLIANCE, 0, &log);
	int launched = gfs_launch(o->g);
	if (ev >= 0)
		gfs_delete_event_callback(o->g, ev);
	if (launched < 0) {
		char *why = launch_reason(&log);
		if (why) {
			char *first = gerr(o, NULL);
			*err = xasprintf("libguestfs: cannot start its appliance: %s (%s)", why, first);
			free(first);
			free(why);
		} else {
			*err = gerr(o, "libguestfs: cannot start its appliance");
		}
		free(log.buf);
		offline_abort(o);
		return NULL;
	}
	free(log.buf);
	o->devices = gfs_list_devices(o->g);
	if (!o->devices) {
		*err = gerr(o, "libguestfs");
		offline_abort(o);
		return NULL;
	}
	return o;
}

void offline_abort(struct offline *o)
{
	if (!o)
		return;
	if (o->g)
		gfs_close(o->g);
	free_strings(o->devices);
	free_strings(o->ids);
	free(o);
}

int offline_finish(struct offline *o, char **err)
{
	int r = 0;
	if (gfs_umount_all(o->g) < 0 || gfs_shutdown(o->g) < 0) {
		*err = gerr(o, "libguestfs: finishing the writes");
		r = -1;
	}
	offline_abort(o);
	return r;
}

/* The drive id a device (/dev/sda, /dev/sda1) lives on, or NULL. */
static const char *drive_of(struct offline *o, const char *dev)
{
	char *whole = gfs_part_to_dev(o->g, dev);
	const char *d = whole ? whole : dev;
	const char *id = NULL;
	for (size_t i = 0; o->devices[i] && i < o->n; i++)
		if (!strcmp(o->devices[i], d))
			id = o->ids[i];
	free(whole);
	return id;
}

static int cmp_mp_len(const void *a, const void *b)
{
	/* pairs (mountpoint, device): shorter mountpoints first, so / before /usr */
	const char *const *x = a, *const *y = b;
	size_t lx = strlen(x[0]), ly = strlen(y[0]);
	return lx < ly ? -1 : lx > ly ? 1 : strcmp(x[0], y[0]);
}

static int mount_one(struct offline *o, const char *dev, const char *mp, bool rw)
{
	return rw ? gfs_mount(o->g, dev, mp) : gfs_mount_ro(o->g, dev, mp);
}

/* Filesystems worth mounting: not swap, not unknown. */
static void mountable_fs(struct offline *o, struct strv *devs, struct strv *types)
{
	char **fs = gfs_list_filesystems(o->g);
	for (char **p = fs; p && p[0] && p[1]; p += 2)
		if (strcmp(p[1], "swap") && strcmp(p[1], "unknown") && *p[1]) {
			strv_push(devs, p[0]);
			strv_push(types, p[1]);
		}
	free_strings(fs);
}

int offline_mount(struct offline *o, const char *fs, bool rw, char **err)
{
	const char *id = o->ids[0];
	if (fs) {
		if (mount_one(o, fs, "/", rw) < 0) {
			*err = gerr(o, fs);
			return -1;
		}
		return 0;
	}
	char **roots = gfs_inspect_os(o->g);
	if (roots && roots[0]) {
		char **mps = gfs_inspect_get_mountpoints(o->g, roots[0]);
		size_t n = 0;
		while (mps && mps[n])
			n++;
		if (mps)
			qsort(mps, n / 2, 2 * sizeof *mps, cmp_mp_len);
		/* The root filesystem is the inspection root itself (its fstab may
		 * name it in a way the appliance does not know); the rest, like
		 * guestfish -i, as far as they go: they may live on drives not
		 * given here. */
		int r = 0;
		if (mount_one(o, roots[0], "/", rw) < 0) {
			*err = gerr(o, roots[0]);
			r = -1;
		}
		for (size_t i = 0; r == 0 && i + 1 < n; i += 2)
			if (strcmp(mps[i], "/") && mount_one(o, mps[i + 1], mps[i], rw) < 0)
				vm_info("%s on %s: not mounted: %s", mps[i + 1], mps[i], gfs_last_error(o->g));
		free_strings(mps);
		free_strings(roots);
		return r;
	}
	free_strings(roots);
	struct strv devs = {0}, types = {0};
	mountable_fs(o, &devs, &types);
	int r = 0;
	if (devs.n == 1) {
		if (mount_one(o, devs.v[0], "/", rw) < 0) {
			*err = gerr(o, devs.v[0]);
			r = -1;
		}
	} else if (devs.n == 0) {
		*err = xasprintf("drive %s: no filesystem (make one with mkfs)", id);
		r = -1;
	} else {
		struct buf b = {0};
		for (size_t i = 0; i < devs.n; i++)
			buf_printf(&b, "%s%s %s", i ? ", " : "", devs.v[i], types.v[i]);
		*err = xasprintf("drive %s: several filesystems and no operating system (%s); pick one with --fs",
				 id, b.s);
		buf_free(&b);
		r = -1;
	}
	strv_free(&devs);
	strv_free(&types);
	return r;
}

static void put_str(struct json_object *obj, const char *key, char *val)
{
	/* takes val (libguestfs's malloc'd answer); "unknown" and NULL are null */
	json_object_object_add(obj, key,
			       val && *val && strcmp(val, "unknown") ? json_object_new_string(val) : NULL);
	free(val);
}

int offline_inspect(struct offline *o, struct json_object **out, char **err)
{
	struct json_object *res = json_object_new_object(), *oses = json_object_new_array(),
			   *fss = json_object_new_array();
	char **roots = gfs_inspect_os(o->g);
	if (!roots) {
		*err = gerr(o, "inspection");
		json_object_put(res);
		json_object_put(oses);
		json_object_put(fss);
		return -1;
	}
	for (char **r = roots; *r; r++) {
		struct json_object *os = json_object_new_object();
		json_object_object_add(os, "root", json_object_new_string(*r));
		const char *id = drive_of(o, *r);
		json_object_object_add(os, "drive", id ? json_object_new_string(id) : NULL);
		put_str(os, "type", gfs_inspect_get_type(o->g, *r));
		put_str(os, "distro", gfs_inspect_get_distro(o->g, *r));
		put_str(os, "product_name", gfs_inspect_get_product_name(o->g, *r));
		int maj = gfs_inspect_get_major_version(o->g, *r);
		int min = gfs_inspect_get_minor_version(o->g, *r);
		json_object_object_add(os, "major_version", json_object_new_int(maj < 0 ? 0 : maj));
		json_object_object_add(os, "minor_version", json_object_new_int(min < 0 ? 0 : min));
		put_str(os, "arch", gfs_inspect_get_arch(o->g, *r));
		put_str(os, "hostname", gfs_inspect_get_hostname(o->g, *r));
		put_str(os, "osinfo", gfs_inspect_get_osinfo(o->g, *r));
		put_str(os, "package_format", gfs_inspect_get_package_format(o->g, *r));
		put_str(os, "package_management", gfs_inspect_get_package_management(o->g, *r));
		struct json_object *mounts = json_object_new_array();
		char **mps = gfs_inspect_get_mountpoints(o->g, *r);
		size_t n = 0;
		while (mps && mps[n])
			n++;
		if (mps)
			qsort(mps, n / 2, 2 * sizeof *mps, cmp_mp_len);
		for (size_t i = 0; i + 1 < n; i += 2) {
			struct json_object *m = json_object_new_object();
			json_object_object_add(m, "mountpoint", json_object_new_string(mps[i]));
			json_object_object_add(m, "device", json_object_new_string(mps[i + 1]));
			json_object_array_add(mounts, m);
		}
		free_strings(mps);
		json_object_object_add(os, "mountpoints", mounts);
		json_object_array_add(oses, os);
	}
	free_strings(roots);
	char **fs = gfs_list_filesystems(o->g);
	for (char **p = fs; p && p[0] && p[1]; p += 2) {
		struct json_object *f = json_object_new_object();
		json_object_object_add(f, "device", json_object_new_string(p[0]));
		const char *id = drive_of(o, p[0]);
		json_object_object_add(f, "drive", id ? json_object_new_string(id) : NULL);
		json_object_object_add(f, "type", json_object_new_string(p[1]));
		bool real = strcmp(p[1], "unknown") && strcmp(p[1], "swap");
		put_str(f, "label", real ? gfs_vfs_label(o->g, p[0]) : NULL);
		put_str(f, "uuid", real ? gfs_vfs_uuid(o->g, p[0]) : NULL);
		int64_t size = gfs_blockdev_getsize64(o->g, p[0]);
		json_object_object_add(f, "size", size >= 0 ? json_object_new_int64(size) : NULL);
		json_object_array_add(fss, f);
	}
	free_strings(fs);
	json_object_object_add(res, "operating_systems", oses);
	json_object_object_add(res, "filesystems", fss);
	*out = res;
	return 0;
}

int offline_ls(struct offline *o, const char *path, struct strv *out, char **err)
{
	int d = gfs_is_dir(o->g, path);
	if (d < 0) {
		*err = gerr(o, path);
		return -1;
	}
	if (!d) {
		if (gfs_exists(o->g, path) <= 0) {
			*err = xasprintf("%s: no such file or folder in the guest", path);
			return -1;
		}
		strv_push(out, path);
		return 0;
	}
	char **names = gfs_ls(o->g, path);
	if (!names) {
		*err = gerr(o, path);
		return -1;
	}
	for (char **p = names; *p; p++)
		strv_push(out, *p);
	free_strings(names);
	return 0;
}

int offline_copy_in(struct offline *o, const char *host_path, const char *guest_dir, char **err)
{
	int d = gfs_is_dir(o->g, guest_dir);
	if (d <= 0) {
		*err = d < 0 ? gerr(o, guest_dir) : xasprintf("%s: not a folder in the guest", guest_dir);
		return -1;
	}
	if (gfs_copy_in(o->g, host_path, guest_dir) < 0) {
		*err = gerr(o, host_path);
		return -1;
	}
	return 0;
}

int offline_copy_out(struct offline *o, const char *guest_path, const char *host_dir, char **err)
{
	if (gfs_exists(o->g, guest_path) <= 0) {
		*err = xasprintf("%s: no such file or folder in the guest", guest_path);
		return -1;
	}
	if (gfs_copy_out(o->g, guest_path, host_dir) < 0) {
		*err = gerr(o, guest_path);
		return -1;
	}
	return 0;
}

int offline_mkfs(struct offline *o, const char *fstype, const char *label, bool force, char **err)
{
	const char *dev = o->devices[0], *id = o->ids[0];
	if (!force) {
		char *type = gfs_vfs_type(o->g, dev);
		bool has_fs = type && *type;
		char **parts = gfs_list_partitions(o->g);
		size_t nparts = 0;
		for (char **p = parts; p && *p; p++)
			nparts++;
		if (has_fs || nparts) {
			*err = has_fs ? xasprintf("drive %s already holds a filesystem (%s); --force to replace it", id, type)
				      : xasprintf("drive %s already has %zu partition%s; --force to replace them", id,
						  nparts, nparts == 1 ? "" : "s");
			free(type);
			free_strings(parts);
			return -1;
		}
		free(type);
		free_strings(parts);
	} else if (gfs_wipefs(o->g, dev) < 0) {
		/* filesystem and partition table signatures, so the kernel sees only the new one */
		*err = gerr(o, id);
		return -1;
	}
	int r = label ? gfs_mkfs_opts(o->g, fstype, dev, GUESTFS_MKFS_OPTS_LABEL, label, -1)
		      : gfs_mkfs_opts(o->g, fstype, dev, -1);
	if (r < 0) {
		char *what = xasprintf("drive %s", id);
		*err = gerr(o, what);
		free(what);
		return -1;
	}
	return 0;
}
