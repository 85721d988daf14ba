/* The launcher and the lifecycle: UTM's UTMQemu, QEMUHelper and
 * QEMULauncher, with the start/stop half of UTMQemuManager.
 *
 * It owns what lies between a configuration and a VM that answers, and back:
 * the user QEMU runs as (root never keeps root), the files QEMU gets as
 * descriptors, the listening sockets passed to QEMU (QMP, the session
 * monitor, the console) so clients can connect before QEMU is up, swtpm,
 * finding and spawning QEMU in its own session with its output in
 * RUNTIME/qemu.log, the readiness handshake on a private QMP monitor (a
 * socketpair: its greeting says "QEMU is ready" with no polling), the
 * reason QEMU failed (qemu.log's last error line), reaping, and stopping:
 * one stop sequence (the ACPI power button, QMP quit, SIGKILL, each with a
 * deadline) that vm-run's supervisor steps through from its own poll loop
 * and vm_stop() runs to the end for vm-stop. The tools keep their options,
 * the terminal and the messages: nothing here exits or prints but vm_info
 * notes; errors come back through char **err, the steps of a stop through
 * a callback. Migration (-incoming from an fd or tcp, a save to an fd)
 * belongs here too: launch_opts is where its inputs go. */
#ifndef VM_LAUNCH_H
#define VM_LAUNCH_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "argv.h"
#include "bundle.h"
#include "runtime.h"

struct qmp;

/* ---- the stop sequence ---- */

enum stop_stage { STOP_IDLE, STOP_POWERDOWN, STOP_AGENT, STOP_QUIT, STOP_KILL };

/* The steps of a stop, for the caller's messages (detail may be NULL). */
enum stop_event {
	STOP_EV_CPUS_STOPPED,      /* the CPUs do not run: no power button, quit at once */
	STOP_EV_POWERDOWN,         /* about to press the power button */
	STOP_EV_POWERDOWN_FAILED,  /* system_powerdown failed (detail); quit follows */
	STOP_EV_POWERDOWN_TIMEOUT, /* the guest did not power off in time; quit follows, or
				    * with detail "agent" the guest agent's shutdown */
	STOP_EV_AGENT_NONE,        /* no guest agent to ask (detail: why); quit follows */
	STOP_EV_AGENT_TIMEOUT,     /* the guest did not power off after guest-shutdown; quit follows */
	STOP_EV_QUIT,              /* about to send QMP quit */
	STOP_EV_QUIT_FAILED,       /* sending quit failed (detail); SIGTERM follows */
	STOP_EV_TERM,              /* no QMP: SIGTERM to QEMU (its clean quit) */
	STOP_EV_KILL,              /* SIGKILL to QEMU */
	/* launch_supervise only: */
	STOP_EV_REQUEST,           /* a signal asks for a stop (the first: the power button follows) */
	STOP_EV_RUN_TIMEOUT,       /* the VM ran past run_deadline: quit follows */
};

struct stop_seq {
	struct qmp *q;    /* QEMU's monitor, or NULL */
	pid_t pid;        /* QEMU, 0 when not known (no SIGTERM, no SIGKILL) */
	int powerdown_ms; /* how long the guest gets to power off */
	int quit_ms;      /* how long quit (or SIGTERM) gets before SIGKILL */
	int kill_ms;      /* how long SIGKILL gets; -1: no deadline (waits for the caller) */
	void (*note)(void *ctx, enum stop_event ev, const char *detail);
	void *ctx;
	/* A runtime dir with a guest agent's socket (RT_QGA): when the guest
	 * ignores the power button, guest-shutdown through its agent, if one
	 * answers, gets another powerdown_ms before quit. NULL: no such stage. */
	const char *agent_dir;
	const char *name; /* the VM, for the agent's messages */
	/* state */
	enum stop_stage stage;
	double deadline; /* of the current stage (now_ms clock); 0: none */
	bool killed;     /* SIGKILL was sent */
};

/* Start stopping: the power button, or quit at once when force, when the
 * CPUs are not running (a paused guest cannot answer it) or the button
 * cannot be pressed. */
void stop_seq_begin(struct stop_seq *s, bool force);
/* The next step now: quit after the power button, SIGKILL after quit. */
void stop_seq_escalate(struct stop_seq *s);
/* Milliseconds until the current stage's deadline (a poll timeout), -1 for none. */
int stop_seq_timeout(const struct stop_seq *s);
/* Call when the deadline may have passed: escalates if it has (true). */
bool stop_seq_tick(struct stop_seq *s);

struct vm_stop_opts {
	int timeout_ms; /* how long the guest gets to power off */
	bool force;     /* no power button: quit at once */
	int qmp_ms;     /* bound on the connection and each command */
	int grace_ms;   /* after quit, and after SIGKILL */
	void (*note)(void *ctx, enum stop_event ev, const char *detail);
	void *ctx;
	/* QMP could not be reached (detail); the sequence goes on without it */
	void (*no_qmp)(void *ctx, const char *detail);
	const char *name; /* the VM, for the guest agent's messages (may be NULL) */
	/* out, when not NULL: what stopped it ("the power button", "the guest
	 * agent", "quit", "kill"), a static string */
	const char **stopped_by;
};
#define VM_STOP_OPTS_INIT { .timeout_ms = 30000, .qmp_ms = 2000, .grace_ms = 5000 }

/* Stop the VM whose runtime dir is dir and return when it is gone (its
 * lock is free), then tidy its runtime files unless a new run took over.
 * Returns 0 when it stopped, 1 when it was not running, -1 with *err when
 * it is still running, or is gone without a SHUTDOWN (killed or crashed
 * while we waited: QEMU announces every shutdown it makes). */
int vm_stop(const char *dir, const struct vm_stop_opts *o, char **err);

/* ---- starting QEMU ---- */

struct launch_user {
	bool drop; /* QEMU runs as uid/gid, not as the (root) caller */
	uid_t uid;
	gid_t gid;
	char *name;
};
/* As root, QEMU does not keep root: it runs as name (--runas, $VM_RUNAS),
 * else the system user "utmkit" (the Debian package makes it), else
 * "nobody". Not root, or asked for root: no drop. 0, or -1 with *err. */
int launch_choose_user(const char *name, struct launch_user *u, char **err);
void launch_user_free(struct launch_user *u);

/* Take the VM's runtime lock (runtime_lock) for a start: 0, or 1 when the
 * VM already runs and -1 on an error, both with *err. */
int launch_lock(const char *dir, struct runtime *rt, char **err);

/* What QEMU's sandbox (-sandbox spawn=deny) forbids in the config:
 * a bridge network (qemu-bridge-helper). 0, or -1 with *err. */
int launch_sandbox_check(const struct vm_config *eff, char **err);

/* Does the first serial port get RUNTIME/console.sock? */
bool launch_console_socket(const struct vm_config *eff);

struct launch_opts {
	const char *name;               /* the VM's display name, for notes */
	const struct bundle *b;
	const struct vm_config *eff;    /* the effective config (bundle_effective_config) */
	const char *runtime_dir;        /* locked by the caller */
	int lock_fd;                    /* the runtime lock: QEMU inherits it */
	const struct launch_user *user; /* NULL: the caller's user */
	struct argv_opts argv;          /* paused, snapshot, accel...; the fds are the launcher's */
	bool stdio_serial;              /* QEMU gets this terminal (serial mode stdio) */
	const sigset_t *child_mask;     /* signal mask for QEMU and swtpm (NULL: as is) */
	/* A migration comes in (vm-run --incoming): tcp:HOST:PORT or unix:PATH.
	 * QEMU starts with -incoming defer; launch_wait_ready sets it listening
	 * (migrate_incoming, migrate.h), so a detached start returns once it
	 * listens. NULL: a fresh start. Later: a save (migrate to an fd). */
	const char *incoming;
	/* QEMU waits for a saved state (-incoming defer): the caller sends
	 * migrate-incoming once QEMU answers (suspend.h). */
	bool resume;
};

struct vm_proc {
	pid_t pid;         /* QEMU, after launch_spawn */
	pid_t swtpm;       /* 0 when none or gone */
	struct strv argv;  /* QEMU's command line, after launch_prepare */
	struct qmp *q;     /* the private monitor, after launch_wait_ready */
	size_t log_at_ready; /* qemu.log's size when QEMU answered */
	bool exited;       /* QEMU was reaped: wstatus holds its status */
	int wstatus;
	struct stop_seq stop; /* q and pid filled in by launch_wait_ready */
	/* private */
	char *rtdir;
	struct launch_user user;
	int lock_fd, logfd, rtfd, qmp_lfd, session_lfd, con_lfd, qga_lfd, priv[2];
	int *files;
	size_t nfiles;
	const sigset_t *child_mask;
	char *incoming;
};
void vm_proc_init(struct vm_proc *p);
/* Frees and closes what p holds; QEMU and swtpm run on (see launch_end). */
void vm_proc_free(struct vm_proc *p);

/* Everything before QEMU runs: the UEFI variable store, qemu.log, the runtime dir for QEMU's user,
 * the listening sockets, the private monitor, swtpm (the config's tpm),
 * p->argv (argv_build plus the private monitor), RUNTIME/accel. 0, or -1
 * with *err (swtpm is stopped again by launch_end). */
int launch_prepare(struct vm_proc *p, const struct launch_opts *o, char **err);
/* name on $PATH (an executable regular file), malloc'd, or NULL. */
char *launch_find_program(const char *name);
/* Find QEMU as the caller (a missing binary says which package has it),
 * spawn it in its own session, write RUNTIME/pid. 0, or -1 with *err. */
int launch_spawn(struct vm_proc *p, const struct launch_opts *o, char **err);
/* Wait for the private monitor's greeting and complete the handshake
 * (then, for an incoming migration, migrate-incoming);
 * sigfd is a signalfd: a signal but SIGCHLD kills QEMU (1, *sig).
 * bounded: give up (kill QEMU) after LAUNCH_START_TIMEOUT_MS. 0 when QEMU
 * answers, -1 with *err saying why it did not (qemu.log's reason). */
int launch_wait_ready(struct vm_proc *p, int sigfd, bool bounded, int *sig, char **err);
/* Once QEMU answers: the URI a viewer opens for the run's display (the
 * config's, or lo->argv.display for this run), also kept in RT_DISPLAY for
 * vm-ls; NULL when the VM has no display (any old RT_DISPLAY removed). */
char *launch_display_uri(const struct launch_opts *lo);
#define LAUNCH_START_TIMEOUT_MS 60000
#define LAUNCH_QMP_MS 2000

/* The supervisor of a foreground VM: it waits until QEMU exits, turning
 * signals into the stop sequence (the first: the power button, each next
 * one: the next step) and run_deadline into a quit. The caller sets up
 * p->stop (powerdown_ms, quit_ms, kill_ms, note) and may poll fds of its own
 * (a console relay) through add_fds/on_fds. */
enum { LAUNCH_CAUSE_NONE = 0, LAUNCH_CAUSE_TIMEOUT = -1 };
struct launch_sup {
	int sigfd;           /* signalfd with SIGCHLD and the stop signals */
	double run_deadline; /* now_ms clock; 0: none */
	int cause;           /* out: LAUNCH_CAUSE_NONE, _TIMEOUT, or the first stop signal */
	bool leave;          /* set by on_fds: return now (the VM runs on) */
	int (*add_fds)(void *ctx, struct pollfd *pf, int max); /* returns how many it added */
	void (*on_fds)(void *ctx, const struct pollfd *pf, int n);
	void *ctx;
};
void launch_supervise(struct vm_proc *p, struct launch_sup *s);

/* QEMU's end, once it exited: its status 0, or with exit_device the guest's
 * (isa-debug-exit makes QEMU exit (N << 1) | 1), or -1 with *why: killed by
 * a signal, qemu.log's reason, or its exit status. */
int launch_exit_status(const struct vm_proc *p, bool exit_device, char **why);
/* The VM is over: stop swtpm (it ends by itself when QEMU goes, normally). */
void launch_end(struct vm_proc *p);

/* QEMU's reason for failing: the last line of RUNTIME/qemu.log from
 * offset on that is not a warning (or the last line at all); NULL if none. */
char *launch_qemu_error(const char *dir, size_t offset);

#endif
