/* vm-ls: the bundles in $VM_PATH (or the folders given) with their state.
 * The state comes from the lock and QMP (runtime_state), never from a pid
 * file alone. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"
#include "argv.h"
#include "bundle.h"
#include "runtime.h"
#include "suspend.h"
#include "tool.h"

static const struct cli_option options[] = {
    CLI_FLAG('j', "json", "a JSON array, with the runtime sockets of running VMs"),
    CLI_FLAG('q', "quiet", "no warnings about unreadable bundles"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-ls [options] [DIR|BUNDLE...]\n",
    .about = "List the VM bundles in each DIR (default: the folders of $VM_PATH, else .)\n"
	     "with their state: stopped, running or paused, QEMU's pid and the accelerator.\n",
    .options = options,
};

#define QMP_MS 1000
#define AGENT_PING_MS 500

struct row {
	char *name, *path, *uuid, *arch, *display, *error;
	long long cpus, memory;
	bool console_socket;
	bool suspended; /* stopped, with a saved state (vm-stop --save) */
	struct vm_status st;
};

static bool is_dir(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_bundle_name(const char *n)
{
	size_t l = strlen(n);
	return l > 4 && !strcmp(n + l - 4, ".utm");
}

static void add_bundle(struct row **rows, size_t *n, const char *path)
{
	*rows = xrealloc(*rows, (*n + 1) * sizeof **rows);
	struct row *r = &(*rows)[(*n)++];
	memset(r, 0, sizeof *r);
	r->path = xstrdup(path);
	r->name = bundle_display_name(path);
	struct bundle b;
	char *err = NULL;
	if (bundle_open(&b, path, &err) < 0) {
		r->error = err;
		return;
	}
	struct vm_config c;
	bundle_effective_config(&b, &c);
	if (c.name && *c.name) {
		free(r->name);
		r->name = xstrdup(c.name);
	}
	r->uuid = c.uuid ? xstrdup(c.uuid) : NULL;
	r->arch = c.arch ? xstrdup(c.arch) : NULL;
	r->display = c.display ? xstrdup(c.display) : NULL;
	r->cpus = c.cpus;
	r->memory = c.memory;
	r->console_socket = c.nserials == 0 || !strcmp(c.serials[0].mode, "socket");
	if (runtime_state(&b, QMP_MS, &r->st) < 0)
		r->error = xstrdup("no runtime directory");
	r->suspended = r->st.state == VM_STOPPED && suspend_exists(&b);
	config_free(&c);
	bundle_close(&b);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The bundles directly inside dir, by name. */
static int scan_dir(struct row **rows, size_t *n, const char *dir, bool explicit)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (!explicit && errno == ENOENT)
			return 0; /* a folder of $VM_PATH that does not exist yet is no error */
		vm_warn("%s", dir);
		return -1;
	}
	struct strv names = {0};
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !is_bundle_name(de->d_name))
			continue;
		char *p = path_join(dir, de->d_name);
		if (is_dir(p))
			strv_push(&names, p);
		free(p);
	}
	closedir(d);
	if (names.n)
		qsort(names.v, names.n, sizeof *names.v, cmp_str);
	for (size_t i = 0; i < names.n; i++)
		add_bundle(rows, n, names.v[i]);
	strv_free(&names);
	return 0;
}

/* A JSON string, or null for NULL. */
static const char *row_state(const struct row *r)
{
	return r->suspended ? "suspended" : vm_state_name(r->st.state);
}

static struct json_object *json_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static struct json_object *rt_path(const struct row *r, const char *name)
{
	if (!r->st.dir || r->st.state == VM_STOPPED)
		return NULL;
	char *p = path_join(r->st.dir, name);
	struct json_object *j = json_object_new_string(p);
	free(p);
	return j;
}

/* The URI a viewer opens for a running VM: what vm-run recorded (its
 * --display may differ from the config), else what the config gives. */
static struct json_object *display_uri_json(const struct row *r)
{
	if (!r->st.dir || r->st.state == VM_STOPPED)
		return NULL;
	char *f = path_join(r->st.dir, RT_DISPLAY), *uri = read_file(f, NULL);
	free(f);
	if (uri) {
		uri[strcspn(uri, "\n")] = '\0';
	} else {
		struct display_spec d;
		char *e = NULL;
		if (display_parse(r->display ? r->display : "none", &d, &e) == 0)
			uri = display_uri(&d, r->st.dir);
		free(e);
	}
	struct json_object *j = uri && *uri ? json_object_new_string(uri) : NULL;
	free(uri);
	return j;
}

static struct json_object *row_json(const struct row *r)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_str_or_null(r->name));
	json_object_object_add(o, "path", json_str_or_null(r->path));
	if (r->error) {
		json_object_object_add(o, "state", json_object_new_string("invalid"));
		json_object_object_add(o, "error", json_str_or_null(r->error));
		return o;
	}
	json_object_object_add(o, "uuid", json_str_or_null(r->uuid));
	json_object_object_add(o, "arch", json_str_or_null(r->arch));
	json_object_object_add(o, "cpus", json_object_new_int64(r->cpus));
	json_object_object_add(o, "memory_mib", json_object_new_int64(r->memory));
	json_object_object_add(o, "state", json_object_new_string(row_state(r)));
	json_object_object_add(o, "qmp_status", json_str_or_null(r->st.qmp_status));
	json_object_object_add(o, "pid", r->st.pid ? json_object_new_int(r->st.pid) : NULL);
	json_object_object_add(o, "accel", r->st.state == VM_STOPPED ? NULL : json_str_or_null(r->st.accel));
	if (r->st.error)
		json_object_object_add(o, "error", json_str_or_null(r->st.error));
	json_object_object_add(o, "runtime_dir", json_str_or_null(r->st.dir));
	json_object_object_add(o, "qmp", rt_path(r, RT_QMP));
	json_object_object_add(o, "console", r->console_socket ? rt_path(r, RT_CONSOLE) : NULL);
	json_object_object_add(o, "console_log", rt_path(r, RT_CONSOLE_LOG));
	json_object_object_add(o, "display", json_str_or_null(r->display));
	const char *ds = !r->display ? NULL
			 : !strcmp(r->display, "vnc") ? RT_VNC
			 : !strcmp(r->display, "spice") ? RT_SPICE
							  : NULL;
	json_object_object_add(o, "display_socket", ds ? rt_path(r, ds) : NULL);
	json_object_object_add(o, "display_uri", display_uri_json(r));
	/* the guest agent's socket, and whether an agent answers on it now */
	struct json_object *qga = rt_path(r, RT_QGA), *answers = NULL;
	if (qga && !file_exists(json_object_get_string(qga))) {
		json_object_put(qga);
		qga = NULL;
	}
	if (qga && r->st.state == VM_RUNNING) {
		struct agent *a = agent_connect(r->st.dir, r->name, AGENT_PING_MS, AGENT_PING_MS, NULL);
		/* busy with another client: it answers that one */
		answers = json_object_new_boolean(a != NULL || errno == EBUSY);
		agent_close(a);
	}
	json_object_object_add(o, "agent_socket", qga);
	json_object_object_add(o, "agent", answers);
	return o;
}

static void print_table(const struct row *rows, size_t n)
{
	int wn = 4, ws = 5, wp = 3, wa = 5, war = 4;
	char pidbuf[32];
	/* names and paths with control characters escaped (a name is any bytes) */
	char **names = xcalloc(n + 1, sizeof *names), **paths = xcalloc(n + 1, sizeof *paths);
	for (size_t i = 0; i < n; i++) {
		names[i] = str_printable(rows[i].name);
		paths[i] = str_printable(rows[i].path);
	}
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		int l = (int)strlen(names[i]);
		wn = l > wn ? l : wn;
		const char *st = r->error ? "invalid" : row_state(r);
		ws = (int)strlen(st) > ws ? (int)strlen(st) : ws;
		l = snprintf(pidbuf, sizeof pidbuf, "%d", (int)r->st.pid);
		wp = l > wp ? l : wp;
		if (r->arch && (int)strlen(r->arch) > war)
			war = (int)strlen(r->arch);
	}
	printf("%-*s  %-*s  %*s  %-*s  %-*s  %4s  %7s  %s\n", wn, "NAME", ws, "STATE", wp, "PID", wa,
	       "ACCEL", war, "ARCH", "CPUS", "MEMORY", "PATH");
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		const char *st = r->error ? "invalid" : row_state(r);
		if (r->st.pid)
			snprintf(pidbuf, sizeof pidbuf, "%d", (int)r->st.pid);
		else
			snprintf(pidbuf, sizeof pidbuf, "-");
		const char *acc = r->st.state != VM_STOPPED && r->st.accel ? r->st.accel : "-";
		char cpus[32] = "-";
		char *mem = NULL;
		if (!r->error) {
			snprintf(cpus, sizeof cpus, "%lld", r->cpus);
			mem = format_size((uint64_t)r->memory << 20);
		}
		printf("%-*s  %-*s  %*s  %-*s  %-*s  %4s  %7s  %s\n", wn, names[i], ws, st, wp, pidbuf,
		       wa, acc, war, r->arch ? r->arch : "-", cpus, mem ? mem : "-", paths[i]);
		free(mem);
		free(names[i]);
		free(paths[i]);
	}
	free(names);
	free(paths);
}

int main(int argc, char **argv)
{
	bool json = false;
	int ch;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case 'j': json = true; break;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	struct strv dirs = {0};
	for (int i = optind; i < argc; i++)
		strv_push(&dirs, argv[i]);
	if (!dirs.n) {
		const char *vp = getenv("VM_PATH");
		if (vp && *vp) {
			char *copy = xstrdup(vp), *save = NULL;
			for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
				strv_push(&dirs, d);
			free(copy);
		}
		if (!dirs.n)
			strv_push(&dirs, ".");
	}
	int status = EXIT_OK;
	struct row *rows = NULL;
	size_t n = 0;
	for (size_t i = 0; i < dirs.n; i++) {
		const char *d = dirs.v[i];
		bool explicit = optind < argc;
		if (is_bundle_name(d) && is_dir(d)) {
			add_bundle(&rows, &n, d);
		} else if (scan_dir(&rows, &n, d, explicit) < 0) {
			status = EXIT_FAIL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (rows[i].error) {
			if (!vm_quiet)
				vm_warnx("%s", rows[i].error);
			status = EXIT_FAIL;
		}
	}
	if (json) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, row_json(&rows[i]));
		print_json(stdout, a, CLI_JSON_PRETTY);
		json_object_put(a);
	} else if (n) {
		print_table(rows, n);
	}
	for (size_t i = 0; i < n; i++) {
		struct row *r = &rows[i];
		free(r->name);
		free(r->path);
		free(r->uuid);
		free(r->arch);
		free(r->display);
		free(r->error);
		vm_status_free(&r->st);
	}
	free(rows);
	strv_free(&dirs);
	return status;
}
