/* Drives and removable media of a VM, live and in the config (media.h). */
#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "disk.h"
#include "jsonobj.h"

void media_init(struct media *m, struct bundle *b, struct qmp *q)
{
	*m = (struct media){.b = b, .q = q, .timeout_ms = 120000};
	bundle_effective_config(b, &m->eff);
}

void media_free(struct media *m)
{
	media_drop_tmp(m);
	json_object_put(m->blocks);
	m->blocks = NULL;
	config_free(&m->eff);
}

bool media_live(const struct media *m)
{
	return m->q != NULL;
}

void media_say(struct media *m, const char *fmt, ...)
{
	if (!m->say)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) >= 0) {
		m->say(m->say_arg, s);
		free(s);
	}
	va_end(ap);
}

static bool interrupted(const struct media *m, char **err)
{
	if (m->interrupted && *m->interrupted) {
		vm_set_err(err, "interrupted");
		return true;
	}
	return false;
}

/* ---- the config ---------------------------------------------------------- */

bool media_is_cdrom(const struct vm_drive *d)
{
	return d->media && !strcmp(d->media, "cdrom");
}

bool media_removable(const struct vm_drive *d)
{
	return d->removable || media_is_cdrom(d);
}

const struct vm_drive *media_boot_disk(const struct vm_config *c)
{
	const struct vm_drive *best = NULL;
	int best_idx = INT_MAX;
	for (size_t i = 0; i < c->ndrives; i++) {
		const struct vm_drive *d = &c->drives[i];
		int idx = drive_boot_index(c, d);
		if (!media_is_cdrom(d) && idx < best_idx) {
			best = d;
			best_idx = idx;
		}
	}
	return best;
}

const struct vm_drive *media_drive(struct media *m, const char *id, char **err)
{
	const struct vm_drive *d = config_drive(&m->eff, id);
	if (d)
		return d;
	struct buf b = {0};
	for (size_t i = 0; i < m->eff.ndrives; i++)
		buf_printf(&b, "%s%s", i ? ", " : "", m->eff.drives[i].id);
	vm_set_err(err, "drive %s: no such drive (%s%s)", id, b.s ? "drives: " : "the VM has no drives",
		   b.s ? b.s : "");
	buf_free(&b);
	return NULL;
}

int media_new_id_ok(struct media *m, const char *id, char **err)
{
	if (!config_id_valid(id)) {
		vm_set_err(err, "drive %s: not a valid id (letters, digits, - and _)", id);
		return -1;
	}
	if (config_drive(&m->b->cfg, id)) {
		vm_set_err(err, "drive %s: already exists", id);
		return -1;
	}
	return 0;
}

static void refresh_eff(struct media *m)
{
	config_free(&m->eff);
	bundle_effective_config(m->b, &m->eff);
}

/* The first problem of the config with its defaults, or NULL. */
static char *effective_problem(struct media *m)
{
	struct vm_config eff;
	bundle_effective_config(m->b, &eff);
	char *problem = config_first_problem(&eff);
	config_free(&eff);
	return problem;
}

int media_save(struct media *m, char **err)
{
	char *problem = effective_problem(m);
	if (problem) {
		vm_set_err(err, "%s: %s", m->b->conf_path, problem);
		free(problem);
		return -1;
	}
	if (bundle_save(m->b, err) < 0)
		return -1;
	refresh_eff(m);
	return 0;
}

int media_set_key(struct media *m, const char *id, const char *key, const char *value, char **err)
{
	char *k = xasprintf("drive.%s.%s", id, key), *e = NULL;
	int r = value ? config_set(&m->b->cfg, k, value, &e) : config_unset(&m->b->cfg, k, &e);
	free(k);
	if (r < 0) {
		vm_set_err(err, "%s: %s", m->b->conf_path, e);
		free(e);
		return -1;
	}
	return 0;
}

static void remove_drive(struct media *m, const char *id)
{
	char *k = xasprintf("drive.%s", id), *e = NULL;
	config_unset(&m->b->cfg, k, &e);
	free(e);
	free(k);
}

bool media_seed_is_disk(const struct vm_config *eff, const char *interface)
{
	return !strcmp(interface ? interface : config_default_interface(eff, "disk"), "virtio");
}

int media_add_drive(struct media *m, const struct media_new_drive *nd, char **err)
{
	const char *id = nd->id;
	config_add_drive(&m->b->cfg, id);
	bool cd = nd->media && !strcmp(nd->media, "cdrom");
	const char *keys[] = {"image", "format", "media", "interface"};
	const char *vals[] = {nd->image, nd->format, nd->media, nd->interface};
	int r = 0;
	for (int i = 0; i < 4 && !r; i++)
		if (vals[i])
			r = media_set_key(m, id, keys[i], vals[i], err);
	if (!r && nd->readonly)
		r = media_set_key(m, id, "readonly", "true", err);
	if (!r && (cd || nd->removable))
		r = media_set_key(m, id, "removable", "true", err);
	if (!r && nd->bootindex) {
		char n[16];
		snprintf(n, sizeof n, "%d", nd->bootindex);
		r = media_set_key(m, id, "bootindex", n, err);
	}
	if (r) {
		remove_drive(m, id);
		return -1;
	}
	/* check the drive as it would be, before anything is made */
	char *problem = effective_problem(m);
	if (problem) {
		vm_set_err(err, "%s: %s", m->b->conf_path, problem);
		free(problem);
		remove_drive(m, id);
		return -1;
	}
	refresh_eff(m);
	return 0;
}

char *media_config_name(struct media *m, const char *file)
{
	char *real = realpath(file, NULL);
	if (!real)
		return NULL;
	char *rb = realpath(m->b->path, NULL);
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
	config_allow_path(&m->b->cfg, real); /* named by the user: allowed */
	return real;
}

char *media_drive_path(struct media *m, const struct vm_drive *d, char **err)
{
	char *e = NULL, *p = bundle_resolve(m->b, d->image, &e);
	if (!p) {
		vm_set_err(err, "drive %s: %s", d->id, e);
		free(e);
	}
	return p;
}

const char *media_drive_format(const struct vm_drive *d, const char *path, char **err)
{
	if (d->format)
		return d->format;
	char *e = NULL;
	const char *f = disk_probe(path, &e);
	if (!f) {
		vm_set_err(err, "drive %s: %s", d->id, e);
		free(e);
	}
	return f;
}

/* ---- temporary files ------------------------------------------------------ */

char *media_data_dir(struct media *m, char **err)
{
	char *d = path_join(m->b->path, "Data");
	if (mkdir(d, 0755) < 0 && errno != EEXIST) {
		vm_set_err(err, "%s: %s", d, strerror(errno));
		free(d);
		return NULL;
	}
	return d;
}

char *media_tmp_in_data(struct media *m, const char *base, char **err)
{
	char *d = media_data_dir(m, err);
	if (!d)
		return NULL;
	char *t = xasprintf("%s/.%s.tmp.%ld", d, base, (long)getpid());
	/* a run killed (SIGKILL) before its rename left .BASE.tmp.PID behind */
	char *name = xasprintf(".%s", base);
	bundle_drop_stale_tmp(m->b, "Data", name);
	free(name);
	free(d);
	free(m->tmp_file);
	m->tmp_file = xstrdup(t);
	return t;
}

void media_drop_tmp(struct media *m)
{
	if (m->tmp_file) {
		unlink(m->tmp_file);
		free(m->tmp_file);
		m->tmp_file = NULL;
	}
}

int media_place_tmp(struct media *m, const char *tmp, const char *final, char **err)
{
	if (interrupted(m, err))
		return -1;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		vm_set_err(err, "%s: %s", final, strerror(errno));
		return -1;
	}
	free(m->tmp_file);
	m->tmp_file = NULL;
	return 0;
}

int media_import_copy(struct media *m, const char *file, const char *format, char **name, char **path,
		      char **err)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	if (!*base || !bundle_name_is_safe(base)) {
		vm_set_err(err, "%s: not a file name", file);
		return -1;
	}
	char *d = media_data_dir(m, err);
	if (!d)
		return -1;
	char *final = path_join(d, base);
	free(d);
	if (file_exists(final)) {
		vm_set_err(err, "%s: already exists in Data/ (rename the file to import it)", final);
		free(final);
		return -1;
	}
	char *tmp = media_tmp_in_data(m, base, err), *e = NULL;
	if (!tmp) {
		free(final);
		return -1;
	}
	media_say(m, "copying %s into Data/", file);
	int r = -1;
	if (disk_convert(file, format, tmp, format, &e) < 0) {
		vm_set_err(err, "%s: %s", file, e);
		free(e);
	} else {
		r = media_place_tmp(m, tmp, final, err);
	}
	free(tmp);
	if (r < 0) {
		media_drop_tmp(m);
		free(final);
		return -1;
	}
	*name = xstrdup(base);
	*path = final;
	return 0;
}

/* ---- QMP ------------------------------------------------------------------- */

const char *media_qmp_desc(const char *e)
{
	const char *c = strstr(e, ": ");
	return c && c - e < 40 && !memchr(e, ' ', (size_t)(c - e)) ? c + 2 : e;
}

/* Run a command, args consumed; a QMP error as "PREFIX: desc" in *err. */
static int run(struct media *m, const char *cmd, struct json_object *args, struct json_object **ret,
	       char **err)
{
	int r = qmp_execute(m->q, cmd, args, MEDIA_QMP_MS, ret, err);
	json_object_put(args);
	return r;
}

/* The same, ignoring a failure (clean-up). */
static void run_quiet(struct media *m, const char *cmd, struct json_object *args)
{
	char *e = NULL;
	if (run(m, cmd, args, NULL, &e) < 0)
		free(e);
}

char *media_fdset(struct media *m, const char *path, bool ro, int *set, char **err)
{
	char *e = NULL;
	*set = -1;
	for (int pass = 0; pass < (ro ? 1 : 2); pass++) {
		int fd = open(path, (pass == 0 && !ro ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			vm_set_err(err, "%s: %s", path, strerror(errno));
			goto fail;
		}
		int id = qmp_add_fd(m->q, fd, *set, path, MEDIA_QMP_MS, &e);
		close(fd);
		if (id < 0) {
			vm_set_err(err, "add-fd: %s", e ? e : "failed");
			free(e);
			goto fail;
		}
		*set = id;
	}
	return xasprintf("/dev/fdset/%d", *set);
fail:
	media_fdset_release(m, *set);
	*set = -1;
	return NULL;
}

void media_fdset_release(struct media *m, int set)
{
	char *e = NULL;
	if (set >= 0 && qmp_remove_fdset(m->q, set, MEDIA_QMP_MS, &e) < 0)
		free(e);
}

/* QEMU names a file it was handed as /dev/fdset/N (vm-run's sandbox,
 * media_fdset); put back the path, kept as the set's opaque name, and note
 * the set in "utmkit-fdset" so a change or eject can drop it. */
static void fdset_names(struct media *m)
{
	struct json_object *sets = NULL;
	char *e = NULL;
	if (qmp_execute(m->q, "query-fdsets", NULL, MEDIA_QMP_MS, &sets, &e) < 0) {
		free(e);
		return;
	}
	size_t n = json_object_array_length(m->blocks);
	for (size_t i = 0; i < n; i++) {
		struct json_object *ins = json_member(json_object_array_get_idx(m->blocks, i), "inserted");
		struct json_object *img = json_member(ins, "image");
		const char *f = json_member_str(ins, "file");
		if (!f || !has_prefix(f, "/dev/fdset/"))
			continue;
		int id = atoi(f + strlen("/dev/fdset/"));
		const char *name = NULL;
		for (size_t j = 0; !name && j < json_object_array_length(sets); j++) {
			struct json_object *s = json_object_array_get_idx(sets, j), *fds = json_member(s, "fds");
			if (json_object_get_int(json_member(s, "fdset-id")) != id || !fds)
				continue;
			for (size_t k = 0; !name && k < json_object_array_length(fds); k++)
				name = json_member_str(json_object_array_get_idx(fds, k), "opaque");
		}
		json_object_object_add(ins, "utmkit-fdset", json_object_new_int(id));
		if (!name)
			continue;
		char *keep = xstrdup(name); /* name lives in sets */
		json_set_str(ins, "file", keep);
		const char *filename = json_member_str(img, "filename");
		if (filename && has_prefix(filename, "/dev/fdset/"))
			json_set_str(img, "filename", keep);
		free(keep);
	}
	json_object_put(sets);
}

struct json_object *media_block(struct media *m, const char *id, char **err)
{
	if (!m->blocks) {
		char *e = NULL;
		if (qmp_execute(m->q, "query-block", NULL, MEDIA_QMP_MS, &m->blocks, &e) < 0) {
			vm_set_err(err, "query-block: %s", e ? e : "failed");
			free(e);
			m->blocks = NULL;
			return NULL;
		}
		fdset_names(m);
	}
	char *bb = xasprintf("drive-%s", id), *qpath = xasprintf("/machine/peripheral/%s/", id);
	struct json_object *hit = NULL;
	size_t n = json_object_array_length(m->blocks);
	for (size_t i = 0; i < n && !hit; i++) {
		struct json_object *e = json_object_array_get_idx(m->blocks, i);
		const char *dev = json_member_str(e, "device"), *qdev = json_member_str(e, "qdev");
		if ((dev && !strcmp(dev, bb)) || (qdev && (!strcmp(qdev, id) || has_prefix(qdev, qpath))))
			hit = e;
	}
	free(bb);
	free(qpath);
	return hit;
}

int media_block_fdset(struct media *m, const char *id)
{
	char *e = NULL;
	struct json_object *v = json_member(json_member(media_block(m, id, &e), "inserted"), "utmkit-fdset");
	free(e);
	return v ? json_object_get_int(v) : -1;
}

/* Name the drive in eject / blockdev-change-medium: by its qdev id where
 * it has a device (QEMU 2.8+ "id"), else by its block backend ("device"). */
static void add_target(struct media *m, struct json_object *args, const struct vm_drive *d)
{
	char *e = NULL;
	struct json_object *blk = media_block(m, d->id, &e);
	free(e);
	const char *dev = blk ? json_member_str(blk, "device") : NULL;
	struct drive_device dd;
	drive_device(&m->eff, d, &dd);
	if (dd.driver || !dev || !*dev)
		json_set_str(args, "id", d->id);
	else
		json_set_str(args, "device", dev);
}

const char *media_free_pci_port(struct json_object *devices)
{
	size_t n = devices ? json_object_array_length(devices) : 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devices, i);
		struct json_object *br = json_member(d, "pci_bridge");
		if (!br)
			continue;
		struct json_object *sub = json_member(br, "devices");
		const char *qid = json_member_str(d, "qdev_id");
		if (qid && *qid && (!sub || json_object_array_length(sub) == 0))
			return qid;
		const char *deeper = media_free_pci_port(sub);
		if (deeper)
			return deeper;
	}
	return NULL;
}

/* A free PCI port for dev (the bus property set), or -1 with *err when a
 * PCIe machine has none. */
static int pick_pci_port(struct media *m, const struct vm_drive *d, struct json_object *dev, char **err)
{
	struct json_object *pci = NULL;
	char *e = NULL;
	if (qmp_execute(m->q, "query-pci", NULL, MEDIA_QMP_MS, &pci, &e) < 0) {
		vm_set_err(err, "query-pci: %s", e ? e : "failed");
		free(e);
		return -1;
	}
	const char *port = NULL;
	for (size_t b = 0; !port && b < json_object_array_length(pci); b++)
		port = media_free_pci_port(json_member(json_object_array_get_idx(pci, b), "devices"));
	if (port)
		json_set_str(dev, "bus", port);
	json_object_put(pci);
	if (!port && machine_is_pcie(&m->eff)) {
		vm_set_err(err, "drive %s: no free PCIe slot to hot-plug into (every root port of the %s machine "
				"is in use; add pcie-root-port devices with extra_args, or attach while stopped)",
			   d->id, m->eff.machine);
		return -1;
	}
	return 0;
}

int media_plug(struct media *m, const struct vm_drive *d, const char *path, const char *format, char **err)
{
	bool ro = d->readonly || media_is_cdrom(d);
	struct drive_device dd;
	drive_device(&m->eff, d, &dd);
	if (!dd.driver || !dd.hotplug) {
		vm_set_err(err, "drive %s: %s drives cannot be hot-plugged; use --interface virtio, scsi or usb, "
				"or attach while the VM is stopped",
			   d->id, d->interface);
		return -1;
	}
	if (dd.removable >= 0 && !path) {
		vm_set_err(err, "drive %s: an empty USB drive cannot be hot-plugged", d->id);
		return -1;
	}
	char *node = xasprintf("drive-%s", d->id);
	if (strlen(node) > 31) {
		free(node);
		vm_set_err(err, "drive %s: the id is too long to hot-plug (at most 25 characters)", d->id);
		return -1;
	}
	struct json_object *dev = json_object_new_object();
	json_set_str(dev, "driver", dd.driver);
	json_set_str(dev, "id", d->id);
	if (dd.serial) {
		char *serial = xasprintf("%.20s", d->id);
		json_set_str(dev, "serial", serial);
		free(serial);
	}
	if (dd.removable >= 0)
		json_set_bool(dev, "removable", dd.removable);
	if (dd.bus)
		json_set_str(dev, "bus", dd.bus);
	else if (dd.pci && pick_pci_port(m, d, dev, err) < 0)
		goto fail;
	char *e = NULL;
	if (path) {
		struct json_object *a = json_object_new_object(), *file = json_object_new_object();
		json_set_str(a, "driver", format);
		json_set_str(a, "node-name", node);
		json_set_bool(a, "read-only", ro);
		if (!ro) {
			json_set_str(a, "discard", "unmap");
			json_set_str(a, "detect-zeroes", "unmap");
		}
		int set;
		char *fdpath = media_fdset(m, path, ro, &set, err);
		if (!fdpath) {
			json_object_put(a);
			json_object_put(file);
			goto fail;
		}
		json_set_str(file, "driver", "file");
		json_set_str(file, "filename", fdpath);
		free(fdpath);
		json_object_object_add(a, "file", file);
		media_say(m, "drive %s: blockdev-add %s", d->id, path);
		if (run(m, "blockdev-add", a, NULL, &e) < 0) {
			media_fdset_release(m, set);
			vm_set_err(err, "drive %s: %s", d->id, media_qmp_desc(e));
			free(e);
			goto fail;
		}
		json_set_str(dev, "drive", node);
	}
	media_say(m, "drive %s: device_add %s", d->id, dd.driver);
	if (run(m, "device_add", json_object_get(dev), NULL, &e) < 0) {
		const char *desc = media_qmp_desc(e);
		if (strstr(desc, "does not support hotplugging"))
			vm_set_err(err, "drive %s: %s (no free hot-plug slot; attach while the VM is stopped)", d->id,
				   desc);
		else if (strstr(desc, "not found") && strstr(desc, "Bus"))
			vm_set_err(err, "drive %s: %s (the running VM has no such controller; attach while it is "
					"stopped)",
				   d->id, desc);
		else
			vm_set_err(err, "drive %s: %s", d->id, desc);
		free(e);
		if (path) {
			struct json_object *a = json_object_new_object();
			json_set_str(a, "node-name", node);
			run_quiet(m, "blockdev-del", a);
		}
		goto fail;
	}
	json_object_put(dev);
	free(node);
	json_object_put(m->blocks);
	m->blocks = NULL;
	return 0;
fail:
	json_object_put(dev);
	free(node);
	return -1;
}

int media_wait_event(struct media *m, const char *event, const char *key, const char *value, const char *key2,
		     const char *value2, char **err)
{
	double t0 = now_ms();
	for (;;) {
		long long spent = (long long)(now_ms() - t0);
		int left = m->timeout_ms < 0 ? -1 : (int)(m->timeout_ms - spent);
		if (m->timeout_ms >= 0 && left <= 0)
			return 0;
		struct json_object *ev = NULL;
		char *e = NULL;
		int r = qmp_wait_event(m->q, event, left, &ev, &e);
		if (r < 0) {
			vm_set_err(err, "%s", e ? e : "failed");
			free(e);
			return -1;
		}
		if (r == 0)
			continue;
		struct json_object *data = json_member(ev, "data");
		const char *v = json_member_str(data, key), *v2 = key2 ? json_member_str(data, key2) : NULL;
		bool done = v && !strcmp(v, value) && (!key2 || (v2 && !strcmp(v2, value2)));
		json_object_put(ev);
		if (done)
			return 1;
	}
}

int media_unplug(struct media *m, const struct vm_drive *d, char **err)
{
	char *e = NULL;
	int old = media_block_fdset(m, d->id);
	struct json_object *a = json_object_new_object();
	json_set_str(a, "id", d->id);
	media_say(m, "drive %s: device_del", d->id);
	if (run(m, "device_del", a, NULL, &e) < 0) {
		const char *desc = media_qmp_desc(e);
		if (strstr(desc, "not found"))
			vm_set_err(err, "drive %s: not in the running VM (%s)", d->id, desc);
		else
			vm_set_err(err, "drive %s: %s", d->id, desc);
		free(e);
		return -1;
	}
	int w = media_wait_event(m, "DEVICE_DELETED", "device", d->id, NULL, NULL, &e);
	if (w == 0) {
		vm_set_err(err, "drive %s: the guest did not release the device within %d s (it may still; "
				"the config is unchanged)",
			   d->id, m->timeout_ms / 1000);
		return MEDIA_TIMEOUT;
	}
	if (w < 0) {
		/* QEMU gone (killed) while we waited */
		vm_set_err(err, "drive %s: %s; the config is unchanged", d->id, e);
		free(e);
		return -1;
	}
	/* a drive that was hot-plugged left its blockdev-add node behind */
	char *node = xasprintf("drive-%s", d->id);
	a = json_object_new_object();
	json_set_str(a, "node-name", node);
	run_quiet(m, "blockdev-del", a);
	free(node);
	media_fdset_release(m, old);
	json_object_put(m->blocks);
	m->blocks = NULL;
	return 0;
}

/* A QMP refusal about the tray, said for people. */
static int tray_error(const struct vm_drive *d, char *e, const char *verb, char **err)
{
	const char *desc = media_qmp_desc(e);
	if (strstr(desc, "is locked"))
		vm_set_err(err, "drive %s: the guest has locked the tray (a mounted disc?); it was asked to release "
				"it; %s again once it has, or use --force",
			   d->id, verb);
	else if (strstr(desc, "not found"))
		vm_set_err(err, "drive %s: not in the running VM (%s)", d->id, desc);
	else
		vm_set_err(err, "drive %s: %s", d->id, desc);
	free(e);
	return -1;
}

int media_change(struct media *m, const struct vm_drive *d, const char *path, const char *format, bool force,
		 char **err)
{
	char *e = NULL;
	struct json_object *a = json_object_new_object();
	add_target(m, a, d);
	int set, old = media_block_fdset(m, d->id);
	char *fdpath = media_fdset(m, path, d->readonly || media_is_cdrom(d), &set, err);
	if (!fdpath) {
		json_object_put(a);
		return -1;
	}
	json_set_str(a, "filename", fdpath);
	free(fdpath);
	json_set_str(a, "format", format);
	json_set_str(a, "read-only-mode", "retain");
	if (force)
		json_set_bool(a, "force", true);
	media_say(m, "drive %s: blockdev-change-medium %s", d->id, path);
	int r = run(m, "blockdev-change-medium", a, NULL, &e);
	media_fdset_release(m, r < 0 ? set : old);
	if (r < 0)
		return tray_error(d, e, "insert", err);
	json_object_put(m->blocks);
	m->blocks = NULL;
	return 0;
}

int media_eject_live(struct media *m, const struct vm_drive *d, bool force, char **err)
{
	struct json_object *a = json_object_new_object();
	char *e = NULL;
	add_target(m, a, d);
	int old = media_block_fdset(m, d->id);
	if (force)
		json_set_bool(a, "force", true);
	media_say(m, "drive %s: eject", d->id);
	if (run(m, "eject", a, NULL, &e) < 0)
		return tray_error(d, e, "eject", err);
	media_fdset_release(m, old);
	json_object_put(m->blocks);
	m->blocks = NULL;
	return 0;
}

/* ---- create, attach, detach ------------------------------------------------ */

int media_create_disk(struct media *m, const struct media_create *c, char **err)
{
	const char *id = c->id, *format = c->format ? c->format : "qcow2";
	if (media_new_id_ok(m, id, err) < 0)
		return -1;
	char *backing = NULL, *e = NULL;
	const char *bformat = NULL;
	if (c->backing) {
		bformat = disk_probe(c->backing, &e);
		if (!bformat) {
			vm_set_err(err, "%s", e);
			free(e);
			return -1;
		}
		/* in Data/: by bare name, which qemu resolves beside the overlay */
		backing = media_config_name(m, c->backing);
		if (!backing) {
			vm_set_err(err, "%s: %s", c->backing, strerror(errno));
			return -1;
		}
	}
	char *base = xasprintf("%s.%s", id, !strcmp(format, "raw") ? "img" : "qcow2");
	char *dir = media_data_dir(m, err);
	char *final = dir ? path_join(dir, base) : NULL, *tmp = NULL;
	free(dir);
	int status = -1;
	if (!final)
		goto out;
	if (file_exists(final)) {
		vm_set_err(err, "drive %s: %s already exists", id, final);
		goto out;
	}
	struct media_new_drive nd = {.id = id, .image = base, .format = format, .media = "disk",
				     .interface = c->interface};
	if (media_add_drive(m, &nd, err) < 0)
		goto out;
	tmp = media_tmp_in_data(m, base, err);
	if (!tmp)
		goto out;
	media_say(m, "drive %s: qemu-img create %s", id, final);
	if (disk_create(tmp, format, c->size, backing, bformat, &e) < 0) {
		vm_set_err(err, "drive %s: %s", id, e);
		free(e);
		goto out;
	}
	if (media_place_tmp(m, tmp, final, err) < 0)
		goto out;
	if (media_live(m) && (status = media_plug(m, config_drive(&m->eff, id), final, format, err)) != 0) {
		unlink(final);
		goto out;
	}
	status = media_save(m, err);
	if (status && !media_live(m))
		unlink(final);
out:
	media_drop_tmp(m);
	free(tmp);
	free(final);
	free(base);
	free(backing);
	return status;
}

int media_attach(struct media *m, const struct media_attach *a, char **id_out, char **err)
{
	const char *arg = a->file;
	struct stat st;
	bool have_file = stat(arg, &st) == 0;
	if (!have_file && !(a->cdrom && config_id_valid(arg) && !strchr(arg, '/'))) {
		vm_set_err(err, "%s: %s", arg, strerror(errno));
		return -1;
	}
	if (!have_file && (a->copy || a->id)) {
		vm_set_err(err, "%s: %s", arg, strerror(ENOENT));
		return -1;
	}
	char *id = a->id ? xstrdup(a->id)
		   : have_file ? config_new_id(&m->b->cfg, SEC_DRIVE, a->cdrom ? "cd" : "hd")
			       : xstrdup(arg);
	int status = -1;
	char *name = NULL, *path = NULL, *e = NULL;
	const char *format = NULL;
	if (media_new_id_ok(m, id, err) < 0)
		goto out;
	if (have_file) {
		format = disk_probe(arg, &e);
		if (!format) {
			vm_set_err(err, "%s", e);
			free(e);
			goto out;
		}
		if (a->copy) {
			if (media_import_copy(m, arg, format, &name, &path, err) < 0)
				goto out;
		} else {
			name = media_config_name(m, arg);
			path = realpath(arg, NULL);
			if (!name || !path) {
				vm_set_err(err, "%s: %s", arg, strerror(errno));
				goto out;
			}
		}
	}
	struct media_new_drive nd = {.id = id, .image = name, .format = format,
				     .media = a->cdrom ? "cdrom" : "disk", .interface = a->interface,
				     .readonly = a->readonly};
	if (media_add_drive(m, &nd, err) < 0)
		goto undo;
	if (media_live(m) && media_plug(m, config_drive(&m->eff, id), path, format, err) != 0)
		goto undo;
	status = media_save(m, err);
	if (status == 0) {
		*id_out = id;
		id = NULL;
		goto out;
	}
undo:
	if (a->copy && path)
		unlink(path);
out:
	free(id);
	free(name);
	free(path);
	return status;
}

int media_detach(struct media *m, const char *id, bool force, char **err)
{
	const struct vm_drive *d = media_drive(m, id, err);
	if (!d)
		return -1;
	if (media_live(m)) {
		struct drive_device dd;
		drive_device(&m->eff, d, &dd);
		if (d == media_boot_disk(&m->eff) && !force) {
			vm_set_err(err, "drive %s: the boot disk of a running VM (stop it first, or --force)", d->id);
			return -1;
		}
		if (!dd.hotplug) {
			vm_set_err(err, "drive %s: %s drives cannot be unplugged while the VM runs; stop it first",
				   d->id, d->interface);
			return -1;
		}
		char *e = NULL;
		struct json_object *blk = media_block(m, d->id, &e);
		if (!blk && e) {
			vm_set_err(err, "%s", e);
			free(e);
			return -1;
		}
		if (blk) {
			int r = media_unplug(m, d, err);
			if (r)
				return r;
		} else {
			media_say(m, "drive %s is not in the running VM; only the config changes", d->id);
		}
	}
	if (d->image)
		media_say(m, "drive %s: the image %s stays", d->id, d->image);
	char *k = xasprintf("drive.%s", d->id), *e = NULL;
	int r = config_unset(&m->b->cfg, k, &e);
	free(k);
	if (r < 0) {
		vm_set_err(err, "%s: %s", m->b->conf_path, e);
		free(e);
		return -1;
	}
	return media_save(m, err);
}

/* ---- removable media -------------------------------------------------------- */

int media_insert(struct media *m, const char *id, const char *file, bool copy, bool force, char **err)
{
	const struct vm_drive *d = media_drive(m, id, err);
	if (!d)
		return -1;
	if (!media_removable(d)) {
		vm_set_err(err, "drive %s: not removable (a %s %s); use attach and detach", d->id, d->interface,
			   d->media);
		return -1;
	}
	char *e = NULL, *name = NULL, *path = NULL;
	const char *format = disk_probe(file, &e);
	if (!format) {
		vm_set_err(err, "%s", e);
		free(e);
		return -1;
	}
	if (copy) {
		if (media_import_copy(m, file, format, &name, &path, err) < 0)
			return -1;
	} else {
		name = media_config_name(m, file);
		path = realpath(file, NULL);
		if (!name || !path) {
			vm_set_err(err, "%s: %s", file, strerror(errno));
			free(name);
			free(path);
			return -1;
		}
	}
	int status = -1;
	if (media_live(m) && media_change(m, d, path, format, force, err) != 0)
		goto out;
	if (media_set_key(m, id, "image", name, err) < 0 || media_set_key(m, id, "format", format, err) < 0)
		goto out;
	status = media_save(m, err);
out:
	if (status && copy && path)
		unlink(path);
	free(name);
	free(path);
	return status;
}

int media_eject(struct media *m, const char *id, bool force, char **err)
{
	const struct vm_drive *d = media_drive(m, id, err);
	if (!d)
		return -1;
	if (!media_removable(d)) {
		vm_set_err(err, "drive %s: not removable (a %s %s); use detach", d->id, d->interface, d->media);
		return -1;
	}
	if (media_live(m) && media_eject_live(m, d, force, err) < 0)
		return -1;
	if (!d->image && !config_drive(&m->b->cfg, id)->format)
		return 0;
	if (media_set_key(m, id, "image", NULL, err) < 0 || media_set_key(m, id, "format", NULL, err) < 0)
		return -1;
	return media_save(m, err);
}

/* ---- resize ---------------------------------------------------------------- */

int media_resize(struct media *m, const char *id, uint64_t size, bool grow_by, bool shrink, char **err)
{
	const struct vm_drive *d = media_drive(m, id, err);
	if (!d)
		return -1;
	if (d->readonly || media_is_cdrom(d)) {
		vm_set_err(err, "drive %s: read-only; not resized", d->id);
		return -1;
	}
	if (!d->image) {
		vm_set_err(err, "drive %s: no image", d->id);
		return -1;
	}
	char *path = media_drive_path(m, d, err), *e = NULL;
	if (!path)
		return -1;
	int status = -1;
	struct disk_info info = {0};
	const char *node = NULL;
	if (media_live(m)) {
		struct json_object *ins = json_member(media_block(m, d->id, &e), "inserted");
		free(e);
		e = NULL;
		node = json_member_str(ins, "node-name");
		if (!node || disk_info_from_json(json_member(ins, "image"), &info, &e) < 0) {
			vm_set_err(err, "drive %s: not in the running VM", d->id);
			goto out;
		}
	} else {
		const char *fmt = media_drive_format(d, path, err);
		if (!fmt)
			goto out;
		if (disk_info(path, fmt, false, &info, &e) < 0) {
			vm_set_err(err, "drive %s: %s", d->id, e);
			goto out;
		}
	}
	if (grow_by)
		size += info.virtual_size;
	size = (size + 511) & ~511ULL; /* whole sectors */
	if (size < info.virtual_size && !shrink) {
		char *a = disk_human_size(size), *b = disk_human_size(info.virtual_size);
		vm_set_err(err, "drive %s: %s is smaller than its size %s; shrinking loses the data past the new end "
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
	if (media_live(m)) {
		struct json_object *a = json_object_new_object();
		json_set_str(a, "node-name", node);
		json_object_object_add(a, "size", json_object_new_int64((int64_t)size));
		media_say(m, "drive %s: block_resize %llu", d->id, (unsigned long long)size);
		if (run(m, "block_resize", a, NULL, &e) < 0) {
			vm_set_err(err, "drive %s: %s", d->id, media_qmp_desc(e));
			goto out;
		}
	} else if (disk_resize(path, info.format, size, shrink, &e) < 0) {
		vm_set_err(err, "drive %s: %s", d->id, e);
		goto out;
	}
	status = 0;
out:
	free(e);
	free(path);
	disk_info_free(&info);
	return status;
}

/* ---- cloud-init seeds ------------------------------------------------------- */

/* Is path the image drive d names? */
static bool drive_names(struct media *m, const struct vm_drive *d, const char *path)
{
	if (!d->image)
		return false;
	char *e = NULL, *p = bundle_resolve(m->b, d->image, &e);
	free(e);
	struct stat a, b;
	bool same = p && stat(p, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	free(p);
	return same;
}

/* Put the new seed into the running VM: a change of medium, or for a disk
 * (not removable) unplug and plug. */
static int seed_live(struct media *m, const struct vm_drive *d, bool new_drive, const char *path, bool force,
		     char **err)
{
	if (new_drive)
		return media_plug(m, d, path, "raw", err);
	if (media_removable(d))
		return media_change(m, d, path, "raw", force, err);
	char *e = NULL;
	struct json_object *blk = media_block(m, d->id, &e);
	free(e);
	if (blk) {
		int r = media_unplug(m, d, err);
		if (r)
			return r;
	}
	return media_plug(m, d, path, "raw", err);
}

int media_seed_check(struct media *m, const struct media_seed *s, char **err)
{
	const char *id = s->id ? s->id : "seed";
	if (!config_id_valid(id)) {
		vm_set_err(err, "drive %s: not a valid id (letters, digits, - and _)", id);
		return -1;
	}
	const struct vm_drive *d = config_drive(&m->eff, id);
	/* a seed is a removable drive, or a read-only disk (virtio) */
	if (d && !media_removable(d) && !d->readonly) {
		vm_set_err(err, "drive %s: not removable (a %s %s); give another --id", d->id, d->interface, d->media);
		return -1;
	}
	if (d && s->interface) {
		vm_set_err(err, "--interface: drive %s exists (change its interface with vm-config)", id);
		return -1;
	}
	return 0;
}

int media_cloud_init(struct media *m, const struct media_seed *s, char **err)
{
	if (media_seed_check(m, s, err) < 0)
		return -1;
	const char *id = s->id ? s->id : "seed";
	const struct vm_drive *d = config_drive(&m->eff, id);
	int status = -1;
	char *base = xasprintf("%s.iso", id), *dir = media_data_dir(m, err), *final = NULL, *backup = NULL;
	bool existed = false, new_drive = !d;
	if (!dir)
		goto out;
	final = path_join(dir, base);
	existed = file_exists(final);
	if (existed && !(d && drive_names(m, d, final))) {
		vm_set_err(err, "%s: already exists and is not the medium of drive %s; remove it, or give another --id",
			   final, id);
		goto out;
	}
	if (new_drive) {
		bool disk = media_seed_is_disk(&m->eff, s->interface);
		/* UTM's config.plist has no image format, and its removable drives
		 * are the ones without an image: there a CD-ROM seed is a CD drive
		 * with its image in Data/ (QEMU still sees a removable CD-ROM) */
		/* (nor a boot order: QEMU boots its drives in their order) */
		bool plist = m->b->format == BUNDLE_PLIST;
		struct media_new_drive nd = {.id = id, .image = base, .format = plist ? NULL : "raw",
					     .media = disk ? "disk" : "cdrom", .interface = s->interface,
					     .readonly = disk, .bootindex = plist ? 0 : MEDIA_SEED_BOOTINDEX};
		if (media_add_drive(m, &nd, err) < 0 ||
		    (plist && !disk && media_set_key(m, id, "removable", NULL, err) < 0))
			goto out;
	}
	if (existed) {
		/* the old seed, to put back if anything below fails */
		backup = xasprintf("%s/.%s.old.%ld", dir, base, (long)getpid());
		if (link(final, backup) < 0) {
			vm_set_err(err, "%s: %s", backup, strerror(errno));
			free(backup);
			backup = NULL;
			goto out;
		}
	}
	if (interrupted(m, err))
		goto out;
	media_say(m, "drive %s: cloud-init seed %s", id, final);
	if (s->write(s->arg, final, err) < 0)
		goto out;
	if (media_live(m)) {
		d = config_drive(&m->eff, id);
		int lr = seed_live(m, d, new_drive, final, s->force, err);
		if (lr) {
			status = lr;
			goto undo;
		}
	}
	bool plist = m->b->format == BUNDLE_PLIST;
	if (!new_drive && (media_set_key(m, id, "image", base, err) < 0 ||
			   media_set_key(m, id, "format", plist ? NULL : "raw", err) < 0))
		goto undo;
	if ((status = media_save(m, err)) == 0)
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
	return status;
}
