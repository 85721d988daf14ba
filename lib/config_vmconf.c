/* The vm.conf codec (libconfuse). The option tables are built from the field
 * table in config.c, so the file format always matches the model. Values are
 * checked while parsing, so every error names the file and line. */
#include <confuse.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static __thread struct buf *parse_errs;
static __thread const char *parse_path;

static void collect_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	if (!parse_errs || parse_errs->len) /* keep the first error: one clear line */
		return;
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		return;
	buf_printf(parse_errs, "%s:%d: %s", parse_path, cfg ? cfg->line : 0, msg);
	free(msg);
}

static const struct section_desc *section_of(cfg_t *cfg)
{
	for (int k = SEC_DRIVE; k < SEC_COUNT; k++)
		if (cfg->name && !strcmp(cfg->name, config_sections[k].name))
			return &config_sections[k];
	return &config_sections[SEC_TOP];
}

static const struct field *field_of(const struct section_desc *sd, const char *key)
{
	for (const struct field *f = sd->fields; f->key; f++)
		if (!strcmp(f->key, key))
			return f;
	return NULL;
}

/* Check one value as it is parsed, on a scratch copy of the field. */
static int check_value(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const struct section_desc *sd = section_of(cfg);
	const struct field *f = field_of(sd, opt->name);
	union {
		char *s;
		int64_t i;
		bool b;
		struct strv l;
	} scratch;
	memset(&scratch, 0, sizeof scratch);
	struct field tmp = *f;
	tmp.offset = 0;
	char *err = NULL;
	char *key = sd->kind == SEC_TOP ? xstrdup(f->key)
					: xasprintf("%s.%s.%s", sd->name, cfg->title ? cfg->title : "?", f->key);
	int r = config_field_set(&scratch, &tmp, key, value, &err);
	free(key);
	if (f->type == FT_STR || f->type == FT_ENUM)
		free(scratch.s);
	else if (f->type == FT_LIST)
		strv_free(&scratch.l);
	if (r < 0) {
		cfg_error(cfg, "%s", err);
		free(err);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

static cfg_opt_t *build_opts(const struct field *fs)
{
	size_t n = 0;
	while (fs[n].key)
		n++;
	cfg_opt_t *o = xcalloc(n + 1, sizeof *o);
	for (size_t i = 0; i < n; i++) {
		cfg_opt_t t[] = {CFG_STR_CB((char *)fs[i].key, NULL, CFGF_NODEFAULT, check_value)};
		cfg_opt_t l[] = {CFG_STR_LIST_CB((char *)fs[i].key, NULL, CFGF_NODEFAULT, check_value)};
		o[i] = fs[i].type == FT_LIST ? l[0] : t[0];
	}
	cfg_opt_t end[] = {CFG_END()};
	o[n] = end[0];
	return o;
}

static void store_fields(void *base, const struct field *fs, cfg_t *sec)
{
	for (const struct field *f = fs; f->key; f++) {
		unsigned n = cfg_size(sec, f->key);
		for (unsigned i = 0; i < n; i++) {
			char *err = NULL;
			if (config_field_set(base, f, f->key, cfg_getnstr(sec, f->key, i), &err) < 0)
				free(err); /* already checked while parsing */
		}
	}
}

/* libconfuse replaces ${VAR} (and ${VAR:-default}) with the environment in
 * double-quoted strings and at the start of a bare word, and has no flag to
 * turn that off. A config must mean what it says (and a secret in the
 * environment must not end up in a file the next write makes), so before
 * parsing: "...${..." becomes "...\044{..." (an octal escape for the same
 * '$'), and a bare ${...} becomes the single-quoted '${...}'. The lexer's
 * states are followed (comments, both quotes, bare words) so nothing else
 * changes, line numbers included. It also counts the braces (sections and
 * lists) outside strings and comments. */
/* libconfuse looks for a section's title among all those before it: n
 * sections cost n^2/2 compares. Real configurations have a few dozen. */
#define CONFIG_VMCONF_MAX_BRACES 4096

static char *literal_dollars(const char *text, size_t *braces)
{
	bool dollars = strstr(text, "${");
	*braces = 0;
	struct buf b = {0};
	enum { TOP, WORD, DQ, SQ, LINE_COMMENT, BLOCK_COMMENT } st = TOP;
	for (const char *p = text; *p; p++) {
		switch (st) {
		case TOP:
		case WORD:
			if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
				st = LINE_COMMENT;
			} else if (p[0] == '/' && p[1] == '*') {
				st = BLOCK_COMMENT;
				buf_add(&b, p++, 1);
			} else if (*p == '"') {
				st = DQ;
			} else if (*p == '\'') {
				st = SQ;
			} else if (st == TOP && p[0] == '$' && p[1] == '{') {
				const char *end = strchr(p, '}');
				if (end) {
					buf_puts(&b, "'");
					for (; p <= end; p++) {
						if (*p == '\\' || *p == '\'')
							buf_puts(&b, "\\");
						buf_add(&b, p, 1);
					}
					buf_puts(&b, "'");
					p--;
					continue;
				}
				st = WORD;
			} else {
				*braces += *p == '{';
				st = strchr(" \t\n\r={}()+,*", *p) ? TOP : WORD;
			}
			break;
		case DQ:
			if (*p == '\\' && p[1]) {
				buf_add(&b, p++, 1);
			} else if (*p == '"') {
				st = TOP;
			} else if (p[0] == '$' && p[1] == '{') {
				buf_puts(&b, "\\044");
				continue;
			}
			break;
		case SQ:
			if (*p == '\\' && (p[1] == '\\' || p[1] == '\''))
				buf_add(&b, p++, 1);
			else if (*p == '\'')
				st = TOP;
			break;
		case LINE_COMMENT:
			if (*p == '\n')
				st = TOP;
			break;
		case BLOCK_COMMENT:
			if (p[0] == '*' && p[1] == '/') {
				buf_add(&b, p++, 1);
				st = TOP;
			}
			break;
		}
		buf_add(&b, p, 1);
	}
	if (!dollars) /* nothing to change: parse the text itself */
		buf_free(&b);
	return b.s;
}

int config_parse_vmconf(struct vm_config *c, const char *path, const char *text, char **err)
{
	cfg_opt_t *sec_opts[SEC_COUNT] = {0};
	size_t ntop = 0;
	while (config_sections[SEC_TOP].fields[ntop].key)
		ntop++;
	cfg_opt_t *top = build_opts(config_sections[SEC_TOP].fields);
	top = xrealloc(top, (ntop + SEC_COUNT + 1) * sizeof *top);
	for (int k = SEC_DRIVE; k < SEC_COUNT; k++) {
		sec_opts[k] = build_opts(config_sections[k].fields);
		cfg_opt_t s[] = {CFG_SEC((char *)config_sections[k].name, sec_opts[k],
					 CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES)};
		top[ntop + (size_t)k - 1] = s[0];
	}
	cfg_opt_t end[] = {CFG_END()};
	top[ntop + SEC_COUNT - 1] = end[0];

	struct buf errs = {0};
	parse_errs = &errs;
	parse_path = path;
	cfg_t *cfg = cfg_init(top, CFGF_NONE);
	cfg_set_error_function(cfg, collect_error);
	size_t braces;
	char *literal = literal_dollars(text, &braces);
	int r = CFG_PARSE_ERROR;
	if (braces > CONFIG_VMCONF_MAX_BRACES)
		buf_printf(&errs, "%s: more than %d sections and lists", path, CONFIG_VMCONF_MAX_BRACES);
	else
		r = cfg_parse_buf(cfg, literal ? literal : text);
	free(literal);
	if (r == CFG_SUCCESS) {
		config_init(c);
		store_fields(c, config_sections[SEC_TOP].fields, cfg);
		for (int k = SEC_DRIVE; k < SEC_COUNT; k++) {
			unsigned n = cfg_size(cfg, config_sections[k].name);
			for (unsigned i = 0; i < n; i++) {
				cfg_t *sec = cfg_getnsec(cfg, config_sections[k].name, i);
				const char *id = cfg_title(sec);
				if (!config_id_valid(id)) {
					buf_printf(&errs, "%s: %s '%s': bad id (letters, digits, _ and -)", path,
						   config_sections[k].name, id);
					r = CFG_PARSE_ERROR;
					break;
				}
				void *e = k == SEC_DRIVE	? (void *)config_add_drive(c, id)
					  : k == SEC_NET	? (void *)config_add_net(c, id)
					  : k == SEC_SERIAL ? (void *)config_add_serial(c, id)
							    : (void *)config_add_share(c, id);
				store_fields(e, config_sections[k].fields, sec);
			}
		}
		c->source = xstrdup(path);
		if (r != CFG_SUCCESS)
			config_free(c);
	} else if (!errs.len) {
		buf_printf(&errs, "%s: cannot parse", path);
	}
	parse_errs = NULL;
	cfg_free(cfg);
	free(top);
	for (int k = SEC_DRIVE; k < SEC_COUNT; k++)
		free(sec_opts[k]);
	if (r != CFG_SUCCESS) {
		*err = errs.s;
		return -1;
	}
	buf_free(&errs);
	return 0;
}

/* Single quotes: libconfuse expands nothing inside them; only \\ and \' are escapes. */
static void put_quoted(struct buf *b, const char *s)
{
	buf_puts(b, "'");
	for (; *s; s++) {
		if (*s == '\\' || *s == '\'')
			buf_puts(b, "\\");
		buf_add(b, s, 1);
	}
	buf_puts(b, "'");
}

static void put_fields(struct buf *b, const void *base, const struct field *fs, const char *indent)
{
	for (const struct field *f = fs; f->key; f++) {
		const void *p = (const char *)base + f->offset;
		switch (f->type) {
		case FT_STR:
		case FT_ENUM:
			if (!*(char *const *)p)
				continue;
			buf_printf(b, "%s%s = ", indent, f->key);
			put_quoted(b, *(char *const *)p);
			break;
		case FT_INT:
		case FT_MIB:
			if (!*(const int64_t *)p)
				continue;
			buf_printf(b, "%s%s = %lld", indent, f->key, (long long)*(const int64_t *)p);
			break;
		case FT_BOOL:
			if (!*(const bool *)p)
				continue;
			buf_printf(b, "%s%s = true", indent, f->key);
			break;
		case FT_LIST: {
			const struct strv *sv = p;
			if (!sv->n)
				continue;
			buf_printf(b, "%s%s = {", indent, f->key);
			for (size_t i = 0; i < sv->n; i++) {
				buf_puts(b, i ? ", " : "");
				put_quoted(b, sv->v[i]);
			}
			buf_puts(b, "}");
			break;
		}
		}
		buf_puts(b, "\n");
	}
}

char *config_format_vmconf(const struct vm_config *c)
{
	struct buf b = {0};
	buf_puts(&b, "# utmkit VM configuration (utm-bundle(5)); edit with vm-config\n");
	put_fields(&b, c, config_sections[SEC_TOP].fields, "");
	for (int k = SEC_DRIVE; k < SEC_COUNT; k++) {
		size_t n = config_section_count(c, k);
		for (size_t i = 0; i < n; i++) {
			void *e = config_section_elem(c, k, i);
			buf_printf(&b, "\n%s %s {\n", config_sections[k].name, *(char **)e);
			put_fields(&b, e, config_sections[k].fields, "\t");
			buf_puts(&b, "}\n");
		}
	}
	return b.s;
}
