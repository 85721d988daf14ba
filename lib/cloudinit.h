/* cloud-init NoCloud seeds: an ISO 9660 image labelled "cidata" holding
 * user-data, meta-data and, when given, network-config, which a stock cloud
 * image (Debian, Ubuntu, Fedora ...) finds by its label on first boot, as
 * virt-install --cloud-init, Lima and cloud-localds(1) make them.
 *
 * Used by vm-create --cloud-init and vm-disk cloud-init, in two steps, so a
 * tool can check every input before it makes anything:
 *
 *	struct cloudinit_opts o = {.user_data = "user-data", .instance_id = uuid, .hostname = name};
 *	struct cloudinit_seed s;
 *	if (cloudinit_load(&o, &s, &err) < 0 || cloudinit_write(&s, "Data/seed.iso", &err) < 0) ...
 *	cloudinit_seed_free(&s);
 *
 * SSH keys go into meta-data as a "public-keys" list, which every cloud-init
 * datasource reads (DataSource.get_public_ssh_keys) and cc_ssh authorizes for
 * the image's default user (debian, ubuntu ...): this works whatever the
 * user-data is (#cloud-config, a script, MIME multipart, gzip) and never
 * rewrites the user's YAML. */
#ifndef VM_CLOUDINIT_H
#define VM_CLOUDINIT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define CLOUDINIT_LABEL "cidata"

struct cloudinit_opts {
	const char *user_data;	    /* a file, used as it is; required */
	const char *meta_data;	    /* a file (YAML or JSON), or NULL: made from the next two */
	const char *network_config; /* a file, or NULL: none (cloud-init's fallback, DHCP) */
	const struct strv *ssh_keys; /* files of SSH public keys (authorized_keys format); may be NULL */
	const char *instance_id;    /* made meta-data: instance-id (the bundle's UUID) */
	const char *hostname;	    /* made meta-data: local-hostname, made a valid host name; may be NULL */
};

struct cloudinit_seed {
	char *user_data;
	size_t user_data_len;
	char *meta_data; /* text */
	char *network_config;
	size_t network_config_len;
	const char *kind; /* what the user-data is, for messages: "cloud-config", "shell script" ... */
};

/* Read and check the files and make meta-data. On failure -1 and *err, one
 * line naming the file: a file that cannot be read, user-data that cloud-init
 * would ignore (no known first line), a private key given for a public one,
 * a line that is not an SSH public key, meta-data that already has keys. */
int cloudinit_load(const struct cloudinit_opts *o, struct cloudinit_seed *s, char **err);

/* Write the seed image at path (atomically: a temporary file renamed into
 * place, replacing what was there; nothing on failure). */
int cloudinit_write(const struct cloudinit_seed *s, const char *path, char **err);

void cloudinit_seed_free(struct cloudinit_seed *s);

/* The parts, for tests. */

/* What cloud-init takes data (user-data) for: "cloud-config", "shell script",
 * "include", ... or NULL when it would ignore it. Empty data is "empty". */
const char *cloudinit_user_data_kind(const char *data, size_t len);

/* The SSH public keys in text (the file path, for messages), one a line,
 * appended to keys as the lines were written. */
int cloudinit_parse_keys(const char *path, const char *text, size_t len, struct strv *keys, char **err);

/* name as a host name (RFC 1123 label): letters, digits and '-', other runs
 * of characters become one '-', at most 63; NULL when nothing is left. */
char *cloudinit_hostname(const char *name);

#endif
