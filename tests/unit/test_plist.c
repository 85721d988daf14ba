/* UTM's config.plist codec: mapping, errors, in-place writes, round trips. */
#include <plist/plist.h>
#include <dirent.h>
#include <time.h>

#include "argv.h"
#include "bundle.h"
#include "config_plist.h"
#include "config.h"
#include "testutil.h"

#define HDR "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
#define SECTIONS_BUT(sys, drive, net, serial, qemu)                                                               \
	"<key>Backend</key><string>QEMU</string><key>ConfigurationVersion</key><integer>4</integer>"                \
	"<key>Information</key><dict><key>Name</key><string>t</string><key>IconCustom</key><false/>"              \
	"<key>UUID</key><string>11111111-2222-4333-8444-555555555555</string><key>Unknown</key>"                  \
	"<string>keep me</string></dict>"                                                                         \
	"<key>Input</key><dict><key>UsbBusSupport</key><string>3.0</string></dict>"                               \
	"<key>Sharing</key><dict><key>DirectoryShareMode</key><string>VirtFS</string></dict>"                     \
	"<key>Display</key><array><dict><key>Hardware</key><string>virtio-vga</string></dict></array>"            \
	"<key>Sound</key><array><dict><key>Hardware</key><string>intel-hda</string></dict></array>" sys drive net \
	    serial qemu "</dict></plist>\n"

#define SYS                                                                                                       \
	"<key>System</key><dict><key>Architecture</key><string>x86_64</string><key>Target</key>"                 \
	"<string>q35</string><key>CPU</key><string>max</string><key>CPUFlagsAdd</key><array><string>avx</string>" \
	"</array><key>CPUFlagsRemove</key><array><string>hle</string></array><key>CPUCount</key>"                 \
	"<integer>0</integer><key>MemorySize</key><integer>2048</integer><key>JITCacheSize</key>"                \
	"<integer>256</integer><key>ForceMulticore</key><true/></dict>"
#define DRIVES                                                                                                    \
	"<key>Drive</key><array>"                                                                                 \
	"<dict><key>Identifier</key><string>0</string><key>ImageName</key><string>hd.qcow2</string>"             \
	"<key>ImageType</key><string>Disk</string><key>Interface</key><string>VirtIO</string></dict>"            \
	"<dict><key>Identifier</key><string>CD1</string><key>ImageType</key><string>CD</string>"                 \
	"<key>Interface</key><string>IDE</string></dict>"                                                         \
	"<dict><key>Identifier</key><string>K</string><key>ImageName</key><string>vmlinuz</string>"              \
	"<key>ImageType</key><string>LinuxKernel</string><key>Interface</key><string>None</string></dict>"       \
	"</array>"
#define NETS                                                                                                      \
	"<key>Network</key><array><dict><key>Mode</key><string>Shared</string><key>Hardware</key>"               \
	"<string>e1000</string><key>MacAddress</key><string>AA:BB:CC:DD:EE:02</string><key>PortForward</key>"    \
	"<array><dict><key>Protocol</key><string>TCP</string><key>HostPort</key><integer>2222</integer>"         \
	"<key>GuestPort</key><integer>22</integer></dict><dict><key>protocol</key><string>UDP</string>"         \
	"<key>hostAddress</key><string>127.0.0.1</string><key>hostPort</key><integer>53</integer>"               \
	"<key>guestAddress</key><string>10.0.2.15</string><key>guestPort</key><integer>53</integer></dict>"      \
	"</array></dict></array>"
#define SERIALS                                                                                                   \
	"<key>Serial</key><array><dict><key>Mode</key><string>Ptty</string><key>Target</key>"                    \
	"<string>Monitor</string></dict><dict><key>Mode</key><string>TcpServer</string><key>Target</key>"       \
	"<string>GDB</string></dict></array>"
#define QEMU_SEC                                                                                                  \
	"<key>QEMU</key><dict><key>UEFIBoot</key><true/><key>RNGDevice</key><true/><key>TPMDevice</key><false/>" \
	"<key>MachinePropertyOverride</key><string>hpet=on</string><key>AdditionalArguments</key><array>"        \
	"<string>-device \"virtio-keyboard-pci, x\"</string><string></string>"                                  \
	"<string>-append \"console=ttyS0 quiet\"</string></array></dict>"

static const char full[] = HDR SECTIONS_BUT(SYS, DRIVES, NETS, SERIALS, QEMU_SEC);

static void *parse_ok(struct vm_config *c, const char *text, struct plist_meta *meta)
{
	void *doc = NULL;
	char *err = NULL;
	config_init(c);
	if (config_parse_plist(c, "t.utm/config.plist", text, strlen(text), &doc, meta, &err) < 0)
		fail_msg("parse: %s", err);
	return doc;
}

static char *parse_err(const char *text)
{
	struct vm_config c;
	struct plist_meta meta;
	void *doc = NULL;
	char *err = NULL;
	config_init(&c);
	assert_int_equal(config_parse_plist(&c, "x.utm/config.plist", text, strlen(text), &doc, &meta, &err), -1);
	assert_null(doc);
	assert_non_null(err);
	config_free(&c);
	return err;
}

static void split_like_utm(void **state)
{
	(void)state;
	struct strv v = {0};
	config_split_utm_args("  -device  \"a b\",c  x\"y z\"w \"\" ", &v);
	assert_int_equal(v.n, 4);
	assert_string_equal(v.v[0], "-device");
	assert_string_equal(v.v[1], "a b,c");
	assert_string_equal(v.v[2], "xy zw");
	assert_string_equal(v.v[3], "");
	strv_free(&v);
	config_split_utm_args("", &v);
	assert_int_equal(v.n, 0);
	strv_free(&v);
}

static void reads_every_mapped_key(void **state)
{
	(void)state;
	struct vm_config c;
	struct plist_meta meta;
	void *doc = parse_ok(&c, full, &meta);
	assert_int_equal(meta.kind, PLIST_UTM_QEMU);
	assert_null(meta.readonly);
	assert_non_null(strstr(meta.notices.s, "Network[0].Mode: Shared"));
	assert_non_null(strstr(meta.notices.s, "Serial[1].Mode: TcpServer"));
	assert_string_equal(c.name, "t");
	assert_string_equal(c.arch, "x86_64");
	assert_string_equal(c.machine, "q35");
	assert_string_equal(c.machine_props, "hpet=on");
	assert_string_equal(c.cpu, "max");
	assert_int_equal(c.cpu_flags.n, 2);
	assert_string_equal(c.cpu_flags.v[0], "+avx");
	assert_string_equal(c.cpu_flags.v[1], "-hle");
	assert_int_equal(c.cpus, 0);
	assert_int_equal(c.memory, 2048);
	assert_int_equal(c.tcg_tb_size, 256);
	assert_string_equal(c.tcg_thread, "multi");
	assert_null(c.firmware); /* a LinuxKernel image: UTM skips UEFI */
	assert_string_equal(c.kernel, "vmlinuz");
	assert_string_equal(c.append, "console=ttyS0 quiet");
	assert_int_equal(c.extra_args.n, 2);
	assert_string_equal(c.extra_args.v[1], "virtio-keyboard-pci, x");
	assert_true(c.rng);
	assert_false(c.tpm);
	assert_string_equal(c.usb, "3.0");
	assert_string_equal(c.display_device, "virtio-vga");
	assert_null(c.display);
	assert_string_equal(c.sound, "intel-hda");
	assert_int_equal(c.ndrives, 2);
	assert_string_equal(c.drives[0].id, "drive0");
	assert_string_equal(c.drives[0].image, "hd.qcow2");
	assert_string_equal(c.drives[0].interface, "virtio");
	assert_string_equal(c.drives[0].media, "disk");
	assert_false(c.drives[0].removable);
	assert_string_equal(c.drives[1].id, "CD1");
	assert_null(c.drives[1].image);
	assert_true(c.drives[1].removable);
	assert_string_equal(c.drives[1].media, "cdrom");
	assert_int_equal(c.nnets, 1);
	assert_string_equal(c.nets[0].mode, "user");
	assert_string_equal(c.nets[0].model, "e1000");
	assert_string_equal(c.nets[0].mac, "aa:bb:cc:dd:ee:02");
	assert_int_equal(c.nets[0].forward.n, 2);
	assert_string_equal(c.nets[0].forward.v[0], "tcp::2222-:22");
	assert_string_equal(c.nets[0].forward.v[1], "udp:127.0.0.1:53-10.0.2.15:53");
	assert_int_equal(c.nserials, 2);
	assert_string_equal(c.serials[0].mode, "pty");
	assert_string_equal(c.serials[0].target, "monitor");
	assert_string_equal(c.serials[1].mode, "socket");
	assert_string_equal(c.serials[1].target, "gdb");
	struct buf errs = {0};
	config_apply_defaults(&c);
	assert_int_equal(config_validate(&c, &errs), 0);
	buf_free(&errs);
	config_free(&c);
	plist_meta_free(&meta);
	config_plist_free(doc);
}

static void errors_name_file_and_key(void **state)
{
	(void)state;
	char *e = parse_err(HDR SECTIONS_BUT(
	    "<key>System</key><dict><key>Architecture</key><string>vax</string><key>Target</key><string>q35</string>"
	    "<key>MemorySize</key><integer>1</integer></dict>",
	    DRIVES, NETS, SERIALS, QEMU_SEC));
	assert_string_equal(e, "x.utm/config.plist: System.Architecture: 'vax' is not one of: x86_64, i386, aarch64, "
			       "arm, riscv64, riscv32, ppc, ppc64, m68k, alpha, avr, hppa, loongarch64, microblaze, "
			       "microblazeel, mips, mipsel, mips64, mips64el, or1k, rx, s390x, sh4, sh4eb, sparc, "
			       "sparc64, tricore, xtensa, xtensaeb");
	free(e);
	e = parse_err(HDR SECTIONS_BUT(
	    "<key>System</key><dict><key>Architecture</key><string>ppc</string><key>Target</key><string>mac99</string>"
	    "<key>MemorySize</key><string>lots</string></dict>",
	    DRIVES, NETS, SERIALS, QEMU_SEC));
	assert_string_equal(e, "x.utm/config.plist: System.MemorySize: expected an integer, found a string");
	free(e);
	e = parse_err(HDR SECTIONS_BUT(SYS, "", NETS, SERIALS, QEMU_SEC));
	assert_string_equal(e, "x.utm/config.plist: Drive: missing (UTM requires it)");
	free(e);
	e = parse_err(HDR SECTIONS_BUT(SYS, "<key>Drive</key><array><string>x</string></array>", NETS, SERIALS,
				       QEMU_SEC));
	assert_string_equal(e, "x.utm/config.plist: Drive[0]: expected a dictionary, found a string");
	free(e);
	char *trunc = strndup(full, 400);
	e = parse_err(trunc);
	assert_non_null(strstr(e, "x.utm/config.plist: not a valid property list"));
	free(e);
	free(trunc);
	e = parse_err("<?xml version=\"1.0\"?><plist version=\"1.0\"><array/></plist>");
	assert_string_equal(e, "x.utm/config.plist: not a property list dictionary");
	free(e);
	e = parse_err(HDR "<key>Backend</key><string>QEMU</string><key>ConfigurationVersion</key><integer>5</integer>"
			  "</dict></plist>");
	assert_non_null(strstr(e, "ConfigurationVersion: 5 is not supported"));
	free(e);
}

/* Re-serialised XML of a document, for exact comparison. */
static char *xml_of(void *doc)
{
	char *x = config_plist_xml(doc, NULL);
	assert_non_null(x);
	return x;
}

/* Deep equality: libplist's compare looks at one node, so compare the XML. */
static void assert_same(void *a, void *b)
{
	char *x = xml_of(a), *y = xml_of(b);
	assert_string_equal(x, y);
	free(x);
	free(y);
}

static void unchanged_write_is_identical(const char *text)
{
	struct vm_config c;
	struct plist_meta meta;
	void *doc = parse_ok(&c, text, &meta);
	void *copy = config_plist_copy(doc);
	char *err = NULL;
	if (config_plist_update(copy, &c, 0, NULL, "t", &err) < 0)
		fail_msg("update: %s", err);
	assert_same(doc, copy);
	config_plist_free(copy);
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);
}

static void write_unchanged_keeps_document(void **state)
{
	(void)state;
	unchanged_write_is_identical(full);
	/* every sample bundle, when the samples are at hand */
	const char *dir = VM_SRCDIR "/tests/samples";
	char *t = test_tmpdir();
	char *cmd = xasprintf("cd '%s' && for z in '%s'/*.utm.zip; do bsdtar -xf \"$z\" 2>/dev/null || "
			      "python3 -m zipfile -e \"$z\" . ; done >/dev/null 2>&1",
			      t, dir);
	int r = system(cmd);
	(void)r;
	free(cmd);
	const char *names[] = {"System 7.5.3 (Config Only).utm", "macOS 12 X86-64 (config only).utm"};
	for (int i = 0; i < 2; i++) {
		char *b = path_join(t, names[i]), *p = path_join(b, "config.plist");
		size_t len;
		char *data = read_file(p, &len);
		if (access(dir, F_OK) == 0 && !data)
			fail_msg("%s: not extracted", p);
		if (data) {
			unchanged_write_is_identical(data);
			free(data);
		}
		free(p);
		free(b);
	}
	rm_rf(t);
	free(t);
}

static plist_t at(plist_t root, const char *sec, const char *key)
{
	return plist_dict_get_item(plist_dict_get_item(root, sec), key);
}

static void set_changes_only_that_key(void **state)
{
	(void)state;
	struct vm_config c;
	struct plist_meta meta;
	void *doc = parse_ok(&c, full, &meta);
	void *copy = config_plist_copy(doc);
	char *err = NULL;
	assert_int_equal(config_set(&c, "memory", "1G", &err), 0);
	assert_int_equal(config_plist_update(copy, &c, 0, NULL, "t", &err), 0);
	uint64_t v = 0;
	plist_get_uint_val(at(copy, "System", "MemorySize"), &v);
	assert_int_equal(v, 1024);
	/* put the old value back: the documents are then equal again */
	plist_dict_set_item(plist_dict_get_item(copy, "System"), "MemorySize", plist_new_uint(2048));
	assert_same(doc, copy);

	/* a drive, a forward, the kernel command line */
	assert_int_equal(config_set(&c, "drive.drive0.readonly", "true", &err), 0);
	assert_int_equal(config_add(&c, "net.net0.forward", "tcp:127.0.0.1:8080-:80", &err), 0);
	assert_int_equal(config_set(&c, "append", "console=hvc0", &err), 0);
	assert_int_equal(config_set(&c, "drive.hd9.image", "new.qcow2", &err), 0);
	assert_int_equal(config_plist_update(copy, &c, 0, NULL, "t", &err), 0);
	struct vm_config d;
	struct plist_meta m2;
	char *x = xml_of(copy);
	void *doc2 = parse_ok(&d, x, &m2);
	free(x);
	assert_true(d.drives[0].readonly);
	assert_int_equal(d.nets[0].forward.n, 3);
	assert_string_equal(d.nets[0].forward.v[2], "tcp:127.0.0.1:8080-:80");
	assert_string_equal(d.append, "console=hvc0");
	assert_int_equal(d.ndrives, 3);
	assert_string_equal(d.drives[2].id, "hd9");
	assert_string_equal(d.nets[0].mac, "aa:bb:cc:dd:ee:02");
	/* the vmnet mode and the unknown key are still there */
	assert_string_equal(plist_get_string_ptr(plist_dict_get_item(plist_array_get_item(
							 plist_dict_get_item(doc2, "Network"), 0),
						     "Mode"),
					 NULL),
			    "Shared");
	assert_string_equal(plist_get_string_ptr(at(doc2, "Information", "Unknown"), NULL), "keep me");

	/* what config.plist cannot hold: refused, or listed when lenient */
	assert_int_equal(config_set(&d, "display", "vnc", &err), 0);
	assert_int_equal(config_plist_update(doc2, &d, 0, NULL, "t.utm/config.plist", &err), -1);
	assert_non_null(strstr(err, "t.utm/config.plist: display:"));
	free(err);
	struct buf skipped = {0};
	assert_int_equal(config_plist_update(doc2, &d, CONFIG_PLIST_LENIENT, &skipped, "t", &err), 0);
	assert_non_null(strstr(skipped.s, "display:"));
	buf_free(&skipped);

	config_free(&d);
	plist_meta_free(&m2);
	config_plist_free(doc2);
	config_plist_free(copy);
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);
}

static void new_document_has_all_sections(void **state)
{
	(void)state;
	struct vm_config c;
	struct plist_meta meta;
	void *doc = parse_ok(&c, full, &meta);
	char *err = NULL;
	void *n = config_plist_new(&c, 0, NULL, &err);
	if (!n)
		fail_msg("new: %s", err);
	const char *secs[] = {"Information", "System", "QEMU", "Input", "Sharing",
			      "Display", "Drive", "Network", "Serial", "Sound"};
	for (int i = 0; i < 10; i++)
		assert_non_null(plist_dict_get_item(n, secs[i]));
	char *x = xml_of(n);
	struct vm_config d;
	struct plist_meta m2;
	void *doc2 = parse_ok(&d, x, &m2);
	free(x);
	char *a = config_format_vmconf(&c), *b = config_format_vmconf(&d);
	assert_string_equal(a, b);
	free(a);
	free(b);
	config_free(&d);
	plist_meta_free(&m2);
	config_plist_free(doc2);
	config_plist_free(n);
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);
}

static void apple_and_legacy(void **state)
{
	(void)state;
	static const char apple[] =
	    HDR "<key>Backend</key><string>Apple</string><key>ConfigurationVersion</key><integer>4</integer>"
		"<key>Information</key><dict><key>Name</key><string>a</string></dict>"
		"<key>System</key><dict><key>Architecture</key><string>aarch64</string><key>CPUCount</key>"
		"<integer>2</integer><key>MemorySize</key><integer>4096</integer><key>Boot</key><dict>"
		"<key>OperatingSystem</key><string>Linux</string><key>LinuxKernelPath</key><string>Image</string>"
		"<key>LinuxInitialRamdiskPath</key><string>initrd</string><key>LinuxCommandLine</key>"
		"<string>console=hvc0</string></dict></dict>"
		"<key>Drive</key><array><dict><key>ImageName</key><string>root.img</string><key>Identifier</key>"
		"<string>R</string></dict></array>"
		"<key>Network</key><array><dict><key>Mode</key><string>Shared</string></dict></array>"
		"</dict></plist>";
	struct vm_config c;
	struct plist_meta meta;
	void *doc = parse_ok(&c, apple, &meta);
	assert_int_equal(meta.kind, PLIST_UTM_APPLE);
	assert_non_null(meta.readonly);
	assert_null(meta.not_runnable);
	assert_int_equal(c.cpus, 2);
	assert_int_equal(c.memory, 4096);
	assert_string_equal(c.kernel, "Image");
	assert_string_equal(c.initrd, "initrd");
	assert_string_equal(c.append, "console=hvc0");
	assert_string_equal(c.drives[0].interface, "virtio");
	assert_string_equal(c.nets[0].mode, "user");
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);

	char *mac = xstrdup(apple);
	char *p = strstr(mac, ">Linux<");
	memcpy(p, ">macOS<", 7);
	doc = parse_ok(&c, mac, &meta);
	assert_string_equal(meta.not_runnable, "t.utm/config.plist: a macOS guest needs Apple's "
					       "Virtualization.framework; it cannot run on QEMU");
	free(mac);
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);

	static const char legacy[] =
	    HDR "<key>ConfigurationVersion</key><integer>2</integer>"
		"<key>System</key><dict><key>Architecture</key><string>ppc</string><key>Target</key>"
		"<string>mac99</string><key>Memory</key><integer>256</integer><key>AddArgs</key><array>"
		"<string>-cpu G3</string></array></dict>"
		"<key>Drives</key><array><dict><key>DriveName</key><string>drive0</string><key>ImagePath</key>"
		"<string>os9.qcow2</string><key>ImageType</key><string>disk</string><key>InterfaceType</key>"
		"<string>ide</string></dict></array></dict></plist>";
	doc = parse_ok(&c, legacy, &meta);
	assert_int_equal(meta.kind, PLIST_UTM_LEGACY);
	assert_string_equal(meta.data_dir, "Images");
	assert_non_null(meta.readonly);
	assert_string_equal(c.name, "t");
	assert_int_equal(c.memory, 256);
	assert_string_equal(c.drives[0].image, "os9.qcow2");
	assert_int_equal(c.extra_args.n, 2);
	char *err = NULL;
	assert_int_equal(config_plist_update(doc, &c, 0, NULL, "t", &err), -1);
	free(err);
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);
}

/* Found by tests/fuzz/fuzz_plist (the inputs are in tests/fuzz/regress/plist). */
static void fuzz_regressions(void **state)
{
	(void)state;
	struct vm_config c, d;
	struct plist_meta meta;
	void *doc = NULL;
	char *err = NULL;

	/* a NUL byte in a string: refused (libplist's copy of it overflowed) */
	static const char nul[] = HDR SECTIONS_BUT(
	    "<key>System</key><dict><key>Architecture</key><string>x86_64</string><key>Target</key>"
	    "<string>q35</string><key>CPU</key><string>max\0evil</string><key>MemorySize</key><integer>512</integer></dict>",
	    DRIVES, NETS, SERIALS, QEMU_SEC);
	config_init(&c);
	assert_int_equal(config_parse_plist(&c, "x.utm/config.plist", nul, sizeof nul - 1, &doc, &meta, &err), -1);
	assert_string_equal(err, "x.utm/config.plist: a string or key holds a NUL byte");
	assert_null(doc);
	free(err);
	config_free(&c);

	/* memory out of the model's range, in each kind of document */
	err = parse_err(HDR "<key>ConfigurationVersion</key><integer>2</integer><key>System</key><dict>"
			    "<key>Architecture</key><string>ppc</string><key>Memory</key><integer>72162116969448502</integer>"
			    "</dict></dict></plist>");
	assert_string_equal(err, "x.utm/config.plist: System.Memory: 72162116969448502 MiB is out of range");
	free(err);
	err = parse_err(HDR "<key>Backend</key><string>Apple</string><key>ConfigurationVersion</key><integer>4</integer>"
			    "<key>Information</key><dict/><key>System</key><dict><key>MemorySize</key><integer>0</integer>"
			    "</dict></dict></plist>");
	assert_string_equal(err, "x.utm/config.plist: System.MemorySize: 0 MiB is out of range");
	free(err);

	/* two legacy drives of one name, the second's fallback id taken too:
	 * ids stay unique, so the model survives config_copy */
	static const char dup[] =
	    HDR "<key>ConfigurationVersion</key><integer>2</integer>"
		"<key>System</key><dict><key>Architecture</key><string>ppc</string><key>Target</key>"
		"<string>mac99</string><key>Memory</key><integer>256</integer><key>CPUCount</key>"
		"<integer>18446744073709551615</integer></dict>"
		"<key>Drives</key><array><dict><key>DriveName</key><string>drive1</string><key>ImagePath</key>"
		"<string>a.qcow2</string><key>ImageType</key><string>disk</string></dict>"
		"<dict><key>DriveName</key><string>drive1</string><key>ImagePath</key>"
		"<string>b.qcow2</string><key>ImageType</key><string>disk</string></dict></array></dict></plist>";
	doc = parse_ok(&c, dup, &meta);
	assert_int_equal(c.ndrives, 2);
	assert_string_equal(c.drives[0].id, "drive1");
	assert_string_not_equal(c.drives[1].id, "drive1");
	assert_int_equal(c.cpus, 1024);
	config_copy(&d, &c);
	assert_int_equal(d.ndrives, 2);
	config_free(&d);
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);
}

/* UTM 3 (ConfigurationVersion 2) Drives: each ImageType as UTM 3's
 * argsForDrives used it. none (its efi_vars.fd entry) is no drive for QEMU
 * but stays in the model, so it survives a write-back; bios, kernel,
 * initrd and dtb are firmware and boot files; interface none is a drive
 * without a device. */
#define LEGACY_DRIVE(name, path, type, iface)                                                                    \
	"<dict><key>DriveName</key><string>" name "</string><key>ImagePath</key><string>" path "</string>"      \
	"<key>ImageType</key><string>" type "</string><key>InterfaceType</key><string>" iface "</string></dict>"
static void legacy_image_types(void **state)
{
	(void)state;
	static const char uefi[] =
	    HDR "<key>ConfigurationVersion</key><integer>2</integer>"
		"<key>System</key><dict><key>Architecture</key><string>x86_64</string><key>Target</key>"
		"<string>q35</string><key>Memory</key><integer>512</integer><key>BootUefi</key><true/>"
		"<key>SystemUUID</key><string>11111111-2222-4333-8444-555555555555</string></dict>"
		"<key>Drives</key><array>" LEGACY_DRIVE("efi", "efi_vars.fd", "none", "none")
		    LEGACY_DRIVE("drive1", "hd.qcow2", "disk", "virtio")
			LEGACY_DRIVE("raw0", "raw.img", "disk", "none") "</array></dict></plist>";
	struct vm_config c, d;
	struct plist_meta meta;
	void *doc = parse_ok(&c, uefi, &meta);
	assert_string_equal(c.firmware, "uefi");
	assert_string_equal(c.efi_vars, "efi_vars.fd");
	assert_int_equal(c.ndrives, 3);
	assert_string_equal(c.drives[0].media, "none");
	assert_string_equal(c.drives[0].image, "efi_vars.fd");
	assert_false(c.drives[0].removable);
	assert_string_equal(c.drives[1].media, "disk");
	assert_string_equal(c.drives[1].interface, "virtio");
	assert_string_equal(c.drives[2].interface, "none");

	/* the argv: efi_vars.fd only as the pflash store, raw.img a bare -drive */
	char *tmp = test_tmpdir(), *bpath = xasprintf("%s/l.utm", tmp), *img = xasprintf("%s/Images", bpath);
	mkdir_p(img, 0755);
	char *conf = xasprintf("%s/config.plist", bpath);
	write_text(conf, uefi);
	struct bundle b;
	char *err = NULL;
	assert_int_equal(bundle_open(&b, bpath, &err), 0);
	struct argv_opts o = ARGV_OPTS_INIT;
	o.runtime_dir = "/r";
	o.no_defaults_check = true;
	struct strv av = {0};
	if (argv_build(&b, &o, &av, &err) < 0)
		fail_msg("argv: %s", err);
	int efi = 0, raw = 0, devs = 0;
	for (size_t i = 0; i < av.n; i++) {
		efi += strstr(av.v[i], "efi_vars.fd") != NULL;
		if (strstr(av.v[i], "raw.img")) {
			raw++;
			assert_true(has_prefix(av.v[i], "if=none,id=drive-raw0,"));
		}
		devs += strstr(av.v[i], "drive=drive-raw0") != NULL || strstr(av.v[i], "drive=drive-efi") != NULL;
	}
	assert_int_equal(efi, 1); /* unit=1 pflash, no second user of the file */
	assert_int_equal(raw, 1);
	assert_int_equal(devs, 0);
	strv_free(&av);
	bundle_close(&b);
	rm_rf(tmp);
	free(conf);
	free(img);
	free(bpath);
	free(tmp);

	/* write-back keeps the entry: vm.conf, and UTM 4's config.plist (None) */
	char *vmconf = config_format_vmconf(&c);
	assert_non_null(strstr(vmconf, "media = 'none'"));
	config_init(&d);
	assert_int_equal(config_parse_vmconf(&d, "v", vmconf, &err), 0);
	assert_string_equal(d.drives[0].media, "none");
	config_free(&d);
	free(vmconf);
	void *up = config_plist_upgrade(doc, &c, "l", "l.utm/config.plist", &err);
	assert_non_null(up);
	char *xml = config_plist_xml(up, NULL);
	config_plist_free(up);
	struct plist_meta m2;
	void *doc2 = parse_ok(&d, xml, &m2);
	assert_int_equal(d.ndrives, 3);
	assert_string_equal(d.drives[0].media, "none");
	assert_string_equal(d.drives[0].image, "efi_vars.fd");
	assert_string_equal(d.drives[2].interface, "none");
	assert_non_null(strstr(xml, "<string>None</string>"));
	free(xml);
	config_plist_free(doc2);
	plist_meta_free(&m2);
	config_free(&d);
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);

	/* the firmware and boot files; with a kernel, no UEFI (hasCustomBios) */
	static const char boot[] =
	    HDR "<key>ConfigurationVersion</key><integer>2</integer>"
		"<key>System</key><dict><key>Architecture</key><string>aarch64</string><key>Target</key>"
		"<string>virt</string><key>Memory</key><integer>512</integer><key>BootUefi</key><true/></dict>"
		"<key>Drives</key><array>" LEGACY_DRIVE("b", "fw.bin", "bios", "none")
		    LEGACY_DRIVE("k", "Image", "kernel", "none") LEGACY_DRIVE("i", "initrd.gz", "initrd", "none")
			LEGACY_DRIVE("t", "virt.dtb", "dtb", "none") LEGACY_DRIVE("c", "boot.iso", "cd", "usb")
			    "</array></dict></plist>";
	doc = parse_ok(&c, boot, &meta);
	assert_string_equal(c.bios, "fw.bin");
	assert_string_equal(c.kernel, "Image");
	assert_string_equal(c.initrd, "initrd.gz");
	assert_string_equal(c.dtb, "virt.dtb");
	assert_null(c.firmware);
	assert_int_equal(c.ndrives, 1);
	assert_string_equal(c.drives[0].media, "cdrom");
	assert_string_equal(c.drives[0].interface, "usb");
	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);
}

/* Issue 15 (3): nesting 50,000 deep (XML or binary) crashed libplist's
 * recursion; now one line naming the file. */
static void put_be(struct buf *b, uint64_t v, unsigned n)
{
	for (unsigned i = n; i-- > 0;) {
		char c = (char)(v >> (8 * i));
		buf_add(b, &c, 1);
	}
}

/* A binary plist of n arrays, each holding the next (the last empty); with
 * cycle, the last holds the first. */
static struct buf nested_bplist(unsigned n, bool cycle)
{
	struct buf b = {0};
	buf_add(&b, "bplist00", 8);
	uint64_t *off = xcalloc(n, sizeof *off);
	for (unsigned i = 0; i < n; i++) {
		off[i] = b.len;
		bool last = i == n - 1;
		if (last && !cycle) {
			buf_add(&b, "\xa0", 1);
		} else {
			buf_add(&b, "\xa1", 1);
			put_be(&b, last ? 0 : i + 1, 4);
		}
	}
	uint64_t table = b.len;
	for (unsigned i = 0; i < n; i++)
		put_be(&b, off[i], 4);
	buf_add(&b, "\0\0\0\0\0\0\x04\x04", 8);
	put_be(&b, n, 8);
	put_be(&b, 0, 8);
	put_be(&b, table, 8);
	free(off);
	return b;
}

static char *parse_bytes_err(const char *data, size_t len)
{
	struct vm_config c;
	struct plist_meta meta;
	void *doc = NULL;
	char *err = NULL;
	config_init(&c);
	assert_int_equal(config_parse_plist(&c, "x.utm/config.plist", data, len, &doc, &meta, &err), -1);
	assert_null(doc);
	config_free(&c);
	return err;
}

static void deep_nesting_refused(void **state)
{
	(void)state;
	struct buf x = {0};
	buf_puts(&x, "<?xml version=\"1.0\"?><plist version=\"1.0\">");
	for (int i = 0; i < 50000; i++)
		buf_puts(&x, i % 2 ? "<dict><key>k</key>" : "<array>");
	for (int i = 50000; i-- > 0;)
		buf_puts(&x, i % 2 ? "</dict>" : "</array>");
	buf_puts(&x, "</plist>");
	char *err = parse_err(x.s);
	assert_string_equal(err, "x.utm/config.plist: arrays and dictionaries nested more than 128 deep");
	free(err);
	buf_free(&x);

	struct buf b = nested_bplist(50000, false);
	err = parse_bytes_err(b.s, b.len);
	assert_string_equal(err, "x.utm/config.plist: arrays and dictionaries nested more than 128 deep");
	free(err);
	buf_free(&b);
	b = nested_bplist(3, true);
	err = parse_bytes_err(b.s, b.len);
	assert_non_null(strstr(err, "contains itself"));
	free(err);
	buf_free(&b);
	/* shallow binary nesting goes on to libplist (not a dictionary: refused there) */
	b = nested_bplist(10, false);
	err = parse_bytes_err(b.s, b.len);
	assert_null(strstr(err, "nested"));
	free(err);
	buf_free(&b);
	/* a comment does not hide closing tags */
	err = parse_err(HDR "<!-- </dict></dict></dict> --><key>Backend</key><string>QEMU</string></dict></plist>");
	assert_null(strstr(err, "nested"));
	free(err);
}

/* Issue 15 (3): 100,000 drives took over 30 s (a search per drive). */
/* Parse a document with n drives and copy the model: this process's CPU
 * seconds (not wall time: other work on the host does not count). */
static double drives_cpu_secs(int n)
{
	struct buf x = {0};
	static const char doc_text[] = HDR SECTIONS_BUT(SYS, "<key>Drive</key><array>@</array>", NETS, SERIALS, QEMU_SEC);
	const char *at = strchr(doc_text, '@');
	buf_add(&x, doc_text, (size_t)(at - doc_text));
	for (int i = 0; i < n; i++)
		buf_printf(&x, "<dict><key>Identifier</key><string>d%d</string><key>ImageType</key><string>CD</string>"
			       "<key>Interface</key><string>IDE</string></dict>", i);
	buf_puts(&x, at + 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	struct vm_config c, d;
	struct plist_meta meta;
	void *doc = parse_ok(&c, x.s, &meta);
	assert_int_equal(c.ndrives, n);
	config_copy(&d, &c);
	assert_int_equal(d.ndrives, n);
	char *last = xasprintf("d%d", n - 1);
	assert_string_equal(d.drives[n - 1].id, last);
	free(last);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	config_free(&d);
	config_free(&c);
	config_plist_free(doc);
	plist_meta_free(&meta);
	buf_free(&x);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* Issue 15 (3): 100k drives took over 30 s (quadratic id checks). Ten times
 * the drives must cost about ten times the work, not a hundred: a ratio of
 * CPU times, so a loaded host does not decide it. */
static void many_drives_linear(void **state)
{
	(void)state;
	double small = drives_cpu_secs(10000);
	for (int i = 0; i < 2; i++) {
		double again = drives_cpu_secs(10000);
		if (again < small)
			small = again;
	}
	double big = drives_cpu_secs(100000);
	if (big > 30 * small && big > 1.0)
		fail_msg("10,000 drives: %.3f s; 100,000: %.3f s (%.0fx: not linear)", small, big, big / small);
}

/* Issue 15 (7): every config.plist utmkit writes must be one it (and UTM)
 * reads: each golden config, written as a new document and read back. */
static void golden_configs_round_trip(void **state)
{
	(void)state;
	char *dir = xstrdup(VM_SRCDIR "/tests/golden");
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	int seen = 0;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".conf"))
			continue;
		char *path = xasprintf("%s/%s", dir, de->d_name), *text = read_file(path, NULL), *err = NULL;
		struct vm_config c, back;
		if (config_parse_vmconf(&c, path, text, &err) < 0)
			fail_msg("%s", err);
		struct buf skipped = {0};
		void *doc = config_plist_new(&c, CONFIG_PLIST_LENIENT, &skipped, &err);
		if (!doc)
			fail_msg("%s: write: %s", de->d_name, err);
		size_t len;
		char *xml = config_plist_xml(doc, &len);
		struct plist_meta meta;
		void *doc2 = NULL;
		config_init(&back);
		if (config_parse_plist(&back, de->d_name, xml, len, &doc2, &meta, &err) < 0)
			fail_msg("%s: written, then refused: %s", de->d_name, err);
		assert_string_equal(back.uuid, c.uuid);
		if (c.arch)
			assert_string_equal(back.arch, c.arch);
		if (c.memory)
			assert_int_equal(back.memory, c.memory);
		size_t user_nets = 0;
		for (size_t i = 0; i < c.nnets; i++)
			user_nets += !c.nets[i].mode || !strcmp(c.nets[i].mode, "user");
		assert_int_equal(back.nnets, user_nets);
		if (!skipped.len || !strstr(skipped.s, "drive."))
			assert_int_equal(back.ndrives, c.ndrives);
		seen++;
		buf_free(&skipped);
		free(xml);
		config_plist_free(doc);
		config_plist_free(doc2);
		plist_meta_free(&meta);
		config_free(&back);
		config_free(&c);
		free(text);
		free(path);
	}
	closedir(d);
	free(dir);
	assert_true(seen >= 20);
}

/* Issue 15 (8): a negative plist integer is shown as written. */
static void negative_integers_shown_signed(void **state)
{
	(void)state;
	char *err = parse_err(HDR "<key>Backend</key><string>Apple</string><key>ConfigurationVersion</key>"
				  "<integer>4</integer><key>Information</key><dict/><key>System</key><dict>"
				  "<key>MemorySize</key><integer>-1</integer></dict></dict></plist>");
	assert_string_equal(err, "x.utm/config.plist: System.MemorySize: -1 MiB is out of range");
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(split_like_utm),
	    cmocka_unit_test(reads_every_mapped_key),
	    cmocka_unit_test(errors_name_file_and_key),
	    cmocka_unit_test(write_unchanged_keeps_document),
	    cmocka_unit_test(set_changes_only_that_key),
	    cmocka_unit_test(new_document_has_all_sections),
	    cmocka_unit_test(apple_and_legacy),
	    cmocka_unit_test(fuzz_regressions),
	    cmocka_unit_test(legacy_image_types),

	    cmocka_unit_test(deep_nesting_refused),
	    cmocka_unit_test(many_drives_linear),
	    cmocka_unit_test(golden_configs_round_trip),
	    cmocka_unit_test(negative_integers_shown_signed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
