/* Suspend and resume: a VM's whole state (RAM, devices) in its bundle.
 *
 * The state is QEMU's migration stream, written through a descriptor we
 * pass (getfd, migrate "fd:NAME": the sandbox forbids exec:, and QEMU may
 * run as another user that cannot open the bundle) into Data/vmstate. The
 * file starts with a header block of SUSPEND_HEADER_SIZE bytes (a magic
 * line and JSON: QEMU's version, the memory and machine, a hash of the
 * devices, the stream's size) that says whether the state fits the config
 * before QEMU runs; the stream follows it. The file is made as an unnamed
 * O_TMPFILE in Data/, its header written last, fsync'ed, then linked and
 * renamed into place: a crash or kill -9 at any point leaves the previous
 * state or none, never a torn one.
 *
 * Resuming is QEMU -incoming defer (launch_opts.incoming) and
 * migrate-incoming from the file, here; the CPUs run again only after the
 * state was consumed (removed), unless it is kept (vm-run --snapshot). */
#ifndef VM_SUSPEND_H
#define VM_SUSPEND_H

#include <stdbool.h>

#include <json-c/json.h>

#include "bundle.h"
#include "util.h"

struct qmp;

#define SUSPEND_FILE "vmstate" /* in Data/: UTM's name for its Apple VMs' saved state */
#define SUSPEND_HEADER_SIZE 4096
#define SUSPEND_MAGIC "UTMKIT-VMSTATE 1\n"

/* Data/vmstate of b (malloc'd). */
char *suspend_path(const struct bundle *b);
/* Does b have a saved state? */
bool suspend_exists(const struct bundle *b);
/* Remove the saved state: 0 (also when there was none), or -1 with *err. */
int suspend_discard(const struct bundle *b, char **err);

/* What must match between a saved state and the QEMU that resumes it, read
 * from QEMU's command line (argv, program first): -m, -smp, -machine, -cpu,
 * the accelerator, the frontends (-device, -vga, -global, the drives that
 * are devices themselves: pflash, floppy...) without what a clone changes
 * (MAC addresses) or a run (descriptors, paths, backends). */
struct suspend_fp {
	char *memory, *smp, *machine, *cpu, *accel;
	char devices[17]; /* FNV-1a 64 of the frontends, hex */
	char *qemu;       /* QEMU's version, from its QMP greeting */
};
void suspend_fp_from_argv(struct suspend_fp *fp, char *const *argv);
void suspend_fp_free(struct suspend_fp *fp);
/* "7.2.22 (Debian ...)" from a QMP greeting (malloc'd, NULL if none). */
char *suspend_qemu_version(struct json_object *greeting);

/* Save the VM running in runtime dir rtdir into b's Data/vmstate: stop its
 * CPUs, migrate into an unnamed file, wait for QEMU to finish, check its
 * status, write the header, fsync, put it in place. The VM is left stopped
 * (postmigrate) for the caller to quit; on a failure its CPUs run again if
 * they ran. 0, or -1 with *err. */
int suspend_save(const struct bundle *b, const char *rtdir, char **err);

/* Before QEMU runs: the saved state of b against the command line QEMU is
 * about to get. 0 when it fits; -1 with *err saying what differs. */
int suspend_check(const struct bundle *b, char *const *argv, char **err);

/* QEMU (started with -incoming defer and -S, answering on q) loads b's
 * saved state; then, unless keep, the state is removed. The CPUs stay
 * stopped: the caller sends cont. QEMU's version is checked first. 0, or -1
 * with *err (QEMU may have exited: its log says why). */
int suspend_load(struct qmp *q, const struct bundle *b, const char *rtdir, bool keep, char **err);
/* A resume, once QEMU (started with launch_opts.resume) answers: the
 * state loaded (suspend_load), then, when run, the CPUs started and the
 * guest's clock, which stands where it was saved, set from the host's
 * through the guest agent when one answers within a moment (*clock_set).
 * 0, or -1 with *err. */
int suspend_resume(struct qmp *q, const struct bundle *b, const char *rtdir, const char *name, bool keep,
		   bool run, bool *clock_set, char **err);
/* vm-stop --save: suspend_save, then the VM quits (vm_stop, forced: its
 * CPUs stand still). vm_stop's statuses: 1 when it is not running. */
struct vm_stop_opts;
int suspend_and_stop(const struct bundle *b, const char *rtdir, struct vm_stop_opts *o, char **err);

#endif
