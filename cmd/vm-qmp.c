/* vm-qmp: talk QMP to a running VM (UTM's UTMQemuManager, as a tool).
 *
 * One-shot commands, a pipelined JSON-lines mode, event streaming, and a
 * REPL with completion and argument checks taken from the running QEMU's
 * own schema (query-qmp-schema). */
#include <errno.h>
#include <fcntl.h>
#include <histedit.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "argv.h"
#include "bundle.h"
#include "qmp.h"
#include "qmp_args.h"
#include "tool.h"
#include "runtime.h"
#include "util.h"

static const struct cli_option options[] = {
    CLI_VALUE('s', "socket", "PATH", "talk to this QMP socket; no BUNDLE is given"),
    CLI_VALUE('a', "args", "JSON", "the command's arguments as one JSON object"),
    CLI_VALUE('H', "hmp", "LINE", "run a human monitor command and print its text"),
    CLI_FLAG('e', "events", "print events as JSON lines until interrupted"),
    CLI_VALUE('w', "wait-event", "NAME", "wait for one event NAME and print it"),
    CLI_VALUE('t', "timeout", "S", "give up after S seconds (0: no timeout, wait forever);\n"
				   "exit status 3"),
    CLI_FLAG('p', "pretty", "indented JSON (the default on a terminal)"),
    CLI_FLAG('c', "compact", "one-line JSON (the default in a pipe)"),
    CLI_FLAG('q', "quiet", "do not print return values"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-qmp [options] BUNDLE COMMAND [KEY=VALUE ...]\n"
	     "       vm-qmp [options] BUNDLE -\n"
	     "       vm-qmp [options] BUNDLE --hmp 'COMMAND LINE'\n"
	     "       vm-qmp [options] BUNDLE --events\n"
	     "       vm-qmp [options] BUNDLE --wait-event NAME [COMMAND [KEY=VALUE ...]]\n"
	     "       vm-qmp [options] BUNDLE              (a REPL on a terminal)\n",
    .options = options,
};

#define DEFAULT_TIMEOUT_MS 30000
/* QEMU greets at once; silence means another client holds the monitor. */
#define CONNECT_TIMEOUT_MS 10000
/* how long the session monitor gets to greet before qmp.sock is used */
#define SESSION_TRY_MS 1000

static int timeout_ms = DEFAULT_TIMEOUT_MS; /* CLI_FOREVER: none */
static bool timeout_set;
static bool pretty;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* HMP text as Unix text: QEMU ends its lines with \r\n. */
static void put_hmp_text(FILE *f, const char *s)
{
	for (; *s; s++)
		if (!(s[0] == '\r' && s[1] == '\n'))
			putc(*s, f);
}

/* ---- one-shot, HMP, events ---- */

static int run_oneshot(struct qmp *q, int argc, char **argv, const char *args_json)
{
	char *err = NULL;
	struct json_object *args = NULL, *ret = NULL;

	if (args_json) {
		enum json_tokener_error jerr;
		args = json_tokener_parse_verbose(args_json, &jerr);
		if (!json_object_is_type(args, json_type_object))
			vm_errx(EXIT_USAGE, "--args: expected a JSON object%s%s",
				args ? "" : ": ", args ? "" : json_tokener_error_desc(jerr));
	}
	for (int i = 1; i < argc; i++) {
		if (!args)
			args = json_object_new_object();
		if (qmp_args_add(args, argv[i], false, &err) < 0)
			vm_errx(EXIT_USAGE, "%s", err);
	}
	int r = qmp_execute(q, argv[0], args, timeout_ms, &ret, &err);
	json_object_put(args);
	if (r < 0) {
		int status = qmp_last_was_timeout(q) ? EXIT_TIMEOUT : EXIT_FAIL;
		vm_warnx("%s", err);
		free(err);
		return status;
	}
	if (!vm_quiet) {
		if (strcmp(argv[0], "human-monitor-command") == 0 &&
		    json_object_is_type(ret, json_type_string) && pretty)
			put_hmp_text(stdout, json_object_get_string(ret));
		else
			print_json(stdout, ret, pretty ? CLI_JSON_PRETTY : CLI_JSON_COMPACT);
	}
	json_object_put(ret);
	return EXIT_OK;
}

static int run_hmp(struct qmp *q, const char *line)
{
	char *out = NULL, *err = NULL;
	if (qmp_hmp(q, line, timeout_ms, &out, &err) < 0) {
		int status = qmp_last_was_timeout(q) ? EXIT_TIMEOUT : EXIT_FAIL;
		vm_warnx("%s", err);
		free(err);
		return status;
	}
	/* HMP reports failure only in its text (UTM looks for "Error" too) */
	int status = EXIT_OK;
	if (has_prefix(out, "Error") || has_prefix(out, "unknown command")) {
		size_t n = strcspn(out, "\r\n");
		vm_warnx("%.*s", (int)n, out);
		status = EXIT_FAIL;
	} else if (!vm_quiet) {
		put_hmp_text(stdout, out);
	}
	free(out);
	return status;
}

static int run_events(struct qmp *q)
{
	char *err = NULL;
	struct json_object *ev;
	long long end = timeout_set && timeout_ms >= 0 ? mono_ms() + timeout_ms : -1;
	for (;;) {
		int wait = -1;
		if (end >= 0) {
			long long now = mono_ms();
			wait = now >= end ? 0 : (int)(end - now);
		}
		int r = qmp_next_event(q, wait, &ev, &err);
		if (r == 0)
			return EXIT_OK; /* --timeout ends the stream */
		if (r < 0) {
			/* QEMU going away ends the stream (lib/qmp.c's words for a
			 * clean end of file); anything else is a failure */
			int status = strcmp(err, "QMP connection closed") == 0 ? EXIT_OK : EXIT_FAIL;
			if (status)
				vm_warnx("%s", err);
			free(err);
			return status;
		}
		print_json(stdout, ev, CLI_JSON_COMPACT);
		json_object_put(ev);
		if (fflush(stdout) == EOF)
			vm_err(EXIT_FAIL, "stdout");
	}
}

static int run_wait_event(struct qmp *q, const char *name, int argc, char **argv,
			  const char *args_json)
{
	char *err = NULL;
	struct json_object *ev;

	/* a command first (e.g. "stop" for STOP): events it causes are queued
	 * from the moment we connected, so none is missed */
	if (argc > 0) {
		bool quiet = vm_quiet;
		vm_quiet = true;
		int st = run_oneshot(q, argc, argv, args_json);
		vm_quiet = quiet;
		if (st)
			return st;
	}
	int r = qmp_wait_event(q, name, timeout_set ? timeout_ms : -1, &ev, &err);
	if (r == 0) {
		vm_warnx("timed out waiting for event %s", name);
		return EXIT_TIMEOUT;
	}
	if (r < 0) {
		vm_warnx("waiting for event %s: %s", name, err);
		free(err);
		return EXIT_FAIL;
	}
	if (!vm_quiet)
		print_json(stdout, ev, pretty ? CLI_JSON_PRETTY : CLI_JSON_COMPACT);
	json_object_put(ev);
	return EXIT_OK;
}

/* ---- pipe mode: one command a line in, one reply a line out, in order ---- */

/* Commands in flight at most: QEMU takes about 0.2 ms a command under TCG,
 * so this keeps it busy for a while, and a long input is not all read into
 * memory ahead of its replies. The window is topped up once half of it has
 * been answered: a few large sends rather than one a reply. */
#ifndef PIPE_WINDOW
#define PIPE_WINDOW 2048
#endif
/* With at least this many in flight, replies are read in batches, at most
 * every PIPE_BATCH_US: QEMU has plenty queued, and waking once a reply (and
 * the reader of our output with us) would take CPU from QEMU on a busy
 * machine. A short exchange (a coprocess waiting on each reply) never waits. */
#ifndef PIPE_BATCH
#define PIPE_BATCH 32
#endif
#ifndef PIPE_BATCH_US
#define PIPE_BATCH_US 1000
#endif

struct pent {
	long id;            /* request id, or -1 for a line that never went out */
	bool user_id;       /* the line had its own "id": keep it in the reply */
	char *error;        /* why the line was not sent */
	long long deadline; /* ms, -1 none */
	size_t lineno;
};

struct pipeq {
	struct pent *v;
	size_t head, n, cap;
};

static void pipeq_push(struct pipeq *pq, struct pent e)
{
	if (pq->n == pq->cap && pq->head > 0 && pq->head >= pq->cap / 2) {
		memmove(pq->v, pq->v + pq->head, (pq->n - pq->head) * sizeof(*pq->v));
		pq->n -= pq->head;
		pq->head = 0;
	}
	if (pq->n == pq->cap) {
		pq->cap = pq->cap ? pq->cap * 2 : 64;
		pq->v = xrealloc(pq->v, pq->cap * sizeof(*pq->v));
	}
	pq->v[pq->n++] = e;
}

/* The line waited on: where a lost connection is reported. */
static size_t pipe_waiting_line(const struct pipeq *pq, size_t lineno)
{
	return pq->head < pq->n ? pq->v[pq->head].lineno : lineno;
}

/* Queue one line's command; qmp_flush sends all queued at once. */
static void pipe_line(struct qmp *q, char *line, size_t lineno, struct pipeq *pq)
{
	char *err = NULL;
	struct json_object *cmd, *v;

	size_t len = strlen(line);
	if (len && line[len - 1] == '\r')
		line[len - 1] = '\0';
	cmd = qmp_parse_line(line, NULL, &err);
	if (!cmd && !err)
		return; /* blank or comment */
	struct pent e = {.id = -1, .lineno = lineno, .deadline = -1};
	if (cmd) {
		e.user_id = json_object_object_get_ex(cmd, "id", &v);
		e.id = qmp_queue_object(q, cmd, &err);
		json_object_put(cmd);
		if (e.id < 0 && qmp_is_closed(q))
			vm_errx(EXIT_FAIL, "line %zu: %s", pipe_waiting_line(pq, lineno), err);
		if (timeout_ms >= 0)
			e.deadline = mono_ms() + timeout_ms;
	}
	if (e.id < 0) {
		e.error = xasprintf("line %zu: %s", lineno, err);
		vm_warnx("%s", e.error);
	}
	free(err);
	pipeq_push(pq, e);
}

/* Queue the complete lines of in (at EOF the last one too) while the
 * window has room; what is left stays in in. */
static void pipe_take_lines(struct qmp *q, struct buf *in, bool eof, size_t *lineno, struct pipeq *pq)
{
	size_t start = 0;
	if (qmp_in_flight(q) > PIPE_WINDOW / 2)
		return;
	while (start < in->len && qmp_in_flight(q) < PIPE_WINDOW) {
		char *nl = memchr(in->s + start, '\n', in->len - start);
		if (!nl && !eof)
			break;
		size_t end = nl ? (size_t)(nl - in->s) : in->len;
		in->s[end] = '\0';
		pipe_line(q, in->s + start, ++*lineno, pq);
		start = nl ? end + 1 : in->len;
	}
	if (!in->s)
		return; /* nothing read yet */
	memmove(in->s, in->s + start, in->len - start);
	in->len -= start;
	in->s[in->len] = '\0';
}

/* Print the replies that are in, in the order of the lines; false when
 * every line has had its reply. */
static bool pipe_print_replies(struct qmp *q, struct pipeq *pq, bool *failed)
{
	while (pq->head < pq->n) {
		struct pent *e = &pq->v[pq->head];
		struct json_object *msg = NULL;
		if (e->id < 0) {
			msg = json_object_new_object();
			struct json_object *er = json_object_new_object();
			json_object_object_add(er, "class", json_object_new_string("GenericError"));
			json_object_object_add(er, "desc", json_object_new_string(e->error));
			json_object_object_add(msg, "error", er);
			free(e->error);
		} else {
			char *err = NULL;
			if (qmp_read_reply(q, e->id, 0, &msg, &err) < 0) {
				if (qmp_is_closed(q))
					vm_errx(EXIT_FAIL, "line %zu: %s", e->lineno, err);
				free(err);
				break;
			}
			if (!e->user_id)
				json_object_object_del(msg, "id");
		}
		if (json_object_object_get_ex(msg, "error", NULL))
			*failed = true;
		print_json(stdout, msg, CLI_JSON_COMPACT);
		json_object_put(msg);
		pq->head++;
	}
	if (pq->head == pq->n)
		pq->head = pq->n = 0;
	return pq->n > 0;
}

static int run_pipe(struct qmp *q)
{
	struct pipeq pq = {0};
	struct buf in = {0};
	size_t lineno = 0;
	bool in_eof = false, failed = false;
	char *chunk = xmalloc(65536);

	qmp_set_ordered(q, true); /* replies come in order; ids cost throughput */
	for (;;) {
		char *err = NULL;
		pipe_take_lines(q, &in, in_eof, &lineno, &pq);
		/* one send for all the lines just queued */
		if (qmp_unsent(q) && qmp_flush(q, &err) < 0)
			vm_errx(EXIT_FAIL, "line %zu: %s", pipe_waiting_line(&pq, lineno), err);
		bool waiting = pipe_print_replies(q, &pq, &failed);
		if (in_eof && in.len == 0 && !waiting)
			break;
		/* Every reply may be in by now (a slow reader, a fast QEMU): lines
		 * that wait for room in the window go out before we sleep in poll,
		 * or nothing would wake us (a hang, seen under valgrind). */
		if (in.len && qmp_in_flight(q) <= PIPE_WINDOW / 2 && (in_eof || memchr(in.s, '\n', in.len)))
			continue;

		if (fflush(stdout) == EOF)
			vm_err(EXIT_FAIL, "stdout");
		if (qmp_in_flight(q) >= PIPE_BATCH && !qmp_unsent(q)) {
			struct timespec ts = {0, PIPE_BATCH_US * 1000L};
			nanosleep(&ts, NULL);
		}
		struct pollfd pfd[2] = {{.fd = qmp_fd(q), .events = POLLIN | (qmp_unsent(q) ? POLLOUT : 0)},
					{.fd = STDIN_FILENO, .events = POLLIN}};
		int wait = -1;
		if (pq.head < pq.n && pq.v[pq.head].deadline >= 0) {
			long long left = pq.v[pq.head].deadline - mono_ms();
			wait = left < 0 ? 0 : (int)left;
		}
		/* stdin is read while little of it waits (a line longer than
		 * that is read to its end), a closed connection is noticed
		 * through the replies above */
		bool read_in = !in_eof && (in.len < 65536 || !memchr(in.s, '\n', in.len));
		bool closed = qmp_is_closed(q);
		struct pollfd *p = closed ? pfd + 1 : pfd;
		nfds_t np = (closed ? 0 : 1) + (read_in ? 1 : 0);
		if (np == 0)
			vm_errx(EXIT_FAIL, "QMP connection closed");
		int r = poll(p, np, wait);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			vm_err(EXIT_FAIL, "poll");
		}
		if (r == 0)
			vm_errx(EXIT_TIMEOUT, "line %zu: timed out waiting for a QMP reply",
				pq.v[pq.head].lineno);
		if (read_in && pfd[1].revents) {
			ssize_t n = read(STDIN_FILENO, chunk, 65536);
			if (n < 0 && errno != EINTR && errno != EAGAIN)
				vm_err(EXIT_FAIL, "stdin");
			if (n == 0)
				in_eof = true;
			if (n > 0)
				buf_add(&in, chunk, (size_t)n);
		}
		if (!closed && (pfd[0].revents & POLLIN))
			qmp_poll(q, 0, NULL); /* a close shows up when a reply is read */
	}
	free(chunk);
	buf_free(&in);
	free(pq.v);
	return failed ? EXIT_FAIL : EXIT_OK;
}

/* ---- the REPL ---- */

static volatile sig_atomic_t got_sigint, got_sigwinch;

static void on_signal(int sig)
{
	if (sig == SIGINT)
		got_sigint = 1;
	else
		got_sigwinch = 1;
}

static struct repl {
	struct qmp *q;
	struct qmp_schema *schema;
	EditLine *el;
	History *hist;
	char *histfile;
	char *prompt;
	bool cancelled, closed;
} R;

static char *prompt_fn(EditLine *e)
{
	(void)e;
	return R.prompt;
}

/* Display columns of s[0..n): what the terminal shows, for moving over it. */
static size_t columns(const char *s, size_t n)
{
	mbstate_t ps = {0};
	size_t w = 0;
	while (n > 0) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, n, &ps);
		if (k == (size_t)-1 || k == (size_t)-2) {
			memset(&ps, 0, sizeof(ps));
			k = 1;
			wc = L'?';
		} else if (k == 0) {
			k = 1;
		}
		int cw = wcwidth(wc);
		w += cw > 0 ? (size_t)cw : 0;
		s += k;
		n -= k;
	}
	return w;
}

static size_t term_cols(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* Where the line being edited is on the screen: rows above and below the
 * cursor, and the column where it ends. */
static void input_rows(size_t *above, size_t *below, size_t *endcol)
{
	const LineInfo *li = el_line(R.el);
	size_t cols = term_cols(), pw = columns(R.prompt, strlen(R.prompt));
	size_t cur = pw + columns(li->buffer, (size_t)(li->cursor - li->buffer));
	size_t end = pw + columns(li->buffer, (size_t)(li->lastchar - li->buffer));
	*above = cur / cols;
	*below = end / cols - *above;
	*endcol = end % cols;
}

/* Wipe the line being typed from the screen, leaving the cursor at column 0. */
static void erase_input(void)
{
	size_t above, below, endcol;
	input_rows(&above, &below, &endcol);
	fputs("\r", stdout);
	if (above)
		printf("\033[%zuA", above);
	fputs("\033[J", stdout);
}

/* To the end of the line being typed. */
static void goto_input_end(void)
{
	size_t above, below, endcol;
	input_rows(&above, &below, &endcol);
	if (below)
		printf("\033[%zuB", below);
	fputs("\r", stdout);
	if (endcol)
		printf("\033[%zuC", endcol);
}

static void print_events(bool typing)
{
	struct json_object *ev;
	bool any = false;
	while (qmp_next_event(R.q, 0, &ev, NULL) == 1) {
		if (typing && !any)
			erase_input();
		any = true;
		print_json(stdout, ev, CLI_JSON_COMPACT);
		json_object_put(ev);
	}
	if (qmp_is_closed(R.q) && !R.closed) {
		if (typing && !any)
			erase_input();
		any = true;
		R.closed = true;
		vm_warnx("QMP connection closed");
	}
	fflush(stdout);
	if (typing && any && !R.closed)
		el_set(R.el, EL_REFRESH); /* prompt and line, as they were */
}

/* libedit's input: a key from the terminal, printing events while waiting. */
static int getc_fn(EditLine *e, wchar_t *wc)
{
	mbstate_t ps = {0};
	for (;;) {
		struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
					{.fd = qmp_fd(R.q), .events = POLLIN}};
		int r = poll(pfd, R.closed ? 1 : 2, -1);
		if (r < 0) {
			if (errno != EINTR)
				return -1;
			if (got_sigwinch) {
				got_sigwinch = 0;
				el_resize(e);
			}
			if (got_sigint) {
				got_sigint = 0;
				*wc = 3; /* ^C, bound to vm-cancel */
				return 1;
			}
			continue;
		}
		if (!R.closed && pfd[1].revents) {
			qmp_poll(R.q, 0, NULL);
			print_events(true);
			if (R.closed)
				return 0; /* QEMU is gone: end the session */
		}
		if (!pfd[0].revents)
			continue;
		char c;
		ssize_t n = read(STDIN_FILENO, &c, 1);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		size_t k = mbrtowc(wc, &c, 1, &ps);
		if (k == (size_t)-2)
			continue; /* more bytes of this character to come */
		if (k == (size_t)-1) {
			memset(&ps, 0, sizeof(ps));
			*wc = (unsigned char)c;
		}
		return 1;
	}
}

static unsigned char cancel_fn(EditLine *e, int ch)
{
	(void)e, (void)ch;
	goto_input_end();
	fputs("^C\r\n", stdout);
	fflush(stdout);
	R.cancelled = true;
	return CC_NEWLINE;
}

static void complete_words(const char *before, const char *word, struct strv *out)
{
	/* the first word is the command; the rest are its arguments */
	const char *p = before;
	while (*p == ' ' || *p == '\t')
		p++;
	if (p == word) {
		const struct strv *cmds = qmp_schema_commands(R.schema);
		if (has_prefix("help", word))
			strv_push(out, "help ");
		for (size_t i = 0; i < cmds->n; i++)
			if (has_prefix(cmds->v[i], word))
				strv_pushf(out, "%s ", cmds->v[i]);
		return;
	}
	size_t n = strcspn(p, " \t");
	char *cmd = strndup(p, n);
	if (!cmd)
		vm_errx(EXIT_FAIL, "out of memory");
	if (strcmp(cmd, "help") == 0) {
		const struct strv *cmds = qmp_schema_commands(R.schema);
		for (size_t i = 0; i < cmds->n; i++)
			if (has_prefix(cmds->v[i], word))
				strv_pushf(out, "%s ", cmds->v[i]);
	} else {
		qmp_schema_complete(R.schema, cmd, word, out);
		/* a finished value ends the word */
		for (size_t i = 0; i < out->n; i++) {
			size_t l = strlen(out->v[i]);
			if (l && out->v[i][l - 1] != '=' && out->v[i][l - 1] != '.') {
				char *s = xasprintf("%s ", out->v[i]);
				free(out->v[i]);
				out->v[i] = s;
			}
		}
	}
	free(cmd);
}

static unsigned char complete_fn(EditLine *e, int ch)
{
	(void)ch;
	if (!R.schema)
		return CC_ERROR;
	const LineInfo *li = el_line(e);
	char *before = strndup(li->buffer, (size_t)(li->cursor - li->buffer));
	if (!before)
		vm_errx(EXIT_FAIL, "out of memory");
	char *word = before + strlen(before);
	while (word > before && word[-1] != ' ' && word[-1] != '\t')
		word--;
	struct strv c = {0};
	complete_words(before, word, &c);
	unsigned char ret = CC_ERROR;
	size_t wl = strlen(word);
	if (c.n > 0) {
		/* the longest common prefix: what can be typed for the user */
		size_t lcp = strlen(c.v[0]);
		for (size_t i = 1; i < c.n; i++) {
			size_t k = 0;
			while (k < lcp && c.v[i][k] == c.v[0][k])
				k++;
			lcp = k;
		}
		if (c.n > 1 && lcp > 0 && c.v[0][lcp - 1] == ' ')
			lcp--;
		if (lcp > wl) {
			char *ins = strndup(c.v[0] + wl, lcp - wl);
			if (!ins)
				vm_errx(EXIT_FAIL, "out of memory");
			el_insertstr(e, ins);
			free(ins);
			ret = CC_REFRESH;
		} else if (c.n > 1) {
			/* nothing more to type: show the choices under the line */
			size_t w = 0, cols = term_cols();
			for (size_t i = 0; i < c.n; i++)
				if (strlen(c.v[i]) > w)
					w = strlen(c.v[i]);
			size_t per = cols / (w + 2) ? cols / (w + 2) : 1;
			goto_input_end();
			fputs("\r\n", stdout);
			for (size_t i = 0; i < c.n; i++) {
				size_t l = strlen(c.v[i]);
				if (l && c.v[i][l - 1] == ' ')
					c.v[i][l - 1] = '\0';
				printf("%-*s%s", (int)w, c.v[i], (i + 1) % per && i + 1 < c.n ? "  " : "\r\n");
			}
			fflush(stdout);
			ret = CC_REDISPLAY;
		}
	}
	strv_free(&c);
	free(before);
	return ret;
}

static void repl_help(const char *arg)
{
	struct buf b = {0};
	if (!*arg) {
		puts("COMMAND [KEY=VALUE ...]   run a QMP command; values are JSON where they are JSON,\n"
		     "                          'quoted' values are strings, a.b=1 nests\n"
		     "{\"execute\": ...}          a command as QMP takes it\n"
		     "help COMMAND              its arguments and what it returns\n"
		     "Tab completes commands, arguments and values; Ctrl-D leaves.");
		if (R.schema) {
			const struct strv *cmds = qmp_schema_commands(R.schema);
			printf("commands (%zu):", cmds->n);
			for (size_t i = 0; i < cmds->n; i++)
				printf("%s%s", i % 4 ? "  " : "\n  ", cmds->v[i]);
			putchar('\n');
		}
		return;
	}
	if (!R.schema)
		vm_warnx("help: this QEMU does not describe its commands");
	else if (qmp_schema_describe(R.schema, arg, &b) < 0)
		vm_warnx("help: unknown command '%s'", arg);
	else
		fputs(b.s, stdout);
	buf_free(&b);
}

static void repl_line(const char *line)
{
	char *err = NULL;
	bool shorthand;
	struct json_object *cmd, *v, *args = NULL, *msg = NULL;

	while (*line == ' ' || *line == '\t')
		line++;
	if (strcmp(line, "help") == 0 || strcmp(line, "?") == 0 || has_prefix(line, "help ")) {
		const char *a = line[0] == '?' ? "" : line + 4;
		while (*a == ' ' || *a == '\t')
			a++;
		char *arg = xstrdup(a);
		arg[strcspn(arg, " \t")] = '\0';
		repl_help(arg);
		free(arg);
		return;
	}
	cmd = qmp_parse_line(line, &shorthand, &err);
	if (!cmd) {
		if (err)
			vm_warnx("%s", err);
		free(err);
		return;
	}
	json_object_object_get_ex(cmd, "execute", &v);
	const char *name = json_object_get_string(v);
	json_object_object_get_ex(cmd, "arguments", &args);
	if (R.schema && v && qmp_schema_check(R.schema, name, args, shorthand, &err) < 0) {
		vm_warnx("%s", err); /* nothing was sent */
		goto out;
	}
	long id = qmp_send_object(R.q, cmd, &err);
	if (id < 0 || qmp_read_reply(R.q, id, timeout_ms, &msg, &err) < 0) {
		if (got_sigint)
			putchar('\n'); /* past the ^C the terminal echoed */
		fflush(stdout);
		vm_warnx("%s", err);
		if (id >= 0)
			qmp_abandon(R.q, id);
		goto out;
	}
	char *qerr = qmp_error_string(msg);
	if (qerr) {
		vm_warnx("%s", qerr);
		free(qerr);
	} else if (json_object_object_get_ex(msg, "return", &v)) {
		if (name && strcmp(name, "human-monitor-command") == 0 &&
		    json_object_is_type(v, json_type_string))
			put_hmp_text(stdout, json_object_get_string(v));
		else if (!vm_quiet)
			print_json(stdout, v, pretty ? CLI_JSON_PRETTY : CLI_JSON_COMPACT);
	}
out:
	free(err);
	json_object_put(msg);
	json_object_put(cmd);
}

static char *history_path(void)
{
	const char *state = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char *dir;
	if (state && *state == '/')
		dir = path_join(state, "utmkit");
	else if (home && *home)
		dir = xasprintf("%s/.local/state/utmkit", home);
	else
		return NULL;
	if (mkdir_p(dir, 0700) < 0) {
		vm_info("%s: %s; no history", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	char *p = path_join(dir, "qmp_history");
	free(dir);
	return p;
}

static void history_save(void)
{
	HistEvent ev;
	if (!R.histfile)
		return;
	/* commands may hold secrets (object-add secret data=...): 0600 */
	int fd = open(R.histfile, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	history(R.hist, &ev, H_SAVE, R.histfile);
}

static int run_repl(struct qmp *q, const char *name)
{
	char *err = NULL;
	struct json_object *ret = NULL, *v;
	HistEvent hev;

	setlocale(LC_CTYPE, "");
	R.q = q;
	R.prompt = xasprintf("(%s) ", name);
	if (qmp_execute(q, "query-qmp-schema", NULL, timeout_ms, &ret, &err) == 0) {
		R.schema = qmp_schema_new(ret);
		json_object_put(ret);
	} else {
		vm_warnx("query-qmp-schema: %s; no completion or argument checks", err);
		free(err);
	}
	if (!vm_quiet) {
		struct json_object *g = qmp_greeting(q), *ver = NULL;
		if (json_object_object_get_ex(g, "QMP", &v) &&
		    json_object_object_get_ex(v, "version", &v) &&
		    json_object_object_get_ex(v, "qemu", &ver)) {
			struct json_object *ma, *mi, *mc;
			json_object_object_get_ex(ver, "major", &ma);
			json_object_object_get_ex(ver, "minor", &mi);
			json_object_object_get_ex(ver, "micro", &mc);
			printf("QEMU %d.%d.%d; 'help' lists commands, Tab completes, Ctrl-D leaves\n",
			       json_object_get_int(ma), json_object_get_int(mi),
			       json_object_get_int(mc));
		}
	}

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	qmp_set_interrupt(q, &got_sigint);

	R.hist = history_init();
	history(R.hist, &hev, H_SETSIZE, 1000);
	history(R.hist, &hev, H_SETUNIQUE, 1);
	R.histfile = history_path();
	if (R.histfile)
		history(R.hist, &hev, H_LOAD, R.histfile);
	R.el = el_init(getprogname(), stdin, stdout, stderr);
	if (!R.el)
		vm_errx(EXIT_FAIL, "cannot set up line editing");
	el_set(R.el, EL_EDITOR, "emacs");
	el_set(R.el, EL_PROMPT, prompt_fn);
	el_set(R.el, EL_HIST, history, R.hist);
	el_set(R.el, EL_GETCFN, getc_fn);
	el_set(R.el, EL_ADDFN, "vm-complete", "complete a command or argument", complete_fn);
	el_set(R.el, EL_ADDFN, "vm-cancel", "drop the line", cancel_fn);
	el_set(R.el, EL_BIND, "^I", "vm-complete", NULL);
	el_set(R.el, EL_BIND, "^C", "vm-cancel", NULL);
	el_source(R.el, NULL); /* ~/.editrc can rebind */

	for (;;) {
		print_events(false);
		if (R.closed)
			break;
		int n;
		const char *line = el_gets(R.el, &n);
		if (!line) {
			if (!R.closed)
				putchar('\n'); /* Ctrl-D: leave the shell's prompt a line of its own */
			break;
		}
		if (R.cancelled) {
			R.cancelled = false;
			continue;
		}
		char *l = xstrdup(line);
		l[strcspn(l, "\r\n")] = '\0';
		if (l[strspn(l, " \t")]) {
			history(R.hist, &hev, H_ENTER, l);
			history_save();
			got_sigint = 0;
			repl_line(l);
		}
		free(l);
		fflush(stdout);
	}
	el_end(R.el);
	history_end(R.hist);
	free(R.histfile);
	free(R.prompt);
	qmp_schema_free(R.schema);
	return EXIT_OK;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	const char *sock_opt = NULL, *args_json = NULL, *hmp = NULL, *wait_event = NULL;
	bool events = false;
	int want_pretty = -1, ch;

	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case 'a': args_json = optarg; break;
		case 'c': want_pretty = 0; break;
		case 'e': events = true; break;
		case 'H': hmp = optarg; break;
		case 'p': want_pretty = 1; break;
		case 's': sock_opt = optarg; break;
		case 't':
			timeout_ms = tool_seconds("--timeout", optarg);
			timeout_set = true;
			break;
		case 'w': wait_event = optarg; break;
		}
	}
	argc -= optind;
	argv += optind;
	if (!sock_opt && argc < 1)
		tool_usage_error(&cli);
	const char *bundle_arg = sock_opt ? NULL : argv[0];
	if (!sock_opt) {
		argc--;
		argv++;
	}
	/* the modes exclude each other */
	if ((events + !!hmp + !!wait_event) > 1 || ((events || hmp) && argc > 0) ||
	    (args_json && argc == 0) || (argc > 1 && strcmp(argv[0], "-") == 0) ||
	    (wait_event && argc > 0 && strcmp(argv[0], "-") == 0))
		tool_usage_error(&cli);
	pretty = want_pretty >= 0 ? want_pretty : isatty(STDOUT_FILENO);

	struct bundle b;
	char *sock, *name, *rtdir = NULL;
	if (bundle_arg) {
		bundle_open_or_die(&b, bundle_arg);
		rtdir = tool_runtime_dir(&b);
		sock = path_join(rtdir, RT_QMP);
		name = bundle_display_name(b.path);
	} else {
		sock = xstrdup(sock_opt);
		name = xstrdup("qmp");
	}

	char *err = NULL;
	int ctimeout = timeout_set ? timeout_ms : CONNECT_TIMEOUT_MS;
	struct qmp *q = NULL;
	/* A client that stays takes the session monitor, leaving qmp.sock to
	 * vm-stop, vm-ls and vm-disk; if another session holds it (it does not
	 * greet), or QEMU has none, qmp.sock it is. */
	bool stays = events || wait_event || argc == 0 || strcmp(argv[0], "-") == 0;
	if (bundle_arg && stays) {
		char *ssock = path_join(rtdir, RT_QMP_SESSION);
		struct stat st;
		if (stat(ssock, &st) == 0 && S_ISSOCK(st.st_mode)) {
			int t = ctimeout >= 0 && ctimeout < SESSION_TRY_MS ? ctimeout : SESSION_TRY_MS;
			q = runtime_qmp_connect(rtdir, RT_QMP_SESSION, t, &err);
			if (!q) {
				vm_info("%s: %s; trying %s", name, err, RT_QMP);
				free(err);
				err = NULL;
			}
		}
		free(ssock);
	}
	if (!q)
		q = rtdir ? runtime_qmp_connect(rtdir, NULL, ctimeout, &err) : qmp_connect(sock, ctimeout, &err);
	if (!q) {
		int e = errno;
		if (bundle_arg && (e == ENOENT || e == ECONNREFUSED))
			vm_errx(EXIT_FAIL, "%s: not running", name);
		if (e == ETIMEDOUT || e == EPROTO)
			vm_errx(e == ETIMEDOUT ? EXIT_TIMEOUT : EXIT_FAIL, "%s: %s",
				bundle_arg ? name : sock, err);
		vm_errx(EXIT_FAIL, "%s", err);
	}

	int status;
	if (hmp)
		status = run_hmp(q, hmp);
	else if (events)
		status = run_events(q);
	else if (wait_event)
		status = run_wait_event(q, wait_event, argc, argv, args_json);
	else if (argc > 0 && strcmp(argv[0], "-") != 0)
		status = run_oneshot(q, argc, argv, args_json);
	else if (argc == 0 && isatty(STDIN_FILENO))
		status = run_repl(q, name);
	else
		status = run_pipe(q);

	qmp_close(q);
	if (bundle_arg)
		bundle_close(&b);
	free(sock);
	free(rtdir);
	free(name);
	return status;
}
