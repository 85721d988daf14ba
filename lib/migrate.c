/* Live migration (migrate.h). */
#include "migrate.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonobj.h"
#include "qmp.h"
#include "util.h"

#define MIGRATE_QMP_MS 10000
#define DEST_RUN_MS 30000 /* how long the destination gets to run after completion */

/* Run cmd; args is consumed. 0, or -1 with *err (QMP's class dropped). */
static int cmd(struct qmp *q, const char *name, json_object *args, json_object **ret, char **err)
{
	char *e = NULL;
	int r = qmp_execute(q, name, args, MIGRATE_QMP_MS, ret, &e);
	json_object_put(args);
	if (r < 0) {
		const char *d = e && strstr(e, ": ") && qmp_last_was_qmp_error(q) ? strstr(e, ": ") + 2 : e;
		vm_set_err(err, "%s: %s", name, d ? d : "failed");
	}
	free(e);
	return r;
}

/* cmd, its result not wanted and its error only noted (cleanup). */
static void cmd_quiet(struct qmp *q, const char *name, json_object *args)
{
	char *e = NULL;
	if (cmd(q, name, args, NULL, &e) < 0)
		vm_info("%s", e);
	free(e);
}

static json_object *obj(void)
{
	return json_object_new_object();
}

static int64_t get_int(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

/* migrate-set-capabilities for names[i] = on[i]. */
static int set_caps(struct qmp *q, const char *const *names, const bool *on, size_t n, char **err)
{
	json_object *a = obj(), *caps = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *c = obj();
		json_set_str(c, "capability", names[i]);
		json_object_object_add(c, "state", json_object_new_boolean(on[i]));
		json_object_array_add(caps, c);
	}
	json_object_object_add(a, "capabilities", caps);
	return cmd(q, "migrate-set-capabilities", a, NULL, err);
}

int migrate_uri_check(const char *uri, char **err)
{
	if (has_prefix(uri, "unix:") && uri[5]) {
		return 0;
	}
	if (has_prefix(uri, "tcp:")) {
		const char *port = strrchr(uri + 4, ':');
		long long p;
		const char *e = NULL;
		if (port && port > uri + 4 && parse_int(port + 1, 1, 65535, &p, &e) == 0)
			return 0;
		vm_set_err(err, "%s: not tcp:HOST:PORT", uri);
		return -1;
	}
	if (has_prefix(uri, "exec:") || has_prefix(uri, "fd:"))
		vm_set_err(err, "%s: only tcp: and unix: (QEMU's sandbox forbids exec:)", uri);
	else
		vm_set_err(err, "%s: not tcp:HOST:PORT or unix:PATH", uri);
	return -1;
}

int migrate_incoming(struct qmp *dest, const char *uri, int timeout_ms, char **err)
{
	(void)timeout_ms;
	if (migrate_uri_check(uri, err) < 0)
		return -1;
	/* The source decides what it uses; these only let it. postcopy-ram
	 * needs userfaultfd, which a host may not give: then it stays off. */
	static const char *const rp[] = {"return-path"}, *const pc[] = {"postcopy-ram"};
	static const bool on[] = {true};
	if (set_caps(dest, rp, on, 1, err) < 0)
		return -1;
	char *e = NULL;
	if (set_caps(dest, pc, on, 1, &e) < 0)
		vm_info("migration: no postcopy here: %s", e);
	free(e);
	json_object *a = obj();
	json_set_str(a, "uri", uri);
	return cmd(dest, "migrate-incoming", a, NULL, err);
}

/* Whether the destination took postcopy-ram (migrate_incoming): without it,
 * it would fail the whole migration at the source's postcopy advice. false
 * with *err naming the way out. */
static bool dest_has_postcopy(struct qmp *dest, char **err)
{
	json_object *caps = NULL;
	if (cmd(dest, "query-migrate-capabilities", NULL, &caps, err) < 0)
		return false;
	bool on = false;
	for (size_t i = 0; caps && i < json_object_array_length(caps); i++) {
		json_object *c = json_object_array_get_idx(caps, i);
		const char *name = json_member_str(c, "capability");
		if (name && !strcmp(name, "postcopy-ram"))
			on = json_member_bool(c, "state");
	}
	json_object_put(caps);
	if (!on)
		vm_set_err(err, "--postcopy: the destination cannot take it (its QEMU has no userfaultfd: "
				"start it with --no-sandbox where vm.unprivileged_userfaultfd is 0), "
				"or migrate without --postcopy");
	return on;
}

/* ---- disks ---- */

struct disk {
	char *device; /* the BlockBackend (drive-ID) */
	char *node;   /* our nbd node on the source, once added */
	bool job;     /* a mirror job runs */
};

struct run {
	struct qmp *src;
	const struct migrate_opts *o;
	struct disk *disks;
	size_t ndisks;
	bool nbd_started; /* on the destination */
	double start;
	char **err;
};

/* The NBD address: o->nbd_uri, else derived from the migration's. */
static int nbd_addr(const struct migrate_opts *o, char **host, char **port, char **path, char **err)
{
	*host = *port = *path = NULL;
	const char *u = o->nbd_uri;
	char *derived = NULL;
	if (!u) {
		if (has_prefix(o->uri, "unix:")) {
			u = derived = xasprintf("%s.nbd", o->uri);
		} else {
			const char *c = strrchr(o->uri + 4, ':');
			u = derived = xasprintf("%.*s:%d", (int)(c - o->uri), o->uri, atoi(c + 1) + 1);
		}
	}
	int r = migrate_uri_check(u, err);
	if (r == 0 && has_prefix(u, "unix:")) {
		*path = xstrdup(u + 5);
	} else if (r == 0) {
		const char *c = strrchr(u + 4, ':');
		*host = xasprintf("%.*s", (int)(c - (u + 4)), u + 4);
		*port = xstrdup(c + 1);
		/* [::1] -> ::1 */
		size_t l = strlen(*host);
		if (l > 1 && (*host)[0] == '[' && (*host)[l - 1] == ']') {
			memmove(*host, *host + 1, l - 2);
			(*host)[l - 2] = 0;
		}
	}
	free(derived);
	return r;
}

/* A SocketAddress ("flat": blockdev-add) or SocketAddressLegacy (nbd-server-start). */
static json_object *sockaddr(const char *host, const char *port, const char *path, bool legacy)
{
	json_object *a = obj(), *d = legacy ? obj() : a;
	json_set_str(a, "type", path ? "unix" : "inet");
	if (path) {
		json_set_str(d, "path", path);
	} else {
		json_set_str(d, "host", host);
		json_set_str(d, "port", port);
	}
	if (legacy)
		json_object_object_add(a, "data", d);
	return a;
}

/* The source's writable disks with a medium. */
static int find_disks(struct run *r)
{
	json_object *blocks = NULL;
	if (cmd(r->src, "query-block", NULL, &blocks, r->err) < 0)
		return -1;
	size_t n = json_object_array_length(blocks);
	r->disks = xcalloc(n ? n : 1, sizeof *r->disks);
	for (size_t i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(blocks, i), *ins = json_member(b, "inserted");
		json_object *ro = json_member(ins, "ro");
		if (!ins || (ro && json_object_get_boolean(ro)) || !json_member_str(b, "device") || !*json_member_str(b, "device"))
			continue;
		r->disks[r->ndisks++].device = xstrdup(json_member_str(b, "device"));
	}
	json_object_put(blocks);
	return 0;
}

static int start_mirrors(struct run *r)
{
	const struct migrate_opts *o = r->o;
	if (!o->dest) {
		vm_set_err(r->err, "--copy-storage needs the destination's QMP (its disks are served from there)");
		return -1;
	}
	char *host, *port, *path;
	if (nbd_addr(o, &host, &port, &path, r->err) < 0)
		return -1;
	int ret = -1;
	json_object *a = obj();
	json_object_object_add(a, "addr", sockaddr(host, port, path, true));
	if (cmd(o->dest, "nbd-server-start", a, NULL, r->err) < 0)
		goto out;
	r->nbd_started = true;
	for (size_t i = 0; i < r->ndisks; i++) {
		struct disk *d = &r->disks[i];
		a = obj();
		json_set_str(a, "device", d->device);
		json_object_object_add(a, "writable", json_object_new_boolean(true));
		if (cmd(o->dest, "nbd-server-add", a, NULL, r->err) < 0)
			goto out;
		char *node = xasprintf("migrate-%s", d->device);
		a = obj();
		json_set_str(a, "driver", "nbd");
		json_set_str(a, "node-name", node);
		json_object_object_add(a, "server", sockaddr(host, port, path, false));
		json_set_str(a, "export", d->device);
		if (cmd(r->src, "blockdev-add", a, NULL, r->err) < 0) {
			free(node);
			goto out;
		}
		d->node = node;
		a = obj();
		json_set_str(a, "job-id", node);
		json_set_str(a, "device", d->device);
		json_set_str(a, "target", node);
		json_set_str(a, "sync", "full");
		if (cmd(r->src, "blockdev-mirror", a, NULL, r->err) < 0)
			goto out;
		d->job = true;
	}
	ret = 0;
out:
	free(host);
	free(port);
	free(path);
	return ret;
}

static struct disk *disk_of_job(struct run *r, const char *job)
{
	for (size_t i = 0; i < r->ndisks; i++)
		if (r->disks[i].job && r->disks[i].node && !strcmp(r->disks[i].node, job))
			return &r->disks[i];
	return NULL;
}

/* 1 when every mirror is in step, 0 not yet, -1 with *err when one ended. */
static int mirrors_ready(struct run *r, struct migrate_progress *p)
{
	json_object *jobs = NULL;
	if (cmd(r->src, "query-block-jobs", NULL, &jobs, r->err) < 0)
		return -1;
	size_t seen = 0, ready = 0, n = json_object_array_length(jobs);
	p->transferred = p->remaining = p->total = 0;
	for (size_t i = 0; i < n; i++) {
		json_object *j = json_object_array_get_idx(jobs, i);
		if (!disk_of_job(r, json_member_str(j, "device") ? json_member_str(j, "device") : ""))
			continue;
		seen++;
		json_object *rd = json_member(j, "ready");
		ready += rd && json_object_get_boolean(rd);
		uint64_t off = (uint64_t)get_int(j, "offset"), len = (uint64_t)get_int(j, "len");
		p->transferred += off;
		p->total += len;
		p->remaining += len > off ? len - off : 0;
		if (json_member_str(j, "error")) {
			vm_set_err(r->err, "mirror of %s: %s", json_member_str(j, "device"), json_member_str(j, "error"));
			json_object_put(jobs);
			return -1;
		}
	}
	json_object_put(jobs);
	size_t want = 0;
	for (size_t i = 0; i < r->ndisks; i++)
		want += r->disks[i].job;
	if (seen < want) {
		vm_set_err(r->err, "a disk mirror ended before it was in step (see the destination's NBD server)");
		return -1;
	}
	return ready == want;
}

/* Finish (point-in-time copy, no pivot) or abandon the mirrors; wait until
 * they are gone, then drop the nbd nodes. */
static int end_mirrors(struct run *r, bool force)
{
	for (size_t i = 0; i < r->ndisks; i++) {
		if (!r->disks[i].job)
			continue;
		json_object *a = obj();
		json_set_str(a, "device", r->disks[i].node);
		if (force)
			json_object_object_add(a, "force", json_object_new_boolean(true));
		if (force)
			cmd_quiet(r->src, "block-job-cancel", a);
		else if (cmd(r->src, "block-job-cancel", a, NULL, r->err) < 0)
			return -1;
	}
	for (int tries = 0;; tries++) {
		json_object *jobs = NULL;
		char *e = NULL;
		if (cmd(r->src, "query-block-jobs", NULL, &jobs, &e) < 0) {
			free(e);
			break;
		}
		size_t left = 0, n = json_object_array_length(jobs);
		for (size_t i = 0; i < n; i++)
			left += disk_of_job(r, json_member_str(json_object_array_get_idx(jobs, i), "device") ?: "") != NULL;
		json_object_put(jobs);
		if (!left)
			break;
		if (tries > 3000) { /* 5 minutes */
			vm_set_err(r->err, "the disk mirrors did not finish");
			return -1;
		}
		usleep(100000);
	}
	for (size_t i = 0; i < r->ndisks; i++) {
		r->disks[i].job = false;
		if (!r->disks[i].node)
			continue;
		json_object *a = obj();
		json_set_str(a, "node-name", r->disks[i].node);
		cmd_quiet(r->src, "blockdev-del", a);
		free(r->disks[i].node);
		r->disks[i].node = NULL;
	}
	return 0;
}

static void stop_nbd(struct run *r)
{
	if (r->nbd_started && r->o->dest)
		cmd_quiet(r->o->dest, "nbd-server-stop", NULL);
	r->nbd_started = false;
}

/* ---- the migration ---- */

static void parse_progress(json_object *info, struct migrate_progress *p)
{
	json_object *ram = json_member(info, "ram");
	p->status = json_member_str(info, "status");
	p->phase = "ram";
	p->transferred = (uint64_t)get_int(ram, "transferred");
	p->remaining = (uint64_t)get_int(ram, "remaining");
	p->total = (uint64_t)get_int(ram, "total");
	json_object *mbps = json_member(ram, "mbps");
	p->mbps = mbps ? json_object_get_double(mbps) : 0;
	p->dirty_rate = (uint64_t)get_int(ram, "dirty-pages-rate");
	p->iterations = (uint64_t)get_int(ram, "dirty-sync-count");
	p->expected_downtime_ms = get_int(info, "expected-downtime");
	p->cpu_throttle = (int)get_int(info, "cpu-throttle-percentage");
}

static void report(struct run *r, struct migrate_progress *p)
{
	p->elapsed_ms = now_ms() - r->start;
	if (r->o->progress)
		r->o->progress(r->o->ctx, p);
}

/* Why it must stop now, or NULL. */
static const char *stop_reason(struct run *r)
{
	if (r->o->interrupted && *r->o->interrupted)
		return "interrupted";
	if (r->o->timeout_ms > 0 && now_ms() - r->start > r->o->timeout_ms)
		return "timed out";
	return NULL;
}

/* The migration failed or was stopped: the source runs on. */
static void undo(struct run *r)
{
	if (r->ndisks) {
		char *e = NULL;
		char **keep = r->err;
		r->err = &e;
		end_mirrors(r, true);
		r->err = keep;
		free(e);
	}
	stop_nbd(r);
}

static json_object *query(struct run *r)
{
	json_object *info = NULL;
	if (cmd(r->src, "query-migrate", NULL, &info, r->err) < 0)
		return NULL;
	return info;
}

static int cancel_and_wait(struct run *r, const char *why)
{
	cmd_quiet(r->src, "migrate_cancel", NULL);
	for (int i = 0; i < 600; i++) {
		char *e = NULL;
		char **keep = r->err;
		r->err = &e;
		json_object *info = query(r);
		r->err = keep;
		free(e);
		const char *st = info ? json_member_str(info, "status") : NULL;
		bool done = !st || !strcmp(st, "cancelled") || !strcmp(st, "failed") || !strcmp(st, "completed");
		json_object_put(info);
		if (done)
			break;
		usleep(50000);
	}
	free(*r->err);
	*r->err = xstrdup(why);
	return -1;
}

static int wait_dest_runs(struct run *r, bool was_running, struct migrate_result *res)
{
	if (!r->o->dest)
		return 0;
	double until = now_ms() + DEST_RUN_MS;
	for (;;) {
		json_object *st = NULL;
		if (cmd(r->o->dest, "query-status", NULL, &st, r->err) < 0)
			return -1;
		const char *s = json_member_str(st, "status");
		bool ok = s && (was_running ? !strcmp(s, "running") : strcmp(s, "inmigrate") && strcmp(s, "prelaunch"));
		char *copy = s ? xstrdup(s) : NULL;
		json_object_put(st);
		if (ok) {
			free(copy);
			res->dest_running = was_running;
			return 0;
		}
		if (now_ms() > until || (copy && !strcmp(copy, "internal-error"))) {
			vm_set_err(r->err, "the destination did not start running (its status: %s)", copy ? copy : "?");
			free(copy);
			return -1;
		}
		free(copy);
		usleep(20000);
	}
}

int migrate_run(struct qmp *src, const struct migrate_opts *o, struct migrate_result *res, char **err)
{
	memset(res, 0, sizeof *res);
	if (migrate_uri_check(o->uri, err) < 0)
		return -1;
	struct run r = {.src = src, .o = o, .err = err, .start = now_ms()};
	int ret = -1;
	json_object *st = NULL, *a;
	if (cmd(src, "query-status", NULL, &st, err) < 0)
		return -1;
	const char *s0 = json_member_str(st, "status");
	bool was_running = json_member_bool(st, "running");
	if (s0 && (!strcmp(s0, "inmigrate") || !strcmp(s0, "postmigrate") || !strcmp(s0, "finish-migrate"))) {
		vm_set_err(err, "the VM is %s: nothing to migrate", s0);
		json_object_put(st);
		return -1;
	}
	json_object_put(st);
	json_object *info = NULL;
	if (cmd(src, "query-migrate", NULL, &info, err) < 0)
		return -1;
	const char *s1 = json_member_str(info, "status");
	if (s1 && (!strcmp(s1, "active") || !strcmp(s1, "setup") || !strcmp(s1, "postcopy-active") ||
		   !strcmp(s1, "pre-switchover") || !strcmp(s1, "device"))) {
		vm_set_err(err, "a migration is already under way (%s)", s1);
		json_object_put(info);
		return -1;
	}
	json_object_put(info);

	if (o->postcopy && o->dest && !dest_has_postcopy(o->dest, err))
		return -1;
	static const char *const names[] = {"events", "return-path", "auto-converge", "postcopy-ram",
					    "pause-before-switchover"};
	bool on[] = {true, true, o->auto_converge, o->postcopy, o->copy_storage};
	if (set_caps(src, names, on, sizeof on / sizeof *on, err) < 0)
		return -1;
	a = obj();
	json_object_object_add(a, "max-bandwidth",
			       json_object_new_int64(o->bandwidth ? (int64_t)o->bandwidth : INT64_MAX / 2));
	if (o->max_downtime_ms > 0)
		json_object_object_add(a, "downtime-limit", json_object_new_int64(o->max_downtime_ms));
	if (cmd(src, "migrate-set-parameters", a, NULL, err) < 0)
		return -1;

	struct migrate_progress p = {.status = "setup"};
	int poll_ms = o->poll_ms > 0 ? o->poll_ms : 200;
	if (o->copy_storage) {
		if (find_disks(&r) < 0 || start_mirrors(&r) < 0) {
			undo(&r);
			goto out;
		}
		res->disks = (int)r.ndisks;
		for (;;) {
			p.status = "active";
			p.phase = "disks";
			int rd = mirrors_ready(&r, &p);
			if (rd < 0) {
				undo(&r);
				goto out;
			}
			report(&r, &p);
			if (rd)
				break;
			const char *why = stop_reason(&r);
			if (why) {
				vm_set_err(err, "%s while the disks were copied", why);
				undo(&r);
				goto out;
			}
			usleep((useconds_t)poll_ms * 1000);
		}
	}

	a = obj();
	json_set_str(a, "uri", o->uri);
	if (cmd(src, "migrate", a, NULL, err) < 0) {
		undo(&r);
		goto out;
	}
	int postcopy_after = o->postcopy_after > 0 ? o->postcopy_after : 3;
	for (;;) {
		info = query(&r);
		if (!info) {
			cancel_and_wait(&r, *err ? *err : "query-migrate failed");
			undo(&r);
			goto out;
		}
		memset(&p, 0, sizeof p);
		p.postcopy = res->postcopy;
		parse_progress(info, &p);
		const char *status = p.status ? p.status : "";
		if (!strcmp(status, "completed")) {
			res->total_ms = get_int(info, "total-time");
			res->downtime_ms = get_int(info, "downtime");
			res->setup_ms = get_int(info, "setup-time");
			res->transferred = p.transferred;
			res->mbps = p.mbps;
			report(&r, &p);
			json_object_put(info);
			break;
		}
		if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
			const char *why = json_member_str(info, "error-desc");
			/* a destination without postcopy fails at the source's advice;
			 * without its QMP we could not ask beforehand */
			vm_set_err(err, "%s%s%s", why ? why : "the migration ", why ? "" : status,
				   o->postcopy && !o->dest && !res->postcopy
				       ? " (with --postcopy: has the destination's QEMU userfaultfd?)"
				       : "");
			json_object_put(info);
			undo(&r);
			goto out;
		}
		if (!strcmp(status, "pre-switchover")) {
			/* the CPUs are stopped: the mirrors' last writes, then the switch */
			json_object_put(info);
			if (end_mirrors(&r, false) < 0) {
				cancel_and_wait(&r, *err);
				undo(&r);
				goto out;
			}
			a = obj();
			json_set_str(a, "state", "pre-switchover");
			if (cmd(src, "migrate-continue", a, NULL, err) < 0) {
				cancel_and_wait(&r, *err);
				undo(&r);
				goto out;
			}
			continue;
		}
		report(&r, &p);
		/* status and p's strings point into info */
		bool stuck = o->postcopy && !res->postcopy && !strcmp(status, "active") &&
			     p.iterations >= (uint64_t)postcopy_after && p.remaining > 0;
		json_object_put(info);
		const char *why = stop_reason(&r);
		if (why && !res->postcopy) {
			cancel_and_wait(&r, why);
			undo(&r);
			goto out;
		}
		if (stuck) {
			/* it does not converge: the destination runs, and pulls the rest */
			if (cmd(src, "migrate-start-postcopy", NULL, NULL, err) < 0) {
				cancel_and_wait(&r, *err);
				undo(&r);
				goto out;
			}
			res->postcopy = true;
		}
		/* the next progress report, or sooner when the status changes */
		json_object *ev = NULL;
		if (qmp_wait_event(src, "MIGRATION", poll_ms, &ev, NULL) == 1)
			json_object_put(ev);
	}
	stop_nbd(&r);
	ret = wait_dest_runs(&r, was_running, res);
	if (ret < 0 && was_running && !res->postcopy) {
		/* the destination never ran (it failed to take over its disks,
		 * say): the guest goes on here, where its state still is. The
		 * destination goes first: it may hold the disks' locks. */
		if (o->dest)
			cmd_quiet(o->dest, "quit", NULL);
		char *e = NULL;
		int tries = 0;
		while (cmd(src, "cont", NULL, NULL, &e) < 0 && ++tries < 50) {
			free(e);
			e = NULL;
			usleep(100000);
		}
		if (e) {
			char *both = xasprintf("%s; resuming the source failed too: %s", *err, e);
			free(*err);
			*err = both;
		}
		free(e);
	}
out:
	for (size_t i = 0; i < r.ndisks; i++) {
		free(r.disks[i].device);
		free(r.disks[i].node);
	}
	free(r.disks);
	return ret;
}
