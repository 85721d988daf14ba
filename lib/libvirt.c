/* A bundle as a libvirt domain (libvirt.h). */
#include "libvirt.h"

#include <libxml/tree.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "disk.h"
#include "dl.h"
#include "firmware.h"
#include "launch.h"
#include "qopt.h"
#include "runtime.h"

/* ---- libxml2, opened on first use ---- */
#define XML_FUNCS(X)                                                                               \
	X(xmlNewDoc)                                                                               \
	X(xmlNewNode)                                                                              \
	X(xmlDocSetRootElement)                                                                    \
	X(xmlNewTextChild)                                                                         \
	X(xmlNewProp)                                                                              \
	X(xmlNewNs)                                                                                \
	X(xmlSetNs)                                                                                \
	X(xmlDocDumpFormatMemoryEnc)                                                               \
	X(xmlFreeDoc)

static struct {
#define X(f) __typeof__(f) *f;
	XML_FUNCS(X)
#undef X
	xmlFreeFunc *xml_free; /* libxml2's xmlFree is a variable holding the function */
} xml;
static void *xml_handle;

static int xml_load(char **err)
{
	static const struct dl_sym syms[] = {
#define X(f) DL_SYM(xml, f),
	    XML_FUNCS(X)
#undef X
	    DL_SYM_AS(xml, xml_free, "xmlFree"),
	};
	if (xml_handle)
		return 0;
	char *e = NULL;
	xml_handle = dl_open_syms("libxml2.so.2", "libxml2", "Debian package libxml2", syms, sizeof syms / sizeof *syms,
				  &e);
	if (!xml_handle) {
		vm_set_err(err, "cannot write a libvirt domain: %s", e);
		free(e);
		return -1;
	}
	return 0;
}

/* ---- building ---- */

struct lv {
	const struct bundle *b;
	const struct vm_config *c;
	const struct libvirt_opts *o;
	struct strv *warn;
	char *rt;
	xmlNodePtr root, devices;
	xmlNsPtr qns;
	xmlNodePtr cmdline; /* <qemu:commandline>, made on first use */
	int cmdline_slot;   /* the last PCI slot given to a device in it */
	char **err;
	bool failed;
};

#define X_(s) ((const xmlChar *)(s))

static xmlNodePtr child(xmlNodePtr parent, const char *name, const char *text)
{
	return xml.xmlNewTextChild(parent, NULL, X_(name), text ? X_(text) : NULL);
}

static void attr(xmlNodePtr n, const char *name, const char *value)
{
	xml.xmlNewProp(n, X_(name), X_(value));
}

static void attrf(xmlNodePtr n, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void attrf(xmlNodePtr n, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *v;
	if (vasprintf(&v, fmt, ap) < 0)
		abort();
	va_end(ap);
	attr(n, name, v);
	free(v);
}

/* <child attr=value .../>: pairs of names and values, NULL-terminated. */
static xmlNodePtr elem(xmlNodePtr parent, const char *name, ...)
{
	xmlNodePtr n = child(parent, name, NULL);
	va_list ap;
	va_start(ap, name);
	for (const char *k; (k = va_arg(ap, const char *));)
		attr(n, k, va_arg(ap, const char *));
	va_end(ap);
	return n;
}

static void warn(struct lv *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct lv *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m;
	if (vasprintf(&m, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (x->warn)
		strv_push(x->warn, m);
	free(m);
}

/* QEMU arguments libvirt cannot say: <qemu:arg value=.../> each. */
static void qemu_args(struct lv *x, ...)
{
	if (!x->cmdline)
		x->cmdline = xml.xmlNewTextChild(x->root, x->qns, X_("commandline"), NULL);
	va_list ap;
	va_start(ap, x);
	for (const char *a; (a = va_arg(ap, const char *));) {
		xmlNodePtr n = xml.xmlNewTextChild(x->cmdline, x->qns, X_("arg"), NULL);
		attr(n, "value", a);
	}
	va_end(ap);
}

static void fail(struct lv *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct lv *x, const char *fmt, ...)
{
	if (x->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *m;
	if (vasprintf(&m, fmt, ap) < 0)
		abort();
	va_end(ap);
	*x->err = m;
	x->failed = true;
}

/* One QEMU option for <qemu:commandline>, built as argv.c builds it. */
static void qemu_opt(struct lv *x, const char *opt, struct qopt *o)
{
	char *e = NULL, *v = qopt_finish(o, &e);
	if (!v) {
		fail(x, "%s", e);
		free(e);
		return;
	}
	qemu_args(x, opt, v, NULL);
	free(v);
}

/* A file the config names, as an absolute path (inside the bundle or allowed). */
static char *file_path(struct lv *x, const char *key, const char *name)
{
	char *e = NULL, *p = bundle_resolve(x->b, name, &e);
	if (!p) {
		fail(x, "%s: %s", key, e);
		free(e);
	}
	return p;
}

const char *libvirt_arch(const char *qemu_arch)
{
	if (!strcmp(qemu_arch, "i386"))
		return "i686";
	if (!strcmp(qemu_arch, "arm"))
		return "armv7l";
	return qemu_arch;
}

static void os(struct lv *x)
{
	const struct vm_config *c = x->c;
	xmlNodePtr os = child(x->root, "os", NULL);
	xmlNodePtr t = child(os, "type", "hvm");
	attr(t, "arch", libvirt_arch(config_qemu_arch(c->arch)));
	attr(t, "machine", c->machine);
	if (c->bios) {
		char *p = file_path(x, "bios", c->bios);
		if (p)
			attr(child(os, "loader", p), "type", "rom");
		free(p);
	} else if (!strcmp(c->firmware, "uefi")) {
		char *code = firmware_uefi_code(c->arch);
		if (!code) {
			fail(x, "firmware: no UEFI firmware for %s (install ovmf or qemu-efi-aarch64)", c->arch);
			return;
		}
		xmlNodePtr l = child(os, "loader", code);
		attr(l, "readonly", "yes");
		attr(l, "type", "pflash");
		free(code);
		char *vars = file_path(x, "efi_vars", c->efi_vars);
		if (vars) {
			xmlNodePtr nv = child(os, "nvram", vars);
			/* libvirt makes the store from the template when it is missing,
			 * as vm-run does */
			char *tmpl = firmware_uefi_vars(c->arch);
			if (tmpl)
				attr(nv, "template", tmpl);
			free(tmpl);
		}
		free(vars);
	}
	const char *keys[] = {"kernel", "initrd", "dtb"};
	const char *vals[] = {c->kernel, c->initrd, c->dtb};
	for (int i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		char *p = file_path(x, keys[i], vals[i]);
		if (p)
			child(os, keys[i], p);
		free(p);
	}
	if (c->append)
		child(os, "cmdline", c->append);
	/* boot order: <boot order=N/> on each disk, as argv's bootindex */
}

static void features(struct lv *x)
{
	const struct vm_config *c = x->c;
	bool acpi = config_is_x86(c) || (!strcmp(c->arch, "aarch64") && has_prefix(c->machine, "virt"));
	bool tb = c->tcg_tb_size && !strcmp(x->o->domain_type, "qemu");
	if (!acpi && !tb)
		return;
	xmlNodePtr f = child(x->root, "features", NULL);
	/* QEMU's default; libvirt turns ACPI off unless it is named */
	if (acpi)
		child(f, "acpi", NULL);
	if (tb) {
		char *v = xasprintf("%lld", (long long)c->tcg_tb_size);
		attr(child(child(f, "tcg", NULL), "tb-cache", v), "unit", "MiB");
		free(v);
	}
}

static void cpu(struct lv *x)
{
	const struct vm_config *c = x->c;
	bool kvm = !strcmp(x->o->domain_type, "kvm");
	if (strcmp(c->tcg_thread, "auto") && !kvm)
		warn(x, "tcg_thread = %s: libvirt cannot choose TCG's threading; QEMU's default applies",
		     c->tcg_thread);
	xmlNodePtr n;
	if (strcmp(c->cpu, "default")) {
		/* the model QEMU knows; libvirt need not compare it with the host */
		n = elem(x->root, "cpu", "mode", "custom", "match", "exact", "check", "none", NULL);
		attr(child(n, "model", c->cpu), "fallback", "forbid");
	} else if (config_is_x86(c) || !strcmp(c->arch, "aarch64")) {
		/* as argv.c: KVM runs the host's CPU, TCG emulates all it can (max) */
		n = elem(x->root, "cpu", "mode", kvm ? "host-passthrough" : "maximum", "check", "none", NULL);
	} else if (!strcmp(c->arch, "arm") && !kvm) {
		n = elem(x->root, "cpu", "mode", "custom", "match", "exact", "check", "none", NULL);
		attr(child(n, "model", "cortex-a15"), "fallback", "forbid");
	} else if (c->cpu_flags.n) {
		n = elem(x->root, "cpu", "mode", kvm ? "host-passthrough" : "maximum", "check", "none", NULL);
	} else {
		return; /* the machine's own CPU */
	}
	for (size_t i = 0; i < c->cpu_flags.n; i++) {
		const char *fl = c->cpu_flags.v[i];
		bool off = *fl == '-';
		elem(n, "feature", "policy", off ? "disable" : "require", "name", fl + (*fl == '+' || off), NULL);
	}
}

/* ---- devices ---- */

/* Target device names as libvirt orders them: vda, sdb, hdc, fda ... */
static char *target_dev(const char *prefix, int n)
{
	if (n < 26)
		return xasprintf("%s%c", prefix, 'a' + n);
	return xasprintf("%s%c%c", prefix, 'a' + n / 26 - 1, 'a' + n % 26);
}

static void drives(struct lv *x)
{
	const struct vm_config *c = x->c;
	bool pc = config_is_x86(c) && !has_prefix(c->machine, "q35") && !has_prefix(c->machine, "pc-q35");
	int n_vd = 0, n_sd = 0, n_hd = 0, n_fd = 0, n_mmc = 0;
	bool scsi = false;
	for (size_t i = 0; i < c->ndrives && !x->failed; i++) {
		const struct vm_drive *d = &c->drives[i];
		bool cd = !strcmp(d->media, "cdrom");
		struct drive_device dd;
		drive_device(c, d, &dd);
		char *key = xasprintf("drive.%s.image", d->id);
		char *path = d->image ? file_path(x, key, d->image) : NULL;
		free(key);
		if (d->image && !path)
			return;
		const char *fmt = d->format;
		if (path && !fmt) {
			char *e = NULL;
			if (!(fmt = disk_probe(path, &e))) {
				/* as argv.c: the name tells, when the file cannot */
				size_t l = strlen(path);
				fmt = l > 6 && !strcmp(path + l - 6, ".qcow2") ? "qcow2" : "raw";
				warn(x, "drive.%s: %s; format %s assumed", d->id, e, fmt);
			}
			free(e);
		}
		const char *bus = NULL, *prefix = "sd";
		int *counter = &n_sd;
		const char *drv = dd.driver ? dd.driver : "";
		if (has_prefix(drv, "virtio-blk")) {
			bus = "virtio", prefix = "vd", counter = &n_vd;
		} else if (has_prefix(drv, "ide-")) {
			bus = pc ? "ide" : "sata";
			if (pc)
				prefix = "hd", counter = &n_hd;
		} else if (has_prefix(drv, "scsi-")) {
			bus = "scsi";
			scsi = true;
		} else if (!strcmp(drv, "usb-storage")) {
			bus = "usb";
		} else if (!dd.driver && !strcmp(dd.if_arg, "floppy")) {
			bus = "fdc", prefix = "fd", counter = &n_fd;
		} else if (!dd.driver && !strcmp(dd.if_arg, "sd")) {
			bus = "sd", prefix = "mmcblk", counter = &n_mmc;
		}
		if (!bus) {
			/* NVMe disks (libvirt's nvme bus is newer than this one), pflash,
			 * a machine's own SCSI: QEMU's own words */
			warn(x, "drive.%s: interface %s: libvirt cannot say it; in <qemu:commandline>", d->id,
			     d->interface);
			struct qopt *drive = qopt_new(NULL);
			qopt_add(drive, "if", dd.if_arg);
			qopt_addf(drive, "id", "drive-%s", d->id);
			if (path) {
				qopt_add(drive, "file", path);
				if (fmt)
					qopt_add_checked(drive, "format", fmt, &grammar_image_format, "drive.%s.format",
							 d->id);
			}
			if (d->readonly || cd) {
				qopt_add(drive, "readonly", "on");
			} else {
				qopt_add(drive, "discard", "unmap");
				qopt_add(drive, "detect-zeroes", "unmap");
			}
			qemu_opt(x, "-drive", drive);
			if (dd.driver) {
				struct qopt *dev = qopt_new(dd.driver);
				qopt_addf(dev, "drive", "drive-%s", d->id);
				qopt_add(dev, "id", d->id);
				if (dd.pci && config_has_pci(c)) {
					/* libvirt numbers its own PCI slots from 1 up and knows
					 * nothing of this one: it takes one from the top */
					int slot = x->cmdline_slot ? x->cmdline_slot - 1 : 0x1c;
					x->cmdline_slot = slot == 0x1b ? 0x1a : slot;
					qopt_add(dev, "bus", machine_is_pcie(c) ? "pcie.0" : "pci.0");
					qopt_addf(dev, "addr", "0x%x", x->cmdline_slot);
				}
				if (dd.serial)
					qopt_addf(dev, "serial", "%.20s", d->id);
				qopt_addf(dev, "bootindex", "%d", drive_boot_index(c, d));
				qemu_opt(x, "-device", dev);
			}
			free(path);
			continue;
		}
		xmlNodePtr disk = elem(x->devices, "disk", "type", "file", "device",
				       cd ? "cdrom" : !strcmp(bus, "fdc") ? "floppy" : "disk", NULL);
		xmlNodePtr drvn = elem(disk, "driver", "name", "qemu", NULL);
		if (fmt)
			attr(drvn, "type", fmt);
		else if (cd)
			attr(drvn, "type", "raw");
		if (!d->readonly && !cd) {
			attr(drvn, "discard", "unmap");
			attr(drvn, "detect_zeroes", "unmap");
		}
		if (path)
			elem(disk, "source", "file", path, NULL);
		char *dev = target_dev(prefix, (*counter)++);
		xmlNodePtr t = elem(disk, "target", "dev", dev, "bus", bus, NULL);
		free(dev);
		if (!strcmp(bus, "usb") && (d->removable || cd))
			attr(t, "removable", "on");
		if (strcmp(bus, "fdc") && strcmp(bus, "sd"))
			attrf(elem(disk, "boot", NULL), "order", "%d", drive_boot_index(c, d));
		if (d->readonly || cd)
			child(disk, "readonly", NULL);
		/* libvirt's user aliases start with "ua-" */
		char *alias = xasprintf("ua-%s", d->id);
		elem(disk, "alias", "name", alias, NULL);
		free(alias);
		free(path);
	}
	if (scsi)
		elem(x->devices, "controller", "type", "scsi", "index", "0", "model", "virtio-scsi", NULL);
}

/* libvirt's NIC model names: its own for the virtio NIC, QEMU's for the rest. */
static const char *nic_model(const char *m)
{
	if (!strcmp(m, "virtio-net-pci") || !strcmp(m, "virtio-net-device") || !strcmp(m, "virtio-net-ccw"))
		return "virtio";
	return m;
}

static void nets(struct lv *x)
{
	const struct vm_config *c = x->c;
	for (size_t i = 0; i < c->nnets; i++) {
		const struct vm_net *n = &c->nets[i];
		if (!strcmp(n->mode, "none"))
			continue;
		if (!strcmp(n->mode, "user") && (n->forward.n || n->isolate || !*n->model || has_prefix(n->model, "usb-"))) {
			/* <portForward> needs the passt backend, and a restricted slirp
			 * has no word at all: the NIC goes as QEMU's own -netdev user */
			warn(x, "net.%s: %s: libvirt cannot say it with user networking (slirp); the NIC is in "
				"<qemu:commandline>",
			     n->id, n->forward.n ? "port forwards" : n->isolate ? "isolate" : *n->model ? "a USB NIC" : "on-board NIC");
			struct qopt *nd, *dev;
			net_options(n, &nd, &dev);
			qemu_opt(x, "-netdev", nd);
			qemu_opt(x, *n->model ? "-device" : "-net", dev);
			continue;
		}
		const char *type = !strcmp(n->mode, "user")     ? "user"
				   : !strcmp(n->mode, "tap")    ? "ethernet"
				   : !strcmp(n->mode, "bridge") ? "bridge"
				   : !strcmp(n->mode, "mcast")  ? "mcast"
				   : n->listen			? "server"
								: "client";
		xmlNodePtr nic = elem(x->devices, "interface", "type", type, NULL);
		elem(nic, "mac", "address", n->mac, NULL);
		if (!strcmp(type, "bridge")) {
			elem(nic, "source", "bridge", n->bridge, NULL);
		} else if (!strcmp(type, "ethernet")) {
			if (n->ifname)
				elem(nic, "target", "dev", n->ifname, "managed", "no", NULL);
		} else if (n->address) {
			/* socket and mcast: HOST:PORT */
			char *host = xstrdup(n->address), *port = strrchr(host, ':');
			if (port)
				*port++ = 0;
			xmlNodePtr s = elem(nic, "source", NULL);
			if (*host)
				attr(s, "address", host);
			if (port)
				attr(s, "port", port);
			free(host);
		}
		if (!strcmp(type, "user") && n->subnet) {
			char *a = xstrdup(n->subnet), *len = strchr(a, '/');
			if (len)
				*len++ = 0;
			elem(nic, "ip", "family", "ipv4", "address", a, "prefix", len ? len : "24", NULL);
			free(a);
		}
		elem(nic, "model", "type", nic_model(n->model), NULL);
		char *alias = xasprintf("ua-%s", n->id);
		elem(nic, "alias", "name", alias, NULL);
		free(alias);
	}
}

static void serials(struct lv *x)
{
	const struct vm_config *c = x->c;
	struct vm_serial def = {.id = "console", .mode = "socket", .target = "console"};
	size_t n = c->nserials ? c->nserials : 1;
	int port = 0;
	for (size_t i = 0; i < n; i++) {
		const struct vm_serial *s = c->nserials ? &c->serials[i] : &def;
		if (!strcmp(s->mode, "none"))
			continue;
		if (strcmp(s->target, "console")) {
			/* a monitor or gdb on a serial line: QEMU's own options */
			warn(x, "serial.%s: target %s: libvirt cannot say it; a pty in <qemu:commandline>", s->id,
			     s->target);
			char *ch = xasprintf("pty,id=ser-%s", s->id);
			char *use = !strcmp(s->target, "monitor") ? xasprintf("chardev=ser-%s,mode=readline", s->id)
								  : xasprintf("chardev:ser-%s", s->id);
			qemu_args(x, "-chardev", ch, !strcmp(s->target, "monitor") ? "-mon" : "-gdb", use, NULL);
			free(ch);
			free(use);
			continue;
		}
		xmlNodePtr ser;
		if (!strcmp(s->mode, "file")) {
			char *e = NULL, *p = s->path[0] == '/' ? xstrdup(s->path) : bundle_resolve(x->b, s->path, &e);
			ser = elem(x->devices, "serial", "type", "file", NULL);
			elem(ser, "source", "path", p ? p : s->path, NULL);
			free(p);
			free(e);
		} else {
			/* libvirt runs QEMU as its own user, which cannot make sockets
			 * in our runtime dir: a pty, which virsh console reaches */
			ser = elem(x->devices, "serial", "type", "pty", NULL);
			if (i == 0) {
				char *log = path_join(x->rt, RT_CONSOLE_LOG);
				elem(ser, "log", "file", log, "append", "off", NULL);
				free(log);
			}
		}
		attrf(elem(ser, "target", NULL), "port", "%d", port++);
		char *alias = xasprintf("ua-%s", s->id);
		elem(ser, "alias", "name", alias, NULL);
		free(alias);
	}
}

/* libvirt's video model for a display device, or NULL. */
static const char *video_model(const char *dev)
{
	static const char *const map[][2] = {
	    {"virtio-vga", "virtio"}, {"virtio-gpu-pci", "virtio"}, {"virtio-gpu", "virtio"},
	    {"virtio-gpu-device", "virtio"}, {"qxl-vga", "qxl"}, {"qxl", "qxl"}, {"VGA", "vga"},
	    {"cirrus-vga", "cirrus"}, {"bochs-display", "bochs"}, {"ramfb", "ramfb"}, {"vmware-svga", "vmvga"},
	};
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (!strcmp(dev, map[i][0]))
			return map[i][1];
	return NULL;
}

static const char *sound_model(const char *s)
{
	static const char *const map[][2] = {
	    {"intel-hda", "ich6"}, {"ich9-intel-hda", "ich9"}, {"AC97", "ac97"}, {"ac97", "ac97"},
	    {"sb16", "sb16"},	   {"es1370", "es1370"},      {"usb-audio", "usb"}, {"cs4231a", "pcspk"},
	};
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (!strcmp(s, map[i][0]))
			return map[i][1];
	return NULL;
}

static void devices(struct lv *x)
{
	const struct vm_config *c = x->c;
	/* USB: libvirt would add a controller of its choice when none is named */
	/* as argv.c gives QEMU: xHCI on virt machines and for USB 3.0, else the
	 * machine's own (-usb): UHCI on pc, OHCI on mac99 and pseries */
	if (!strcmp(c->usb, "none")) {
		elem(x->devices, "controller", "type", "usb", "model", "none", NULL);
	} else if (usb_is_xhci(c)) {
		elem(x->devices, "controller", "type", "usb", "index", "0", "model", "qemu-xhci", NULL);
	} else if (machine_is_pcie(c)) {
		/* q35's EHCI and its UHCI companions share slot 0x1d, where
		 * libvirt places other functions of its own: xHCI takes every
		 * speed the same way */
		elem(x->devices, "controller", "type", "usb", "index", "0", "model", "qemu-xhci", NULL);
	} else {
		elem(x->devices, "controller", "type", "usb", "index", "0", "model",
		     config_is_x86(c) ? "piix3-uhci" : "pci-ohci", NULL);
	}
	if (c->usb_tablet)
		elem(x->devices, "input", "type", "tablet", "bus", "usb", NULL);
	if (strcmp(c->display, "none")) {
		xmlNodePtr g = elem(x->devices, "graphics", "type", c->display, NULL);
		/* a socket libvirt names (virsh domdisplay), as vm-run's RUNTIME/vnc.sock */
		elem(g, "listen", "type", "socket", NULL);
		const char *dev = display_device(c);
		const char *model = dev ? video_model(dev) : NULL;
		if (dev && !model) {
			warn(x, "display_device = %s: not a libvirt video model; in <qemu:commandline>", dev);
			qemu_args(x, "-device", dev, NULL);
			model = "none";
		}
		if (model)
			elem(child(x->devices, "video", NULL), "model", "type", model, NULL);
	}
	if (strcmp(c->sound, "none")) {
		const char *m = sound_model(c->sound);
		if (m) {
			elem(x->devices, "sound", "model", m, NULL);
			elem(x->devices, "audio", "id", "1", "type", "none", NULL);
		} else {
			warn(x, "sound = %s: not a libvirt sound model; in <qemu:commandline>", c->sound);
			char *d = xasprintf("%s,audiodev=audio0", c->sound);
			qemu_args(x, "-audiodev", "none,id=audio0", "-device", d, NULL);
			free(d);
		}
	}
	for (size_t i = 0; i < c->nshares; i++) {
		const struct vm_share *s = &c->shares[i];
		char *e = NULL;
		if (bundle_check_outside(x->b, s->path, &e) < 0) {
			fail(x, "share.%s.path: %s", s->id, e);
			free(e);
			return;
		}
		/* accessmode mapped: security_model=mapped-xattr, as argv.c */
		xmlNodePtr fs = elem(x->devices, "filesystem", "type", "mount", "accessmode", "mapped", NULL);
		elem(fs, "source", "dir", s->path, NULL);
		elem(fs, "target", "dir", s->tag, NULL);
		if (s->readonly)
			child(fs, "readonly", NULL);
	}
	if (c->tpm) {
		warn(x, "tpm: libvirt runs swtpm with a state of its own, not the bundle's Data/tpmdata");
		/* argv.c's devices: tpm-crb, tpm-spapr, tpm-tis-device (libvirt: tpm-tis) */
		const char *model = config_is_x86(c) ? "tpm-crb" : !strcmp(c->arch, "ppc64") ? "tpm-spapr" : "tpm-tis";
		xmlNodePtr t = elem(x->devices, "tpm", "model", model, NULL);
		elem(t, "backend", "type", "emulator", "version", "2.0", NULL);
	}
	if (c->rng) {
		xmlNodePtr r = elem(x->devices, "rng", "model", "virtio", NULL);
		attr(child(r, "backend", "/dev/urandom"), "model", "random");
	}
	/* libvirt adds a balloon unless told */
	elem(x->devices, "memballoon", "model", c->balloon ? "virtio" : "none", NULL);
	if (x->o->exit_device && config_is_x86(c)) {
		warn(x, "--exit-device: isa-debug-exit is not a libvirt device; in <qemu:commandline>");
		qemu_args(x, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", NULL);
	}
	if (c->machine_props && *c->machine_props) {
		/* QEMU merges a second -machine into the first */
		warn(x, "machine_props = %s: in <qemu:commandline>", c->machine_props);
		qemu_args(x, "-machine", c->machine_props, NULL);
	}
	if (c->extra_args.n) {
		warn(x, "extra_args: %zu argument%s in <qemu:commandline>", c->extra_args.n,
		     c->extra_args.n == 1 ? "" : "s");
		for (size_t i = 0; i < c->extra_args.n; i++)
			qemu_args(x, c->extra_args.v[i], NULL);
	}
}

static char *emulator(const struct libvirt_opts *o, const char *qarch)
{
	char *name = xasprintf("qemu-system-%s", qarch);
	char *p = o->qemu_dir ? path_join(o->qemu_dir, name) : launch_find_program(name);
	if (!p)
		p = path_join("/usr/bin", name);
	free(name);
	return p;
}

char *libvirt_domain_xml(const struct bundle *b, const struct libvirt_opts *o, struct strv *warnings,
			 char **err)
{
	if (b->plist.not_runnable) {
		*err = xstrdup(b->plist.not_runnable);
		return NULL;
	}
	if (xml_load(err) < 0)
		return NULL;
	struct vm_config c;
	bundle_effective_config(b, &c);
	char *problem = config_first_problem(&c);
	if (problem) {
		*err = xasprintf("%s: %s", b->conf_path, problem);
		free(problem);
		config_free(&c);
		return NULL;
	}
	struct lv x = {.b = b, .c = &c, .o = o, .warn = warnings, .err = err};
	*err = NULL;
	x.rt = o->runtime_dir ? xstrdup(o->runtime_dir) : bundle_runtime_path(b, NULL, err);
	if (!x.rt) {
		config_free(&c);
		return NULL;
	}
	xmlDocPtr doc = xml.xmlNewDoc(X_("1.0"));
	x.root = xml.xmlNewNode(NULL, X_("domain"));
	xml.xmlDocSetRootElement(doc, x.root);
	attr(x.root, "type", o->domain_type);
	x.qns = xml.xmlNewNs(x.root, X_(LIBVIRT_QEMU_NS), X_("qemu"));

	char *name = c.name ? xstrdup(c.name) : bundle_display_name(b->path);
	child(x.root, "name", name);
	free(name);
	child(x.root, "uuid", c.uuid);
	if (c.notes && *c.notes)
		child(x.root, "description", c.notes);
	char *mem = xasprintf("%lld", (long long)c.memory);
	attr(child(x.root, "memory", mem), "unit", "MiB");
	free(mem);
	char *cpus = xasprintf("%lld", (long long)c.cpus);
	child(x.root, "vcpu", cpus);
	free(cpus);
	os(&x);
	features(&x);
	cpu(&x);
	elem(x.root, "clock", "offset", c.rtc_localtime ? "localtime" : "utc", NULL);
	x.devices = child(x.root, "devices", NULL);
	char *emu = emulator(o, config_qemu_arch(c.arch));
	child(x.devices, "emulator", emu);
	free(emu);
	if (!x.failed)
		drives(&x);
	if (!x.failed) {
		nets(&x);
		serials(&x);
		devices(&x);
	}
	char *out = NULL;
	if (!x.failed) {
		xmlChar *text = NULL;
		int len = 0;
		xml.xmlDocDumpFormatMemoryEnc(doc, &text, &len, "UTF-8", 1);
		if (text) {
			out = xstrdup((const char *)text);
			(*xml.xml_free)(text);
		} else {
			*err = xstrdup("libxml2 could not write the document");
		}
	}
	xml.xmlFreeDoc(doc);
	free(x.rt);
	config_free(&c);
	return out;
}
