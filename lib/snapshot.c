/* Snapshots of a VM's disks, live (QMP jobs) and offline (qemu-img). */
#include "snapshot.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "jsonobj.h"
#include "runtime.h"

void snapshot_drives_free(struct snapshot_drive *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].path);
		disk_info_free(&s[i].info);
	}
	free(s);
}

/* One drive's path, node and image info; -1 with *err. */
static int fill(struct media *m, struct snapshot_drive *sd, char **err)
{
	const struct vm_drive *d = sd->d;
	char *e = NULL;
	sd->path = media_drive_path(m, d, err);
	if (!sd->path)
		return -1;
	if (media_live(m) && !strcmp(d->interface, "nvme")) {
		vm_set_err(err, "drive %s: NVMe devices cannot be saved in a live snapshot (QEMU cannot migrate "
				"them); stop the VM to snapshot its disks",
			   d->id);
		return -1;
	}
	if (media_live(m)) {
		struct json_object *ins = json_member(media_block(m, d->id, &e), "inserted");
		free(e);
		e = NULL;
		sd->node = json_member_str(ins, "node-name");
		if (!sd->node || disk_info_from_json(json_member(ins, "image"), &sd->info, &e) < 0) {
			free(e);
			vm_set_err(err, "drive %s: not in the running VM", d->id);
			return -1;
		}
	} else {
		const char *fmt = media_drive_format(d, sd->path, err);
		if (!fmt)
			return -1;
		if (disk_info(sd->path, fmt, false, &sd->info, &e) < 0) {
			vm_set_err(err, "%s: %s", d->id, e);
			free(e);
			return -1;
		}
	}
	if (strcmp(sd->info.format, "qcow2")) {
		vm_set_err(err, "drive %s: a %s image (%s) cannot hold snapshots; only qcow2 can (convert it: "
				"qemu-img convert -O qcow2)",
			   d->id, sd->info.format, d->image);
		return -1;
	}
	return 0;
}

int snapshot_drives(struct media *m, struct snapshot_drive **out, size_t *nout, char **err)
{
	*out = NULL;
	*nout = 0;
	const struct vm_config *c = &m->eff;
	if (c->firmware && !strcmp(c->firmware, "uefi") && !c->bios) {
		vm_set_err(err, "efi_vars: the UEFI variable store (%s, a raw pflash drive) cannot hold snapshots",
			   c->efi_vars ? c->efi_vars : "efi_vars.fd");
		return -1;
	}
	struct snapshot_drive *s = xcalloc(c->ndrives ? c->ndrives : 1, sizeof *s);
	size_t n = 0;
	for (size_t i = 0; i < c->ndrives; i++) {
		const struct vm_drive *d = &c->drives[i];
		if (d->readonly || media_is_cdrom(d) || !d->image)
			continue;
		s[n].d = d;
		if (fill(m, &s[n++], err) < 0) {
			snapshot_drives_free(s, n);
			return -1;
		}
	}
	if (n == 0) {
		vm_set_err(err, "no writable drive to hold a snapshot");
		free(s);
		return -1;
	}
	*out = s;
	*nout = n;
	return 0;
}

struct json_object *snapshot_list(const struct snapshot_drive *s, size_t n)
{
	struct strv names = {0};
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < s[i].info.nsnaps; j++)
			if (!strv_contains(&names, s[i].info.snaps[j].name))
				strv_push(&names, s[i].info.snaps[j].name);
	struct json_object *arr = json_object_new_array();
	for (size_t k = 0; k < names.n; k++) {
		struct json_object *o = json_object_new_object(), *drv = json_object_new_array();
		const struct disk_snapshot *first = NULL;
		uint64_t vmstate = 0;
		for (size_t i = 0; i < n; i++) {
			const struct disk_snapshot *sn = disk_find_snapshot(&s[i].info, names.v[k]);
			if (!sn)
				continue;
			if (!first)
				first = sn;
			vmstate += sn->vm_state_size;
			json_object_array_add(drv, json_object_new_string(s[i].d->id));
		}
		json_set_str(o, "name", names.v[k]);
		char date[64] = "";
		time_t ts = (time_t)first->date_sec;
		struct tm tm;
		if (localtime_r(&ts, &tm))
			strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
		json_set_str(o, "date", date);
		json_object_object_add(o, "date_sec", json_object_new_int64(first->date_sec));
		json_object_object_add(o, "vm_state_size", json_object_new_int64((int64_t)vmstate));
		json_object_object_add(o, "vm_clock_nsec", json_object_new_int64((int64_t)first->vm_clock_nsec));
		json_object_object_add(o, "drives", drv);
		json_object_array_add(arr, o);
	}
	strv_free(&names);
	return arr;
}

int snapshot_run_job(struct media *m, const char *cmd, struct json_object *args, const char *what, char **err)
{
	char *job = xasprintf("vm-disk-%ld", (long)getpid()), *e = NULL;
	json_set_str(args, "job-id", job);
	media_say(m, "%s", cmd);
	int r = qmp_execute(m->q, cmd, args, MEDIA_QMP_MS, NULL, &e);
	json_object_put(args);
	if (r < 0) {
		vm_set_err(err, "%s: %s", what, media_qmp_desc(e));
		free(e);
		free(job);
		return -1;
	}
	r = media_wait_event(m, "JOB_STATUS_CHANGE", "id", job, "status", "concluded", &e);
	if (r <= 0) {
		if (r == 0)
			vm_set_err(err, "%s: job %s still running after %d s", what, job, m->timeout_ms / 1000);
		else
			vm_set_err(err, "%s: %s", what, e);
		free(e);
		free(job);
		return r == 0 ? MEDIA_TIMEOUT : -1;
	}
	struct json_object *jobs = NULL;
	int status = 0;
	if (qmp_execute(m->q, "query-jobs", NULL, MEDIA_QMP_MS, &jobs, &e) < 0) {
		vm_set_err(err, "query-jobs: %s", e ? e : "failed");
		free(e);
		status = -1;
	} else {
		for (size_t i = 0; i < json_object_array_length(jobs) && !status; i++) {
			struct json_object *j = json_object_array_get_idx(jobs, i);
			const char *id = json_member_str(j, "id"), *je = json_member_str(j, "error");
			if (id && !strcmp(id, job) && je) {
				vm_set_err(err, "%s: %s", what, je);
				status = -1;
			}
		}
		json_object_put(jobs);
	}
	struct json_object *a = json_object_new_object();
	json_set_str(a, "id", job);
	if (qmp_execute(m->q, "job-dismiss", a, MEDIA_QMP_MS, NULL, &e) < 0)
		free(e);
	json_object_put(a);
	free(job);
	return status;
}

static struct json_object *node_list(const struct snapshot_drive *s, size_t n, const char *must_have)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		if (!must_have || disk_find_snapshot(&s[i].info, must_have))
			json_object_array_add(arr, json_object_new_string(s[i].node));
	return arr;
}

/* A job's arguments: tag, vmstate (a node, or NULL), devices. */
static struct json_object *job_args(const char *name, const char *vmstate, struct json_object *devices)
{
	struct json_object *a = json_object_new_object();
	json_set_str(a, "tag", name);
	if (vmstate)
		json_set_str(a, "vmstate", vmstate);
	json_object_object_add(a, "devices", devices);
	return a;
}

/* The drives, after checking the name; -1 with *err. */
static int begin(struct media *m, const char *name, struct snapshot_drive **s, size_t *n, char **err)
{
	if (!*name || strspn(name, "0123456789") == strlen(name)) {
		vm_set_err(err, "snapshot '%s': a name of digits only would be taken for a snapshot id", name);
		return -1;
	}
	return snapshot_drives(m, s, n, err);
}

/* qemu-img snapshot op on each drive (with the snapshot, unless CREATE). */
static int offline(struct media *m, struct snapshot_drive *s, size_t n, enum disk_snap_op op, const char *name,
		   char **err)
{
	static const char flag[] = {[DISK_SNAP_CREATE] = 'c', [DISK_SNAP_APPLY] = 'a', [DISK_SNAP_DELETE] = 'd'};
	char *e = NULL;
	for (size_t i = 0; i < n; i++) {
		if (op == DISK_SNAP_DELETE && !disk_find_snapshot(&s[i].info, name))
			continue;
		media_say(m, "drive %s: qemu-img snapshot -%c %s", s[i].d->id, flag[op], name);
		if (disk_snapshot(s[i].path, op, name, &e) < 0) {
			vm_set_err(err, "drive %s: %s", s[i].d->id, e);
			free(e);
			/* all or none: take back the ones made */
			for (size_t j = 0; op == DISK_SNAP_CREATE && j < i; j++)
				if (disk_snapshot(s[j].path, DISK_SNAP_DELETE, name, &e) < 0)
					free(e);
			return -1;
		}
	}
	return 0;
}

/* The guest agent of the running VM, when one answers (quickly). */
#define SNAPSHOT_AGENT_MS 2000
static struct agent *guest_agent(struct media *m)
{
	char *e = NULL, *dir = bundle_runtime_path(m->b, NULL, &e);
	char *vm = bundle_display_name(m->b->path);
	struct agent *a = dir ? agent_connect(dir, vm, SNAPSHOT_AGENT_MS, SNAPSHOT_AGENT_MS, &e) : NULL;
	free(e);
	free(dir);
	free(vm);
	return a;
}

static void thaw(struct media *m, struct agent *a)
{
	int count = 0;
	char *e = NULL;
	if (agent_fsthaw(a, &count, &e) == 0)
		media_say(m, "thawed %d filesystem%s in the guest", count, count == 1 ? "" : "s");
	else
		media_say(m, "the guest agent could not thaw the guest's filesystems: %s", e);
	free(e);
}

/* A live snapshot with the guest's filesystems frozen (their disk state
 * clean, for a revert of the disks alone), when a guest agent answers. */
static int save_frozen(struct media *m, const char *name, struct json_object *args, char **err)
{
	struct agent *a = guest_agent(m);
	int count = 0;
	char *e = NULL;
	if (a && agent_fsfreeze(a, &count, &e) == 0) {
		media_say(m, "froze %d filesystem%s in the guest", count, count == 1 ? "" : "s");
	} else if (a) {
		media_say(m, "the guest agent could not freeze the guest's filesystems: %s", e);
		agent_close(a);
		a = NULL;
	}
	free(e);
	int r = snapshot_run_job(m, "snapshot-save", args, name, err);
	if (a)
		thaw(m, a);
	agent_close(a);
	return r;
}

int snapshot_create(struct media *m, const char *name, char **err)
{
	struct snapshot_drive *s;
	size_t n;
	if (begin(m, name, &s, &n, err) < 0)
		return -1;
	int status = -1;
	for (size_t i = 0; i < n; i++)
		if (disk_find_snapshot(&s[i].info, name)) {
			vm_set_err(err, "snapshot %s: exists (drive %s)", name, s[i].d->id);
			goto out;
		}
	if (media_live(m))
		status = save_frozen(m, name, job_args(name, s[0].node, node_list(s, n, NULL)), err);
	else
		status = offline(m, s, n, DISK_SNAP_CREATE, name, err);
out:
	snapshot_drives_free(s, n);
	return status;
}

int snapshot_revert(struct media *m, const char *name, char **err)
{
	struct snapshot_drive *s;
	size_t n;
	if (begin(m, name, &s, &n, err) < 0)
		return -1;
	int status = -1;
	size_t have = 0;
	const struct snapshot_drive *with_state = NULL, *lacking = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct disk_snapshot *sn = disk_find_snapshot(&s[i].info, name);
		if (sn) {
			have++;
			if (sn->vm_state_size && !with_state)
				with_state = &s[i];
		} else if (!lacking) {
			lacking = &s[i];
		}
	}
	if (!have)
		vm_set_err(err, "snapshot %s: no such snapshot", name);
	else if (lacking)
		vm_set_err(err, "snapshot %s: drive %s does not have it (added after it was taken?)", name,
			   lacking->d->id);
	else if (media_live(m) && !with_state)
		vm_set_err(err, "snapshot %s: holds no VM state (taken while the VM was stopped); stop the VM and "
				"revert offline",
			   name);
	else if (media_live(m))
		status = snapshot_run_job(m, "snapshot-load", job_args(name, with_state->node, node_list(s, n, NULL)),
					  name, err);
	else
		status = offline(m, s, n, DISK_SNAP_APPLY, name, err);
	if (status == 0 && media_live(m)) {
		/* a snapshot taken frozen comes back frozen: thaw it */
		struct agent *a = guest_agent(m);
		char *st = NULL, *e = NULL;
		if (a && agent_fsfreeze_status(a, &st, &e) == 0 && !strcmp(st, "frozen"))
			thaw(m, a);
		free(st);
		free(e);
		agent_close(a);
	}
	snapshot_drives_free(s, n);
	return status;
}

int snapshot_delete(struct media *m, const char *name, char **err)
{
	struct snapshot_drive *s;
	size_t n;
	if (begin(m, name, &s, &n, err) < 0)
		return -1;
	int status = -1;
	bool have = false;
	for (size_t i = 0; i < n; i++)
		have |= disk_find_snapshot(&s[i].info, name) != NULL;
	if (!have)
		vm_set_err(err, "snapshot %s: no such snapshot", name);
	else if (media_live(m))
		status = snapshot_run_job(m, "snapshot-delete", job_args(name, NULL, node_list(s, n, name)), name,
					  err);
	else
		status = offline(m, s, n, DISK_SNAP_DELETE, name, err);
	snapshot_drives_free(s, n);
	return status;
}
