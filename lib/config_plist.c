/* UTM's config.plist codec (libplist): QEMU backend v4 read and write, the
 * Apple backend and legacy (ConfigurationVersion 2) bundles read-only.
 * Writes change the original document in place, only for the keys whose
 * model value differs, so every key the model does not know stays as it was. */
#include <ctype.h>
#include <plist/plist.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config_plist.h"
#include "dl.h"

/* ---- libplist, loaded on first use ----
 * Most bundles are vm.conf ones, and loading libplist (and the libm it pulls
 * in) at start costs every tool about half a millisecond, a sixth of
 * vm-qmp's one-shot budget. So it is opened when a config.plist is first
 * read or written, and its functions are called through this table. */
#define PLIST_FUNCS(X) \
	X(plist_array_append_item) \
	X(plist_array_get_item) \
	X(plist_array_get_size) \
	X(plist_array_remove_item) \
	X(plist_array_set_item) \
	X(plist_bool_val_is_true) \
	X(plist_copy) \
	X(plist_dict_get_item) \
	X(plist_dict_get_size) \
	X(plist_dict_new_iter) \
	X(plist_dict_next_item) \
	X(plist_dict_remove_item) \
	X(plist_dict_set_item) \
	X(plist_free) \
	X(plist_from_memory) \
	X(plist_get_node_type) \
	X(plist_get_string_ptr) \
	X(plist_get_uint_val) \
	X(plist_new_array) \
	X(plist_new_bool) \
	X(plist_new_dict) \
	X(plist_new_string) \
	X(plist_new_uint) \
	X(plist_to_xml) \
	X(plist_to_xml_free)

struct libplist_fns {
#define X(f) __typeof__(f) *f;
	PLIST_FUNCS(X)
#undef X
};

static struct libplist_fns plist_fns;
static void *plist_handle;

int config_plist_load(char **err)
{
	static const struct dl_sym syms[] = {
#define X(f) DL_SYM(plist_fns, f),
	    PLIST_FUNCS(X)
#undef X
	};
	if (plist_handle)
		return 0;
	char *e = NULL;
	plist_handle = dl_open_syms("libplist-2.0.so.3", "libplist", "Debian package libplist3", syms,
				    sizeof syms / sizeof syms[0], &e);
	if (!plist_handle) {
		vm_set_err(err, "cannot read or write config.plist: %s", e);
		free(e);
		return -1;
	}
	return 0;
}

/* Only reached with a document in hand or after config_plist_load. */
static const struct libplist_fns *libplist(void)
{
	return &plist_fns;
}
#define plist_array_append_item(...) (libplist()->plist_array_append_item(__VA_ARGS__))
#define plist_array_get_item(...) (libplist()->plist_array_get_item(__VA_ARGS__))
#define plist_array_get_size(...) (libplist()->plist_array_get_size(__VA_ARGS__))
#define plist_array_remove_item(...) (libplist()->plist_array_remove_item(__VA_ARGS__))
#define plist_array_set_item(...) (libplist()->plist_array_set_item(__VA_ARGS__))
#define plist_bool_val_is_true(...) (libplist()->plist_bool_val_is_true(__VA_ARGS__))
#define plist_copy(...) (libplist()->plist_copy(__VA_ARGS__))
#define plist_dict_get_item(...) (libplist()->plist_dict_get_item(__VA_ARGS__))
#define plist_dict_get_size(...) (libplist()->plist_dict_get_size(__VA_ARGS__))
#define plist_dict_new_iter(...) (libplist()->plist_dict_new_iter(__VA_ARGS__))
#define plist_dict_next_item(...) (libplist()->plist_dict_next_item(__VA_ARGS__))
#define plist_dict_remove_item(...) (libplist()->plist_dict_remove_item(__VA_ARGS__))
#define plist_dict_set_item(...) (libplist()->plist_dict_set_item(__VA_ARGS__))
#define plist_free(...) (libplist()->plist_free(__VA_ARGS__))
#define plist_from_memory(...) (libplist()->plist_from_memory(__VA_ARGS__))
#define plist_get_node_type(...) (libplist()->plist_get_node_type(__VA_ARGS__))
#define plist_get_string_ptr(...) (libplist()->plist_get_string_ptr(__VA_ARGS__))
#define plist_get_uint_val(...) (libplist()->plist_get_uint_val(__VA_ARGS__))
#define plist_new_array(...) (libplist()->plist_new_array(__VA_ARGS__))
#define plist_new_bool(...) (libplist()->plist_new_bool(__VA_ARGS__))
#define plist_new_dict(...) (libplist()->plist_new_dict(__VA_ARGS__))
#define plist_new_string(...) (libplist()->plist_new_string(__VA_ARGS__))
#define plist_new_uint(...) (libplist()->plist_new_uint(__VA_ARGS__))
#define plist_to_xml(...) (libplist()->plist_to_xml(__VA_ARGS__))
#define plist_to_xml_free(...) (libplist()->plist_to_xml_free(__VA_ARGS__))

/* ---- reading helpers: typed access with key paths in errors ---- */

/* The drive ids taken so far: a hash set, so that reading n drives costs n
 * look-ups, not n^2 string compares (config_drive searches a list). */
struct idset {
	const char **v; /* borrowed from the model */
	size_t n, cap;  /* cap: 0 or a power of two */
};

static size_t id_hash(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static bool idset_has(const struct idset *set, const char *id)
{
	if (!set->cap)
		return false;
	for (size_t i = id_hash(id) & (set->cap - 1); set->v[i]; i = (i + 1) & (set->cap - 1))
		if (!strcmp(set->v[i], id))
			return true;
	return false;
}

static void idset_put(const char **v, size_t cap, const char *id)
{
	size_t i = id_hash(id) & (cap - 1);
	while (v[i])
		i = (i + 1) & (cap - 1);
	v[i] = id;
}

static void idset_add(struct idset *set, const char *id)
{
	if (2 * (set->n + 1) > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 16;
		const char **v = xcalloc(cap, sizeof *v);
		for (size_t i = 0; i < set->cap; i++)
			if (set->v[i])
				idset_put(v, cap, set->v[i]);
		free(set->v);
		set->v = v;
		set->cap = cap;
	}
	idset_put(set->v, set->cap, id);
	set->n++;
}

struct rd {
	const char *path; /* file name for messages */
	char *err;        /* first error */
	struct plist_meta *meta;
	struct idset drive_ids;
};

static void rd_fail(struct rd *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rd_fail(struct rd *r, const char *key, const char *fmt, ...)
{
	if (r->err)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	r->err = xasprintf("%s: %s: %s", r->path, key, msg ? msg : "error");
	free(msg);
}

static const char *type_name(plist_t n)
{
	switch (plist_get_node_type(n)) {
	case PLIST_BOOLEAN:
		return "a boolean";
	case PLIST_UINT:
		return "an integer";
	case PLIST_REAL:
		return "a real";
	case PLIST_STRING:
		return "a string";
	case PLIST_ARRAY:
		return "an array";
	case PLIST_DICT:
		return "a dictionary";
	case PLIST_DATE:
		return "a date";
	case PLIST_DATA:
		return "data";
	default:
		return "another type";
	}
}

/* Child of a dict, checked against a type; NULL if absent (or wrong type: error). */
static plist_t get_typed(struct rd *r, plist_t dict, const char *kp, const char *key, plist_type t, bool required)
{
	char *full = *kp ? xasprintf("%s.%s", kp, key) : xstrdup(key);
	plist_t n = dict ? plist_dict_get_item(dict, key) : NULL;
	if (!n) {
		if (required)
			rd_fail(r, full, "missing (UTM requires it)");
	} else if (plist_get_node_type(n) != t) {
		static const char *const names[] = {
		    [PLIST_BOOLEAN] = "a boolean", [PLIST_UINT] = "an integer", [PLIST_STRING] = "a string",
		    [PLIST_ARRAY] = "an array",	   [PLIST_DICT] = "a dictionary"};
		rd_fail(r, full, "expected %s, found %s", (size_t)t < sizeof names / sizeof names[0] && names[t] ? names[t] : "?",
			type_name(n));
		n = NULL;
	}
	free(full);
	return n;
}

static const char *get_str(struct rd *r, plist_t d, const char *kp, const char *key, bool required)
{
	plist_t n = get_typed(r, d, kp, key, PLIST_STRING, required);
	return n ? plist_get_string_ptr(n, NULL) : NULL;
}

static bool get_bool(struct rd *r, plist_t d, const char *kp, const char *key, bool dflt)
{
	plist_t n = get_typed(r, d, kp, key, PLIST_BOOLEAN, false);
	return n ? plist_bool_val_is_true(n) : dflt;
}

static bool get_int(struct rd *r, plist_t d, const char *kp, const char *key, bool required, int64_t *out)
{
	plist_t n = get_typed(r, d, kp, key, PLIST_UINT, required);
	if (!n)
		return false;
	uint64_t v = 0;
	plist_get_uint_val(n, &v);
	*out = (int64_t)v;
	return true;
}

/* Integers from a plist are 64-bit (libplist keeps -1 as 2^64-1: shown
 * signed, as written); the model's fields have ranges
 * (config.c), and a value outside one would not survive a copy through
 * vm.conf. CPUCount is clamped to the model's 1024; the rest are errors. */
static void set_cpus(struct vm_config *c, int64_t v)
{
	c->cpus = (uint64_t)v > 1024 ? 1024 : v;
}

static void set_memory(struct rd *r, struct vm_config *c, const char *kp, int64_t v)
{
	if (v < 1 || v > (16LL << 20))
		rd_fail(r, kp, "%lld MiB is out of range", (long long)v);
	else
		c->memory = v;
}

static void set_str(char **p, const char *v)
{
	free(*p);
	*p = v ? xstrdup(v) : NULL;
}

/* Store a value through the field table (checks enums), key path in errors. */
static void set_field(struct rd *r, void *base, enum section_kind k, const char *field, const char *kp,
		      const char *value)
{
	for (const struct field *f = config_sections[k].fields; f->key; f++) {
		if (strcmp(f->key, field))
			continue;
		char *e = NULL;
		if (config_field_set(base, f, kp, value, &e) < 0) {
			if (!r->err)
				r->err = xasprintf("%s: %s", r->path, e);
			free(e);
		}
		return;
	}
}

static char *lower(const char *s)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

void config_split_utm_args(const char *s, struct strv *out)
{
	struct buf w = {0};
	bool inq = false, have = false;
	for (const char *p = s;; p++) {
		if (!*p || (!inq && isspace((unsigned char)*p))) {
			if (have) {
				strv_push(out, w.s ? w.s : "");
				buf_free(&w);
				w = (struct buf){0};
				have = false;
			}
			if (!*p)
				break;
			continue;
		}
		have = true;
		if (*p == '"') {
			inq = !inq;
			if (!w.s)
				buf_add(&w, "", 0);
			continue;
		}
		buf_add(&w, p, 1);
	}
	buf_free(&w);
}

/* The model's drive id for a UTM Identifier: QEMU ids start with a letter. */
static char *drive_id_of(const char *ident)
{
	if (isalpha((unsigned char)ident[0]))
		return xstrdup(ident);
	return xasprintf("drive%s", ident);
}

/* An id for a drive whose own name cannot be used: "PREFIXi", or when a
 * named drive took that, the first free "PREFIXn" (ids must be unique, or the
 * model does not survive a copy through vm.conf). */
static char *fallback_drive_id(const struct rd *r, const char *prefix, unsigned i)
{
	char *id = xasprintf("%s%u", prefix, i);
	if (!idset_has(&r->drive_ids, id))
		return id;
	for (unsigned k = 0;; k++) {
		free(id);
		id = xasprintf("%s%u", prefix, k);
		if (!idset_has(&r->drive_ids, id))
			return id;
	}
}

static struct vm_drive *add_drive(struct rd *r, struct vm_config *c, const char *id)
{
	struct vm_drive *vd = config_add_drive(c, id);
	idset_add(&r->drive_ids, vd->id);
	return vd;
}

static const char *const ten_sections[] = {"Information", "System", "QEMU", "Input", "Sharing",
					   "Display", "Drive", "Network", "Serial", "Sound", NULL};

/* Sound chips built into the machine (mac99's screamer, q800's asc) are no
 * -device: QEMU adds them itself, so the model keeps no sound device. */
static void set_sound(struct rd *r, struct vm_config *c, const char *kp, const char *hw)
{
	if (hw && (!strcmp(hw, "screamer") || !strcmp(hw, "asc"))) {
		buf_printf(&r->meta->notices, "%s: %s: %s is built into the machine; no sound device added\n",
			   r->path, kp, hw);
		return;
	}
	set_str(&c->sound, hw);
}

/* ---- QEMU v4 ---- */

static void decode_qemu(struct rd *r, plist_t root, struct vm_config *c)
{
	for (int i = 0; ten_sections[i]; i++)
		get_typed(r, root, "", ten_sections[i], i < 5 ? PLIST_DICT : PLIST_ARRAY, true);
	if (r->err)
		return;
	plist_t info = plist_dict_get_item(root, "Information");
	set_str(&c->name, get_str(r, info, "Information", "Name", true));
	set_str(&c->uuid, get_str(r, info, "Information", "UUID", true));
	set_str(&c->notes, get_str(r, info, "Information", "Notes", false));

	plist_t sys = plist_dict_get_item(root, "System");
	const char *s = get_str(r, sys, "System", "Architecture", true);
	if (s)
		set_field(r, c, SEC_TOP, "arch", "System.Architecture", s);
	set_str(&c->machine, get_str(r, sys, "System", "Target", true));
	if (c->machine && (!*c->machine || strpbrk(c->machine, ", ")))
		rd_fail(r, "System.Target", "'%s' is not a machine type", c->machine);
	set_str(&c->cpu, get_str(r, sys, "System", "CPU", false));
	const char *fl[2] = {"CPUFlagsAdd", "CPUFlagsRemove"};
	for (int k = 0; k < 2; k++) {
		plist_t a = get_typed(r, sys, "System", fl[k], PLIST_ARRAY, false);
		for (uint32_t i = 0; a && i < plist_array_get_size(a); i++) {
			plist_t it = plist_array_get_item(a, i);
			if (plist_get_node_type(it) != PLIST_STRING) {
				char *kp = xasprintf("System.%s[%u]", fl[k], i);
				rd_fail(r, kp, "expected a string, found %s", type_name(it));
				free(kp);
				continue;
			}
			strv_pushf(&c->cpu_flags, "%c%s", k ? '-' : '+', plist_get_string_ptr(it, NULL));
		}
	}
	int64_t v;
	if (get_int(r, sys, "System", "CPUCount", false, &v))
		set_cpus(c, v);
	if (get_int(r, sys, "System", "MemorySize", true, &v))
		set_memory(r, c, "System.MemorySize", v);
	if (get_int(r, sys, "System", "JITCacheSize", false, &v)) {
		if ((uint64_t)v > (1 << 20))
			rd_fail(r, "System.JITCacheSize", "%lld MiB is out of range", (long long)v);
		else
			c->tcg_tb_size = v;
	}
	if (get_bool(r, sys, "System", "ForceMulticore", false))
		set_str(&c->tcg_thread, "multi");

	plist_t q = plist_dict_get_item(root, "QEMU");
	bool uefi = get_bool(r, q, "QEMU", "UEFIBoot", false);
	c->rng = get_bool(r, q, "QEMU", "RNGDevice", false);
	c->balloon = get_bool(r, q, "QEMU", "BalloonDevice", false);
	c->tpm = get_bool(r, q, "QEMU", "TPMDevice", false);
	c->rtc_localtime = get_bool(r, q, "QEMU", "RTCLocalTime", false);
	s = get_str(r, q, "QEMU", "MachinePropertyOverride", false);
	if (s && *s)
		set_str(&c->machine_props, s);
	plist_t aa = get_typed(r, q, "QEMU", "AdditionalArguments", PLIST_ARRAY, false);
	for (uint32_t i = 0; aa && i < plist_array_get_size(aa); i++) {
		plist_t it = plist_array_get_item(aa, i);
		if (plist_get_node_type(it) != PLIST_STRING) {
			char *kp = xasprintf("QEMU.AdditionalArguments[%u]", i);
			rd_fail(r, kp, "expected a string, found %s", type_name(it));
			free(kp);
			continue;
		}
		config_split_utm_args(plist_get_string_ptr(it, NULL), &c->extra_args);
	}

	plist_t in = plist_dict_get_item(root, "Input");
	s = get_str(r, in, "Input", "UsbBusSupport", false);
	if (s) {
		set_field(r, c, SEC_TOP, "usb", "Input.UsbBusSupport", !strcmp(s, "Disabled") ? "none" : s);
		c->usb_tablet = strcmp(c->usb ? c->usb : "none", "none") != 0;
	}

	plist_t disp = plist_dict_get_item(root, "Display");
	if (plist_array_get_size(disp)) {
		plist_t d0 = plist_array_get_item(disp, 0);
		if (plist_get_node_type(d0) != PLIST_DICT)
			rd_fail(r, "Display[0]", "expected a dictionary, found %s", type_name(d0));
		else
			set_str(&c->display_device, get_str(r, d0, "Display[0]", "Hardware", true));
	}
	plist_t snd = plist_dict_get_item(root, "Sound");
	if (plist_array_get_size(snd)) {
		plist_t s0 = plist_array_get_item(snd, 0);
		if (plist_get_node_type(s0) != PLIST_DICT)
			rd_fail(r, "Sound[0]", "expected a dictionary, found %s", type_name(s0));
		else
			set_sound(r, c, "Sound[0].Hardware", get_str(r, s0, "Sound[0]", "Hardware", true));
	}

	plist_t drv = plist_dict_get_item(root, "Drive");
	for (uint32_t i = 0; i < plist_array_get_size(drv) && !r->err; i++) {
		char *kp = xasprintf("Drive[%u]", i);
		plist_t d = plist_array_get_item(drv, i);
		if (plist_get_node_type(d) != PLIST_DICT) {
			rd_fail(r, kp, "expected a dictionary, found %s", type_name(d));
			free(kp);
			break;
		}
		const char *ident = get_str(r, d, kp, "Identifier", true);
		const char *img = get_str(r, d, kp, "ImageName", false);
		const char *type = get_str(r, d, kp, "ImageType", true);
		const char *iface = get_str(r, d, kp, "Interface", false);
		if (r->err) {
			free(kp);
			break;
		}
		char **single = !strcmp(type, "BIOS")	       ? &c->bios
				: !strcmp(type, "LinuxKernel") ? &c->kernel
				: !strcmp(type, "LinuxInitrd") ? &c->initrd
				: !strcmp(type, "LinuxDTB")    ? &c->dtb
							       : NULL;
		if (single) {
			if (img)
				set_str(single, img);
			free(kp);
			continue;
		}
		if (strcmp(type, "Disk") && strcmp(type, "CD") && strcmp(type, "None")) {
			rd_fail(r, kp, "ImageType: '%s' is not one of: None, Disk, CD, BIOS, LinuxKernel, LinuxInitrd, LinuxDTB",
				type);
			free(kp);
			break;
		}
		char *id = drive_id_of(ident);
		if (!config_id_valid(id) || idset_has(&r->drive_ids, id)) {
			rd_fail(r, kp, "Identifier: '%s' is %s", ident,
				idset_has(&r->drive_ids, id) ? "used twice" : "not a usable id");
			free(id);
			free(kp);
			break;
		}
		struct vm_drive *vd = add_drive(r, c, id);
		free(id);
		set_str(&vd->image, img);
		vd->removable = !img;
		set_str(&vd->media, !strcmp(type, "CD") ? "cdrom" : !strcmp(type, "None") ? "none" : "disk");
		if (iface) {
			static const char *const map[][2] = {
			    {"IDE", "ide"},	   {"SCSI", "scsi"},   {"VirtIO", "virtio"}, {"NVMe", "nvme"},
			    {"USB", "usb"},	   {"Floppy", "floppy"}, {"PFlash", "pflash"}, {"SD", "sd"},
			    {"MTD", "none"},	   {"None", "none"}};
			size_t j;
			for (j = 0; j < sizeof map / sizeof map[0]; j++)
				if (!strcmp(map[j][0], iface))
					break;
			if (j == sizeof map / sizeof map[0])
				rd_fail(r, kp, "Interface: '%s' is not one of: None, IDE, SCSI, SD, MTD, Floppy, PFlash, VirtIO, NVMe, USB",
					iface);
			else
				set_str(&vd->interface, map[j][1]);
		}
		vd->readonly = get_bool(r, d, kp, "ReadOnly", vd->removable);
		free(kp);
	}

	/* UTM: UEFI only when no BIOS/LinuxKernel image and no PFlash disk */
	bool pflash = false;
	for (size_t i = 0; i < c->ndrives; i++)
		pflash |= c->drives[i].interface && !strcmp(c->drives[i].interface, "pflash");
	if (uefi && !c->bios && !c->kernel && !pflash) {
		set_str(&c->firmware, "uefi");
		set_str(&c->efi_vars, "efi_vars.fd");
	}

	plist_t net = plist_dict_get_item(root, "Network");
	for (uint32_t i = 0; i < plist_array_get_size(net) && !r->err; i++) {
		char *kp = xasprintf("Network[%u]", i);
		plist_t d = plist_array_get_item(net, i);
		if (plist_get_node_type(d) != PLIST_DICT) {
			rd_fail(r, kp, "expected a dictionary, found %s", type_name(d));
			free(kp);
			break;
		}
		char *id = xasprintf("net%u", i);
		struct vm_net *n = config_add_net(c, id);
		free(id);
		const char *mode = get_str(r, d, kp, "Mode", true);
		if (mode && strcmp(mode, "Emulated")) {
			if (strcmp(mode, "Shared") && strcmp(mode, "Host") && strcmp(mode, "Bridged"))
				rd_fail(r, kp, "Mode: '%s' is not one of: Emulated, Shared, Host, Bridged", mode);
			else
				buf_printf(&r->meta->notices,
					   "%s: %s.Mode: %s is macOS vmnet; using user-mode networking\n", r->path, kp,
					   mode);
		}
		set_str(&n->mode, "user");
		set_str(&n->model, get_str(r, d, kp, "Hardware", false));
		const char *mac = get_str(r, d, kp, "MacAddress", false);
		if (mac) {
			free(n->mac);
			n->mac = lower(mac);
		}
		n->isolate = get_bool(r, d, kp, "IsolateFromHost", false);
		plist_t pf = get_typed(r, d, kp, "PortForward", PLIST_ARRAY, false);
		for (uint32_t j = 0; pf && j < plist_array_get_size(pf) && !r->err; j++) {
			char *pkp = xasprintf("%s.PortForward[%u]", kp, j);
			plist_t f = plist_array_get_item(pf, j);
			if (plist_get_node_type(f) != PLIST_DICT) {
				rd_fail(r, pkp, "expected a dictionary, found %s", type_name(f));
				free(pkp);
				break;
			}
			bool legacy = !plist_dict_get_item(f, "Protocol") && plist_dict_get_item(f, "protocol");
			const char *proto = get_str(r, f, pkp, legacy ? "protocol" : "Protocol", true);
			const char *ha = get_str(r, f, pkp, legacy ? "hostAddress" : "HostAddress", false);
			const char *ga = get_str(r, f, pkp, legacy ? "guestAddress" : "GuestAddress", false);
			int64_t hp = 0, gp = 0;
			get_int(r, f, pkp, legacy ? "hostPort" : "HostPort", true, &hp);
			get_int(r, f, pkp, legacy ? "guestPort" : "GuestPort", true, &gp);
			if (!r->err) {
				char *pl = lower(proto);
				strv_pushf(&n->forward, "%s:%s:%lld-%s:%lld", pl, ha ? ha : "", (long long)hp,
					   ga ? ga : "", (long long)gp);
				free(pl);
			}
			free(pkp);
		}
		free(kp);
	}

	plist_t ser = plist_dict_get_item(root, "Serial");
	for (uint32_t i = 0; i < plist_array_get_size(ser) && !r->err; i++) {
		char *kp = xasprintf("Serial[%u]", i);
		plist_t d = plist_array_get_item(ser, i);
		if (plist_get_node_type(d) != PLIST_DICT) {
			rd_fail(r, kp, "expected a dictionary, found %s", type_name(d));
			free(kp);
			break;
		}
		char *id = xasprintf("serial%u", i);
		struct vm_serial *sp = config_add_serial(c, id);
		free(id);
		const char *mode = get_str(r, d, kp, "Mode", true);
		const char *target = get_str(r, d, kp, "Target", true);
		if (r->err) {
			free(kp);
			break;
		}
		if (!strcmp(mode, "Terminal"))
			set_str(&sp->mode, "socket");
		else if (!strcmp(mode, "Ptty"))
			set_str(&sp->mode, "pty");
		else if (!strcmp(mode, "TcpServer") || !strcmp(mode, "TcpClient")) {
			set_str(&sp->mode, "socket");
			buf_printf(&r->meta->notices, "%s: %s.Mode: %s becomes a unix socket in the runtime folder\n",
				   r->path, kp, mode);
		} else
			rd_fail(r, kp, "Mode: '%s' is not one of: Terminal, TcpClient, TcpServer, Ptty", mode);
		if (!strcmp(target, "Auto") || !strcmp(target, "Manual"))
			set_str(&sp->target, "console");
		else if (!strcmp(target, "Monitor"))
			set_str(&sp->target, "monitor");
		else if (!strcmp(target, "GDB"))
			set_str(&sp->target, "gdb");
		else
			rd_fail(r, kp, "Target: '%s' is not one of: Auto, Manual, GDB, Monitor", target);
		free(kp);
	}
}

/* A "-append X" pair in extra_args is the kernel command line. */
static void extract_append(struct vm_config *c)
{
	for (size_t i = 0; i + 1 < c->extra_args.n; i++) {
		if (strcmp(c->extra_args.v[i], "-append") || c->append)
			continue;
		c->append = c->extra_args.v[i + 1];
		free(c->extra_args.v[i]);
		memmove(&c->extra_args.v[i], &c->extra_args.v[i + 2], (c->extra_args.n - i - 1) * sizeof(char *));
		c->extra_args.n -= 2;
		return;
	}
}

/* ---- Apple backend ---- */

static void decode_apple(struct rd *r, plist_t root, struct vm_config *c)
{
	plist_t info = get_typed(r, root, "", "Information", PLIST_DICT, true);
	plist_t sys = get_typed(r, root, "", "System", PLIST_DICT, true);
	if (r->err)
		return;
	set_str(&c->name, get_str(r, info, "Information", "Name", false));
	set_str(&c->uuid, get_str(r, info, "Information", "UUID", false));
	set_str(&c->notes, get_str(r, info, "Information", "Notes", false));
	const char *a = get_str(r, sys, "System", "Architecture", false);
	if (a)
		set_field(r, c, SEC_TOP, "arch", "System.Architecture", a);
	set_str(&c->machine, "virt");
	int64_t v;
	if (get_int(r, sys, "System", "CPUCount", false, &v))
		set_cpus(c, v);
	if (get_int(r, sys, "System", "MemorySize", false, &v))
		set_memory(r, c, "System.MemorySize", v);
	plist_t boot = get_typed(r, sys, "System", "Boot", PLIST_DICT, false);
	const char *os = get_str(r, boot, "System.Boot", "OperatingSystem", false);
	set_str(&c->kernel, get_str(r, boot, "System.Boot", "LinuxKernelPath", false));
	set_str(&c->initrd, get_str(r, boot, "System.Boot", "LinuxInitialRamdiskPath", false));
	set_str(&c->append, get_str(r, boot, "System.Boot", "LinuxCommandLine", false));
	if (get_bool(r, boot, "System.Boot", "UEFIBoot", false) && !c->kernel) {
		const char *ev = get_str(r, boot, "System.Boot", "EfiVariableStoragePath", false);
		set_str(&c->firmware, "uefi");
		set_str(&c->efi_vars, ev && *ev ? ev : "efi_vars.fd");
	}
	if (os && !strcmp(os, "macOS"))
		r->meta->not_runnable =
		    xasprintf("%s: a macOS guest needs Apple's Virtualization.framework; it cannot run on QEMU", r->path);
	plist_t virt = plist_dict_get_item(root, "Virtualization");
	if (virt && plist_get_node_type(virt) == PLIST_DICT) {
		c->balloon = get_bool(r, virt, "Virtualization", "Balloon", false);
		c->rng = get_bool(r, virt, "Virtualization", "Entropy", false);
		if (get_bool(r, virt, "Virtualization", "Audio", false))
			set_str(&c->sound, "intel-hda");
	}
	plist_t drv = get_typed(r, root, "", "Drive", PLIST_ARRAY, false);
	for (uint32_t i = 0; drv && i < plist_array_get_size(drv) && !r->err; i++) {
		char *kp = xasprintf("Drive[%u]", i);
		plist_t d = plist_array_get_item(drv, i);
		if (plist_get_node_type(d) != PLIST_DICT) {
			rd_fail(r, kp, "expected a dictionary, found %s", type_name(d));
			free(kp);
			break;
		}
		const char *ident = get_str(r, d, kp, "Identifier", false);
		char *id = ident ? drive_id_of(ident) : NULL;
		if (!id || !config_id_valid(id) || idset_has(&r->drive_ids, id)) {
			free(id);
			id = fallback_drive_id(r, "disk", i);
		}
		struct vm_drive *vd = add_drive(r, c, id);
		free(id);
		set_str(&vd->image, get_str(r, d, kp, "ImageName", false));
		vd->removable = !vd->image;
		set_str(&vd->media, "disk");
		set_str(&vd->interface, get_bool(r, d, kp, "Nvme", false) ? "nvme" : "virtio");
		vd->readonly = get_bool(r, d, kp, "ReadOnly", false);
		free(kp);
	}
	plist_t net = get_typed(r, root, "", "Network", PLIST_ARRAY, false);
	for (uint32_t i = 0; net && i < plist_array_get_size(net) && !r->err; i++) {
		char *kp = xasprintf("Network[%u]", i);
		plist_t d = plist_array_get_item(net, i);
		char *id = xasprintf("net%u", i);
		struct vm_net *n = config_add_net(c, id);
		free(id);
		set_str(&n->mode, "user");
		set_str(&n->model, "virtio-net-pci");
		const char *mac = plist_get_node_type(d) == PLIST_DICT ? get_str(r, d, kp, "MacAddress", false) : NULL;
		if (mac)
			n->mac = lower(mac);
		free(kp);
	}
	if (plist_array_get_size(net))
		buf_printf(&r->meta->notices, "%s: Network: Apple's Shared/Bridged modes become user-mode networking\n",
			   r->path);
	plist_t ser = get_typed(r, root, "", "Serial", PLIST_ARRAY, false);
	for (uint32_t i = 0; ser && i < plist_array_get_size(ser); i++) {
		char *id = xasprintf("serial%u", i);
		struct vm_serial *sp = config_add_serial(c, id);
		free(id);
		plist_t d = plist_array_get_item(ser, i);
		const char *m = plist_get_node_type(d) == PLIST_DICT ? get_str(r, d, "Serial", "Mode", false) : NULL;
		set_str(&sp->mode, m && !strcmp(m, "Ptty") ? "pty" : "socket");
		set_str(&sp->target, "console");
	}
}

/* ---- legacy (UTM 3, ConfigurationVersion 2) ---- */

static void decode_legacy(struct rd *r, plist_t root, struct vm_config *c)
{
	plist_t sys = get_typed(r, root, "", "System", PLIST_DICT, true);
	if (r->err)
		return;
	plist_t info = get_typed(r, root, "", "Info", PLIST_DICT, false);
	set_str(&c->name, get_str(r, info, "Info", "Name", false));
	if (!c->name) {
		/* UTM 3 names the VM after its bundle: "NAME.utm/config.plist" */
		const char *end = strrchr(r->path, '/');
		if (end) {
			const char *start = end;
			while (start > r->path && start[-1] != '/')
				start--;
			size_t n = (size_t)(end - start);
			if (n > 4 && !strncmp(end - 4, ".utm", 4))
				n -= 4;
			if (n)
				c->name = strndup(start, n);
		}
	}
	set_str(&c->notes, get_str(r, info, "Info", "Notes", false));
	set_str(&c->uuid, get_str(r, sys, "System", "SystemUUID", false));
	const char *a = get_str(r, sys, "System", "Architecture", true);
	if (a)
		set_field(r, c, SEC_TOP, "arch", "System.Architecture", a);
	set_str(&c->machine, get_str(r, sys, "System", "Target", false));
	set_str(&c->cpu, get_str(r, sys, "System", "CPU", false));
	int64_t v;
	if (get_int(r, sys, "System", "CPUCount", false, &v))
		set_cpus(c, v);
	if (get_int(r, sys, "System", "Memory", false, &v))
		set_memory(r, c, "System.Memory", v);
	if (get_bool(r, sys, "System", "ForceMulticore", false))
		set_str(&c->tcg_thread, "multi");
	if (get_bool(r, sys, "System", "BootUefi", false)) {
		set_str(&c->firmware, "uefi");
		set_str(&c->efi_vars, "efi_vars.fd");
	}
	c->rng = get_bool(r, sys, "System", "RngEnabled", false);
	const char *mp = get_str(r, sys, "System", "MachineProperties", false);
	if (mp && *mp)
		set_str(&c->machine_props, mp);
	plist_t aa = get_typed(r, sys, "System", "AddArgs", PLIST_ARRAY, false);
	for (uint32_t i = 0; aa && i < plist_array_get_size(aa); i++) {
		plist_t it = plist_array_get_item(aa, i);
		if (plist_get_node_type(it) == PLIST_STRING)
			config_split_utm_args(plist_get_string_ptr(it, NULL), &c->extra_args);
	}
	plist_t disp = get_typed(r, root, "", "Display", PLIST_DICT, false);
	set_str(&c->display_device, get_str(r, disp, "Display", "DisplayCard", false));
	plist_t snd = get_typed(r, root, "", "Sound", PLIST_DICT, false);
	if (get_bool(r, snd, "Sound", "SoundEnabled", false))
		set_sound(r, c, "Sound.SoundCard", get_str(r, snd, "Sound", "SoundCard", false));
	plist_t in = get_typed(r, root, "", "Input", PLIST_DICT, false);
	if (!get_bool(r, in, "Input", "InputLegacy", false)) {
		set_str(&c->usb, "2.0");
		c->usb_tablet = true;
	}
	plist_t nw = get_typed(r, root, "", "Networking", PLIST_DICT, false);
	if (get_bool(r, nw, "Networking", "NetworkEnabled", true) && nw) {
		struct vm_net *n = config_add_net(c, "net0");
		set_str(&n->mode, "user");
		set_str(&n->model, get_str(r, nw, "Networking", "NetworkCard", false));
		const char *mac = get_str(r, nw, "Networking", "NetworkCardMAC", false);
		if (mac)
			n->mac = lower(mac);
		n->isolate = get_bool(r, nw, "Networking", "NetworkIsolate", false);
	}
	plist_t drv = get_typed(r, root, "", "Drives", PLIST_ARRAY, false);
	bool pflash = false;
	for (uint32_t i = 0; drv && i < plist_array_get_size(drv) && !r->err; i++) {
		char *kp = xasprintf("Drives[%u]", i);
		plist_t d = plist_array_get_item(drv, i);
		if (plist_get_node_type(d) != PLIST_DICT) {
			rd_fail(r, kp, "expected a dictionary, found %s", type_name(d));
			free(kp);
			break;
		}
		const char *name = get_str(r, d, kp, "DriveName", false);
		const char *img = get_str(r, d, kp, "ImagePath", false);
		const char *type = get_str(r, d, kp, "ImageType", false);
		const char *iface = get_str(r, d, kp, "InterfaceType", false);
		/* UTM 3 (UTMQemuSystem argsForDrives): disk and cd are drives; bios,
		 * kernel, initrd and dtb are -bios, -kernel, -initrd, -dtb; none (how
		 * it listed efi_vars.fd) and unknown types give QEMU nothing. A
		 * missing ImageType is a disk (its Cdrom-key migration). */
		type = type ? type : "disk";
		char **single = !strcmp(type, "bios")	  ? &c->bios
				: !strcmp(type, "kernel") ? &c->kernel
				: !strcmp(type, "initrd") ? &c->initrd
				: !strcmp(type, "dtb")	  ? &c->dtb
							  : NULL;
		bool removable = get_bool(r, d, kp, "Removable", false);
		if (single) {
			if (!removable)
				set_str(single, img);
			free(kp);
			continue;
		}
		char *id = name && config_id_valid(name) && isalpha((unsigned char)name[0]) ? xstrdup(name)
											    : xasprintf("drive%u", i);
		if (idset_has(&r->drive_ids, id)) {
			free(id);
			id = fallback_drive_id(r, "drive", i);
		}
		struct vm_drive *vd = add_drive(r, c, id);
		free(id);
		bool attached = !strcmp(type, "disk") || !strcmp(type, "cd");
		if (!removable || !attached)
			set_str(&vd->image, img);
		vd->removable = attached && (removable || !img);
		/* kept as media none, so a write-back keeps the entry */
		set_str(&vd->media, !attached ? "none" : !strcmp(type, "cd") ? "cdrom" : "disk");
		if (iface && *iface) {
			/* interface none: UTM 3's "-drive if=none" without a device */
			char *l = lower(iface);
			set_field(r, vd, SEC_DRIVE, "interface", kp, !strcmp(l, "mtd") ? "none" : l);
			free(l);
		}
		pflash |= attached && vd->interface && !strcmp(vd->interface, "pflash");
		free(kp);
	}
	/* UTM 3 (hasCustomBios): UEFI only without a BIOS or kernel image and
	 * without a pflash drive */
	if (c->firmware && !strcmp(c->firmware, "uefi") && (c->bios || c->kernel || pflash)) {
		free(c->firmware);
		c->firmware = NULL;
		free(c->efi_vars);
		c->efi_vars = NULL;
	}
}

/* ---- parse entry ---- */

static int decode(struct vm_config *c, const char *path, plist_t root, struct plist_meta *meta, char **err)
{
	struct rd r = {.path = path, .meta = meta};
	memset(meta, 0, sizeof *meta);
	meta->data_dir = "Data";
	if (plist_get_node_type(root) != PLIST_DICT) {
		*err = xasprintf("%s: not a property list dictionary", path);
		return -1;
	}
	plist_t be = get_typed(&r, root, "", "Backend", PLIST_STRING, false);
	int64_t ver = 0;
	get_int(&r, root, "", "ConfigurationVersion", !be, &ver);
	meta->version = ver;
	const char *backend = be ? plist_get_string_ptr(be, NULL) : NULL;
	if (r.err) {
	} else if (!backend) {
		if (ver > 3) {
			rd_fail(&r, "Backend", "missing (ConfigurationVersion %lld needs one)", (long long)ver);
		} else {
			meta->kind = PLIST_UTM_LEGACY;
			meta->data_dir = "Images";
			meta->readonly = xasprintf("%s: a UTM 3 (ConfigurationVersion %lld) bundle is read-only; "
						   "'vm-config BUNDLE upgrade' converts it",
						   path, (long long)ver);
			buf_printf(&meta->notices, "%s: UTM 3 bundle (ConfigurationVersion %lld), opened read-only\n",
				   path, (long long)ver);
			decode_legacy(&r, root, c);
		}
	} else if (!strcmp(backend, "QEMU")) {
		meta->kind = PLIST_UTM_QEMU;
		get_int(&r, root, "", "ConfigurationVersion", true, &ver);
		meta->version = ver;
		if (!r.err && ver != 4)
			rd_fail(&r, "ConfigurationVersion", "%lld is not supported (UTM 4 writes 4)", (long long)ver);
		else
			decode_qemu(&r, root, c);
	} else if (!strcmp(backend, "Apple")) {
		meta->kind = PLIST_UTM_APPLE;
		meta->readonly = xasprintf("%s: Apple-backend bundles are read-only here", path);
		decode_apple(&r, root, c);
	} else {
		rd_fail(&r, "Backend", "'%s' is not one of: QEMU, Apple", backend);
	}
	free(r.drive_ids.v);
	if (!r.err)
		extract_append(c);
	if (r.err) {
		*err = r.err;
		plist_meta_free(meta);
		return -1;
	}
	return 0;
}

/* Does a string or key hold a NUL byte (raw in XML, or in a binary plist)?
 * The model reads them as C strings, and libplist's plist_copy (2.2) copies
 * them with strdup but keeps the full length, so writing the copy
 * (vm-config set) reads past the end of the heap block. The XML text of the
 * document shows such bytes as they are; nothing else puts a NUL there. */
static bool has_nul_string(plist_t root)
{
	char *xml = NULL;
	uint32_t n = 0;
	plist_to_xml(root, &xml, &n);
	bool bad = !xml || memchr(xml, '\0', n) != NULL;
	if (xml)
		plist_to_xml_free(xml);
	return bad;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A key that a dictionary holds twice (a binary plist can), or NULL;
 * malloc'd. libplist finds the first, but a document written back and read
 * again keeps the last, so the two would not mean the same. */
static char *dup_key(plist_t n)
{
	char *found = NULL;
	if (plist_get_node_type(n) == PLIST_ARRAY) {
		for (uint32_t i = 0; i < plist_array_get_size(n) && !found; i++)
			found = dup_key(plist_array_get_item(n, i));
		return found;
	}
	if (plist_get_node_type(n) != PLIST_DICT)
		return NULL;
	struct strv keys = {0};
	plist_dict_iter it = NULL;
	plist_dict_new_iter(n, &it);
	char *key = NULL;
	plist_t v = NULL;
	for (plist_dict_next_item(n, it, &key, &v); v && !found; plist_dict_next_item(n, it, &key, &v)) {
		strv_push(&keys, key ? key : "");
		free(key);
		key = NULL;
		found = dup_key(v);
	}
	free(key);
	free(it);
	if (!found && keys.n > 1) {
		qsort(keys.v, keys.n, sizeof *keys.v, cmp_key);
		for (size_t i = 1; i < keys.n && !found; i++)
			if (!strcmp(keys.v[i - 1], keys.v[i]))
				found = xstrdup(keys.v[i]);
	}
	strv_free(&keys);
	return found;
}

/* ---- nesting ----
 * libplist (2.2) reads a binary plist, and frees, copies and writes any
 * document, by recursion: a document nested 50,000 deep overflows the
 * stack. A UTM configuration is 4 levels deep, so anything past
 * PLIST_MAX_DEPTH is refused before libplist sees it. */
#define PLIST_MAX_DEPTH 128

/* XML: the depth of <dict> and <array> elements. Comments, CDATA, <?...?>
 * and <!DOCTYPE> are skipped as libplist skips them; libplist checks that
 * every closing tag matches its opening one, so counting is enough. */
static int xml_depth(const char *s, size_t len)
{
	const char *end = s + len;
	int depth = 0, max = 0;
	for (const char *p = memchr(s, '<', len); p; p = p < end ? memchr(p, '<', (size_t)(end - p)) : NULL) {
		size_t rest = (size_t)(end - p);
		const char *close = NULL;
		if (rest >= 4 && !memcmp(p, "<!--", 4))
			close = memmem(p + 4, rest - 4, "-->", 3);
		else if (rest >= 9 && !memcmp(p, "<![CDATA[", 9))
			close = memmem(p + 9, rest - 9, "]]>", 3);
		else if (rest >= 2 && (p[1] == '?' || p[1] == '!'))
			close = memchr(p, '>', rest);
		else if ((rest >= 6 && !memcmp(p, "<dict", 5) && strchr(" \t\r\n>", p[5])) ||
			 (rest >= 7 && !memcmp(p, "<array", 6) && strchr(" \t\r\n>", p[6]))) {
			const char *gt = memchr(p, '>', rest);
			if (gt && gt[-1] != '/' && ++depth > max)
				max = depth;
		} else if ((rest >= 7 && !memcmp(p, "</dict", 6)) || (rest >= 8 && !memcmp(p, "</array", 7))) {
			if (depth > 0)
				depth--;
		}
		if (close)
			p = close + 1;
		else if (p[0] == '<' && rest >= 2 && (p[1] == '?' || p[1] == '!'))
			return max; /* unterminated: libplist refuses it */
		else
			p++;
	}
	return max;
}

/* Binary ("bplist00"): the depth of containers (arrays, sets, dicts) from
 * the top object, walked without recursion; every object's height is
 * computed once, so shared objects cost nothing more. -1 for a cycle.
 * Anything malformed counts as shallow: libplist refuses it. */
static uint64_t be_uint(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

struct bplist {
	const unsigned char *d;
	size_t len, trailer;
	unsigned off_size, ref_size;
	uint64_t nobj, off_table;
};

/* The children of object i: *refs and *n (dicts: keys then values). */
static bool bplist_children(const struct bplist *b, uint64_t i, const unsigned char **refs, uint64_t *n)
{
	*n = 0;
	if (i >= b->nobj || b->off_table + (i + 1) * b->off_size > b->trailer)
		return false;
	uint64_t off = be_uint(b->d + b->off_table + i * b->off_size, b->off_size);
	if (off >= b->trailer)
		return false;
	unsigned char m = b->d[off];
	unsigned kind = m >> 4;
	if (kind != 0xA && kind != 0xC && kind != 0xD)
		return true;
	uint64_t count = m & 0xF, pos = off + 1;
	if (count == 0xF) {
		if (pos >= b->trailer || b->d[pos] >> 4 != 1 || (b->d[pos] & 0xF) > 3)
			return false;
		unsigned w = 1u << (b->d[pos] & 0xF);
		if (pos + 1 + w > b->trailer)
			return false;
		count = be_uint(b->d + pos + 1, w);
		pos += 1 + w;
	}
	if (kind == 0xD)
		count *= 2;
	if (count > b->trailer / b->ref_size || pos + count * b->ref_size > b->trailer)
		return false;
	*refs = b->d + pos;
	*n = count;
	return true;
}

static int bplist_depth(const unsigned char *d, size_t len)
{
	struct bplist b = {.d = d, .len = len};
	if (len < 8 + 32)
		return 0;
	const unsigned char *t = d + len - 32;
	b.trailer = len - 32;
	b.off_size = t[6];
	b.ref_size = t[7];
	b.nobj = be_uint(t + 8, 8);
	uint64_t top = be_uint(t + 16, 8);
	b.off_table = be_uint(t + 24, 8);
	if (!b.off_size || b.off_size > 8 || !b.ref_size || b.ref_size > 8 || top >= b.nobj ||
	    b.off_table >= b.trailer || b.nobj > (b.trailer - b.off_table) / b.off_size)
		return 0;
	/* height[i]: 0 not seen, -1 on the current path, else 1 + the tallest child */
	short *height = xcalloc(b.nobj, sizeof *height);
	struct frame {
		uint64_t obj, next, n;
		const unsigned char *refs;
	} *stack = xcalloc(PLIST_MAX_DEPTH + 2, sizeof *stack);
	int sp = 0, result = 0;
	stack[0] = (struct frame){.obj = top};
	height[top] = -1;
	if (!bplist_children(&b, top, &stack[0].refs, &stack[0].n))
		goto out;
	while (sp >= 0) {
		struct frame *f = &stack[sp];
		if (f->next < f->n) {
			uint64_t c = be_uint(f->refs + f->next++ * b.ref_size, b.ref_size);
			if (c >= b.nobj)
				goto out;
			if (height[c] == -1) {
				result = -1; /* a cycle */
				goto out;
			}
			if (height[c])
				continue;
			if (sp + 1 > PLIST_MAX_DEPTH) {
				result = PLIST_MAX_DEPTH + 1;
				goto out;
			}
			stack[++sp] = (struct frame){.obj = c};
			height[c] = -1;
			if (!bplist_children(&b, c, &stack[sp].refs, &stack[sp].n))
				goto out;
			continue;
		}
		int h = 1;
		for (uint64_t k = 0; k < f->n; k++) {
			int ch = height[be_uint(f->refs + k * b.ref_size, b.ref_size)];
			if (ch + 1 > h)
				h = ch + 1;
		}
		height[f->obj] = h;
		sp--;
	}
	result = height[top];
out:
	free(height);
	free(stack);
	return result;
}

/* 0 if data (XML or binary) nests at most PLIST_MAX_DEPTH deep, else -1
 * with *err naming path. */
static int check_nesting(const char *path, const char *data, size_t len, char **err)
{
	int depth = len >= 8 && !memcmp(data, "bplist00", 8) ? bplist_depth((const unsigned char *)data, len)
							      : xml_depth(data, len);
	if (depth < 0) {
		vm_set_err(err, "%s: not a valid property list (an array or dictionary contains itself)", path);
		return -1;
	}
	if (depth > PLIST_MAX_DEPTH) {
		vm_set_err(err, "%s: arrays and dictionaries nested more than %d deep", path, PLIST_MAX_DEPTH);
		return -1;
	}
	return 0;
}

int config_parse_plist(struct vm_config *c, const char *path, const char *data, size_t len, void **doc,
		       struct plist_meta *meta, char **err)
{
	plist_t root = NULL;
	*doc = NULL;
	memset(meta, 0, sizeof *meta);
	if (config_plist_load(err) < 0)
		return -1;
	if (len > CONFIG_PLIST_MAX) {
		*err = xasprintf("%s: larger than %u MiB", path, CONFIG_PLIST_MAX >> 20);
		return -1;
	}
	if (check_nesting(path, data, len, err) < 0)
		return -1;
	if (plist_from_memory(data, (uint32_t)len, &root), !root) {
		*err = xasprintf("%s: not a valid property list (truncated or malformed XML?)", path);
		return -1;
	}
	if (has_nul_string(root)) {
		*err = xasprintf("%s: a string or key holds a NUL byte", path);
		plist_free(root);
		return -1;
	}
	char *dup = dup_key(root);
	if (dup) {
		*err = xasprintf("%s: a dictionary holds the key '%s' twice", path, dup);
		free(dup);
		plist_free(root);
		return -1;
	}
	if (decode(c, path, root, meta, err) < 0) {
		plist_free(root);
		return -1;
	}
	*doc = root;
	return 0;
}

void plist_meta_free(struct plist_meta *m)
{
	free(m->readonly);
	free(m->not_runnable);
	buf_free(&m->notices);
	memset(m, 0, sizeof *m);
}

/* ---- writing ---- */

struct wr {
	const char *path;
	int flags;
	struct buf *skipped;
	char *err;
};

static void unmappable(struct wr *w, const char *key, const char *why)
{
	if (w->flags & CONFIG_PLIST_LENIENT) {
		if (w->skipped)
			buf_printf(w->skipped, "%s: %s\n", key, why);
		return;
	}
	if (!w->err)
		w->err = xasprintf("%s: %s: %s", w->path, key, why);
}

/* unmappable() for a field of a section: "drive.hd0" and "format". */
static void unmappable_field(struct wr *w, const char *section, const char *field, const char *why)
{
	char *key = xasprintf("%s.%s", section, field);
	unmappable(w, key, why);
	free(key);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool strv_eq(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

static plist_t dict_child(plist_t d, const char *key, plist_type t)
{
	plist_t n = plist_dict_get_item(d, key);
	if (!n || plist_get_node_type(n) != t) {
		n = t == PLIST_DICT ? plist_new_dict() : plist_new_array();
		plist_dict_set_item(d, key, n);
	}
	return n;
}

static void put_str(plist_t d, const char *key, const char *v)
{
	if (v)
		plist_dict_set_item(d, key, plist_new_string(v));
	else if (plist_dict_get_item(d, key))
		plist_dict_remove_item(d, key);
}
static void put_int(plist_t d, const char *key, int64_t v)
{
	plist_dict_set_item(d, key, plist_new_uint((uint64_t)(v < 0 ? 0 : v)));
}
static void put_bool(plist_t d, const char *key, bool v)
{
	plist_dict_set_item(d, key, plist_new_bool(v));
}

/* UTM splits entries on whitespace; quote words that hold any. */
static char *join_utm_word(const char *w)
{
	if (*w && !strpbrk(w, " \t\n\""))
		return xstrdup(w);
	struct buf b = {0};
	buf_puts(&b, "\"");
	for (const char *p = w; *p; p++)
		if (*p != '"')
			buf_add(&b, p, 1);
	buf_puts(&b, "\"");
	return b.s;
}

static const char *utm_interface(const char *iface)
{
	static const char *const map[][2] = {{"ide", "IDE"},	   {"scsi", "SCSI"},	 {"virtio", "VirtIO"},
					     {"nvme", "NVMe"},	   {"usb", "USB"},	 {"floppy", "Floppy"},
					     {"pflash", "PFlash"}, {"sd", "SD"},	 {"none", "None"}};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (iface && !strcmp(map[i][0], iface))
			return map[i][1];
	return "None";
}

/* The index in Drive[] of the dict for model drive id (or single ImageType), -1 if none. */
static int find_drive_dict(plist_t arr, const char *id, const char *single_type)
{
	for (uint32_t i = 0; i < plist_array_get_size(arr); i++) {
		plist_t d = plist_array_get_item(arr, i);
		if (plist_get_node_type(d) != PLIST_DICT)
			continue;
		plist_t t = plist_dict_get_item(d, "ImageType");
		const char *type = t && plist_get_node_type(t) == PLIST_STRING ? plist_get_string_ptr(t, NULL) : "";
		if (single_type) {
			if (!strcmp(type, single_type))
				return (int)i;
			continue;
		}
		plist_t n = plist_dict_get_item(d, "Identifier");
		if (!n || plist_get_node_type(n) != PLIST_STRING || !strcmp(type, "BIOS") ||
		    has_prefix(type, "Linux"))
			continue;
		char *did = drive_id_of(plist_get_string_ptr(n, NULL));
		bool hit = !strcmp(did, id);
		free(did);
		if (hit)
			return (int)i;
	}
	return -1;
}

static char *new_identifier(void)
{
	char u[37];
	uuid_generate_str(u);
	for (char *p = u; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return xstrdup(u);
}

static void update_drives(struct wr *w, plist_t root, const struct vm_config *old, const struct vm_config *c)
{
	plist_t arr = dict_child(root, "Drive", PLIST_ARRAY);
	/* the single-image types */
	const char *types[] = {"BIOS", "LinuxKernel", "LinuxInitrd", "LinuxDTB"};
	const char *const olds[] = {old->bios, old->kernel, old->initrd, old->dtb};
	const char *const news[] = {c->bios, c->kernel, c->initrd, c->dtb};
	for (int k = 0; k < 4; k++) {
		if (str_eq(olds[k], news[k]))
			continue;
		int i = find_drive_dict(arr, NULL, types[k]);
		if (!news[k]) {
			if (i >= 0)
				plist_array_remove_item(arr, (uint32_t)i);
			continue;
		}
		if (i < 0) {
			plist_t d = plist_new_dict();
			char *ident = new_identifier();
			put_str(d, "Identifier", ident);
			free(ident);
			put_str(d, "ImageType", types[k]);
			put_str(d, "Interface", "None");
			put_int(d, "InterfaceVersion", 1);
			put_bool(d, "ReadOnly", false);
			plist_array_append_item(arr, d);
			i = (int)plist_array_get_size(arr) - 1;
		}
		put_str(plist_array_get_item(arr, (uint32_t)i), "ImageName", news[k]);
	}
	/* removed drives */
	for (size_t j = 0; j < old->ndrives; j++) {
		if (config_drive(c, old->drives[j].id))
			continue;
		int i = find_drive_dict(arr, old->drives[j].id, NULL);
		if (i >= 0)
			plist_array_remove_item(arr, (uint32_t)i);
	}
	for (size_t j = 0; j < c->ndrives; j++) {
		const struct vm_drive *d = &c->drives[j];
		const struct vm_drive *o = config_drive(old, d->id);
		struct vm_drive none = {0};
		char *key = xasprintf("drive.%s", d->id);
		plist_t dict;
		if (o) {
			int i = find_drive_dict(arr, d->id, NULL);
			if (i < 0) {
				free(key);
				continue;
			}
			dict = plist_array_get_item(arr, (uint32_t)i);
		} else {
			o = &none;
			dict = plist_new_dict();
			/* UTM wants a unique Identifier; the model's id maps back to itself */
			char *ident = isalpha((unsigned char)d->id[0]) ? xstrdup(d->id) : new_identifier();
			put_str(dict, "Identifier", ident);
			free(ident);
			put_int(dict, "InterfaceVersion", 1);
			plist_array_append_item(arr, dict);
		}
		if (!str_eq(o->image, d->image) || (o == &none))
			put_str(dict, "ImageName", d->image);
		if (!str_eq(o->media, d->media) || o == &none)
			put_str(dict, "ImageType", !d->media ? "Disk" : !strcmp(d->media, "cdrom") ? "CD"
							    : !strcmp(d->media, "none") ? "None" : "Disk");
		if (!str_eq(o->interface, d->interface) || o == &none) {
			if (d->interface)
				put_str(dict, "Interface", utm_interface(d->interface));
			else
				put_str(dict, "Interface",
					c->arch ? utm_interface(config_default_interface(c, d->media ? d->media : "disk"))
						: "IDE");
		}
		if (o->readonly != d->readonly || o == &none)
			put_bool(dict, "ReadOnly", d->readonly || (d->media && !strcmp(d->media, "cdrom")));
		if (d->removable != !d->image && !(d->media && !strcmp(d->media, "cdrom") && !d->image)) {
			unmappable_field(w, key, "removable", "UTM's removable drives are the ones without an image");
		}
		if (!str_eq(o->format, d->format)) {
			unmappable_field(w, key, "format", "config.plist has no image format (QEMU probes it)");
		}
		if (o->bootindex != d->bootindex) {
			unmappable_field(w, key, "bootindex", "config.plist boots in drive order");
		}
		free(key);
	}
}

/* The nets config.plist holds: user-mode ones. Mode none is no entry at all
 * (UTM's "no network" is an empty Network array; an entry must have a Mode);
 * other modes have no place (unmappable: an error, or left out). */
static struct vm_config plist_nets_of(struct wr *w, const struct vm_config *c, bool report)
{
	struct vm_config v = *c; /* shallow: only nets and nnets differ */
	v.nets = xcalloc(c->nnets + 1, sizeof *v.nets);
	v.nnets = 0;
	for (size_t i = 0; i < c->nnets; i++) {
		const char *m = c->nets[i].mode;
		if (!m || !strcmp(m, "user")) {
			v.nets[v.nnets++] = c->nets[i];
		} else if (report && strcmp(m, "none")) {
			char *key = xasprintf("net.%s", c->nets[i].id);
			unmappable(w, key, "config.plist only has user-mode (Emulated) networking here");
			free(key);
		}
	}
	return v;
}

static void update_nets_mapped(struct wr *w, plist_t root, const struct vm_config *old, const struct vm_config *c);

static void update_nets(struct wr *w, plist_t root, const struct vm_config *old, const struct vm_config *c)
{
	struct vm_config o = plist_nets_of(w, old, false), n = plist_nets_of(w, c, true);
	update_nets_mapped(w, root, &o, &n);
	free(o.nets);
	free(n.nets);
}

static void update_nets_mapped(struct wr *w, plist_t root, const struct vm_config *old, const struct vm_config *c)
{
	plist_t arr = dict_child(root, "Network", PLIST_ARRAY);
	/* old nets are Network[j] in order; remove the gone ones from the end */
	for (size_t j = old->nnets; j-- > 0;) {
		bool kept = false;
		for (size_t k = 0; k < c->nnets; k++)
			kept |= !strcmp(c->nets[k].id, old->nets[j].id);
		if (!kept && j < plist_array_get_size(arr))
			plist_array_remove_item(arr, (uint32_t)j);
	}
	/* index of each kept old net after removals */
	for (size_t k = 0; k < c->nnets; k++) {
		const struct vm_net *n = &c->nets[k];
		const struct vm_net *o = NULL;
		uint32_t idx = 0;
		for (size_t j = 0; j < old->nnets; j++) {
			bool kept = false;
			for (size_t m = 0; m < c->nnets; m++)
				kept |= !strcmp(c->nets[m].id, old->nets[j].id);
			if (!strcmp(old->nets[j].id, n->id)) {
				o = &old->nets[j];
				break;
			}
			if (kept)
				idx++;
		}
		struct vm_net none = {0};
		plist_t d;
		if (o && idx < plist_array_get_size(arr)) {
			d = plist_array_get_item(arr, idx);
		} else {
			o = &none;
			d = plist_new_dict();
			put_bool(d, "IsolateFromHost", false);
			plist_dict_set_item(d, "PortForward", plist_new_array());
			plist_array_append_item(arr, d);
		}
		char *key = xasprintf("net.%s", n->id);
		if (!str_eq(o->mode, n->mode) || o == &none) {
			if (!n->mode || !strcmp(n->mode, "user"))
				put_str(d, "Mode", "Emulated");
			else
				unmappable(w, key, "config.plist only has user-mode (Emulated) networking here");
		}
		if (!str_eq(o->model, n->model) || o == &none)
			put_str(d, "Hardware", n->model ? n->model : "virtio-net-pci");
		if (!str_eq(o->mac, n->mac) || o == &none) {
			char *mac = NULL;
			if (n->mac) {
				mac = xstrdup(n->mac);
				for (char *p = mac; *p; p++)
					*p = (char)toupper((unsigned char)*p);
			}
			put_str(d, "MacAddress", mac);
			free(mac);
		}
		if (o->isolate != n->isolate || o == &none)
			put_bool(d, "IsolateFromHost", n->isolate);
		if (!strv_eq(&o->forward, &n->forward)) {
			plist_t pf = plist_new_array();
			for (size_t i = 0; i < n->forward.n; i++) {
				/* tcp:HADDR:HPORT-GADDR:GPORT */
				const char *s = n->forward.v[i], *c1 = strchr(s, ':'), *dash = strchr(s, '-');
				if (!c1 || !dash)
					continue;
				const char *hp = memrchr(s, ':', (size_t)(dash - s)), *gp = strrchr(dash, ':');
				if (!hp || !gp || hp < c1)
					continue;
				plist_t f = plist_new_dict();
				char *proto = strndup(s, (size_t)(c1 - s));
				for (char *p = proto; *p; p++)
					*p = (char)toupper((unsigned char)*p);
				put_str(f, "Protocol", proto);
				free(proto);
				if (hp > c1 + 1) {
					char *ha = strndup(c1 + 1, (size_t)(hp - c1 - 1));
					put_str(f, "HostAddress", ha);
					free(ha);
				}
				put_int(f, "HostPort", atoll(hp + 1));
				if (gp > dash + 1) {
					char *ga = strndup(dash + 1, (size_t)(gp - dash - 1));
					put_str(f, "GuestAddress", ga);
					free(ga);
				}
				put_int(f, "GuestPort", atoll(gp + 1));
				plist_array_append_item(pf, f);
			}
			plist_dict_set_item(d, "PortForward", pf);
		}
		const char *unk[] = {"ifname", "bridge", "address", "subnet"};
		const char *const ov[] = {o->ifname, o->bridge, o->address, o->subnet};
		const char *const nv[] = {n->ifname, n->bridge, n->address, n->subnet};
		for (int i = 0; i < 4; i++)
			if (!str_eq(ov[i], nv[i])) {
				unmappable_field(w, key, unk[i], "config.plist has no place for it");
			}
		if (o->listen != n->listen) {
			unmappable_field(w, key, "listen", "config.plist has no place for it");
		}
		free(key);
	}
}

/* The serial ports config.plist holds: socket (Terminal) and pty (Ptty).
 * Mode none is no entry; others have no place (unmappable), as for nets:
 * an entry without a Mode is one UTM refuses. */
static struct vm_config plist_serials_of(struct wr *w, const struct vm_config *c, bool report)
{
	struct vm_config v = *c; /* shallow: only serials and nserials differ */
	v.serials = xcalloc(c->nserials + 1, sizeof *v.serials);
	v.nserials = 0;
	for (size_t i = 0; i < c->nserials; i++) {
		const char *m = c->serials[i].mode;
		if (!m || !strcmp(m, "socket") || !strcmp(m, "pty")) {
			v.serials[v.nserials++] = c->serials[i];
		} else if (report && strcmp(m, "none")) {
			char *key = xasprintf("serial.%s", c->serials[i].id);
			unmappable(w, key, "config.plist serial ports are Terminal (socket) or Ptty (pty)");
			free(key);
		}
	}
	return v;
}

static void update_serials_mapped(struct wr *w, plist_t root, const struct vm_config *old,
				  const struct vm_config *c);

static void update_serials(struct wr *w, plist_t root, const struct vm_config *old, const struct vm_config *c)
{
	struct vm_config o = plist_serials_of(w, old, false), n = plist_serials_of(w, c, true);
	update_serials_mapped(w, root, &o, &n);
	free(o.serials);
	free(n.serials);
}

static void update_serials_mapped(struct wr *w, plist_t root, const struct vm_config *old, const struct vm_config *c)
{
	plist_t arr = dict_child(root, "Serial", PLIST_ARRAY);
	bool same_ids = old->nserials <= c->nserials;
	for (size_t j = 0; same_ids && j < old->nserials; j++)
		same_ids = !strcmp(old->serials[j].id, c->serials[j].id);
	if (!same_ids) {
		/* rebuild from scratch when ports went away */
		while (plist_array_get_size(arr))
			plist_array_remove_item(arr, plist_array_get_size(arr) - 1);
	}
	for (size_t k = 0; k < c->nserials; k++) {
		const struct vm_serial *s = &c->serials[k];
		const struct vm_serial *o = same_ids && k < old->nserials ? &old->serials[k] : NULL;
		plist_t d;
		if (o && k < plist_array_get_size(arr)) {
			d = plist_array_get_item(arr, (uint32_t)k);
		} else {
			o = NULL;
			d = plist_new_dict();
			plist_array_append_item(arr, d);
		}
		char *key = xasprintf("serial.%s", s->id);
		if (!o || !str_eq(o->mode, s->mode)) {
			if (!s->mode || !strcmp(s->mode, "socket"))
				put_str(d, "Mode", "Terminal");
			else if (!strcmp(s->mode, "pty"))
				put_str(d, "Mode", "Ptty");
			else
				unmappable(w, key, "config.plist serial ports are Terminal (socket) or Ptty (pty)");
		}
		if (!o || !str_eq(o->target, s->target)) {
			const char *t = s->target ? s->target : "console";
			put_str(d, "Target", !strcmp(t, "monitor") ? "Monitor" : !strcmp(t, "gdb") ? "GDB" : "Auto");
		}
		if ((o ? o->path : NULL) != s->path && !str_eq(o ? o->path : NULL, s->path)) {
			unmappable_field(w, key, "path", "config.plist has no place for it");
		}
		free(key);
	}
}

static void update_first_hw(plist_t root, const char *section, const char *oldv, const char *newv)
{
	if (str_eq(oldv, newv))
		return;
	plist_t arr = dict_child(root, section, PLIST_ARRAY);
	if (!newv || !strcmp(newv, "none") || !*newv) {
		while (plist_array_get_size(arr))
			plist_array_remove_item(arr, plist_array_get_size(arr) - 1);
		return;
	}
	plist_t d = plist_array_get_size(arr) ? plist_array_get_item(arr, 0) : NULL;
	if (!d || plist_get_node_type(d) != PLIST_DICT) {
		d = plist_new_dict();
		if (!strcmp(section, "Display")) {
			put_str(d, "DownscalingFilter", "Linear");
			put_bool(d, "DynamicResolution", true);
			put_bool(d, "NativeResolution", false);
			put_str(d, "UpscalingFilter", "Nearest");
		}
		if (plist_array_get_size(arr))
			plist_array_set_item(arr, d, 0);
		else
			plist_array_append_item(arr, d);
	}
	put_str(d, "Hardware", newv);
}

int config_plist_update(void *doc, const struct vm_config *c, int flags, struct buf *skipped, const char *path,
			char **err)
{
	plist_t root = doc;
	struct vm_config old;
	struct plist_meta meta;
	config_init(&old);
	if (decode(&old, path, root, &meta, err) < 0) {
		config_free(&old);
		return -1;
	}
	if (meta.kind != PLIST_UTM_QEMU) {
		*err = xstrdup(meta.readonly ? meta.readonly : "not a QEMU config.plist");
		plist_meta_free(&meta);
		config_free(&old);
		return -1;
	}
	plist_meta_free(&meta);
	struct wr w = {.path = path, .flags = flags, .skipped = skipped};
	plist_t info = dict_child(root, "Information", PLIST_DICT);
	plist_t sys = dict_child(root, "System", PLIST_DICT);
	plist_t q = dict_child(root, "QEMU", PLIST_DICT);
	plist_t in = dict_child(root, "Input", PLIST_DICT);

	if (!str_eq(old.name, c->name))
		put_str(info, "Name", c->name ? c->name : "");
	if (!str_eq(old.uuid, c->uuid)) {
		if (c->uuid)
			put_str(info, "UUID", c->uuid);
		else
			unmappable(&w, "uuid", "UTM requires a UUID");
	}
	if (!str_eq(old.notes, c->notes))
		put_str(info, "Notes", c->notes);
	if (!str_eq(old.arch, c->arch))
		put_str(sys, "Architecture", c->arch ? c->arch : "x86_64");
	if (!str_eq(old.machine, c->machine)) {
		put_str(sys, "Target", c->machine ? c->machine : "q35");
	}
	if (!str_eq(old.cpu, c->cpu))
		put_str(sys, "CPU", c->cpu ? c->cpu : "default");
	if (!strv_eq(&old.cpu_flags, &c->cpu_flags)) {
		plist_t add = plist_new_array(), rem = plist_new_array();
		for (size_t i = 0; i < c->cpu_flags.n; i++) {
			const char *f = c->cpu_flags.v[i];
			plist_array_append_item(f[0] == '-' ? rem : add,
						plist_new_string(f[0] == '+' || f[0] == '-' ? f + 1 : f));
		}
		plist_dict_set_item(sys, "CPUFlagsAdd", add);
		plist_dict_set_item(sys, "CPUFlagsRemove", rem);
	}
	if (old.cpus != c->cpus)
		put_int(sys, "CPUCount", c->cpus);
	if (old.memory != c->memory)
		put_int(sys, "MemorySize", c->memory ? c->memory : 512);
	if (old.tcg_tb_size != c->tcg_tb_size)
		put_int(sys, "JITCacheSize", c->tcg_tb_size);
	if (!str_eq(old.tcg_thread, c->tcg_thread))
		put_bool(sys, "ForceMulticore", c->tcg_thread && !strcmp(c->tcg_thread, "multi"));
	if (!str_eq(old.firmware, c->firmware))
		put_bool(q, "UEFIBoot", c->firmware && !strcmp(c->firmware, "uefi"));
	if (!str_eq(old.efi_vars, c->efi_vars) &&
	    !(c->efi_vars && !strcmp(c->efi_vars, "efi_vars.fd") && c->firmware && !strcmp(c->firmware, "uefi")) &&
	    !(!c->efi_vars && !(c->firmware && !strcmp(c->firmware, "uefi"))))
		unmappable(&w, "efi_vars", "UTM always keeps UEFI variables in Data/efi_vars.fd");
	if (old.rng != c->rng)
		put_bool(q, "RNGDevice", c->rng);
	if (old.balloon != c->balloon)
		put_bool(q, "BalloonDevice", c->balloon);
	if (old.tpm != c->tpm)
		put_bool(q, "TPMDevice", c->tpm);
	if (old.rtc_localtime != c->rtc_localtime)
		put_bool(q, "RTCLocalTime", c->rtc_localtime);
	if (!str_eq(old.machine_props, c->machine_props))
		put_str(q, "MachinePropertyOverride", c->machine_props ? c->machine_props : "");
	if (!strv_eq(&old.extra_args, &c->extra_args) || !str_eq(old.append, c->append)) {
		plist_t aa = plist_new_array();
		for (size_t i = 0; i < c->extra_args.n; i++) {
			char *wd = join_utm_word(c->extra_args.v[i]);
			plist_array_append_item(aa, plist_new_string(wd));
			free(wd);
		}
		if (c->append) {
			char *wd = join_utm_word(c->append);
			char *e = xasprintf("-append %s", wd);
			plist_array_append_item(aa, plist_new_string(e));
			free(e);
			free(wd);
		}
		plist_dict_set_item(q, "AdditionalArguments", aa);
	}
	if (!str_eq(old.usb, c->usb))
		put_str(in, "UsbBusSupport", !c->usb || !strcmp(c->usb, "none") ? "Disabled" : c->usb);
	if (old.usb_tablet != c->usb_tablet && c->usb_tablet != (c->usb && strcmp(c->usb, "none")))
		unmappable(&w, "usb_tablet", "UTM adds a USB tablet exactly when USB is on");
	if (c->agent && !strcmp(c->agent, "false") && !str_eq(old.agent, c->agent))
		unmappable(&w, "agent", "UTM always gives the guest agent a port where the machine has virtio");
	if (!str_eq(old.accel, c->accel))
		unmappable(&w, "accel", "config.plist has no accelerator choice for Linux (vm-run picks KVM or TCG)");
	if (!str_eq(old.display, c->display) && c->display && strcmp(c->display, "none"))
		unmappable(&w, "display", "UTM's display is SPICE in its own window; config.plist cannot name vnc/spice sockets");
	update_first_hw(root, "Display", old.display_device, c->display_device);
	update_first_hw(root, "Sound", old.sound, c->sound);
	update_drives(&w, root, &old, c);
	update_nets(&w, root, &old, c);
	update_serials(&w, root, &old, c);
	if (c->nshares != old.nshares)
		unmappable(&w, "share", "UTM keeps shared folders in its registry, not in config.plist");
	config_free(&old);
	if (w.err) {
		*err = w.err;
		return -1;
	}
	return 0;
}

/* UTM's defaults for the keys the model does not have. */
static const char skeleton[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<plist version=\"1.0\"><dict>"
    "<key>Backend</key><string>QEMU</string>"
    "<key>ConfigurationVersion</key><integer>4</integer>"
    "<key>Display</key><array/><key>Drive</key><array/>"
    "<key>Information</key><dict><key>IconCustom</key><false/><key>Icon</key><string>linux</string>"
    "<key>Name</key><string></string><key>UUID</key><string></string></dict>"
    "<key>Input</key><dict><key>MaximumUsbShare</key><integer>3</integer>"
    "<key>UsbBusSupport</key><string>Disabled</string><key>UsbSharing</key><false/></dict>"
    "<key>Network</key><array/>"
    "<key>QEMU</key><dict><key>AdditionalArguments</key><array/><key>BalloonDevice</key><false/>"
    "<key>DebugLog</key><false/><key>Hypervisor</key><false/><key>PS2Controller</key><false/>"
    "<key>RNGDevice</key><false/><key>RTCLocalTime</key><false/><key>TPMDevice</key><false/>"
    "<key>UEFIBoot</key><false/></dict>"
    "<key>Serial</key><array/>"
    "<key>Sharing</key><dict><key>ClipboardSharing</key><false/><key>DirectoryShareMode</key>"
    "<string>None</string><key>DirectoryShareReadOnly</key><false/></dict>"
    "<key>Sound</key><array/>"
    "<key>System</key><dict><key>Architecture</key><string>x86_64</string><key>CPU</key>"
    "<string>default</string><key>CPUCount</key><integer>0</integer><key>CPUFlagsAdd</key><array/>"
    "<key>CPUFlagsRemove</key><array/><key>ForceMulticore</key><false/><key>JITCacheSize</key>"
    "<integer>0</integer><key>MemorySize</key><integer>512</integer><key>Target</key>"
    "<string>q35</string></dict>"
    "</dict></plist>\n";

void *config_plist_new(const struct vm_config *c, int flags, struct buf *skipped, char **err)
{
	plist_t root = NULL;
	if (config_plist_load(err) < 0)
		return NULL;
	plist_from_memory(skeleton, (uint32_t)strlen(skeleton), &root);
	if (!root) {
		*err = xstrdup("internal error: config.plist skeleton");
		return NULL;
	}
	if (config_plist_update(root, c, flags, skipped, "config.plist", err) < 0) {
		plist_free(root);
		return NULL;
	}
	return root;
}

char *config_plist_xml(const void *doc, size_t *len)
{
	char *xml = NULL;
	uint32_t n = 0;
	plist_to_xml((plist_t)doc, &xml, &n);
	if (!xml)
		return NULL;
	char *out = xmalloc((size_t)n + 1);
	memcpy(out, xml, n);
	out[n] = '\0';
	plist_to_xml_free(xml);
	if (len)
		*len = n;
	return out;
}

void *config_plist_copy(const void *doc)
{
	return doc ? plist_copy((plist_t)doc) : NULL;
}

void config_plist_free(void *doc)
{
	if (doc)
		plist_free(doc);
}

void config_plist_view_notes(const char *data, size_t len, struct buf *out)
{
	plist_t root = NULL;
	if (config_plist_load(NULL) < 0 || len > CONFIG_PLIST_MAX || check_nesting("view.plist", data, len, NULL) < 0 ||
	    (plist_from_memory(data, (uint32_t)len, &root), !root))
		return;
	const char *keys[] = {"RemovableDrivesPath", "RemovableDrives", "SharedDirectoryPath", "SharedDirectory"};
	for (int k = 0; k < 4; k++) {
		plist_t n = plist_dict_get_item(root, keys[k]);
		if (!n)
			continue;
		if (plist_get_node_type(n) == PLIST_STRING) {
			buf_printf(out, "%s: %s\n", keys[k], plist_get_string_ptr(n, NULL));
		} else if (plist_get_node_type(n) == PLIST_DICT && plist_dict_get_size(n)) {
			plist_dict_iter it = NULL;
			plist_dict_new_iter(n, &it);
			char *key = NULL;
			plist_t v = NULL;
			for (plist_dict_next_item(n, it, &key, &v); v; plist_dict_next_item(n, it, &key, &v)) {
				if (plist_get_node_type(v) == PLIST_STRING)
					buf_printf(out, "%s.%s: %s\n", keys[k], key, plist_get_string_ptr(v, NULL));
				free(key);
				key = NULL;
			}
			free(it);
		}
	}
	plist_free(root);
}

/* Copy a legacy value into the new document when it has the right type. */
static void carry(plist_t from, const char *fsec, const char *fkey, plist_t to, const char *tsec, const char *tkey,
		  plist_type t)
{
	plist_t fd = plist_dict_get_item(from, fsec);
	plist_t v = fd && plist_get_node_type(fd) == PLIST_DICT ? plist_dict_get_item(fd, fkey) : NULL;
	if (!v || plist_get_node_type(v) != t)
		return;
	plist_t td = plist_dict_get_item(to, tsec);
	if (td && plist_get_node_type(td) == PLIST_DICT)
		plist_dict_set_item(td, tkey, plist_copy(v));
}

void *config_plist_upgrade(const void *legacy_doc, const struct vm_config *legacy_cfg, const char *name,
			   const char *path, char **err)
{
	struct vm_config c;
	config_copy(&c, legacy_cfg);
	if (!c.name && name)
		c.name = xstrdup(name);
	if (!c.uuid) {
		char u[37];
		uuid_generate_str(u);
		c.uuid = xstrdup(u);
	}
	struct buf skipped = {0};
	*err = NULL;
	plist_t doc = config_plist_new(&c, CONFIG_PLIST_LENIENT, &skipped, err);
	buf_free(&skipped);
	config_free(&c);
	if (!doc) {
		char *e = xasprintf("%s: %s", path, *err ? *err : "cannot convert");
		free(*err);
		*err = e;
		return NULL;
	}
	/* what UTM 4's migration keeps that the model has no field for */
	plist_t old = (plist_t)legacy_doc;
	carry(old, "Info", "Icon", doc, "Information", "Icon", PLIST_STRING);
	carry(old, "Info", "IconCustom", doc, "Information", "IconCustom", PLIST_BOOLEAN);
	carry(old, "Sharing", "ClipboardSharing", doc, "Sharing", "ClipboardSharing", PLIST_BOOLEAN);
	carry(old, "Sharing", "UsbRedirectMax", doc, "Input", "MaximumUsbShare", PLIST_UINT);
	carry(old, "System", "UseHypervisor", doc, "QEMU", "Hypervisor", PLIST_BOOLEAN);
	carry(old, "Debug", "DebugLog", doc, "QEMU", "DebugLog", PLIST_BOOLEAN);
	/* a built-in sound chip (screamer) is no model device, but UTM lists it */
	plist_t snd = plist_dict_get_item(old, "Sound");
	plist_t en = snd && plist_get_node_type(snd) == PLIST_DICT ? plist_dict_get_item(snd, "SoundEnabled") : NULL;
	plist_t card = snd && plist_get_node_type(snd) == PLIST_DICT ? plist_dict_get_item(snd, "SoundCard") : NULL;
	if (en && plist_get_node_type(en) == PLIST_BOOLEAN && plist_bool_val_is_true(en) && card &&
	    plist_get_node_type(card) == PLIST_STRING) {
		plist_t arr = plist_new_array(), d = plist_new_dict();
		plist_dict_set_item(d, "Hardware", plist_copy(card));
		plist_array_append_item(arr, d);
		plist_dict_set_item(doc, "Sound", arr);
	}
	/* vmnet modes stay what they were */
	plist_t nw = plist_dict_get_item(old, "Networking");
	plist_t mode = nw && plist_get_node_type(nw) == PLIST_DICT ? plist_dict_get_item(nw, "NetworkMode") : NULL;
	plist_t nets = plist_dict_get_item(doc, "Network");
	if (mode && plist_get_node_type(mode) == PLIST_STRING && plist_array_get_size(nets)) {
		const char *m = plist_get_string_ptr(mode, NULL);
		const char *v = !strcmp(m, "shared") ? "Shared" : !strcmp(m, "bridged") ? "Bridged" : !strcmp(m, "host") ? "Host" : NULL;
		if (v)
			plist_dict_set_item(plist_array_get_item(nets, 0), "Mode", plist_new_string(v));
	}
	return doc;
}
