/* vm-disk: disks, removable media and snapshots of a VM, live and offline.
 *
 * Every change that should outlive the run goes into the config (under the
 * bundle lock, written atomically); when the VM runs, the same change is made
 * live through QMP first, so config and VM agree: if QEMU refuses, the config
 * is left as it was. Offline filesystem work goes through libguestfs
 * (lib/offline.c) and is refused while the VM runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "bundle.h"
#include "cloudinit.h"
#include "disk.h"
#include "iso.h"
#include "offline.h"
#include "qmp.h"
#include "runtime.h"
#include "tool.h"

static const char usage[] =
    "usage: vm-disk [options] BUNDLE list [--json]\n"
    "       vm-disk [options] BUNDLE create ID SIZE [--format qcow2|raw] [--interface IF]\n"
    "       vm-disk [options] BUNDLE create ID [SIZE] --backing FILE [--interface IF]\n"
    "       vm-disk [options] BUNDLE attach FILE|ID [--id ID] [--cdrom] [--readonly]\n"
    "                                      [--interface IF] [--copy]\n"
    "       vm-disk [options] BUNDLE detach ID [--force]\n"
    "       vm-disk [options] BUNDLE insert ID FILE [--copy] [--force]\n"
    "       vm-disk [options] BUNDLE eject ID [--force]\n"
    "       vm-disk [options] BUNDLE resize ID [+]SIZE [--shrink]\n"
    "       vm-disk [options] BUNDLE snapshot create|revert|delete NAME\n"
    "       vm-disk [options] BUNDLE snapshot list [--json]\n"
    "       vm-disk [options] BUNDLE inspect [--json]\n"
    "       vm-disk [options] BUNDLE ls ID PATH [--fs DEVICE]\n"
    "       vm-disk [options] BUNDLE copy-in ID HOST_PATH... GUEST_DIR [--fs DEVICE]\n"
    "       vm-disk [options] BUNDLE copy-out ID GUEST_PATH... HOST_DIR [--fs DEVICE]\n"
    "       vm-disk [options] BUNDLE mkfs ID FSTYPE [--label LABEL] [--force]\n"
    "       vm-disk [options] BUNDLE cloud-init USER_DATA [--meta-data FILE]\n"
    "                                      [--ssh-key FILE]... [--network-config FILE]\n"
    "                                      [--id ID] [--interface IF] [--force]\n"
    "       vm-disk [options] mkiso OUT.iso PATH... [--label LABEL]\n"
    "Disks and removable media of a VM, live through QMP when it runs; snapshots;\n"
    "offline filesystem work through libguestfs. SIZE: 10G, 512M, 1.5T (a bare\n"
    "number is GiB).\n"
    "  -j, --json            list, snapshot list, inspect: JSON on stdout\n"
    "  -f, --format FMT      create: qcow2 (default) or raw\n"
    "  -i, --interface IF    create, attach, cloud-init (a new drive): virtio, nvme,\n"
    "                        ide, scsi, usb, sd, floppy, pflash or none (default: the\n"
    "                        machine's)\n"
    "  -b, --backing FILE    create: a qcow2 overlay on FILE\n"
    "  -I, --id ID           attach: the new drive's id (default hdN or cdN);\n"
    "                        cloud-init: the seed's CD-ROM drive (default seed)\n"
    "  -c, --cdrom           attach: a CD-ROM drive (read-only, removable)\n"
    "  -r, --readonly        attach: the guest cannot write\n"
    "  -C, --copy            attach, insert: copy FILE into Data/ and use the copy\n"
    "  -F, --force           detach: even the boot disk of a running VM; eject,\n"
    "                        insert, cloud-init: even when the guest locked the tray;\n"
    "                        mkfs: even over an existing filesystem\n"
    "  -s, --shrink          resize: allow a smaller size (data past it is lost)\n"
    "  -l, --label LABEL     mkfs: filesystem label; mkiso: volume label (default CDROM)\n"
    "      --fs DEVICE       ls, copy-in, copy-out: mount this filesystem (as inspect\n"
    "                        names it, e.g. /dev/sda1) instead of finding one\n"
    "      --meta-data FILE  cloud-init: this meta-data (default: instance-id from the\n"
    "                        UUID, local-hostname from the name)\n"
    "      --ssh-key FILE    cloud-init: authorize the SSH public key(s) in FILE for the\n"
    "                        image's default user (repeatable)\n"
    "      --network-config FILE\n"
    "                        cloud-init: network configuration for the seed\n"
    "  -t, --timeout SECONDS how long to wait for the guest to release an unplugged\n"
    "                        device or for a snapshot job (default 120; exit status 3)\n"
    "  -q, --quiet           no messages but errors\n"
    "  -v, --verbose         say what is done\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n";

#define QMP_MS 30000

enum {
	O_JSON = 1 << 0,
	O_FORMAT = 1 << 1,
	O_IFACE = 1 << 2,
	O_BACKING = 1 << 3,
	O_ID = 1 << 4,
	O_CDROM = 1 << 5,
	O_RO = 1 << 6,
	O_COPY = 1 << 7,
	O_FORCE = 1 << 8,
	O_SHRINK = 1 << 9,
	O_LABEL = 1 << 10,
	O_FS = 1 << 11,
	O_META = 1 << 12,
	O_SSHKEY = 1 << 13,
	O_NETCFG = 1 << 14,
};

static struct {
	unsigned given; /* O_* seen on the command line */
	bool json, cdrom, readonly, copy, force, shrink;
	const char *format, *iface, *backing, *id, *label, *fs;
	const char *meta_data, *network_config;
	struct strv ssh_keys;
	int timeout_ms;
} opt = {.timeout_ms = 120000};

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
	interrupted = sig;
}

/* Everything a subcommand works with. */
struct ctx {
	struct bundle b;
	struct vm_config eff; /* b.cfg with defaults: what QEMU was (or will be) given */
	const char *name;     /* the bundle, for messages */
	enum vm_state state;
	struct qmp *q;			 /* when the VM runs */
	struct json_object *blocks;	 /* query-block, fetched once */
	char *tmp_file;			 /* a half-made file to remove on failure */
};

static int failx(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failx(struct ctx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = NULL;
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	vm_warnx("%s: %s", x->name, m ? m : fmt);
	free(m);
	return EXIT_FAIL;
}

/* failx with a malloc'd message that it frees. */
static int fail_free(struct ctx *x, const char *prefix, char *msg)
{
	if (prefix)
		failx(x, "%s: %s", prefix, msg ? msg : "failed");
	else
		failx(x, "%s", msg ? msg : "failed");
	free(msg);
	return EXIT_FAIL;
}

static bool live(const struct ctx *x)
{
	return x->q != NULL;
}

/* ---- the config ---------------------------------------------------------- */

static const struct vm_drive *eff_drive(struct ctx *x, const char *id)
{
	return config_drive(&x->eff, id);
}

static int no_drive(struct ctx *x, const char *id)
{
	struct buf b = {0};
	for (size_t i = 0; i < x->eff.ndrives; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", x->eff.drives[i].id);
	failx(x, "drive %s: no such drive (%s%s)", id, b.s ? "drives: " : "the VM has no drives",
	      b.s ? b.s : "");
	buf_free(&b);
	return EXIT_FAIL;
}

/* The drive, or a message and NULL. */
static const struct vm_drive *need_drive(struct ctx *x, const char *id)
{
	const struct vm_drive *d = eff_drive(x, id);
	if (!d)
		no_drive(x, id);
	return d;
}

static void refresh_eff(struct ctx *x)
{
	config_free(&x->eff);
	bundle_effective_config(&x->b, &x->eff);
}

/* The first problem of the config with its defaults, or NULL. */
static char *effective_problem(struct ctx *x)
{
	struct vm_config eff;
	bundle_effective_config(&x->b, &eff);
	char *problem = config_first_problem(&eff);
	config_free(&eff);
	return problem;
}

/* Check and write the config; on failure nothing is written. */
static int save(struct ctx *x)
{
	char *problem = effective_problem(x);
	if (problem) {
		failx(x, "%s: %s", x->b.conf_path, problem);
		free(problem);
		return EXIT_FAIL;
	}
	char *err = NULL;
	if (bundle_save(&x->b, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		return EXIT_FAIL;
	}
	refresh_eff(x);
	return 0;
}

/* Set drive.ID.KEY in b.cfg (value NULL: unset). */
static int set_key(struct ctx *x, const char *id, const char *key, const char *value)
{
	char *k = xasprintf("drive.%s.%s", id, key), *err = NULL;
	int r = value ? config_set(&x->b.cfg, k, value, &err) : config_unset(&x->b.cfg, k, &err);
	free(k);
	if (r < 0) {
		failx(x, "%s: %s", x->b.conf_path, err);
		free(err);
		return -1;
	}
	return 0;
}

static char *drive_path(struct ctx *x, const struct vm_drive *d)
{
	char *err = NULL, *p = bundle_resolve(&x->b, d->image, &err);
	if (!p) {
		failx(x, "drive %s: %s", d->id, err);
		free(err);
	}
	return p;
}

/* The image's format: as the config says, else from its first bytes. */
static const char *drive_format(struct ctx *x, const struct vm_drive *d, const char *path)
{
	if (d->format)
		return d->format;
	char *err = NULL;
	const char *f = disk_probe(path, &err);
	if (!f) {
		failx(x, "drive %s: %s", d->id, err);
		free(err);
	}
	return f;
}

static bool is_cdrom(const struct vm_drive *d)
{
	return d->media && !strcmp(d->media, "cdrom");
}

/* Does argv.c give this drive a -device with id=ID (so QMP can name it by
 * its qdev id)? The others are -drive if=floppy/sd/pflash with no id. */
static bool has_qdev(const struct ctx *x, const struct vm_drive *d)
{
	const char *i = d->interface;
	if (!strcmp(i, "scsi"))
		return config_has_pci(&x->eff);
	return str_in(i, (const char *const[]){"virtio", "nvme", "ide", "usb", NULL});
}

/* The boot disk: the disk first in boot order (as argv.c numbers them). */
static const struct vm_drive *boot_disk(const struct ctx *x)
{
	const struct vm_drive *best = NULL;
	long long best_idx = LLONG_MAX, next = 1;
	for (size_t i = 0; i < x->eff.ndrives; i++) {
		const struct vm_drive *d = &x->eff.drives[i];
		long long idx = d->bootindex ? d->bootindex : next++;
		if (!is_cdrom(d) && idx < best_idx) {
			best = d;
			best_idx = idx;
		}
	}
	return best;
}

/* A file the user named, as the config should hold it: a bare name when it
 * lies in the bundle's Data/, else its absolute path. */
static char *config_name_for(struct ctx *x, const char *file)
{
	char *real = realpath(file, NULL);
	if (!real)
		return NULL;
	char *rb = realpath(x->b.path, NULL);
	char *data = rb ? path_join(rb, "Data") : NULL;
	char *res = NULL;
	size_t n = data ? strlen(data) : 0;
	if (data && !strncmp(real, data, n) && real[n] == '/' && real[n + 1])
		res = xstrdup(real + n + 1);
	free(rb);
	free(data);
	if (res) {
		free(real);
		return res;
	}
	config_allow_path(&x->b.cfg, real); /* named by the user: allowed */
	return real;
}

/* ---- temporary files ------------------------------------------------------ */

static char *data_dir(struct ctx *x)
{
	char *d = path_join(x->b.path, "Data");
	if (mkdir(d, 0755) < 0 && errno != EEXIST) {
		failx(x, "%s: %s", d, strerror(errno));
		free(d);
		return NULL;
	}
	return d;
}

/* A hidden temporary name in Data/ for a new image named base. */
static char *tmp_in_data(struct ctx *x, const char *base)
{
	char *d = data_dir(x);
	if (!d)
		return NULL;
	char *t = xasprintf("%s/.%s.tmp.%ld", d, base, (long)getpid());
	/* A vm-disk killed (SIGKILL) before its rename left .BASE.tmp.PID behind,
	 * where it would travel with the bundle. Every maker of these holds the
	 * bundle's lock, as we do: any such file is stale. */
	char *prefix = xasprintf(".%s.tmp.", base);
	size_t plen = strlen(prefix);
	DIR *dd = opendir(d);
	struct dirent *de;
	while (dd && (de = readdir(dd)))
		if (!strncmp(de->d_name, prefix, plen) && de->d_name[plen] &&
		    !de->d_name[plen + strspn(de->d_name + plen, "0123456789")])
			unlinkat(dirfd(dd), de->d_name, 0);
	if (dd)
		closedir(dd);
	free(prefix);
	free(d);
	free(x->tmp_file);
	x->tmp_file = xstrdup(t);
	return t;
}

static void drop_tmp(struct ctx *x)
{
	if (x->tmp_file) {
		unlink(x->tmp_file);
		free(x->tmp_file);
		x->tmp_file = NULL;
	}
}

/* Move the temporary image to its name without replacing anything. */
static int place_tmp(struct ctx *x, const char *tmp, const char *final)
{
	if (interrupted) {
		failx(x, "interrupted");
		return -1;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		failx(x, "%s: %s", final, strerror(errno));
		return -1;
	}
	free(x->tmp_file);
	x->tmp_file = NULL;
	return 0;
}

/* Copy FILE into Data/ (qemu-img convert keeps it sparse); *name gets the
 * bare name for the config, *path the full path. */
static int import_copy(struct ctx *x, const char *file, const char *format, char **name, char **path)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	if (!*base || !bundle_name_is_safe(base)) {
		failx(x, "%s: not a file name", file);
		return -1;
	}
	char *d = data_dir(x);
	if (!d)
		return -1;
	char *final = path_join(d, base);
	free(d);
	if (file_exists(final)) {
		failx(x, "%s: already exists in Data/ (rename the file to import it)", final);
		free(final);
		return -1;
	}
	char *tmp = tmp_in_data(x, base), *err = NULL;
	vm_info("%s: copying %s into Data/", x->name, file);
	if (disk_convert(file, format, tmp, format, &err) < 0) {
		failx(x, "%s: %s", file, err);
		free(err);
		drop_tmp(x);
		free(tmp);
		free(final);
		return -1;
	}
	int r = place_tmp(x, tmp, final);
	free(tmp);
	if (r < 0) {
		drop_tmp(x);
		free(final);
		return -1;
	}
	*name = xstrdup(base);
	*path = final;
	return 0;
}

/* ---- QMP ------------------------------------------------------------------- */

/* The QMP error without its class ("GenericError: "). */
static const char *qmp_desc(const char *e)
{
	const char *c = strstr(e, ": ");
	return c && c - e < 40 && !memchr(e, ' ', (size_t)(c - e)) ? c + 2 : e;
}

static int qmp_run(struct ctx *x, const char *cmd, struct json_object *args, struct json_object **ret,
		   char **err)
{
	int r = qmp_execute(x->q, cmd, args, QMP_MS, ret, err);
	json_object_put(args);
	return r;
}

/* QEMU may run as another user (vm-run's sandbox) that cannot open the
 * file: vm-disk opens it and hands QEMU the descriptors as an fd set, both
 * access modes for a writable image. Returns "/dev/fdset/N" and *set, or
 * NULL after failx. */
static char *live_fdset(struct ctx *x, const char *path, bool ro, int *set)
{
	char *err = NULL;
	*set = -1;
	for (int pass = 0; pass < (ro ? 1 : 2); pass++) {
		int fd = open(path, (pass == 0 && !ro ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			failx(x, "%s: %s", path, strerror(errno));
			goto fail;
		}
		int id = qmp_add_fd(x->q, fd, *set, path, QMP_MS, &err);
		close(fd);
		if (id < 0) {
			fail_free(x, "add-fd", err);
			goto fail;
		}
		*set = id;
	}
	return xasprintf("/dev/fdset/%d", *set);
fail:
	if (*set >= 0 && qmp_remove_fdset(x->q, *set, QMP_MS, &err) < 0)
		free(err);
	*set = -1;
	return NULL;
}

/* A set that no drive uses any more (its medium was changed or ejected):
 * QEMU closes the descriptors it kept. */
static void live_fdset_release(struct ctx *x, int set)
{
	char *err = NULL;
	if (set >= 0 && qmp_remove_fdset(x->q, set, QMP_MS, &err) < 0)
		free(err);
}

static struct json_object *jobj(void)
{
	return json_object_new_object();
}
static void jadd(struct json_object *o, const char *k, struct json_object *v)
{
	json_object_object_add(o, k, v);
}
static void jstr(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}
static const char *jget_str(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}
static struct json_object *jget(struct json_object *o, const char *k)
{
	struct json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}
static bool jget_bool(struct json_object *o, const char *k)
{
	struct json_object *v = jget(o, k);
	return v && json_object_get_boolean(v);
}

/* QEMU names a file it was handed as /dev/fdset/N (vm-run's sandbox,
 * live_fdset); put back the path, kept as the set's opaque name, and note
 * the set in "utmkit-fdset" so a change or eject can drop it. */
static void fdset_names(struct ctx *x)
{
	struct json_object *sets = NULL;
	char *err = NULL;
	if (qmp_execute(x->q, "query-fdsets", NULL, QMP_MS, &sets, &err) < 0) {
		free(err);
		return;
	}
	size_t n = json_object_array_length(x->blocks);
	for (size_t i = 0; i < n; i++) {
		struct json_object *ins = jget(json_object_array_get_idx(x->blocks, i), "inserted");
		struct json_object *img = jget(ins, "image");
		const char *f = jget_str(ins, "file");
		if (!f || !has_prefix(f, "/dev/fdset/"))
			continue;
		int id = atoi(f + strlen("/dev/fdset/"));
		const char *name = NULL;
		for (size_t j = 0; !name && j < json_object_array_length(sets); j++) {
			struct json_object *s = json_object_array_get_idx(sets, j), *fds = jget(s, "fds");
			if (json_object_get_int(jget(s, "fdset-id")) != id || !fds)
				continue;
			for (size_t k = 0; !name && k < json_object_array_length(fds); k++)
				name = jget_str(json_object_array_get_idx(fds, k), "opaque");
		}
		jadd(ins, "utmkit-fdset", json_object_new_int(id));
		if (!name)
			continue;
		jstr(ins, "file", name);
		if (img && jget_str(img, "filename") && has_prefix(jget_str(img, "filename"), "/dev/fdset/"))
			jstr(img, "filename", name);
	}
	json_object_put(sets);
}

/* The fd set a running drive's medium came in, or -1. */
static int live_fdset_of(struct ctx *x, const char *id);

static int fetch_blocks(struct ctx *x)
{
	json_object_put(x->blocks);
	x->blocks = NULL;
	char *err = NULL;
	if (qmp_execute(x->q, "query-block", NULL, QMP_MS, &x->blocks, &err) < 0)
		return fail_free(x, "query-block", err);
	fdset_names(x);
	return 0;
}

/* The running VM's BlockInfo for drive id (borrowed), or NULL. */
static struct json_object *live_block(struct ctx *x, const char *id)
{
	if (!x->blocks && fetch_blocks(x))
		return NULL;
	char *bb = xasprintf("drive-%s", id), *qpath = xasprintf("/machine/peripheral/%s/", id);
	struct json_object *hit = NULL;
	size_t n = json_object_array_length(x->blocks);
	for (size_t i = 0; i < n && !hit; i++) {
		struct json_object *e = json_object_array_get_idx(x->blocks, i);
		const char *dev = jget_str(e, "device"), *qdev = jget_str(e, "qdev");
		if ((dev && !strcmp(dev, bb)) || (qdev && (!strcmp(qdev, id) || has_prefix(qdev, qpath))))
			hit = e;
	}
	free(bb);
	free(qpath);
	return hit;
}

static int live_fdset_of(struct ctx *x, const char *id)
{
	struct json_object *blk = live_block(x, id), *v = jget(jget(blk, "inserted"), "utmkit-fdset");
	return v ? json_object_get_int(v) : -1;
}

/* Name the drive in eject / blockdev-change-medium: by its qdev id where
 * it has a device (QEMU 2.8+ "id"), else by its block backend ("device"). */
static void add_target(struct ctx *x, struct json_object *args, const struct vm_drive *d)
{
	struct json_object *blk = live_block(x, d->id);
	const char *dev = blk ? jget_str(blk, "device") : NULL;
	if (has_qdev(x, d) || !dev || !*dev)
		jstr(args, "id", d->id);
	else
		jstr(args, "device", dev);
}

/* ---- list ------------------------------------------------------------------ */

struct row {
	const struct vm_drive *d;
	char *path, *error;
	struct disk_info info;
	bool have_info;
	struct json_object *blk; /* borrowed */
};

static void fill_from_live(struct row *r)
{
	struct json_object *ins = jget(r->blk, "inserted"), *img = jget(ins, "image");
	char *err = NULL;
	if (img && disk_info_from_json(img, &r->info, &err) == 0)
		r->have_info = true;
	free(err);
}

static struct json_object *row_json(struct ctx *x, struct row *r)
{
	const struct vm_drive *d = r->d;
	struct json_object *o = jobj();
	jstr(o, "id", d->id);
	jstr(o, "interface", d->interface);
	jstr(o, "media", d->media);
	jstr(o, "image", d->image);
	jstr(o, "path", r->path);
	jstr(o, "format", r->have_info ? r->info.format : d->format);
	jadd(o, "virtual_size", r->have_info ? json_object_new_int64((int64_t)r->info.virtual_size) : NULL);
	jadd(o, "actual_size", r->have_info && r->info.has_actual_size
				   ? json_object_new_int64((int64_t)r->info.actual_size)
				   : NULL);
	jstr(o, "backing", r->have_info ? r->info.backing : NULL);
	jadd(o, "snapshots", json_object_new_int((int)(r->have_info ? r->info.nsnaps : 0)));
	jadd(o, "readonly", json_object_new_boolean(d->readonly || is_cdrom(d)));
	jadd(o, "removable", json_object_new_boolean(d->removable || is_cdrom(d)));
	jadd(o, "boot", json_object_new_boolean(boot_disk(x) == d));
	jstr(o, "error", r->error);
	if (live(x)) {
		struct json_object *rt = NULL;
		if (r->blk) {
			struct json_object *ins = jget(r->blk, "inserted");
			rt = jobj();
			jstr(rt, "inserted", ins ? jget_str(ins, "file") : NULL);
			jstr(rt, "node_name", ins ? jget_str(ins, "node-name") : NULL);
			jadd(rt, "locked", json_object_new_boolean(jget_bool(r->blk, "locked")));
			jadd(rt, "tray_open", json_object_new_boolean(jget_bool(r->blk, "tray_open")));
		}
		jadd(o, "running", rt);
	}
	return o;
}

static int cmd_list(struct ctx *x, int argc, char **argv)
{
	size_t n = x->eff.ndrives;
	struct row *rows = xcalloc(n ? n : 1, sizeof *rows);
	int status = 0;
	for (size_t i = 0; i < n; i++) {
		struct row *r = &rows[i];
		r->d = &x->eff.drives[i];
		if (r->d->image) {
			char *err = NULL;
			r->path = bundle_resolve(&x->b, r->d->image, &err);
			if (!r->path)
				r->error = err;
		}
		if (live(x))
			r->blk = live_block(x, r->d->id);
		if (r->blk) {
			fill_from_live(r);
		} else if (r->path) {
			/* -U: a running VM that does not know this drive may still hold the file */
			char *err = NULL;
			const char *fmt = r->d->format ? r->d->format : disk_probe(r->path, &err);
			if (fmt && access(r->path, R_OK) < 0) {
				err = xasprintf("%s: %s", r->path, strerror(errno));
				fmt = NULL;
			}
			if (fmt && disk_info(r->path, fmt, live(x), &r->info, &err) == 0)
				r->have_info = true;
			else
				r->error = err;
		}
		if (r->error) {
			failx(x, "drive %s: %s", r->d->id, r->error);
			status = EXIT_FAIL;
		}
	}
	if (opt.json) {
		struct json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, row_json(x, &rows[i]));
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_NOSLASHESCAPE |
							     (isatty(1) ? JSON_C_TO_STRING_PRETTY
									: JSON_C_TO_STRING_PLAIN)));
		json_object_put(arr);
	} else {
		/* a table: column widths from the content */
		enum { NCOL = 8 };
		const char *head[NCOL] = {"ID", "INTERFACE", "MEDIA", "FORMAT", "SIZE", "ALLOC", "FLAGS", "IMAGE"};
		char ***cells = xcalloc(n + 1, sizeof *cells);
		size_t w[NCOL] = {0};
		for (size_t i = 0; i <= n; i++) {
			cells[i] = xcalloc(NCOL, sizeof **cells);
			if (i == 0) {
				for (int c = 0; c < NCOL; c++)
					cells[0][c] = xstrdup(head[c]);
			} else {
				struct row *r = &rows[i - 1];
				const struct vm_drive *d = r->d;
				char **c = cells[i];
				c[0] = xstrdup(d->id);
				c[1] = xstrdup(d->interface);
				c[2] = xstrdup(d->media);
				c[3] = xstrdup(r->have_info ? r->info.format : d->format ? d->format : "-");
				c[4] = r->have_info ? disk_human_size(r->info.virtual_size) : xstrdup("-");
				c[5] = r->have_info && r->info.has_actual_size ? disk_human_size(r->info.actual_size)
									    : xstrdup("-");
				struct buf fl = {0};
				if (boot_disk(x) == d)
					buf_puts(&fl, ",boot");
				if (d->readonly || is_cdrom(d))
					buf_puts(&fl, ",ro");
				if (d->removable || is_cdrom(d))
					buf_puts(&fl, ",removable");
				if (r->blk && jget_bool(r->blk, "locked"))
					buf_puts(&fl, ",locked");
				if (r->blk && jget_bool(r->blk, "tray_open"))
					buf_puts(&fl, ",open");
				if (live(x) && !r->blk)
					buf_puts(&fl, ",not-in-vm");
				c[6] = xstrdup(fl.s ? fl.s + 1 : "-");
				buf_free(&fl);
				struct json_object *ins = r->blk ? jget(r->blk, "inserted") : NULL;
				const char *now = ins ? jget_str(ins, "file") : NULL;
				if (!d->image)
					c[7] = xstrdup(now ? now : "(empty)");
				else if (r->blk && !ins)
					c[7] = xasprintf("%s (running: empty)", d->image);
				else
					c[7] = xstrdup(d->image);
			}
			for (int c = 0; c < NCOL; c++)
				if (strlen(cells[i][c]) > w[c])
					w[c] = strlen(cells[i][c]);
		}
		for (size_t i = 0; i <= n; i++) {
			for (int c = 0; c < NCOL; c++) {
				bool right = c == 4 || c == 5;
				if (c == NCOL - 1)
					printf("%s\n", cells[i][c]);
				else
					printf(right ? "%*s  " : "%-*s  ", (int)w[c], cells[i][c]);
				free(cells[i][c]);
			}
			free(cells[i]);
		}
		free(cells);
	}
	for (size_t i = 0; i < n; i++) {
		free(rows[i].path);
		free(rows[i].error);
		disk_info_free(&rows[i].info);
	}
	free(rows);
	return status;
}

/* ---- hot-plug -------------------------------------------------------------- */

/* A PCI bridge or root port with nothing behind it, to hot-plug into:
 * PCIe root buses (q35, virt) take no hot-plugged devices themselves. */
static const char *free_pci_port(struct json_object *devices)
{
	size_t n = devices ? json_object_array_length(devices) : 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devices, i);
		struct json_object *br = jget(d, "pci_bridge");
		if (!br)
			continue;
		struct json_object *sub = jget(br, "devices");
		const char *qid = jget_str(d, "qdev_id");
		if (qid && *qid && (!sub || json_object_array_length(sub) == 0))
			return qid;
		const char *deeper = free_pci_port(sub);
		if (deeper)
			return deeper;
	}
	return NULL;
}

static bool pcie_machine(const struct ctx *x)
{
	const char *m = x->eff.machine;
	return has_prefix(m, "q35") || has_prefix(m, "pc-q35") || has_prefix(m, "virt");
}

/* Plug drive d (effective config; path/format NULL: an empty CD-ROM) into
 * the running VM: blockdev-add, then device_add. */
static int live_plug(struct ctx *x, const struct vm_drive *d, const char *path, const char *format)
{
	const char *i = d->interface;
	bool cd = is_cdrom(d), ro = d->readonly || cd;
	char *err = NULL;
	struct json_object *dev = jobj();
	jstr(dev, "id", d->id);
	if (!strcmp(i, "virtio") || !strcmp(i, "nvme")) {
		jstr(dev, "driver", !strcmp(i, "virtio") ? "virtio-blk-pci" : "nvme");
		if (!strcmp(i, "nvme")) {
			char *serial = xasprintf("%.20s", d->id);
			jstr(dev, "serial", serial);
			free(serial);
		}
		struct json_object *pci = NULL;
		if (qmp_execute(x->q, "query-pci", NULL, QMP_MS, &pci, &err) < 0) {
			json_object_put(dev);
			return fail_free(x, "query-pci", err);
		}
		const char *port = NULL;
		for (size_t b = 0; !port && b < json_object_array_length(pci); b++)
			port = free_pci_port(jget(json_object_array_get_idx(pci, b), "devices"));
		if (port)
			jstr(dev, "bus", port);
		json_object_put(pci);
		if (!port && pcie_machine(x)) {
			json_object_put(dev);
			return failx(x, "drive %s: no free PCIe slot to hot-plug into (a %s machine needs a "
					"pcie-root-port for each; add some with extra_args, or attach while stopped)",
				     d->id, x->eff.machine);
		}
	} else if (!strcmp(i, "scsi") && config_has_pci(&x->eff)) {
		jstr(dev, "driver", cd ? "scsi-cd" : "scsi-hd");
		jstr(dev, "bus", "scsi0.0");
	} else if (!strcmp(i, "usb")) {
		if (!path) {
			json_object_put(dev);
			return failx(x, "drive %s: an empty USB drive cannot be hot-plugged", d->id);
		}
		jstr(dev, "driver", "usb-storage");
		jstr(dev, "bus", "usb.0");
		jadd(dev, "removable", json_object_new_boolean(d->removable || cd));
	} else {
		json_object_put(dev);
		return failx(x, "drive %s: %s drives cannot be hot-plugged; use --interface virtio, scsi or usb, "
				"or attach while the VM is stopped",
			     d->id, i);
	}
	char *node = xasprintf("drive-%s", d->id);
	if (strlen(node) > 31) {
		free(node);
		json_object_put(dev);
		return failx(x, "drive %s: the id is too long to hot-plug (at most 25 characters)", d->id);
	}
	if (path) {
		struct json_object *a = jobj(), *file = jobj();
		jstr(a, "driver", format);
		jstr(a, "node-name", node);
		jadd(a, "read-only", json_object_new_boolean(ro));
		if (!ro) {
			jstr(a, "discard", "unmap");
			jstr(a, "detect-zeroes", "unmap");
		}
		int set;
		char *fdpath = live_fdset(x, path, ro, &set);
		if (!fdpath) {
			json_object_put(a);
			json_object_put(file);
			free(node);
			json_object_put(dev);
			return EXIT_FAIL;
		}
		jstr(file, "driver", "file");
		jstr(file, "filename", fdpath);
		free(fdpath);
		jadd(a, "file", file);
		vm_info("%s: drive %s: blockdev-add %s", x->name, d->id, path);
		int r = qmp_run(x, "blockdev-add", a, NULL, &err);
		if (r < 0) {
			live_fdset_release(x, set);
			failx(x, "drive %s: %s", d->id, qmp_desc(err));
			free(err);
			free(node);
			json_object_put(dev);
			return EXIT_FAIL;
		}
		jstr(dev, "drive", node);
	}
	vm_info("%s: drive %s: device_add %s", x->name, d->id, jget_str(dev, "driver"));
	if (qmp_run(x, "device_add", dev, NULL, &err) < 0) {
		const char *desc = qmp_desc(err);
		if (strstr(desc, "does not support hotplugging"))
			failx(x, "drive %s: %s (no free hot-plug slot; attach while the VM is stopped)", d->id, desc);
		else if (strstr(desc, "not found") && strstr(desc, "Bus"))
			failx(x, "drive %s: %s (the running VM has no such controller; attach while it is stopped)",
			      d->id, desc);
		else
			failx(x, "drive %s: %s", d->id, desc);
		free(err);
		if (path) {
			struct json_object *a = jobj();
			jstr(a, "node-name", node);
			if (qmp_run(x, "blockdev-del", a, NULL, &err) < 0)
				free(err);
		}
		free(node);
		return EXIT_FAIL;
	}
	free(node);
	json_object_put(x->blocks);
	x->blocks = NULL;
	return 0;
}

/* device_del and wait for DEVICE_DELETED. */
static int live_unplug(struct ctx *x, const struct vm_drive *d)
{
	char *err = NULL;
	int old = live_fdset_of(x, d->id);
	struct json_object *a = jobj();
	jstr(a, "id", d->id);
	vm_info("%s: drive %s: device_del", x->name, d->id);
	if (qmp_run(x, "device_del", a, NULL, &err) < 0) {
		const char *desc = qmp_desc(err);
		if (strstr(desc, "not found"))
			failx(x, "drive %s: not in the running VM (%s)", d->id, desc);
		else
			failx(x, "drive %s: %s", d->id, desc);
		free(err);
		return EXIT_FAIL;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long long spent = (t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000;
		int left = opt.timeout_ms < 0 ? -1 : (int)(opt.timeout_ms - spent);
		if (opt.timeout_ms >= 0 && left <= 0) {
			failx(x, "drive %s: the guest did not release the device within %d s (it may still; "
				 "the config is unchanged)",
			      d->id, opt.timeout_ms / 1000);
			return EXIT_TIMEOUT;
		}
		struct json_object *ev = NULL;
		int r = qmp_wait_event(x->q, "DEVICE_DELETED", left, &ev, &err);
		if (r < 0) {
			/* QEMU gone (killed) while we waited: "drive ID:" as every message */
			failx(x, "drive %s: %s; the config is unchanged", d->id, err);
			free(err);
			return EXIT_FAIL;
		}
		if (r == 0)
			continue;
		const char *devid = jget_str(jget(ev, "data"), "device");
		bool done = devid && !strcmp(devid, d->id);
		json_object_put(ev);
		if (done)
			break;
	}
	/* a drive that was hot-plugged left its blockdev-add node behind */
	char *node = xasprintf("drive-%s", d->id);
	a = jobj();
	jstr(a, "node-name", node);
	if (qmp_run(x, "blockdev-del", a, NULL, &err) < 0)
		free(err);
	free(node);
	live_fdset_release(x, old);
	return 0;
}

/* ---- create, attach, detach ------------------------------------------------ */

/* The drive's config keys, set in b.cfg; on failure the drive is removed again. */
static int add_drive_config(struct ctx *x, const char *id, const char *image, const char *format,
			    const char *media, bool readonly)
{
	config_add_drive(&x->b.cfg, id);
	int r = 0;
	if (image)
		r |= set_key(x, id, "image", image);
	if (format)
		r |= set_key(x, id, "format", format);
	if (media)
		r |= set_key(x, id, "media", media);
	if (opt.iface)
		r |= set_key(x, id, "interface", opt.iface);
	if (readonly)
		r |= set_key(x, id, "readonly", "true");
	if (media && !strcmp(media, "cdrom"))
		r |= set_key(x, id, "removable", "true");
	if (r) {
		char *k = xasprintf("drive.%s", id), *err = NULL;
		config_unset(&x->b.cfg, k, &err);
		free(err);
		free(k);
		return -1;
	}
	/* check the drive as it would be, before anything is made */
	char *problem = effective_problem(x);
	if (problem) {
		failx(x, "%s: %s", x->b.conf_path, problem);
		free(problem);
		char *k = xasprintf("drive.%s", id), *err = NULL;
		config_unset(&x->b.cfg, k, &err);
		free(err);
		free(k);
		return -1;
	}
	refresh_eff(x);
	return 0;
}

static int new_id_ok(struct ctx *x, const char *id)
{
	if (!config_id_valid(id))
		return failx(x, "drive %s: not a valid id (letters, digits, - and _)", id);
	if (config_drive(&x->b.cfg, id))
		return failx(x, "drive %s: already exists", id);
	return 0;
}

/* SIZE as the user wrote it; bare numbers are GiB, like vm-create --disk. */
static int size_arg(struct ctx *x, const char *s, uint64_t *bytes)
{
	if (parse_size(s, 1ULL << 30, bytes) < 0 || *bytes == 0)
		return failx(x, "'%s': not a size (e.g. 10G, 512M)", s);
	return 0;
}

static int cmd_create(struct ctx *x, int argc, char **argv)
{
	const char *id = argv[0];
	const char *format = opt.format ? opt.format : "qcow2";
	if (strcmp(format, "qcow2") && strcmp(format, "raw"))
		vm_errx(EXIT_USAGE, "--format %s: qcow2 or raw", format);
	if (argc < 2 && !opt.backing)
		usage_exit(usage, EXIT_USAGE);
	if (opt.backing && strcmp(format, "qcow2"))
		vm_errx(EXIT_USAGE, "--backing needs --format qcow2");
	if (new_id_ok(x, id))
		return EXIT_FAIL;
	uint64_t size = 0;
	if (argc >= 2 && size_arg(x, argv[1], &size))
		return EXIT_FAIL;
	char *backing = NULL;
	const char *bformat = NULL;
	if (opt.backing) {
		char *err = NULL;
		bformat = disk_probe(opt.backing, &err);
		if (!bformat)
			return fail_free(x, NULL, err);
		/* in Data/: by bare name, which qemu resolves beside the overlay */
		backing = config_name_for(x, opt.backing);
		if (!backing)
			return failx(x, "%s: %s", opt.backing, strerror(errno));
	}
	char *base = xasprintf("%s.%s", id, !strcmp(format, "raw") ? "img" : "qcow2");
	char *dir = data_dir(x);
	char *final = dir ? path_join(dir, base) : NULL;
	free(dir);
	int status = EXIT_FAIL;
	char *tmp = NULL, *err = NULL;
	if (!final)
		goto out;
	if (file_exists(final)) {
		failx(x, "drive %s: %s already exists", id, final);
		goto out;
	}
	if (add_drive_config(x, id, base, format, "disk", false) < 0)
		goto out;
	tmp = tmp_in_data(x, base);
	vm_info("%s: drive %s: qemu-img create %s", x->name, id, final);
	if (disk_create(tmp, format, size, backing, bformat, &err) < 0) {
		failx(x, "drive %s: %s", id, err);
		goto out;
	}
	if (place_tmp(x, tmp, final) < 0)
		goto out;
	if (live(x) && (status = live_plug(x, eff_drive(x, id), final, format)) != 0) {
		unlink(final);
		goto out;
	}
	status = save(x);
	if (status && !live(x))
		unlink(final);
out:
	drop_tmp(x);
	free(err);
	free(tmp);
	free(final);
	free(base);
	free(backing);
	return status;
}

static int cmd_attach(struct ctx *x, int argc, char **argv)
{
	const char *arg = argv[0];
	struct stat st;
	bool have_file = stat(arg, &st) == 0;
	if (!have_file && !(opt.cdrom && config_id_valid(arg) && !strchr(arg, '/')))
		return failx(x, "%s: %s", arg, strerror(errno));
	if (!have_file && (opt.copy || opt.id))
		return failx(x, "%s: %s", arg, strerror(ENOENT));
	char *id = opt.id ? xstrdup(opt.id)
		   : have_file ? config_new_id(&x->b.cfg, SEC_DRIVE, opt.cdrom ? "cd" : "hd")
			       : xstrdup(arg);
	int status = EXIT_FAIL;
	char *name = NULL, *path = NULL, *err = NULL;
	const char *format = NULL;
	if (new_id_ok(x, id))
		goto out;
	if (have_file) {
		format = disk_probe(arg, &err);
		if (!format) {
			fail_free(x, NULL, err);
			goto out;
		}
		if (opt.copy) {
			if (import_copy(x, arg, format, &name, &path) < 0)
				goto out;
		} else {
			name = config_name_for(x, arg);
			path = realpath(arg, NULL);
			if (!name || !path) {
				failx(x, "%s: %s", arg, strerror(errno));
				goto out;
			}
		}
	}
	if (add_drive_config(x, id, name, format, opt.cdrom ? "cdrom" : "disk", opt.readonly) < 0)
		goto undo;
	if (live(x) && live_plug(x, eff_drive(x, id), path, format) != 0)
		goto undo;
	status = save(x);
	if (status == 0) {
		if (!vm_quiet)
			puts(id);
		goto out;
	}
undo:
	if (opt.copy && path)
		unlink(path);
out:
	free(id);
	free(name);
	free(path);
	return status;
}

static int cmd_detach(struct ctx *x, int argc, char **argv)
{
	const struct vm_drive *d = need_drive(x, argv[0]);
	if (!d)
		return EXIT_FAIL;
	if (live(x)) {
		if (d == boot_disk(x) && !opt.force)
			return failx(x, "drive %s: the boot disk of a running VM (stop it first, or --force)", d->id);
		if (!str_in(d->interface, (const char *const[]){"virtio", "nvme", "scsi", "usb", NULL}) ||
		    (!strcmp(d->interface, "scsi") && !config_has_pci(&x->eff)))
			return failx(x, "drive %s: %s drives cannot be unplugged while the VM runs; stop it first",
				     d->id, d->interface);
		if (live_block(x, d->id)) {
			int r = live_unplug(x, d);
			if (r)
				return r;
		} else {
			vm_info("%s: drive %s is not in the running VM; only the config changes", x->name, d->id);
		}
	}
	char *k = xasprintf("drive.%s", d->id), *err = NULL;
	if (d->image)
		vm_info("%s: drive %s: the image %s stays", x->name, d->id, d->image);
	int r = config_unset(&x->b.cfg, k, &err);
	free(k);
	if (r < 0)
		return fail_free(x, x->b.conf_path, err);
	return save(x);
}

/* ---- removable media -------------------------------------------------------- */

static bool removable(const struct vm_drive *d)
{
	return d->removable || is_cdrom(d);
}

/* A QMP refusal about the tray, said for people. */
static int tray_error(struct ctx *x, const struct vm_drive *d, char *err, const char *verb)
{
	const char *desc = qmp_desc(err);
	if (strstr(desc, "is locked"))
		failx(x, "drive %s: the guest has locked the tray (a mounted disc?); it was asked to release it; "
			 "%s again once it has, or use --force",
		      d->id, verb);
	else if (strstr(desc, "not found"))
		failx(x, "drive %s: not in the running VM (%s)", d->id, desc);
	else
		failx(x, "drive %s: %s", d->id, desc);
	free(err);
	return EXIT_FAIL;
}

/* Put the medium path into the running VM's removable drive d. */
static int live_change_medium(struct ctx *x, const struct vm_drive *d, const char *path, const char *format)
{
	char *err = NULL;
	struct json_object *a = jobj();
	add_target(x, a, d);
	int set, old = live_fdset_of(x, d->id);
	char *fdpath = live_fdset(x, path, d->readonly || is_cdrom(d), &set);
	if (!fdpath) {
		json_object_put(a);
		return EXIT_FAIL;
	}
	jstr(a, "filename", fdpath);
	free(fdpath);
	jstr(a, "format", format);
	jstr(a, "read-only-mode", "retain");
	if (opt.force)
		jadd(a, "force", json_object_new_boolean(true));
	vm_info("%s: drive %s: blockdev-change-medium %s", x->name, d->id, path);
	int r = qmp_run(x, "blockdev-change-medium", a, NULL, &err);
	live_fdset_release(x, r < 0 ? set : old);
	if (r < 0)
		return tray_error(x, d, err, "insert");
	return 0;
}

static int cmd_insert(struct ctx *x, int argc, char **argv)
{
	const struct vm_drive *d = need_drive(x, argv[0]);
	if (!d)
		return EXIT_FAIL;
	if (!removable(d))
		return failx(x, "drive %s: not removable (a %s %s); use attach and detach", d->id, d->interface,
			     d->media);
	const char *file = argv[1];
	char *err = NULL, *name = NULL, *path = NULL;
	const char *format = disk_probe(file, &err);
	if (!format)
		return fail_free(x, NULL, err);
	if (opt.copy) {
		if (import_copy(x, file, format, &name, &path) < 0)
			return EXIT_FAIL;
	} else {
		name = config_name_for(x, file);
		path = realpath(file, NULL);
		if (!name || !path) {
			free(name);
			free(path);
			return failx(x, "%s: %s", file, strerror(errno));
		}
	}
	int status = EXIT_FAIL;
	if (live(x) && live_change_medium(x, d, path, format) != 0)
		goto out;
	if (set_key(x, d->id, "image", name) < 0 || set_key(x, d->id, "format", format) < 0)
		goto out;
	status = save(x);
out:
	if (status && opt.copy && path)
		unlink(path);
	free(name);
	free(path);
	return status;
}

static int cmd_eject(struct ctx *x, int argc, char **argv)
{
	const struct vm_drive *d = need_drive(x, argv[0]);
	if (!d)
		return EXIT_FAIL;
	if (!removable(d))
		return failx(x, "drive %s: not removable (a %s %s); use detach", d->id, d->interface, d->media);
	if (live(x)) {
		struct json_object *a = jobj();
		char *err = NULL;
		add_target(x, a, d);
		int old = live_fdset_of(x, d->id);
		if (opt.force)
			jadd(a, "force", json_object_new_boolean(true));
		vm_info("%s: drive %s: eject", x->name, d->id);
		if (qmp_run(x, "eject", a, NULL, &err) < 0)
			return tray_error(x, d, err, "eject");
		live_fdset_release(x, old);
	}
	if (!d->image && !config_drive(&x->b.cfg, d->id)->format)
		return 0;
	if (set_key(x, d->id, "image", NULL) < 0 || set_key(x, d->id, "format", NULL) < 0)
		return EXIT_FAIL;
	return save(x);
}

/* ---- cloud-init seeds ------------------------------------------------------- */

/* Is path the image drive d names? */
static bool drive_names(struct ctx *x, const struct vm_drive *d, const char *path)
{
	if (!d->image)
		return false;
	char *err = NULL, *p = bundle_resolve(&x->b, d->image, &err);
	free(err);
	struct stat a, b;
	bool same = p && stat(p, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	free(p);
	return same;
}

/* cloud-init USER_DATA: a NoCloud seed Data/ID.iso (lib/cloudinit.c, the
 * same as vm-create --cloud-init) in the removable drive ID, "seed" unless
 * --id, which is made as a CD-ROM when missing. Run again, it replaces the
 * seed. On a running VM the new disc goes in with blockdev-change-medium
 * (a new drive is hot-plugged where its bus allows); if QEMU refuses, the
 * old seed is put back and the config is unchanged. */
static int cmd_cloud_init(struct ctx *x, int argc, char **argv)
{
	const char *id = opt.id ? opt.id : "seed";
	if (!config_id_valid(id))
		return failx(x, "drive %s: not a valid id (letters, digits, - and _)", id);
	const struct vm_drive *d = eff_drive(x, id);
	if (d && !removable(d))
		return failx(x, "drive %s: not removable (a %s %s); give another --id", d->id, d->interface,
			     d->media);
	if (d && opt.iface)
		return failx(x, "--interface: drive %s exists (change its interface with vm-config)", id);
	char *host = x->b.cfg.name ? xstrdup(x->b.cfg.name) : bundle_display_name(x->b.path);
	struct cloudinit_opts co = {.user_data = argv[0],
				    .meta_data = opt.meta_data,
				    .network_config = opt.network_config,
				    .ssh_keys = &opt.ssh_keys,
				    .instance_id = x->eff.uuid,
				    .hostname = host};
	struct cloudinit_seed seed;
	char *err = NULL;
	int r = cloudinit_load(&co, &seed, &err);
	free(host);
	if (r < 0)
		return fail_free(x, NULL, err);

	int status = EXIT_FAIL;
	char *base = xasprintf("%s.iso", id), *dir = data_dir(x), *final = NULL, *backup = NULL;
	bool existed = false, new_drive = !d;
	if (!dir)
		goto out;
	final = path_join(dir, base);
	existed = file_exists(final);
	if (existed && !(d && drive_names(x, d, final))) {
		failx(x, "%s: already exists and is not the medium of drive %s; remove it, or give another --id",
		      final, id);
		goto out;
	}
	/* UTM's config.plist has no image format, and its removable drives are
	 * the ones without an image: there the seed is a CD-ROM drive with its
	 * image in Data/ (QEMU still sees a removable CD-ROM) */
	bool plist = x->b.format == BUNDLE_PLIST;
	if (new_drive && (add_drive_config(x, id, base, plist ? NULL : "raw", "cdrom", false) < 0 ||
			  (plist && set_key(x, id, "removable", NULL) < 0)))
		goto out;
	if (existed) {
		/* the old seed, to put back if anything below fails */
		backup = xasprintf("%s/.%s.old.%ld", dir, base, (long)getpid());
		if (link(final, backup) < 0) {
			failx(x, "%s: %s", backup, strerror(errno));
			free(backup);
			backup = NULL;
			goto out;
		}
	}
	if (interrupted) {
		failx(x, "interrupted");
		goto out;
	}
	vm_info("%s: drive %s: cloud-init seed %s (%s user-data)", x->name, id, final, seed.kind);
	if (cloudinit_write(&seed, final, &err) < 0) {
		fail_free(x, NULL, err);
		goto out;
	}
	if (live(x)) {
		d = eff_drive(x, id);
		int lr = new_drive ? live_plug(x, d, final, "raw") : live_change_medium(x, d, final, "raw");
		if (lr) {
			status = lr;
			goto undo;
		}
	}
	if (!new_drive && (set_key(x, id, "image", base) < 0 || set_key(x, id, "format", plist ? NULL : "raw") < 0))
		goto undo;
	if ((status = save(x)) == 0)
		goto out;
undo:
	if (backup) {
		if (rename(backup, final) == 0) {
			free(backup);
			backup = NULL;
		}
	} else if (!existed) {
		unlink(final);
	}
out:
	if (backup)
		unlink(backup);
	free(backup);
	free(final);
	free(dir);
	free(base);
	cloudinit_seed_free(&seed);
	return status;
}

/* ---- resize ---------------------------------------------------------------- */

static int cmd_resize(struct ctx *x, int argc, char **argv)
{
	const struct vm_drive *d = need_drive(x, argv[0]);
	if (!d)
		return EXIT_FAIL;
	if (d->readonly || is_cdrom(d))
		return failx(x, "drive %s: read-only; not resized", d->id);
	if (!d->image)
		return failx(x, "drive %s: no image", d->id);
	const char *s = argv[1];
	bool grow_by = *s == '+';
	uint64_t size;
	if (size_arg(x, s + grow_by, &size))
		return EXIT_FAIL;
	char *path = drive_path(x, d), *err = NULL;
	if (!path)
		return EXIT_FAIL;
	int status = EXIT_FAIL;
	struct disk_info info = {0};
	const char *node = NULL;
	if (live(x)) {
		struct json_object *blk = live_block(x, d->id), *ins = jget(blk, "inserted");
		node = jget_str(ins, "node-name");
		if (!node || disk_info_from_json(jget(ins, "image"), &info, &err) < 0) {
			free(err);
			failx(x, "drive %s: not in the running VM", d->id);
			goto out;
		}
	} else {
		const char *fmt = drive_format(x, d, path);
		if (!fmt)
			goto out;
		if (disk_info(path, fmt, false, &info, &err) < 0) {
			failx(x, "drive %s: %s", d->id, err);
			goto out;
		}
	}
	if (grow_by)
		size += info.virtual_size;
	size = (size + 511) & ~511ULL; /* whole sectors */
	if (size < info.virtual_size && !opt.shrink) {
		char *a = disk_human_size(size), *b = disk_human_size(info.virtual_size);
		failx(x, "drive %s: %s is smaller than its size %s; shrinking loses the data past the new end "
			 "(shrink the guest's filesystems and partitions first, then use --shrink)",
		      d->id, a, b);
		free(a);
		free(b);
		goto out;
	}
	if (size == info.virtual_size) {
		status = 0;
		goto out;
	}
	if (live(x)) {
		struct json_object *a = jobj();
		jstr(a, "node-name", node);
		jadd(a, "size", json_object_new_int64((int64_t)size));
		vm_info("%s: drive %s: block_resize %" PRIu64, x->name, d->id, size);
		if (qmp_run(x, "block_resize", a, NULL, &err) < 0) {
			failx(x, "drive %s: %s", d->id, qmp_desc(err));
			goto out;
		}
	} else if (disk_resize(path, info.format, size, opt.shrink, &err) < 0) {
		failx(x, "drive %s: %s", d->id, err);
		goto out;
	}
	status = 0;
out:
	free(err);
	free(path);
	disk_info_free(&info);
	return status;
}

/* ---- snapshots --------------------------------------------------------------- */

struct snapdrive {
	const struct vm_drive *d;
	char *path;
	const char *node; /* live: the format node (borrowed from x->blocks) */
	struct disk_info info;
};

static void snapdrives_free(struct snapdrive *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].path);
		disk_info_free(&s[i].info);
	}
	free(s);
}

/* The drives a snapshot covers: every writable one with an image. Any that
 * cannot hold one is refused here, before anything changes. */
static int snap_drives(struct ctx *x, struct snapdrive **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	const struct vm_config *c = &x->eff;
	if (c->firmware && !strcmp(c->firmware, "uefi") && !c->bios)
		return failx(x, "efi_vars: the UEFI variable store (%s, a raw pflash drive) cannot hold snapshots",
			     c->efi_vars ? c->efi_vars : "efi_vars.fd");
	struct snapdrive *s = xcalloc(c->ndrives ? c->ndrives : 1, sizeof *s);
	size_t n = 0;
	int status = 0;
	for (size_t i = 0; i < c->ndrives && !status; i++) {
		const struct vm_drive *d = &c->drives[i];
		if (d->readonly || is_cdrom(d) || !d->image)
			continue;
		struct snapdrive *sd = &s[n++];
		sd->d = d;
		sd->path = drive_path(x, d);
		if (!sd->path) {
			status = EXIT_FAIL;
			break;
		}
		if (live(x) && !strcmp(d->interface, "nvme")) {
			status = failx(x, "drive %s: NVMe devices cannot be saved in a live snapshot "
					  "(QEMU cannot migrate them); stop the VM to snapshot its disks",
				       d->id);
			break;
		}
		char *err = NULL;
		if (live(x)) {
			struct json_object *ins = jget(live_block(x, d->id), "inserted");
			sd->node = jget_str(ins, "node-name");
			if (!sd->node || disk_info_from_json(jget(ins, "image"), &sd->info, &err) < 0) {
				free(err);
				status = failx(x, "drive %s: not in the running VM", d->id);
				break;
			}
		} else {
			const char *fmt = drive_format(x, d, sd->path);
			if (!fmt || disk_info(sd->path, fmt, false, &sd->info, &err) < 0) {
				status = fmt ? fail_free(x, d->id, err) : EXIT_FAIL;
				break;
			}
		}
		if (strcmp(sd->info.format, "qcow2")) {
			status = failx(x, "drive %s: a %s image (%s) cannot hold snapshots; only qcow2 can "
					  "(convert it: qemu-img convert -O qcow2)",
				       d->id, sd->info.format, d->image);
			break;
		}
	}
	if (!status && n == 0)
		status = failx(x, "no writable drive to hold a snapshot");
	if (status) {
		snapdrives_free(s, n);
		return status;
	}
	*out = s;
	*nout = n;
	return 0;
}

/* Run a snapshot-* job: start it, wait for it to conclude, report its error,
 * dismiss it. */
static int run_job(struct ctx *x, const char *cmd, struct json_object *args, const char *what)
{
	char *job = xasprintf("vm-disk-%ld", (long)getpid()), *err = NULL;
	jstr(args, "job-id", job);
	vm_info("%s: %s", x->name, cmd);
	if (qmp_run(x, cmd, args, NULL, &err) < 0) {
		failx(x, "%s: %s", what, qmp_desc(err));
		free(err);
		free(job);
		return EXIT_FAIL;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long long spent = (t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000;
		int left = opt.timeout_ms < 0 ? -1 : (int)(opt.timeout_ms - spent);
		if (opt.timeout_ms >= 0 && left <= 0) {
			failx(x, "%s: job %s still running after %d s", what, job, opt.timeout_ms / 1000);
			free(job);
			return EXIT_TIMEOUT;
		}
		struct json_object *ev = NULL;
		int r = qmp_wait_event(x->q, "JOB_STATUS_CHANGE", left, &ev, &err);
		if (r < 0) {
			free(job);
			return fail_free(x, what, err);
		}
		if (r == 0)
			continue;
		struct json_object *data = jget(ev, "data");
		const char *id = jget_str(data, "id"), *st = jget_str(data, "status");
		bool done = id && st && !strcmp(id, job) && !strcmp(st, "concluded");
		json_object_put(ev);
		if (done)
			break;
	}
	struct json_object *jobs = NULL;
	int status = 0;
	if (qmp_execute(x->q, "query-jobs", NULL, QMP_MS, &jobs, &err) < 0) {
		status = fail_free(x, "query-jobs", err);
	} else {
		for (size_t i = 0; i < json_object_array_length(jobs); i++) {
			struct json_object *j = json_object_array_get_idx(jobs, i);
			const char *id = jget_str(j, "id"), *e = jget_str(j, "error");
			if (id && !strcmp(id, job) && e)
				status = failx(x, "%s: %s", what, e);
		}
		json_object_put(jobs);
	}
	struct json_object *a = jobj();
	jstr(a, "id", job);
	if (qmp_run(x, "job-dismiss", a, NULL, &err) < 0)
		free(err);
	free(job);
	return status;
}

static struct json_object *node_list(struct snapdrive *s, size_t n, const char *must_have)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		if (!must_have || disk_find_snapshot(&s[i].info, must_have))
			json_object_array_add(arr, json_object_new_string(s[i].node));
	return arr;
}

static int snapshot_list(struct ctx *x, struct snapdrive *s, size_t n)
{
	/* one entry per name, in the order the first drive has them */
	struct strv names = {0};
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < s[i].info.nsnaps; j++)
			if (!strv_contains(&names, s[i].info.snaps[j].name))
				strv_push(&names, s[i].info.snaps[j].name);
	struct json_object *arr = json_object_new_array();
	for (size_t k = 0; k < names.n; k++) {
		struct json_object *o = jobj(), *drv = json_object_new_array();
		const struct disk_snapshot *first = NULL;
		uint64_t vmstate = 0;
		for (size_t i = 0; i < n; i++) {
			const struct disk_snapshot *sn = disk_find_snapshot(&s[i].info, names.v[k]);
			if (!sn)
				continue;
			if (!first)
				first = sn;
			vmstate += sn->vm_state_size;
			json_object_array_add(drv, json_object_new_string(s[i].d->id));
		}
		jstr(o, "name", names.v[k]);
		char date[64] = "";
		time_t ts = (time_t)first->date_sec;
		struct tm tm;
		if (localtime_r(&ts, &tm))
			strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
		jstr(o, "date", date);
		jadd(o, "date_sec", json_object_new_int64(first->date_sec));
		jadd(o, "vm_state_size", json_object_new_int64((int64_t)vmstate));
		jadd(o, "vm_clock_nsec", json_object_new_int64((int64_t)first->vm_clock_nsec));
		jadd(o, "drives", drv);
		json_object_array_add(arr, o);
	}
	if (opt.json) {
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_NOSLASHESCAPE |
							     (isatty(1) ? JSON_C_TO_STRING_PRETTY
									: JSON_C_TO_STRING_PLAIN)));
	} else {
		size_t w = 4;
		for (size_t k = 0; k < names.n; k++)
			if (strlen(names.v[k]) > w)
				w = strlen(names.v[k]);
		printf("%-*s  %-19s  %8s  %s\n", (int)w, "NAME", "DATE", "VM-STATE", "DRIVES");
		for (size_t k = 0; k < names.n; k++) {
			struct json_object *o = json_object_array_get_idx(arr, k), *drv = jget(o, "drives");
			int64_t vs = json_object_get_int64(jget(o, "vm_state_size"));
			char *h = vs ? disk_human_size((uint64_t)vs) : xstrdup("-");
			printf("%-*s  %-19s  %8s  ", (int)w, names.v[k], jget_str(o, "date"), h);
			for (size_t i = 0; i < json_object_array_length(drv); i++)
				printf("%s%s", i ? "," : "", json_object_get_string(json_object_array_get_idx(drv, i)));
			putchar('\n');
			free(h);
		}
	}
	json_object_put(arr);
	strv_free(&names);
	return 0;
}

static int cmd_snapshot(struct ctx *x, int argc, char **argv)
{
	const char *op = argv[0];
	static const char *const ops[] = {"create", "list", "revert", "delete", NULL};
	if (!str_in(op, ops))
		vm_errx(EXIT_USAGE, "snapshot %s: unknown (create, list, revert, delete)", op);
	bool list = !strcmp(op, "list");
	if (list ? argc != 1 : argc != 2)
		usage_exit(usage, EXIT_USAGE);
	if (!list && opt.json)
		vm_errx(EXIT_USAGE, "--json: only for snapshot list");
	const char *name = list ? NULL : argv[1];
	if (name && (!*name || strspn(name, "0123456789") == strlen(name)))
		return failx(x, "snapshot '%s': a name of digits only would be taken for a snapshot id", name);
	struct snapdrive *s;
	size_t n;
	int status = snap_drives(x, &s, &n);
	if (status)
		return status;
	if (list) {
		status = snapshot_list(x, s, n);
		snapdrives_free(s, n);
		return status;
	}
	/* which drives have it */
	size_t have = 0;
	const struct snapdrive *with_state = NULL, *lacking = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct disk_snapshot *sn = disk_find_snapshot(&s[i].info, name);
		if (sn) {
			have++;
			if (sn->vm_state_size && !with_state)
				with_state = &s[i];
		} else if (!lacking) {
			lacking = &s[i];
		}
	}
	char *err = NULL;
	if (!strcmp(op, "create")) {
		if (have) {
			for (size_t i = 0; i < n; i++)
				if (disk_find_snapshot(&s[i].info, name)) {
					status = failx(x, "snapshot %s: exists (drive %s)", name, s[i].d->id);
					break;
				}
		} else if (live(x)) {
			struct json_object *a = jobj();
			jstr(a, "tag", name);
			jstr(a, "vmstate", s[0].node);
			jadd(a, "devices", node_list(s, n, NULL));
			status = run_job(x, "snapshot-save", a, name);
		} else {
			for (size_t i = 0; i < n && !status; i++) {
				vm_info("%s: drive %s: qemu-img snapshot -c %s", x->name, s[i].d->id, name);
				if (disk_snapshot(s[i].path, DISK_SNAP_CREATE, name, &err) < 0) {
					status = failx(x, "drive %s: %s", s[i].d->id, err);
					free(err);
					err = NULL;
					/* all or none: take back the ones made */
					for (size_t j = 0; j < i; j++)
						if (disk_snapshot(s[j].path, DISK_SNAP_DELETE, name, &err) < 0) {
							failx(x, "drive %s: %s", s[j].d->id, err);
							free(err);
							err = NULL;
						}
				}
			}
		}
	} else if (!have) {
		status = failx(x, "snapshot %s: no such snapshot", name);
	} else if (!strcmp(op, "revert")) {
		if (lacking) {
			status = failx(x, "snapshot %s: drive %s does not have it (added after it was taken?)", name,
				       lacking->d->id);
		} else if (live(x)) {
			if (!with_state) {
				status = failx(x, "snapshot %s: holds no VM state (taken while the VM was stopped); "
						  "stop the VM and revert offline",
					       name);
			} else {
				struct json_object *a = jobj();
				jstr(a, "tag", name);
				jstr(a, "vmstate", with_state->node);
				jadd(a, "devices", node_list(s, n, NULL));
				status = run_job(x, "snapshot-load", a, name);
			}
		} else {
			for (size_t i = 0; i < n && !status; i++) {
				vm_info("%s: drive %s: qemu-img snapshot -a %s", x->name, s[i].d->id, name);
				if (disk_snapshot(s[i].path, DISK_SNAP_APPLY, name, &err) < 0) {
					status = failx(x, "drive %s: %s", s[i].d->id, err);
					free(err);
					err = NULL;
				}
			}
		}
	} else { /* delete */
		if (live(x)) {
			struct json_object *a = jobj();
			jstr(a, "tag", name);
			jadd(a, "devices", node_list(s, n, name));
			status = run_job(x, "snapshot-delete", a, name);
		} else {
			for (size_t i = 0; i < n; i++) {
				if (!disk_find_snapshot(&s[i].info, name))
					continue;
				vm_info("%s: drive %s: qemu-img snapshot -d %s", x->name, s[i].d->id, name);
				if (disk_snapshot(s[i].path, DISK_SNAP_DELETE, name, &err) < 0) {
					status = failx(x, "drive %s: %s", s[i].d->id, err);
					free(err);
					err = NULL;
				}
			}
		}
	}
	snapdrives_free(s, n);
	return status;
}

/* ---- libguestfs --------------------------------------------------------------- */

/* Start libguestfs on drive id (NULL: every drive with an image). */
static struct offline *gfs_open(struct ctx *x, const char *id, bool rw)
{
	struct offline_drive *od = xcalloc(x->eff.ndrives + 1, sizeof *od);
	struct strv paths = {0};
	size_t n = 0;
	for (size_t i = 0; i < x->eff.ndrives; i++) {
		const struct vm_drive *d = &x->eff.drives[i];
		if (id && strcmp(d->id, id))
			continue;
		if (rw && (d->readonly || is_cdrom(d))) {
			failx(x, "drive %s: read-only", d->id);
			goto fail;
		}
		if (!d->image) {
			if (id)
				failx(x, "drive %s: no medium", d->id);
			continue;
		}
		char *p = drive_path(x, d);
		if (!p)
			goto fail;
		if (!file_exists(p)) {
			failx(x, "drive %s: %s: %s", d->id, p, strerror(ENOENT));
			free(p);
			goto fail;
		}
		const char *fmt = drive_format(x, d, p);
		strv_push(&paths, p);
		free(p);
		if (!fmt)
			goto fail;
		od[n].id = d->id;
		od[n].path = paths.v[paths.n - 1];
		od[n].format = fmt;
		od[n].readonly = !rw;
		n++;
	}
	if (n == 0) {
		if (!id)
			failx(x, "no drive with an image");
		goto fail;
	}
	vm_info("%s: starting libguestfs (under TCG this takes a while)", x->name);
	char *err = NULL;
	struct offline *o = offline_open(od, n, &err);
	if (!o)
		fail_free(x, NULL, err);
	free(od);
	strv_free(&paths);
	return o;
fail:
	free(od);
	strv_free(&paths);
	return NULL;
}

static int gfs_done(struct ctx *x, struct offline *o, int status, bool wrote)
{
	if (status) {
		offline_abort(o);
		return status;
	}
	char *err = NULL;
	if (wrote ? offline_finish(o, &err) < 0 : (offline_abort(o), 0))
		return fail_free(x, NULL, err);
	return 0;
}

static void print_inspect_text(struct json_object *res)
{
	struct json_object *oses = jget(res, "operating_systems"), *fss = jget(res, "filesystems");
	for (size_t i = 0; i < json_object_array_length(oses); i++) {
		struct json_object *os = json_object_array_get_idx(oses, i);
		const char *drv = jget_str(os, "drive");
		printf("%s%s%s%s: %s", jget_str(os, "root"), drv ? " (" : "", drv ? drv : "", drv ? ")" : "",
		       jget_str(os, "type") ? jget_str(os, "type") : "unknown");
		if (jget_str(os, "distro"))
			printf(" %s", jget_str(os, "distro"));
		printf(" %d.%d", json_object_get_int(jget(os, "major_version")),
		       json_object_get_int(jget(os, "minor_version")));
		if (jget_str(os, "arch"))
			printf(" %s", jget_str(os, "arch"));
		if (jget_str(os, "product_name"))
			printf(" \"%s\"", jget_str(os, "product_name"));
		if (jget_str(os, "hostname"))
			printf(" hostname=%s", jget_str(os, "hostname"));
		putchar('\n');
		struct json_object *mps = jget(os, "mountpoints");
		for (size_t j = 0; j < json_object_array_length(mps); j++) {
			struct json_object *m = json_object_array_get_idx(mps, j);
			printf("  %s on %s\n", jget_str(m, "device"), jget_str(m, "mountpoint"));
		}
	}
	for (size_t i = 0; i < json_object_array_length(fss); i++) {
		struct json_object *f = json_object_array_get_idx(fss, i);
		const char *drv = jget_str(f, "drive"), *label = jget_str(f, "label");
		printf("filesystem %s%s%s%s: %s", jget_str(f, "device"), drv ? " (" : "", drv ? drv : "",
		       drv ? ")" : "", jget_str(f, "type"));
		if (label)
			printf(" label=%s", label);
		if (jget(f, "size")) {
			char *h = disk_human_size((uint64_t)json_object_get_int64(jget(f, "size")));
			printf(" size=%s", h);
			free(h);
		}
		putchar('\n');
	}
}

static int cmd_inspect(struct ctx *x, int argc, char **argv)
{
	struct offline *o = gfs_open(x, NULL, false);
	if (!o)
		return EXIT_FAIL;
	struct json_object *res = NULL;
	char *err = NULL;
	if (offline_inspect(o, &res, &err) < 0) {
		offline_abort(o);
		return fail_free(x, NULL, err);
	}
	offline_abort(o);
	if (opt.json)
		puts(json_object_to_json_string_ext(res, JSON_C_TO_STRING_NOSLASHESCAPE |
							     (isatty(1) ? JSON_C_TO_STRING_PRETTY
									: JSON_C_TO_STRING_PLAIN)));
	else
		print_inspect_text(res);
	if (json_object_array_length(jget(res, "operating_systems")) == 0 && !vm_quiet) {
		size_t nfs = json_object_array_length(jget(res, "filesystems"));
		failx(x, "no operating system found (%zu filesystem%s)", nfs, nfs == 1 ? "" : "s");
	}
	json_object_put(res);
	return 0;
}

static int cmd_ls(struct ctx *x, int argc, char **argv)
{
	if (!need_drive(x, argv[0]))
		return EXIT_FAIL;
	struct offline *o = gfs_open(x, argv[0], false);
	if (!o)
		return EXIT_FAIL;
	char *err = NULL;
	struct strv names = {0};
	int status = 0;
	if (offline_mount(o, opt.fs, false, &err) < 0 || offline_ls(o, argv[1], &names, &err) < 0)
		status = fail_free(x, NULL, err);
	for (size_t i = 0; i < names.n; i++)
		puts(names.v[i]);
	strv_free(&names);
	return gfs_done(x, o, status, false);
}

static int cmd_copy(struct ctx *x, int argc, char **argv, bool in)
{
	if (!need_drive(x, argv[0]))
		return EXIT_FAIL;
	const char *dest = argv[argc - 1];
	if (!in) {
		struct stat st;
		if (stat(dest, &st) < 0)
			return failx(x, "%s: %s", dest, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return failx(x, "%s: not a folder", dest);
	} else {
		for (int i = 1; i < argc - 1; i++)
			if (access(argv[i], R_OK) < 0)
				return failx(x, "%s: %s", argv[i], strerror(errno));
	}
	struct offline *o = gfs_open(x, argv[0], in);
	if (!o)
		return EXIT_FAIL;
	char *err = NULL;
	int status = 0;
	if (offline_mount(o, opt.fs, in, &err) < 0)
		status = fail_free(x, NULL, err);
	for (int i = 1; i < argc - 1 && !status; i++) {
		vm_info("%s: drive %s: copy %s to %s", x->name, argv[0], argv[i], dest);
		int r = in ? offline_copy_in(o, argv[i], dest, &err) : offline_copy_out(o, argv[i], dest, &err);
		if (r < 0)
			status = fail_free(x, NULL, err);
	}
	return gfs_done(x, o, status, in);
}

static int cmd_copy_in(struct ctx *x, int argc, char **argv)
{
	return cmd_copy(x, argc, argv, true);
}

static int cmd_copy_out(struct ctx *x, int argc, char **argv)
{
	return cmd_copy(x, argc, argv, false);
}

static int cmd_mkfs(struct ctx *x, int argc, char **argv)
{
	if (!need_drive(x, argv[0]))
		return EXIT_FAIL;
	if (strspn(argv[1], "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(argv[1]))
		return failx(x, "'%s': not a filesystem type (ext4, xfs, vfat ...)", argv[1]);
	struct offline *o = gfs_open(x, argv[0], true);
	if (!o)
		return EXIT_FAIL;
	char *err = NULL;
	vm_info("%s: drive %s: mkfs %s", x->name, argv[0], argv[1]);
	int status = 0;
	if (offline_mkfs(o, argv[1], opt.label, opt.force, &err) < 0)
		status = fail_free(x, NULL, err);
	return gfs_done(x, o, status, true);
}

/* ---- mkiso (no bundle) -------------------------------------------------------- */

static int cmd_mkiso(int argc, char **argv)
{
	const char *out = argv[0];
	struct iso_opts io = {.label = opt.label};
	char *err = NULL;
	struct iso *w = iso_create(out, &io, &err);
	if (!w) {
		vm_warnx("%s", err);
		free(err);
		return EXIT_FAIL;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		const char *p = argv[i];
		int r;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			r = iso_add_path(w, "", p, &err); /* a folder's contents at the root */
		} else {
			char *copy = xstrdup(p);
			size_t n = strlen(copy);
			while (n > 1 && copy[n - 1] == '/')
				copy[--n] = '\0';
			const char *base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
			r = iso_add_path(w, base, p, &err);
			free(copy);
		}
		if (r < 0 || interrupted) {
			if (r < 0) {
				vm_warnx("%s", err);
				free(err);
			} else {
				vm_warnx("%s: interrupted", out);
			}
			iso_discard(w);
			return EXIT_FAIL;
		}
	}
	if (iso_commit(w, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- the command table ---------------------------------------------------------- */

enum { NEED_STOPPED = 1, LOCK = 2 };

static const struct subcmd {
	const char *name;
	int (*fn)(struct ctx *, int, char **);
	int min, max; /* arguments after the subcommand; max -1: any number */
	unsigned opts;
	int flags;
} subcmds[] = {
    {"list", cmd_list, 0, 0, O_JSON, 0},
    {"create", cmd_create, 1, 2, O_FORMAT | O_IFACE | O_BACKING, LOCK},
    {"attach", cmd_attach, 1, 1, O_ID | O_CDROM | O_RO | O_IFACE | O_COPY, LOCK},
    {"detach", cmd_detach, 1, 1, O_FORCE, LOCK},
    {"insert", cmd_insert, 2, 2, O_COPY | O_FORCE, LOCK},
    {"eject", cmd_eject, 1, 1, O_FORCE, LOCK},
    {"resize", cmd_resize, 2, 2, O_SHRINK, LOCK},
    {"snapshot", cmd_snapshot, 1, 2, O_JSON, LOCK},
    {"inspect", cmd_inspect, 0, 0, O_JSON, NEED_STOPPED},
    {"ls", cmd_ls, 2, 2, O_FS, NEED_STOPPED},
    {"copy-in", cmd_copy_in, 3, -1, O_FS, NEED_STOPPED | LOCK},
    {"copy-out", cmd_copy_out, 3, -1, O_FS, NEED_STOPPED},
    {"mkfs", cmd_mkfs, 2, 2, O_LABEL | O_FORCE, NEED_STOPPED | LOCK},
    {"cloud-init", cmd_cloud_init, 1, 1, O_META | O_SSHKEY | O_NETCFG | O_ID | O_IFACE | O_FORCE, LOCK},
};

static const struct {
	unsigned bit;
	const char *name;
} optnames[] = {
    {O_JSON, "--json"},	 {O_FORMAT, "--format"}, {O_IFACE, "--interface"}, {O_BACKING, "--backing"},
    {O_ID, "--id"},	 {O_CDROM, "--cdrom"},	 {O_RO, "--readonly"},	   {O_COPY, "--copy"},
    {O_FORCE, "--force"}, {O_SHRINK, "--shrink"}, {O_LABEL, "--label"},	   {O_FS, "--fs"},
    {O_META, "--meta-data"}, {O_SSHKEY, "--ssh-key"}, {O_NETCFG, "--network-config"},
};

static void check_opts(const char *sub, unsigned allowed)
{
	for (size_t i = 0; i < sizeof optnames / sizeof optnames[0]; i++)
		if ((opt.given & optnames[i].bit) && !(allowed & optnames[i].bit))
			vm_errx(EXIT_USAGE, "%s: not an option of %s", optnames[i].name, sub);
}

static int open_vm(struct ctx *x, const char *arg, const struct subcmd *sc)
{
	bundle_open_flags_or_die(&x->b, arg, (sc->flags & LOCK) ? BUNDLE_LOCK : 0);
	x->name = x->b.path;
	bundle_effective_config(&x->b, &x->eff);
	struct vm_status st;
	if (runtime_state(&x->b, 5000, &st) < 0)
		return failx(x, "cannot read the runtime state");
	x->state = st.state;
	int status = 0;
	switch (st.state) {
	case VM_STOPPED:
		break;
	case VM_RUNNING:
	case VM_PAUSED:
		if (sc->flags & NEED_STOPPED) {
			status = failx(x, "the VM is running; stop it first (libguestfs must not open disks in use)");
			break;
		}
		char *err = NULL;
		x->q = runtime_qmp_connect(st.dir, NULL, QMP_MS, &err);
		if (!x->q)
			status = fail_free(x, "QMP", err);
		else
			qmp_set_interrupt(x->q, &interrupted);
		break;
	case VM_UNKNOWN:
		status = failx(x, "the VM runs but QMP does not answer (%s); try again",
			       st.error ? st.error : "another client?");
		break;
	default:
		status = failx(x, "the VM is %s; try again when it has", vm_state_name(st.state));
		break;
	}
	vm_status_free(&st);
	return status;
}

int main(int argc, char **argv)
{
	enum { OPT_FS = 256, OPT_META, OPT_SSHKEY, OPT_NETCFG };
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},	      {"format", required_argument, NULL, 'f'},
	    {"interface", required_argument, NULL, 'i'}, {"backing", required_argument, NULL, 'b'},
	    {"id", required_argument, NULL, 'I'},     {"cdrom", no_argument, NULL, 'c'},
	    {"readonly", no_argument, NULL, 'r'},     {"copy", no_argument, NULL, 'C'},
	    {"force", no_argument, NULL, 'F'},	      {"shrink", no_argument, NULL, 's'},
	    {"label", required_argument, NULL, 'l'},  {"fs", required_argument, NULL, OPT_FS},
	    {"timeout", required_argument, NULL, 't'}, {"meta-data", required_argument, NULL, OPT_META},
	    {"ssh-key", required_argument, NULL, OPT_SSHKEY}, {"network-config", required_argument, NULL, OPT_NETCFG},
	    CLI_COMMON_LONGOPTS,
	    {NULL, 0, NULL, 0}};
	int ch;
	/* options may come anywhere (GNU permutation); "--" ends them */
	while ((ch = getopt_long(argc, argv, "jf:i:b:I:crCFsl:t:" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': opt.json = true; opt.given |= O_JSON; break;
		case 'f': opt.format = optarg; opt.given |= O_FORMAT; break;
		case 'i': opt.iface = optarg; opt.given |= O_IFACE; break;
		case 'b': opt.backing = optarg; opt.given |= O_BACKING; break;
		case 'I': opt.id = optarg; opt.given |= O_ID; break;
		case 'c': opt.cdrom = true; opt.given |= O_CDROM; break;
		case 'r': opt.readonly = true; opt.given |= O_RO; break;
		case 'C': opt.copy = true; opt.given |= O_COPY; break;
		case 'F': opt.force = true; opt.given |= O_FORCE; break;
		case 's': opt.shrink = true; opt.given |= O_SHRINK; break;
		case 'l': opt.label = optarg; opt.given |= O_LABEL; break;
		case OPT_FS: opt.fs = optarg; opt.given |= O_FS; break;
		case OPT_META: opt.meta_data = optarg; opt.given |= O_META; break;
		case OPT_SSHKEY: strv_push(&opt.ssh_keys, optarg); opt.given |= O_SSHKEY; break;
		case OPT_NETCFG: opt.network_config = optarg; opt.given |= O_NETCFG; break;
		case 't': {
			long long v;
			const char *e;
			if (parse_int(optarg, 0, INT_MAX / 1000, &v, &e) < 0)
				vm_errx(EXIT_USAGE, "--timeout %s: %s", optarg, e);
			opt.timeout_ms = v ? (int)v * 1000 : -1;
			break;
		}
		default: cli_common(ch, usage);
		}
	}
	argc -= optind;
	argv += optind;

	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (argc >= 1 && !strcmp(argv[0], "mkiso")) {
		if (argc < 3)
			usage_exit(usage, EXIT_USAGE);
		check_opts("mkiso", O_LABEL);
		return cmd_mkiso(argc - 1, argv + 1);
	}
	if (argc < 2)
		usage_exit(usage, EXIT_USAGE);
	const struct subcmd *sc = NULL;
	for (size_t i = 0; i < sizeof subcmds / sizeof subcmds[0]; i++)
		if (!strcmp(argv[1], subcmds[i].name))
			sc = &subcmds[i];
	if (!sc)
		vm_errx(EXIT_USAGE, "%s: unknown command (list, create, attach, detach, insert, eject, resize, "
				    "snapshot, inspect, ls, copy-in, copy-out, mkfs, cloud-init, mkiso)",
			argv[1]);
	int nargs = argc - 2;
	if (nargs < sc->min || (sc->max >= 0 && nargs > sc->max))
		usage_exit(usage, EXIT_USAGE);
	check_opts(sc->name, sc->opts);
	if (opt.label && !strcmp(sc->name, "mkfs") && (!*opt.label || strpbrk(opt.label, "\n")))
		vm_errx(EXIT_USAGE, "--label: not a label");

	struct ctx x = {0};
	int status = open_vm(&x, argv[0], sc);
	if (status == 0)
		status = sc->fn(&x, nargs, argv + 2);
	if (interrupted && status == 0)
		status = failx(&x, "interrupted");
	drop_tmp(&x);
	json_object_put(x.blocks);
	if (x.q)
		qmp_close(x.q);
	config_free(&x.eff);
	bundle_close(&x.b);
	strv_free(&opt.ssh_keys);
	if (fflush(stdout) == EOF)
		vm_err(EXIT_FAIL, "stdout");
	return status;
}
