/* A QMP client (UTM's UTMQemuManager + UTMJSONStream), on json-c.
 * Every wait is bounded by a timeout; a dead or stuck QEMU never hangs a tool. */
#ifndef VM_QMP_H
#define VM_QMP_H

#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct qmp;

/* Connect to a unix socket, send qmp_capabilities, read the greeting. The
 * capabilities reply is not waited for: a refusal fails the next wait.
 * timeout_ms bounds the whole handshake (and later each send; -1 = none).
 * NULL with *err on failure; errno is ENOENT or ECONNREFUSED when nothing
 * listens at the path, ETIMEDOUT when the peer never greeted. */
struct qmp *qmp_connect(const char *socket_path, int timeout_ms, char **err);
/* The same over an already connected fd (tests, socketpair). Takes ownership. */
struct qmp *qmp_open_fd(int fd, int timeout_ms, char **err);
/* The same framing without QMP's greeting and negotiation: a stream of
 * JSON messages whose 0xFF bytes are delimiters (the QEMU guest agent,
 * lib/agent.c). Takes ownership of fd; never fails. */
struct qmp *qmp_open_plain(int fd, int timeout_ms);
/* Connect to a unix socket and qmp_open_plain() it; NULL with *err and
 * errno as qmp_connect(). */
struct qmp *qmp_connect_plain(const char *socket_path, int timeout_ms, char **err);
/* A plain stream's fresh start: forget the requests waiting and the
 * replies queued, send the byte 0xFF (the guest agent's reader starts
 * afresh at it) and drop what arrives until the peer's next 0xFF (the
 * agent writes one before its guest-sync-delimited reply). 0, or -1. */
int qmp_resync(struct qmp *q, char **err);
void qmp_close(struct qmp *q);
int qmp_fd(const struct qmp *q);

/* Run a command and wait for its reply (matched by id).
 * Returns 0 and *ret (the "return" value, owned by caller; may be NULL),
 * or -1 with *err: "CLASS: desc" for a QMP error, or a transport error/timeout.
 * args may be NULL; it is not consumed. */
int qmp_execute(struct qmp *q, const char *cmd, struct json_object *args, int timeout_ms,
		struct json_object **ret, char **err);
/* Was the last failure a QMP error reply (as opposed to transport/timeout)? */
bool qmp_last_was_qmp_error(const struct qmp *q);
bool qmp_last_was_timeout(const struct qmp *q);

/* Hand QEMU an open file: add-fd with fd passed over the socket (SCM_RIGHTS).
 * fdset < 0 makes a new fd set, else adds to that one. Returns the fd set's
 * id (name the file /dev/fdset/ID), or -1 with *err. QEMU keeps its own copy;
 * qmp_remove_fdset() drops the set once QEMU has opened what it needs. */
int qmp_add_fd(struct qmp *q, int fd, int fdset, const char *opaque, int timeout_ms, char **err);
int qmp_remove_fdset(struct qmp *q, int fdset, int timeout_ms, char **err);
/* Hand QEMU an open file under a name (getfd): what "fd:NAME" URIs of
 * migrate and migrate-incoming take. 0, or -1 with *err. */
int qmp_getfd(struct qmp *q, int fd, const char *name, int timeout_ms, char **err);

/* Send without waiting; returns the id used, or -1. Pair with qmp_read_reply. */
long qmp_send(struct qmp *q, const char *cmd, struct json_object *args, char **err);
/* Send a raw command object (an {"execute":...} the user typed); an id is added. */
long qmp_send_object(struct qmp *q, struct json_object *obj, char **err);
/* Queue a raw command object without sending it: qmp_flush (or the next
 * qmp_send*, which sends the queue first) sends all queued ones at once,
 * one send() for many. Returns the id, or -1 (not an object, or the
 * connection is closed). */
long qmp_queue_object(struct qmp *q, struct json_object *obj, char **err);
/* Send what is queued, as much as the socket takes without waiting:
 * 1 all sent, 0 some left (poll qmp_fd for POLLOUT, then call again),
 * -1 with *err. */
int qmp_flush(struct qmp *q, char **err);
bool qmp_unsent(const struct qmp *q);
/* Requests sent or queued whose reply has not come. */
size_t qmp_in_flight(const struct qmp *q);
/* Wait for the reply with that id (the whole message, owned by caller).
 * A raw object's own "id" is put back in its reply. A QMP error reply is
 * returned as a message (0), not as a failure. */
int qmp_read_reply(struct qmp *q, long id, int timeout_ms, struct json_object **msg, char **err);

/* Stop waiting for the reply with that id (a timeout, ^C): it is dropped
 * when it comes instead of being kept for a reader that will not come. */
void qmp_abandon(struct qmp *q, long id);

/* Events that arrived while waiting are queued; this returns the next one
 * (owned by caller), waiting up to timeout_ms (0 = do not wait, but take what
 * is already on the socket; -1 = forever).
 * Returns 1 with *ev, 0 on timeout, -1 on error/EOF with *err. */
int qmp_next_event(struct qmp *q, int timeout_ms, struct json_object **ev, char **err);

/* Wait for an event named name (NULL: any); other events stay queued, in order.
 * Returns like qmp_next_event. */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, struct json_object **ev,
		   char **err);
size_t qmp_events_queued(const struct qmp *q);

/* Read what arrives within timeout_ms (0 = only what is already there) and
 * sort it into replies and events, for callers running their own poll loop.
 * 1: something was read, 0: nothing, -1: connection closed/error with *err. */
int qmp_poll(struct qmp *q, int timeout_ms, char **err);
/* Has the connection failed (peer gone, invalid JSON)? Queued replies and
 * events can still be taken. */
bool qmp_is_closed(const struct qmp *q);

/* Send commands without ids and match replies by their order, which QEMU
 * keeps for every in-band command. Fewer bytes for QEMU, which reads its
 * monitor one byte at a time: pipe mode's throughput. */
void qmp_set_ordered(struct qmp *q, bool ordered);
/* A wait interrupted by a signal fails with "interrupted" when *flag is set
 * (a tool's SIGINT handler sets it); otherwise it goes on. */
void qmp_set_interrupt(struct qmp *q, volatile sig_atomic_t *flag);

/* The greeting {"QMP": {"version": ..., "capabilities": ...}} (borrowed). */
struct json_object *qmp_greeting(const struct qmp *q);

/* "CLASS: desc" for a reply message holding "error" (malloc'd), else NULL. */
char *qmp_error_string(struct json_object *msg);

/* Convenience: run an HMP command through human-monitor-command; *out is its text. */
int qmp_hmp(struct qmp *q, const char *cmdline, int timeout_ms, char **out, char **err);

#endif
