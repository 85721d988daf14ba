/* Snapshots of a VM's disks (UTM's snapshot support, vm-disk snapshot):
 * every writable drive with an image holds one of the same name. Live,
 * through QMP's snapshot-save/-load/-delete jobs (the VM state too);
 * stopped, through qemu-img on each image, all or none. Errors as in
 * media.h: 0, or -1 (MEDIA_TIMEOUT when a job outlasts m->timeout_ms) with
 * *err. */
#ifndef VM_SNAPSHOT_H
#define VM_SNAPSHOT_H

#include "disk.h"
#include "media.h"

struct snapshot_drive {
	const struct vm_drive *d; /* in m->eff */
	char *path;
	const char *node; /* live: the format node (borrowed from m's query-block) */
	struct disk_info info;
};

/* The drives a snapshot covers; any that cannot hold one is refused here,
 * before anything changes (a raw image, NVMe live, the UEFI variables). */
int snapshot_drives(struct media *m, struct snapshot_drive **out, size_t *n, char **err);
void snapshot_drives_free(struct snapshot_drive *s, size_t n);

/* One JSON object per snapshot name, in the order the first drive has them:
 * name, date ("YYYY-MM-DD HH:MM:SS", local), date_sec, vm_state_size (the
 * drives' sum), vm_clock_nsec, drives (ids). */
struct json_object *snapshot_list(const struct snapshot_drive *s, size_t n);

int snapshot_create(struct media *m, const char *name, char **err);
int snapshot_revert(struct media *m, const char *name, char **err);
int snapshot_delete(struct media *m, const char *name, char **err);

/* Run a QMP job command (args consumed, "job-id" added): wait until it
 * concludes, give its error ("WHAT: error"), dismiss it. */
int snapshot_run_job(struct media *m, const char *cmd, struct json_object *args, const char *what, char **err);

#endif
