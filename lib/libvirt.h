/* A bundle as a libvirt domain (vm-argv --libvirt): the handover to fleets
 * that speak libvirt's domain XML (virsh, virt-manager, OpenStack, oVirt).
 *
 * The mapping follows argv.c's (the same machine, CPU, memory, firmware,
 * the bundle's own image files with their formats and buses, NICs with
 * their MACs, serial ports, display, TPM, 9p shares); what the domain XML
 * of the libvirt here cannot say goes into a <qemu:commandline> block (the
 * qemu namespace), and each such item is reported as one warning line.
 * Runtime sockets are libvirt's (it runs QEMU as its own user): serial
 * ports become ptys (virsh console), the first logged to RUNTIME/console.log
 * by virtlogd; VNC and SPICE listen on sockets libvirt names.
 *
 * The document is built with libxml2, opened on first use (dlopen): it pulls
 * in ICU and libstdc++, which vm-argv's ordinary runs must not pay for at
 * start. */
#ifndef VM_LIBVIRT_H
#define VM_LIBVIRT_H

#include <stdbool.h>

#include "bundle.h"

#define LIBVIRT_QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"

struct libvirt_opts {
	const char *domain_type; /* "kvm" or "qemu" (TCG): the accelerator verdict */
	const char *qemu_dir;	 /* $VM_QEMU_DIR; NULL: the emulator found on PATH */
	const char *runtime_dir; /* where console.log goes; NULL: bundle_runtime_path() */
	bool exit_device;	 /* isa-debug-exit (x86), as vm-argv --exit-device */
};

/* The domain XML for bundle b (malloc'd, UTF-8, a declaration first), or
 * NULL with *err. warnings (may be NULL) gets one line per item that libvirt
 * cannot say and went to <qemu:commandline> or was left out
 * ("net.net0: port forwards: ..."). */
char *libvirt_domain_xml(const struct bundle *b, const struct libvirt_opts *o, struct strv *warnings,
			 char **err);

/* libvirt's name for a QEMU architecture (config_qemu_arch): i386 is
 * "i686", arm "armv7l"; others are the same. */
const char *libvirt_arch(const char *qemu_arch);

#endif
