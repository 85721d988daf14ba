/* The address checks of migration (no exec:, which the sandbox forbids) and
 * the libvirt mapping's document: written by libxml2, every special
 * character escaped, what libvirt cannot say in <qemu:commandline> with a
 * warning. Both run end to end in tests/e2e/migrate.sh and libvirt.sh. */
#include <string.h>

#include "bundle.h"
#include "libvirt.h"
#include "migrate.h"
#include "testutil.h"

static void uris(void **state)
{
	char *err = NULL;
	assert_int_equal(migrate_uri_check("tcp:127.0.0.1:4444", &err), 0);
	assert_int_equal(migrate_uri_check("tcp:[::1]:4444", &err), 0);
	assert_int_equal(migrate_uri_check("unix:/tmp/m.sock", &err), 0);
	const char *bad[] = {"tcp:host", "tcp::", "tcp:h:0", "tcp:h:70000", "unix:", "exec:cat", "fd:3", "rdma:x:1", ""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(migrate_uri_check(bad[i], &err), -1);
		assert_non_null(err);
		free(err);
		err = NULL;
	}
	assert_int_equal(migrate_uri_check("exec:cat", &err), -1);
	assert_non_null(strstr(err, "sandbox"));
	free(err);
}

static void arches(void **state)
{
	assert_string_equal(libvirt_arch("i386"), "i686");
	assert_string_equal(libvirt_arch("arm"), "armv7l");
	assert_string_equal(libvirt_arch("x86_64"), "x86_64");
	assert_string_equal(libvirt_arch("aarch64"), "aarch64");
}

static void domain(void **state)
{
	char *tmp = test_tmpdir();
	char *bp = path_join(tmp, "lv.utm"), *conf = path_join(bp, "vm.conf"), *data = path_join(bp, "Data");
	mkdir_p(data, 0755);
	write_text(conf, "uuid = '11111111-2222-4333-8444-555555555555'\n"
			 "name = 'a <b> & \"c\"'\n"
			 "machine_props = 'hpet=off'\n"
			 "net net0 {\n mac = '52:54:00:12:34:56'\n forward = {'tcp::2222-:22'}\n}\n");
	struct bundle b;
	char *err = NULL;
	assert_int_equal(bundle_open(&b, bp, &err), 0);
	struct libvirt_opts o = {.domain_type = "qemu", .runtime_dir = tmp, .qemu_dir = "/opt/q"};
	struct strv warn = {0};
	char *xml = libvirt_domain_xml(&b, &o, &warn, &err);
	assert_non_null(xml);
	assert_non_null(strstr(xml, "<name>a &lt;b&gt; &amp; \"c\"</name>"));
	assert_non_null(strstr(xml, "type=\"qemu\""));
	assert_non_null(strstr(xml, "<emulator>/opt/q/qemu-system-x86_64</emulator>"));
	assert_non_null(strstr(xml, "xmlns:qemu=\"" LIBVIRT_QEMU_NS "\""));
	assert_non_null(strstr(xml, "<qemu:arg value=\"-machine\"/>"));
	assert_non_null(strstr(xml, "hostfwd=tcp::2222-:22"));
	assert_non_null(strstr(xml, "<memballoon model=\"none\"/>"));
	assert_int_equal(warn.n, 2); /* the port forward, machine_props */
	assert_non_null(strstr(warn.v[0], "net.net0: port forwards"));
	assert_non_null(strstr(warn.v[1], "machine_props = hpet=off"));
	free(xml);
	strv_free(&warn);
	bundle_close(&b);
	free(bp);
	free(conf);
	free(data);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(uris),
	    cmocka_unit_test(arches),
	    cmocka_unit_test(domain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
