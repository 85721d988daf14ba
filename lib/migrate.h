/* Live migration of a running VM to another QEMU (vm-migrate): the source
 * half. The destination is a QEMU started with -incoming defer that was
 * told where to listen (vm-run --incoming, launch.c).
 *
 * Over the source's QMP: the capabilities (events, return-path so the
 * source hears that the destination loaded the state, auto-converge,
 * postcopy-ram, pause-before-switchover for disks), the parameters
 * (downtime-limit, max-bandwidth: unlimited unless asked), migrate, then
 * query-migrate until it ends, reported to a callback. With copy_storage
 * the disks go first: the destination serves its images over NBD
 * (nbd-server-start, nbd-server-add on its QMP), the source mirrors each
 * into them (blockdev-add of an nbd node, blockdev-mirror), and once every
 * mirror is in step the RAM follows; at the switchover the mirrors finish
 * (block-job-cancel of a ready job: the last writes copied, no pivot) and
 * the destination stops serving.
 *
 * A clean end: the source QEMU quits only after the destination runs (its
 * status, when its QMP is at hand; else QEMU's completed status, which the
 * return path makes mean "the destination loaded it"). On a failure before
 * postcopy the migration is cancelled, the mirrors dropped, and the source
 * runs on; the error is QEMU's reason (query-migrate's error-desc). */
#ifndef VM_MIGRATE_H
#define VM_MIGRATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct qmp;

struct migrate_progress {
	const char *status;	 /* QEMU's MigrationStatus: setup, active, postcopy-active, completed ... */
	const char *phase;	 /* "disks" while the mirrors catch up, else "ram" */
	double elapsed_ms;	 /* since the start */
	uint64_t transferred;	 /* RAM bytes sent (disks: bytes mirrored) */
	uint64_t remaining;	 /* RAM bytes left (disks: bytes left) */
	uint64_t total;		 /* RAM size (disks: their size) */
	double mbps;		 /* QEMU's throughput, megabits per second */
	uint64_t dirty_rate;	 /* pages dirtied per second */
	uint64_t iterations;	 /* dirty-sync-count: passes over memory */
	int64_t expected_downtime_ms;
	int cpu_throttle;	 /* auto-converge's throttle, percent */
	bool postcopy;		 /* switched to postcopy */
};

struct migrate_opts {
	const char *uri;	 /* tcp:HOST:PORT or unix:PATH (never exec:) */
	int max_downtime_ms;	 /* 0: QEMU's default (300 ms) */
	uint64_t bandwidth;	 /* bytes per second; 0: unlimited */
	bool auto_converge;	 /* throttle the guest's CPUs when it does not converge */
	bool postcopy;		 /* switch to postcopy when it does not converge */
	int postcopy_after;	 /* ... after this many passes over memory (0: 3) */
	bool copy_storage;	 /* mirror the disks to the destination first */
	struct qmp *dest;	 /* the destination's QMP, or NULL (needed for copy_storage) */
	const char *nbd_uri;	 /* copy_storage: where the destination serves its disks
				  * (tcp:HOST:PORT or unix:PATH); NULL: the migration's
				  * host at its port + 1, or PATH.nbd */
	int timeout_ms;		 /* give up (cancel) after this long; <= 0: never */
	int poll_ms;		 /* query-migrate interval (0: 200) */
	const volatile sig_atomic_t *interrupted; /* set by a signal: cancel */
	void (*progress)(void *ctx, const struct migrate_progress *p);
	void *ctx;
};

struct migrate_result {
	int64_t total_ms;	/* QEMU's total-time */
	int64_t downtime_ms;	/* QEMU's downtime: the guest did not run */
	int64_t setup_ms;
	uint64_t transferred;	/* RAM bytes */
	double mbps;
	bool postcopy;
	bool dest_running;	/* the destination's status said so (dest given) */
	int disks;		/* disks mirrored */
};

/* A migration URI vm-migrate accepts: tcp:HOST:PORT or unix:PATH. 0, or -1
 * with *err (exec: and fd: are refused: the sandbox forbids spawning). */
int migrate_uri_check(const char *uri, char **err);

/* Move the VM behind src (its QMP) to o->uri. 0 when the destination has it
 * (the source is then paused in postmigrate: the caller quits it), -1 with
 * *err when it failed and the source runs on (or, after postcopy began,
 * cannot: *err says so). */
int migrate_run(struct qmp *src, const struct migrate_opts *o, struct migrate_result *res, char **err);

/* The destination's side, for launch.c: the capabilities the source may use
 * (return-path; postcopy-ram where this host supports it), then
 * migrate-incoming on uri. 0, or -1 with *err. */
int migrate_incoming(struct qmp *dest, const char *uri, int timeout_ms, char **err);

#endif
