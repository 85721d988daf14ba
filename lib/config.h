/* The configuration model: one struct for a VM, whatever file it came from.
 *
 * Every field is described once, in a table of struct field (config.c):
 * the codecs (config_vmconf.c, config_plist.c, config_json.c), vm-config
 * get/set/unset/show, config_copy and validation all walk that table, so a
 * new field is one line there plus its use in argv.c.
 * Enumerations are kept as their canonical strings; NULL means "not set" and
 * config_apply_defaults() fills what the architecture and machine imply. */
#ifndef VM_CONFIG_H
#define VM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct vm_drive {
	char *id;
	char *image;     /* file name in Data/, an absolute path, or NULL (empty removable) */
	char *interface; /* virtio nvme ide scsi usb sd floppy pflash none */
	char *media;     /* disk cdrom */
	char *format;    /* qcow2 raw ... ; NULL = probe from the name/contents */
	bool readonly;
	bool removable;
	int64_t bootindex; /* 0 = in order */
};

struct vm_net {
	char *id;
	char *mode;  /* user tap bridge socket mcast none */
	char *model; /* virtio-net-pci e1000 ... */
	char *mac;
	struct strv forward; /* "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" */
	bool isolate;
	char *ifname;  /* tap */
	char *bridge;  /* bridge */
	char *address; /* socket/mcast: HOST:PORT */
	bool listen;   /* socket: listen (server) or connect */
	char *subnet;  /* user: guest network CIDR */
};

struct vm_serial {
	char *id;
	char *mode;   /* stdio socket pty file none */
	char *target; /* console monitor gdb */
	char *path;   /* file: log path; socket: override of the runtime socket */
};

struct vm_share {
	char *id;
	char *path;
	char *tag;
	bool readonly;
};

struct vm_config {
	char *name;
	char *uuid;
	char *notes;
	char *arch;
	char *machine;
	char *machine_props;
	char *cpu;
	struct strv cpu_flags; /* "+avx", "-sse4.2" */
	int64_t cpus;          /* 0 = 1 */
	int64_t memory;        /* MiB */
	char *accel;           /* auto kvm tcg */
	char *tcg_thread;      /* auto single multi */
	int64_t tcg_tb_size;   /* MiB, 0 = QEMU default */
	char *firmware;        /* default bios uefi none */
	char *bios;            /* firmware image in Data/ */
	char *efi_vars;        /* per-bundle UEFI variables, default efi_vars.fd */
	char *kernel, *initrd, *append, *dtb;
	char *display;        /* none vnc spice */
	char *display_device; /* virtio-vga ... */
	char *sound;          /* none, or a device model */
	char *usb;            /* none 2.0 3.0 */
	bool usb_tablet;
	bool rng, balloon, tpm, rtc_localtime;
	char *agent; /* "true" (the default) or "false": the guest agent's port */
	struct strv extra_args;
	struct strv allow_paths; /* host files/folders outside the bundle the config may name */

	struct vm_drive *drives;
	size_t ndrives;
	struct vm_net *nets;
	size_t nnets;
	struct vm_serial *serials;
	size_t nserials;
	struct vm_share *shares;
	size_t nshares;

	/* Where the config came from, for messages. */
	char *source;
};

/* The kinds of sections (drive.ID.key ...). */
enum section_kind { SEC_TOP, SEC_DRIVE, SEC_NET, SEC_SERIAL, SEC_SHARE, SEC_COUNT };

enum field_type { FT_STR, FT_ENUM, FT_INT, FT_MIB, FT_BOOL, FT_LIST };

/* The grammar of a value QEMU reads inside an option string (argv.c,
 * qopt.h): a value that matches holds no ',' and so adds no key. A field
 * with one is checked by config_validate (vm-config set and validate,
 * vm-create, argv_build) and again by argv.c as it builds the option. */
struct grammar {
	const char *what; /* the error's noun: "an interface name" */
	bool (*valid)(const char *value);
};
extern const struct grammar grammar_machine, grammar_machine_props, grammar_cpu_model, grammar_cpu_flag,
    grammar_device, grammar_nic_model, grammar_image_format, grammar_mac, grammar_forward, grammar_ifname,
    grammar_host_port, grammar_subnet, grammar_9p_tag, grammar_uuid;

struct field {
	const char *key;
	enum field_type type;
	size_t offset;
	const char *const *values; /* FT_ENUM: allowed; NULL-terminated */
	long long min, max;        /* FT_INT, FT_MIB */
	const char *doc;
	const char *utm_key; /* the matching config.plist key */
	/* FT_STR, FT_LIST: the grammar of a value QEMU parses inside an option
	 * string; NULL: free text, which argv.c escapes (a file name), or a
	 * value QEMU does not read as an option (notes; append and extra_args
	 * are arguments of their own) */
	const struct grammar *grammar;
};

struct section_desc {
	const char *name; /* "drive" */
	enum section_kind kind;
	const struct field *fields;
	size_t elem_size, array_off, count_off;
};

extern const struct section_desc config_sections[SEC_COUNT];
extern const char *const config_arches[];

void config_init(struct vm_config *c);
void config_free(struct vm_config *c);

/* A deep copy. */
void config_copy(struct vm_config *dst, const struct vm_config *src);
/* Give a new VM its identity: a fresh UUID and NIC MAC addresses. */
void config_new_identity(struct vm_config *c);

/* Fill unset fields with the defaults for c->arch and c->machine. */
void config_apply_defaults(struct vm_config *c);

/* Check the whole model; on failure writes one line per problem to errs
 * ("drive.cd0.image: ...") and returns the number of problems. */
int config_validate(const struct vm_config *c, struct buf *errs);
/* The first problem config_validate finds, one line (malloc'd), or NULL. */
char *config_first_problem(const struct vm_config *c);

/* Key paths: "memory", "drive.cd0.interface", "net.net0.forward".
 * set: value is checked against the field type; errors go in *err (malloc'd).
 * Setting a key of a section that does not exist creates it.
 * unset of a whole section ("drive.cd0") removes it. */
int config_get(const struct vm_config *c, const char *key, struct buf *out, char **err);
int config_set(struct vm_config *c, const char *key, const char *value, char **err);
int config_unset(struct vm_config *c, const char *key, char **err);
/* Append to a list field (net.net0.forward, cpu_flags, extra_args). */
int config_add(struct vm_config *c, const char *key, const char *value, char **err);

/* Sections. */
struct vm_drive *config_drive(const struct vm_config *c, const char *id);
struct vm_drive *config_add_drive(struct vm_config *c, const char *id);
struct vm_net *config_add_net(struct vm_config *c, const char *id);
struct vm_serial *config_add_serial(struct vm_config *c, const char *id);
struct vm_share *config_add_share(struct vm_config *c, const char *id);
/* A fresh id "PREFIXN" not yet used in that section kind. */
char *config_new_id(const struct vm_config *c, enum section_kind kind, const char *prefix);
/* The user named this host path (absolute) outside the bundle: list it in
 * allow_paths, once, so a run may use it. */
void config_allow_path(struct vm_config *c, const char *path);

/* The largest vm.conf and config.plist bundle_open reads: a larger file is
 * refused unread (libconfuse takes seconds over a value of megabytes).
 * config_parse_plist refuses a larger document too. */
#define CONFIG_VMCONF_MAX (1u << 20)
#define CONFIG_PLIST_MAX (32u << 20)

/* Codecs. vm.conf (libconfuse): errors are "FILE:LINE: message". */
int config_parse_vmconf(struct vm_config *c, const char *path, const char *text, char **err);
char *config_format_vmconf(const struct vm_config *c);
/* Every field as JSON (json-c; config_json.c): an object to json_object_put,
 * or its text (malloc'd). */
struct json_object;
struct json_object *config_json(const struct vm_config *c);
char *config_format_json(const struct vm_config *c, bool pretty);

/* Table-driven access, shared by the codecs and vm-config. */
void *config_section_elem(const struct vm_config *c, enum section_kind k, size_t i);
size_t config_section_count(const struct vm_config *c, enum section_kind k);
int config_field_set(void *base, const struct field *f, const char *key, const char *value, char **err);
bool config_field_get(const void *base, const struct field *f, struct buf *out);
bool config_id_valid(const char *id);
bool config_has_pci(const struct vm_config *c);
/* Does the VM get the guest agent's port: agent is not "false" and the
 * machine has virtio (PCI, or CCW on s390x)? */
bool config_agent(const struct vm_config *c);
const char *config_default_interface(const struct vm_config *c, const char *media);

/* The qemu-system-ARCH suffix for an architecture. */
const char *config_qemu_arch(const char *arch);
bool config_is_x86(const struct vm_config *c);


#endif
