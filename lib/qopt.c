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
	char *v = NULL;
	if (vasprintf(&v, fmt, ap) < 0)
		v = NULL;
	va_end(ap);
	qopt_add(o, key, v ? v : "");
	free(v);
}

bool qopt_add_checked(struct qopt *o, const char *key, const char *value, const struct grammar *g,
		      const char *cfgkey)
{
	if (!g->valid(value)) {
		if (!o->err)
			o->err = xasprintf("%s: '%s' is not %s", cfgkey, value, g->what);
		return false;
	}
	qopt_add(o, key, value);
	return true;
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
