/* lib/cloudinit.c: what user-data cloud-init acts on, SSH public keys (and
 * the private keys and typos that must be refused), host names, meta-data
 * made or merged, and the seed image read back with libarchive. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "cloudinit.h"
#include "testutil.h"

#define ED25519 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc me@host"
#define ECDSA                                                                                                  \
	"ecdsa-sha2-nistp256 "                                                                                 \
	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLpaxL/sM2csKQbe4Qx4IzgfsVS2eaJZBxRDeweVNluCVa07Ft" \
	"YLqLxYqgqExITdwpLscE2hYC+i+Bn3D2BNOrU= e@x"

static void test_user_data_kind(void **state)
{
	static const struct {
		const char *data, *kind;
	} cases[] = {
	    {"#cloud-config\nusers: [default]\n", "cloud-config"},
	    {"  \n#Cloud-Config\r\n", "cloud-config"}, /* as cloud-init: case and leading space */
	    {"#cloud-config-archive\n- type: foo\n", "cloud-config archive"},
	    {"#!/bin/sh\necho hi\n", "shell script"},
	    {"#include\nhttp://example.org/ud\n", "include"},
	    {"#include-once\nhttp://example.org/ud\n", "include-once"},
	    {"#cloud-boothook\n#!/bin/sh\n", "boothook"},
	    {"## template: jinja\n#cloud-config\n", "jinja template"},
	    {"Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n", "MIME multipart"},
	    {"", "empty"},
	    {" \n\n", "empty"},
	    {"users:\n  - default\n", NULL}, /* YAML without its header: cloud-init ignores it */
	    {"# cloud-config\n", NULL},
	    {"\xef\xbb\xbf#cloud-config\n", NULL},
	    {"hello", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *k = cloudinit_user_data_kind(cases[i].data, strlen(cases[i].data));
		if (cases[i].kind)
			assert_non_null(k), assert_string_equal(k, cases[i].kind);
		else if (k)
			fail_msg("'%s' taken for %s", cases[i].data, k);
	}
	assert_string_equal(cloudinit_user_data_kind("\x1f\x8b\x08\0", 4), "gzip");
}

/* parse text as a key file; the keys joined by "|", or "ERR: message" */
static char *keys_of(const char *text)
{
	struct strv keys = {0};
	char *err = NULL;
	struct buf b = {0};
	if (cloudinit_parse_keys("keyfile", text, strlen(text), &keys, &err) < 0) {
		assert_int_equal(keys.n, 0);
		buf_printf(&b, "ERR: %s", err);
		free(err);
	} else {
		for (size_t i = 0; i < keys.n; i++)
			buf_printf(&b, "%s%s", i ? "|" : "", keys.v[i]);
	}
	strv_free(&keys);
	return b.s;
}

static void expect_keys(const char *text, const char *want)
{
	char *got = keys_of(text);
	assert_string_equal(got, want);
	free(got);
}

static void expect_key_error(const char *text, const char *want)
{
	char *got = keys_of(text);
	if (!strstr(got, want))
		fail_msg("'%s' lacks '%s'", got, want);
	free(got);
}

static void test_keys(void **state)
{
	expect_keys(ED25519 "\n", ED25519);
	expect_keys(ED25519, ED25519); /* no newline at the end */
	expect_keys("# mine\n\n  " ED25519 "  \r\n" ECDSA "\n", ED25519 "|" ECDSA);
	/* authorized_keys options come first, and stay */
	expect_keys("no-pty,from=\"10.0.0.0/8\" " ED25519 "\n", "no-pty,from=\"10.0.0.0/8\" " ED25519);
	/* no comment */
	expect_keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc\n",
		    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc");

	expect_key_error("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
			 "-----END OPENSSH PRIVATE KEY-----\n",
			 "keyfile: a private key");
	expect_key_error("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n", "a private key");
	expect_key_error("PuTTY-User-Key-File-3: ssh-ed25519\n", "a private key");
	expect_key_error("---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n",
			 "an RFC 4716 (SSH2) public key; convert it with: ssh-keygen -i -f");
	expect_key_error("", "keyfile: no SSH public key in it");
	expect_key_error("# only a comment\n\n", "no SSH public key");
	/* a type that does not match the blob, a typo in the blob, a truncated blob */
	expect_key_error("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc x\n",
			 "keyfile:1: not an SSH public key");
	expect_key_error("ssh-ed25519 AAAAC3NzaC1lZDI1NTE6AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc\n",
			 "keyfile:1: not an SSH public key");
	expect_key_error("ssh-ed25519 AAAAC3Nza\n", "keyfile:1: not an SSH public key");
	expect_key_error(ED25519 "\nhello world\n", "keyfile:2: not an SSH public key");
	expect_key_error("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc\x01\n",
			 "keyfile:1: a control character");
	struct strv keys = {0};
	char *err = NULL;
	assert_int_equal(cloudinit_parse_keys("keyfile", ED25519 "\0y", sizeof ED25519 + 1, &keys, &err), -1);
	assert_string_equal(err, "keyfile: not an SSH public key (a binary file)");
	assert_int_equal(keys.n, 0);
	free(err);
	/* a certificate: its blob names the certificate type */
	expect_key_error("ssh-ed25519-cert-v01@openssh.com "
			 "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4 x\n",
			 "keyfile:1: an SSH certificate");
}

static void test_hostname(void **state)
{
	static const char *const cases[][2] = {
	    {"debian", "debian"},	{"My VM", "my-vm"},	    {"  web--01 (test) ", "web-01-test"},
	    {"ünïcode", "n-code"},	{"a.b_c", "a-b-c"},	    {"---", NULL},
	    {"", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *h = cloudinit_hostname(cases[i][0]);
		if (cases[i][1])
			assert_non_null(h), assert_string_equal(h, cases[i][1]);
		else
			assert_null(h);
		free(h);
	}
	assert_null(cloudinit_hostname(NULL));
	char long_name[200];
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	long_name[62] = ' ';
	char *h = cloudinit_hostname(long_name);
	assert_int_equal(strlen(h), 62); /* "aaa...a" (62): the dash and more do not fit */
	free(h);
}

struct files {
	char *dir, *ud, *md, *nc, *key, *key2, *priv;
};

static struct files make_files(void)
{
	struct files f;
	f.dir = test_tmpdir();
	f.ud = path_join(f.dir, "user data");
	f.md = path_join(f.dir, "meta-data");
	f.nc = path_join(f.dir, "network-config");
	f.key = path_join(f.dir, "key one.pub");
	f.key2 = path_join(f.dir, "authorized_keys");
	f.priv = path_join(f.dir, "id");
	write_text(f.ud, "#cloud-config\npackages: [nginx]\n");
	write_text(f.nc, "version: 2\nethernets: {}\n");
	write_text(f.key, ED25519 "\n");
	write_text(f.key2, "# two\n" ECDSA "\n");
	write_text(f.priv, "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n");
	return f;
}

static void free_files(struct files *f)
{
	rm_rf(f->dir);
	free(f->dir);
	free(f->ud);
	free(f->md);
	free(f->nc);
	free(f->key);
	free(f->key2);
	free(f->priv);
}

static void test_load_made_meta_data(void **state)
{
	struct files f = make_files();
	struct strv keys = {0};
	strv_push(&keys, f.key);
	strv_push(&keys, f.key2);
	struct cloudinit_opts o = {.user_data = f.ud, .ssh_keys = &keys, .instance_id = "1234-ab", .hostname = "Web 1"};
	struct cloudinit_seed s;
	char *err = NULL;
	assert_int_equal(cloudinit_load(&o, &s, &err), 0);
	assert_string_equal(s.kind, "cloud-config");
	assert_int_equal(s.user_data_len, strlen("#cloud-config\npackages: [nginx]\n"));
	assert_memory_equal(s.user_data, "#cloud-config\npackages: [nginx]\n", s.user_data_len);
	assert_string_equal(s.meta_data, "instance-id: \"1234-ab\"\n"
					 "local-hostname: \"web-1\"\n"
					 "public-keys:\n"
					 "  - \"" ED25519 "\"\n"
					 "  - \"" ECDSA "\"\n");
	assert_null(s.network_config);
	cloudinit_seed_free(&s);

	/* a key comment with quotes and backslashes stays one YAML string */
	write_text(f.key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc a\"b\\c\n");
	strv_free(&keys);
	strv_push(&keys, f.key);
	o.hostname = NULL;
	assert_int_equal(cloudinit_load(&o, &s, &err), 0);
	assert_string_equal(s.meta_data,
			    "instance-id: \"1234-ab\"\n"
			    "public-keys:\n"
			    "  - \"ssh-ed25519 "
			    "AAAAC3NzaC1lZDI1NTE5AAAAIOtABIUC/YYHupD5ETh3rJ8qhHABeU/J6OpW/NrX5KWc a\\\"b\\\\c\"\n");
	cloudinit_seed_free(&s);
	strv_free(&keys);
	free_files(&f);
}

static void test_load_given_meta_data(void **state)
{
	struct files f = make_files();
	struct strv keys = {0};
	struct cloudinit_opts o = {.user_data = f.ud, .meta_data = f.md, .network_config = f.nc,
				   .ssh_keys = &keys, .instance_id = "ignored", .hostname = "ignored"};
	struct cloudinit_seed s;
	char *err = NULL;

	/* as given, byte for byte, without keys */
	write_text(f.md, "instance-id: mine\nlocal-hostname: box");
	assert_int_equal(cloudinit_load(&o, &s, &err), 0);
	assert_string_equal(s.meta_data, "instance-id: mine\nlocal-hostname: box");
	assert_int_equal(s.network_config_len, strlen("version: 2\nethernets: {}\n"));
	cloudinit_seed_free(&s);

	/* YAML: the keys at the end */
	strv_push(&keys, f.key);
	assert_int_equal(cloudinit_load(&o, &s, &err), 0);
	assert_string_equal(s.meta_data, "instance-id: mine\nlocal-hostname: box\npublic-keys:\n  - \"" ED25519 "\"\n");
	cloudinit_seed_free(&s);

	/* JSON: a "public-keys" member */
	write_text(f.md, "{\"instance-id\": \"j1\"}\n");
	assert_int_equal(cloudinit_load(&o, &s, &err), 0);
	assert_non_null(strstr(s.meta_data, "\"instance-id\":\"j1\"") ? s.meta_data
								      : strstr(s.meta_data, "\"instance-id\": \"j1\""));
	assert_non_null(strstr(s.meta_data, "\"public-keys\""));
	assert_non_null(strstr(s.meta_data, "me@host"));
	cloudinit_seed_free(&s);

	/* keys there already: the user says where they go */
	write_text(f.md, "instance-id: mine\npublic-keys:\n  - ssh-rsa AAAA\n");
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	assert_non_null(strstr(err, "meta-data: has public-keys already"));
	free(err);
	write_text(f.md, "{\"public-keys\": []}");
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	assert_non_null(strstr(err, "has public-keys already"));
	free(err);
	write_text(f.md, "{\"instance-id\": ");
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	assert_non_null(strstr(err, "meta-data: not valid JSON"));
	free(err);
	strv_free(&keys);
	free_files(&f);
}

static void test_load_refusals(void **state)
{
	struct files f = make_files();
	struct strv keys = {0};
	struct cloudinit_opts o = {.user_data = f.ud, .ssh_keys = &keys, .instance_id = "x"};
	struct cloudinit_seed s;
	char *err = NULL, *want;

	strv_push(&keys, f.priv);
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	want = xasprintf("%s: a private key, which must not be copied into a VM; give its public key", f.priv);
	assert_string_equal(err, want);
	free(want);
	free(err);
	/* with the .pub beside it, the message names it */
	char *pub = xasprintf("%s.pub", f.priv);
	write_text(pub, ED25519 "\n");
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	want = xasprintf("(%s)", pub);
	assert_non_null(strstr(err, want));
	free(want);
	free(err);
	free(pub);
	strv_free(&keys);

	char *missing = path_join(f.dir, "nosuch");
	strv_push(&keys, missing);
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	want = xasprintf("%s: No such file or directory", missing);
	assert_string_equal(err, want);
	free(want);
	free(err);
	strv_free(&keys);

	o.user_data = missing;
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	assert_non_null(strstr(err, "nosuch: No such file or directory"));
	free(err);
	o.user_data = f.dir;
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	assert_non_null(strstr(err, "Is a directory"));
	free(err);

	write_text(f.ud, "users:\n  - default\n");
	o.user_data = f.ud;
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	want = xasprintf("%s: cloud-init would ignore it: the first line must be #cloud-config", f.ud);
	assert_true(has_prefix(err, want));
	assert_non_null(strstr(err, "not 'users:'"));
	free(want);
	free(err);
	write_text(f.ud, "\xef\xbb\xbf#cloud-config\n");
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	assert_non_null(strstr(err, "byte order mark"));
	free(err);

	o.user_data = f.ud;
	write_text(f.ud, "#cloud-config\n");
	o.network_config = missing;
	assert_int_equal(cloudinit_load(&o, &s, &err), -1);
	assert_non_null(strstr(err, "nosuch: No such file"));
	free(err);
	free(missing);
	free_files(&f);
}

/* name=content of each file in the image, as libarchive reads it back */
static char *read_back(const char *path)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_iso9660(a);
	if (archive_read_open_filename(a, path, 10240) != ARCHIVE_OK)
		fail_msg("%s: %s", path, archive_error_string(a));
	struct buf out = {0};
	struct archive_entry *e;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		char data[4096];
		la_ssize_t n = archive_read_data(a, data, sizeof data - 1);
		data[n > 0 ? n : 0] = '\0';
		buf_printf(&out, "[%s=%s]", archive_entry_pathname(e), data);
	}
	archive_read_free(a);
	return out.s ? out.s : xstrdup("");
}

static void test_write(void **state)
{
	struct files f = make_files();
	struct cloudinit_opts o = {.user_data = f.ud, .network_config = f.nc, .instance_id = "id-1", .hostname = "h"};
	struct cloudinit_seed s;
	char *err = NULL, *iso = path_join(f.dir, "seed.iso");
	assert_int_equal(cloudinit_load(&o, &s, &err), 0);
	assert_int_equal(cloudinit_write(&s, iso, &err), 0);
	char *got = read_back(iso);
	assert_non_null(strstr(got, "[user-data=#cloud-config\npackages: [nginx]\n]"));
	assert_non_null(strstr(got, "[meta-data=instance-id: \"id-1\"\nlocal-hostname: \"h\"\n]"));
	assert_non_null(strstr(got, "[network-config=version: 2\nethernets: {}\n]"));
	free(got);
	/* the label, in the Joliet descriptor as given (blkid and cloud-init read it) */
	int fd = open(iso, O_RDONLY);
	unsigned char d[2048];
	assert_int_equal(pread(fd, d, sizeof d, 17 * 2048), (ssize_t)sizeof d);
	close(fd);
	assert_int_equal(d[0], 2);
	assert_memory_equal(d + 40, "\0c\0i\0d\0a\0t\0a\0 ", 13);
	/* written again: replaced */
	cloudinit_seed_free(&s);
	o.network_config = NULL;
	assert_int_equal(cloudinit_load(&o, &s, &err), 0);
	assert_int_equal(cloudinit_write(&s, iso, &err), 0);
	got = read_back(iso);
	assert_null(strstr(got, "network-config"));
	free(got);
	/* a folder that does not exist: an error naming the image, nothing made */
	char *bad = path_join(f.dir, "no/seed.iso");
	assert_int_equal(cloudinit_write(&s, bad, &err), -1);
	assert_non_null(strstr(err, "no/seed.iso"));
	free(err);
	free(bad);
	cloudinit_seed_free(&s);
	free(iso);
	free_files(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_user_data_kind),    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_hostname),	      cmocka_unit_test(test_load_made_meta_data),
	    cmocka_unit_test(test_load_given_meta_data), cmocka_unit_test(test_load_refusals),
	    cmocka_unit_test(test_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
