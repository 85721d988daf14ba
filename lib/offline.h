/* Offline work on a VM's disks through libguestfs: it boots its own small
 * appliance VM (TCG where KVM does not work) that mounts the images, so the
 * host never mounts guest filesystems and needs no root. Only vm-disk links
 * this module (and -lguestfs); the disks must not be in use by a running VM.
 *
 * Every call returns 0, or -1 with *err: one line, libguestfs's own reason
 * where it gave one. */
#ifndef VM_OFFLINE_H
#define VM_OFFLINE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct offline_drive {
	const char *id;	    /* the drive id, for messages and the inspect output */
	const char *path;   /* the image */
	const char *format; /* qcow2, raw, ... (never probed by libguestfs) */
	bool readonly;
};

struct offline;

/* Start the appliance with these drives (in the appliance: /dev/sda, /dev/sdb ...). */
struct offline *offline_open(const struct offline_drive *drives, size_t n, char **err);
/* Flush and stop the appliance; after writing, its failure means the writes
 * may be lost. Frees o. */
int offline_finish(struct offline *o, char **err);
/* Stop without caring (after a failure). NULL is fine. */
void offline_abort(struct offline *o);

/* Mount the filesystems of drive 0 at /: fs (a device as the appliance
 * names it, e.g. /dev/sda1) when given; else the operating system's
 * mountpoints if inspection finds one; else its only filesystem. */
int offline_mount(struct offline *o, const char *fs, bool rw, char **err);

/* What is on the drives: {"operating_systems": [...], "filesystems": [...]},
 * like virt-inspector. */
int offline_inspect(struct offline *o, struct json_object **out, char **err);

/* Names in a folder (sorted), or the path itself when it is a file. */
int offline_ls(struct offline *o, const char *path, struct strv *out, char **err);
/* Copy host files or folders into a folder of the guest (recursively). */
int offline_copy_in(struct offline *o, const char *host_path, const char *guest_dir, char **err);
/* Copy a guest file or folder into a host folder (recursively). */
int offline_copy_out(struct offline *o, const char *guest_path, const char *host_dir, char **err);
/* Make a filesystem on the whole of drive 0. Refused when it already holds a
 * filesystem or partitions, unless force. */
int offline_mkfs(struct offline *o, const char *fstype, const char *label, bool force, char **err);

#endif
