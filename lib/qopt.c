/* QEMU option strings, built one key at a time (see qopt.h). */
#include "qopt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "util.h"

struct qopt {
	struct buf b;
	char *err; /* the first failed check */
};

char *qopt_escape(const char *s)
{
	struct buf b = {0};
	for (; *s; s++) {
		buf_add(&b, s, 1);
		if (*s == ',')
			buf_add(&b, s, 1);
	}
	return b.s ? b.s : xstrdup("");
}

static void add_escaped(struct buf *b, const char *s)
{
	char *e = qopt_escape(s);
	buf_puts(b, e);
	free(e);
}

struct qopt *qopt_new(const char *head)
{
	struct qopt *o = xcalloc(1, sizeof *o);
	if (head)
		add_escaped(&o->b, head);
	return o;
}

void qopt_add(struct qopt *o, const char *key, const char *value)
{
	if (o->b.len)
		buf_puts(&o->b, ",");
	if (key)
		buf_printf(&o->b, "%s=", key);
	add_escaped(&o->b, value);
}

void qopt_addf(struct qopt *o, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *v = xvasprintf(fmt, ap);
	va_end(ap);
	qopt_add(o, key, v);
	free(v);
}

/* Whether value matches g; the first mismatch is the option's error. */
static bool check(struct qopt *o, const char *value, const struct grammar *g, const char *cfgkey)
{
	if (g->valid(value))
		return true;
	if (!o->err)
		o->err = xasprintf("%s: '%s' is not %s", cfgkey, value, g->what);
	return false;
}

bool qopt_add_checked(struct qopt *o, const char *key, const char *value, const struct grammar *g,
		      const char *cfgkey, ...)
{
	va_list ap;
	va_start(ap, cfgkey);
	char *k = xvasprintf(cfgkey, ap);
	va_end(ap);
	bool ok = check(o, value, g, k);
	free(k);
	if (ok)
		qopt_add(o, key, value);
	return ok;
}

bool qopt_add_keys(struct qopt *o, const char *keys, const struct grammar *g, const char *cfgkey)
{
	if (!check(o, keys, g, cfgkey))
		return false;
	if (*keys)
		buf_printf(&o->b, "%s%s", o->b.len ? "," : "", keys);
	return true;
}

void qopt_free(struct qopt *o)
{
	buf_free(&o->b);
	free(o->err);
	free(o);
}

char *qopt_finish(struct qopt *o, char **err)
{
	char *s = o->b.s ? o->b.s : xstrdup("");
	if (o->err) {
		free(s);
		*err = o->err;
		s = NULL;
	}
	free(o);
	return s;
}
