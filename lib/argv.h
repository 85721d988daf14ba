/* Config to QEMU command line: a pure function of the bundle and options
 * (UTM's UTMQemuConfiguration+Arguments, with Linux equivalents). */
#ifndef VM_ARGV_H
#define VM_ARGV_H

#include <stdbool.h>

#include "bundle.h"

struct argv_opts {
	const char *runtime_dir; /* sockets live here; NULL = bundle_runtime_path() */
	const char *accel;       /* "kvm", "tcg", "auto" ("-accel kvm -accel tcg"); NULL = config */
	const char *qemu_dir;    /* $VM_QEMU_DIR; NULL = find on PATH (argv[0] is the bare name) */
	bool paused;             /* -S */
	bool snapshot;           /* -snapshot: discard disk writes */
	bool exit_device;        /* isa-debug-exit on x86 (iobase 0xf4) */
	int qmp_fd;              /* >= 0: an already listening socket passed to QEMU; -1 = path */
	int qmp_session_fd;      /* the same for the session monitor (runtime.h: RT_QMP_SESSION) */
	int console_fd;          /* likewise for the first serial port's socket; -1 = path */
	int qga_fd;              /* likewise for the guest agent's port (runtime.h: RT_QGA) */
	bool no_defaults_check;  /* skip file existence checks (vm-argv on a copied config) */
	bool no_sandbox;         /* leave out -sandbox (QEMU's seccomp filter) */
	/* >= 0: an fd of the runtime dir that QEMU inherits; sockets QEMU makes
	 * or connects to are named /proc/self/fd/N/NAME, so a QEMU running as
	 * another user needs no search permission on the private folders above
	 * it (and the path is short whatever XDG_RUNTIME_DIR is). */
	int runtime_dirfd;
	/* When set, QEMU gets the bundle's files as descriptors the caller opens
	 * (vm-run, when QEMU will run as another user and could not open them):
	 * open_file(open_ctx, path, flags) returns an fd that QEMU inherits, or
	 * -1 with *err. Drives, pflash and the console log become fd sets
	 * (-add-fd, /dev/fdset/N, the path as its opaque name, which
	 * query-fdsets shows); kernel, initrd, dtb and -bios /dev/fd/N. */
	int (*open_file)(void *open_ctx, const char *path, int flags, char **err);
	void *open_ctx;
	/* For one run, instead of the config's display: "none", "vnc", "spice"
	 * or "vnc:PORT" (display_parse below); NULL = the config's. */
	const char *display;
};
#define ARGV_OPTS_INIT { .qmp_fd = -1, .qmp_session_fd = -1, .console_fd = -1, .qga_fd = -1, .runtime_dirfd = -1 }

/* The seccomp policy QEMU runs under unless no_sandbox (libvirt's). */
#define QEMU_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

/* Builds argv (program first) into out. Returns 0, or -1 with *err naming the key. */
int argv_build(const struct bundle *b, const struct argv_opts *o, struct strv *out, char **err);

/* How a drive appears to the guest, the one description that argv_build
 * (the -device at start) and lib/media.c (device_add when it hot-plugs)
 * both use, so a drive plugged live is the device it would be at start. */
struct drive_device {
	const char *if_arg;	/* -drive if=: "none" when a -device follows, else floppy, sd, pflash, scsi */
	const char *driver;	/* virtio-blk-pci (-ccw on s390x), nvme, ide-hd, ide-cd, scsi-hd, scsi-cd,
				 * usb-storage; NULL: no -device (QMP names it by its block backend) */
	const char *bus;	/* scsi0.0, usb.0; NULL: the machine's (PCI: any free slot; IDE: numbered
				 * by argv_build) */
	const char *controller; /* a controller argv_build adds once before it (virtio-scsi-pci,id=scsi0) */
	bool pci;		/* sits on PCI: on a PCIe machine it is hot-plugged into a free root port */
	bool serial;		/* serial=ID (its first 20 characters): NVMe needs one */
	int removable;		/* removable=on (1) or off (0); -1: the device has no such property */
	bool hotplug;		/* device_add and device_del work for it on a running VM */
};
/* c: the effective config (defaults applied). */
void drive_device(const struct vm_config *c, const struct vm_drive *d, struct drive_device *out);
/* The drive's boot index as argv_build gives it: its own, or its place
 * among the drives without one (1, 2 ...). */
int drive_boot_index(const struct vm_config *c, const struct vm_drive *d);
/* A machine whose root bus is PCI Express (q35, virt on Arm and RISC-V): a
 * device is hot-plugged into a root port, not onto the root bus, and
 * argv_build gives it ARGV_SPARE_ROOT_PORTS spare ones, as libvirt does. */
bool machine_is_pcie(const struct vm_config *c);
/* The display device the VM gets: display_device, else the machine's own
 * (virtio-vga on q35, VGA on pc, virtio-gpu-pci on virt; NULL without PCI).
 * vm-argv and the libvirt XML name the same one. */
const char *display_device(const struct vm_config *c);
/* Is the USB controller (usb not "none") a qemu-xhci: on virt machines and
 * for USB 3.0; else the machine's own (-usb). */
bool usb_is_xhci(const struct vm_config *c);
#define ARGV_SPARE_ROOT_PORTS 4
/* A NIC's -netdev and its -device (or, without a model, the on-board -net
 * nic), as argv_build gives them (vm-argv --libvirt's <qemu:commandline>
 * too); qopt_finish reports a value that fails its grammar. */
struct qopt;
void net_options(const struct vm_net *n, struct qopt **netdev, struct qopt **device);

struct display_spec {
	char kind[8]; /* none vnc spice */
	int port;     /* vnc: a TCP port on 127.0.0.1 (>= 5900); 0 = the unix socket */
};

/* "none", "vnc", "spice" or "vnc:PORT" (5900-65535). 0, or -1 with *err. */
int display_parse(const char *s, struct display_spec *out, char **err);
/* The display a run gets: override (display_parse's syntax; NULL = none
 * given) or the config's. 0, or -1 with *err. */
int display_resolve(const struct vm_config *c, const char *override, struct display_spec *out, char **err);
/* What a viewer opens (remote-viewer URI): spice+unix:///RT/spice.sock,
 * vnc+unix:///RT/vnc.sock or vnc://127.0.0.1:PORT; NULL for none. */
char *display_uri(const struct display_spec *d, const char *runtime_dir);


#endif
