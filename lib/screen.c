/* The VM's screen: display choice and viewer URI, screenshots, keys. */
#include "screen.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qmp.h"
#include "util.h"

/* Names people use for keys that QEMU's QKeyCode spells otherwise. */
static const char *const key_aliases[][2] = {
    {"control", "ctrl"}, {"del", "delete"},	{"enter", "ret"},     {"return", "ret"},
    {"escape", "esc"},	 {"space", "spc"},	{"win", "meta_l"},    {"super", "meta_l"},
    {"meta", "meta_l"},	 {"cmd", "meta_l"},	{"bksp", "backspace"}, {"pageup", "pgup"},
    {"pagedown", "pgdn"}, {"ins", "insert"},	{"altgr", "alt_r"},    {"capslock", "caps_lock"},
};

int screen_parse_keys(const char *combo, const char ***codes, char **err)
{
	*codes = NULL;
	size_t n = 0, len = strlen(combo);
	/* one allocation: the pointer array, then the words */
	char **v = xmalloc((len / 2 + 2) * sizeof *v + len + 1);
	char *words = (char *)(v + len / 2 + 2);
	memcpy(words, combo, len + 1);
	for (char *w = words;; ) {
		char *end = w + strcspn(w, "-+");
		char sep = *end;
		*end = '\0';
		for (char *p = w; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!*w || strspn(w, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(w)) {
			vm_set_err(err, "keys '%s': '%s' is not a key name (QEMU's QKeyCode: ctrl, alt, delete, "
					"ret, f1, a ...)", combo, w);
			free(v);
			return -1;
		}
		const char *code = w;
		for (size_t i = 0; i < sizeof key_aliases / sizeof key_aliases[0]; i++)
			if (!strcmp(w, key_aliases[i][0]))
				code = key_aliases[i][1];
		v[n++] = (char *)code;
		if (!sep)
			break;
		w = end + 1;
	}
	v[n] = NULL;
	*codes = (const char **)v;
	return 0;
}

int screen_send_keys(struct qmp *q, const char *combo, int timeout_ms, char **err)
{
	const char **codes;
	if (screen_parse_keys(combo, &codes, err) < 0)
		return -1;
	json_object *keys = json_object_new_array();
	for (size_t i = 0; codes[i]; i++) {
		json_object *k = json_object_new_object();
		json_object_object_add(k, "type", json_object_new_string("qcode"));
		json_object_object_add(k, "data", json_object_new_string(codes[i]));
		json_object_array_add(keys, k);
	}
	free(codes);
	json_object *args = json_object_new_object();
	json_object_object_add(args, "keys", keys);
	char *e = NULL;
	int r = qmp_execute(q, "send-key", args, timeout_ms, NULL, &e);
	json_object_put(args);
	if (r < 0) {
		vm_set_err(err, "send-key %s: %s", combo, e);
		free(e);
	}
	return r;
}

int screen_dump(struct qmp *q, const char *out, int timeout_ms, char **err)
{
	char *dir = xstrdup(out), *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : out;
	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';
	char *tmp = xasprintf("%s/.%s.XXXXXX", slash ? dir : ".", base);
	free(dir);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		vm_set_err(err, "%s: %s", out, strerror(errno));
		free(tmp);
		return -1;
	}
	fchmod(fd, 0644);
	/* QEMU opens the file write-only: the fd set needs that access mode */
	int wfd = open(tmp, O_WRONLY | O_CLOEXEC);
	char *e = NULL;
	int r = -1, set = wfd < 0 ? -1 : qmp_add_fd(q, wfd, -1, "screendump", timeout_ms, &e);
	if (wfd < 0)
		e = xstrdup(strerror(errno));
	if (set >= 0) {
		json_object *args = json_object_new_object();
		char *fn = xasprintf("/dev/fdset/%d", set);
		json_object_object_add(args, "filename", json_object_new_string(fn));
		json_object_object_add(args, "format", json_object_new_string("png"));
		r = qmp_execute(q, "screendump", args, timeout_ms, NULL, &e);
		json_object_put(args);
		free(fn);
		char *e2 = NULL;
		qmp_remove_fdset(q, set, timeout_ms, &e2);
		free(e2);
	}
	struct stat st;
	if (r == 0 && (fsync(fd) < 0 || fstat(fd, &st) < 0 || st.st_size == 0)) {
		e = xstrdup(st.st_size == 0 ? "QEMU wrote nothing (does the VM have a display device?)"
					     : strerror(errno));
		r = -1;
	}
	if (r == 0 && rename(tmp, out) < 0) {
		e = xstrdup(strerror(errno));
		r = -1;
	}
	if (r < 0) {
		unlink(tmp);
		vm_set_err(err, "screendump %s: %s", out, e ? e : "failed");
	}
	free(e);
	if (wfd >= 0)
		close(wfd);
	close(fd);
	free(tmp);
	return r;
}
