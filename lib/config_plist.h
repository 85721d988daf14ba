/* UTM's config.plist codec (config_plist.c, libplist, opened on first use):
 * the document itself (a plist_t) is kept opaque here as void *. It depends
 * on the model (config.h) only; bundle.c is what chooses it over vm.conf. */
#ifndef VM_CONFIG_PLIST_H
#define VM_CONFIG_PLIST_H

#include "config.h"

enum plist_kind {
	PLIST_UTM_QEMU = 1, /* Backend QEMU, ConfigurationVersion 4 */
	PLIST_UTM_LEGACY,   /* no Backend: UTM 3's ConfigurationVersion 2 (Images/, view.plist) */
	PLIST_UTM_APPLE,    /* Backend Apple (Virtualization.framework) */
};
struct plist_meta {
	enum plist_kind kind;
	long long version;  /* ConfigurationVersion */
	char *readonly;     /* why writes are refused (legacy, Apple), or NULL */
	char *not_runnable; /* why QEMU cannot run it (a macOS guest ...), or NULL */
	const char *data_dir; /* "Data", or "Images" in a legacy bundle */
	struct buf notices; /* lines for stderr: vmnet mode, read-only ... */
};
/* Open libplist (once): 0, or -1 with *err when it is not installed. Every
 * function below that takes err does it first; those that take a document
 * need none (a document exists only once libplist is open). */
int config_plist_load(char **err);
/* Parse a config.plist (XML or binary). path names the file in messages:
 * "PATH: System.Architecture: 'vax' is not one of: ...". On success *doc
 * holds the document (config_plist_free it) and meta what else was found. */
int config_parse_plist(struct vm_config *c, const char *path, const char *data, size_t len, void **doc,
		       struct plist_meta *meta, char **err);
void plist_meta_free(struct plist_meta *m);
/* Flags for writing. LENIENT: skip what config.plist cannot hold (listing
 * "key: why" lines in *skipped) instead of failing. */
#define CONFIG_PLIST_LENIENT 1
/* Write c into doc (a QEMU v4 document), changing only the keys of the
 * fields that differ from what doc decodes to: every other key stays as it
 * was. On failure doc may be half changed: work on a config_plist_copy. */
int config_plist_update(void *doc, const struct vm_config *c, int flags, struct buf *skipped, const char *path,
			char **err);
/* A new QEMU v4 document for c (all ten sections, UTM's defaults for the
 * keys the model does not have); NULL with *err. */
void *config_plist_new(const struct vm_config *c, int flags, struct buf *skipped, char **err);
/* The v4 document UTM 4 makes of a legacy (ConfigurationVersion 2) one, as
 * UTMQemuConfiguration(migrating:) does; name is the bundle's name. */
void *config_plist_upgrade(const void *legacy_doc, const struct vm_config *legacy_cfg, const char *name,
			   const char *path, char **err);
/* What a legacy view.plist held that has no place in config.plist (removable
 * drive paths, the shared folder), one line each, for the user. */
void config_plist_view_notes(const char *data, size_t len, struct buf *out);
char *config_plist_xml(const void *doc, size_t *len); /* malloc'd XML text */
void *config_plist_copy(const void *doc);
void config_plist_free(void *doc);
/* Split one AdditionalArguments entry the way UTM does: on whitespace, a
 * "double-quoted" part may hold spaces, every double quote is dropped. */
void config_split_utm_args(const char *s, struct strv *out);

#endif
