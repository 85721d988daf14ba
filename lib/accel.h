/* The accelerator choice: KVM when it is proven to run guest code here, else TCG.
 *
 * "/dev/kvm opens" is not proof: on nested or paravirtual hosts (PVM) the
 * device opens, SeaBIOS even runs, yet an ordinary kernel hangs once it
 * enters long mode while a host core spins. So the probe runs real guest code
 * the way a booting kernel does (see accel.c) in a forked child bounded by a
 * timeout, and auto picks KVM only when that code reached its exit with the
 * right answer. The verdict is cached per boot (keyed by
 * /proc/sys/kernel/random/boot_id) in the runtime base directory. */
#ifndef VM_ACCEL_H
#define VM_ACCEL_H

#include <stdbool.h>

#include "config.h"

/* Bound on KVM_RUN of the guest code (KVM does it in microseconds); a slow
 * nested host can raise it with $VM_KVM_PROBE_TIMEOUT (milliseconds). */
#define ACCEL_PROBE_TIMEOUT_MS 300
/* Extra time for the child to build its VM before the parent kills it. */
#define ACCEL_SETUP_MS 1000
#define ACCEL_CACHE_FILE "kvm-probe"

struct kvm_probe {
	bool works;
	bool cached;  /* the verdict came from this boot's cache */
	char *reason; /* one line: why it works or not */
	double ms;    /* time the probe (or the cache lookup) took */
};
void kvm_probe_free(struct kvm_probe *p);

/* The full answer for this host: the device ($VM_KVM_DEVICE or /dev/kvm),
 * the kernel's KVM module, then the guest-code run, using and filling the
 * per-boot cache in cache_dir (NULL: runtime_base(); "" : no cache). */
void kvm_probe(const char *cache_dir, struct kvm_probe *p);

/* The run alone, no cache: open dev, build a VM, run the probe code. */
void kvm_probe_run(const char *dev, int timeout_ms, struct kvm_probe *p);

/* Run fn in a forked child that must answer within timeout_ms +
 * ACCEL_SETUP_MS; a child that does not is killed. In the child a SIGALRM
 * timer interrupts blocking calls (KVM_RUN) after that time. Returns fn's
 * verdict (1 works, 0 not) with *reason, or 0 with a timeout reason.
 * Exposed for tests. */
int accel_isolated(int (*fn)(void *arg, int timeout_ms, char **reason), void *arg, int timeout_ms,
		   char **reason);

/* The probe's guest code (x86 hosts; NULL elsewhere): flat real-mode code to
 * load at 0x7c00. It also boots as a boot sector under TCG with
 * isa-debug-exit at 0xf4, where QEMU then exits with status 41. */
const unsigned char *accel_probe_code(size_t *len);

/* The vendor module check on its own: a host whose only KVM backend is
 * kvm_pvm runs PVM-aware guest kernels only. sysfs_module is normally
 * "/sys/module". Returns true when that is the case, with *reason. */
bool accel_pvm_only(const char *sysfs_module, char **reason);

/* Per-boot cache lines: "BOOT_ID<TAB>DEVICE<TAB>yes|no<TAB>reason\n". */
char *accel_cache_format(const char *boot_id, const char *dev, bool works, const char *reason);
/* Returns 0 and fills *works and *reason when text holds a verdict for this boot and device. */
int accel_cache_parse(const char *text, const char *boot_id, const char *dev, bool *works,
		      char **reason);

/* Can a guest of this QEMU arch (config_qemu_arch: "x86_64", "aarch64"...)
 * use KVM on a host of host_machine (uname -m)? */
bool accel_arch_native(const char *qemu_arch, const char *host_machine);

struct accel_choice {
	const char *accel; /* "kvm" or "tcg" (static) */
	char *reason;      /* one line for -v */
	const char *source; /* "--accel", "config", "VM_ACCEL", "auto" */
};
void accel_choice_free(struct accel_choice *c);

/* What is asked for, before any probe: requested (the --accel value or
 * NULL), else the config's accel (kvm or tcg; "auto" defers), else
 * $VM_ACCEL, else auto. *value is "auto", "kvm" or "tcg" (static), *source
 * names where it came from ("--accel", "the config (accel)", "VM_ACCEL",
 * "auto"). Returns 0, or -1 with *err for a value that is not auto|kvm|tcg.
 * vm-argv prints this ("auto": -accel kvm -accel tcg); vm-run decides auto
 * through accel_choose(). */
int accel_request(const char *requested, const struct vm_config *cfg, const char **value,
		  const char **source, char **err);

/* accel_request(), then auto decided here: TCG when the guest's
 * architecture differs from the host's, else the kvm_probe() verdict.
 * Returns 0, or -1 with *err as accel_request(). */
int accel_choose(const char *requested, const struct vm_config *cfg, struct accel_choice *out,
		 char **err);

#endif
