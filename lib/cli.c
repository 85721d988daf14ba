/* Command lines from one option table per tool (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* The options every tool has, in the order --help lists them when the
 * table does not. */
static const struct cli_option common_options[] = {
    CLI_FLAG('q', "quiet", "no messages but errors"),
    CLI_FLAG('v', "verbose", "say more"),
    CLI_FLAG('h', "help", "this help"),
    CLI_FLAG('V', "version", "print the version"),
};
#define NCOMMON (sizeof common_options / sizeof common_options[0])

static bool is_option(const struct cli_option *o)
{
	return o->kind == CLI_KIND_FLAG || o->kind == CLI_KIND_VALUE;
}

static bool table_has(const struct cli_spec *spec, int id)
{
	for (const struct cli_option *o = spec->options; o && o->kind != CLI_KIND_END; o++)
		if (is_option(o) && o->id == id)
			return true;
	return false;
}

/* Calls fn for each option of the table, then each common one it lacks. */
static void each_option(const struct cli_spec *spec, void (*fn)(const struct cli_option *, void *), void *arg)
{
	for (const struct cli_option *o = spec->options; o && o->kind != CLI_KIND_END; o++)
		fn(o, arg);
	for (size_t i = 0; i < NCOMMON; i++)
		if (!table_has(spec, common_options[i].id))
			fn(&common_options[i], arg);
}

/* ---- getopt_long's arguments ---- */

struct build {
	struct buf shorts;
	struct option *longs;
	size_t nlongs;
};

static void add_getopt(const struct cli_option *o, void *arg)
{
	struct build *b = arg;
	if (!is_option(o))
		return;
	if (o->id > 0 && o->id < CLI_LONG_ONLY) {
		char c = (char)o->id;
		buf_add(&b->shorts, &c, 1);
		if (o->kind == CLI_KIND_VALUE)
			buf_puts(&b->shorts, ":");
	}
	if (o->name) {
		b->longs = xrealloc(b->longs, (b->nlongs + 2) * sizeof *b->longs);
		b->longs[b->nlongs++] = (struct option){o->name, o->kind == CLI_KIND_VALUE ? required_argument : no_argument,
							NULL, o->id};
		b->longs[b->nlongs] = (struct option){0};
	}
}

void cli_getopt_build(const struct cli_spec *spec, struct cli_getopt *out)
{
	struct build b = {0};
	buf_puts(&b.shorts, spec->flags & CLI_IN_ORDER ? "+" : "");
	each_option(spec, add_getopt, &b);
	out->shortopts = b.shorts.s;
	out->longopts = b.longs ? b.longs : xcalloc(1, sizeof *b.longs);
}

void cli_getopt_free(struct cli_getopt *g)
{
	free(g->shortopts);
	free(g->longopts);
	g->shortopts = NULL;
	g->longopts = NULL;
}

/* ---- --help ---- */

/* Options whose left part ("  -a, --accel A") is longer than this have
 * their text on the next line, so one long name does not push every
 * other text to the right. */
#define LEFT_MAX 24
#define LEFT_MIN 16

static void left_part(const struct cli_option *o, struct buf *out)
{
	if (o->id > 0 && o->id < CLI_LONG_ONLY)
		buf_printf(out, "  -%c%s", o->id, o->name ? ", " : "");
	else
		buf_puts(out, "      ");
	if (o->name)
		buf_printf(out, "--%s", o->name);
	if (o->kind == CLI_KIND_VALUE && o->arg)
		buf_printf(out, " %s", o->arg);
}

struct help {
	struct buf *out;
	size_t col; /* the column of the texts */
	bool measure;
};

static void add_help(const struct cli_option *o, void *arg)
{
	struct help *h = arg;
	if (o->kind == CLI_KIND_TEXT) {
		if (!h->measure) {
			buf_puts(h->out, o->help ? o->help : "");
			buf_puts(h->out, "\n");
		}
		return;
	}
	if (!is_option(o))
		return;
	struct buf left = {0};
	left_part(o, &left);
	if (h->measure) {
		if (left.len <= LEFT_MAX && left.len + 2 > h->col)
			h->col = left.len + 2;
		buf_free(&left);
		return;
	}
	buf_puts(h->out, left.s);
	const char *text = o->help ? o->help : "";
	if (left.len + 2 > h->col) {
		buf_puts(h->out, "\n");
		buf_printf(h->out, "%*s", (int)h->col, "");
	} else {
		buf_printf(h->out, "%*s", (int)(h->col - left.len), "");
	}
	buf_free(&left);
	for (const char *p = text;;) {
		size_t n = strcspn(p, "\n");
		buf_add(h->out, p, n);
		buf_puts(h->out, "\n");
		if (!p[n] || !p[n + 1])
			break;
		p += n + 1;
		buf_printf(h->out, "%*s", (int)h->col, "");
	}
}

char *cli_help(const struct cli_spec *spec)
{
	struct buf out = {0};
	buf_puts(&out, spec->usage ? spec->usage : "");
	buf_puts(&out, spec->about ? spec->about : "");
	struct help h = {&out, LEFT_MIN + 2, true};
	each_option(spec, add_help, &h);
	h.measure = false;
	each_option(spec, add_help, &h);
	return out.s;
}

char *cli_synopsis(const struct cli_spec *spec)
{
	return xstrdup(spec->usage ? spec->usage : "");
}

/* ---- values ---- */

int parse_seconds(const char *s, int *ms)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	/* only plain decimal numbers: strtod also takes "inf", "nan", hex and
	 * leading blanks, none of which a user means by seconds */
	if (end == s || *end || errno || !isfinite(d) || d < 0 || d > CLI_SECONDS_MAX ||
	    strspn(s, "0123456789.") != strlen(s))
		return -1;
	*ms = d == 0 ? CLI_FOREVER : (int)ceil(d * 1000);
	return 0;
}

/* Indented JSON. json-c's own pretty printer spreads {} and [] over two
 * lines; this one keeps them whole and indents by two. */
static void pretty_json(FILE *f, struct json_object *v, int indent)
{
	const int plain = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
	if (json_object_is_type(v, json_type_object) && json_object_object_length(v) > 0) {
		bool first = true;
		fputs("{\n", f);
		json_object_object_foreach(v, key, val)
		{
			struct json_object *k = json_object_new_string(key);
			fprintf(f, "%s%*s%s: ", first ? "" : ",\n", indent + 2, "",
				json_object_to_json_string_ext(k, plain));
			json_object_put(k);
			pretty_json(f, val, indent + 2);
			first = false;
		}
		fprintf(f, "\n%*s}", indent, "");
	} else if (json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0) {
		fputs("[\n", f);
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			fprintf(f, "%s%*s", i ? ",\n" : "", indent + 2, "");
			pretty_json(f, json_object_array_get_idx(v, i), indent + 2);
		}
		fprintf(f, "\n%*s]", indent, "");
	} else {
		fputs(json_object_to_json_string_ext(v, plain), f);
	}
}

void print_json(FILE *f, struct json_object *v, enum cli_json style)
{
	bool pretty = style == CLI_JSON_PRETTY || (style == CLI_JSON_AUTO && isatty(fileno(f)));
	if (pretty)
		pretty_json(f, v, 0);
	else
		fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), f);
	putc('\n', f);
}
