/* The accelerator choice and the KVM probe's logic: the isolated run and its
 * timeout, the per-boot cache, the PVM check, the order of --accel, the
 * config and $VM_ACCEL, and the probe on devices that are not KVM. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "accel.h"
#include "bundle.h"
#include "testutil.h"

static int answers_yes(void *arg, int timeout_ms, char **reason)
{
	*reason = xasprintf("ran with %s", (const char *)arg);
	return 1;
}

static int answers_no(void *arg, int timeout_ms, char **reason)
{
	*reason = xstrdup("no good");
	return 0;
}

/* A vCPU that never comes back, and ignores the timer. */
static int hangs(void *arg, int timeout_ms, char **reason)
{
	signal(SIGALRM, SIG_IGN);
	for (;;)
		pause();
	return 1;
}

static int crashes(void *arg, int timeout_ms, char **reason)
{
	kill(getpid(), SIGKILL);
	return 0;
}

static void isolated_child(void **state)
{
	char *r = NULL;
	assert_int_equal(accel_isolated(answers_yes, "arg", 200, &r), 1);
	assert_string_equal(r, "ran with arg");
	free(r);
	assert_int_equal(accel_isolated(answers_no, NULL, 200, &r), 0);
	assert_string_equal(r, "no good");
	free(r);
	assert_int_equal(accel_isolated(crashes, NULL, 200, &r), 0);
	assert_non_null(strstr(r, "signal"));
	free(r);
}

static void isolated_timeout(void **state)
{
	char *r = NULL;
	double t0 = now_ms();
	assert_int_equal(accel_isolated(hangs, NULL, 100, &r), 0);
	double took = now_ms() - t0;
	assert_non_null(strstr(r, "no answer within"));
	assert_true(took >= 100 + ACCEL_SETUP_MS && took < 2000 + ACCEL_SETUP_MS);
	free(r);
}

static void cache_roundtrip(void **state)
{
	char *line = accel_cache_format("BOOT-1", "/dev/kvm", false, "it\thung\nbadly");
	assert_string_equal(line, "BOOT-1\t/dev/kvm\tno\tit hung badly\n");
	bool works = true;
	char *reason = NULL;
	assert_int_equal(accel_cache_parse(line, "BOOT-1", "/dev/kvm", &works, &reason), 0);
	assert_false(works);
	assert_string_equal(reason, "it hung badly");
	free(reason);
	/* another boot, another device, garbage: no verdict */
	assert_int_equal(accel_cache_parse(line, "BOOT-2", "/dev/kvm", &works, &reason), -1);
	assert_int_equal(accel_cache_parse(line, "BOOT-1", "/dev/other", &works, &reason), -1);
	assert_int_equal(accel_cache_parse("BOOT-1\t/dev/kvm\tmaybe\tx\n", "BOOT-1", "/dev/kvm", &works,
					   &reason),
			 -1);
	assert_int_equal(accel_cache_parse("BOOT-1", "BOOT-1", "/dev/kvm", &works, &reason), -1);
	assert_int_equal(accel_cache_parse("", "BOOT-1", "/dev/kvm", &works, &reason), -1);
	assert_int_equal(accel_cache_parse(NULL, "BOOT-1", "/dev/kvm", &works, &reason), -1);
	free(line);
	line = accel_cache_format("B", "/dev/kvm", true, "fine");
	assert_int_equal(accel_cache_parse(line, "B", "/dev/kvm", &works, &reason), 0);
	assert_true(works);
	assert_string_equal(reason, "fine");
	free(reason);
	free(line);
}

static void pvm_only(void **state)
{
	char *tmp = test_tmpdir();
	char *reason = NULL;
	assert_false(accel_pvm_only(tmp, &reason));
	char *pvm = path_join(tmp, "kvm_pvm"), *intel = path_join(tmp, "kvm_intel");
	mkdir(pvm, 0755);
	assert_true(accel_pvm_only(tmp, &reason));
	assert_non_null(strstr(reason, "kvm_pvm"));
	free(reason);
	mkdir(intel, 0755); /* a real vendor module next to it: let the run decide */
	assert_false(accel_pvm_only(tmp, NULL));
	rm_rf(tmp);
	free(pvm);
	free(intel);
	free(tmp);
}

static void probe_not_kvm(void **state)
{
	struct kvm_probe p;
	double t0 = now_ms();
	kvm_probe_run("/nonexistent/kvm", 300, &p);
	assert_false(p.works);
	assert_non_null(strstr(p.reason, "does not exist"));
	kvm_probe_free(&p);
	kvm_probe_run("/dev/null", 300, &p); /* opens, but is no KVM */
	assert_false(p.works);
	assert_non_null(strstr(p.reason, "not a KVM device"));
	kvm_probe_free(&p);
	assert_true(now_ms() - t0 < 100);
}

/* The real device, whatever this host has: a verdict, quickly, and the
 * same verdict from the cache the second time. */
static void probe_this_host(void **state)
{
	char *tmp = test_tmpdir();
	unsetenv("VM_KVM_DEVICE");
	struct kvm_probe p1, p2;
	double t0 = now_ms();
	kvm_probe(tmp, &p1);
	double took = now_ms() - t0;
	assert_non_null(p1.reason);
	const char *expect = getenv("ACCEL_EXPECT");
	if (!expect) /* not inside the (slow) nested test guest */
		assert_true(took < ACCEL_PROBE_TIMEOUT_MS + ACCEL_SETUP_MS + 500);
	print_message("# KVM probe: %s: %s (%.1f ms)\n", p1.works ? "works" : "does not work", p1.reason,
		      took);
	/* tests/e2e/kvmprobe.sh runs this where KVM is known to work */
	if (expect && !strcmp(expect, "works"))
		assert_true(p1.works);
	else if (expect && !strcmp(expect, "broken"))
		assert_false(p1.works);
	kvm_probe(tmp, &p2);
	assert_int_equal(p1.works, p2.works);
	assert_string_equal(p1.reason, p2.reason);
	if (p1.works) /* the guest-code run is done once per boot */
		assert_true(p2.cached);
	kvm_probe_free(&p1);
	kvm_probe_free(&p2);
	rm_rf(tmp);
	free(tmp);
}

/* A cached verdict is used only for this boot and this device. */
static void probe_uses_cache(void **state)
{
	char *tmp = test_tmpdir();
	char *id = read_file("/proc/sys/kernel/random/boot_id", NULL);
	assert_non_null(id);
	id[strcspn(id, "\n")] = '\0';
	/* /dev/null opens, is no KVM: the cheap checks answer before any cache */
	setenv("VM_KVM_DEVICE", "/dev/null", 1);
	char *line = accel_cache_format(id, "/dev/null", true, "from the cache");
	char *cache = path_join(tmp, ACCEL_CACHE_FILE);
	write_text(cache, line);
	struct kvm_probe p;
	kvm_probe(tmp, &p);
	assert_false(p.works);
	assert_false(p.cached);
	kvm_probe_free(&p);
	unsetenv("VM_KVM_DEVICE");
	free(line);
	free(cache);
	free(id);
	rm_rf(tmp);
	free(tmp);
}

/* The guest code as a floppy boot sector, for tests/e2e/kvmprobe.sh to boot
 * under TCG: ACCEL_BOOT_SECTOR=PATH writes it. */
static void boot_sector(void **state)
{
	size_t len = 0;
	const unsigned char *code = accel_probe_code(&len);
#if defined(__x86_64__)
	assert_non_null(code);
	assert_true(len > 0 && len <= 510);
#endif
	const char *out = getenv("ACCEL_BOOT_SECTOR");
	if (!out || !code)
		return;
	size_t size = 1474560;
	unsigned char *img = xcalloc(1, size);
	memcpy(img, code, len);
	img[510] = 0x55;
	img[511] = 0xaa;
	assert_int_equal(write_file_atomic(out, (const char *)img, size, 0644), 0);
	free(img);
}

static void arch_native(void **state)
{
	assert_true(accel_arch_native("x86_64", "x86_64"));
	assert_true(accel_arch_native("i386", "x86_64"));
	assert_false(accel_arch_native("aarch64", "x86_64"));
	assert_true(accel_arch_native("aarch64", "aarch64"));
	assert_false(accel_arch_native("x86_64", "aarch64"));
	assert_true(accel_arch_native("ppc64", "ppc64le"));
	assert_true(accel_arch_native("riscv64", "riscv64"));
	assert_false(accel_arch_native(NULL, "x86_64"));
}

static void choose_order(void **state)
{
	struct vm_config c;
	config_init(&c);
	c.arch = xstrdup("x86_64");
	struct accel_choice ac;
	char *err = NULL;

	setenv("VM_ACCEL", "tcg", 1);
	assert_int_equal(accel_choose(NULL, &c, &ac, &err), 0);
	assert_string_equal(ac.accel, "tcg");
	assert_string_equal(ac.source, "VM_ACCEL");
	accel_choice_free(&ac);

	c.accel = xstrdup("kvm"); /* the config beats the environment */
	assert_int_equal(accel_choose(NULL, &c, &ac, &err), 0);
	assert_string_equal(ac.accel, "kvm");
	accel_choice_free(&ac);

	assert_int_equal(accel_choose("tcg", &c, &ac, &err), 0); /* --accel beats both */
	assert_string_equal(ac.accel, "tcg");
	assert_string_equal(ac.source, "--accel");
	accel_choice_free(&ac);

	free(c.accel);
	c.accel = xstrdup("auto"); /* "auto" in the config defers to $VM_ACCEL */
	assert_int_equal(accel_choose(NULL, &c, &ac, &err), 0);
	assert_string_equal(ac.accel, "tcg");
	assert_string_equal(ac.source, "VM_ACCEL");
	accel_choice_free(&ac);

	assert_int_equal(accel_choose("fast", &c, &ac, &err), -1);
	assert_non_null(strstr(err, "'fast' from --accel"));
	free(err);
	setenv("VM_ACCEL", "hvf", 1);
	assert_int_equal(accel_choose(NULL, &c, &ac, &err), -1);
	assert_non_null(strstr(err, "VM_ACCEL"));
	free(err);

	/* auto for a foreign guest: TCG without probing */
	unsetenv("VM_ACCEL");
	free(c.arch);
	c.arch = xstrdup("riscv64");
	assert_int_equal(accel_choose(NULL, &c, &ac, &err), 0);
	assert_string_equal(ac.accel, "tcg");
	assert_non_null(strstr(ac.reason, "not the host's architecture"));
	accel_choice_free(&ac);

	/* auto with no KVM device at all */
	free(c.arch);
	c.arch = xstrdup("x86_64");
	setenv("VM_KVM_DEVICE", "/nonexistent/kvm", 1);
	assert_int_equal(accel_choose(NULL, &c, &ac, &err), 0);
	assert_string_equal(ac.accel, "tcg");
	assert_non_null(strstr(ac.reason, "does not exist"));
	accel_choice_free(&ac);
	unsetenv("VM_KVM_DEVICE");
	config_free(&c);
}

/* What vm-argv prints and vm-run starts from: the request before any probe.
 * "auto" in the config defers to $VM_ACCEL, so VM_ACCEL=tcg means TCG alone. */
static void request_order(void **state)
{
	struct vm_config c;
	config_init(&c);
	c.accel = xstrdup("auto");
	const char *v = NULL, *src = NULL;
	char *err = NULL;
	unsetenv("VM_ACCEL");
	assert_int_equal(accel_request(NULL, &c, &v, &src, &err), 0);
	assert_string_equal(v, "auto");
	assert_string_equal(src, "auto");
	setenv("VM_ACCEL", "tcg", 1);
	assert_int_equal(accel_request(NULL, &c, &v, &src, &err), 0);
	assert_string_equal(v, "tcg");
	assert_string_equal(src, "VM_ACCEL");
	assert_int_equal(accel_request("kvm", &c, &v, &src, &err), 0);
	assert_string_equal(v, "kvm");
	free(c.accel);
	c.accel = xstrdup("kvm");
	assert_int_equal(accel_request(NULL, &c, &v, &src, &err), 0);
	assert_string_equal(v, "kvm");
	assert_string_equal(src, "the config (accel)");
	setenv("VM_ACCEL", "fast", 1);
	free(c.accel);
	c.accel = NULL;
	assert_int_equal(accel_request(NULL, &c, &v, &src, &err), -1);
	assert_null(v);
	assert_non_null(strstr(err, "'fast' from VM_ACCEL"));
	free(err);
	unsetenv("VM_ACCEL");
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(isolated_child),  cmocka_unit_test(isolated_timeout),
	    cmocka_unit_test(cache_roundtrip), cmocka_unit_test(pvm_only),
	    cmocka_unit_test(probe_not_kvm),   cmocka_unit_test(probe_this_host),
	    cmocka_unit_test(probe_uses_cache), cmocka_unit_test(boot_sector),
	    cmocka_unit_test(arch_native),
	    cmocka_unit_test(choose_order),    cmocka_unit_test(request_order),
	};
	return cmocka_run_group_tests_name("accel", tests, NULL, NULL);
}
