/* A QMP client (UTM's UTMQemuManager + UTMJSONStream), on json-c.
 * Every wait is bounded by a timeout; a dead or stuck QEMU never hangs a tool. */
#ifndef VM_QMP_H
#define VM_QMP_H

#include <json-c/json.h>
#include <stdbool.h>

struct qmp;

/* Connect to a unix socket, read the greeting, send qmp_capabilities.
 * timeout_ms bounds the whole handshake. NULL with *err on failure. */
struct qmp *qmp_connect(const char *socket_path, int timeout_ms, char **err);
/* The same over an already connected fd (tests, socketpair). Takes ownership. */
struct qmp *qmp_open_fd(int fd, int timeout_ms, char **err);
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

/* Send without waiting; returns the id used, or -1. Pair with qmp_read_reply. */
long qmp_send(struct qmp *q, const char *cmd, struct json_object *args, char **err);
/* Send a raw command object (an {"execute":...} the user typed); an id is added. */
long qmp_send_object(struct qmp *q, struct json_object *obj, char **err);
/* Wait for the reply with that id (the whole message, owned by caller). */
int qmp_read_reply(struct qmp *q, long id, int timeout_ms, struct json_object **msg, char **err);

/* Events that arrived while waiting are queued; this returns the next one
 * (owned by caller), waiting up to timeout_ms (0 = only queued, -1 = forever).
 * Returns 1 with *ev, 0 on timeout, -1 on error/EOF with *err. */
int qmp_next_event(struct qmp *q, int timeout_ms, struct json_object **ev, char **err);

/* Convenience: run an HMP command through human-monitor-command; *out is its text. */
int qmp_hmp(struct qmp *q, const char *cmdline, int timeout_ms, char **out, char **err);

#endif
