/* A client of the QEMU guest agent (qemu-ga in the guest), UTM's
 * QEMUGuestAgent: run commands, move files, read addresses, freeze the
 * filesystems, shut down, through the virtio-serial port
 * org.qemu.guest_agent.0 that argv_build gives every VM with virtio, on
 * RUNTIME/qga.sock.
 *
 * The wire is QMP's framing without its greeting (lib/qmp.c, plain mode).
 * The agent keeps what it wrote for a client that went away, and may be
 * halfway through a message: every connection starts with
 * guest-sync-delimited (0xFF, a random number, then only what follows the
 * agent's 0xFF counts). Every wait is bounded. */
#ifndef VM_AGENT_H
#define VM_AGENT_H

#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent;

/* How long the agent gets to answer the sync when none is given. */
#define AGENT_SYNC_MS 3000
/* Each command's reply (a freeze may take longer: AGENT_FREEZE_MS). */
#define AGENT_CMD_MS 30000
#define AGENT_FREEZE_MS 120000
/* guest-file-read/-write chunks. qemu-ga makes a big reply fast but
 * parses a request byte by byte (slow under TCG, worse for long strings:
 * 128 KiB writes beat 1 MiB ones 2-3x there); reads are few and large. */
#define AGENT_WRITE_CHUNK (128 << 10)
#define AGENT_READ_CHUNK (1 << 20)

/* Connect to RUNTIME/qga.sock (dir: the runtime dir) and sync. vm_name
 * names the VM in errors. QEMU serves one client at a time and a second
 * one would hear nothing: clients take turns through a lock,
 * RUNTIME/qga.lock, waiting up to lock_ms for it (-1: as long as it
 * takes; errno EBUSY when it stays taken). sync_ms then bounds the
 * connection and the sync; a silent agent gives "no guest agent answers in
 * VM NAME: is qemu-guest-agent installed and running?" (errno ETIMEDOUT).
 * No socket: "VM NAME has no guest agent channel ..." (errno ENOENT).
 * NULL with *err. */
struct agent *agent_connect(const char *dir, const char *vm_name, int lock_ms, int sync_ms, char **err);
/* The same over a connected fd (tests: a socketpair). Takes ownership. */
struct agent *agent_open_fd(int fd, const char *vm_name, int sync_ms, char **err);
void agent_close(struct agent *a);
/* A wait interrupted by a signal fails ("interrupted") when *flag is set. */
void agent_set_interrupt(struct agent *a, volatile sig_atomic_t *flag);

/* Any command: 0 and *ret (owned by the caller; may be NULL), or -1 with
 * *err ("CLASS: desc" for the agent's error). args is not consumed. */
int agent_command(struct agent *a, const char *cmd, struct json_object *args, int timeout_ms,
		  struct json_object **ret, char **err);

int agent_ping(struct agent *a, char **err);
/* guest-info: {"version": ..., "supported_commands": [{"name", "enabled", ...}]} */
int agent_info(struct agent *a, struct json_object **ret, char **err);
/* guest-set-time to the host's clock (after a resume, a restore). */
int agent_set_time(struct agent *a, char **err);
/* guest-fsfreeze-freeze / -thaw: *count filesystems (may be NULL). */
int agent_fsfreeze(struct agent *a, int *count, char **err);
int agent_fsthaw(struct agent *a, int *count, char **err);
/* guest-fsfreeze-status: "thawed" or "frozen" (malloc'd). */
int agent_fsfreeze_status(struct agent *a, char **status, char **err);
/* guest-shutdown, mode "powerdown", "reboot" or "halt". The agent does not
 * answer one that works; an error it does give comes back. 0 or -1. */
int agent_shutdown(struct agent *a, const char *mode, char **err);
/* guest-network-get-interfaces: the array as the agent gives it. */
int agent_interfaces(struct agent *a, struct json_object **ret, char **err);

/* ---- running a command ---- */

enum { AGENT_STDOUT = 1, AGENT_STDERR = 2 };
struct agent_exec {
	const char *const *argv;  /* NULL-terminated; argv[0] is looked up on the guest's PATH */
	const char *const *env;   /* "K=V", NULL-terminated; NULL: the agent's environment */
	const char *input;        /* stdin (binary); NULL: none */
	size_t input_len;
	int timeout_ms;           /* how long the command may run; -1: no limit */
	/* output as it arrives (qemu-ga 7 gives it when the command ends;
	 * at most 16 MiB each, a truncation is reported on stream 2) */
	int (*output)(void *ctx, int stream, const char *data, size_t len);
	void *ctx;
};
enum {
	AGENT_EXEC_FAILED = -1,   /* *err */
	AGENT_EXEC_NOT_RUN = -2,  /* the agent could not start it (*err): no such program */
	AGENT_EXEC_TIMEOUT = -3,  /* ran past timeout_ms: killed (SIGKILL through the agent) */
};
/* Run argv in the guest and wait for it: 0 with *status its exit status
 * (or 128 + the signal that ended it), else AGENT_EXEC_*. */
int agent_exec(struct agent *a, const struct agent_exec *e, int *status, char **err);

/* ---- files ---- */

/* Copy what fd_in holds (to its end, in chunks; a pipe works) into the
 * guest file path, made or truncated; mode >= 0: chmod it so (through
 * guest-exec chmod: the agent makes new files 0600). *bytes may be NULL. */
int agent_file_put(struct agent *a, int fd_in, const char *path, int mode, uint64_t *bytes, char **err);
/* Copy the guest file path to fd_out, in chunks. *mode (may be NULL): its
 * permission bits through guest-exec stat, or -1 when not known. */
int agent_file_get(struct agent *a, const char *path, int fd_out, int *mode, uint64_t *bytes, char **err);

/* Base64 (RFC 4648, with padding), the agent's encoding of binary data. */
char *agent_b64_encode(const void *data, size_t len);
/* NULL when s is not base64. *len: the bytes decoded. */
unsigned char *agent_b64_decode(const char *s, size_t *len);

#endif
