/* Config to QEMU argv (UTM's UTMQemuConfiguration+Arguments, for Linux).
 * Pure: the same bundle and options always give the same argv. */
#include "argv.h"
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "firmware.h"
#include "qopt.h"

int display_parse(const char *s, struct display_spec *out, char **err)
{
	memset(out, 0, sizeof *out);
	if (!strcmp(s, "none") || !strcmp(s, "vnc") || !strcmp(s, "spice")) {
		snprintf(out->kind, sizeof out->kind, "%s", s);
		return 0;
	}
	if (!strncmp(s, "vnc:", 4)) {
		char *end;
		errno = 0;
		long p = strtol(s + 4, &end, 10);
		if (!errno && end != s + 4 && !*end && p >= 5900 && p <= 65535) {
			snprintf(out->kind, sizeof out->kind, "vnc");
			out->port = (int)p;
			return 0;
		}
		vm_set_err(err, "display '%s': the VNC port must be 5900-65535", s);
		return -1;
	}
	vm_set_err(err, "display '%s' is not none, vnc, spice or vnc:PORT", s);
	return -1;
}

int display_resolve(const struct vm_config *c, const char *override, struct display_spec *out, char **err)
{
	return display_parse(override ? override : c->display ? c->display : "none", out, err);
}

char *display_uri(const struct display_spec *d, const char *runtime_dir)
{
	if (!strcmp(d->kind, "vnc") && d->port)
		return xasprintf("vnc://127.0.0.1:%d", d->port);
	if (!strcmp(d->kind, "vnc"))
		return xasprintf("vnc+unix://%s/%s", runtime_dir, RT_VNC);
	if (!strcmp(d->kind, "spice"))
		return xasprintf("spice+unix://%s/%s", runtime_dir, RT_SPICE);
	return NULL;
}

struct ctx {
	const struct bundle *b;
	const struct vm_config *c;
	const struct argv_opts *o;
	struct strv *out;
	char *rt;	   /* runtime dir */
	const char *accel; /* kvm tcg auto */
	char **err;
	int ide_bus, ide_unit;
	int chassis; /* the last pcie-root-port chassis we numbered */
	bool scsi_added;
	const char *usb_bus; /* the USB bus devices attach to, once a controller is there */
	int fdsets; /* fd sets handed out so far (-add-fd set=1..) */
};

static void add(struct ctx *x, const char *s)
{
	strv_push(x->out, s);
}

static void add2(struct ctx *x, const char *opt, const char *val)
{
	strv_push(x->out, opt);
	strv_push(x->out, val);
}

/* Every option string goes through qopt (qopt.h): opt and the finished
 * string, or -1 with *x->err when a value failed its grammar. */
static int emit(struct ctx *x, const char *opt, struct qopt *o)
{
	char *e = NULL, *s = qopt_finish(o, &e);
	if (!s) {
		free(*x->err);
		*x->err = e;
		return -1;
	}
	add2(x, opt, s);
	free(s);
	return 0;
}

/* A file in the runtime dir, as QEMU names it (unescaped). */
static char *rt_file(struct ctx *x, const char *name)
{
	return x->o->runtime_dirfd >= 0 ? xasprintf("/proc/self/fd/%d/%s", x->o->runtime_dirfd, name)
					 : path_join(x->rt, name);
}

/* How QEMU opens a file when o->open_file hands it descriptors. */
enum file_how {
	FILE_RO,   /* qemu_open, read-only: an fd set */
	FILE_RW,   /* qemu_open, read-write: an fd set with a RW and an RO fd */
	FILE_LOG,  /* qemu_open O_WRONLY|O_CREAT|O_TRUNC (chardev logfile) */
	FILE_READ, /* plain open() or fopen() (kernel, initrd): /dev/fd/N */
};

/* path (absolute) as QEMU should name it: itself, or an fd set or /dev/fd/N
 * when the caller opens files for QEMU. Unescaped: an option value goes
 * through qopt_add, while -kernel, -initrd, -dtb and -bios take the name as
 * it is (QEMU reads no ",," there). NULL with *x->err. */
static char *qemu_file(struct ctx *x, const char *key, const char *path, enum file_how how)
{
	if (!x->o->open_file)
		return xstrdup(path);
	static const int flags[] = {
	    [FILE_RO] = O_RDONLY, [FILE_RW] = O_RDWR, [FILE_LOG] = O_WRONLY | O_CREAT | O_TRUNC,
	    [FILE_READ] = O_RDONLY};
	char *e = NULL;
	int fd = x->o->open_file(x->o->open_ctx, path, flags[how], &e);
	if (fd < 0) {
		free(*x->err);
		*x->err = xasprintf("%s: %s", key, e ? e : path);
		free(e);
		return NULL;
	}
	if (how == FILE_READ)
		return xasprintf("/dev/fd/%d", fd);
	int set = ++x->fdsets;
	for (int i = 0; i < (how == FILE_RW ? 2 : 1); i++) {
		/* QEMU may open an image read-only (a reopen): give it both
		 * access modes, as libvirt does; -drive says auto-read-only=off,
		 * so the RW fd is the one that holds the image lock. */
		if (i == 1 && (fd = x->o->open_file(x->o->open_ctx, path, O_RDONLY, &e)) < 0) {
			free(*x->err);
			*x->err = xasprintf("%s: %s", key, e ? e : path);
			free(e);
			return NULL;
		}
		struct qopt *a = qopt_new(NULL);
		qopt_addf(a, "fd", "%d", fd);
		qopt_addf(a, "set", "%d", set);
		qopt_add(a, "opaque", path);
		if (emit(x, "-add-fd", a) < 0)
			return NULL;
	}
	return xasprintf("/dev/fdset/%d", set);
}

/* A file the config names, resolved inside the bundle, as QEMU should name it. */
static char *bundle_file(struct ctx *x, const char *key, const char *name, enum file_how how)
{
	char *e = NULL, *p = bundle_resolve(x->b, name, &e);
	if (!p) {
		free(*x->err);
		*x->err = xasprintf("%s: %s", key, e);
		free(e);
		return NULL;
	}
	char *q = qemu_file(x, key, p, how);
	free(p);
	return q;
}

static const char *image_format(struct ctx *x, const struct vm_drive *d, const char *path)
{
	if (d->format)
		return d->format;
	/* Probe the header ourselves: QEMU's probing of raw images is unsafe, and an
	 * explicit format keeps argv stable. */
	char *e = NULL, *p = bundle_resolve(x->b, path, &e);
	free(e);
	unsigned char h[8] = {0};
	int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	free(p);
	if (fd >= 0) {
		ssize_t n = read(fd, h, sizeof h);
		close(fd);
		if (n >= 4 && !memcmp(h, "QFI\xfb", 4))
			return "qcow2";
		if (n >= 4 && !memcmp(h, "KDMV", 4))
			return "vmdk";
		if (n >= 8 && !memcmp(h, "vhdxfile", 8))
			return "vhdx";
		return "raw";
	}
	size_t n = strlen(path);
	if (n > 6 && !strcmp(path + n - 6, ".qcow2"))
		return "qcow2";
	return "raw";
}

static const char *pci_or_ccw(struct ctx *x, const char *pci)
{
	static char buf[64];
	if (strcmp(x->c->arch, "s390x"))
		return pci;
	/* virtio-blk-pci -> virtio-blk-ccw */
	snprintf(buf, sizeof buf, "%.*s-ccw", (int)(strlen(pci) - 4), pci);
	return buf;
}

/* The USB controller, as UTM makes it: virt machines get an xHCI
 * controller; other machines their own (-usb: UHCI on pc, EHCI with three
 * UHCI companions on q35, OHCI on mac99 and pseries), whose USB 1.1 ports
 * take the full-speed devices (usb-kbd, usb-net, usb-audio) that an EHCI
 * controller alone refuses ("speed mismatch"). USB 3.0 asks for xHCI, which
 * takes every speed. UTM offers no USB on s390x, sparc, m68k and isapc. */
/* The bus USB devices attach to: a qemu-xhci (id usb) on virt machines and
 * for USB 3.0, else the machine's own controller from -usb (UTM's choice),
 * whose first bus QEMU names usb-bus.0. */
bool usb_is_xhci(const struct vm_config *c)
{
	return has_prefix(c->machine ? c->machine : "", "virt") || strcmp(c->usb, "2.0");
}

static const char *usb_bus_name(const struct vm_config *c)
{
	return usb_is_xhci(c) ? "usb.0" : "usb-bus.0";
}

static int add_usb_bus(struct ctx *x)
{
	const struct vm_config *c = x->c;
	if (x->usb_bus)
		return 0;
	if (!strcmp(c->arch, "s390x") || has_prefix(c->arch, "sparc") || !strcmp(c->arch, "m68k") ||
	    !strcmp(c->machine, "isapc")) {
		free(*x->err);
		*x->err = xasprintf("usb: the %s machine %s has no USB", c->arch, c->machine);
		return -1;
	}
	x->usb_bus = usb_bus_name(c);
	if (!strcmp(x->usb_bus, "usb.0"))
		add2(x, "-device", "qemu-xhci,id=usb");
	else
		add(x, "-usb");
	return 0;
}

bool machine_is_pcie(const struct vm_config *c)
{
	const char *m = c->machine ? c->machine : "";
	if (config_is_x86(c))
		return has_prefix(m, "q35") || has_prefix(m, "pc-q35");
	return has_prefix(m, "virt") && str_in(c->arch, (const char *const[]){"aarch64", "arm", "riscv64",
										  "riscv32", NULL});
}

void drive_device(const struct vm_config *c, const struct vm_drive *d, struct drive_device *out)
{
	const char *i = d->interface;
	bool cd = d->media && !strcmp(d->media, "cdrom"), ccw = !strcmp(c->arch, "s390x");
	*out = (struct drive_device){.if_arg = "none", .removable = -1};
	if (!strcmp(i, "virtio")) {
		out->driver = ccw ? "virtio-blk-ccw" : "virtio-blk-pci";
		out->pci = !ccw;
		out->hotplug = true;
	} else if (!strcmp(i, "nvme")) {
		out->driver = "nvme";
		out->pci = out->serial = out->hotplug = true;
	} else if (!strcmp(i, "ide")) {
		out->driver = cd ? "ide-cd" : "ide-hd";
	} else if (!strcmp(i, "scsi") && config_has_pci(c)) {
		out->driver = cd ? "scsi-cd" : "scsi-hd";
		out->bus = "scsi0.0";
		out->controller = ccw ? "virtio-scsi-ccw,id=scsi0" : "virtio-scsi-pci,id=scsi0";
		out->hotplug = true;
	} else if (!strcmp(i, "usb")) {
		out->driver = "usb-storage";
		out->bus = usb_bus_name(c);
		out->removable = d->removable || cd;
		out->hotplug = true;
	} else if (strcmp(i, "none")) {
		out->if_arg = i; /* sd, pflash, floppy; scsi of a machine without PCI */
	}
}

int drive_boot_index(const struct vm_config *c, const struct vm_drive *d)
{
	int next = 1;
	for (size_t i = 0; i < c->ndrives; i++) {
		const struct vm_drive *e = &c->drives[i];
		int idx = e->bootindex ? (int)e->bootindex : next++;
		if (e == d || !strcmp(e->id, d->id))
			return idx;
	}
	return next;
}

/* Is chassis n given in the config's extra_args (chassis=N or chassis_nr=N
 * of a root port or bridge the user adds)? QEMU refuses a chassis twice. */
static bool chassis_taken(const struct ctx *x, int n)
{
	for (size_t i = 0; i < x->c->extra_args.n; i++) {
		const char *a = x->c->extra_args.v[i];
		for (const char *p = a; (p = strstr(p, "chassis")); p++) {
			const char *v = p + strlen("chassis");
			if (has_prefix(v, "_nr"))
				v += 3;
			char *end;
			if ((p == a || p[-1] == ',') && *v == '=' && strtol(v + 1, &end, 0) == n &&
			    (*end == ',' || !*end))
				return true;
		}
	}
	return false;
}

/* The next chassis for a root port of ours (1, 2, ... as libvirt numbers
 * them, skipping those extra_args takes), and its port, 0x10 + chassis - 1. */
static int next_chassis(struct ctx *x)
{
	do
		x->chassis++;
	while (chassis_taken(x, x->chassis));
	return x->chassis;
}

/* Spare root ports, numbered as libvirt numbers them (chassis N, port
 * 0x10+N-1, functions of one multifunction slot): a PCIe root bus takes no
 * hot-plugged device, so without them vm-disk attach on a running VM has
 * nowhere to plug. Added before any other device, so the slot is free. */
static int root_ports(struct ctx *x)
{
	if (!machine_is_pcie(x->c))
		return 0;
	for (int n = 1; n <= ARGV_SPARE_ROOT_PORTS; n++) {
		struct qopt *o = qopt_new("pcie-root-port");
		int ch = next_chassis(x);
		qopt_addf(o, "id", "rp%d", n);
		qopt_add(o, "bus", "pcie.0");
		qopt_addf(o, "chassis", "%d", ch);
		qopt_addf(o, "port", "0x%x", 0x10 + ch - 1);
		qopt_addf(o, "addr", "0x2.0x%x", n - 1);
		if (n == 1)
			qopt_add(o, "multifunction", "on");
		if (emit(x, "-device", o) < 0)
			return -1;
	}
	return 0;
}

/* A device model that sits on USB (usb-net, usb-audio) needs a controller first. */
static int usb_for_model(struct ctx *x, const char *model)
{
	return model && has_prefix(model, "usb-") ? add_usb_bus(x) : 0;
}

static int drives(struct ctx *x)
{
	const struct vm_config *c = x->c;
	bool pc = config_is_x86(c) && !has_prefix(c->machine, "q35");
	for (size_t i = 0; i < c->ndrives; i++) {
		const struct vm_drive *d = &c->drives[i];
		if (!strcmp(d->media, "none"))
			continue; /* kept in the bundle, not given to QEMU (UTM: ImageType None) */
		bool cd = !strcmp(d->media, "cdrom");
		struct drive_device dd;
		drive_device(c, d, &dd);
		struct qopt *drv = qopt_new(NULL);
		qopt_add(drv, "if", dd.if_arg);
		qopt_addf(drv, "id", "drive-%s", d->id);
		if (cd)
			qopt_add(drv, "media", "cdrom");
		if (d->image) {
			char *key = xasprintf("drive.%s.image", d->id);
			char *f = bundle_file(x, key, d->image, d->readonly || cd ? FILE_RO : FILE_RW);
			if (f) {
				qopt_add(drv, "file", f);
				qopt_add_checked(drv, "format", image_format(x, d, d->image), &grammar_image_format,
						 "drive.%s.format", d->id);
			}
			free(f);
			free(key);
			if (!f) {
				qopt_free(drv);
				return -1;
			}
		}
		if (d->readonly || cd) {
			qopt_add(drv, "readonly", "on");
		} else {
			qopt_add(drv, "discard", "unmap");
			qopt_add(drv, "detect-zeroes", "unmap");
			/* Open read-write from the start: -drive's default opens the
			 * set's read-only fd first and switches, and that fd, still
			 * held by the set, keeps its image lock for good (a second
			 * writer, a migration's destination, usb-storage fail). */
			if (x->o->open_file)
				qopt_add(drv, "auto-read-only", "off");
		}
		if (emit(x, "-drive", drv) < 0)
			return -1;

		if (!dd.driver)
			continue;
		if (dd.controller && !x->scsi_added) {
			add2(x, "-device", dd.controller);
			x->scsi_added = true;
		}
		if (!strcmp(dd.driver, "usb-storage") && add_usb_bus(x) < 0)
			return -1;
		struct qopt *dev = qopt_new(dd.driver);
		if (dd.pci && d->readonly && machine_is_pcie(c)) {
			/* a read-only disk is a medium vm-disk swaps on a running VM
			 * (the cloud-init seed) by unplugging it: devices on the PCIe
			 * root bus cannot be, so it gets a root port of its own */
			int n = next_chassis(x);
			struct qopt *port = qopt_new("pcie-root-port");
			qopt_addf(port, "id", "rp-%s", d->id);
			qopt_add(port, "bus", "pcie.0");
			qopt_addf(port, "chassis", "%d", n);
			qopt_addf(port, "port", "0x%x", 0x10 + n - 1);
			if (emit(x, "-device", port) < 0) {
				qopt_free(dev);
				return -1;
			}
			qopt_addf(dev, "bus", "rp-%s", d->id);
		} else if (dd.bus) {
			qopt_add(dev, "bus", dd.bus);
		} else if (has_prefix(dd.driver, "ide-")) {
			/* q35's AHCI has six buses of one unit; the PC's IDE two buses of two */
			qopt_addf(dev, "bus", "ide.%d", x->ide_bus);
			qopt_addf(dev, "unit", "%d", pc ? x->ide_unit : 0);
			if (!pc || ++x->ide_unit == 2) {
				x->ide_unit = 0;
				x->ide_bus++;
			}
		}
		qopt_addf(dev, "drive", "drive-%s", d->id);
		qopt_add(dev, "id", d->id);
		if (dd.serial)
			qopt_addf(dev, "serial", "%.20s", d->id);
		if (dd.removable >= 0)
			qopt_add(dev, "removable", dd.removable ? "on" : "off");
		qopt_addf(dev, "bootindex", "%d", drive_boot_index(c, d));
		if (emit(x, "-device", dev) < 0)
			return -1;
	}
	return 0;
}

void net_options(const struct vm_net *n, struct qopt **netdev, struct qopt **device)
{
	struct qopt *nd = qopt_new(!strcmp(n->mode, "mcast") ? "socket" : n->mode);
	qopt_addf(nd, "id", "net-%s", n->id);
	if (!strcmp(n->mode, "user")) {
		if (n->isolate)
			qopt_add(nd, "restrict", "on");
		if (n->subnet)
			qopt_add_checked(nd, "net", n->subnet, &grammar_subnet, "net.%s.subnet", n->id);
		for (size_t j = 0; j < n->forward.n; j++)
			qopt_add_checked(nd, "hostfwd", n->forward.v[j], &grammar_forward, "net.%s.forward", n->id);
	} else if (!strcmp(n->mode, "tap")) {
		if (n->ifname)
			qopt_add_checked(nd, "ifname", n->ifname, &grammar_ifname, "net.%s.ifname", n->id);
		qopt_add(nd, "script", "no");
		qopt_add(nd, "downscript", "no");
	} else if (!strcmp(n->mode, "bridge")) {
		qopt_add_checked(nd, "br", n->bridge ? n->bridge : "", &grammar_ifname, "net.%s.bridge", n->id);
	} else if (!strcmp(n->mode, "socket") || !strcmp(n->mode, "mcast")) {
		const char *how = !strcmp(n->mode, "mcast") ? "mcast" : n->listen ? "listen" : "connect";
		qopt_add_checked(nd, how, n->address ? n->address : "", &grammar_host_port, "net.%s.address", n->id);
	}
	struct qopt *dev;
	if (*n->model) {
		dev = qopt_new(NULL);
		qopt_add_checked(dev, NULL, n->model, &grammar_nic_model, "net.%s.model", n->id);
		qopt_addf(dev, "netdev", "net-%s", n->id);
		qopt_add_checked(dev, "mac", n->mac, &grammar_mac, "net.%s.mac", n->id);
		qopt_add(dev, "id", n->id);
	} else {
		/* the machine's on-board NIC */
		dev = qopt_new("nic");
		qopt_addf(dev, "netdev", "net-%s", n->id);
		qopt_add_checked(dev, "macaddr", n->mac, &grammar_mac, "net.%s.mac", n->id);
	}
	*netdev = nd;
	*device = dev;
}

static int nets(struct ctx *x)
{
	const struct vm_config *c = x->c;
	for (size_t i = 0; i < c->nnets; i++) {
		const struct vm_net *n = &c->nets[i];
		if (!strcmp(n->mode, "none"))
			continue;
		struct qopt *nd, *dev;
		net_options(n, &nd, &dev);
		int r = emit(x, "-netdev", nd);
		if (r == 0)
			r = usb_for_model(x, n->model);
		if (r < 0) {
			qopt_free(dev);
			return -1;
		}
		if (emit(x, *n->model ? "-device" : "-net", dev) < 0)
			return -1;
	}
	return 0;
}

static int serials(struct ctx *x)
{
	const struct vm_config *c = x->c;
	/* Every VM has a console: the first serial port, a socket in the runtime
	 * dir, logged to console.log, unless the config says otherwise. */
	struct vm_serial def = {.id = "console", .mode = "socket", .target = "console"};
	size_t n = c->nserials ? c->nserials : 1;
	for (size_t i = 0; i < n; i++) {
		const struct vm_serial *s = c->nserials ? &c->serials[i] : &def;
		if (!strcmp(s->mode, "none"))
			continue;
		char *id = xasprintf("ser-%s", s->id);
		struct qopt *cd;
		if (!strcmp(s->mode, "socket")) {
			cd = qopt_new("socket");
			qopt_add(cd, "id", id);
			if (i == 0 && x->o->console_fd >= 0) {
				qopt_addf(cd, "fd", "%d", x->o->console_fd);
			} else {
				char *name = i == 0 ? xstrdup(RT_CONSOLE) : xasprintf("serial-%s.sock", s->id);
				char *p = rt_file(x, name);
				qopt_add(cd, "path", p);
				free(p);
				free(name);
			}
			qopt_add(cd, "server", "on");
			qopt_add(cd, "wait", "off");
		} else if (!strcmp(s->mode, "pty")) {
			cd = qopt_new("pty");
			qopt_add(cd, "id", id);
		} else if (!strcmp(s->mode, "stdio")) {
			cd = qopt_new("stdio");
			qopt_add(cd, "id", id);
			qopt_add(cd, "signal", "off");
		} else {
			cd = qopt_new("file");
			qopt_add(cd, "id", id);
			char *e = NULL, *p = s->path[0] == '/' ? xstrdup(s->path) : bundle_resolve(x->b, s->path, &e);
			qopt_add(cd, "path", p ? p : s->path);
			free(p);
			free(e);
		}
		if (i == 0 && strcmp(s->mode, "file")) {
			char *lp = path_join(x->rt, RT_CONSOLE_LOG);
			char *log = qemu_file(x, "console log", lp, FILE_LOG);
			free(lp);
			if (!log) {
				qopt_free(cd);
				free(id);
				return -1;
			}
			qopt_add(cd, "logfile", log);
			qopt_add(cd, "logappend", "off");
			free(log);
		}
		struct qopt *use = qopt_new(NULL);
		const char *opt = "-mon";
		if (!strcmp(s->target, "monitor")) {
			qopt_add(use, "chardev", id);
			qopt_add(use, "mode", "readline");
		} else {
			qopt_addf(use, NULL, "chardev:%s", id);
			opt = !strcmp(s->target, "gdb") ? "-gdb" : "-serial";
		}
		free(id);
		if (emit(x, "-chardev", cd) < 0) {
			qopt_free(use);
			return -1;
		}
		if (emit(x, opt, use) < 0)
			return -1;
	}
	return 0;
}

const char *display_device(const struct vm_config *c)
{
	if (c->display_device)
		return c->display_device;
	if (config_is_x86(c))
		return has_prefix(c->machine, "q35") ? "virtio-vga" : "VGA";
	if (has_prefix(c->machine, "virt"))
		return "virtio-gpu-pci";
	return config_has_pci(c) ? "VGA" : NULL;
}

static int firmware(struct ctx *x)
{
	const struct vm_config *c = x->c;
	if (c->bios) {
		char *f = bundle_file(x, "bios", c->bios, FILE_READ);
		if (!f)
			return -1;
		add2(x, "-bios", f);
		free(f);
	} else if (!strcmp(c->firmware, "uefi")) {
		char *code = firmware_uefi_code(c->arch);
		if (!code) {
			*x->err = xasprintf("firmware: no UEFI firmware for %s (install ovmf or qemu-efi-aarch64)",
					    c->arch);
			return -1;
		}
		char *vars = bundle_file(x, "efi_vars", c->efi_vars, FILE_RW);
		if (!vars) {
			free(code);
			return -1;
		}
		for (int unit = 0; unit < 2; unit++) {
			struct qopt *o = qopt_new(NULL);
			qopt_add(o, "if", "pflash");
			qopt_add(o, "format", "raw");
			qopt_addf(o, "unit", "%d", unit);
			qopt_add(o, "file", unit ? vars : code);
			if (!unit)
				qopt_add(o, "readonly", "on");
			else if (x->o->open_file)
				qopt_add(o, "auto-read-only", "off"); /* as for drives */
			if (emit(x, "-drive", o) < 0)
				break;
		}
		free(code);
		free(vars);
		if (*x->err)
			return -1;
	}
	const char *opts[] = {"-kernel", "-initrd", "-dtb"};
	const char *keys[] = {"kernel", "initrd", "dtb"};
	const char *vals[] = {c->kernel, c->initrd, c->dtb};
	for (int i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		char *f = bundle_file(x, keys[i], vals[i], FILE_READ);
		if (!f)
			return -1;
		add2(x, opts[i], f);
		free(f);
	}
	if (c->append)
		add2(x, "-append", c->append);
	return 0;
}

static int cpu(struct ctx *x)
{
	const struct vm_config *c = x->c;
	struct qopt *o = qopt_new(NULL);
	if (strcmp(c->cpu, "default")) {
		qopt_add_checked(o, NULL, c->cpu, &grammar_cpu_model, "cpu");
	} else if (config_is_x86(c) || !strcmp(c->arch, "aarch64") || !strcmp(c->arch, "arm")) {
		/* KVM runs the host's CPU; TCG emulates everything it can */
		if (!strcmp(x->accel, "kvm"))
			qopt_add(o, NULL, "host");
		else if (!strcmp(c->arch, "arm"))
			qopt_add(o, NULL, "cortex-a15");
		else
			qopt_add(o, NULL, "max");
	} else {
		/* the machine's own CPU, which the flags cannot name */
		qopt_free(o);
		return 0;
	}
	/* QEMU's -cpu reads no ",,": the flags are checked, not escaped */
	for (size_t i = 0; i < c->cpu_flags.n; i++)
		qopt_add_checked(o, NULL, c->cpu_flags.v[i], &grammar_cpu_flag, "cpu_flags");
	return emit(x, "-cpu", o);
}

static int accel(struct ctx *x)
{
	const struct vm_config *c = x->c;
	struct qopt *tcg = qopt_new("tcg");
	if (!strcmp(c->tcg_thread, "multi") || !strcmp(c->tcg_thread, "single"))
		qopt_add(tcg, "thread", c->tcg_thread);
	if (c->tcg_tb_size)
		qopt_addf(tcg, "tb-size", "%lld", (long long)c->tcg_tb_size);
	if (strcmp(x->accel, "tcg"))
		add2(x, "-accel", "kvm");
	if (strcmp(x->accel, "kvm"))
		return emit(x, "-accel", tcg);
	qopt_free(tcg);
	return 0;
}

/* The display: a graphics device and a VNC or SPICE server on a socket in
 * the runtime dir (or VNC on a 127.0.0.1 port), never a window. */
static int display(struct ctx *x)
{
	const struct vm_config *c = x->c;
	struct display_spec d;
	if (display_resolve(c, x->o->display, &d, x->err) < 0)
		return -1;
	if (!strcmp(d.kind, "none"))
		return 0;
	const char *dev = display_device(c);
	if (dev) {
		struct qopt *o = qopt_new(NULL);
		qopt_add_checked(o, NULL, dev, &grammar_device, "display_device");
		if (emit(x, "-device", o) < 0)
			return -1;
	}
	struct qopt *o = qopt_new(NULL);
	if (!strcmp(d.kind, "vnc") && d.port) {
		qopt_addf(o, NULL, "127.0.0.1:%d", d.port - 5900);
	} else if (!strcmp(d.kind, "vnc")) {
		char *p = rt_file(x, RT_VNC);
		qopt_addf(o, NULL, "unix:%s", p);
		free(p);
	} else {
		char *p = rt_file(x, RT_SPICE);
		qopt_add(o, "unix", "on");
		qopt_add(o, "addr", p);
		qopt_add(o, "disable-ticketing", "on");
		free(p);
	}
	return emit(x, !strcmp(d.kind, "vnc") ? "-vnc" : "-spice", o);
}

static int devices(struct ctx *x)
{
	const struct vm_config *c = x->c;
	if (strcmp(c->usb, "none") && add_usb_bus(x) < 0)
		return -1;
	if (c->usb_tablet) {
		struct qopt *t = qopt_new("usb-tablet");
		qopt_add(t, "bus", x->usb_bus);
		if (emit(x, "-device", t) < 0)
			return -1;
	}
	if (display(x) < 0)
		return -1;
	add2(x, "-display", "none");
	if (strcmp(c->sound, "none")) {
		if (usb_for_model(x, c->sound) < 0)
			return -1;
		add2(x, "-audiodev", "none,id=audio0");
		/* an HDA controller takes its codec as a device of its own */
		bool hda = !strcmp(c->sound, "intel-hda") || !strcmp(c->sound, "ich9-intel-hda");
		struct qopt *o = qopt_new(NULL);
		qopt_add_checked(o, NULL, c->sound, &grammar_device, "sound");
		if (!hda)
			qopt_add(o, "audiodev", "audio0");
		if (emit(x, "-device", o) < 0)
			return -1;
		if (hda)
			add2(x, "-device", "hda-duplex,audiodev=audio0");
	}
	for (size_t i = 0; i < c->nshares; i++) {
		const struct vm_share *s = &c->shares[i];
		char *e = NULL;
		if (bundle_check_outside(x->b, s->path, &e) < 0) {
			free(*x->err);
			*x->err = xasprintf("share.%s.path: %s", s->id, e);
			free(e);
			return -1;
		}
		struct qopt *fs = qopt_new("local"), *dev = qopt_new(pci_or_ccw(x, "virtio-9p-pci"));
		qopt_addf(fs, "id", "fs-%s", s->id);
		qopt_add(fs, "path", s->path);
		qopt_add(fs, "security_model", "mapped-xattr");
		if (s->readonly)
			qopt_add(fs, "readonly", "on");
		qopt_addf(dev, "fsdev", "fs-%s", s->id);
		qopt_add_checked(dev, "mount_tag", s->tag, &grammar_9p_tag, "share.%s.tag", s->id);
		if (emit(x, "-fsdev", fs) < 0) {
			qopt_free(dev);
			return -1;
		}
		if (emit(x, "-device", dev) < 0)
			return -1;
	}
	if (c->rng)
		add2(x, "-device", pci_or_ccw(x, "virtio-rng-pci"));
	if (c->balloon)
		add2(x, "-device", pci_or_ccw(x, "virtio-balloon-pci"));
	if (c->rtc_localtime)
		add2(x, "-rtc", "base=localtime");
	if (c->tpm) {
		char *p = rt_file(x, RT_SWTPM);
		struct qopt *ch = qopt_new("socket");
		qopt_add(ch, "id", "chrtpm");
		qopt_add(ch, "path", p);
		free(p);
		if (emit(x, "-chardev", ch) < 0)
			return -1;
		add2(x, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm");
		add2(x, "-device", config_is_x86(c)		      ? "tpm-crb,tpmdev=tpm0"
				   : !strcmp(c->arch, "ppc64") ? "tpm-spapr,tpmdev=tpm0"
							       : "tpm-tis-device,tpmdev=tpm0");
	}
	if (x->o->exit_device && config_is_x86(c))
		add2(x, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04");
	return 0;
}

/* The QEMU guest agent's port, as UTM and virt-install add it: a
 * virtio-serial port org.qemu.guest_agent.0 (qemu-ga in the guest opens
 * /dev/virtio-ports/org.qemu.guest_agent.0) on RUNTIME/qga.sock, for every
 * machine with virtio (PCI, or CCW on s390x) unless agent = false. */
static void guest_agent(struct ctx *x)
{
	const struct vm_config *c = x->c;
	if (!config_agent(c))
		return;
	char *cd;
	if (x->o->qga_fd >= 0) {
		cd = xasprintf("socket,id=qga,fd=%d,server=on,wait=off", x->o->qga_fd);
	} else {
		char *p = rt_file(x, RT_QGA);
		cd = xasprintf("socket,id=qga,path=%s,server=on,wait=off", p);
		free(p);
	}
	add2(x, "-chardev", cd);
	free(cd);
	char *bus = xasprintf("%s,id=qga-serial", pci_or_ccw(x, "virtio-serial-pci"));
	add2(x, "-device", bus);
	free(bus);
	add2(x, "-device", "virtserialport,bus=qga-serial.0,chardev=qga,name=org.qemu.guest_agent.0");
}

/* A QMP monitor on a listening socket: the caller's fd, or one QEMU makes. */
static int monitor(struct ctx *x, const char *id, int fd, const char *name)
{
	struct qopt *q = qopt_new("socket");
	qopt_add(q, "id", id);
	if (fd >= 0) {
		qopt_addf(q, "fd", "%d", fd);
	} else {
		char *p = rt_file(x, name);
		qopt_add(q, "path", p);
		free(p);
	}
	qopt_add(q, "server", "on");
	qopt_add(q, "wait", "off");
	if (emit(x, "-chardev", q) < 0)
		return -1;
	q = qopt_new(NULL);
	qopt_add(q, "chardev", id);
	qopt_add(q, "mode", "control");
	return emit(x, "-mon", q);
}

int argv_build(const struct bundle *b, const struct argv_opts *o, struct strv *out, char **err)
{
	if (b->plist.not_runnable) {
		*err = xstrdup(b->plist.not_runnable);
		return -1;
	}
	struct vm_config c;
	bundle_effective_config(b, &c);
	char *problem = config_first_problem(&c);
	if (problem) {
		*err = xasprintf("%s: %s", b->conf_path, problem);
		free(problem);
		config_free(&c);
		return -1;
	}
	struct ctx x = {.b = b, .c = &c, .o = o, .out = out, .err = err};
	x.rt = o->runtime_dir ? xstrdup(o->runtime_dir) : bundle_runtime_path(b, NULL, err);
	if (!x.rt) {
		config_free(&c);
		return -1;
	}
	x.accel = o->accel ? o->accel : c.accel;
	*err = NULL;

	const char *qarch = config_qemu_arch(c.arch);
	if (o->qemu_dir) {
		char *bin = xasprintf("%s/qemu-system-%s", o->qemu_dir, qarch);
		add(&x, bin);
		free(bin);
	} else {
		strv_pushf(out, "qemu-system-%s", qarch);
	}
	char *name = c.name ? xstrdup(c.name) : bundle_display_name(b->path);
	struct qopt *q = qopt_new(NULL);
	qopt_add(q, "guest", name);
	free(name);
	int r = emit(&x, "-name", q);
	add2(&x, "-uuid", c.uuid);
	add(&x, "-nodefaults");
	add(&x, "-no-user-config");
	if (!o->no_sandbox)
		add2(&x, "-sandbox", QEMU_SANDBOX);
	if (r == 0)
		r = monitor(&x, "qmp", o->qmp_fd, RT_QMP);
	if (r == 0)
		r = monitor(&x, "qmp-session", o->qmp_session_fd, RT_QMP_SESSION);
	if (r == 0)
		r = accel(&x);
	if (r == 0) {
		q = qopt_new(NULL);
		qopt_add_checked(q, NULL, c.machine, &grammar_machine, "machine");
		if (c.machine_props)
			qopt_add_keys(q, c.machine_props, &grammar_machine_props, "machine_props");
		r = emit(&x, "-machine", q);
	}
	if (r == 0)
		r = cpu(&x);
	if (r == 0) {
		strv_push(out, "-smp");
		strv_pushf(out, "%lld", (long long)c.cpus);
		strv_push(out, "-m");
		strv_pushf(out, "%lld", (long long)c.memory);
		r = firmware(&x);
	}
	if (r == 0)
		r = root_ports(&x);
	if (r == 0)
		r = drives(&x);
	if (r == 0)
		r = nets(&x);
	if (r == 0)
		r = serials(&x);
	if (r == 0)
		r = devices(&x);
	if (r == 0)
		guest_agent(&x);
	if (r == 0) {
		if (o->snapshot)
			add(&x, "-snapshot");
		if (o->paused)
			add(&x, "-S");
		/* raw by design: the one way to pass QEMU what the model has no field for */
		for (size_t i = 0; i < c.extra_args.n; i++)
			add(&x, c.extra_args.v[i]);
	}
	free(x.rt);
	config_free(&c);
	return r;
}
