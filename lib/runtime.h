/* A VM's runtime directory: the lock held for the life of the VM, the pid
 * file, sockets, and the state read back from them.
 *
 * The lock is flock(2) on RUNTIME/lock. vm-run takes it exclusively and QEMU
 * inherits the descriptor, so it is held exactly as long as QEMU (or a
 * foreground vm-run) lives: a kill -9 releases it, a stale pid file never
 * holds it. "Is the VM running" is therefore "is the lock held", and the
 * rest (running or paused, the accelerator) comes from QMP. Files found in a
 * runtime directory whose lock is free are leftovers of a crash and are
 * removed by the next runtime_lock(). */
#ifndef VM_RUNTIME_H
#define VM_RUNTIME_H

#include <stdbool.h>
#include <sys/types.h>

#include "bundle.h"

/* The names of the runtime files inside a runtime dir. */
#define RT_QMP "qmp.sock"
/* A second QMP monitor for clients that stay (vm-qmp's REPL, --events,
 * pipe mode): QEMU serves one client per monitor, and vm-stop, vm-ls and
 * vm-disk must not wait behind them on qmp.sock. */
#define RT_QMP_SESSION "qmp-session.sock"
#define RT_CONSOLE "console.sock" /* first serial port, when it is not a file/pty */
#define RT_CONSOLE_LOG "console.log"
#define RT_PID "pid"
#define RT_LOCK "lock"
#define RT_VNC "vnc.sock"
#define RT_SPICE "spice.sock"
#define RT_SWTPM "swtpm.sock"
#define RT_QGA "qga.sock" /* the guest agent's virtio-serial port (lib/agent.c) */
#define RT_QGA_LOCK "qga.lock" /* its clients take turns (agent_connect) */
#define RT_ACCEL "accel" /* the accelerator the running VM uses */

#define RT_QEMU_LOG "qemu.log"   /* QEMU's stdout and stderr */
#define RT_SWTPM_PID "swtpm.pid"
#define RT_SWTPM_LOG "swtpm.log"
#define RT_DISPLAY "display" /* the viewer URI of a VM with a display (vm-run writes it) */

/* Runtime directory for this VM: $XDG_RUNTIME_DIR/vm/UUID or
 * /tmp/vm-UID/UUID, created 0700. file may be NULL for the directory.
 * NULL with *err when it cannot be made (or /tmp's is not ours alone). */
char *bundle_runtime_path(const struct bundle *b, const char *file, char **err);
/* The parent of every VM's runtime dir, created 0700; NULL with *err. */
char *runtime_base(char **err);

struct qmp;
/* Connect to the VM's QMP monitor RUNTIME/name (NULL: RT_QMP); as
 * qmp_connect(), whose errno tells "nothing listens" (ENOENT, ECONNREFUSED)
 * from a timeout. */
struct qmp *runtime_qmp_connect(const char *dir, const char *name, int timeout_ms, char **err);

enum vm_state {
	VM_STOPPED,  /* lock free */
	VM_STARTING, /* lock held, QEMU not yet started or not yet answering */
	VM_RUNNING,  /* QMP: running */
	VM_PAUSED,   /* QMP: any status where the CPUs do not run (paused, prelaunch, ...) */
	VM_STOPPING, /* lock held by a supervisor whose QEMU has gone */
	VM_UNKNOWN,  /* lock held, QEMU alive, QMP did not answer (busy with another client) */
};
const char *vm_state_name(enum vm_state s);

struct runtime {
	char *dir;
	int lock_fd; /* -1 when not held */
};

/* Take the lock of the runtime dir (created 0700 if needed). Returns 0 when
 * taken (leftover files of an earlier run are removed), 1 when the VM is
 * already running (*holder: QEMU's pid or 0 if not known yet), -1 on error
 * with *err. A probe's momentary shared lock (vm-ls) is waited out. The lock
 * descriptor is close-on-exec; clear that for the process that must hold it. */
int runtime_lock(const char *dir, struct runtime *rt, pid_t *holder, char **err);
/* Remove the runtime files (not the lock file), e.g. after QEMU exited. */
void runtime_clean(const char *dir);
/* Release the lock and free rt (files stay; call runtime_clean first). */
void runtime_release(struct runtime *rt);

int runtime_write_file(const char *dir, const char *name, const char *text);
/* RUNTIME/pid: QEMU's pid, or 0 when absent or unreadable. */
pid_t runtime_read_pid(const char *dir);

/* Is the lock held by anyone (without disturbing them)? */
bool runtime_locked(const char *dir);
/* Wait until the lock is free: 0 when free, 1 on timeout (timeout_ms < 0: forever). */
int runtime_wait_unlocked(const char *dir, int timeout_ms);

struct vm_status {
	enum vm_state state;
	pid_t pid;          /* QEMU, 0 when not running */
	char *accel;        /* "kvm" or "tcg" when running */
	char *qmp_status;   /* QMP's RunState ("running", "paused", "prelaunch", ...) */
	char *error;        /* why QMP did not answer (VM_UNKNOWN) */
	char *dir;          /* the runtime dir */
};
/* State from the lock and, when held, from QMP (bounded by qmp_timeout_ms). */
int runtime_state_dir(const char *dir, int qmp_timeout_ms, struct vm_status *st);
int runtime_state(const struct bundle *b, int qmp_timeout_ms, struct vm_status *st);
void vm_status_free(struct vm_status *st);

/* Map a QMP RunState to a vm_state. */
enum vm_state runtime_state_from_qmp(const char *status, bool running);

#endif
