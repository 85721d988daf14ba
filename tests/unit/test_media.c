/* lib/media.c against a scripted fake QMP peer (tests/unit/fakeqmp.h):
 * what it sends QEMU, and what it makes of QEMU's answers. */
#include <sys/stat.h>

#include "argv.h"
#include "fakeqmp.h"
#include "media.h"

static char *dir;

/* A locked bundle NAME.utm with vm.conf text and a 1 MiB raw Data/disc.iso. */
static void make_bundle(struct bundle *b, const char *name, const char *conf)
{
	char *path = xasprintf("%s/%s.utm", dir, name), *data = path_join(path, "Data");
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(mkdir(data, 0755), 0);
	char *f = path_join(path, "vm.conf");
	write_text(f, conf);
	free(f);
	f = path_join(data, "disc.iso");
	char *zeros = xcalloc(1, 1 << 20);
	assert_int_equal(write_file_atomic(f, zeros, 1 << 20, 0644), 0);
	free(zeros);
	free(f);
	char *err = NULL;
	if (bundle_open_flags(b, path, BUNDLE_LOCK, &err) < 0)
		fail_msg("%s", err);
	free(path);
	free(data);
}

static const char conf_cd[] = "uuid = '11111111-2222-4333-8444-555555555555'\n"
			      "drive cd0 {\nmedia = 'cdrom'\n}\n";

static void peer_blocks(int fd)
{
	p_reply(fd, p_expect(fd, "query-block"),
		"[{\"device\": \"drive-cd0\", \"qdev\": \"cd0\", \"locked\": true, \"tray_open\": false}]");
	p_reply(fd, p_expect(fd, "query-fdsets"), "[]");
}

static void peer_insert(int fd)
{
	p_greet(fd);
	peer_blocks(fd);
	p_reply(fd, p_expect(fd, "add-fd"), "{\"fdset-id\": 7, \"fd\": 9}");
	p_reply(fd, p_expect_args(fd, "blockdev-change-medium", "id", "cd0", "filename", "/dev/fdset/7", "format",
				  "raw", "read-only-mode", "retain", "device", NULL, NULL),
		"{}");
	p_drain(fd);
}

/* insert: blockdev-change-medium naming the drive by its qdev id, the file
 * as an fd set, the format; then the config names the disc */
static void insert_sends_change_medium(void **state)
{
	(void)state;
	struct bundle b;
	make_bundle(&b, "insert", conf_cd);
	struct qmp *q = start_ok(peer_insert);
	struct media m;
	media_init(&m, &b, q);
	char *err = NULL, *iso = xasprintf("%s/Data/disc.iso", b.path);
	if (media_insert(&m, "cd0", iso, false, false, &err) < 0)
		fail_msg("%s", err);
	assert_string_equal(config_drive(&b.cfg, "cd0")->image, "disc.iso");
	assert_string_equal(config_drive(&b.cfg, "cd0")->format, "raw");
	free(iso);
	media_free(&m);
	end_peer(q);
	bundle_close(&b);
}

static void peer_eject_locked(int fd)
{
	p_greet(fd);
	peer_blocks(fd);
	p_error(fd, p_expect_args(fd, "eject", "id", "cd0", NULL),
		"Device 'cd0' is locked and force was not specified, wait for tray to open and try again");
	p_drain(fd);
}

/* eject of a locked tray: the clear error, the config unchanged */
static void eject_locked_tray(void **state)
{
	(void)state;
	struct bundle b;
	make_bundle(&b, "eject", "uuid = '11111111-2222-4333-8444-555555555555'\n"
				 "drive cd0 {\nmedia = 'cdrom'\nimage = 'disc.iso'\nformat = 'raw'\n}\n");
	struct qmp *q = start_ok(peer_eject_locked);
	struct media m;
	media_init(&m, &b, q);
	char *err = NULL;
	assert_int_equal(media_eject(&m, "cd0", false, &err), -1);
	assert_non_null(strstr(err, "drive cd0: the guest has locked the tray (a mounted disc?)"));
	assert_non_null(strstr(err, "eject again once it has, or use --force"));
	assert_string_equal(config_drive(&b.cfg, "cd0")->image, "disc.iso");
	free(err);
	media_free(&m);
	end_peer(q);
	bundle_close(&b);
}

static const char pci_ports[] =
    "[{\"bus\": 0, \"devices\": ["
    "{\"qdev_id\": \"\", \"slot\": 0},"
    "{\"qdev_id\": \"rp1\", \"pci_bridge\": {\"devices\": [{\"qdev_id\": \"hd0\"}]}},"
    "{\"qdev_id\": \"rp2\", \"pci_bridge\": {\"devices\": []}}]}]";

static void peer_plug(int fd)
{
	p_greet(fd);
	p_reply(fd, p_expect(fd, "query-pci"), pci_ports);
	p_reply(fd, p_expect(fd, "add-fd"), "{\"fdset-id\": 3, \"fd\": 9}");
	p_reply(fd, p_expect(fd, "add-fd"), "{\"fdset-id\": 3, \"fd\": 10}");
	p_reply(fd, p_expect_args(fd, "blockdev-add", "driver", "raw", "node-name", "drive-vd1", NULL), "{}");
	p_reply(fd, p_expect_args(fd, "device_add", "driver", "virtio-blk-pci", "bus", "rp2", "drive", "drive-vd1",
				  "id", "vd1", NULL),
		"{}");
	p_drain(fd);
}

/* hot-plug: the device argv would give it, into the free root port */
static void plug_picks_free_root_port(void **state)
{
	(void)state;
	struct bundle b;
	make_bundle(&b, "plug", "uuid = '11111111-2222-4333-8444-555555555555'\n"
				"drive vd1 {\nimage = 'disc.iso'\nformat = 'raw'\n}\n");
	struct qmp *q = start_ok(peer_plug);
	struct media m;
	media_init(&m, &b, q);
	char *err = NULL, *path = xasprintf("%s/Data/disc.iso", b.path);
	if (media_plug(&m, config_drive(&m.eff, "vd1"), path, "raw", &err) < 0)
		fail_msg("%s", err);
	free(path);
	media_free(&m);
	end_peer(q);
	bundle_close(&b);
}

static void peer_no_port(int fd)
{
	p_greet(fd);
	p_reply(fd, p_expect(fd, "query-pci"),
		"[{\"bus\": 0, \"devices\": [{\"qdev_id\": \"rp1\", \"pci_bridge\": {\"devices\": [{}]}}]}]");
	p_drain(fd);
}

/* every root port taken: a clear refusal before anything is added */
static void plug_without_free_port(void **state)
{
	(void)state;
	struct bundle b;
	make_bundle(&b, "noport", "uuid = '11111111-2222-4333-8444-555555555555'\n"
				  "drive vd1 {\nimage = 'disc.iso'\nformat = 'raw'\n}\n");
	struct qmp *q = start_ok(peer_no_port);
	struct media m;
	media_init(&m, &b, q);
	char *err = NULL, *path = xasprintf("%s/Data/disc.iso", b.path);
	assert_int_equal(media_plug(&m, config_drive(&m.eff, "vd1"), path, "raw", &err), -1);
	assert_non_null(strstr(err, "drive vd1: no free PCIe slot to hot-plug into"));
	free(err);
	free(path);
	media_free(&m);
	end_peer(q);
	bundle_close(&b);
}

/* IDE has no hot-plug: refused without a word to QEMU */
static void plug_ide_refused(void **state)
{
	(void)state;
	struct bundle b;
	make_bundle(&b, "ide", conf_cd);
	struct media m;
	media_init(&m, &b, NULL);
	char *err = NULL;
	assert_int_equal(media_plug(&m, config_drive(&m.eff, "cd0"), NULL, NULL, &err), -1);
	assert_non_null(strstr(err, "drive cd0: ide drives cannot be hot-plugged"));
	free(err);
	media_free(&m);
	bundle_close(&b);
}

/* the free port search looks behind bridges too */
static void free_port_search(void **state)
{
	(void)state;
	struct json_object *pci = json_tokener_parse(pci_ports), *devs;
	json_object_object_get_ex(json_object_array_get_idx(pci, 0), "devices", &devs);
	assert_string_equal(media_free_pci_port(devs), "rp2");
	json_object_put(pci);
	struct json_object *none = json_tokener_parse("[{\"qdev_id\": \"x\"}]");
	assert_null(media_free_pci_port(none));
	json_object_put(none);
}

/* argv and hot-plug share one device description */
static void drive_devices(void **state)
{
	(void)state;
	struct vm_config c;
	config_init(&c);
	c.arch = xstrdup("s390x");
	struct vm_drive *d = config_add_drive(&c, "hd0");
	config_apply_defaults(&c);
	struct drive_device dd;
	drive_device(&c, d, &dd);
	assert_string_equal(dd.driver, "virtio-blk-ccw");
	assert_false(dd.pci);
	assert_false(machine_is_pcie(&c));
	config_free(&c);
	config_init(&c);
	d = config_add_drive(&c, "u0");
	d->interface = xstrdup("usb");
	d->media = xstrdup("cdrom");
	config_apply_defaults(&c);
	drive_device(&c, d, &dd);
	assert_string_equal(dd.driver, "usb-storage");
	assert_string_equal(dd.bus, "usb.0");
	assert_int_equal(dd.removable, 1);
	assert_true(machine_is_pcie(&c));
	config_free(&c);
}

/* stale temporary images of a killed run go (.NAME.tmp.PID), others stay */
static void stale_tmp_files(void **state)
{
	(void)state;
	struct bundle b;
	make_bundle(&b, "tmp", conf_cd);
	struct media m;
	media_init(&m, &b, NULL);
	char *stale = xasprintf("%s/Data/.hd1.qcow2.tmp.12345", b.path),
	     *other = xasprintf("%s/Data/.hd1.qcow2.tmp.12x", b.path), *err = NULL;
	write_text(stale, "");
	write_text(other, "");
	char *t = media_tmp_in_data(&m, "hd1.qcow2", &err);
	assert_non_null(t);
	assert_false(file_exists(stale));
	assert_true(file_exists(other));
	write_text(t, "x");
	media_drop_tmp(&m);
	assert_false(file_exists(t));
	free(t);
	free(stale);
	free(other);
	media_free(&m);
	bundle_close(&b);
}

int main(void)
{
	dir = test_tmpdir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(insert_sends_change_medium), cmocka_unit_test(eject_locked_tray),
	    cmocka_unit_test(plug_picks_free_root_port),  cmocka_unit_test(plug_without_free_port),
	    cmocka_unit_test(plug_ide_refused),		  cmocka_unit_test(free_port_search),
	    cmocka_unit_test(drive_devices),		  cmocka_unit_test(stale_tmp_files),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char *rm = xasprintf("rm -rf '%s'", dir);
	if (system(rm) != 0)
		r = 1;
	free(rm);
	free(dir);
	return r;
}
