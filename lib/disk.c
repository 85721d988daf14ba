/* Disk images through qemu-img. */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"

/* qemu-img's reason for a failure: its first line that is not a warning
 * (the last line is often a hint or a warning, not the error). */
static char *qemu_img_error(int status, const struct buf *errout)
{
	if (status < 0)
		return xasprintf("qemu-img: %s (install qemu-utils)", strerror(errno));
	const char *s = errout->s ? errout->s : "";
	while (*s) {
		size_t n = strcspn(s, "\n");
		if (n && strncmp(s, "qemu-img: warning:", 18) != 0)
			return xasprintf("%.*s", (int)n, s);
		s += n;
		if (*s)
			s++;
	}
	return proc_error_line("qemu-img", status, errout);
}

static int qemu_img(struct strv *argv, struct buf *out, char **err)
{
	struct buf e = {0};
	int st = proc_run(argv->v, out, &e);
	int r = 0;
	if (st != 0) {
		*err = qemu_img_error(st, &e);
		r = -1;
	}
	buf_free(&e);
	strv_free(argv);
	return r;
}

static uint64_t get_u64(struct json_object *o, const char *key, bool *found)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v)) {
		if (found)
			*found = false;
		return 0;
	}
	if (found)
		*found = true;
	int64_t n = json_object_get_int64(v);
	return n < 0 ? 0 : (uint64_t)n;
}

static char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return xstrdup(json_object_get_string(v));
}

int disk_info_from_json(struct json_object *o, struct disk_info *out, char **err)
{
	memset(out, 0, sizeof *out);
	if (!json_object_is_type(o, json_type_object)) {
		*err = xstrdup("image information is not a JSON object");
		return -1;
	}
	bool found;
	out->format = get_str(o, "format");
	out->filename = get_str(o, "filename");
	out->backing = get_str(o, "backing-filename");
	out->virtual_size = get_u64(o, "virtual-size", &found);
	if (!out->format || !found) {
		*err = xstrdup("image information lacks the format or the virtual size");
		disk_info_free(out);
		return -1;
	}
	out->actual_size = get_u64(o, "actual-size", &out->has_actual_size);
	struct json_object *snaps;
	if (json_object_object_get_ex(o, "snapshots", &snaps) && json_object_is_type(snaps, json_type_array)) {
		size_t n = json_object_array_length(snaps);
		out->snaps = xcalloc(n ? n : 1, sizeof *out->snaps);
		for (size_t i = 0; i < n; i++) {
			struct json_object *s = json_object_array_get_idx(snaps, i);
			struct disk_snapshot *d = &out->snaps[out->nsnaps];
			d->name = get_str(s, "name");
			if (!d->name)
				continue;
			d->id = get_str(s, "id");
			d->vm_state_size = get_u64(s, "vm-state-size", NULL);
			d->date_sec = (int64_t)get_u64(s, "date-sec", NULL);
			d->vm_clock_nsec = get_u64(s, "vm-clock-sec", NULL) * 1000000000ull +
					   get_u64(s, "vm-clock-nsec", NULL);
			out->nsnaps++;
		}
	}
	return 0;
}

int disk_info_parse(const char *json, struct disk_info *out, char **err)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, json, (int)strlen(json));
	enum json_tokener_error je = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!o || je != json_tokener_success) {
		memset(out, 0, sizeof *out);
		*err = xasprintf("qemu-img info: not JSON: %s",
				 je == json_tokener_success ? "empty" : json_tokener_error_desc(je));
		json_object_put(o);
		return -1;
	}
	int r = disk_info_from_json(o, out, err);
	json_object_put(o);
	return r;
}

void disk_info_free(struct disk_info *d)
{
	free(d->filename);
	free(d->format);
	free(d->backing);
	for (size_t i = 0; i < d->nsnaps; i++) {
		free(d->snaps[i].id);
		free(d->snaps[i].name);
	}
	free(d->snaps);
	memset(d, 0, sizeof *d);
}

const struct disk_snapshot *disk_find_snapshot(const struct disk_info *d, const char *name)
{
	for (size_t i = 0; i < d->nsnaps; i++)
		if (!strcmp(d->snaps[i].name, name))
			return &d->snaps[i];
	return NULL;
}

int disk_info(const char *path, const char *format, bool force_share, struct disk_info *out, char **err)
{
	struct strv av = {0};
	strv_push(&av, "qemu-img");
	strv_push(&av, "info");
	strv_push(&av, "--output=json");
	if (force_share)
		strv_push(&av, "-U");
	if (format) {
		strv_push(&av, "-f");
		strv_push(&av, format);
	}
	strv_push(&av, "--");
	strv_push(&av, path);
	struct buf o = {0};
	memset(out, 0, sizeof *out);
	int r = qemu_img(&av, &o, err);
	if (r == 0)
		r = disk_info_parse(o.s ? o.s : "", out, err);
	buf_free(&o);
	return r;
}

const char *disk_probe(const char *path, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		*err = xasprintf("%s: a folder, not a disk image", path);
		return NULL;
	}
	unsigned char h[512] = {0};
	ssize_t n = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) ? pread(fd, h, sizeof h, 0) : -1;
	close(fd);
	if (n < 0) {
		*err = xasprintf("%s: %s", path, S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)
						     ? strerror(errno)
						     : "not a regular file or block device");
		return NULL;
	}
	static const struct {
		const char *magic;
		size_t len;
		const char *format;
	} images[] = {
	    {"QFI\xfb", 4, "qcow2"}, {"KDMV", 4, "vmdk"}, {"vhdxfile", 8, "vhdx"},
	    {"QED\0", 4, "qed"},     {"conectix", 8, "vpc"},
	};
	for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
		if ((size_t)n >= images[i].len && !memcmp(h, images[i].magic, images[i].len))
			return images[i].format;
	if (n >= 68 && !memcmp(h + 64, "\x7f\x10\xda\xbe", 4))
		return "vdi";
	/* Raw, as far as the header goes. Files that are plainly something else
	 * are refused here, before QEMU would show the guest a garbage disk. */
	static const struct {
		const char *magic;
		size_t len;
		const char *what;
	} others[] = {
	    {"\x1f\x8b", 2, "a gzip file"},  {"\xfd" "7zXZ", 5, "an xz file"},
	    {"BZh", 3, "a bzip2 file"},	     {"\x28\xb5\x2f\xfd", 4, "a zstd file"},
	    {"PK\x03\x04", 4, "a zip file"}, {"7z\xbc\xaf\x27\x1c", 6, "a 7z file"},
	    {"\x7f" "ELF", 4, "an ELF program"}, {"bplist", 6, "a property list"},
	    {"<?xml", 5, "an XML file"},
	};
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		if ((size_t)n >= others[i].len && !memcmp(h, others[i].magic, others[i].len)) {
			*err = xasprintf("%s: %s, not a disk image", path, others[i].what);
			return NULL;
		}
	}
	if (n >= 262 && !memcmp(h + 257, "ustar", 5)) {
		*err = xasprintf("%s: a tar archive, not a disk image", path);
		return NULL;
	}
	if (S_ISREG(st.st_mode) && (st.st_size == 0 || st.st_size % 512)) {
		*err = st.st_size == 0 ? xasprintf("%s: empty, not a disk image", path)
				       : xasprintf("%s: %jd bytes, not a whole number of 512-byte sectors; "
						   "not a disk image",
						   path, (intmax_t)st.st_size);
		return NULL;
	}
	return "raw";
}

int disk_create(const char *path, const char *format, uint64_t size, const char *backing,
		const char *backing_format, char **err)
{
	struct strv av = {0};
	strv_push(&av, "qemu-img");
	strv_push(&av, "create");
	strv_push(&av, "-q");
	strv_push(&av, "-f");
	strv_push(&av, format);
	if (backing) {
		strv_push(&av, "-b");
		strv_push(&av, backing);
		strv_push(&av, "-F");
		strv_push(&av, backing_format);
	}
	strv_push(&av, "--");
	strv_push(&av, path);
	if (size || !backing)
		strv_pushf(&av, "%" PRIu64, size);
	return qemu_img(&av, NULL, err);
}

int disk_resize(const char *path, const char *format, uint64_t size, bool shrink, char **err)
{
	struct strv av = {0};
	strv_push(&av, "qemu-img");
	strv_push(&av, "resize");
	strv_push(&av, "-q");
	if (format) {
		strv_push(&av, "-f");
		strv_push(&av, format);
	}
	if (shrink)
		strv_push(&av, "--shrink");
	strv_push(&av, "--");
	strv_push(&av, path);
	strv_pushf(&av, "%" PRIu64, size);
	return qemu_img(&av, NULL, err);
}

int disk_convert(const char *src, const char *src_format, const char *dst, const char *dst_format, char **err)
{
	struct strv av = {0};
	strv_push(&av, "qemu-img");
	strv_push(&av, "convert");
	if (src_format) {
		strv_push(&av, "-f");
		strv_push(&av, src_format);
	}
	strv_push(&av, "-O");
	strv_push(&av, dst_format);
	strv_push(&av, "--");
	strv_push(&av, src);
	strv_push(&av, dst);
	return qemu_img(&av, NULL, err);
}

int disk_snapshot(const char *path, enum disk_snap_op op, const char *name, char **err)
{
	static const char *const flag[] = {"-c", "-a", "-d"};
	struct strv av = {0};
	strv_push(&av, "qemu-img");
	strv_push(&av, "snapshot");
	strv_push(&av, "-q");
	strv_push(&av, flag[op]);
	strv_push(&av, name);
	strv_push(&av, "--");
	strv_push(&av, path);
	return qemu_img(&av, NULL, err);
}

char *disk_human_size(uint64_t bytes)
{
	static const char units[] = "BKMGTPE";
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		return xasprintf("%" PRIu64, bytes);
	if (v < 10 && (uint64_t)(v * 10 + 0.5) % 10)
		return xasprintf("%.1f%c", v, units[u]);
	return xasprintf("%.0f%c", v, units[u]);
}
