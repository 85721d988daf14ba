/* Disk images through qemu-img: what an image is, making, growing and
 * snapshotting it. Errors are one line, usually qemu-img's own. */
#ifndef VM_DISK_H
#define VM_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct disk_snapshot {
	char *id, *name;
	uint64_t vm_state_size; /* 0: disk state only (made offline, or a disk without the VM state) */
	int64_t date_sec;	/* when it was taken (seconds since the epoch) */
	uint64_t vm_clock_nsec; /* guest clock at that time */
};

struct disk_info {
	char *filename;
	char *format;	 /* "qcow2", "raw", ... */
	char *backing;	 /* backing file as recorded, or NULL */
	uint64_t virtual_size;
	uint64_t actual_size; /* allocated on the host */
	bool has_actual_size;
	struct disk_snapshot *snaps;
	size_t nsnaps;
};

/* The JSON of `qemu-img info --output=json` (or QMP's ImageInfo) into *out.
 * 0, or -1 with *err. */
int disk_info_parse(const char *json, struct disk_info *out, char **err);
struct json_object;
int disk_info_from_json(struct json_object *o, struct disk_info *out, char **err);
void disk_info_free(struct disk_info *d);
const struct disk_snapshot *disk_find_snapshot(const struct disk_info *d, const char *name);

/* qemu-img info. format NULL lets qemu-img probe (it then says raw for
 * anything it does not know). force_share (-U): read an image that a running
 * QEMU holds. */
int disk_info(const char *path, const char *format, bool force_share, struct disk_info *out, char **err);

/* The format from the first bytes of the file: "qcow2", "vmdk", "vhdx",
 * "vdi", "qed", "vpc", or "raw". NULL with *err when it cannot be read or
 * is plainly not a disk image (a folder, a compressed file, an archive, an
 * odd size); what names it in messages. */
const char *disk_probe(const char *path, char **err);

/* qemu-img create -f format [-b backing -F backing_format] path [size].
 * size 0 with a backing file: the backing file's size. */
int disk_create(const char *path, const char *format, uint64_t size, const char *backing,
		const char *backing_format, char **err);
/* qemu-img resize [--shrink]. */
int disk_resize(const char *path, const char *format, uint64_t size, bool shrink, char **err);
/* qemu-img convert -O format (import a copy: sparse, flattened). */
int disk_convert(const char *src, const char *src_format, const char *dst, const char *dst_format, char **err);

enum disk_snap_op { DISK_SNAP_CREATE, DISK_SNAP_APPLY, DISK_SNAP_DELETE };
/* qemu-img snapshot -c|-a|-d name path (qcow2 only; qemu-img takes no -f here). */
int disk_snapshot(const char *path, enum disk_snap_op op, const char *name, char **err);

/* "1.5G", "512M", "196K", "0": short and rounded, for tables (not exact). */
char *disk_human_size(uint64_t bytes);

#endif
