/* A QMP client (UTM's UTMQemuManager + UTMJSONStream), on json-c.
 *
 * Bytes from the socket go straight into an incremental json_tokener, which
 * keeps partial values across reads, so a message split over any number of
 * reads, several messages in one read and a megabyte reply all take the same
 * path. Complete messages are sorted at once: the greeting is kept, events go
 * to a FIFO, replies are stashed by id until someone asks for them. Every wait
 * is a poll() against a monotonic deadline. */
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* QMP nests a few levels; qom-get of a custom property could nest more. */
#define QMP_MAX_DEPTH 128
/* A tool that never reads events must not grow without bound: past this the
 * oldest queued events are dropped. */
#define QMP_MAX_EVENTS 4096
/* ... and past this many bytes of them (as read: their objects take a few
 * times more), a peer sending large events faster than they are read. */
#define QMP_MAX_EVENT_BYTES (16u << 20)
/* One message: QEMU's own replies are far below this; a peer sending an
 * endless value (a greeting with no end) breaks the connection here. */
#define QMP_MAX_MESSAGE (16u << 20)
#define QMP_MAX_AGENT_MESSAGE (32u << 20)
#define QMP_READ_CHUNK 65536

struct msg {
	long id; /* replies and requests */
	struct json_object *obj;
	size_t size; /* events: bytes on the wire */
	unsigned flags; /* requests: PEND_* */
};

/* A request given up on stays in line until its reply comes, so a reply
 * without an id is still matched to the right request. */
#define PEND_ABANDONED 1u
/* qmp_capabilities, not waited for: a refusal breaks the connection. */
#define PEND_CHECK 2u

struct msgq {
	struct msg *v;
	size_t head, n, cap; /* live entries are v[head .. n) */
};

struct qmp {
	int fd;
	int timeout_ms; /* for sends, which have no timeout of their own */
	json_tokener *tok;
	char *rbuf; /* QMP_READ_CHUNK bytes: the tokener parses them where they land */
	/* commands queued (qmp_queue_object) and not yet taken by the socket:
	 * out.s[out_off .. out.len) */
	struct buf out;
	size_t out_off;
	bool partial; /* the tokener holds part of a message */
	size_t msg_bytes;   /* bytes fed since the last complete message */
	size_t event_bytes; /* sum of the queued events' sizes */
	/* UTF-8 check of the stream, across reads: continuation bytes still
	 * due, and the range the next one must be in */
	unsigned utf8_need;
	unsigned char utf8_lo, utf8_hi;
	struct json_object *greeting;
	long next_id;
	bool ordered; /* no ids on the wire: replies are matched by order */
	/* requests sent whose reply has not come, in send order; obj is the id
	 * the caller put in a raw object, to be restored in the reply */
	struct msgq pend;
	struct msgq replies;
	struct msgq events;
	char *broken; /* set once the connection is unusable: the error to report */
	/* plain: no greeting, no negotiation, and the byte 0xFF resets the
	 * reader (the guest agent's framing, qmp_open_plain); skip: drop what
	 * comes until the next 0xFF (qmp_resync) */
	bool plain, skip;
	bool last_qmp_error, last_timeout;
	volatile sig_atomic_t *intr;
};

/* timeout_ms < 0: no deadline (-1). */
static long long deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : (long long)now_ms() + timeout_ms;
}

static int remaining(long long deadline)
{
	if (deadline < 0)
		return -1;
	long long r = deadline - (long long)now_ms();
	if (r < 0)
		return 0;
	return r > INT_MAX ? INT_MAX : (int)r;
}

static void msgq_push(struct msgq *q, long id, struct json_object *obj)
{
	if (q->n == q->cap && q->head > 0 && q->head >= q->cap / 2) {
		/* reclaim the consumed front instead of growing; only when it
		 * is half the array, so each entry is moved O(1) times */
		memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof(*q->v));
		q->n -= q->head;
		q->head = 0;
	}
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 16;
		q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
	}
	q->v[q->n++] = (struct msg){.id = id, .obj = obj};
}

static size_t msgq_len(const struct msgq *q)
{
	return q->n - q->head;
}

/* Remove and return entry i (counted from the head). */
static struct json_object *msgq_take(struct msgq *q, size_t i)
{
	size_t at = q->head + i;
	struct json_object *obj = q->v[at].obj;
	if (i == 0) {
		q->head++;
	} else {
		memmove(q->v + at, q->v + at + 1, (q->n - at - 1) * sizeof(*q->v));
		q->n--;
	}
	if (q->head == q->n)
		q->head = q->n = 0;
	return obj;
}

static void msgq_free(struct msgq *q)
{
	for (size_t i = q->head; i < q->n; i++)
		json_object_put(q->v[i].obj);
	free(q->v);
	memset(q, 0, sizeof(*q));
}

static ssize_t msgq_find(const struct msgq *q, long id)
{
	for (size_t i = 0; i < msgq_len(q); i++)
		if (q->v[q->head + i].id == id)
			return (ssize_t)i;
	return -1;
}

static ssize_t pending_find(const struct qmp *q, long id)
{
	ssize_t i = msgq_find(&q->pend, id);
	if (i >= 0 && (q->pend.v[q->pend.head + (size_t)i].flags & PEND_ABANDONED))
		return -1;
	return i;
}

static void pending_remove(struct qmp *q, size_t i)
{
	json_object_put(msgq_take(&q->pend, i));
}

static void set_broken(struct qmp *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_broken(struct qmp *q, const char *fmt, ...)
{
	if (q->broken)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&q->broken, fmt, ap) < 0)
		vm_oom();
	va_end(ap);
}

/* Sort one complete message. Takes ownership of obj. */
static struct json_object *event_take(struct qmp *q, size_t i)
{
	q->event_bytes -= q->events.v[q->events.head + i].size;
	return msgq_take(&q->events, i);
}

static void dispatch(struct qmp *q, struct json_object *obj, size_t size)
{
	struct json_object *v;

	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj); /* not a QMP message; nothing can claim it */
		return;
	}
	if (json_object_object_get_ex(obj, "QMP", NULL)) {
		if (!q->greeting)
			q->greeting = obj;
		else
			json_object_put(obj);
		return;
	}
	if (json_object_object_get_ex(obj, "event", &v) && json_object_is_type(v, json_type_string)) {
		while (msgq_len(&q->events) &&
		       (msgq_len(&q->events) >= QMP_MAX_EVENTS || q->event_bytes + size > QMP_MAX_EVENT_BYTES))
			json_object_put(event_take(q, 0));
		msgq_push(&q->events, 0, obj);
		q->events.v[q->events.n - 1].size = size;
		q->event_bytes += size;
		return;
	}
	if (!json_object_object_get_ex(obj, "return", NULL) &&
	    !json_object_object_get_ex(obj, "error", NULL)) {
		json_object_put(obj);
		return;
	}
	ssize_t i = -1;
	if (json_object_object_get_ex(obj, "id", &v)) {
		if (json_object_is_type(v, json_type_int))
			i = msgq_find(&q->pend, (long)json_object_get_int64(v));
	} else if (msgq_len(&q->pend) > 0) {
		/* QEMU handles requests in order: a reply without an id (to a
		 * request sent without one, or one it could not parse) is the
		 * oldest one's */
		i = 0;
	}
	if (i < 0) {
		json_object_put(obj); /* a stray */
		return;
	}
	struct msg *p = &q->pend.v[q->pend.head + (size_t)i];
	long id = p->id;
	unsigned flags = p->flags;
	if (p->obj)
		json_object_object_add(obj, "id", json_object_get(p->obj));
	pending_remove(q, (size_t)i);
	if (flags & PEND_CHECK) {
		char *e = qmp_error_string(obj);
		if (e)
			set_broken(q, "qmp_capabilities: %s", e);
		free(e);
	}
	if (flags & (PEND_ABANDONED | PEND_CHECK))
		json_object_put(obj);
	else
		msgq_push(&q->replies, id, obj);
}

/* JSON is UTF-8 (json-c does not check, and its own check fails on a
 * character split between reads): bytes that are not would make what
 * vm-qmp prints not JSON. */
static bool utf8_ok(struct qmp *q, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (q->utf8_need) {
			if (c < q->utf8_lo || c > q->utf8_hi)
				return false;
			q->utf8_lo = 0x80;
			q->utf8_hi = 0xbf;
			q->utf8_need--;
			continue;
		}
		if (c < 0x80)
			continue;
		q->utf8_lo = 0x80;
		q->utf8_hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			q->utf8_need = 1;
		else if (c >= 0xe0 && c <= 0xef)
			q->utf8_need = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			q->utf8_need = 3;
		else
			return false;
		if (c == 0xe0)
			q->utf8_lo = 0xa0; /* overlong */
		else if (c == 0xed)
			q->utf8_hi = 0x9f; /* surrogates */
		else if (c == 0xf0)
			q->utf8_lo = 0x90; /* overlong */
		else if (c == 0xf4)
			q->utf8_hi = 0x8f; /* past U+10FFFF */
	}
	return true;
}

static int feed_json(struct qmp *q, const char *p, size_t n);

/* Feed bytes to the tokener, dispatching each complete message. A plain
 * stream's 0xFF bytes are delimiters: the reader starts afresh after each
 * one, and after qmp_resync() nothing before the next one counts. */
static int feed(struct qmp *q, const char *p, size_t n)
{
	if (!q->plain)
		return feed_json(q, p, n);
	while (n > 0) {
		const char *ff = memchr(p, 0xFF, n);
		size_t k = ff ? (size_t)(ff - p) : n;
		if (!q->skip && k > 0 && feed_json(q, p, k) < 0)
			return -1;
		if (!ff)
			break;
		q->skip = false;
		json_tokener_reset(q->tok);
		q->partial = false;
		q->msg_bytes = 0;
		q->utf8_need = 0;
		p += k + 1;
		n -= k + 1;
	}
	return 0;
}

static int feed_json(struct qmp *q, const char *p, size_t n)
{
	if (memchr(p, '\0', n)) {
		set_broken(q, "invalid JSON from QMP peer: NUL byte");
		return -1;
	}
	if (!utf8_ok(q, (const unsigned char *)p, n)) {
		set_broken(q, "invalid JSON from QMP peer: not UTF-8");
		return -1;
	}
	while (n > 0) {
		size_t chunk = n > INT_MAX ? INT_MAX : n;
		struct json_object *obj = json_tokener_parse_ex(q->tok, p, (int)chunk);
		enum json_tokener_error jerr = json_tokener_get_error(q->tok);
		size_t used = json_tokener_get_parse_end(q->tok);
		if (obj) {
			size_t size = q->msg_bytes + used;
			q->partial = false;
			q->msg_bytes = 0;
			dispatch(q, obj, size);
		} else if (jerr == json_tokener_continue) {
			q->msg_bytes += used;
			/* a guest agent's guest-exec-status carries up to 16 MiB of
			 * output, base64: a third more */
			unsigned max = q->plain ? QMP_MAX_AGENT_MESSAGE : QMP_MAX_MESSAGE;
			if (q->msg_bytes > max) {
				set_broken(q, "a message from the %s is longer than %u MiB",
					   q->plain ? "guest agent" : "QMP peer", max >> 20);
				return -1;
			}
			/* whitespace between messages is not a partial message */
			for (size_t k = 0; k < used && !q->partial; k++)
				if (!strchr(" \t\r\n", p[k]))
					q->partial = true;
		} else {
			set_broken(q, "invalid JSON from QMP peer: %s", json_tokener_error_desc(jerr));
			return -1;
		}
		if (used == 0 && !obj)
			break; /* cannot happen, but never spin */
		p += used;
		n -= used;
	}
	return 0;
}

/* Read what the socket has; block until deadline for the first byte.
 * 1: something was read (or a signal that is not ours), 0: timeout,
 * -1: connection closed/broken/interrupted with *err. */
static int pump(struct qmp *q, long long deadline, char **err)
{
	if (q->broken) {
		vm_set_err(err, "%s", q->broken);
		return -1;
	}
	struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
	int r = poll(&pfd, 1, remaining(deadline));
	if (r < 0) {
		if (errno == EINTR) {
			if (q->intr && *q->intr) {
				vm_set_err(err, "interrupted");
				return -1;
			}
			return 1;
		}
		vm_set_err(err, "poll: %s", strerror(errno));
		return -1;
	}
	if (r == 0)
		return 0;

	ssize_t n;
	int ret = 1;
	while ((n = recv(q->fd, q->rbuf, QMP_READ_CHUNK, MSG_DONTWAIT)) < 0 && errno == EINTR)
		;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		ret = 1;
	} else if (n < 0 && errno != ECONNRESET) {
		set_broken(q, "QMP socket: %s", strerror(errno));
		ret = -1;
	} else if (n <= 0) {
		/* end of file, or a reset: a QEMU killed with our command unread
		 * resets the connection; either way it has gone (vm-qmp --events
		 * takes these words for the end of the stream) */
		set_broken(q, q->partial ? "QMP connection closed in the middle of a message"
					 : "QMP connection closed");
		ret = -1;
	} else if (feed(q, q->rbuf, (size_t)n) < 0) {
		ret = -1;
	}
	if (ret < 0)
		vm_set_err(err, "%s", q->broken);
	return ret;
}

/* Send all of data, reading replies meanwhile: QEMU stops reading commands
 * while its output is full, so a sender that only writes could deadlock.
 * The timeout counts from the last progress either way: a peer that is
 * slow but moving is not stuck. */
static int send_all(struct qmp *q, const char *data, size_t len, char **err)
{
	long long deadline = deadline_of(q->timeout_ms);
	size_t off = 0;

	if (q->broken) {
		vm_set_err(err, "%s", q->broken);
		return -1;
	}
	while (off < len) {
		ssize_t n = send(q->fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			off += (size_t)n;
			deadline = deadline_of(q->timeout_ms);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			if (errno == EPIPE || errno == ECONNRESET)
				set_broken(q, "QMP connection closed");
			else
				set_broken(q, "QMP socket: %s", strerror(errno));
			vm_set_err(err, "%s", q->broken);
			return -1;
		}
		struct pollfd pfd = {.fd = q->fd, .events = POLLIN | POLLOUT};
		int r = poll(&pfd, 1, remaining(deadline));
		if (r < 0 && errno == EINTR) {
			if (q->intr && *q->intr) {
				vm_set_err(err, "interrupted");
				return -1;
			}
			continue;
		}
		if (r < 0) {
			vm_set_err(err, "poll: %s", strerror(errno));
			return -1;
		}
		if (r == 0) {
			q->last_timeout = true;
			/* a half-sent command leaves the stream unusable */
			if (off > 0)
				set_broken(q, "timed out sending a QMP command");
			vm_set_err(err, "timed out sending a QMP command");
			return -1;
		}
		if (pfd.revents & POLLIN) {
			if (pump(q, 0, err) < 0)
				return -1;
			deadline = deadline_of(q->timeout_ms);
		} else if (pfd.revents & (POLLERR | POLLHUP)) {
			continue; /* send reports the error */
		}
	}
	return 0;
}

/* Send the queued commands, or as much of them as the socket takes now
 * (wait = false). 1: all sent, 0: some left, -1 with *err. */
static int flush_out(struct qmp *q, bool wait, char **err)
{
	size_t off = q->out_off;
	int r;
	if (wait) {
		r = send_all(q, q->out.s + off, q->out.len - off, err) < 0 ? -1 : 1;
		off = q->out.len;
	} else {
		r = 1;
		while (off < q->out.len) {
			ssize_t n = send(q->fd, q->out.s + off, q->out.len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n >= 0) {
				off += (size_t)n;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				r = 0;
				break;
			} else if (errno != EINTR) {
				if (errno == EPIPE || errno == ECONNRESET)
					set_broken(q, "QMP connection closed");
				else
					set_broken(q, "QMP socket: %s", strerror(errno));
				vm_set_err(err, "%s", q->broken);
				r = -1;
				break;
			}
		}
	}
	q->out_off = off;
	if (r != 0)
		q->out.len = q->out_off = 0;
	return r;
}

/* Serialize a command onto the out queue and record it as pending (first:
 * its reply may come in while it is still being sent). */
static long queue_message(struct qmp *q, struct json_object *msg, struct json_object *user_id)
{
	long id = q->next_id++;
	if (!q->ordered)
		json_object_object_add(msg, "id", json_object_new_int64(id));
	buf_puts(&q->out, json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_add(&q->out, "\n", 1);
	msgq_push(&q->pend, id, json_object_get(user_id));
	return id;
}

static long send_message(struct qmp *q, struct json_object *msg, struct json_object *user_id,
			 char **err)
{
	if (q->broken) {
		vm_set_err(err, "%s", q->broken);
		return -1;
	}
	bool others = qmp_unsent(q);
	long id = queue_message(q, msg, user_id);
	if (flush_out(q, true, err) < 0) {
		/* commands queued before this one are lost with it: their
		 * replies would never come, and later ones would be taken for
		 * theirs */
		if (others)
			set_broken(q, "%s", "timed out sending queued QMP commands");
		ssize_t i = pending_find(q, id);
		if (i >= 0)
			pending_remove(q, (size_t)i);
		return -1;
	}
	return id;
}

long qmp_send(struct qmp *q, const char *cmd, struct json_object *args, char **err)
{
	struct json_object *msg = json_object_new_object();
	json_object_object_add(msg, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(msg, "arguments", json_object_get(args));
	q->last_qmp_error = q->last_timeout = false;
	long id = send_message(q, msg, NULL, err);
	json_object_put(msg);
	return id;
}

static long send_object(struct qmp *q, struct json_object *obj, bool queue, char **err)
{
	struct json_object *v, *user_id = NULL;
	q->last_qmp_error = q->last_timeout = false;
	if (!json_object_is_type(obj, json_type_object)) {
		vm_set_err(err, "a QMP command must be a JSON object");
		return -1;
	}
	if (q->broken) {
		vm_set_err(err, "%s", q->broken);
		return -1;
	}
	/* a shallow copy, so the caller's object keeps its own id */
	struct json_object *msg = json_object_new_object();
	json_object_object_foreach(obj, key, val)
	{
		if (strcmp(key, "id") == 0)
			user_id = val;
		else
			json_object_object_add(msg, key, json_object_get(val));
	}
	if (!json_object_object_get_ex(msg, "execute", &v) &&
	    !json_object_object_get_ex(msg, "exec-oob", &v)) {
		json_object_put(msg);
		vm_set_err(err, "a QMP command needs \"execute\"");
		return -1;
	}
	long id = queue ? queue_message(q, msg, user_id) : send_message(q, msg, user_id, err);
	json_object_put(msg);
	return id;
}

long qmp_send_object(struct qmp *q, struct json_object *obj, char **err)
{
	return send_object(q, obj, false, err);
}

long qmp_queue_object(struct qmp *q, struct json_object *obj, char **err)
{
	return send_object(q, obj, true, err);
}

int qmp_flush(struct qmp *q, char **err)
{
	if (q->broken) {
		vm_set_err(err, "%s", q->broken);
		return -1;
	}
	return flush_out(q, false, err);
}

bool qmp_unsent(const struct qmp *q)
{
	return q->out_off < q->out.len;
}

size_t qmp_in_flight(const struct qmp *q)
{
	return msgq_len(&q->pend);
}

static ssize_t reply_find(const struct qmp *q, long id)
{
	return msgq_find(&q->replies, id);
}

static int read_reply_until(struct qmp *q, long id, long long deadline, struct json_object **msg,
			    char **err)
{
	*msg = NULL;
	for (;;) {
		ssize_t i = reply_find(q, id);
		if (i >= 0) {
			*msg = msgq_take(&q->replies, (size_t)i);
			return 0;
		}
		if (pending_find(q, id) < 0) {
			vm_set_err(err, "no QMP request with id %ld is waiting", id);
			return -1;
		}
		int r = pump(q, deadline, err);
		if (r < 0)
			return -1;
		if (r == 0 && remaining(deadline) == 0) {
			q->last_timeout = true;
			vm_set_err(err, "timed out waiting for a QMP reply");
			return -1;
		}
	}
}

int qmp_read_reply(struct qmp *q, long id, int timeout_ms, struct json_object **msg, char **err)
{
	q->last_qmp_error = q->last_timeout = false;
	return read_reply_until(q, id, deadline_of(timeout_ms), msg, err);
}

void qmp_abandon(struct qmp *q, long id)
{
	ssize_t i = pending_find(q, id);
	if (i >= 0)
		q->pend.v[q->pend.head + (size_t)i].flags |= PEND_ABANDONED;
	if ((i = reply_find(q, id)) >= 0)
		json_object_put(msgq_take(&q->replies, (size_t)i));
}

char *qmp_error_string(struct json_object *msg)
{
	struct json_object *e, *cls, *desc;
	if (!json_object_object_get_ex(msg, "error", &e))
		return NULL;
	const char *c = "GenericError", *d = "(no description)";
	if (json_object_object_get_ex(e, "class", &cls) && json_object_is_type(cls, json_type_string))
		c = json_object_get_string(cls);
	if (json_object_object_get_ex(e, "desc", &desc) &&
	    json_object_is_type(desc, json_type_string))
		d = json_object_get_string(desc);
	return xasprintf("%s: %s", c, d);
}

int qmp_execute(struct qmp *q, const char *cmd, struct json_object *args, int timeout_ms,
		struct json_object **ret, char **err)
{
	struct json_object *msg, *v;
	long long deadline = deadline_of(timeout_ms);

	if (ret)
		*ret = NULL;
	long id = qmp_send(q, cmd, args, err);
	if (id < 0)
		return -1;
	if (read_reply_until(q, id, deadline, &msg, err) < 0) {
		qmp_abandon(q, id);
		return -1;
	}
	char *e = qmp_error_string(msg);
	if (e) {
		q->last_qmp_error = true;
		if (err)
			*err = e;
		else
			free(e);
		json_object_put(msg);
		return -1;
	}
	if (ret && json_object_object_get_ex(msg, "return", &v))
		*ret = json_object_get(v);
	json_object_put(msg);
	return 0;
}

bool qmp_last_was_qmp_error(const struct qmp *q)
{
	return q->last_qmp_error;
}

bool qmp_last_was_timeout(const struct qmp *q)
{
	return q->last_timeout;
}

static bool event_is(struct json_object *ev, const char *name)
{
	struct json_object *v;
	if (!name)
		return true;
	return json_object_object_get_ex(ev, "event", &v) &&
	       strcmp(json_object_get_string(v), name) == 0;
}

int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, struct json_object **ev,
		   char **err)
{
	long long deadline = deadline_of(timeout_ms);

	*ev = NULL;
	q->last_timeout = false;
	for (;;) {
		/* from the front every time: a full queue drops its head */
		for (size_t i = 0; i < msgq_len(&q->events); i++) {
			if (event_is(q->events.v[q->events.head + i].obj, name)) {
				*ev = event_take(q, i);
				return 1;
			}
		}
		/* with timeout 0 this still takes what is already on the socket */
		int r = pump(q, deadline, err);
		if (r < 0)
			return -1;
		if (r == 0 && remaining(deadline) == 0) {
			q->last_timeout = true;
			return 0;
		}
	}
}

int qmp_next_event(struct qmp *q, int timeout_ms, struct json_object **ev, char **err)
{
	return qmp_wait_event(q, NULL, timeout_ms, ev, err);
}

int qmp_poll(struct qmp *q, int timeout_ms, char **err)
{
	return pump(q, deadline_of(timeout_ms), err);
}

int qmp_hmp(struct qmp *q, const char *cmdline, int timeout_ms, char **out, char **err)
{
	struct json_object *args = json_object_new_object(), *ret = NULL;
	json_object_object_add(args, "command-line", json_object_new_string(cmdline));
	int r = qmp_execute(q, "human-monitor-command", args, timeout_ms, &ret, err);
	json_object_put(args);
	if (r < 0)
		return -1;
	*out = xstrdup(json_object_is_type(ret, json_type_string) ? json_object_get_string(ret)
								   : "");
	json_object_put(ret);
	return 0;
}

static struct qmp *new_qmp(int fd, int timeout_ms)
{
	struct qmp *q = xcalloc(1, sizeof(*q));
	q->fd = fd;
	q->timeout_ms = timeout_ms;
	q->next_id = 1;
	q->tok = json_tokener_new_ex(QMP_MAX_DEPTH);
	q->rbuf = xmalloc(QMP_READ_CHUNK);
	if (!q->tok)
		vm_oom();
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	return q;
}

/* The handshake is bounded by deadline; timeout_ms is kept for sends. */
static struct qmp *open_fd(int fd, int timeout_ms, long long deadline, char **err)
{
	struct qmp *q = new_qmp(fd, timeout_ms);

	/* Negotiate at once, before the greeting comes, and do not wait for
	 * the answer: QEMU handles requests in order, so it precedes the next
	 * reply, and a refusal breaks the connection then. A one-shot command
	 * costs one round trip instead of three. */
	long id = qmp_send(q, "qmp_capabilities", NULL, err);
	if (id < 0)
		goto fail;
	ssize_t ci = pending_find(q, id); /* gone only if a peer answered at once */
	if (ci >= 0)
		q->pend.v[q->pend.head + (size_t)ci].flags |= PEND_CHECK;
	while (!q->greeting) {
		int r = pump(q, deadline, err);
		if (r < 0)
			goto fail;
		if (r == 0 && remaining(deadline) == 0 && !q->greeting) {
			q->last_timeout = true;
			/* QEMU serves one QMP client at a time; others wait unanswered */
			vm_set_err(err, "timed out waiting for the QMP greeting "
				     "(is another client connected?)");
			goto fail;
		}
	}
	return q;
fail:;
	int saved = q->last_timeout ? ETIMEDOUT : EPROTO;
	qmp_close(q);
	errno = saved;
	return NULL;
}

struct qmp *qmp_open_fd(int fd, int timeout_ms, char **err)
{
	return open_fd(fd, timeout_ms, deadline_of(timeout_ms), err);
}

/* connect(2) to a unix socket path of any length: sun_path holds 108 bytes,
 * so a longer path is reached through its directory's /proc/self/fd entry. */
static int connect_unix(int fd, const char *path, long long deadline)
{
	struct sockaddr_un sa;
	int dfd, r;
	if (unix_addr(path, &sa, &dfd) < 0)
		return -1;
	for (;;) {
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			break;
		/* EAGAIN: the listen backlog is full; poll() cannot wait for that */
		if (remaining(deadline) == 0) {
			errno = ETIMEDOUT;
			break;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	int saved = errno;
	if (dfd >= 0)
		close(dfd);
	errno = saved;
	return r;
}

/* A connected socket to socket_path, or -1 with *err and errno. */
static int connect_path(const char *socket_path, long long deadline, char **err)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		vm_set_err(err, "socket: %s", strerror(e));
		errno = e;
		return -1;
	}
	if (connect_unix(fd, socket_path, deadline) < 0) {
		int e = errno;
		vm_set_err(err, "%s: %s", socket_path, strerror(e));
		close(fd);
		errno = e; /* ENOENT, ECONNREFUSED: nothing listens there */
		return -1;
	}
	return fd;
}

struct qmp *qmp_connect(const char *socket_path, int timeout_ms, char **err)
{
	long long deadline = deadline_of(timeout_ms);
	int fd = connect_path(socket_path, deadline, err);
	return fd < 0 ? NULL : open_fd(fd, timeout_ms, deadline, err);
}

struct qmp *qmp_open_plain(int fd, int timeout_ms)
{
	struct qmp *q = new_qmp(fd, timeout_ms);
	q->plain = true;
	/* ids no earlier client of the same peer used: a reply it left
	 * behind never passes for one of ours */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	q->next_id = 1 + (long)(((unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 12)) & 0x3fffffff);
	return q;
}

struct qmp *qmp_connect_plain(const char *socket_path, int timeout_ms, char **err)
{
	int fd = connect_path(socket_path, deadline_of(timeout_ms), err);
	return fd < 0 ? NULL : qmp_open_plain(fd, timeout_ms);
}

int qmp_resync(struct qmp *q, char **err)
{
	/* what was asked before is not answered any more */
	while (msgq_len(&q->pend))
		pending_remove(q, 0);
	while (msgq_len(&q->replies))
		json_object_put(msgq_take(&q->replies, 0));
	json_tokener_reset(q->tok);
	q->partial = false;
	q->skip = true;
	static const char ff = (char)0xFF;
	return send_all(q, &ff, 1, err);
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	json_tokener_free(q->tok);
	free(q->rbuf);
	buf_free(&q->out);
	json_object_put(q->greeting);
	msgq_free(&q->pend);
	msgq_free(&q->replies);
	msgq_free(&q->events);
	free(q->broken);
	free(q);
}

int qmp_fd(const struct qmp *q)
{
	return q->fd;
}

struct json_object *qmp_greeting(const struct qmp *q)
{
	return q->greeting;
}

bool qmp_is_closed(const struct qmp *q)
{
	return q->broken != NULL;
}

size_t qmp_events_queued(const struct qmp *q)
{
	return msgq_len(&q->events);
}

void qmp_set_ordered(struct qmp *q, bool ordered)
{
	q->ordered = ordered;
}

void qmp_set_interrupt(struct qmp *q, volatile sig_atomic_t *flag)
{
	q->intr = flag;
}

/* The descriptor rides on one byte of white space before the command;
 * QEMU keeps it for the next command that asks (add-fd, getfd). */
static int pass_fd(struct qmp *q, int fd, char **err)
{
	if (q->broken) {
		vm_set_err(err, "%s", q->broken);
		return -1;
	}
	char space = ' ';
	struct iovec iov = {.iov_base = &space, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	ssize_t n;
	while ((n = sendmsg(q->fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n != 1) {
		vm_set_err(err, "passing a file to QEMU: %s", n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

int qmp_getfd(struct qmp *q, int fd, const char *name, int timeout_ms, char **err)
{
	if (pass_fd(q, fd, err) < 0)
		return -1;
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string(name));
	int r = qmp_execute(q, "getfd", args, timeout_ms, NULL, err);
	json_object_put(args);
	return r;
}

int qmp_add_fd(struct qmp *q, int fd, int fdset, const char *opaque, int timeout_ms, char **err)
{
	if (pass_fd(q, fd, err) < 0)
		return -1;
	struct json_object *args = json_object_new_object(), *ret = NULL, *v;
	if (fdset >= 0)
		json_object_object_add(args, "fdset-id", json_object_new_int(fdset));
	if (opaque)
		json_object_object_add(args, "opaque", json_object_new_string(opaque));
	int r = qmp_execute(q, "add-fd", args, timeout_ms, &ret, err);
	json_object_put(args);
	if (r < 0)
		return -1;
	int id = -1;
	if (ret && json_object_object_get_ex(ret, "fdset-id", &v))
		id = json_object_get_int(v);
	json_object_put(ret);
	if (id < 0)
		vm_set_err(err, "add-fd: no fdset-id in QEMU's reply");
	return id;
}

int qmp_remove_fdset(struct qmp *q, int fdset, int timeout_ms, char **err)
{
	struct json_object *args = json_object_new_object();
	json_object_object_add(args, "fdset-id", json_object_new_int(fdset));
	int r = qmp_execute(q, "remove-fd", args, timeout_ms, NULL, err);
	json_object_put(args);
	return r;
}
