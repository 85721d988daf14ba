/* The configuration model: the field table, defaults, key paths, validation. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const char *const config_arches[] = {
    "x86_64", "i386", "aarch64", "arm", "riscv64", "riscv32", "ppc", "ppc64", "m68k",
    "alpha", "avr", "hppa", "loongarch64", "microblaze", "microblazeel", "mips", "mipsel",
    "mips64", "mips64el", "or1k", "rx", "s390x", "sh4", "sh4eb", "sparc", "sparc64",
    "tricore", "xtensa", "xtensaeb", NULL};
static const char *const accels[] = {"auto", "kvm", "tcg", NULL};
static const char *const tcg_threads[] = {"auto", "single", "multi", NULL};
static const char *const firmwares[] = {"bios", "uefi", "none", NULL};
static const char *const displays[] = {"none", "vnc", "spice", NULL};
static const char *const usbs[] = {"none", "2.0", "3.0", NULL};
static const char *const interfaces[] = {"virtio", "nvme", "ide", "scsi", "usb",
					 "sd", "floppy", "pflash", "none", NULL};
/* none: an image the VM keeps but QEMU is not given (UTM's ImageType None,
 * e.g. UTM 3's efi_vars.fd entry) */
static const char *const medias[] = {"disk", "cdrom", "none", NULL};
static const char *const net_modes[] = {"user", "tap", "bridge", "socket", "mcast", "none", NULL};
static const char *const serial_modes[] = {"socket", "pty", "file", "stdio", "none", NULL};
/* agent defaults to true: an enum, so that unset and false differ */
static const char *const bools[] = {"true", "false", NULL};
static const char *const serial_targets[] = {"console", "monitor", "gdb", NULL};

/* designated, so a row may leave out the trailing grammar */
#define F(k, t, s, m, ...) {.key = k, .type = t, .offset = offsetof(s, m), __VA_ARGS__}
#define TOP(k, t, m, ...) F(k, t, struct vm_config, m, __VA_ARGS__)

static const struct field top_fields[] = {
    TOP("name", FT_STR, name, NULL, 0, 0, "display name of the VM", "Information.Name"),
    TOP("uuid", FT_STR, uuid, NULL, 0, 0, "unique id; keys the runtime directory", "Information.UUID", &grammar_uuid),
    TOP("notes", FT_STR, notes, NULL, 0, 0, "free text", "Information.Notes"),
    TOP("arch", FT_ENUM, arch, config_arches, 0, 0, "guest architecture", "System.Architecture"),
    TOP("machine", FT_STR, machine, NULL, 0, 0, "QEMU machine type", "System.Target", &grammar_machine),
    TOP("machine_props", FT_STR, machine_props, NULL, 0, 0, "extra -machine properties (k=v,...)",
	"QEMU.MachinePropertyOverride", &grammar_machine_props),
    TOP("cpu", FT_STR, cpu, NULL, 0, 0, "CPU model, or default", "System.CPU", &grammar_cpu_model),
    TOP("cpu_flags", FT_LIST, cpu_flags, NULL, 0, 0, "CPU flags, +flag or -flag",
	"System.CPUFlagsAdd/CPUFlagsRemove", &grammar_cpu_flag),
    TOP("cpus", FT_INT, cpus, NULL, 1, 1024, "number of virtual CPUs", "System.CPUCount"),
    TOP("memory", FT_MIB, memory, NULL, 1, 16LL << 20, "memory in MiB (accepts 2G, 512M)",
	"System.MemorySize"),
    TOP("accel", FT_ENUM, accel, accels, 0, 0, "accelerator", "QEMU.Hypervisor"),
    TOP("tcg_thread", FT_ENUM, tcg_thread, tcg_threads, 0, 0, "TCG threading", "System.ForceMulticore"),
    TOP("tcg_tb_size", FT_MIB, tcg_tb_size, NULL, 0, 1 << 20, "TCG translation cache in MiB (0 = QEMU's default)",
	"System.JITCacheSize"),
    TOP("firmware", FT_ENUM, firmware, firmwares, 0, 0, "bios, uefi (per-bundle variables) or none",
	"QEMU.UEFIBoot"),
    TOP("bios", FT_STR, bios, NULL, 0, 0, "firmware image file in Data/", "Drive(ImageType=BIOS)"),
    TOP("efi_vars", FT_STR, efi_vars, NULL, 0, 0, "UEFI variables file in Data/", "Data/efi_vars.fd"),
    TOP("kernel", FT_STR, kernel, NULL, 0, 0, "kernel image for direct boot", "Drive(ImageType=LinuxKernel)"),
    TOP("initrd", FT_STR, initrd, NULL, 0, 0, "initial ramdisk", "Drive(ImageType=LinuxInitrd)"),
    TOP("append", FT_STR, append, NULL, 0, 0, "kernel command line", "QEMU.AdditionalArguments(-append)"),
    TOP("dtb", FT_STR, dtb, NULL, 0, 0, "device tree blob", "Drive(ImageType=LinuxDTB)"),
    TOP("display", FT_ENUM, display, displays, 0, 0, "none, or vnc/spice on a unix socket", "Display"),
    TOP("display_device", FT_STR, display_device, NULL, 0, 0, "display device model", "Display.Hardware", &grammar_device),
    TOP("sound", FT_STR, sound, NULL, 0, 0, "none, or a sound device model", "Sound.Hardware", &grammar_device),
    TOP("usb", FT_ENUM, usb, usbs, 0, 0, "USB controller", "Input.UsbBusSupport"),
    TOP("usb_tablet", FT_BOOL, usb_tablet, NULL, 0, 0, "a USB tablet for absolute pointing", "Input"),
    TOP("rng", FT_BOOL, rng, NULL, 0, 0, "virtio RNG device", "QEMU.RNGDevice"),
    TOP("balloon", FT_BOOL, balloon, NULL, 0, 0, "virtio balloon device", "QEMU.BalloonDevice"),
    TOP("agent", FT_ENUM, agent, bools, 0, 0, "the QEMU guest agent's port (qga.sock; default true)",
	"(always, where UTM supports it)"),
    TOP("tpm", FT_BOOL, tpm, NULL, 0, 0, "TPM 2.0 through swtpm", "QEMU.TPMDevice"),
    TOP("rtc_localtime", FT_BOOL, rtc_localtime, NULL, 0, 0, "RTC in local time", "QEMU.RTCLocalTime"),
    TOP("extra_args", FT_LIST, extra_args, NULL, 0, 0, "extra QEMU arguments, appended last",
	"QEMU.AdditionalArguments"),
    TOP("allow_paths", FT_LIST, allow_paths, NULL, 0, 0,
	"absolute host paths (files or folders) outside the bundle that the config may name", "(bookmarks)"),
    {0},
};

#define DRV(k, t, m, ...) F(k, t, struct vm_drive, m, __VA_ARGS__)
static const struct field drive_fields[] = {
    DRV("image", FT_STR, image, NULL, 0, 0, "image file in Data/ (empty: no medium)", "Drive.ImageName"),
    DRV("interface", FT_ENUM, interface, interfaces, 0, 0, "bus", "Drive.Interface"),
    DRV("media", FT_ENUM, media, medias, 0, 0, "disk, cdrom, or none (kept, not attached)", "Drive.ImageType"),
    DRV("format", FT_STR, format, NULL, 0, 0, "image format (qcow2, raw...); default from the file",
	"(probed)", &grammar_image_format),
    DRV("readonly", FT_BOOL, readonly, NULL, 0, 0, "read-only", "Drive.ReadOnly"),
    DRV("removable", FT_BOOL, removable, NULL, 0, 0, "removable medium (may be empty)", "Drive.ImageName absent"),
    DRV("bootindex", FT_INT, bootindex, NULL, 0, 1000, "boot order (0: order in the file)", "(array order)"),
    {0},
};

#define NET(k, t, m, ...) F(k, t, struct vm_net, m, __VA_ARGS__)
static const struct field net_fields[] = {
    NET("mode", FT_ENUM, mode, net_modes, 0, 0, "user, tap, bridge, socket, mcast or none", "Network.Mode"),
    NET("model", FT_STR, model, NULL, 0, 0, "NIC model", "Network.Hardware", &grammar_nic_model),
    NET("mac", FT_STR, mac, NULL, 0, 0, "MAC address, generated once", "Network.MacAddress", &grammar_mac),
    NET("forward", FT_LIST, forward, NULL, 0, 0, "user mode forwards: tcp:[HOST]:PORT-[GUEST]:PORT",
	"Network.PortForward", &grammar_forward),
    NET("isolate", FT_BOOL, isolate, NULL, 0, 0, "user mode: no access to the host or outside",
	"Network.IsolateFromHost"),
    NET("ifname", FT_STR, ifname, NULL, 0, 0, "tap: interface name", "(none)", &grammar_ifname),
    NET("bridge", FT_STR, bridge, NULL, 0, 0, "bridge: host bridge", "Network.BridgeInterface", &grammar_ifname),
    NET("address", FT_STR, address, NULL, 0, 0, "socket/mcast: HOST:PORT", "(none)", &grammar_host_port),
    NET("listen", FT_BOOL, listen, NULL, 0, 0, "socket: listen rather than connect", "(none)"),
    NET("subnet", FT_STR, subnet, NULL, 0, 0, "user: guest network (CIDR)", "Network.VlanGuestAddress", &grammar_subnet),
    {0},
};

#define SER(k, t, m, ...) F(k, t, struct vm_serial, m, __VA_ARGS__)
static const struct field serial_fields[] = {
    SER("mode", FT_ENUM, mode, serial_modes, 0, 0, "socket (in the runtime dir), pty, file, stdio, none",
	"Serial.Mode"),
    SER("target", FT_ENUM, target, serial_targets, 0, 0, "console, monitor or gdb", "Serial.Target"),
    SER("path", FT_STR, path, NULL, 0, 0, "file: the log file", "(none)"),
    {0},
};

#define SHR(k, t, m, ...) F(k, t, struct vm_share, m, __VA_ARGS__)
static const struct field share_fields[] = {
    SHR("path", FT_STR, path, NULL, 0, 0, "host folder", "(registry)"),
    SHR("tag", FT_STR, tag, NULL, 0, 0, "9p mount tag", "(share)", &grammar_9p_tag),
    SHR("readonly", FT_BOOL, readonly, NULL, 0, 0, "read-only", "Sharing.DirectoryShareReadOnly"),
    {0},
};

const struct section_desc config_sections[SEC_COUNT] = {
    [SEC_TOP] = {"", SEC_TOP, top_fields, 0, 0, 0},
    [SEC_DRIVE] = {"drive", SEC_DRIVE, drive_fields, sizeof(struct vm_drive),
		   offsetof(struct vm_config, drives), offsetof(struct vm_config, ndrives)},
    [SEC_NET] = {"net", SEC_NET, net_fields, sizeof(struct vm_net), offsetof(struct vm_config, nets),
		 offsetof(struct vm_config, nnets)},
    [SEC_SERIAL] = {"serial", SEC_SERIAL, serial_fields, sizeof(struct vm_serial),
		    offsetof(struct vm_config, serials), offsetof(struct vm_config, nserials)},
    [SEC_SHARE] = {"share", SEC_SHARE, share_fields, sizeof(struct vm_share),
		   offsetof(struct vm_config, shares), offsetof(struct vm_config, nshares)},
};

/* ---- generic access to sections through the table ---- */

static void **sec_array(const struct vm_config *c, const struct section_desc *sd)
{
	return (void **)((char *)c + sd->array_off);
}

static size_t *sec_count(const struct vm_config *c, const struct section_desc *sd)
{
	return (size_t *)((char *)c + sd->count_off);
}

/* Every section element starts with "char *id". */
void *config_section_elem(const struct vm_config *c, enum section_kind k, size_t i)
{
	const struct section_desc *sd = &config_sections[k];
	return (char *)*sec_array(c, sd) + i * sd->elem_size;
}

size_t config_section_count(const struct vm_config *c, enum section_kind k)
{
	return *sec_count(c, &config_sections[k]);
}

static void *sec_find(const struct vm_config *c, enum section_kind k, const char *id)
{
	size_t n = config_section_count(c, k);
	for (size_t i = 0; i < n; i++) {
		void *e = config_section_elem(c, k, i);
		if (strcmp(*(char **)e, id) == 0)
			return e;
	}
	return NULL;
}

/* Room for n elements of a section: 4, then powers of two, so adding one
 * at a time costs amortized constant time (a realloc per element is
 * quadratic wherever realloc cannot grow in place, e.g. under ASan). The
 * capacity is implied by n: removals never shrink the array. */
static size_t sec_capacity(size_t n)
{
	size_t cap = 4;
	while (cap < n)
		cap *= 2;
	return n ? cap : 0;
}

static void *sec_add(struct vm_config *c, enum section_kind k, const char *id)
{
	const struct section_desc *sd = &config_sections[k];
	void **arr = sec_array(c, sd);
	size_t *n = sec_count(c, sd);
	if (sec_capacity(*n + 1) > sec_capacity(*n))
		*arr = xrealloc(*arr, sec_capacity(*n + 1) * sd->elem_size);
	void *e = (char *)*arr + *n * sd->elem_size;
	memset(e, 0, sd->elem_size);
	*(char **)e = xstrdup(id);
	(*n)++;
	return e;
}

static void field_free(void *base, const struct field *f)
{
	void *p = (char *)base + f->offset;
	switch (f->type) {
	case FT_STR:
	case FT_ENUM:
		free(*(char **)p);
		*(char **)p = NULL;
		break;
	case FT_LIST:
		strv_free(p);
		break;
	case FT_INT:
	case FT_MIB:
		*(int64_t *)p = 0;
		break;
	case FT_BOOL:
		*(bool *)p = false;
		break;
	}
}

static void elem_free(void *e, const struct section_desc *sd)
{
	for (const struct field *f = sd->fields; f->key; f++)
		field_free(e, f);
	if (sd->kind != SEC_TOP)
		free(*(char **)e);
}

static void sec_remove(struct vm_config *c, enum section_kind k, size_t i)
{
	const struct section_desc *sd = &config_sections[k];
	char *arr = *sec_array(c, sd);
	size_t *n = sec_count(c, sd);
	elem_free(arr + i * sd->elem_size, sd);
	memmove(arr + i * sd->elem_size, arr + (i + 1) * sd->elem_size, (*n - i - 1) * sd->elem_size);
	(*n)--;
}

struct vm_drive *config_drive(const struct vm_config *c, const char *id)
{
	return sec_find(c, SEC_DRIVE, id);
}
struct vm_drive *config_add_drive(struct vm_config *c, const char *id)
{
	return sec_add(c, SEC_DRIVE, id);
}
struct vm_net *config_add_net(struct vm_config *c, const char *id)
{
	return sec_add(c, SEC_NET, id);
}
struct vm_serial *config_add_serial(struct vm_config *c, const char *id)
{
	return sec_add(c, SEC_SERIAL, id);
}
struct vm_share *config_add_share(struct vm_config *c, const char *id)
{
	return sec_add(c, SEC_SHARE, id);
}

char *config_new_id(const struct vm_config *c, enum section_kind k, const char *prefix)
{
	for (unsigned i = 0;; i++) {
		char *id = xasprintf("%s%u", prefix, i);
		if (!sec_find(c, k, id))
			return id;
		free(id);
	}
}

void config_init(struct vm_config *c)
{
	memset(c, 0, sizeof *c);
}

void config_free(struct vm_config *c)
{
	elem_free(c, &config_sections[SEC_TOP]);
	for (int k = SEC_DRIVE; k < SEC_COUNT; k++) {
		while (config_section_count(c, k))
			sec_remove(c, k, config_section_count(c, k) - 1);
		free(*sec_array(c, &config_sections[k]));
	}
	free(c->source);
	memset(c, 0, sizeof *c);
}

/* ---- defaults ---- */

static void set_default(char **p, const char *v)
{
	if (!*p && v)
		*p = xstrdup(v);
}

static const char *default_machine(const char *arch)
{
	static const struct {
		const char *arch, *machine;
	} t[] = {
	    {"x86_64", "q35"},	 {"i386", "q35"},	    {"aarch64", "virt"}, {"arm", "virt"},
	    {"riscv64", "virt"}, {"riscv32", "virt"},	    {"ppc", "mac99"},	 {"ppc64", "pseries"},
	    {"m68k", "q800"},	 {"loongarch64", "virt"}, {"s390x", "s390-ccw-virtio"},
	    {"sparc", "SS-5"},	 {"sparc64", "sun4u"},	    {"mips", "malta"},	 {"mipsel", "malta"},
	    {"mips64", "malta"}, {"mips64el", "malta"},	    {"alpha", "clipper"}, {"hppa", "hppa"},
	    {"sh4", "r2d"},	 {"sh4eb", "r2d"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(t[i].arch, arch) == 0)
			return t[i].machine;
	return "none";
}

bool config_is_x86(const struct vm_config *c)
{
	return c->arch && (!strcmp(c->arch, "x86_64") || !strcmp(c->arch, "i386"));
}

/* Machines with a PCI bus where virtio-pci devices fit. */
bool config_has_pci(const struct vm_config *c)
{
	const char *m = c->machine ? c->machine : "";
	return config_is_x86(c) ? strcmp(m, "isapc") != 0 && strcmp(m, "microvm") != 0
				: has_prefix(m, "virt") || has_prefix(m, "pseries") || has_prefix(m, "mac99") ||
				      has_prefix(m, "g3beige");
}

bool config_agent(const struct vm_config *c)
{
	const char *arch = c->arch ? c->arch : "";
	/* m68k's virt machine has virtio-mmio only */
	return (!c->agent || strcmp(c->agent, "false") != 0) && strcmp(arch, "m68k") != 0 &&
	       (config_has_pci(c) || !strcmp(arch, "s390x"));
}

const char *config_default_interface(const struct vm_config *c, const char *media)
{
	const char *m = c->machine ? c->machine : "";
	bool cd = media && !strcmp(media, "cdrom");
	if (!strcmp(c->arch, "m68k") || has_prefix(c->arch, "sparc"))
		return "scsi";
	if (has_prefix(m, "virt") || has_prefix(m, "pseries") || !strcmp(c->arch, "s390x"))
		return cd ? "scsi" : "virtio";
	if (config_is_x86(c) && config_has_pci(c))
		return cd ? "ide" : "virtio";
	return "ide";
}

void config_apply_defaults(struct vm_config *c)
{
	set_default(&c->arch, "x86_64");
	set_default(&c->machine, default_machine(c->arch));
	set_default(&c->cpu, "default");
	if (!c->cpus)
		c->cpus = 1;
	if (!c->memory)
		c->memory = 512;
	set_default(&c->accel, "auto");
	set_default(&c->tcg_thread, "auto");
	set_default(&c->firmware, "bios");
	if (!strcmp(c->firmware, "uefi"))
		set_default(&c->efi_vars, "efi_vars.fd");
	set_default(&c->display, "none");
	set_default(&c->sound, "none");
	set_default(&c->usb, "none");
	for (size_t i = 0; i < c->ndrives; i++) {
		struct vm_drive *d = &c->drives[i];
		set_default(&d->media, "disk");
		set_default(&d->interface, config_default_interface(c, d->media));
		if (!strcmp(d->media, "cdrom")) {
			d->readonly = true;
			d->removable = true;
		}
	}
	for (size_t i = 0; i < c->nnets; i++) {
		struct vm_net *n = &c->nets[i];
		set_default(&n->mode, "user");
		set_default(&n->model, config_has_pci(c) ? "virtio-net-pci" : "");
	}
	for (size_t i = 0; i < c->nserials; i++) {
		set_default(&c->serials[i].mode, "socket");
		set_default(&c->serials[i].target, "console");
	}
	for (size_t i = 0; i < c->nshares; i++)
		set_default(&c->shares[i].tag, c->shares[i].id);
}

void config_new_identity(struct vm_config *c)
{
	char u[37], mac[18];
	uuid_generate_str(u);
	free(c->uuid);
	c->uuid = xstrdup(u);
	for (size_t i = 0; i < c->nnets; i++) {
		mac_generate_str(mac);
		free(c->nets[i].mac);
		c->nets[i].mac = xstrdup(mac);
	}
}

/* Field by field, as the table lists them: linear in the size of the model
 * (a copy through vm.conf text costs libconfuse a search per section). */
static void fields_copy(void *dst, const void *src, const struct field *fs)
{
	for (const struct field *f = fs; f->key; f++) {
		void *d = (char *)dst + f->offset;
		const void *s = (const char *)src + f->offset;
		switch (f->type) {
		case FT_STR:
		case FT_ENUM:
			*(char **)d = *(char *const *)s ? xstrdup(*(char *const *)s) : NULL;
			break;
		case FT_LIST:
			strv_copy(d, s);
			break;
		case FT_INT:
		case FT_MIB:
			*(int64_t *)d = *(const int64_t *)s;
			break;
		case FT_BOOL:
			*(bool *)d = *(const bool *)s;
			break;
		}
	}
}

void config_copy(struct vm_config *dst, const struct vm_config *src)
{
	config_init(dst);
	fields_copy(dst, src, config_sections[SEC_TOP].fields);
	for (int k = SEC_DRIVE; k < SEC_COUNT; k++) {
		const struct section_desc *sd = &config_sections[k];
		size_t n = config_section_count(src, k);
		if (!n)
			continue;
		char *arr = xcalloc(sec_capacity(n), sd->elem_size);
		for (size_t i = 0; i < n; i++) {
			const void *e = config_section_elem(src, k, i);
			*(char **)(arr + i * sd->elem_size) = xstrdup(*(char *const *)e);
			fields_copy(arr + i * sd->elem_size, e, sd->fields);
		}
		*sec_array(dst, sd) = arr;
		*sec_count(dst, sd) = n;
	}
	dst->source = xstrdup(src->source ? src->source : "(copy)");
}

/* ---- key paths ---- */

static const struct field *find_field(const struct field *fs, const char *key)
{
	for (; fs->key; fs++)
		if (strcmp(fs->key, key) == 0)
			return fs;
	return NULL;
}

static int sec_kind_by_name(const char *name)
{
	for (int k = SEC_DRIVE; k < SEC_COUNT; k++)
		if (strcmp(config_sections[k].name, name) == 0)
			return k;
	return -1;
}

bool config_id_valid(const char *id)
{
	if (!*id || strlen(id) > 64)
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return false;
	return true;
}

/* Split "drive.cd0.image" into kind, id, field; "memory" into SEC_TOP.
 * id_only: the path names a whole section ("drive.cd0"). */
struct keyref {
	int kind;
	char *id;
	const struct field *f;
	bool whole_section;
};

static int resolve_key(const char *key, struct keyref *r, char **err)
{
	memset(r, 0, sizeof *r);
	const char *dot = strchr(key, '.');
	if (!dot) {
		r->kind = SEC_TOP;
		r->f = find_field(top_fields, key);
		if (!r->f) {
			*err = xasprintf("%s: unknown key", key);
			return -1;
		}
		return 0;
	}
	char *sec = strndup(key, (size_t)(dot - key));
	r->kind = sec_kind_by_name(sec);
	free(sec);
	if (r->kind < 0) {
		*err = xasprintf("%s: unknown key (sections are drive, net, serial, share)", key);
		return -1;
	}
	const char *idp = dot + 1, *dot2 = strchr(idp, '.');
	r->id = dot2 ? strndup(idp, (size_t)(dot2 - idp)) : xstrdup(idp);
	if (!config_id_valid(r->id)) {
		*err = xasprintf("%s: bad %s id '%s' (letters, digits, _ and -)", key,
				 config_sections[r->kind].name, r->id);
		free(r->id);
		return -1;
	}
	if (!dot2) {
		r->whole_section = true;
		return 0;
	}
	r->f = find_field(config_sections[r->kind].fields, dot2 + 1);
	if (!r->f) {
		*err = xasprintf("%s: unknown key", key);
		free(r->id);
		return -1;
	}
	return 0;
}

static void list_values(struct buf *b, const char *const *vals)
{
	for (const char *const *v = vals; *v; v++)
		buf_printf(b, "%s%s", v == vals ? "" : ", ", *v);
}

/* Parse and store one value into a field; key is for messages. */
int config_field_set(void *base, const struct field *f, const char *key, const char *value, char **err)
{
	void *p = (char *)base + f->offset;
	switch (f->type) {
	case FT_ENUM:
		if (!str_in(value, f->values)) {
			struct buf b = {0};
			list_values(&b, f->values);
			*err = xasprintf("%s: '%s' is not one of: %s", key, value, b.s);
			buf_free(&b);
			return -1;
		}
		/* fall through */
	case FT_STR:
		if (strlen(value) > 65536) {
			*err = xasprintf("%s: value too long", key);
			return -1;
		}
		free(*(char **)p);
		*(char **)p = xstrdup(value);
		return 0;
	case FT_INT: {
		long long v;
		const char *es = NULL;
		if (parse_int(value, f->min, f->max, &v, &es) < 0) {
			*err = xasprintf("%s: '%s' is not an integer in %lld..%lld (%s)", key, value, f->min,
					 f->max, es);
			return -1;
		}
		*(int64_t *)p = v;
		return 0;
	}
	case FT_MIB: {
		uint64_t bytes;
		if (parse_size(value, 1ULL << 20, &bytes) < 0 || bytes % (1ULL << 20) ||
		    bytes / (1ULL << 20) < (uint64_t)f->min || bytes / (1ULL << 20) > (uint64_t)f->max) {
			*err = xasprintf("%s: '%s' is not a size in whole MiB from %lldM to %lldM (e.g. 512M, 2G)",
					 key, value, f->min, f->max);
			return -1;
		}
		*(int64_t *)p = (int64_t)(bytes >> 20);
		return 0;
	}
	case FT_BOOL:
		if (parse_bool(value, (bool *)p) < 0) {
			*err = xasprintf("%s: '%s' is not a boolean (true or false)", key, value);
			return -1;
		}
		return 0;
	case FT_LIST:
		strv_push(p, value);
		return 0;
	}
	return -1;
}

/* Text of a field's value; lists one item per line. false if unset. */
bool config_field_get(const void *base, const struct field *f, struct buf *out)
{
	const void *p = (const char *)base + f->offset;
	switch (f->type) {
	case FT_STR:
	case FT_ENUM:
		if (!*(char *const *)p)
			return false;
		buf_puts(out, *(char *const *)p);
		return true;
	case FT_INT:
	case FT_MIB:
		buf_printf(out, "%lld", (long long)*(const int64_t *)p);
		return true;
	case FT_BOOL:
		buf_puts(out, *(const bool *)p ? "true" : "false");
		return true;
	case FT_LIST: {
		const struct strv *sv = p;
		for (size_t i = 0; i < sv->n; i++)
			buf_printf(out, "%s%s", i ? "\n" : "", sv->v[i]);
		return sv->n > 0;
	}
	}
	return false;
}

int config_get(const struct vm_config *c, const char *key, struct buf *out, char **err)
{
	struct keyref r;
	if (resolve_key(key, &r, err) < 0)
		return -1;
	const void *base = c;
	if (r.kind != SEC_TOP) {
		base = sec_find(c, r.kind, r.id);
		if (!base) {
			*err = xasprintf("%s: no %s '%s'", key, config_sections[r.kind].name, r.id);
			free(r.id);
			return -1;
		}
	}
	free(r.id);
	if (r.whole_section) {
		/* every field of the section, key = value */
		for (const struct field *f = config_sections[r.kind].fields; f->key; f++) {
			struct buf v = {0};
			if (config_field_get(base, f, &v))
				buf_printf(out, "%s = %s\n", f->key, v.s);
			buf_free(&v);
		}
		if (out->len && out->s[out->len - 1] == '\n')
			out->s[--out->len] = '\0';
		return 0;
	}
	if (!config_field_get(base, r.f, out)) {
		*err = xasprintf("%s: not set", key);
		return 1;
	}
	return 0;
}

static void *section_for_write(struct vm_config *c, struct keyref *r)
{
	if (r->kind == SEC_TOP)
		return c;
	void *e = sec_find(c, r->kind, r->id);
	return e ? e : sec_add(c, r->kind, r->id);
}

int config_set(struct vm_config *c, const char *key, const char *value, char **err)
{
	struct keyref r;
	if (resolve_key(key, &r, err) < 0)
		return -1;
	if (r.whole_section) {
		*err = xasprintf("%s: name a key of the section, e.g. %s.%s", key, key,
				 config_sections[r.kind].fields[0].key);
		free(r.id);
		return -1;
	}
	/* Check the value on a scratch field first so a refusal changes nothing. */
	union {
		char *s;
		int64_t i;
		bool b;
		struct strv l;
	} scratch;
	memset(&scratch, 0, sizeof scratch);
	struct field tmp = *r.f;
	tmp.offset = 0;
	if (config_field_set(&scratch, &tmp, key, value, err) < 0) {
		free(r.id);
		return -1;
	}
	void *base = section_for_write(c, &r);
	free(r.id);
	void *p = (char *)base + r.f->offset;
	field_free(base, r.f);
	switch (r.f->type) {
	case FT_STR:
	case FT_ENUM:
		*(char **)p = scratch.s;
		break;
	case FT_INT:
	case FT_MIB:
		*(int64_t *)p = scratch.i;
		break;
	case FT_BOOL:
		*(bool *)p = scratch.b;
		break;
	case FT_LIST:
		*(struct strv *)p = scratch.l; /* set replaces the list with one item */
		break;
	}
	return 0;
}

int config_add(struct vm_config *c, const char *key, const char *value, char **err)
{
	struct keyref r;
	if (resolve_key(key, &r, err) < 0)
		return -1;
	if (r.whole_section || r.f->type != FT_LIST) {
		*err = xasprintf("%s: not a list", key);
		free(r.id);
		return -1;
	}
	void *base = section_for_write(c, &r);
	free(r.id);
	strv_push((struct strv *)((char *)base + r.f->offset), value);
	return 0;
}

int config_unset(struct vm_config *c, const char *key, char **err)
{
	struct keyref r;
	if (resolve_key(key, &r, err) < 0)
		return -1;
	if (r.kind == SEC_TOP) {
		if (!strcmp(r.f->key, "uuid")) {
			*err = xasprintf("%s: cannot be unset", key);
			return -1;
		}
		field_free(c, r.f);
		return 0;
	}
	size_t n = config_section_count(c, r.kind), i;
	for (i = 0; i < n; i++)
		if (!strcmp(*(char **)config_section_elem(c, r.kind, i), r.id))
			break;
	if (i == n) {
		*err = xasprintf("%s: no %s '%s'", key, config_sections[r.kind].name, r.id);
		free(r.id);
		return -1;
	}
	free(r.id);
	if (r.whole_section)
		sec_remove(c, r.kind, i);
	else
		field_free(config_section_elem(c, r.kind, i), r.f);
	return 0;
}

/* ---- validation ---- */

/* ---- grammars of the values QEMU reads inside option strings ---- */

static bool chars_in(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && (!s[i] || !strchr(extra, s[i])))
			return false;
	return true;
}

/* QEMU's names of machines, CPU models and devices: q35, pc-q35-7.2,
 * Skylake-Client-v4, virtio-vga-gl, intel-hda, ich9-intel-hda. */
static bool qemu_name_valid(const char *s)
{
	size_t n = strlen(s);
	return n && n <= 128 && chars_in(s, n, "_.-");
}

static bool nic_model_valid(const char *s)
{
	return !*s || qemu_name_valid(s); /* empty: the machine's on-board NIC */
}

static bool cpu_flag_valid(const char *s)
{
	return (s[0] == '+' || s[0] == '-') && qemu_name_valid(s + 1);
}

/* KEY=VALUE[,KEY=VALUE...]: the -machine properties, keys by design. */
static bool machine_props_valid(const char *s)
{
	if (!*s)
		return true;
	for (;;) {
		size_t n = strcspn(s, ","), k = strcspn(s, "=");
		if (k >= n || !k || !chars_in(s, k, "_.-") || k + 1 == n)
			return false;
		for (size_t i = k + 1; i < n; i++)
			if (s[i] <= ' ' || s[i] == 0x7f)
				return false;
		if (!s[n])
			return true;
		s += n + 1;
	}
}

static bool image_format_valid(const char *s)
{
	return *s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789") == strlen(s);
}

/* A Linux network interface name (dev_valid_name: under IFNAMSIZ bytes,
 * no '/', ':' or white space, not . or ..), and no ',' or '=' either. */
static bool ifname_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n >= 16 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("/:,=", *p))
			return false;
	return true;
}

static bool ipv4_valid(const char *s, size_t n)
{
	char a[16];
	struct in_addr ia;
	if (n >= sizeof a)
		return false;
	memcpy(a, s, n);
	a[n] = '\0';
	return inet_pton(AF_INET, a, &ia) == 1;
}

static bool port_valid(const char *s, long long min)
{
	long long v;
	return *s && strspn(s, "0123456789") == strlen(s) && strlen(s) <= 5 &&
	       parse_int(s, min, 65535, &v, NULL) == 0;
}

/* HOST:PORT (net.*.address): HOST an IPv4 address, a host name, [IPv6] or
 * empty (listen on all), PORT 1-65535. */
static bool host_port_valid(const char *s)
{
	const char *colon = strrchr(s, ':');
	if (!colon || !port_valid(colon + 1, 1))
		return false;
	size_t n = (size_t)(colon - s);
	if (n && s[0] == '[') {
		char a[INET6_ADDRSTRLEN];
		struct in6_addr ia;
		if (s[n - 1] != ']' || n - 2 >= sizeof a)
			return false;
		memcpy(a, s + 1, n - 2);
		a[n - 2] = '\0';
		return inet_pton(AF_INET6, a, &ia) == 1;
	}
	return n <= 253 && chars_in(s, n, ".-_");
}

/* ADDRESS[/BITS or /NETMASK], IPv4: QEMU's user-mode net= */
static bool subnet_valid(const char *s)
{
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (!ipv4_valid(s, n))
		return false;
	if (!slash)
		return true;
	long long v;
	if (strspn(slash + 1, "0123456789") == strlen(slash + 1))
		return slash[1] && strlen(slash + 1) <= 2 && parse_int(slash + 1, 0, 32, &v, NULL) == 0;
	return ipv4_valid(slash + 1, strlen(slash + 1));
}

/* tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, addresses IPv4 or
 * empty (what QEMU's hostfwd= reads). */
static bool forward_valid(const char *s)
{
	if (!has_prefix(s, "tcp:") && !has_prefix(s, "udp:"))
		return false;
	s += 4;
	const char *dash = strchr(s, '-');
	if (!dash)
		return false;
	const char *hp = memrchr(s, ':', (size_t)(dash - s)), *gp = strrchr(dash, ':');
	if (!hp || !gp)
		return false;
	char *hport = strndup(hp + 1, (size_t)(dash - hp - 1));
	bool ok = (hp == s || ipv4_valid(s, (size_t)(hp - s))) && port_valid(hport, 0) &&
		  (gp == dash + 1 || ipv4_valid(dash + 1, (size_t)(gp - dash - 1))) && port_valid(gp + 1, 1);
	free(hport);
	return ok;
}

/* A 9p mount tag: 1-31 printable characters, no ',' or space. */
static bool tag_9p_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 31)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == ',')
			return false;
	return true;
}

static bool mac_grammar_valid(const char *s)
{
	return mac_valid(s);
}

static bool uuid_grammar_valid(const char *s)
{
	return uuid_valid(s);
}

const struct grammar grammar_machine = {"a machine type (letters, digits, _ . -)", qemu_name_valid},
		     grammar_machine_props = {"a list of KEY=VALUE properties separated by commas",
					      machine_props_valid},
		     grammar_cpu_model = {"a CPU model (letters, digits, _ . -)", qemu_name_valid},
		     grammar_cpu_flag = {"+flag or -flag", cpu_flag_valid},
		     grammar_device = {"a QEMU device name (letters, digits, _ . -)", qemu_name_valid},
		     grammar_nic_model = {"a QEMU device name (letters, digits, _ . -), or empty for the machine's NIC",
					  nic_model_valid},
		     grammar_image_format = {"an image format (qcow2, raw, ...)", image_format_valid},
		     grammar_mac = {"a unicast MAC address", mac_grammar_valid},
		     grammar_forward = {"tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT (IPv4 addresses)", forward_valid},
		     grammar_ifname = {"an interface name (1-15 characters, no '/', ':', ',', '=' or space)",
				       ifname_valid},
		     grammar_host_port = {"HOST:PORT (an IPv4 address, host name or [IPv6 address], and a port)",
					  host_port_valid},
		     grammar_subnet = {"an IPv4 network (ADDRESS/BITS, e.g. 10.0.2.0/24)", subnet_valid},
		     grammar_9p_tag = {"a 9p tag (1-31 characters, no ',' or space)", tag_9p_valid},
		     grammar_uuid = {"a UUID", uuid_grammar_valid};

#define PROBLEM(...) (buf_printf(errs, __VA_ARGS__), buf_puts(errs, "\n"), nerr++)

/* Every section id, and every value of a field with a grammar, through the table. */
static int check_grammars(const struct vm_config *c, struct buf *errs)
{
	int nerr = 0;
	for (int k = SEC_TOP; k < SEC_COUNT; k++) {
		const struct section_desc *sd = &config_sections[k];
		size_t n = k == SEC_TOP ? 1 : config_section_count(c, k);
		for (size_t i = 0; i < n; i++) {
			const void *base = k == SEC_TOP ? (const void *)c : config_section_elem(c, k, i);
			char *prefix = k == SEC_TOP ? xstrdup("") : xasprintf("%s.%s.", sd->name, *(char *const *)base);
			if (k != SEC_TOP && !config_id_valid(*(char *const *)base))
				PROBLEM("%.*s: bad %s id (letters, digits, _ and -)", (int)strlen(prefix) - 1, prefix,
					sd->name);
			for (const struct field *f = sd->fields; f->key; f++) {
				const void *p = (const char *)base + f->offset;
				/* an enum a codec stored without config_field_set */
				const char *ev = f->type == FT_ENUM ? *(char *const *)p : NULL;
				if (ev && !str_in(ev, f->values))
					PROBLEM("%s%s: '%s' is not a known value", prefix, f->key, ev);
				if (!f->grammar)
					continue;
				const struct strv one = {.v = (char **)p, .n = *(char *const *)p ? 1 : 0};
				const struct strv *vals = f->type == FT_LIST ? p : &one;
				for (size_t j = 0; j < vals->n; j++)
					if (!f->grammar->valid(vals->v[j]))
						PROBLEM("%s%s: '%s' is not %s", prefix, f->key, vals->v[j], f->grammar->what);
			}
			free(prefix);
		}
	}
	return nerr;
}

int config_validate(const struct vm_config *c, struct buf *errs)
{
	int nerr = 0;
	nerr += check_grammars(c, errs);
	if (!c->uuid)
		PROBLEM("uuid: not set");
	if (!c->arch)
		PROBLEM("arch: not set");
	if (c->firmware && !strcmp(c->firmware, "none") && !c->kernel && !c->bios)
		PROBLEM("firmware: none needs a kernel or a bios image");
	if ((c->initrd || c->append || c->dtb) && !c->kernel)
		PROBLEM("%s: needs kernel", c->initrd ? "initrd" : c->append ? "append" : "dtb");
	const char *files[] = {c->bios, c->efi_vars, c->kernel, c->initrd, c->dtb};
	const char *fkeys[] = {"bios", "efi_vars", "kernel", "initrd", "dtb"};
	for (int i = 0; i < 5; i++)
		if (files[i] && files[i][0] != '/' && !bundle_name_is_safe(files[i]))
			PROBLEM("%s: '%s' leaves the bundle", fkeys[i], files[i]);
	if (c->usb_tablet && c->usb && !strcmp(c->usb, "none"))
		PROBLEM("usb_tablet: needs usb = 2.0 or 3.0");
	for (size_t i = 0; i < c->ndrives; i++) {
		const struct vm_drive *d = &c->drives[i];
		if (!d->image && !d->removable && !(d->media && !strcmp(d->media, "none")))
			PROBLEM("drive.%s.image: not set (only removable drives may be empty)", d->id);
		if (d->image && d->image[0] != '/' && !bundle_name_is_safe(d->image))
			PROBLEM("drive.%s.image: '%s' leaves the bundle", d->id, d->image);
		if (d->media && !strcmp(d->media, "cdrom") && d->interface &&
		    str_in(d->interface, (const char *const[]){"virtio", "nvme", "pflash", "sd", NULL}))
			PROBLEM("drive.%s.interface: a cdrom cannot be on %s", d->id, d->interface);
	}
	for (size_t i = 0; i < c->nnets; i++) {
		const struct vm_net *n = &c->nets[i];
		if (!n->mac)
			PROBLEM("net.%s.mac: not set", n->id);
		if (n->forward.n && n->mode && strcmp(n->mode, "user"))
			PROBLEM("net.%s.forward: only user mode forwards ports", n->id);
		if (n->mode && (!strcmp(n->mode, "socket") || !strcmp(n->mode, "mcast")) && !n->address)
			PROBLEM("net.%s.address: %s mode needs HOST:PORT", n->id, n->mode);
		if (n->mode && !strcmp(n->mode, "bridge") && !n->bridge)
			PROBLEM("net.%s.bridge: bridge mode needs a bridge", n->id);
	}
	int consoles = 0;
	for (size_t i = 0; i < c->nserials; i++) {
		const struct vm_serial *s = &c->serials[i];
		if (s->mode && !strcmp(s->mode, "file") && !s->path)
			PROBLEM("serial.%s.path: file mode needs a path", s->id);
		if (s->mode && !strcmp(s->mode, "stdio"))
			consoles++;
	}
	if (consoles > 1)
		PROBLEM("serial: only one serial port can use stdio");
	for (size_t i = 0; i < c->nshares; i++) {
		const struct vm_share *s = &c->shares[i];
		if (!s->path)
			PROBLEM("share.%s.path: not set", s->id);
	}
	return nerr;
}

const char *config_qemu_arch(const char *arch)
{
	/* qemu-system-i386 runs i386; the rest map 1:1 */
	return arch;
}

void config_allow_path(struct vm_config *c, const char *path)
{
	for (size_t i = 0; i < c->allow_paths.n; i++)
		if (!strcmp(c->allow_paths.v[i], path))
			return;
	strv_push(&c->allow_paths, path);
}

char *config_first_problem(const struct vm_config *c)
{
	struct buf errs = {0};
	if (!config_validate(c, &errs)) {
		buf_free(&errs);
		return NULL;
	}
	char *nl = strchr(errs.s, '\n');
	if (nl)
		*nl = '\0';
	return errs.s;
}
