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

char *qemu_escape(const char *s)
{
	struct buf b = {0};
	for (; *s; s++) {
		buf_add(&b, s, 1);
		if (*s == ',')
			buf_add(&b, s, 1);
	}
	return b.s ? b.s : xstrdup("");
}

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
	int own_ports; /* root ports of read-only virtio disks */
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

static char *rt_file(struct ctx *x, const char *name)
{
	char *p = x->o->runtime_dirfd >= 0 ? xasprintf("/proc/self/fd/%d/%s", x->o->runtime_dirfd, name)
					    : path_join(x->rt, name);
	char *e = qemu_escape(p);
	free(p);
	return e;
}

/* How QEMU opens a file when o->open_file hands it descriptors. */
enum file_how {
	FILE_RO,   /* qemu_open, read-only: an fd set */
	FILE_RW,   /* qemu_open, read-write: an fd set with a RW and an RO fd */
	FILE_LOG,  /* qemu_open O_WRONLY|O_CREAT|O_TRUNC (chardev logfile) */
	FILE_READ, /* plain open() or fopen() (kernel, initrd): /dev/fd/N */
};

/* path (absolute, unescaped) as QEMU should name it: itself, or an fd set or
 * /dev/fd/N when the caller opens files for QEMU. Escaped. NULL with *x->err. */
static char *qemu_file(struct ctx *x, const char *key, const char *path, enum file_how how)
{
	if (!x->o->open_file)
		return qemu_escape(path);
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
	char *opaque = qemu_escape(path);
	strv_push(x->out, "-add-fd");
	strv_pushf(x->out, "fd=%d,set=%d,opaque=%s", fd, set, opaque);
	if (how == FILE_RW) {
		/* QEMU may open an image read-only first (probing, reopen): give it
		 * both access modes, as libvirt does. */
		int ro = x->o->open_file(x->o->open_ctx, path, O_RDONLY, &e);
		if (ro < 0) {
			free(opaque);
			free(*x->err);
			*x->err = xasprintf("%s: %s", key, e ? e : path);
			free(e);
			return NULL;
		}
		strv_push(x->out, "-add-fd");
		strv_pushf(x->out, "fd=%d,set=%d,opaque=%s", ro, set, opaque);
	}
	free(opaque);
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
static const char *usb_bus_name(const struct vm_config *c)
{
	return has_prefix(c->machine, "virt") || strcmp(c->usb, "2.0") ? "usb.0" : "usb-bus.0";
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

/* Spare root ports, numbered as libvirt numbers them (chassis N, port
 * 0x10+N-1, functions of one multifunction slot): a PCIe root bus takes no
 * hot-plugged device, so without them vm-disk attach on a running VM has
 * nowhere to plug. Added before any other device, so the slot is free. */
static void root_ports(struct ctx *x)
{
	if (!machine_is_pcie(x->c))
		return;
	for (int n = 1; n <= ARGV_SPARE_ROOT_PORTS; n++) {
		add(x, "-device");
		strv_pushf(x->out, "pcie-root-port,id=rp%d,bus=pcie.0,chassis=%d,port=0x%x,addr=0x2.0x%x%s", n, n,
			   0x10 + n - 1, n - 1, n == 1 ? ",multifunction=on" : "");
	}
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
		char *key = xasprintf("drive.%s.image", d->id);
		struct buf drv = {0};
		buf_printf(&drv, "if=%s,id=drive-%s", dd.if_arg, d->id);
		if (cd)
			buf_puts(&drv, ",media=cdrom");
		if (d->image) {
			char *f = bundle_file(x, key, d->image, d->readonly || cd ? FILE_RO : FILE_RW);
			if (!f) {
				free(key);
				buf_free(&drv);
				return -1;
			}
			buf_printf(&drv, ",file=%s,format=%s", f, image_format(x, d, d->image));
			free(f);
		}
		free(key);
		if (d->readonly || cd)
			buf_puts(&drv, ",readonly=on");
		else
			buf_puts(&drv, ",discard=unmap,detect-zeroes=unmap");
		add2(x, "-drive", drv.s);
		buf_free(&drv);

		if (!dd.driver)
			continue;
		if (dd.controller && !x->scsi_added) {
			add2(x, "-device", dd.controller);
			x->scsi_added = true;
		}
		if (!strcmp(dd.driver, "usb-storage") && add_usb_bus(x) < 0)
			return -1;
		struct buf dev = {0};
		buf_puts(&dev, dd.driver);
		if (dd.pci && d->readonly && machine_is_pcie(c)) {
			/* a read-only disk is a medium vm-disk swaps on a running VM
			 * (the cloud-init seed) by unplugging it: devices on the PCIe
			 * root bus cannot be, so it gets a root port of its own */
			int n = ARGV_SPARE_ROOT_PORTS + ++x->own_ports;
			add(x, "-device");
			strv_pushf(x->out, "pcie-root-port,id=rp-%s,bus=pcie.0,chassis=%d,port=0x%x", d->id, n,
				   0x10 + n - 1);
			buf_printf(&dev, ",bus=rp-%s", d->id);
		} else if (dd.bus) {
			buf_printf(&dev, ",bus=%s", dd.bus);
		} else if (has_prefix(dd.driver, "ide-")) {
			/* q35's AHCI has six buses of one unit; the PC's IDE two buses of two */
			buf_printf(&dev, ",bus=ide.%d,unit=%d", x->ide_bus, pc ? x->ide_unit : 0);
			if (!pc || ++x->ide_unit == 2) {
				x->ide_unit = 0;
				x->ide_bus++;
			}
		}
		buf_printf(&dev, ",drive=drive-%s,id=%s", d->id, d->id);
		if (dd.serial)
			buf_printf(&dev, ",serial=%.20s", d->id);
		if (dd.removable >= 0)
			buf_printf(&dev, ",removable=%s", dd.removable ? "on" : "off");
		buf_printf(&dev, ",bootindex=%d", drive_boot_index(c, d));
		add2(x, "-device", dev.s);
		buf_free(&dev);
	}
	return 0;
}

static int nets(struct ctx *x)
{
	const struct vm_config *c = x->c;
	for (size_t i = 0; i < c->nnets; i++) {
		const struct vm_net *n = &c->nets[i];
		if (!strcmp(n->mode, "none"))
			continue;
		struct buf nd = {0};
		buf_printf(&nd, "%s,id=net-%s", !strcmp(n->mode, "mcast") ? "socket" : n->mode, n->id);
		if (!strcmp(n->mode, "user")) {
			if (n->isolate)
				buf_puts(&nd, ",restrict=on");
			if (n->subnet)
				buf_printf(&nd, ",net=%s", n->subnet);
			for (size_t j = 0; j < n->forward.n; j++)
				buf_printf(&nd, ",hostfwd=%s", n->forward.v[j]);
		} else if (!strcmp(n->mode, "tap")) {
			if (n->ifname)
				buf_printf(&nd, ",ifname=%s", n->ifname);
			buf_puts(&nd, ",script=no,downscript=no");
		} else if (!strcmp(n->mode, "bridge")) {
			buf_printf(&nd, ",br=%s", n->bridge);
		} else if (!strcmp(n->mode, "socket")) {
			buf_printf(&nd, ",%s=%s", n->listen ? "listen" : "connect", n->address);
		} else if (!strcmp(n->mode, "mcast")) {
			buf_printf(&nd, ",mcast=%s", n->address);
		}
		add2(x, "-netdev", nd.s);
		buf_free(&nd);
		if (usb_for_model(x, n->model) < 0)
			return -1;
		char *dev = *n->model ? xasprintf("%s,netdev=net-%s,mac=%s,id=%s", n->model, n->id, n->mac, n->id)
				      : NULL;
		if (dev) {
			add2(x, "-device", dev);
			free(dev);
		} else {
			/* the machine's on-board NIC */
			char *nic = xasprintf("nic,netdev=net-%s,macaddr=%s", n->id, n->mac);
			add2(x, "-net", nic);
			free(nic);
		}
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
		struct buf cd = {0};
		char *id = xasprintf("ser-%s", s->id);
		if (!strcmp(s->mode, "socket")) {
			if (i == 0 && x->o->console_fd >= 0) {
				buf_printf(&cd, "socket,id=%s,fd=%d,server=on,wait=off", id, x->o->console_fd);
			} else {
				char *name = i == 0 ? xstrdup(RT_CONSOLE) : xasprintf("serial-%s.sock", s->id);
				char *p = rt_file(x, name);
				buf_printf(&cd, "socket,id=%s,path=%s,server=on,wait=off", id, p);
				free(p);
				free(name);
			}
		} else if (!strcmp(s->mode, "pty")) {
			buf_printf(&cd, "pty,id=%s", id);
		} else if (!strcmp(s->mode, "stdio")) {
			buf_printf(&cd, "stdio,id=%s,signal=off", id);
		} else if (!strcmp(s->mode, "file")) {
			char *e = NULL, *p = s->path[0] == '/' ? xstrdup(s->path) : bundle_resolve(x->b, s->path, &e);
			char *q = qemu_escape(p ? p : s->path);
			buf_printf(&cd, "file,id=%s,path=%s", id, q);
			free(q);
			free(p);
			free(e);
		}
		if (i == 0 && strcmp(s->mode, "file")) {
			char *lp = path_join(x->rt, RT_CONSOLE_LOG);
			char *log = qemu_file(x, "console log", lp, FILE_LOG);
			free(lp);
			if (!log) {
				buf_free(&cd);
				free(id);
				return -1;
			}
			buf_printf(&cd, ",logfile=%s,logappend=off", log);
			free(log);
		}
		add2(x, "-chardev", cd.s);
		buf_free(&cd);
		char *v;
		if (!strcmp(s->target, "monitor")) {
			v = xasprintf("chardev=%s,mode=readline", id);
			add2(x, "-mon", v);
		} else {
			v = xasprintf("chardev:%s", id);
			add2(x, !strcmp(s->target, "gdb") ? "-gdb" : "-serial", v);
		}
		free(v);
		free(id);
	}
	return 0;
}

static const char *default_display_device(const struct vm_config *c)
{
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
		char *qc = qemu_escape(code), *vars = bundle_file(x, "efi_vars", c->efi_vars, FILE_RW);
		free(code);
		if (!vars) {
			free(qc);
			return -1;
		}
		char *a1 = xasprintf("if=pflash,format=raw,unit=0,file=%s,readonly=on", qc);
		char *a2 = xasprintf("if=pflash,format=raw,unit=1,file=%s", vars);
		add2(x, "-drive", a1);
		add2(x, "-drive", a2);
		free(a1);
		free(a2);
		free(qc);
		free(vars);
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

static void cpu(struct ctx *x)
{
	const struct vm_config *c = x->c;
	struct buf b = {0};
	if (strcmp(c->cpu, "default")) {
		buf_puts(&b, c->cpu);
	} else if (config_is_x86(c) || !strcmp(c->arch, "aarch64") || !strcmp(c->arch, "arm")) {
		/* KVM runs the host's CPU; TCG emulates everything it can */
		if (!strcmp(x->accel, "kvm"))
			buf_puts(&b, "host");
		else if (!strcmp(c->arch, "arm"))
			buf_puts(&b, "cortex-a15");
		else
			buf_puts(&b, "max");
	}
	for (size_t i = 0; i < c->cpu_flags.n; i++)
		buf_printf(&b, ",%s", c->cpu_flags.v[i]);
	if (b.len && b.s[0] != ',')
		add2(x, "-cpu", b.s);
	buf_free(&b);
}

static void accel(struct ctx *x)
{
	const struct vm_config *c = x->c;
	struct buf tcg = {0};
	buf_puts(&tcg, "tcg");
	if (!strcmp(c->tcg_thread, "multi") || !strcmp(c->tcg_thread, "single"))
		buf_printf(&tcg, ",thread=%s", c->tcg_thread);
	if (c->tcg_tb_size)
		buf_printf(&tcg, ",tb-size=%lld", (long long)c->tcg_tb_size);
	if (strcmp(x->accel, "tcg"))
		add2(x, "-accel", "kvm");
	if (strcmp(x->accel, "kvm"))
		add2(x, "-accel", tcg.s);
	buf_free(&tcg);
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
	const char *dev = c->display_device ? c->display_device : default_display_device(c);
	if (dev)
		add2(x, "-device", dev);
	if (!strcmp(d.kind, "vnc") && d.port) {
		char *v = xasprintf("127.0.0.1:%d", d.port - 5900);
		add2(x, "-vnc", v);
		free(v);
	} else if (!strcmp(d.kind, "vnc")) {
		char *p = rt_file(x, RT_VNC), *v = xasprintf("unix:%s", p);
		add2(x, "-vnc", v);
		free(v);
		free(p);
	} else {
		char *p = rt_file(x, RT_SPICE), *v = xasprintf("unix=on,addr=%s,disable-ticketing=on", p);
		add2(x, "-spice", v);
		free(v);
		free(p);
	}
	return 0;
}

static int devices(struct ctx *x)
{
	const struct vm_config *c = x->c;
	if (strcmp(c->usb, "none") && add_usb_bus(x) < 0)
		return -1;
	if (c->usb_tablet) {
		char *t = xasprintf("usb-tablet,bus=%s", x->usb_bus);
		add2(x, "-device", t);
		free(t);
	}
	if (display(x) < 0)
		return -1;
	add2(x, "-display", "none");
	if (strcmp(c->sound, "none")) {
		if (usb_for_model(x, c->sound) < 0)
			return -1;
		add2(x, "-audiodev", "none,id=audio0");
		char *d = xasprintf("%s,audiodev=audio0", c->sound);
		if (has_prefix(c->sound, "intel-hda") || has_prefix(c->sound, "ich9-intel-hda")) {
			add2(x, "-device", c->sound);
			add2(x, "-device", "hda-duplex,audiodev=audio0");
		} else {
			add2(x, "-device", d);
		}
		free(d);
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
		char *p = qemu_escape(s->path);
		char *fs = xasprintf("local,id=fs-%s,path=%s,security_model=mapped-xattr%s", s->id, p,
				     s->readonly ? ",readonly=on" : "");
		char *dev = xasprintf("%s,fsdev=fs-%s,mount_tag=%s", pci_or_ccw(x, "virtio-9p-pci"), s->id, s->tag);
		add2(x, "-fsdev", fs);
		add2(x, "-device", dev);
		free(p);
		free(fs);
		free(dev);
	}
	if (c->rng)
		add2(x, "-device", pci_or_ccw(x, "virtio-rng-pci"));
	if (c->balloon)
		add2(x, "-device", pci_or_ccw(x, "virtio-balloon-pci"));
	if (c->rtc_localtime)
		add2(x, "-rtc", "base=localtime");
	if (c->tpm) {
		char *p = rt_file(x, RT_SWTPM), *ch = xasprintf("socket,id=chrtpm,path=%s", p);
		add2(x, "-chardev", ch);
		add2(x, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm");
		add2(x, "-device", config_is_x86(c)		      ? "tpm-crb,tpmdev=tpm0"
				   : !strcmp(c->arch, "ppc64") ? "tpm-spapr,tpmdev=tpm0"
							       : "tpm-tis-device,tpmdev=tpm0");
		free(p);
		free(ch);
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
static void monitor(struct ctx *x, const char *id, int fd, const char *name)
{
	char *q;
	if (fd >= 0) {
		q = xasprintf("socket,id=%s,fd=%d,server=on,wait=off", id, fd);
	} else {
		char *p = rt_file(x, name);
		q = xasprintf("socket,id=%s,path=%s,server=on,wait=off", id, p);
		free(p);
	}
	add2(x, "-chardev", q);
	free(q);
	q = xasprintf("chardev=%s,mode=control", id);
	add2(x, "-mon", q);
	free(q);
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
	char *name = qemu_escape(c.name ? c.name : "vm");
	if (!c.name) {
		free(name);
		char *dn = bundle_display_name(b->path);
		name = qemu_escape(dn);
		free(dn);
	}
	strv_pushf(out, "-name");
	strv_pushf(out, "guest=%s", name);
	free(name);
	add2(&x, "-uuid", c.uuid);
	add(&x, "-nodefaults");
	add(&x, "-no-user-config");
	if (!o->no_sandbox)
		add2(&x, "-sandbox", QEMU_SANDBOX);
	monitor(&x, "qmp", o->qmp_fd, RT_QMP);
	monitor(&x, "qmp-session", o->qmp_session_fd, RT_QMP_SESSION);
	accel(&x);
	char *m = c.machine_props && *c.machine_props ? xasprintf("%s,%s", c.machine, c.machine_props)
						       : xstrdup(c.machine);
	add2(&x, "-machine", m);
	free(m);
	cpu(&x);
	strv_push(out, "-smp");
	strv_pushf(out, "%lld", (long long)c.cpus);
	strv_push(out, "-m");
	strv_pushf(out, "%lld", (long long)c.memory);
	int r = firmware(&x);
	if (r == 0) {
		root_ports(&x);
		r = drives(&x);
	}
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
		for (size_t i = 0; i < c.extra_args.n; i++)
			add(&x, c.extra_args.v[i]);
	}
	free(x.rt);
	config_free(&c);
	return r;
}
