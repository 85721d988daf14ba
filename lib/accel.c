/* Accelerator choice and the KVM probe (see accel.h for the why).
 *
 * The probe, on x86: a VM with 64 KiB of memory, an in-kernel irqchip and
 * the host's supported CPUID, like QEMU sets it up. One vCPU starts in real
 * mode at 0:0x7c00, as SeaBIOS hands over to a boot loader, and walks the
 * path a Linux kernel walks before its first early-console line: it builds
 * identity page tables, loads a GDT, enters protected mode, enables PAE,
 * sets EFER.LME with WRMSR, turns paging on, far-jumps to a 64-bit segment,
 * loads an IDT, sums 1..1000 in a loop, takes an int3 exception whose
 * handler stores a magic word through the page tables and returns with
 * iretq, and writes the sum to port 0xf4. The probe passes only when
 * KVM_RUN returns that port write with 500500 and the magic word is in
 * memory: long mode, paging and exception delivery through the IDT all
 * work, as the kernel's first instructions need them (a paravirtual
 * hypervisor such as PVM delivers events its own way, not through the IDT). A host that
 * can run SeaBIOS but not a kernel (PVM, broken nesting) fails the long-mode
 * part; KVM_RUN is bounded by a timer in the child (a vCPU that spins is
 * interrupted after ACCEL_PROBE_TIMEOUT_MS) and the whole child by a kill in
 * the parent ACCEL_SETUP_MS later, once per boot thanks to the cache.
 * The same bytes boot as a floppy boot sector under TCG with isa-debug-exit
 * at 0xf4 (QEMU exits 41), which is how they were checked. */
#include "accel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "runtime.h"

void kvm_probe_free(struct kvm_probe *p)
{
	free(p->reason);
	p->reason = NULL;
}

void accel_choice_free(struct accel_choice *c)
{
	free(c->reason);
	c->reason = NULL;
}

/* ---------------------------------------------------------------------- */
/* The isolated child. */

static volatile sig_atomic_t probe_alarm;
static void on_alarm(int sig)
{
	(void)sig;
	probe_alarm = 1;
}

/* (Re)start the child's timer: fn calls it again right before the part
 * that may hang, so setting up does not eat that part's time. */
static void arm_alarm(int timeout_ms)
{
	probe_alarm = 0;
	struct itimerval it = {.it_value = {timeout_ms / 1000, (timeout_ms % 1000) * 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

int accel_isolated(int (*fn)(void *arg, int timeout_ms, char **reason), void *arg, int timeout_ms,
		   char **reason)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		*reason = xasprintf("pipe: %s", strerror(errno));
		return 0;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		*reason = xasprintf("fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return 0;
	}
	if (pid == 0) {
		close(p[0]);
		/* A timer that interrupts KVM_RUN (EINTR): no SA_RESTART. */
		struct sigaction sa = {.sa_handler = on_alarm};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGALRM);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		arm_alarm(timeout_ms + ACCEL_SETUP_MS);
		char *r = NULL;
		int ok = fn(arg, timeout_ms, &r);
		char *msg = xasprintf("%d%s", ok ? 1 : 0, r ? r : "");
		ssize_t unused = write(p[1], msg, strlen(msg));
		(void)unused;
		_exit(0);
	}
	close(p[1]);
	struct buf out = {0};
	double deadline = now_ms() + timeout_ms + ACCEL_SETUP_MS + 250;
	bool timed_out = false;
	for (;;) {
		int left = (int)(deadline - now_ms());
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int n = poll(&pfd, 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			timed_out = n == 0;
			break;
		}
		char chunk[512];
		ssize_t r = read(p[0], chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		buf_add(&out, chunk, (size_t)r);
	}
	close(p[0]);
	int status = 0;
	if (timed_out) {
		kill(pid, SIGKILL);
		/* A vCPU stuck in the kernel may take a moment to die; never wait long. */
		for (int i = 0; i < 50 && waitpid(pid, &status, WNOHANG) == 0; i++)
			usleep(2000);
		buf_free(&out);
		*reason = xasprintf("the probe gave no answer within %d ms (killed)",
				    timeout_ms + ACCEL_SETUP_MS + 250);
		return 0;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!out.s || (out.s[0] != '0' && out.s[0] != '1')) {
		if (WIFSIGNALED(status))
			*reason = xasprintf("the probe died of signal %d", WTERMSIG(status));
		else
			*reason = xstrdup("the probe gave no answer");
		buf_free(&out);
		return 0;
	}
	int ok = out.s[0] == '1';
	*reason = xstrdup(out.s + 1);
	buf_free(&out);
	return ok;
}

/* ---------------------------------------------------------------------- */
/* The guest code. Source (GNU as --32, linked at 0x7c00, flat binary):
 *
 *	.code16
 *	cli; xor %ax,%ax; mov %ax,%ds; mov %ax,%es; mov %ax,%ss; cld
 *	mov $0x1000,%di; mov $0x1400,%cx; xor %eax,%eax; rep stosl	# 0x1000-0x5fff
 *	movl $0x2003,0x1000		# PML4[0] -> PDPT at 0x2000
 *	movl $0x3003,0x2000		# PDPT[0] -> PD at 0x3000
 *	movl $0x0083,0x3000		# PD[0]: 2 MiB page at 0
 *	lgdtl gdtr
 *	mov %cr0,%eax; or $1,%al; mov %eax,%cr0
 *	ljmpl $0x08,$pm32
 *	.code32
 * pm32: mov $0x10,%ax; mov %ax,%ds; mov %ax,%es; mov %ax,%ss
 *	mov %cr4,%eax; or $0x20,%eax; mov %eax,%cr4	# PAE
 *	mov $0x1000,%eax; mov %eax,%cr3
 *	mov $0xc0000080,%ecx; rdmsr; or $0x100,%eax; wrmsr	# EFER.LME
 *	mov %cr0,%eax; or $0x80000000,%eax; mov %eax,%cr0	# paging on
 *	ljmp $0x18,$lm64
 *	.code64
 * lm64: mov $0x9000,%esp
 *	lea handler(%rip),%rax		# IDT at 0x5000, vector 3 (int3):
 *	mov %ax,0x5030; movw $0x18,0x5032; movw $0x8e00,0x5034	# 64-bit
 *	shr $16,%eax; mov %ax,0x5036			# interrupt gate
 *	lidt idtr(%rip)
 *	xor %eax,%eax; mov $1000,%ecx
 * 1:	add %ecx,%eax; loop 1b
 *	int3				# an exception through the IDT, and back
 *	mov $0xf4,%dx; out %eax,%dx
 * 2:	hlt; jmp 2b
 * handler: movl $0x4b564d21,0x4000; iretq
 *	.p2align 3
 * gdt:	.quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff, 0x00af9a000000ffff
 * gdtr: .word gdtr - gdt - 1; .long gdt
 * idtr: .word 63; .quad 0x5000
 */
#if defined(__x86_64__)
static const unsigned char probe_code[] = {
	0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xfc, 0xbf, 0x00, 0x10, 0xb9, 0x00,
	0x14, 0x66, 0x31, 0xc0, 0x66, 0xf3, 0xab, 0x66, 0xc7, 0x06, 0x00, 0x10, 0x03, 0x20, 0x00,
	0x00, 0x66, 0xc7, 0x06, 0x00, 0x20, 0x03, 0x30, 0x00, 0x00, 0x66, 0xc7, 0x06, 0x00, 0x30,
	0x83, 0x00, 0x00, 0x00, 0x66, 0x0f, 0x01, 0x16, 0x00, 0x7d, 0x0f, 0x20, 0xc0, 0x0c, 0x01,
	0x0f, 0x22, 0xc0, 0x66, 0xea, 0x47, 0x7c, 0x00, 0x00, 0x08, 0x00, 0x66, 0xb8, 0x10, 0x00,
	0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0,
	0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32,
	0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80,
	0x0f, 0x22, 0xc0, 0xea, 0x82, 0x7c, 0x00, 0x00, 0x18, 0x00, 0xbc, 0x00, 0x90, 0x00, 0x00,
	0x48, 0x8d, 0x05, 0x42, 0x00, 0x00, 0x00, 0x66, 0x89, 0x04, 0x25, 0x30, 0x50, 0x00, 0x00,
	0x66, 0xc7, 0x04, 0x25, 0x32, 0x50, 0x00, 0x00, 0x18, 0x00, 0x66, 0xc7, 0x04, 0x25, 0x34,
	0x50, 0x00, 0x00, 0x00, 0x8e, 0xc1, 0xe8, 0x10, 0x66, 0x89, 0x04, 0x25, 0x36, 0x50, 0x00,
	0x00, 0x0f, 0x01, 0x1d, 0x4a, 0x00, 0x00, 0x00, 0x31, 0xc0, 0xb9, 0xe8, 0x03, 0x00, 0x00,
	0x01, 0xc8, 0xe2, 0xfc, 0xcc, 0x66, 0xba, 0xf4, 0x00, 0xef, 0xf4, 0xeb, 0xfd, 0xc7, 0x04,
	0x25, 0x00, 0x40, 0x00, 0x00, 0x21, 0x4d, 0x56, 0x4b, 0x48, 0xcf, 0x8d, 0x76, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00,
	0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf,
	0x00, 0x1f, 0x00, 0xe0, 0x7c, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00,
};
#define PROBE_LOAD 0x7c00
#define PROBE_MEM 0x10000
#define PROBE_PORT 0xf4
#define PROBE_SUM 500500u
#define PROBE_MAGIC_ADDR 0x4000
#define PROBE_MAGIC 0x4b564d21u
#endif

const unsigned char *accel_probe_code(size_t *len)
{
#if defined(__x86_64__)
	*len = sizeof probe_code;
	return probe_code;
#else
	*len = 0;
	return NULL;
#endif
}

struct run_arg {
	const char *dev;
};

static int set_cpuid(int kvm, int vcpu, char **reason)
{
	for (int nent = 64; nent <= 4096; nent *= 2) {
		size_t sz = sizeof(struct kvm_cpuid2) + (size_t)nent * sizeof(struct kvm_cpuid_entry2);
		struct kvm_cpuid2 *c = xcalloc(1, sz);
		c->nent = (unsigned)nent;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0) {
			int e = errno;
			free(c);
			if (e == E2BIG)
				continue;
			*reason = xasprintf("KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
			return -1;
		}
		int r = ioctl(vcpu, KVM_SET_CPUID2, c);
		int e = errno;
		free(c);
		if (r < 0) {
			*reason = xasprintf("KVM_SET_CPUID2: %s", strerror(e));
			return -1;
		}
		return 0;
	}
	*reason = xstrdup("KVM_GET_SUPPORTED_CPUID: too many entries");
	return -1;
}

/* Runs in the child: every resource goes away with it. */
static int guest_run(void *argp, int timeout_ms, char **reason)
{
	const struct run_arg *a = argp;
	int kvm = open(a->dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		*reason = xasprintf("%s: %s", a->dev, strerror(errno));
		return 0;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		*reason = xasprintf("KVM_CREATE_VM: %s", strerror(errno));
		return 0;
	}
#if defined(__x86_64__)
	/* As QEMU does: the TSS for real-mode emulation on Intel, the PIC/IOAPIC/LAPIC in the kernel. */
	(void)ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		*reason = xasprintf("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return 0;
	}
	unsigned char *mem = mmap(NULL, PROBE_MEM, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		*reason = xasprintf("mmap: %s", strerror(errno));
		return 0;
	}
	memcpy(mem + PROBE_LOAD, probe_code, sizeof probe_code);
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .guest_phys_addr = 0,
	    .memory_size = PROBE_MEM,
	    .userspace_addr = (unsigned long)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		*reason = xasprintf("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		return 0;
	}
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		*reason = xasprintf("KVM_CREATE_VCPU: %s", strerror(errno));
		return 0;
	}
	int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run)) {
		*reason = xasprintf("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return 0;
	}
	struct kvm_run *run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		*reason = xasprintf("mmap vcpu: %s", strerror(errno));
		return 0;
	}
	if (set_cpuid(kvm, vcpu, reason) < 0)
		return 0;
	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
		*reason = xasprintf("KVM_GET_SREGS: %s", strerror(errno));
		return 0;
	}
	sregs.cs.selector = 0;
	sregs.cs.base = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
		*reason = xasprintf("KVM_SET_SREGS: %s", strerror(errno));
		return 0;
	}
	struct kvm_regs regs = {.rip = PROBE_LOAD, .rflags = 2};
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		*reason = xasprintf("KVM_SET_REGS: %s", strerror(errno));
		return 0;
	}
	arm_alarm(timeout_ms);
	for (int exits = 0; exits < 1000; exits++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				if (probe_alarm) {
					*reason = xasprintf("KVM_RUN: the guest code did not reach its "
							    "exit within %d ms",
							    timeout_ms);
					return 0;
				}
				continue;
			}
			*reason = xasprintf("KVM_RUN: %s", strerror(errno));
			return 0;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == PROBE_PORT &&
			    run->io.size == 4) {
				uint32_t v, magic;
				memcpy(&v, (char *)run + run->io.data_offset, 4);
				memcpy(&magic, mem + PROBE_MAGIC_ADDR, 4);
				if (v != PROBE_SUM || magic != PROBE_MAGIC) {
					*reason = xasprintf("the guest code gave a wrong answer "
							    "(sum %u, exception handler %s)",
							    v, magic == PROBE_MAGIC ? "ran" : "did not run");
					return 0;
				}
				*reason = xstrdup("a guest ran from real mode into 64-bit long "
						  "mode with paging, took an exception through "
						  "its IDT and answered");
				return 1;
			}
			continue; /* nothing else should write ports; keep going */
		case KVM_EXIT_INTR:
			continue;
		case KVM_EXIT_HLT:
			*reason = xstrdup("the guest halted before reaching its exit");
			return 0;
		case KVM_EXIT_SHUTDOWN:
			*reason = xstrdup("the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
			return 0;
		case KVM_EXIT_FAIL_ENTRY:
			*reason = xasprintf("VM entry failed (hardware reason %#llx)",
					    (unsigned long long)run->fail_entry
						.hardware_entry_failure_reason);
			return 0;
		case KVM_EXIT_INTERNAL_ERROR:
			*reason = xasprintf("KVM internal error (suberror %u)",
					    run->internal.suberror);
			return 0;
		case KVM_EXIT_MMIO:
			*reason = xasprintf("unexpected MMIO exit at %#llx",
					    (unsigned long long)run->mmio.phys_addr);
			return 0;
		default:
			*reason = xasprintf("unexpected KVM exit reason %u", run->exit_reason);
			return 0;
		}
	}
	*reason = xstrdup("the guest code kept exiting without reaching its end");
	return 0;
#else
	/* No guest code for this host architecture yet: a VM that can be created is
	 * the best evidence available. */
	(void)timeout_ms;
	*reason = xstrdup("KVM_CREATE_VM works (no guest-code probe on this architecture)");
	return 1;
#endif
}

void kvm_probe_run(const char *dev, int timeout_ms, struct kvm_probe *p)
{
	double t0 = now_ms();
	memset(p, 0, sizeof *p);
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			p->reason = xasprintf("%s does not exist (no KVM module loaded, or no "
					      "virtualization extensions)",
					      dev);
		else if (e == EACCES || e == EPERM)
			p->reason = xasprintf("no permission to open %s (join the kvm group)", dev);
		else
			p->reason = xasprintf("%s: %s", dev, strerror(e));
		p->ms = now_ms() - t0;
		return;
	}
	int ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (ver != KVM_API_VERSION) {
		p->reason = ver < 0 ? xasprintf("%s is not a KVM device (%s)", dev, strerror(errno))
				    : xasprintf("%s: KVM API version %d, wanted %d", dev, ver,
						KVM_API_VERSION);
		p->ms = now_ms() - t0;
		return;
	}
	struct run_arg a = {.dev = dev};
	p->works = accel_isolated(guest_run, &a, timeout_ms, &p->reason) == 1;
	p->ms = now_ms() - t0;
}

/* ---------------------------------------------------------------------- */

bool accel_pvm_only(const char *sysfs_module, char **reason)
{
	char *pvm = path_join(sysfs_module, "kvm_pvm");
	char *intel = path_join(sysfs_module, "kvm_intel");
	char *amd = path_join(sysfs_module, "kvm_amd");
	bool only = file_exists(pvm) && !file_exists(intel) && !file_exists(amd);
	free(pvm);
	free(intel);
	free(amd);
	if (only && reason)
		*reason = xstrdup("the host's KVM is kvm_pvm, which runs only PVM-aware guest "
				  "kernels");
	return only;
}

char *accel_cache_format(const char *boot_id, const char *dev, bool works, const char *reason)
{
	struct buf b = {0};
	buf_printf(&b, "%s\t%s\t%s\t", boot_id, dev, works ? "yes" : "no");
	for (const char *s = reason ? reason : ""; *s; s++)
		buf_add(&b, (*s == '\n' || *s == '\t') ? " " : s, 1);
	buf_puts(&b, "\n");
	return b.s;
}

int accel_cache_parse(const char *text, const char *boot_id, const char *dev, bool *works,
		      char **reason)
{
	if (!text)
		return -1;
	const char *f[4];
	size_t len[4];
	const char *s = text;
	for (int i = 0; i < 4; i++) {
		const char *e = s + strcspn(s, i < 3 ? "\t\n" : "\n");
		if (i < 3 && *e != '\t')
			return -1;
		f[i] = s;
		len[i] = (size_t)(e - s);
		s = *e ? e + 1 : e;
	}
	if (len[0] != strlen(boot_id) || strncmp(f[0], boot_id, len[0]) != 0)
		return -1;
	if (len[1] != strlen(dev) || strncmp(f[1], dev, len[1]) != 0)
		return -1;
	if (len[2] == 3 && !strncmp(f[2], "yes", 3))
		*works = true;
	else if (len[2] == 2 && !strncmp(f[2], "no", 2))
		*works = false;
	else
		return -1;
	*reason = strndup(f[3], len[3]);
	if (!*reason)
		vm_oom();
	return 0;
}

static int probe_timeout(void)
{
	const char *e = getenv("VM_KVM_PROBE_TIMEOUT");
	long long v;
	if (e && *e && parse_int(e, 1, 600000, &v, NULL) == 0)
		return (int)v;
	return ACCEL_PROBE_TIMEOUT_MS;
}

static char *boot_id(void)
{
	char *s = read_file("/proc/sys/kernel/random/boot_id", NULL);
	if (!s)
		return NULL;
	s[strcspn(s, "\n")] = '\0';
	if (!*s) {
		free(s);
		return NULL;
	}
	return s;
}

void kvm_probe(const char *cache_dir, struct kvm_probe *p)
{
	double t0 = now_ms();
	const char *dev = getenv("VM_KVM_DEVICE");
	if (!dev || !*dev)
		dev = "/dev/kvm";
	memset(p, 0, sizeof *p);

	/* Cheap checks first, never cached: they can change without a reboot. */
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	int ver = fd >= 0 ? ioctl(fd, KVM_GET_API_VERSION, 0) : -1;
	if (fd >= 0)
		close(fd);
	if (ver != KVM_API_VERSION) {
		kvm_probe_run(dev, probe_timeout(), p); /* words the reason */
		p->ms = now_ms() - t0;
		return;
	}
	if (accel_pvm_only("/sys/module", &p->reason)) {
		p->ms = now_ms() - t0;
		return;
	}

	char *base = NULL, *cache = NULL, *id = boot_id();
	if (cache_dir && !*cache_dir) {
		free(id);
		id = NULL;
	}
	if (id) {
		base = cache_dir ? xstrdup(cache_dir) : runtime_base(NULL); /* no cache when it cannot be made */
		if (base)
			cache = path_join(base, ACCEL_CACHE_FILE);
	}
	if (cache) {
		char *text = read_file(cache, NULL);
		if (accel_cache_parse(text, id, dev, &p->works, &p->reason) == 0) {
			free(text);
			p->cached = true;
			p->ms = now_ms() - t0;
			goto out;
		}
		free(text);
	}
	kvm_probe_run(dev, probe_timeout(), p);
	if (cache) {
		char *line = accel_cache_format(id, dev, p->works, p->reason);
		(void)write_file_atomic(cache, line, strlen(line), 0600);
		free(line);
	}
	p->ms = now_ms() - t0;
out:
	free(id);
	free(base);
	free(cache);
}

/* ---------------------------------------------------------------------- */

bool accel_arch_native(const char *qemu_arch, const char *host)
{
	if (!qemu_arch || !host)
		return false;
	if (!strcmp(host, "x86_64"))
		return !strcmp(qemu_arch, "x86_64") || !strcmp(qemu_arch, "i386");
	if (!strcmp(host, "i386") || !strcmp(host, "i486") || !strcmp(host, "i586") ||
	    !strcmp(host, "i686"))
		return !strcmp(qemu_arch, "i386");
	if (!strcmp(host, "arm64"))
		return !strcmp(qemu_arch, "aarch64");
	if (!strcmp(host, "ppc64le"))
		return !strcmp(qemu_arch, "ppc64");
	return !strcmp(qemu_arch, host);
}

int accel_request(const char *requested, const struct vm_config *cfg, const char **value,
		  const char **source, char **err)
{
	static const char *const ok[] = {"auto", "kvm", "tcg", NULL};
	const char *v, *src;
	const char *env = getenv("VM_ACCEL");
	if (requested) {
		v = requested;
		src = "--accel";
	} else if (cfg && cfg->accel && *cfg->accel && strcmp(cfg->accel, "auto") != 0) {
		v = cfg->accel;
		src = "the config (accel)";
	} else if (env && *env) {
		v = env;
		src = "VM_ACCEL";
	} else {
		v = "auto";
		src = "auto";
	}
	*source = src;
	for (const char *const *k = ok; *k; k++)
		if (!strcmp(v, *k)) {
			*value = *k;
			return 0;
		}
	*value = NULL;
	vm_set_err(err, "accelerator '%s' from %s: use auto, kvm or tcg", v, src);
	return -1;
}

int accel_choose(const char *requested, const struct vm_config *cfg, struct accel_choice *out,
		 char **err)
{
	const char *v, *src;
	memset(out, 0, sizeof *out);
	if (accel_request(requested, cfg, &v, &src, err) < 0) {
		out->source = src;
		return -1;
	}
	out->source = src;
	if (strcmp(v, "auto") != 0) {
		out->accel = !strcmp(v, "kvm") ? "kvm" : "tcg";
		out->reason = xasprintf("%s, as %s asks", out->accel, src);
		return 0;
	}
	const char *qarch = cfg && cfg->arch ? config_qemu_arch(cfg->arch) : NULL;
	struct utsname u;
	if (qarch && uname(&u) == 0 && !accel_arch_native(qarch, u.machine)) {
		out->accel = "tcg";
		out->reason = xasprintf("tcg: the guest (%s) is not the host's architecture (%s)",
					qarch, u.machine);
		return 0;
	}
	struct kvm_probe p;
	kvm_probe(NULL, &p);
	out->accel = p.works ? "kvm" : "tcg";
	out->reason = xasprintf("%s: %s %s (%s%.1f ms)", out->accel,
				p.works ? "KVM works:" : "KVM does not work here:", p.reason,
				p.cached ? "cached this boot, " : "", p.ms);
	kvm_probe_free(&p);
	return 0;
}
