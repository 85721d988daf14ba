/* cloud-init NoCloud seed images (see cloudinit.h). */
#include "cloudinit.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iso.h"

/* ---- user-data ------------------------------------------------------------- */

/* The first lines cloud-init knows a part by (cloudinit/handlers
 * INCLUSION_TYPES_MAP), matched as it does: case-insensitive, after leading
 * white space. Longer prefixes first. */
static const struct {
	const char *prefix, *kind;
} ud_kinds[] = {
    {"#cloud-config-archive", "cloud-config archive"},
    {"#cloud-config-jsonp", "cloud-config JSON patch"},
    {"#cloud-config", "cloud-config"},
    {"#cloud-boothook", "boothook"},
    {"#include-once", "include-once"},
    {"#include", "include"},
    {"#part-handler", "part handler"},
    {"## template: jinja", "jinja template"},
    {"#!", "shell script"},
};

static bool contains_ci(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (!strncasecmp(hay + i, needle, k))
			return true;
	return false;
}

const char *cloudinit_user_data_kind(const char *data, size_t len)
{
	if (len >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b)
		return "gzip"; /* cloud-init decompresses it first */
	/* cloud-init takes it for a MIME message when this is in its first 4 KiB */
	if (contains_ci(data, len < 4096 ? len : 4096, "mime-version:"))
		return "MIME multipart";
	size_t i = 0;
	while (i < len && isspace((unsigned char)data[i]))
		i++;
	if (i == len)
		return "empty";
	for (size_t k = 0; k < sizeof ud_kinds / sizeof ud_kinds[0]; k++) {
		size_t n = strlen(ud_kinds[k].prefix);
		if (len - i >= n && !strncasecmp(data + i, ud_kinds[k].prefix, n))
			return ud_kinds[k].kind;
	}
	return NULL;
}

/* The first line of data, for a message: at most 40 characters, anything
 * not printable ASCII shown as '?'. */
static char *first_line(const char *data, size_t len)
{
	struct buf b = {0};
	for (size_t i = 0; i < len && b.len < 40 && data[i] != '\n' && data[i] != '\r'; i++) {
		char c = data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '?';
		buf_add(&b, &c, 1);
	}
	if (b.len == 40)
		buf_puts(&b, "...");
	return b.s ? b.s : xstrdup("");
}

static int check_user_data(const char *path, const char *data, size_t len, const char **kind, char **err)
{
	*kind = cloudinit_user_data_kind(data, len);
	if (*kind)
		return 0;
	if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) {
		*err = xasprintf("%s: starts with a UTF-8 byte order mark, which cloud-init does not skip "
				 "(it would ignore the file); save it without one",
				 path);
		return -1;
	}
	char *l = first_line(data, len);
	*err = xasprintf("%s: cloud-init would ignore it: the first line must be #cloud-config (or #!, "
			 "#include, #cloud-boothook, #part-handler, ## template: jinja, a MIME message), not '%s'",
			 path, l);
	free(l);
	return -1;
}

/* ---- SSH public keys ------------------------------------------------------- */

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Is b64 (n characters) the base64 of an SSH key blob of this type? The
 * blob starts with the type's name as an SSH string (a 32-bit big-endian
 * length, then the bytes), so a typo anywhere in its start shows. */
static bool blob_matches(const char *b64, size_t n, const char *type, size_t tlen)
{
	if (n < 8 || n % 4)
		return false;
	unsigned char *out = xmalloc(n / 4 * 3);
	size_t o = 0;
	bool ok = true;
	for (size_t i = 0; i < n && ok; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			char c = b64[i + k];
			if (c == '=') {
				/* padding: only at the very end, and only after two characters */
				if (i + 4 != n || k < 2 || (k == 2 && b64[i + 3] != '='))
					ok = false;
				v[k] = -2;
			} else if ((v[k] = b64val((unsigned char)c)) < 0 || (k == 3 && v[2] == -2)) {
				ok = false;
			}
		}
		if (!ok)
			break;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (v[2] >= 0)
			out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (v[3] >= 0)
			out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	if (ok) {
		uint32_t l = o >= 4 ? (uint32_t)out[0] << 24 | (uint32_t)out[1] << 16 | (uint32_t)out[2] << 8 | out[3]
				    : 0;
		ok = o >= 4 && l == tlen && o >= 4 + tlen && !memcmp(out + 4, type, tlen);
	}
	free(out);
	return ok;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Find "TYPE BASE64" among the words of line (options such as
 * from="..." may come first, as in authorized_keys). *type gets the type. */
static bool find_key(const char *line, size_t n, const char **type, size_t *tlen)
{
	const char *end = line + n, *p = line;
	while (p < end) {
		while (p < end && is_space(*p))
			p++;
		const char *w = p;
		while (p < end && !is_space(*p))
			p++;
		size_t wl = (size_t)(p - w);
		const char *q = p;
		while (q < end && is_space(*q))
			q++;
		const char *b = q;
		while (q < end && !is_space(*q))
			q++;
		if (wl && q > b && blob_matches(b, (size_t)(q - b), w, wl)) {
			*type = w;
			*tlen = wl;
			return true;
		}
	}
	return false;
}

int cloudinit_parse_keys(const char *path, const char *text, size_t len, struct strv *keys, char **err)
{
	if (memchr(text, '\0', len)) {
		*err = xasprintf("%s: not an SSH public key (a binary file)", path);
		return -1;
	}
	if (strstr(text, "PRIVATE KEY-----") || has_prefix(text, "PuTTY-User-Key-File-")) {
		char *pub = xasprintf("%s.pub", path);
		*err = xasprintf("%s: a private key, which must not be copied into a VM; give its public key%s%s%s",
				 path, file_exists(pub) ? " (" : "", file_exists(pub) ? pub : "",
				 file_exists(pub) ? ")" : "");
		free(pub);
		return -1;
	}
	if (strstr(text, "---- BEGIN SSH2 PUBLIC KEY ----")) {
		*err = xasprintf("%s: an RFC 4716 (SSH2) public key; convert it with: ssh-keygen -i -f '%s'", path,
				 path);
		return -1;
	}
	size_t before = keys->n, lineno = 0;
	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		lineno++;
		const char *s = p;
		p = nl ? nl + 1 : end;
		while (s < le && is_space(*s))
			s++;
		while (le > s && (is_space(le[-1]) || le[-1] == '\r'))
			le--;
		if (s == le || *s == '#')
			continue;
		size_t n = (size_t)(le - s);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 && s[i] != '\t') {
				*err = xasprintf("%s:%zu: a control character in an SSH public key line", path, lineno);
				goto fail;
			}
		const char *type;
		size_t tlen;
		if (!find_key(s, n, &type, &tlen)) {
			*err = xasprintf("%s:%zu: not an SSH public key (a line like 'ssh-ed25519 AAAAC3Nza... "
					 "user@host', as in ~/.ssh/id_ed25519.pub)",
					 path, lineno);
			goto fail;
		}
		static const char cert[] = "-cert-v01@openssh.com";
		if (tlen > sizeof cert - 1 && !memcmp(type + tlen - (sizeof cert - 1), cert, sizeof cert - 1)) {
			*err = xasprintf("%s:%zu: an SSH certificate, not a public key (give the key it certifies)", path,
					 lineno);
			goto fail;
		}
		char *k = strndup(s, n);
		strv_push(keys, k);
		free(k);
	}
	if (keys->n == before) {
		*err = xasprintf("%s: no SSH public key in it", path);
		return -1;
	}
	return 0;
fail:
	while (keys->n > before)
		free(keys->v[--keys->n]);
	if (keys->v)
		keys->v[keys->n] = NULL;
	return -1;
}

/* ---- meta-data --------------------------------------------------------------- */

char *cloudinit_hostname(const char *name)
{
	if (!name)
		return NULL;
	struct buf b = {0};
	bool gap = false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (!(isascii(*p) && isalnum(*p))) {
			gap = true;
			continue;
		}
		if (gap && b.len) {
			if (b.len + 2 > 63)
				break;
			buf_add(&b, "-", 1);
		}
		gap = false;
		if (b.len + 1 > 63)
			break;
		char c = (char)tolower(*p);
		buf_add(&b, &c, 1);
	}
	return b.s;
}

/* s as a YAML double-quoted scalar. */
static void yaml_str(struct buf *b, const char *s)
{
	buf_puts(b, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_printf(b, "\\%c", *s);
		else if (*s == '\t')
			buf_puts(b, "\\t");
		else
			buf_add(b, s, 1);
	}
	buf_puts(b, "\"");
}

static void yaml_keys(struct buf *b, const struct strv *keys)
{
	buf_puts(b, "public-keys:\n");
	for (size_t i = 0; i < keys->n; i++) {
		buf_puts(b, "  - ");
		yaml_str(b, keys->v[i]);
		buf_puts(b, "\n");
	}
}

/* The user's meta-data with the keys added: a JSON object gets a
 * "public-keys" array, YAML a block at its end. Keys that are there already
 * are not merged: the user says where they go. */
static char *meta_with_keys(const char *path, const char *md, size_t len, const struct strv *keys, char **err)
{
	const char *p = md;
	while (p < md + len && isspace((unsigned char)*p))
		p++;
	if (p < md + len && *p == '{') {
		enum json_tokener_error je;
		struct json_object *o = json_tokener_parse_verbose(md, &je);
		if (!o || !json_object_is_type(o, json_type_object)) {
			*err = o ? xasprintf("%s: JSON meta-data that is not an object", path)
				 : xasprintf("%s: not valid JSON: %s", path, json_tokener_error_desc(je));
			json_object_put(o);
			return NULL;
		}
		if (json_object_object_get_ex(o, "public-keys", NULL)) {
			*err = xasprintf("%s: has public-keys already; add the keys there, or leave out --ssh-key", path);
			json_object_put(o);
			return NULL;
		}
		struct json_object *arr = json_object_new_array();
		for (size_t i = 0; i < keys->n; i++)
			json_object_array_add(arr, json_object_new_string(keys->v[i]));
		json_object_object_add(o, "public-keys", arr);
		char *s = xasprintf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
									   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return s;
	}
	for (const char *l = md; l < md + len;) {
		if (!strncmp(l, "public-keys", 11)) {
			const char *q = l + 11;
			while (is_space(*q))
				q++;
			if (*q == ':') {
				*err = xasprintf("%s: has public-keys already; add the keys there, or leave out --ssh-key",
						 path);
				return NULL;
			}
		}
		const char *nl = memchr(l, '\n', (size_t)(md + len - l));
		l = nl ? nl + 1 : md + len;
	}
	struct buf b = {0};
	buf_add(&b, md, len);
	if (len && md[len - 1] != '\n')
		buf_puts(&b, "\n");
	yaml_keys(&b, keys);
	return b.s;
}

static char *read_input(const char *path, size_t *len, char **err)
{
	char *d = read_file(path, len);
	if (!d)
		*err = xasprintf("%s: %s", path, strerror(errno));
	return d;
}

int cloudinit_load(const struct cloudinit_opts *o, struct cloudinit_seed *s, char **err)
{
	memset(s, 0, sizeof *s);
	struct strv keys = {0};
	char *md = NULL;
	size_t mdlen = 0;
	if (!o->user_data) {
		*err = xstrdup("no user-data");
		return -1;
	}
	if (!(s->user_data = read_input(o->user_data, &s->user_data_len, err)) ||
	    check_user_data(o->user_data, s->user_data, s->user_data_len, &s->kind, err) < 0)
		goto fail;
	for (size_t i = 0; o->ssh_keys && i < o->ssh_keys->n; i++) {
		size_t len;
		char *text = read_input(o->ssh_keys->v[i], &len, err);
		int r = text ? cloudinit_parse_keys(o->ssh_keys->v[i], text, len, &keys, err) : -1;
		free(text);
		if (r < 0)
			goto fail;
	}
	if (o->network_config &&
	    !(s->network_config = read_input(o->network_config, &s->network_config_len, err)))
		goto fail;
	if (o->meta_data) {
		if (!(md = read_input(o->meta_data, &mdlen, err)))
			goto fail;
		if (memchr(md, '\0', mdlen)) {
			*err = xasprintf("%s: not a text file", o->meta_data);
			goto fail;
		}
		if (keys.n) {
			s->meta_data = meta_with_keys(o->meta_data, md, mdlen, &keys, err);
			free(md);
			md = NULL;
			if (!s->meta_data)
				goto fail;
		} else {
			s->meta_data = md;
		}
		md = NULL;
	} else {
		struct buf b = {0};
		buf_puts(&b, "instance-id: ");
		yaml_str(&b, o->instance_id ? o->instance_id : "nocloud");
		buf_puts(&b, "\n");
		char *h = cloudinit_hostname(o->hostname);
		if (h) {
			buf_puts(&b, "local-hostname: ");
			yaml_str(&b, h);
			buf_puts(&b, "\n");
			free(h);
		}
		if (keys.n)
			yaml_keys(&b, &keys);
		s->meta_data = b.s;
	}
	strv_free(&keys);
	return 0;
fail:
	free(md);
	strv_free(&keys);
	cloudinit_seed_free(s);
	return -1;
}

int cloudinit_write(const struct cloudinit_seed *s, const char *path, char **err)
{
	struct iso_opts io = {.label = CLOUDINIT_LABEL};
	struct iso *w = iso_create(path, &io, err);
	if (!w)
		return -1;
	if (iso_add_data(w, "user-data", s->user_data, s->user_data_len, err) < 0 ||
	    iso_add_data(w, "meta-data", s->meta_data, strlen(s->meta_data), err) < 0 ||
	    (s->network_config &&
	     iso_add_data(w, "network-config", s->network_config, s->network_config_len, err) < 0)) {
		iso_discard(w);
		return -1;
	}
	return iso_commit(w, err);
}

void cloudinit_seed_free(struct cloudinit_seed *s)
{
	free(s->user_data);
	free(s->meta_data);
	free(s->network_config);
	memset(s, 0, sizeof *s);
}
