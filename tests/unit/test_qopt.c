/* lib/qopt: QEMU option strings, and the grammars of the values in them. */
#include "config.h"
#include "qopt.h"
#include "testutil.h"

static void builds_and_escapes(void **state)
{
	(void)state;
	char *e = NULL, *s;
	s = qopt_escape("a,b,,c");
	assert_string_equal(s, "a,,b,,,,c");
	free(s);
	struct qopt *o = qopt_new("virtio-net-pci");
	qopt_add(o, "netdev", "net-n0");
	qopt_addf(o, "bootindex", "%d", 2);
	qopt_add(o, "path", "/a,x-injected=on");
	assert_true(qopt_add_checked(o, "mac", "52:54:00:00:00:01", &grammar_mac, "net.%s.mac", "n0"));
	s = qopt_finish(o, &e);
	assert_string_equal(s, "virtio-net-pci,netdev=net-n0,bootindex=2,path=/a,,x-injected=on,mac=52:54:00:00:00:01");
	free(s);
	/* no head: the first key has no comma before it; a bare item is escaped too */
	o = qopt_new(NULL);
	qopt_add(o, "if", "none");
	qopt_add(o, NULL, "x,y");
	s = qopt_finish(o, &e);
	assert_string_equal(s, "if=none,x,,y");
	free(s);
	o = qopt_new(NULL);
	s = qopt_finish(o, &e);
	assert_string_equal(s, "");
	free(s);
}

static void refuses_naming_the_key(void **state)
{
	(void)state;
	char *e = NULL;
	struct qopt *o = qopt_new("bridge");
	qopt_add(o, "id", "net-br0");
	assert_false(qopt_add_checked(o, "br", "br0,helper=touch /tmp/PWNED;", &grammar_ifname, "net.%s.bridge",
				      "br0"));
	assert_false(qopt_add_checked(o, "x", "a b", &grammar_ifname, "second"));
	assert_null(qopt_finish(o, &e));
	assert_string_equal(e, "net.br0.bridge: 'br0,helper=touch /tmp/PWNED;' is not an interface name "
			       "(1-15 characters, no '/', ':', ',', '=' or space)");
	free(e);
	/* machine_props: keys by design, but only KEY=VALUE items */
	o = qopt_new("q35");
	assert_true(qopt_add_keys(o, "hpet=off,vmport=off", &grammar_machine_props, "machine_props"));
	char *s = qopt_finish(o, &e);
	assert_string_equal(s, "q35,hpet=off,vmport=off");
	free(s);
	o = qopt_new("q35");
	assert_false(qopt_add_keys(o, "hpet=off,,x", &grammar_machine_props, "machine_props"));
	qopt_free(o);
}

struct case_ {
	const struct grammar *g;
	const char *v;
	bool ok;
};

static void grammars(void **state)
{
	(void)state;
	static const struct case_ cases[] = {
	    {&grammar_device, "virtio-vga-gl", true},
	    {&grammar_device, "ich9-intel-hda", true},
	    {&grammar_device, "qxl-vga", true},
	    {&grammar_device, "intel-hda,msi=off", false},
	    {&grammar_device, "{\"driver\":\"x\"}", false},
	    {&grammar_device, "", false},
	    {&grammar_nic_model, "", true},
	    {&grammar_nic_model, "e1000", true},
	    {&grammar_nic_model, "e1000 ", false},
	    {&grammar_machine, "pc-q35-7.2", true},
	    {&grammar_machine, "q35,accel=kvm", false},
	    {&grammar_cpu_model, "Skylake-Client-v4", true},
	    {&grammar_cpu_model, "max,+x", false},
	    {&grammar_cpu_flag, "+sse4.2", true},
	    {&grammar_cpu_flag, "-avx512-vp2intersect", true},
	    {&grammar_cpu_flag, "avx", false},
	    {&grammar_cpu_flag, "+", false},
	    {&grammar_cpu_flag, "+a=b", false},
	    {&grammar_machine_props, "", true},
	    {&grammar_machine_props, "gic-version=3", true},
	    {&grammar_machine_props, "a=b,c=d", true},
	    {&grammar_machine_props, "a", false},
	    {&grammar_machine_props, "a=b,", false},
	    {&grammar_machine_props, ",a=b", false},
	    {&grammar_machine_props, "a=", false},
	    {&grammar_machine_props, "a=b c", false},
	    {&grammar_image_format, "qcow2", true},
	    {&grammar_image_format, "", false},
	    {&grammar_image_format, "raw,file=x", false},
	    {&grammar_ifname, "br0", true},
	    {&grammar_ifname, "tap-vm.1@x", true},
	    {&grammar_ifname, "abcdefghijklmno", true},
	    {&grammar_ifname, "abcdefghijklmnop", false},
	    {&grammar_ifname, "", false},
	    {&grammar_ifname, "..", false},
	    {&grammar_ifname, "a/b", false},
	    {&grammar_ifname, "a:1", false},
	    {&grammar_ifname, "a b", false},
	    {&grammar_ifname, "a\tb", false},
	    {&grammar_ifname, "br0,helper=x", false},
	    {&grammar_subnet, "10.0.2.0/24", true},
	    {&grammar_subnet, "10.0.2.0", true},
	    {&grammar_subnet, "10.0.2.0/255.255.255.0", true},
	    {&grammar_subnet, "10.0.2.0/33", false},
	    {&grammar_subnet, "10.0.2.0/", false},
	    {&grammar_subnet, "10.0.2/24", false},
	    {&grammar_subnet, "10.0.2.0/24,smb=/", false},
	    {&grammar_host_port, "127.0.0.1:20001", true},
	    {&grammar_host_port, "230.0.0.1:1234", true},
	    {&grammar_host_port, ":1234", true},
	    {&grammar_host_port, "example.org:22", true},
	    {&grammar_host_port, "[::1]:22", true},
	    {&grammar_host_port, "[::1:22", false},
	    {&grammar_host_port, "1.2.3.4:0", false},
	    {&grammar_host_port, "1.2.3.4:65536", false},
	    {&grammar_host_port, "1.2.3.4", false},
	    {&grammar_host_port, "1.2.3.4,localaddr=x:1", false},
	    {&grammar_host_port, "a b:1", false},
	    {&grammar_forward, "tcp::2222-:22", true},
	    {&grammar_forward, "udp:127.0.0.1:5353-10.0.2.15:53", true},
	    {&grammar_forward, "tcp:,smb=/etc:22-:22", false},
	    {&grammar_forward, "tcp::22-:22,x-injected=on", false},
	    {&grammar_forward, "tcp::22-:0", false},
	    {&grammar_forward, "sctp::1-:1", false},
	    {&grammar_mac, "52:54:00:12:34:56", true},
	    {&grammar_mac, "01:00:00:00:00:01", false},
	    {&grammar_mac, "52:54:00:12:34:56,x", false},
	    {&grammar_9p_tag, "hostshare", true},
	    {&grammar_9p_tag, "a,b", false},
	    {&grammar_9p_tag, "", false},
	    {&grammar_9p_tag, "0123456789012345678901234567890123", false},
	    {&grammar_uuid, "11111111-2222-4333-8444-555555555555", true},
	    {&grammar_uuid, "11111111-2222-4333-8444-55555555555,", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		if (cases[i].g->valid(cases[i].v) != cases[i].ok)
			fail_msg("'%s' should be %s %s", cases[i].v, cases[i].ok ? "" : "refused as", cases[i].g->what);
		/* nothing a grammar accepts can split an option */
		if (cases[i].ok && cases[i].g != &grammar_machine_props)
			assert_null(strchr(cases[i].v, ','));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(builds_and_escapes),
	    cmocka_unit_test(refuses_naming_the_key),
	    cmocka_unit_test(grammars),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
