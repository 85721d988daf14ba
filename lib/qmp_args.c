/* qmp-shell style arguments and query-qmp-schema checks (see qmp_args.h). */
#include "qmp_args.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jsonobj.h"

/* The whole of s as one JSON value, or false. */
static bool parse_json_value(const char *s, struct json_object **out)
{
	size_t n = strlen(s);
	if (n == 0 || n >= INT32_MAX)
		return false;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		vm_oom();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* the NUL is passed too, so a bare number knows where it ends */
	struct json_object *v = json_tokener_parse_ex(tok, s, (int)n + 1);
	bool ok = json_tokener_get_error(tok) == json_tokener_success &&
		  json_tokener_get_parse_end(tok) == n;
	json_tokener_free(tok);
	/* json-c takes NaN and Infinity even when strict; JSON has neither */
	if (ok && json_object_is_type(v, json_type_double) && !isfinite(json_object_get_double(v)))
		ok = false;
	if (!ok) {
		json_object_put(v);
		return false;
	}
	*out = v;
	return true;
}

int qmp_args_add(struct json_object *obj, const char *word, bool as_string, char **err)
{
	const char *eq = strchr(word, '=');
	if (!eq || eq == word) {
		vm_set_err(err, "'%s': expected KEY=VALUE", word);
		return -1;
	}
	char *key = strndup(word, (size_t)(eq - word));
	if (!key)
		vm_oom();
	struct json_object *val;
	if (as_string || !parse_json_value(eq + 1, &val))
		val = json_object_new_string(eq + 1);

	/* walk the dotted path, making objects on the way */
	struct json_object *cur = obj;
	char *part = key, *dot;
	int ret = -1;
	for (;;) {
		dot = strchr(part, '.');
		if (dot)
			*dot = '\0';
		if (!*part) {
			vm_set_err(err, "'%s': empty key", word);
			goto out;
		}
		struct json_object *child;
		bool have = json_object_object_get_ex(cur, part, &child);
		if (!dot) {
			if (have) {
				vm_set_err(err, "'%.*s' is given more than once", (int)(eq - word), word);
				goto out;
			}
			json_object_object_add(cur, part, val);
			val = NULL;
			ret = 0;
			goto out;
		}
		if (have && !json_object_is_type(child, json_type_object)) {
			*dot = '\0';
			vm_set_err(err, "'%.*s': '%.*s' is already given a value", (int)(eq - word), word,
				(int)(dot - key), word);
			goto out;
		}
		if (!have) {
			child = json_object_new_object();
			json_object_object_add(cur, part, child);
		}
		cur = child;
		part = dot + 1;
	}
out:
	json_object_put(val);
	free(key);
	return ret;
}

struct json_object *qmp_parse_args(int argc, char *const argv[], char **err)
{
	struct json_object *obj = json_object_new_object();
	for (int i = 0; i < argc; i++) {
		if (qmp_args_add(obj, argv[i], false, err) < 0) {
			json_object_put(obj);
			return NULL;
		}
	}
	return obj;
}

int qmp_split_words(const char *line, struct strv *words, bool **quotedp, char **err)
{
	struct buf w = {0};
	bool inword = false, quoted = false;
	bool *q = NULL;
	size_t nq = 0;
	const char *p = line;

#define ENDWORD()                                                                                  \
	do {                                                                                       \
		strv_push(words, w.s ? w.s : "");                                                  \
		q = xrealloc(q, (nq + 1) * sizeof(*q));                                            \
		q[nq++] = quoted;                                                                  \
		w.len = 0;                                                                         \
		if (w.s)                                                                           \
			w.s[0] = '\0';                                                             \
		inword = quoted = false;                                                           \
	} while (0)

	while (*p) {
		char c = *p;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (inword)
				ENDWORD();
			p++;
			continue;
		}
		inword = true;
		bool in_value = w.s && memchr(w.s, '=', w.len);
		if (c == '\'') {
			const char *end = strchr(p + 1, '\'');
			if (!end) {
				vm_set_err(err, "unterminated '");
				goto fail;
			}
			buf_add(&w, p + 1, (size_t)(end - p - 1));
			if (in_value)
				quoted = true;
			p = end + 1;
		} else if (c == '"') {
			if (in_value)
				quoted = true;
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				buf_add(&w, p, 1);
			}
			if (!*p) {
				vm_set_err(err, "unterminated \"");
				goto fail;
			}
			p++;
		} else if (c == '\\' && p[1]) {
			buf_add(&w, p + 1, 1);
			p += 2;
		} else if ((c == '{' || c == '[') && w.len > 0 && w.s[w.len - 1] == '=') {
			/* a JSON value: copied as is up to its closing bracket */
			int depth = 0;
			bool instr = false;
			const char *start = p;
			for (; *p; p++) {
				if (instr) {
					if (*p == '\\' && p[1])
						p++;
					else if (*p == '"')
						instr = false;
				} else if (*p == '"') {
					instr = true;
				} else if (*p == '{' || *p == '[') {
					depth++;
				} else if (*p == '}' || *p == ']') {
					if (--depth == 0) {
						p++;
						break;
					}
				}
			}
			if (depth > 0) {
				vm_set_err(err, "unbalanced %c", c);
				goto fail;
			}
			buf_add(&w, start, (size_t)(p - start));
		} else {
			buf_add(&w, p, 1);
			p++;
		}
	}
	if (inword)
		ENDWORD();
#undef ENDWORD
	buf_free(&w);
	if (quotedp)
		*quotedp = q;
	else
		free(q);
	return 0;
fail:
	buf_free(&w);
	free(q);
	return -1;
}

struct json_object *qmp_parse_line(const char *line, bool *shorthand, char **err)
{
	struct json_object *cmd = NULL, *v;
	struct strv words = {0};
	bool *quoted = NULL;

	if (err)
		*err = NULL;
	while (isspace((unsigned char)*line))
		line++;
	if (!*line || *line == '#')
		return NULL;
	if (shorthand)
		*shorthand = *line != '{';
	if (*line == '{') {
		if (!parse_json_value(line, &cmd)) {
			/* trailing blanks are fine; parse_json_value wants all of it */
			size_t n = strlen(line);
			while (n && isspace((unsigned char)line[n - 1]))
				n--;
			char *t = strndup(line, n);
			if (!t)
				vm_oom();
			bool ok = parse_json_value(t, &cmd);
			free(t);
			if (!ok) {
				vm_set_err(err, "invalid JSON");
				return NULL;
			}
		}
		if (!json_object_is_type(cmd, json_type_object) ||
		    !((json_object_object_get_ex(cmd, "execute", &v) ||
		       json_object_object_get_ex(cmd, "exec-oob", &v)) &&
		      json_object_is_type(v, json_type_string))) {
			vm_set_err(err, "a JSON command needs \"execute\": \"NAME\"");
			json_object_put(cmd);
			return NULL;
		}
		return cmd;
	}
	if (qmp_split_words(line, &words, &quoted, err) < 0)
		goto fail;
	if (words.n == 0 || strchr(words.v[0], '=')) {
		vm_set_err(err, "expected a command name first");
		goto fail;
	}
	struct json_object *args = json_object_new_object();
	for (size_t i = 1; i < words.n; i++) {
		if (qmp_args_add(args, words.v[i], quoted[i], err) < 0) {
			json_object_put(args);
			goto fail;
		}
	}
	cmd = json_object_new_object();
	json_object_object_add(cmd, "execute", json_object_new_string(words.v[0]));
	if (json_object_object_length(args) > 0)
		json_object_object_add(cmd, "arguments", args);
	else
		json_object_put(args);
fail:
	strv_free(&words);
	free(quoted);
	return cmd;
}

/* ---- the schema ---- */

struct qmp_schema {
	struct json_object *idx; /* entity name -> entity */
	struct strv commands;
};

/* Commands declared with 'gen': false take arguments the schema does not
 * list (device_add passes them to the device as properties). */
static const char *const open_commands[] = {"device_add", NULL};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The array at key: true and *out, or false and *out NULL when there is
 * none or it is something else (json-c asserts on arrays that are not). */
static bool jarr(struct json_object *o, const char *key, struct json_object **out)
{
	if (!json_object_object_get_ex(o, key, out) || !json_object_is_type(*out, json_type_array)) {
		*out = NULL;
		return false;
	}
	return true;
}

static const char *jname(struct json_object *m)
{
	const char *n = json_member_str(m, "name");
	return n ? n : "";
}

static bool meta_is(struct json_object *e, const char *m)
{
	const char *t = json_member_str(e, "meta-type");
	return t && strcmp(t, m) == 0;
}

struct qmp_schema *qmp_schema_new(struct json_object *schema)
{
	if (!json_object_is_type(schema, json_type_array))
		return NULL;
	struct qmp_schema *s = xcalloc(1, sizeof(*s));
	s->idx = json_object_new_object();
	size_t n = json_object_array_length(schema);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(schema, i);
		const char *name = json_member_str(e, "name");
		if (!name)
			continue;
		json_object_object_add(s->idx, name, json_object_get(e));
		if (meta_is(e, "command"))
			strv_push(&s->commands, name);
	}
	if (s->commands.n)
		qsort(s->commands.v, s->commands.n, sizeof(*s->commands.v), cmp_str);
	return s;
}

void qmp_schema_free(struct qmp_schema *s)
{
	if (!s)
		return;
	json_object_put(s->idx);
	strv_free(&s->commands);
	free(s);
}

const struct strv *qmp_schema_commands(const struct qmp_schema *s)
{
	return &s->commands;
}

static struct json_object *entity(const struct qmp_schema *s, const char *name)
{
	struct json_object *e;
	if (name && json_object_object_get_ex(s->idx, name, &e))
		return e;
	return NULL;
}

static struct json_object *command(const struct qmp_schema *s, const char *cmd)
{
	struct json_object *e = entity(s, cmd);
	return meta_is(e, "command") ? e : NULL;
}

bool qmp_schema_has_command(const struct qmp_schema *s, const char *cmd)
{
	return command(s, cmd) != NULL;
}

/* Members of an object type, growing, without duplicates. */
struct mlist {
	struct json_object **v;
	size_t n, cap;
};

static struct json_object *mlist_find(const struct mlist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *m = json_member_str(l->v[i], "name");
		if (m && strcmp(m, name) == 0)
			return l->v[i];
	}
	return NULL;
}

static void mlist_add(struct mlist *l, struct json_object *m)
{
	const char *name = json_member_str(m, "name");
	if (!name || mlist_find(l, name))
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = m;
}

/* An object's members: its own, plus those of the variant its tag selects in
 * val (or of every variant, for completion and help). */
static void collect_members(const struct qmp_schema *s, struct json_object *ent,
			    struct json_object *val, bool all_variants, struct mlist *out, int depth)
{
	struct json_object *arr;
	if (!ent || depth > 8)
		return;
	if (jarr(ent, "members", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++)
			mlist_add(out, json_object_array_get_idx(arr, i));
	const char *tag = json_member_str(ent, "tag");
	if (!tag || !jarr(ent, "variants", &arr))
		return;
	const char *tagval = json_object_is_type(val, json_type_object) ? json_member_str(val, tag) : NULL;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *var = json_object_array_get_idx(arr, i);
		const char *c = json_member_str(var, "case");
		if (all_variants || (c && tagval && strcmp(c, tagval) == 0))
			collect_members(s, entity(s, json_member_str(var, "type")), val, all_variants, out,
					depth + 1);
	}
}

static bool optional(struct json_object *m)
{
	return json_object_object_get_ex(m, "default", NULL);
}

/* A type for people: str, int, [str], enum, object, str or null ... */
static void type_str(const struct qmp_schema *s, const char *type, struct buf *b, int depth)
{
	struct json_object *e = entity(s, type), *arr;
	if (!e || depth > 4) {
		buf_puts(b, type ? type : "?");
		return;
	}
	if (meta_is(e, "builtin")) {
		buf_puts(b, type);
	} else if (meta_is(e, "enum")) {
		buf_puts(b, "enum");
	} else if (meta_is(e, "array")) {
		buf_puts(b, "[");
		type_str(s, json_member_str(e, "element-type"), b, depth + 1);
		buf_puts(b, "]");
	} else if (meta_is(e, "object")) {
		struct mlist ml = {0};
		collect_members(s, e, NULL, true, &ml, 0);
		buf_puts(b, ml.n ? "object" : "{}");
		free(ml.v);
	} else if (meta_is(e, "alternate") && jarr(e, "members", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			if (i)
				buf_puts(b, " or ");
			type_str(s, json_member_str(json_object_array_get_idx(arr, i), "type"), b, depth + 1);
		}
	} else {
		buf_puts(b, type);
	}
}

static const char *json_kind(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "bool";
	case json_type_double: return "number";
	case json_type_int: return "int";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	}
	return "value";
}

/* Where a value lives, so a coerced one can be put back. */
struct slot {
	struct json_object *parent;
	const char *key; /* in an object, or NULL: parent is an array */
	size_t idx;
};

static struct json_object *slot_get(const struct slot *sl)
{
	if (sl->key) {
		struct json_object *v = NULL;
		json_object_object_get_ex(sl->parent, sl->key, &v);
		return v;
	}
	return json_object_array_get_idx(sl->parent, sl->idx);
}

static void slot_set(const struct slot *sl, struct json_object *v)
{
	if (sl->key)
		json_object_object_add(sl->parent, sl->key, v);
	else
		json_object_array_put_idx(sl->parent, sl->idx, v);
}

/* A scalar typed where a string was meant becomes that string. */
static bool coerce_to_string(const struct slot *sl, struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
	case json_type_boolean:
	case json_type_int:
	case json_type_double:
		slot_set(sl, json_object_new_string(v ? json_object_to_json_string_ext(
							    v, JSON_C_TO_STRING_PLAIN)
						      : "null"));
		return true;
	default:
		return false;
	}
}

static int check_object(const struct qmp_schema *s, struct json_object *ent,
			struct json_object *obj, const char *path, bool coerce, bool allow_extra,
			char **err);

static int type_error(const struct qmp_schema *s, const char *type, struct json_object *v,
		      const char *path, char **err)
{
	struct buf b = {0};
	type_str(s, type, &b, 0);
	vm_set_err(err, "argument '%s': expected %s, got %s", path, b.s, json_kind(v));
	buf_free(&b);
	return -1;
}

static int check_value(const struct qmp_schema *s, const char *type, const struct slot *sl,
		       const char *path, bool coerce, char **err)
{
	struct json_object *e = entity(s, type), *arr;
	struct json_object *v = slot_get(sl);
	enum json_type t = json_object_get_type(v);

	if (!e)
		return 0; /* a type we cannot see: let QEMU judge */
	if (meta_is(e, "builtin")) {
		const char *jt = json_member_str(e, "json-type");
		bool ok = !jt || strcmp(jt, "value") == 0;
		if (jt && strcmp(jt, "string") == 0)
			ok = t == json_type_string || (coerce && coerce_to_string(sl, v));
		else if (jt && strcmp(jt, "int") == 0)
			ok = t == json_type_int;
		else if (jt && strcmp(jt, "number") == 0)
			ok = t == json_type_int || t == json_type_double;
		else if (jt && strcmp(jt, "boolean") == 0)
			ok = t == json_type_boolean;
		else if (jt && strcmp(jt, "null") == 0)
			ok = t == json_type_null;
		return ok ? 0 : type_error(s, type, v, path, err);
	}
	if (meta_is(e, "enum")) {
		if (t != json_type_string) {
			if (!coerce || !coerce_to_string(sl, v))
				return type_error(s, type, v, path, err);
			v = slot_get(sl);
		}
		const char *val = json_object_get_string(v);
		struct buf b = {0};
		if (jarr(e, "values", &arr)) {
			for (size_t i = 0; i < json_object_array_length(arr); i++) {
				const char *x = json_object_get_string(json_object_array_get_idx(arr, i));
				if (x && strcmp(x, val) == 0) {
					buf_free(&b);
					return 0;
				}
				buf_printf(&b, "%s%s", i ? ", " : "", x ? x : "");
			}
		}
		vm_set_err(err, "argument '%s': '%s' is not one of: %s", path, val, b.s ? b.s : "");
		buf_free(&b);
		return -1;
	}
	if (meta_is(e, "array")) {
		if (t != json_type_array)
			return type_error(s, type, v, path, err);
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct slot el = {.parent = v, .idx = i};
			char *p = xasprintf("%s[%zu]", path, i);
			int r = check_value(s, json_member_str(e, "element-type"), &el, p, coerce, err);
			free(p);
			if (r < 0)
				return -1;
		}
		return 0;
	}
	if (meta_is(e, "object")) {
		if (t != json_type_object)
			return type_error(s, type, v, path, err);
		return check_object(s, e, v, path, coerce, false, err);
	}
	if (meta_is(e, "alternate") && jarr(e, "members", &arr)) {
		/* exact matches first; coercion only when nothing fits as given */
		for (int pass = 0; pass < (coerce ? 2 : 1); pass++) {
			for (size_t i = 0; i < json_object_array_length(arr); i++) {
				const char *mt = json_member_str(json_object_array_get_idx(arr, i), "type");
				/* QAPI has no alternate of alternates; one naming
				 * itself would recurse on the same value for ever */
				if (meta_is(entity(s, mt), "alternate"))
					continue;
				if (check_value(s, mt, sl, path, pass == 1, NULL) == 0)
					return 0;
			}
		}
		return type_error(s, type, v, path, err);
	}
	return 0;
}

static int check_object(const struct qmp_schema *s, struct json_object *ent,
			struct json_object *obj, const char *path, bool coerce, bool allow_extra,
			char **err)
{
	struct mlist ml = {0};
	int ret = -1;
	char *p = NULL;
	const char *tag = json_member_str(ent, "tag");

#define SUBPATH(k) (free(p), p = *path ? xasprintf("%s.%s", path, k) : xstrdup(k))
	/* the tag first: a wrong one explains every "unknown" that follows */
	struct json_object *tv;
	if (tag && json_object_object_get_ex(obj, tag, &tv)) {
		collect_members(s, ent, NULL, false, &ml, 0);
		struct json_object *m = mlist_find(&ml, tag);
		struct slot sl = {.parent = obj, .key = tag};
		if (m && check_value(s, json_member_str(m, "type"), &sl, SUBPATH(tag), coerce, err) < 0)
			goto out;
		ml.n = 0;
	}
	collect_members(s, ent, obj, false, &ml, 0);
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		struct json_object *m = mlist_find(&ml, key);
		SUBPATH(key);
		if (!m) {
			if (allow_extra)
				continue;
			vm_set_err(err, "unknown argument '%s'", p);
			goto out;
		}
		struct slot sl = {.parent = obj, .key = key};
		if (check_value(s, json_member_str(m, "type"), &sl, p, coerce, err) < 0)
			goto out;
	}
	for (size_t i = 0; i < ml.n; i++) {
		const char *name = json_member_str(ml.v[i], "name");
		if (!optional(ml.v[i]) && !json_object_object_get_ex(obj, name, NULL)) {
			vm_set_err(err, "missing argument '%s'", SUBPATH(name));
			goto out;
		}
	}
#undef SUBPATH
	ret = 0;
out:
	free(p);
	free(ml.v);
	return ret;
}

int qmp_schema_check(const struct qmp_schema *s, const char *cmd, struct json_object *args,
		     bool coerce, char **err)
{
	struct json_object *c = command(s, cmd);
	if (!c) {
		vm_set_err(err, "unknown command '%s'", cmd);
		return -1;
	}
	if (args && !json_object_is_type(args, json_type_object)) {
		vm_set_err(err, "%s: arguments must be a JSON object", cmd);
		return -1;
	}
	struct json_object *empty = args ? NULL : json_object_new_object();
	int r = check_object(s, entity(s, json_member_str(c, "arg-type")), args ? args : empty, "", coerce,
			     str_in(cmd, open_commands), err);
	json_object_put(empty);
	if (r < 0 && err && *err) {
		char *e = xasprintf("%s: %s", cmd, *err);
		free(*err);
		*err = e;
	}
	return r;
}

/* The type entity of member path "a.b.c" of the object type ent, following
 * object members through every variant. */
static struct json_object *resolve_path(const struct qmp_schema *s, struct json_object *ent,
					const char *path, size_t len)
{
	while (ent && len > 0) {
		const char *dot = memchr(path, '.', len);
		size_t n = dot ? (size_t)(dot - path) : len;
		char *name = strndup(path, n);
		if (!name)
			vm_oom();
		struct mlist ml = {0};
		collect_members(s, ent, NULL, true, &ml, 0);
		struct json_object *m = mlist_find(&ml, name);
		free(ml.v);
		free(name);
		ent = m ? entity(s, json_member_str(m, "type")) : NULL;
		/* an alternate such as BlockdevRef: its object branch has the members */
		struct json_object *arr;
		if (ent && meta_is(ent, "alternate") && jarr(ent, "members", &arr)) {
			struct json_object *obj = NULL;
			for (size_t i = 0; i < json_object_array_length(arr) && !obj; i++) {
				struct json_object *x =
				    entity(s, json_member_str(json_object_array_get_idx(arr, i), "type"));
				if (meta_is(x, "object"))
					obj = x;
			}
			if (dot)
				ent = obj;
		}
		if (!dot)
			return ent;
		path = dot + 1;
		len -= n + 1;
	}
	return ent;
}

void qmp_schema_complete(const struct qmp_schema *s, const char *cmd, const char *word,
			 struct strv *out)
{
	struct json_object *c = command(s, cmd), *arr;
	if (!c)
		return;
	struct json_object *args = entity(s, json_member_str(c, "arg-type"));
	const char *eq = strchr(word, '=');
	if (eq) {
		struct json_object *t = resolve_path(s, args, word, (size_t)(eq - word));
		size_t vlen = strlen(eq + 1);
		int klen = (int)(eq - word);
		if (meta_is(t, "enum") && jarr(t, "values", &arr)) {
			for (size_t i = 0; i < json_object_array_length(arr); i++) {
				const char *x = json_object_get_string(json_object_array_get_idx(arr, i));
				if (x && strncmp(x, eq + 1, vlen) == 0)
					strv_pushf(out, "%.*s=%s", klen, word, x);
			}
		} else if (meta_is(t, "builtin") &&
			   str_in(json_member_str(t, "json-type"), (const char *const[]){"boolean", NULL})) {
			static const char *const b[] = {"true", "false"};
			for (int i = 0; i < 2; i++)
				if (strncmp(b[i], eq + 1, vlen) == 0)
					strv_pushf(out, "%.*s=%s", klen, word, b[i]);
		}
		return;
	}
	const char *dot = strrchr(word, '.');
	struct json_object *ent = dot ? resolve_path(s, args, word, (size_t)(dot - word)) : args;
	const char *partial = dot ? dot + 1 : word;
	int plen = dot ? (int)(dot - word + 1) : 0;
	struct mlist ml = {0};
	if (meta_is(ent, "object"))
		collect_members(s, ent, NULL, true, &ml, 0);
	for (size_t i = 0; i < ml.n; i++) {
		const char *name = jname(ml.v[i]);
		if (strncmp(name, partial, strlen(partial)) != 0)
			continue;
		struct json_object *t = entity(s, json_member_str(ml.v[i], "type"));
		struct mlist sub = {0};
		if (meta_is(t, "object"))
			collect_members(s, t, NULL, true, &sub, 0);
		/* an object member is filled in with dotted keys */
		strv_pushf(out, "%.*s%s%s", plen, word, name, sub.n ? "." : "=");
		free(sub.v);
	}
	free(ml.v);
}

static void describe_members(const struct qmp_schema *s, struct json_object *ent,
			     const char *prefix, int depth, struct buf *out)
{
	struct json_object *arr;
	if (!ent || depth > 3)
		return;
	/* own members, one a line; nested objects follow with dotted names */
	size_t w = 0;
	struct json_object *mem = NULL;
	if (jarr(ent, "members", &mem))
		for (size_t i = 0; i < json_object_array_length(mem); i++) {
			size_t l = strlen(prefix) + strlen(jname(json_object_array_get_idx(mem, i)));
			if (l > w)
				w = l;
		}
	for (size_t i = 0; mem && i < json_object_array_length(mem); i++) {
		struct json_object *m = json_object_array_get_idx(mem, i);
		const char *type = json_member_str(m, "type");
		struct json_object *t = entity(s, type);
		char *name = xasprintf("%s%s", prefix, jname(m));
		buf_printf(out, "  %-*s  ", (int)w, name);
		type_str(s, type, out, 0);
		if (optional(m))
			buf_puts(out, " (optional)");
		if (meta_is(t, "enum") && jarr(t, "values", &arr)) {
			buf_puts(out, ":");
			for (size_t j = 0; j < json_object_array_length(arr); j++)
				buf_printf(out, " %s",
					   json_object_get_string(json_object_array_get_idx(arr, j)));
		}
		buf_puts(out, "\n");
		if (meta_is(t, "object")) {
			char *sub = xasprintf("%s.", name);
			describe_members(s, t, sub, depth + 1, out);
			free(sub);
		}
		free(name);
	}
	const char *tag = json_member_str(ent, "tag");
	if (!tag || !jarr(ent, "variants", &arr))
		return;
	/* variants in brief: the member names each case adds, [optional] */
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *var = json_object_array_get_idx(arr, i);
		struct mlist ml = {0};
		collect_members(s, entity(s, json_member_str(var, "type")), NULL, true, &ml, 0);
		buf_printf(out, "  with %s%s=%s:", prefix, tag, json_member_str(var, "case"));
		if (!ml.n)
			buf_puts(out, " (nothing more)");
		for (size_t j = 0; j < ml.n; j++)
			buf_printf(out, optional(ml.v[j]) ? "%s [%s]" : "%s %s", j ? "," : "",
				   jname(ml.v[j]));
		buf_puts(out, "\n");
		free(ml.v);
	}
}

int qmp_schema_describe(const struct qmp_schema *s, const char *cmd, struct buf *out)
{
	struct json_object *c = command(s, cmd);
	if (!c)
		return -1;
	struct json_object *args = entity(s, json_member_str(c, "arg-type"));
	struct mlist ml = {0};
	collect_members(s, args, NULL, true, &ml, 0);
	buf_printf(out, "%s%s\n", cmd, ml.n ? "" : " (no arguments)");
	free(ml.v);
	describe_members(s, args, "", 0, out);
	if (str_in(cmd, open_commands))
		buf_puts(out, "  ... and any other property as key=value\n");
	const char *rt = json_member_str(c, "ret-type");
	struct json_object *r = entity(s, rt);
	buf_puts(out, "returns: ");
	type_str(s, rt, out, 0);
	buf_puts(out, "\n");
	if (meta_is(r, "array"))
		r = entity(s, json_member_str(r, "element-type"));
	if (meta_is(r, "object")) {
		struct buf sub = {0};
		describe_members(s, r, "", 2, &sub);
		/* indent the return members under "returns:" */
		for (char *line = sub.s, *nl; line && *line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			buf_printf(out, "  %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
		}
		buf_free(&sub);
	}
	return 0;
}
