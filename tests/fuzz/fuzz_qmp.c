/* QMP messages as the client reads them (lib/qmp.c). The input is what a
 * QEMU says on the socket, cut into turns by the byte 0x1e (ASCII RS): a fake
 * QEMU on the other end of a socketpair writes the first turn (the greeting)
 * at once and each later one after the client has sent its next command, so
 * replies can match the ids the client waits for. The client does what the
 * tools do: handshake, a command, a raw command object with its own id, an
 * HMP command, an abandoned request, events. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "qmp.h"

#define TURN_SEP 0x1e
#define MAX_TURNS 16
/* How long the fake QEMU waits for the client's next command before it
 * says its next turn anyway (the client may be waiting for more). */
#define TURN_WAIT_MS 5
/* The client's timeouts: never reached, the fake ends with EOF. */
#define CLIENT_MS 5000

struct peer {
	int fd;
	const uint8_t *data;
	size_t size;
};

static void send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the client has gone */
		p += w;
		n -= (size_t)w;
	}
}

/* Read what the client sent; count its lines (one per command). */
static int drain(int fd, int timeout_ms, size_t *lines)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	char b[4096];
	ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
	if (n <= 0)
		return n == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
	for (ssize_t i = 0; i < n; i++)
		*lines += b[i] == '\n';
	return 1;
}

static void *fake_qemu(void *arg)
{
	struct peer *p = arg;
	const uint8_t *at = p->data, *end = p->data + p->size;
	size_t lines = 0;
	bool gone = false;
	for (size_t turn = 0; at <= end && !gone; turn++) {
		const uint8_t *sep = turn + 1 < MAX_TURNS ? memchr(at, TURN_SEP, (size_t)(end - at)) : NULL;
		const uint8_t *stop = sep ? sep : end;
		/* turn k follows the client's k-th command */
		while (turn > 0 && lines < turn) {
			int r = drain(p->fd, TURN_WAIT_MS, &lines);
			if (r < 0)
				gone = true;
			if (r <= 0)
				break;
		}
		if (!gone)
			send_all(p->fd, at, (size_t)(stop - at));
		if (!sep)
			break;
		at = sep + 1;
	}
	shutdown(p->fd, SHUT_WR);
	/* keep reading so the client never blocks on a full socket */
	while (!gone && drain(p->fd, -1, &lines) >= 0)
		;
	return NULL;
}

static void put(struct json_object *o)
{
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	struct peer peer = {.fd = sv[1], .data = data, .size = size};
	pthread_t th;
	if (pthread_create(&th, NULL, fake_qemu, &peer) != 0)
		abort();

	char *err = NULL;
	struct qmp *q = qmp_open_fd(sv[0], CLIENT_MS, &err);
	if (!q) {
		FUZZ_ASSERT(err, "a failed handshake gives no error");
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "fuzz_qmp: handshake: %s\n", err);
		free(err);
		goto done;
	}
	json_object_to_json_string(qmp_greeting(q));

	/* 2: a command, as vm-stop and vm-disk run them */
	struct json_object *ret = NULL, *msg = NULL, *ev = NULL;
	if (qmp_execute(q, "query-status", NULL, CLIENT_MS, &ret, &err) == 0) {
		const char *txt = json_object_to_json_string(ret);
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "fuzz_qmp: query-status: %s\n", txt);
		put(ret);
	} else {
		free(err);
		err = NULL;
	}

	/* 3: a raw object with the user's own id, as vm-qmp sends lines */
	struct json_object *raw = json_tokener_parse("{\"execute\": \"query-name\", \"id\": \"user-1\"}");
	long id = qmp_send_object(q, raw, &err);
	put(raw);
	if (id >= 0 && qmp_read_reply(q, id, CLIENT_MS, &msg, &err) == 0) {
		free(qmp_error_string(msg));
		json_object_to_json_string(msg);
		put(msg);
	} else {
		free(err);
		err = NULL;
	}

	/* 4: HMP through human-monitor-command */
	char *out = NULL;
	if (qmp_hmp(q, "info status", CLIENT_MS, &out, &err) == 0)
		free(out);
	else
		free(err);
	err = NULL;

	/* 5: a request given up on; its reply must be dropped when it comes */
	id = qmp_send(q, "stop", NULL, &err);
	if (id >= 0)
		qmp_abandon(q, id);
	else
		free(err);
	err = NULL;

	/* events: one by name, then the rest */
	if (qmp_wait_event(q, "SHUTDOWN", 0, &ev, &err) == 1)
		put(ev);
	else
		free(err);
	err = NULL;
	for (int i = 0; i < 64; i++) {
		int r = qmp_next_event(q, 0, &ev, &err);
		if (r == 1) {
			json_object_to_json_string(ev);
			put(ev);
			continue;
		}
		if (r < 0)
			free(err);
		err = NULL;
		break;
	}
	if (qmp_poll(q, 0, &err) < 0)
		free(err);
	err = NULL;
	(void)qmp_events_queued(q);
	(void)qmp_is_closed(q);
	qmp_close(q); /* closes sv[0]: the fake sees EOF */
done:
	pthread_join(th, NULL);
	close(sv[1]);
	return 0;
}
