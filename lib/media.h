/* Drives and removable media of a VM (UTM's removable drives,
 * qmp_blockdev_change_medium, hot-plug): drive edits in the config,
 * temporary images in Data/, fd sets for a sandboxed QEMU, query-block,
 * hot-plug and unplug, insert and eject, the cloud-init seed swap.
 *
 * Every change that should outlive the run goes into the config (under the
 * bundle lock, written atomically); when the VM runs, the same change is made
 * live through QMP first, so config and VM agree: if QEMU refuses, the config
 * is left as it was. A drive is hot-plugged as argv_build would start it
 * (drive_device in argv.h).
 *
 * Functions return 0, or -1 (MEDIA_TIMEOUT when a wait ran out) with *err,
 * one line without the bundle's name. They never print: what they do goes to
 * the say callback when one is set (vm-disk --verbose). */
#ifndef VM_MEDIA_H
#define VM_MEDIA_H

#include <signal.h>
#include <stdbool.h>

#include "bundle.h"
#include "qmp.h"

#define MEDIA_TIMEOUT (-2)
#define MEDIA_QMP_MS 30000

struct json_object;

struct media {
	struct bundle *b;     /* open; locked for changes */
	struct vm_config eff; /* b->cfg with defaults: what QEMU was (or will be) given */
	struct qmp *q;	      /* the running VM, or NULL */
	int timeout_ms;	      /* waits for the guest (unplug) and for jobs; -1: no limit */
	const volatile sig_atomic_t *interrupted; /* set by a signal: stop before the next step */
	void (*say)(void *arg, const char *msg);  /* what is done, or NULL */
	void *say_arg;
	/* private */
	struct json_object *blocks; /* query-block, fetched once */
	char *tmp_file;		    /* a half-made file to remove on failure */
};

/* q may be NULL (stopped). media_free drops the temporary file left, if any. */
void media_init(struct media *m, struct bundle *b, struct qmp *q);
void media_free(struct media *m);
bool media_live(const struct media *m);
void media_say(struct media *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the config ---- */

bool media_is_cdrom(const struct vm_drive *d);
bool media_removable(const struct vm_drive *d);
/* The disk first in boot order (drive_boot_index), or NULL. */
const struct vm_drive *media_boot_disk(const struct vm_config *c);
/* The drive in the effective config, or NULL and "drive ID: no such drive (drives: ...)". */
const struct vm_drive *media_drive(struct media *m, const char *id, char **err);
/* A valid, unused id for a new drive. */
int media_new_id_ok(struct media *m, const char *id, char **err);
/* Check and write the config, then refresh m->eff. */
int media_save(struct media *m, char **err);
/* Set drive.ID.KEY in b->cfg (value NULL: unset); not saved. */
int media_set_key(struct media *m, const char *id, const char *key, const char *value, char **err);
/* A new drive in b->cfg (not saved), checked as the config would be with it;
 * on failure it is removed again. NULL fields are left to the defaults. */
struct media_new_drive {
	const char *id, *image, *format, *media, *interface;
	bool readonly;
	bool removable; /* also set for every CD-ROM */
	int bootindex;	/* 0: in order */
};
/* The cloud-init seed, as vm-create --cloud-init and vm-disk cloud-init make
 * it: a read-only virtio disk where the machine's disks are virtio (every
 * kernel has virtio-blk, not every one has AHCI, q35's IDE), else a CD-ROM;
 * interface: the one asked for, NULL for the machine's. It boots last:
 * SeaBIOS hangs at a virtio disk without a boot sector put before the
 * system disk. */
#define MEDIA_SEED_BOOTINDEX 100
bool media_seed_is_disk(const struct vm_config *eff, const char *interface);
int media_add_drive(struct media *m, const struct media_new_drive *nd, char **err);
/* A file the user named, as the config should hold it: a bare name when it
 * lies in the bundle's Data/, else its absolute path (then allowed). NULL
 * with errno. */
char *media_config_name(struct media *m, const char *file);
/* The drive's image path, and its format (the config's, else probed). */
char *media_drive_path(struct media *m, const struct vm_drive *d, char **err);
const char *media_drive_format(const struct vm_drive *d, const char *path, char **err);

/* ---- temporary files in Data/ ---- */

/* Data/, made if missing. */
char *media_data_dir(struct media *m, char **err);
/* A hidden temporary name in Data/ for a new image named base (stale ones
 * of earlier runs are removed); dropped by media_drop_tmp unless placed. */
char *media_tmp_in_data(struct media *m, const char *base, char **err);
/* Move the temporary image to its name without replacing anything. */
int media_place_tmp(struct media *m, const char *tmp, const char *final, char **err);
void media_drop_tmp(struct media *m);
/* Copy file into Data/ (qemu-img convert: sparse); *name gets the bare name
 * for the config, *path the full path. */
int media_import_copy(struct media *m, const char *file, const char *format, char **name, char **path,
		      char **err);

/* ---- the running VM ---- */

/* The QMP error without its class ("GenericError: "). */
const char *media_qmp_desc(const char *e);
/* Open path and hand it to QEMU as an fd set (both access modes unless ro):
 * QEMU may run as a user that cannot open it. "/dev/fdset/N" and *set. */
char *media_fdset(struct media *m, const char *path, bool ro, int *set, char **err);
/* A set no drive uses any more: QEMU closes its descriptors. */
void media_fdset_release(struct media *m, int set);
/* The running VM's BlockInfo for drive id (borrowed; fd set paths named by
 * their files), or NULL: with *err when query-block failed. */
struct json_object *media_block(struct media *m, const char *id, char **err);
/* The fd set a running drive's medium came in, or -1. */
int media_block_fdset(struct media *m, const char *id);
/* A PCI bridge or root port with nothing behind it in query-pci's devices
 * list, or NULL. */
const char *media_free_pci_port(struct json_object *devices);
/* Plug drive d (effective config; path/format NULL: an empty CD-ROM) into
 * the running VM: blockdev-add, then device_add as argv_build would add it. */
int media_plug(struct media *m, const struct vm_drive *d, const char *path, const char *format, char **err);
/* device_del, wait for DEVICE_DELETED (MEDIA_TIMEOUT), drop its node. */
/* Wait (m->timeout_ms) for QMP event whose data has key = value (and
 * key2 = value2 unless NULL): 1 when it came, 0 on timeout, -1 with *err
 * (QEMU gone). */
int media_wait_event(struct media *m, const char *event, const char *key, const char *value, const char *key2,
		     const char *value2, char **err);
int media_unplug(struct media *m, const struct vm_drive *d, char **err);
/* blockdev-change-medium of removable drive d; force: even a locked tray. */
int media_change(struct media *m, const struct vm_drive *d, const char *path, const char *format, bool force,
		 char **err);
/* eject of removable drive d's medium in the running VM. */
int media_eject_live(struct media *m, const struct vm_drive *d, bool force, char **err);

/* ---- operations: the running VM first (when it runs), then the config ---- */

/* A new image Data/ID.qcow2 (or .img for raw) of size bytes or on backing. */
struct media_create {
	const char *id, *format, *interface, *backing;
	uint64_t size;
};
int media_create_disk(struct media *m, const struct media_create *c, char **err);
/* A drive with file (NULL: an empty CD-ROM named id). *id_out: its id. */
struct media_attach {
	const char *file, *id, *interface;
	bool cdrom, readonly, copy;
};
int media_attach(struct media *m, const struct media_attach *a, char **id_out, char **err);
/* Remove drive id (its image stays); force: even the running VM's boot disk. */
int media_detach(struct media *m, const char *id, bool force, char **err);
int media_insert(struct media *m, const char *id, const char *file, bool copy, bool force, char **err);
int media_eject(struct media *m, const char *id, bool force, char **err);
/* Grow (or with shrink, shrink) drive id's image to size, or by size when
 * grow_by. */
int media_resize(struct media *m, const char *id, uint64_t size, bool grow_by, bool shrink, char **err);

/* The cloud-init seed: Data/ID.iso written by write(arg, path, err) in drive
 * id, made when missing (a read-only virtio disk where the machine's disks
 * are virtio, else a CD-ROM; interface: as asked). Run again, it replaces
 * the seed: on a running VM by a change of medium, or for a disk by unplug
 * and plug; if anything fails the old seed is put back and the config is
 * unchanged. */
struct media_seed {
	const char *id, *interface;
	bool force;
	int (*write)(void *arg, const char *path, char **err);
	void *arg;
};
int media_cloud_init(struct media *m, const struct media_seed *s, char **err);
/* The checks media_cloud_init starts with, for a caller to make before it
 * prepares the seed: a valid id, a drive that can hold one. */
int media_seed_check(struct media *m, const struct media_seed *s, char **err);

#endif
