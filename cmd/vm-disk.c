/* vm-disk: disks, removable media and snapshots of a VM, live and offline:
 * options, dispatch and output over lib/media.c (drives and media, live
 * through QMP first, then the config), lib/snapshot.c and lib/offline.c
 * (libguestfs, refused while the VM runs). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "jsonobj.h"
#include "media.h"
#include "offline.h"
#include "qmp.h"
#include "runtime.h"
#include "snapshot.h"
#include "suspend.h"
#include "tool.h"

enum { OPT_FS = CLI_LONG_ONLY, OPT_META_DATA, OPT_SSH_KEY, OPT_NETWORK_CONFIG, OPT_END };

static const struct cli_option options[] = {
    CLI_FLAG('j', "json", "list, snapshot list, inspect: JSON on stdout"),
    CLI_VALUE('f', "format", "FMT", "create: qcow2 (default) or raw"),
    CLI_VALUE('i', "interface", "IF", "create, attach, cloud-init (a new drive): virtio, nvme,\n"
				      "ide, scsi, usb, sd, floppy, pflash or none (default: the\n"
				      "machine's)"),
    CLI_VALUE('b', "backing", "FILE", "create: a qcow2 overlay on FILE"),
    CLI_VALUE('I', "id", "ID", "attach: the new drive's id (default hdN or cdN);\n"
			       "cloud-init: the seed's drive (default seed; made as a\n"
			       "read-only virtio disk, or a CD-ROM with -i other than virtio)"),
    CLI_FLAG('c', "cdrom", "attach: a CD-ROM drive (read-only, removable)"),
    CLI_FLAG('r', "readonly", "attach: the guest cannot write"),
    CLI_FLAG('C', "copy", "attach, insert: copy FILE into Data/ and use the copy"),
    CLI_FLAG('F', "force", "detach: even the boot disk of a running VM; eject,\n"
			   "insert, cloud-init: even when the guest locked the tray;\n"
			   "mkfs: even over an existing filesystem"),
    CLI_FLAG('s', "shrink", "resize: allow a smaller size (data past it is lost)"),
    CLI_VALUE('l', "label", "LABEL", "mkfs: filesystem label; mkiso: volume label (default CDROM)"),
    CLI_VALUE(OPT_FS, "fs", "DEVICE", "ls, copy-in, copy-out: mount this filesystem (as inspect\n"
				      "names it, e.g. /dev/sda1) instead of finding one"),
    CLI_VALUE(OPT_META_DATA, "meta-data", "FILE", "cloud-init: this meta-data (default: instance-id from the\n"
						  "UUID, local-hostname from the name)"),
    CLI_VALUE(OPT_SSH_KEY, "ssh-key", "FILE", "cloud-init: authorize the SSH public key(s) in FILE for the\n"
					      "image's default user (repeatable)"),
    CLI_VALUE(OPT_NETWORK_CONFIG, "network-config", "FILE", "cloud-init: network configuration for the seed"),
    CLI_VALUE('t', "timeout", "S", "how long to wait for the guest to release an unplugged\n"
				   "device or for a snapshot job (default 120; 0: no timeout,\n"
				   "wait forever); exit status 3"),
    CLI_FLAG('q', "quiet", "no messages but errors"),
    CLI_FLAG('v', "verbose", "say what is done"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-disk [options] BUNDLE list [--json]\n"
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
	     "       vm-disk [options] mkiso OUT.iso PATH... [--label LABEL]\n",
    .about = "Disks and removable media of a VM, live through QMP when it runs; snapshots;\n"
	     "offline filesystem work through libguestfs. SIZE: 10G, 512M, 1.5T (a bare\n"
	     "number is GiB).\n",
    .options = options,
};

#define QMP_MS 30000

static struct {
	bool given[OPT_END]; /* by option id: seen on the command line */
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
	struct media m;	  /* m.eff: b.cfg with defaults; m.q = q */
	const char *name; /* the bundle, for messages */
	enum vm_state state;
	struct qmp *q; /* when the VM runs */
};

static int failx(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failx(struct ctx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = xvasprintf(fmt, ap);
	va_end(ap);
	vm_warnx("%s: %s", x->name, m);
	free(m);
	return EXIT_FAIL;
}

/* A suspended guest resumes with its page cache and devices as they were
 * saved: a disk changed under it would be corrupted, not just surprising. */
static int refuse_suspended(struct ctx *x, const char *what)
{
	return failx(x, "%s: the VM is suspended (Data/%s), and its saved state expects the disks as "
			"they are; resume and stop it (vm-run, vm-stop), or discard the state (vm-run --fresh)",
		     what, SUSPEND_FILE);
}

/* A lib/ failure (r: -1 or MEDIA_TIMEOUT) with its message, freed; the exit status. */
static int fail_r(struct ctx *x, int r, char *err)
{
	failx(x, "%s", err ? err : "failed");
	free(err);
	return r == MEDIA_TIMEOUT ? EXIT_TIMEOUT : EXIT_FAIL;
}

/* The status of a lib/ call. */
static int done(struct ctx *x, int r, char *err)
{
	return r ? fail_r(x, r, err) : 0;
}

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

static void say(void *arg, const char *msg)
{
	vm_info("%s: %s", (const char *)arg, msg);
}


/* The drive, or a message and NULL. */
static const struct vm_drive *need_drive(struct ctx *x, const char *id)
{
	char *err = NULL;
	const struct vm_drive *d = media_drive(&x->m, id, &err);
	if (!d)
		fail_free(x, NULL, err);
	return d;
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
	struct json_object *ins = json_member(r->blk, "inserted"), *img = json_member(ins, "image");
	char *err = NULL;
	if (img && disk_info_from_json(img, &r->info, &err) == 0)
		r->have_info = true;
	free(err);
}

static struct json_object *row_json(struct ctx *x, struct row *r)
{
	const struct vm_drive *d = r->d;
	struct json_object *o = json_object_new_object();
	json_set_str(o, "id", d->id);
	json_set_str(o, "interface", d->interface);
	json_set_str(o, "media", d->media);
	json_set_str(o, "image", d->image);
	json_set_str(o, "path", r->path);
	json_set_str(o, "format", r->have_info ? r->info.format : d->format);
	json_object_object_add(o, "virtual_size",
			       r->have_info ? json_object_new_int64((int64_t)r->info.virtual_size) : NULL);
	json_object_object_add(o, "actual_size", r->have_info && r->info.has_actual_size
						     ? json_object_new_int64((int64_t)r->info.actual_size)
						     : NULL);
	json_set_str(o, "backing", r->have_info ? r->info.backing : NULL);
	json_object_object_add(o, "snapshots", json_object_new_int((int)(r->have_info ? r->info.nsnaps : 0)));
	json_set_bool(o, "readonly", d->readonly || media_is_cdrom(d));
	json_set_bool(o, "removable", d->removable || media_is_cdrom(d));
	json_set_bool(o, "boot", media_boot_disk(&x->m.eff) == d);
	json_set_str(o, "error", r->error);
	if (live(x)) {
		struct json_object *rt = NULL;
		if (r->blk) {
			struct json_object *ins = json_member(r->blk, "inserted");
			rt = json_object_new_object();
			json_set_str(rt, "inserted", json_member_str(ins, "file"));
			json_set_str(rt, "node_name", json_member_str(ins, "node-name"));
			json_set_bool(rt, "locked", json_member_bool(r->blk, "locked"));
			json_set_bool(rt, "tray_open", json_member_bool(r->blk, "tray_open"));
		}
		json_object_object_add(o, "running", rt);
	}
	return o;
}

static int cmd_list(struct ctx *x, int argc, char **argv)
{
	size_t n = x->m.eff.ndrives;
	struct row *rows = xcalloc(n ? n : 1, sizeof *rows);
	int status = 0;
	for (size_t i = 0; i < n; i++) {
		struct row *r = &rows[i];
		r->d = &x->m.eff.drives[i];
		if (r->d->image) {
			char *err = NULL;
			r->path = bundle_resolve(&x->b, r->d->image, &err);
			if (!r->path)
				r->error = err;
		}
		if (live(x)) {
			char *err = NULL;
			r->blk = media_block(&x->m, r->d->id, &err);
			if (err) {
				r->error = err;
				status = EXIT_FAIL;
			}
		}
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
		print_json(stdout, arr, CLI_JSON_AUTO);
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
				if (media_boot_disk(&x->m.eff) == d)
					buf_puts(&fl, ",boot");
				if (d->readonly || media_is_cdrom(d))
					buf_puts(&fl, ",ro");
				if (d->removable || media_is_cdrom(d))
					buf_puts(&fl, ",removable");
				if (r->blk && json_member_bool(r->blk, "locked"))
					buf_puts(&fl, ",locked");
				if (r->blk && json_member_bool(r->blk, "tray_open"))
					buf_puts(&fl, ",open");
				if (live(x) && !r->blk)
					buf_puts(&fl, ",not-in-vm");
				c[6] = xstrdup(fl.s ? fl.s + 1 : "-");
				buf_free(&fl);
				struct json_object *ins = json_member(r->blk, "inserted");
				const char *now = json_member_str(ins, "file");
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

/* ---- changes: lib/media.c and lib/snapshot.c ------------------------------ */

/* SIZE as the user wrote it; bare numbers are GiB, like vm-create --disk. */
static int size_arg(struct ctx *x, const char *s, uint64_t *bytes)
{
	if (parse_size(s, 1ULL << 30, bytes) < 0 || *bytes == 0)
		return failx(x, "'%s': not a size (e.g. 10G, 512M)", s);
	return 0;
}

static int cmd_create(struct ctx *x, int argc, char **argv)
{
	const char *format = opt.format ? opt.format : "qcow2";
	if (strcmp(format, "qcow2") && strcmp(format, "raw"))
		vm_errx(EXIT_USAGE, "--format %s: qcow2 or raw", format);
	if (argc < 2 && !opt.backing)
		tool_usage_error(&cli);
	if (opt.backing && strcmp(format, "qcow2"))
		vm_errx(EXIT_USAGE, "--backing needs --format qcow2");
	struct media_create c = {.id = argv[0], .format = format, .interface = opt.iface, .backing = opt.backing};
	char *err = NULL;
	if (media_new_id_ok(&x->m, c.id, &err) < 0)
		return fail_r(x, -1, err);
	if (argc >= 2 && size_arg(x, argv[1], &c.size))
		return EXIT_FAIL;
	int r = media_create_disk(&x->m, &c, &err);
	return done(x, r, err);
}

static int cmd_attach(struct ctx *x, int argc, char **argv)
{
	struct media_attach a = {.file = argv[0], .id = opt.id, .interface = opt.iface, .cdrom = opt.cdrom,
				 .readonly = opt.readonly, .copy = opt.copy};
	char *id = NULL, *err = NULL;
	int r = media_attach(&x->m, &a, &id, &err);
	if (r == 0 && !vm_quiet)
		puts(id);
	free(id);
	return done(x, r, err);
}

static int cmd_detach(struct ctx *x, int argc, char **argv)
{
	char *err = NULL;
	int r = media_detach(&x->m, argv[0], opt.force, &err);
	return done(x, r, err);
}

static int cmd_insert(struct ctx *x, int argc, char **argv)
{
	char *err = NULL;
	int r = media_insert(&x->m, argv[0], argv[1], opt.copy, opt.force, &err);
	return done(x, r, err);
}

static int cmd_eject(struct ctx *x, int argc, char **argv)
{
	char *err = NULL;
	int r = media_eject(&x->m, argv[0], opt.force, &err);
	return done(x, r, err);
}

static int write_seed(void *arg, const char *path, char **err)
{
	return cloudinit_write(arg, path, err);
}

/* cloud-init USER_DATA: a NoCloud seed Data/ID.iso (lib/cloudinit.c, the
 * same as vm-create --cloud-init) in drive ID, "seed" unless --id. */
static int cmd_cloud_init(struct ctx *x, int argc, char **argv)
{
	struct media_seed s = {.id = opt.id, .interface = opt.iface, .force = opt.force, .write = write_seed};
	char *err = NULL;
	if (media_seed_check(&x->m, &s, &err) < 0)
		return fail_r(x, -1, err);
	char *host = x->b.cfg.name ? xstrdup(x->b.cfg.name) : bundle_display_name(x->b.path);
	struct cloudinit_opts co = {.user_data = argv[0],
				    .meta_data = opt.meta_data,
				    .network_config = opt.network_config,
				    .ssh_keys = &opt.ssh_keys,
				    .instance_id = x->m.eff.uuid,
				    .hostname = host};
	struct cloudinit_seed seed;
	int r = cloudinit_load(&co, &seed, &err);
	free(host);
	if (r < 0)
		return fail_free(x, NULL, err);
	media_say(&x->m, "cloud-init seed: %s user-data", seed.kind);
	s.arg = &seed;
	r = media_cloud_init(&x->m, &s, &err);
	cloudinit_seed_free(&seed);
	return done(x, r, err);
}

static int cmd_resize(struct ctx *x, int argc, char **argv)
{
	const char *s = argv[1];
	bool grow_by = *s == '+';
	uint64_t size;
	if (!need_drive(x, argv[0]) || size_arg(x, s + grow_by, &size))
		return EXIT_FAIL;
	char *err = NULL;
	int r = media_resize(&x->m, argv[0], size, grow_by, opt.shrink, &err);
	return done(x, r, err);
}

static int snapshot_list_out(struct ctx *x)
{
	struct snapshot_drive *s;
	size_t n;
	char *err = NULL;
	if (snapshot_drives(&x->m, &s, &n, &err) < 0)
		return fail_r(x, -1, err);
	struct json_object *arr = snapshot_list(s, n);
	snapshot_drives_free(s, n);
	size_t k = json_object_array_length(arr);
	if (opt.json) {
		print_json(stdout, arr, CLI_JSON_AUTO);
	} else {
		size_t w = 4;
		for (size_t i = 0; i < k; i++) {
			size_t l = strlen(json_member_str(json_object_array_get_idx(arr, i), "name"));
			w = l > w ? l : w;
		}
		printf("%-*s  %-19s  %8s  %s\n", (int)w, "NAME", "DATE", "VM-STATE", "DRIVES");
		for (size_t i = 0; i < k; i++) {
			struct json_object *o = json_object_array_get_idx(arr, i), *drv = json_member(o, "drives");
			int64_t vs = json_object_get_int64(json_member(o, "vm_state_size"));
			char *h = vs ? disk_human_size((uint64_t)vs) : xstrdup("-");
			printf("%-*s  %-19s  %8s  ", (int)w, json_member_str(o, "name"), json_member_str(o, "date"), h);
			for (size_t j = 0; j < json_object_array_length(drv); j++)
				printf("%s%s", j ? "," : "", json_object_get_string(json_object_array_get_idx(drv, j)));
			putchar('\n');
			free(h);
		}
	}
	json_object_put(arr);
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
		tool_usage_error(&cli);
	if (!list && opt.json)
		vm_errx(EXIT_USAGE, "--json: only for snapshot list");
	if (list)
		return snapshot_list_out(x);
	if (!strcmp(op, "revert") && x->state == VM_STOPPED && suspend_exists(&x->b))
		return refuse_suspended(x, "snapshot revert");
	char *err = NULL;
	int (*fn)(struct media *, const char *, char **) = !strcmp(op, "create")   ? snapshot_create
							   : !strcmp(op, "revert") ? snapshot_revert
										   : snapshot_delete;
	int r = fn(&x->m, argv[1], &err);
	return done(x, r, err);
}

/* ---- libguestfs --------------------------------------------------------------- */

/* Start libguestfs on drive id (NULL: every drive with an image). */
static struct offline *gfs_open(struct ctx *x, const char *id, bool rw)
{
	struct offline_drive *od = xcalloc(x->m.eff.ndrives + 1, sizeof *od);
	struct strv paths = {0};
	size_t n = 0;
	for (size_t i = 0; i < x->m.eff.ndrives; i++) {
		const struct vm_drive *d = &x->m.eff.drives[i];
		if (id && strcmp(d->id, id))
			continue;
		if (rw && (d->readonly || media_is_cdrom(d))) {
			failx(x, "drive %s: read-only", d->id);
			goto fail;
		}
		if (!d->image) {
			if (id)
				failx(x, "drive %s: no medium", d->id);
			continue;
		}
		char *err = NULL, *p = media_drive_path(&x->m, d, &err);
		if (!p) {
			fail_free(x, NULL, err);
			goto fail;
		}
		if (!file_exists(p)) {
			failx(x, "drive %s: %s: %s", d->id, p, strerror(ENOENT));
			free(p);
			goto fail;
		}
		const char *fmt = media_drive_format(d, p, &err);
		strv_push(&paths, p);
		free(p);
		if (!fmt) {
			fail_free(x, NULL, err);
			goto fail;
		}
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
	struct json_object *oses = json_member(res, "operating_systems"), *fss = json_member(res, "filesystems");
	for (size_t i = 0; i < json_object_array_length(oses); i++) {
		struct json_object *os = json_object_array_get_idx(oses, i);
		const char *drv = json_member_str(os, "drive");
		printf("%s%s%s%s: %s", json_member_str(os, "root"), drv ? " (" : "", drv ? drv : "", drv ? ")" : "",
		       json_member_str(os, "type") ? json_member_str(os, "type") : "unknown");
		if (json_member_str(os, "distro"))
			printf(" %s", json_member_str(os, "distro"));
		printf(" %d.%d", json_object_get_int(json_member(os, "major_version")),
		       json_object_get_int(json_member(os, "minor_version")));
		if (json_member_str(os, "arch"))
			printf(" %s", json_member_str(os, "arch"));
		if (json_member_str(os, "product_name"))
			printf(" \"%s\"", json_member_str(os, "product_name"));
		if (json_member_str(os, "hostname"))
			printf(" hostname=%s", json_member_str(os, "hostname"));
		putchar('\n');
		struct json_object *mps = json_member(os, "mountpoints");
		for (size_t j = 0; j < json_object_array_length(mps); j++) {
			struct json_object *m = json_object_array_get_idx(mps, j);
			printf("  %s on %s\n", json_member_str(m, "device"), json_member_str(m, "mountpoint"));
		}
	}
	for (size_t i = 0; i < json_object_array_length(fss); i++) {
		struct json_object *f = json_object_array_get_idx(fss, i);
		const char *drv = json_member_str(f, "drive"), *label = json_member_str(f, "label");
		printf("filesystem %s%s%s%s: %s", json_member_str(f, "device"), drv ? " (" : "", drv ? drv : "",
		       drv ? ")" : "", json_member_str(f, "type"));
		if (label)
			printf(" label=%s", label);
		if (json_member(f, "size")) {
			char *h = disk_human_size((uint64_t)json_object_get_int64(json_member(f, "size")));
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
		print_json(stdout, res, CLI_JSON_AUTO);
	else
		print_inspect_text(res);
	if (json_object_array_length(json_member(res, "operating_systems")) == 0 && !vm_quiet) {
		size_t nfs = json_object_array_length(json_member(res, "filesystems"));
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

/* CHANGES_DISKS: it changes what a suspended guest's saved state expects of
 * its disks (their contents, size, media or the device list). */
enum { NEED_STOPPED = 1, LOCK = 2, CHANGES_DISKS = 4 };

static const struct subcmd {
	const char *name;
	int (*fn)(struct ctx *, int, char **);
	int min, max; /* arguments after the subcommand; max -1: any number */
	int flags;
	int opts[8]; /* the ids of its options (beyond --timeout and the common ones); 0 ends */
} subcmds[] = {
    {"list", cmd_list, 0, 0, 0, {'j'}},
    {"create", cmd_create, 1, 2, LOCK | CHANGES_DISKS, {'f', 'i', 'b'}},
    {"attach", cmd_attach, 1, 1, LOCK | CHANGES_DISKS, {'I', 'c', 'r', 'i', 'C'}},
    {"detach", cmd_detach, 1, 1, LOCK | CHANGES_DISKS, {'F'}},
    {"insert", cmd_insert, 2, 2, LOCK | CHANGES_DISKS, {'C', 'F'}},
    {"eject", cmd_eject, 1, 1, LOCK | CHANGES_DISKS, {'F'}},
    {"resize", cmd_resize, 2, 2, LOCK | CHANGES_DISKS, {'s'}},
    {"snapshot", cmd_snapshot, 1, 2, LOCK, {'j'}},
    {"inspect", cmd_inspect, 0, 0, NEED_STOPPED, {'j'}},
    {"ls", cmd_ls, 2, 2, NEED_STOPPED, {OPT_FS}},
    {"copy-in", cmd_copy_in, 3, -1, NEED_STOPPED | LOCK | CHANGES_DISKS, {OPT_FS}},
    {"copy-out", cmd_copy_out, 3, -1, NEED_STOPPED, {OPT_FS}},
    {"mkfs", cmd_mkfs, 2, 2, NEED_STOPPED | LOCK | CHANGES_DISKS, {'l', 'F'}},
    {"cloud-init", cmd_cloud_init, 1, 1, LOCK | CHANGES_DISKS, {OPT_META_DATA, OPT_SSH_KEY, OPT_NETWORK_CONFIG, 'I', 'i', 'F'}},
    {"mkiso", NULL, 2, -1, 0, {'l'}}, /* no bundle: main runs cmd_mkiso */
};

/* An option given that subcommand sc does not take is a usage error. */
static void check_opts(const struct subcmd *sc)
{
	for (const struct cli_option *o = options; o->kind != CLI_KIND_END; o++) {
		if (!opt.given[o->id] || o->id == 't')
			continue;
		size_t k = 0;
		while (sc->opts[k] && sc->opts[k] != o->id)
			k++;
		if (!sc->opts[k])
			vm_errx(EXIT_USAGE, "--%s: not an option of %s", o->name, sc->name);
	}
}

static int open_vm(struct ctx *x, const char *arg, const struct subcmd *sc)
{
	bundle_open_flags_or_die(&x->b, arg, (sc->flags & LOCK) ? BUNDLE_LOCK : 0);
	x->name = x->b.path;
	media_init(&x->m, &x->b, NULL);
	x->m.timeout_ms = opt.timeout_ms;
	x->m.interrupted = &interrupted;
	x->m.say = say;
	x->m.say_arg = (void *)x->name;
	struct vm_status st;
	if (runtime_state(&x->b, 5000, &st) < 0)
		return failx(x, "cannot read the runtime state");
	x->state = st.state;
	int status = 0;
	switch (st.state) {
	case VM_STOPPED:
		if ((sc->flags & CHANGES_DISKS) && suspend_exists(&x->b))
			status = refuse_suspended(x, sc->name);
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
	int ch;
	/* options may come anywhere (GNU permutation); "--" ends them */
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case 'j': opt.json = true; break;
		case 'f': opt.format = optarg; break;
		case 'i': opt.iface = optarg; break;
		case 'b': opt.backing = optarg; break;
		case 'I': opt.id = optarg; break;
		case 'c': opt.cdrom = true; break;
		case 'r': opt.readonly = true; break;
		case 'C': opt.copy = true; break;
		case 'F': opt.force = true; break;
		case 's': opt.shrink = true; break;
		case 'l': opt.label = optarg; break;
		case OPT_FS: opt.fs = optarg; break;
		case OPT_META_DATA: opt.meta_data = optarg; break;
		case OPT_SSH_KEY: strv_push(&opt.ssh_keys, optarg); break;
		case OPT_NETWORK_CONFIG: opt.network_config = optarg; break;
		case 't': opt.timeout_ms = tool_seconds("--timeout", optarg); break;
		}
		opt.given[ch] = true;
	}
	argc -= optind;
	argv += optind;

	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* mkiso OUT.iso PATH...: no bundle */
	bool mkiso = argc >= 1 && !strcmp(argv[0], "mkiso");
	if (argc < 2)
		tool_usage_error(&cli);
	const struct subcmd *sc = NULL;
	for (size_t i = 0; i < sizeof subcmds / sizeof subcmds[0]; i++)
		if (!strcmp(argv[!mkiso], subcmds[i].name) && (subcmds[i].fn == NULL) == mkiso)
			sc = &subcmds[i];
	if (!sc)
		vm_errx(EXIT_USAGE, "%s: unknown command (list, create, attach, detach, insert, eject, resize, "
				    "snapshot, inspect, ls, copy-in, copy-out, mkfs, cloud-init, mkiso)",
			argv[1]);
	int nargs = argc - 1 - !mkiso;
	if (nargs < sc->min || (sc->max >= 0 && nargs > sc->max))
		tool_usage_error(&cli);
	check_opts(sc);
	if (mkiso)
		return cmd_mkiso(nargs, argv + 1);
	if (opt.label && !strcmp(sc->name, "mkfs") && (!*opt.label || strpbrk(opt.label, "\n")))
		vm_errx(EXIT_USAGE, "--label: not a label");

	struct ctx x = {0};
	int status = open_vm(&x, argv[0], sc);
	x.m.q = x.q;
	if (status == 0)
		status = sc->fn(&x, nargs, argv + 2);
	if (interrupted && status == 0)
		status = failx(&x, "interrupted");
	media_free(&x.m);
	if (x.q)
		qmp_close(x.q);
	bundle_close(&x.b);
	strv_free(&opt.ssh_keys);
	return status;
}
