/* Suspend and resume (suspend.h). */
#include "suspend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "launch.h"
#include "qmp.h"
#include "runtime.h"

#define SAVE_FDNAME "utmkit-vmstate"
#define QMP_MS 5000
/* No throttle: QEMU's default bandwidth limit is for live migration over a
 * network, not for a stopped guest into a local file. */
#define UNLIMITED_BANDWIDTH (1LL << 40)

char *suspend_path(const struct bundle *b)
{
	return xasprintf("%s/Data/%s", b->path, SUSPEND_FILE);
}

bool suspend_exists(const struct bundle *b)
{
	char *p = suspend_path(b);
	bool r = access(p, F_OK) == 0;
	free(p);
	return r;
}

int suspend_discard(const struct bundle *b, char **err)
{
	char *p = suspend_path(b);
	int r = 0;
	if (unlink(p) < 0 && errno != ENOENT) {
		vm_set_err(err, "%s: %s", p, strerror(errno));
		r = -1;
	}
	free(p);
	return r;
}

/* ---- the fingerprint ---- */

static void fnv(uint64_t *h, const char *s)
{
	for (; *s; s++) {
		*h ^= (unsigned char)*s;
		*h *= 1099511628211ULL;
	}
	*h ^= '\n';
	*h *= 1099511628211ULL;
}

/* The value of a frontend option without what a clone or a run changes. */
static void hash_props(uint64_t *h, const char *opt, const char *val)
{
	static const char *const volatile_keys[] = {"mac", "fd", "file", "path", "filename", NULL};
	struct buf out = {0};
	buf_puts(&out, opt);
	char *copy = xstrdup(val), *save = NULL;
	for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		size_t klen = strcspn(kv, "=");
		bool drop = false;
		for (const char *const *k = volatile_keys; *k && !drop; k++)
			drop = strlen(*k) == klen && !strncmp(kv, *k, klen);
		if (!drop) {
			buf_puts(&out, ",");
			buf_puts(&out, kv);
		}
	}
	fnv(h, out.s);
	free(copy);
	buf_free(&out);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

void suspend_fp_from_argv(struct suspend_fp *fp, char *const *argv)
{
	memset(fp, 0, sizeof *fp);
	uint64_t h = 14695981039346656037ULL;
	struct buf accel = {0};
	for (size_t i = 1; argv[i]; i++) {
		const char *o = argv[i], *v = argv[i + 1];
		if (o[0] != '-')
			continue;
		if (o[1] == '-')
			o++;
		if (!strncmp(o, "-no", 3) && strcmp(o, "-nographic")) { /* -nodefaults, -no-hpet ... */
			fnv(&h, o);
			continue;
		}
		if (!v)
			break;
		if (!strcmp(o, "-m"))
			set_str(&fp->memory, v);
		else if (!strcmp(o, "-smp"))
			set_str(&fp->smp, v);
		else if (!strcmp(o, "-machine") || !strcmp(o, "-M"))
			set_str(&fp->machine, v);
		else if (!strcmp(o, "-cpu"))
			set_str(&fp->cpu, v);
		else if (!strcmp(o, "-accel"))
			buf_printf(&accel, "%s%s", accel.len ? "," : "", v);
		else if (!strcmp(o, "-device") || !strcmp(o, "-vga") || !strcmp(o, "-global"))
			hash_props(&h, o, v);
		else if (!strcmp(o, "-drive") && !strstr(v, "if=none"))
			hash_props(&h, o, v); /* a drive that is its own device (pflash, floppy...) */
		else
			continue;
		i++;
	}
	fp->accel = accel.s ? accel.s : xstrdup("");
	snprintf(fp->devices, sizeof fp->devices, "%016llx", (unsigned long long)h);
}

void suspend_fp_free(struct suspend_fp *fp)
{
	free(fp->memory);
	free(fp->smp);
	free(fp->machine);
	free(fp->cpu);
	free(fp->accel);
	free(fp->qemu);
	memset(fp, 0, sizeof *fp);
}

char *suspend_qemu_version(struct json_object *greeting)
{
	struct json_object *qmp, *ver, *qemu, *pkg, *v;
	if (!greeting || !json_object_object_get_ex(greeting, "QMP", &qmp) ||
	    !json_object_object_get_ex(qmp, "version", &ver) || !json_object_object_get_ex(ver, "qemu", &qemu))
		return NULL;
	int n[3] = {0};
	const char *k[3] = {"major", "minor", "micro"};
	for (int i = 0; i < 3; i++)
		if (json_object_object_get_ex(qemu, k[i], &v))
			n[i] = json_object_get_int(v);
	const char *p = json_object_object_get_ex(ver, "package", &pkg) ? json_object_get_string(pkg) : "";
	while (*p == ' ')
		p++;
	return *p ? xasprintf("%d.%d.%d %s", n[0], n[1], n[2], p) : xasprintf("%d.%d.%d", n[0], n[1], n[2]);
}

/* ---- the header ---- */

static const char *const fp_keys[] = {"memory", "smp", "machine", "cpu", "accel", "devices", "qemu", NULL};

static const char *fp_field(const struct suspend_fp *fp, int i)
{
	const char *v[] = {fp->memory, fp->smp, fp->machine, fp->cpu, fp->accel, fp->devices, fp->qemu};
	return v[i] ? v[i] : "";
}

static int write_header(int fd, const struct suspend_fp *fp, long long size, char **err)
{
	struct json_object *j = json_object_new_object();
	for (int i = 0; fp_keys[i]; i++)
		json_object_object_add(j, fp_keys[i], json_object_new_string(fp_field(fp, i)));
	json_object_object_add(j, "size", json_object_new_int64(size));
	json_object_object_add(j, "saved", json_object_new_int64((int64_t)time(NULL)));
	char hdr[SUSPEND_HEADER_SIZE] = {0};
	int n = snprintf(hdr, sizeof hdr, "%s%s\n", SUSPEND_MAGIC, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);
	if (n < 0 || n >= (int)sizeof hdr) {
		vm_set_err(err, "the saved state's header does not fit in %d bytes", SUSPEND_HEADER_SIZE);
		return -1;
	}
	if (pwrite(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
		vm_set_err(err, "writing the saved state: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}

/* The header of an open state file (a JSON object), checked against the
 * file's size; NULL with *err. */
static struct json_object *read_header(int fd, const char *path, char **err)
{
	char hdr[SUSPEND_HEADER_SIZE + 1] = {0};
	struct stat st;
	ssize_t n = pread(fd, hdr, SUSPEND_HEADER_SIZE, 0);
	if (n != SUSPEND_HEADER_SIZE || strncmp(hdr, SUSPEND_MAGIC, strlen(SUSPEND_MAGIC))) {
		vm_set_err(err, "%s: not a saved state of utmkit (vm-run --fresh discards it)", path);
		return NULL;
	}
	struct json_object *j = json_tokener_parse(hdr + strlen(SUSPEND_MAGIC)), *v;
	long long size = j && json_object_object_get_ex(j, "size", &v) ? json_object_get_int64(v) : -1;
	if (!j || fstat(fd, &st) < 0 || size < 0 || st.st_size != SUSPEND_HEADER_SIZE + size) {
		vm_set_err(err, "%s: a damaged saved state (vm-run --fresh discards it)", path);
		json_object_put(j);
		return NULL;
	}
	return j;
}

static const char *jstr(struct json_object *j, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(j, key, &v) ? json_object_get_string(v) : "";
}

/* ---- saving ---- */

/* QEMU's command line from /proc (NULL-terminated, malloc'd). */
static char **proc_argv(pid_t pid, char **err)
{
	char f[64];
	snprintf(f, sizeof f, "/proc/%d/cmdline", (int)pid);
	size_t len = 0;
	char *raw = pid > 0 ? read_file(f, &len) : NULL;
	if (!raw || !len) {
		vm_set_err(err, "%s: %s", f, raw ? "empty" : strerror(errno));
		free(raw);
		return NULL;
	}
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += raw[i] == '\0';
	char **av = xcalloc(n + 2, sizeof *av);
	size_t k = 0;
	for (char *s = raw; s < raw + len; s += strlen(s) + 1)
		av[k++] = xstrdup(s);
	free(raw);
	return av;
}

static void argv_free(char **av)
{
	for (size_t i = 0; av && av[i]; i++)
		free(av[i]);
	free(av);
}

static int set_events(struct qmp *q, char **err)
{
	struct json_object *args = json_object_new_object(), *caps = json_object_new_array(),
			   *cap = json_object_new_object();
	json_object_object_add(cap, "capability", json_object_new_string("events"));
	json_object_object_add(cap, "state", json_object_new_boolean(1));
	json_object_array_add(caps, cap);
	json_object_object_add(args, "capabilities", caps);
	int r = qmp_execute(q, "migrate-set-capabilities", args, QMP_MS, NULL, err);
	json_object_put(args);
	return r;
}

/* query-migrate's status ("completed", "failed", "active"...) and error. */
static char *migrate_status(struct qmp *q, char **why, char **err)
{
	struct json_object *ret = NULL, *v;
	if (qmp_execute(q, "query-migrate", NULL, QMP_MS, &ret, err) < 0)
		return NULL;
	char *s = xstrdup(json_object_object_get_ex(ret, "status", &v) ? json_object_get_string(v) : "none");
	if (why && json_object_object_get_ex(ret, "error-desc", &v))
		*why = xstrdup(json_object_get_string(v));
	json_object_put(ret);
	return s;
}

static bool migration_over(const char *s)
{
	return !strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
}

/* Until the migration ends: its final status (malloc'd), or NULL with *err
 * when QEMU went away. The MIGRATION events say it at once; query-migrate
 * every second covers an event missed. */
static char *wait_migration(struct qmp *q, char **err)
{
	for (;;) {
		struct json_object *ev = NULL, *data, *v;
		int r = qmp_wait_event(q, "MIGRATION", 1000, &ev, err);
		if (r < 0)
			return NULL;
		if (r == 1) {
			const char *s = json_object_object_get_ex(ev, "data", &data) &&
						json_object_object_get_ex(data, "status", &v)
					    ? json_object_get_string(v)
					    : "";
			char *st = migration_over(s) ? xstrdup(s) : NULL;
			json_object_put(ev);
			if (st)
				return st;
			continue;
		}
		char *st = migrate_status(q, NULL, err);
		if (!st || migration_over(st))
			return st;
		free(st);
	}
}

static bool cpus_running(struct qmp *q)
{
	struct json_object *ret = NULL, *v;
	bool running = false;
	if (qmp_execute(q, "query-status", NULL, QMP_MS, &ret, NULL) == 0)
		running = json_object_object_get_ex(ret, "running", &v) && json_object_get_boolean(v);
	json_object_put(ret);
	return running;
}

/* Into place: the unnamed file gets a name, then the final one. */
static int place(int fd, int datafd, const char *tmpname, bool unnamed, const char *path, char **err)
{
	if (fsync(fd) < 0) {
		vm_set_err(err, "%s: fsync: %s", path, strerror(errno));
		return -1;
	}
	if (unnamed) {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		unlinkat(datafd, tmpname, 0);
		if (linkat(AT_FDCWD, proc, datafd, tmpname, AT_SYMLINK_FOLLOW) < 0) {
			vm_set_err(err, "%s: linking the saved state: %s", path, strerror(errno));
			return -1;
		}
	}
	if (renameat(datafd, tmpname, datafd, SUSPEND_FILE) < 0) {
		vm_set_err(err, "%s: %s", path, strerror(errno));
		unlinkat(datafd, tmpname, 0);
		return -1;
	}
	fsync(datafd);
	return 0;
}

int suspend_save(const struct bundle *b, const char *rtdir, char **err)
{
	int r = -1, fd = -1, datafd = -1;
	bool unnamed = true, was_running = false, started = false;
	char *path = suspend_path(b), *datadir = path_join(b->path, "Data");
	char *tmpname = xasprintf("%s.tmp.%d", SUSPEND_FILE, (int)getpid());
	struct suspend_fp fp;
	char **av = proc_argv(runtime_read_pid(rtdir), err);
	if (!av) {
		memset(&fp, 0, sizeof fp);
		goto out_noq;
	}
	suspend_fp_from_argv(&fp, av);
	struct qmp *q = runtime_qmp_connect(rtdir, NULL, QMP_MS, err);
	if (!q)
		goto out_noq;
	fp.qemu = suspend_qemu_version(qmp_greeting(q));

	datafd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (datafd < 0) {
		vm_set_err(err, "%s: %s", datadir, strerror(errno));
		goto out;
	}
	/* Unnamed until complete: a kill -9 leaves nothing behind. */
	fd = openat(datafd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		unnamed = false;
		unlinkat(datafd, tmpname, 0);
		fd = openat(datafd, tmpname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0 || lseek(fd, SUSPEND_HEADER_SIZE, SEEK_SET) < 0) {
		vm_set_err(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	was_running = cpus_running(q);
	if (was_running && qmp_execute(q, "stop", NULL, QMP_MS, NULL, err) < 0)
		goto out;
	struct json_object *params = json_object_new_object();
	json_object_object_add(params, "max-bandwidth", json_object_new_int64(UNLIMITED_BANDWIDTH));
	int pr = qmp_execute(q, "migrate-set-parameters", params, QMP_MS, NULL, err);
	json_object_put(params);
	if (pr < 0 || set_events(q, err) < 0 || qmp_getfd(q, fd, SAVE_FDNAME, QMP_MS, err) < 0)
		goto out;
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:" SAVE_FDNAME));
	int mr = qmp_execute(q, "migrate", args, QMP_MS, NULL, err);
	json_object_put(args);
	if (mr < 0)
		goto out;
	started = true;
	char *st = wait_migration(q, err);
	if (!st)
		goto out;
	if (strcmp(st, "completed")) {
		char *why = NULL, *st2 = migrate_status(q, &why, NULL);
		vm_set_err(err, "saving the state: the migration %s%s%s", st, why ? ": " : "", why ? why : "");
		free(why);
		free(st2);
		free(st);
		goto out;
	}
	free(st);
	struct stat sb;
	if (fstat(fd, &sb) < 0 || sb.st_size < SUSPEND_HEADER_SIZE) {
		vm_set_err(err, "%s: QEMU wrote no state", path);
		goto out;
	}
	if (write_header(fd, &fp, (long long)(sb.st_size - SUSPEND_HEADER_SIZE), err) < 0 ||
	    place(fd, datafd, tmpname, unnamed, path, err) < 0)
		goto out;
	unnamed = true; /* placed: nothing to remove */
	r = 0;
out:
	if (r < 0 && was_running && (!started || !qmp_is_closed(q)))
		qmp_execute(q, "cont", NULL, QMP_MS, NULL, NULL); /* the guest runs on as it was */
	qmp_close(q);
out_noq:
	if (fd >= 0)
		close(fd);
	if (r < 0 && !unnamed && datafd >= 0)
		unlinkat(datafd, tmpname, 0);
	if (datafd >= 0)
		close(datafd);
	argv_free(av);
	suspend_fp_free(&fp);
	free(path);
	free(datadir);
	free(tmpname);
	return r;
}

/* ---- resuming ---- */

/* The header against the command line; the messages give the values as QEMU got them. */
static int compare(struct json_object *h, const struct suspend_fp *fp, const char *path, char **err)
{
	static const char *const what[] = {"memory (-m)", "CPUs (-smp)", "machine", "CPU model",
					   "accelerator", "devices", "QEMU version"};
	for (int i = 0; fp_keys[i]; i++) {
		if (i == 6 && !fp->qemu)
			continue; /* QEMU's version is checked once it answers */
		const char *saved = jstr(h, fp_keys[i]), *now = fp_field(fp, i);
		if (!strcmp(saved, now))
			continue;
		if (i == 5)
			vm_set_err(err, "%s: the saved state does not match the config: its devices differ "
					"(drives, network cards, display...); vm-run --fresh boots and discards it",
				   path);
		else
			vm_set_err(err, "%s: the saved state does not match the config: %s is %s, was %s when "
					"saved; vm-run --fresh boots and discards it",
				   path, what[i], *now ? now : "(default)", *saved ? saved : "(default)");
		return -1;
	}
	return 0;
}

static int open_state(const struct bundle *b, char **path, struct json_object **hdr, char **err)
{
	*path = suspend_path(b);
	int fd = open(*path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vm_set_err(err, "%s: %s", *path, strerror(errno));
		return -1;
	}
	if (!(*hdr = read_header(fd, *path, err))) {
		close(fd);
		return -1;
	}
	return fd;
}

int suspend_check(const struct bundle *b, char *const *argv, char **err)
{
	char *path;
	struct json_object *h = NULL;
	int fd = open_state(b, &path, &h, err);
	int r = -1;
	if (fd >= 0) {
		struct suspend_fp fp;
		suspend_fp_from_argv(&fp, argv);
		r = compare(h, &fp, path, err);
		suspend_fp_free(&fp);
		close(fd);
	}
	json_object_put(h);
	free(path);
	return r;
}

int suspend_load(struct qmp *q, const struct bundle *b, const char *rtdir, bool keep, char **err)
{
	char *path;
	struct json_object *h = NULL;
	int r = -1, fd = open_state(b, &path, &h, err);
	if (fd < 0)
		goto out;
	char *qv = suspend_qemu_version(qmp_greeting(q));
	bool same = qv && !strcmp(qv, jstr(h, "qemu"));
	if (!same)
		vm_set_err(err, "%s: saved by QEMU %s, this is QEMU %s; vm-run --fresh boots and discards it",
			   path, jstr(h, "qemu"), qv ? qv : "(unknown)");
	free(qv);
	if (!same || lseek(fd, SUSPEND_HEADER_SIZE, SEEK_SET) < 0)
		goto out;
	if (set_events(q, err) < 0 || qmp_getfd(q, fd, SAVE_FDNAME, QMP_MS, err) < 0)
		goto out;
	close(fd);
	fd = -1;
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:" SAVE_FDNAME));
	int mr = qmp_execute(q, "migrate-incoming", args, QMP_MS, NULL, err);
	json_object_put(args);
	if (mr < 0)
		goto out;
	char *e2 = NULL, *st = wait_migration(q, &e2);
	if (!st || strcmp(st, "completed")) {
		/* QEMU exits when a load fails: its log says why */
		char *why = rtdir ? launch_qemu_error(rtdir, 0) : NULL;
		vm_set_err(err, "%s: QEMU could not load the saved state: %s", path,
			   why ? why : st ? st : e2 ? e2 : "no reason given");
		free(why);
		free(e2);
		free(st);
		goto out;
	}
	free(st);
	if (!keep && suspend_discard(b, err) < 0)
		goto out;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	json_object_put(h);
	free(path);
	return r;
}

int suspend_resume(struct qmp *q, const struct bundle *b, const char *rtdir, const char *name, bool keep,
		   bool run, bool *clock_set, char **err)
{
	*clock_set = false;
	if (suspend_load(q, b, rtdir, keep, err) < 0 ||
	    (run && qmp_execute(q, "cont", NULL, LAUNCH_QMP_MS, NULL, err) < 0))
		return -1;
	if (!run)
		return 0;
	char *e = NULL;
	/* the agent was running when the state was saved: it answers at once,
	 * or there is none (and the wait must not slow every resume) */
	struct agent *a = agent_connect(rtdir, name, 500, 500, &e);
	*clock_set = a && agent_set_time(a, &e) == 0;
	agent_close(a);
	free(e);
	return 0;
}

int suspend_and_stop(const struct bundle *b, const char *rtdir, struct vm_stop_opts *o, char **err)
{
	if (!runtime_locked(rtdir))
		return 1;
	if (suspend_save(b, rtdir, err) < 0)
		return -1;
	o->force = true; /* the CPUs stand still: quit */
	return vm_stop(rtdir, o, err);
}
