/* A .utm bundle: a folder with vm.conf (or UTM's config.plist) and Data/. */
#ifndef VM_BUNDLE_H
#define VM_BUNDLE_H

#include <stdbool.h>

#include "config.h"
#include "config_plist.h"

enum bundle_format { BUNDLE_VMCONF, BUNDLE_PLIST };

struct bundle {
	char *path;      /* as found: "dir/demo.utm" (no trailing slash) */
	char *conf_path; /* path/vm.conf */
	enum bundle_format format;
	struct vm_config cfg;
	struct strv allow; /* host paths outside the bundle allowed by the user (--allow-path) */
	int lock_fd;    /* BUNDLE_LOCK: the bundle folder, flock'ed */
	void *plist_doc;          /* BUNDLE_PLIST: the original document, so writes keep unknown keys */
	struct plist_meta plist; /* BUNDLE_PLIST: kind, read-only/not-runnable reasons */
};

/* bundle_open flags. BUNDLE_LOCK: take an exclusive lock on the bundle
 * before reading, so read-modify-write (vm-config set) never loses an update. */
#define BUNDLE_LOCK 1

/* Find a bundle: a path (with or without .utm), else NAME or NAME.utm in each
 * folder of $VM_PATH. Returns a malloc'd path or NULL with errno. */
char *bundle_find(const char *name_or_path);

/* Open and parse. On failure returns -1 and *err is one line naming the file. */
int bundle_open(struct bundle *b, const char *name_or_path, char **err);
int bundle_open_flags(struct bundle *b, const char *name_or_path, int flags, char **err);
void bundle_close(struct bundle *b);

/* The config with every default filled in (a deep copy; config_free it). */
void bundle_effective_config(const struct bundle *b, struct vm_config *out);

/* A UTM 3 (ConfigurationVersion 2) bundle to UTM 4's layout, as UTM 4 does:
 * a v4 config.plist, Images/ renamed Data/, view.plist folded in (what has no
 * place is printed). Each step is an atomic rename; close b afterwards. */
int bundle_upgrade(struct bundle *b, char **err);

/* Remove the temporary files NAME.tmp.XXXXXX or NAME.tmp.PID that a killed
 * writer left in the bundle (subdir NULL) or its subdir; only with the lock. */
void bundle_drop_stale_tmp(const struct bundle *b, const char *subdir, const char *name);

/* Write b->cfg back, atomically. */
int bundle_save(struct bundle *b, char **err);

/* Create a new bundle at path from cfg: built in a temporary folder beside it,
 * renamed into place at the end. make_data is called with the temporary
 * bundle path to create images; if it fails nothing is left behind. */
int bundle_create(const char *path, const struct vm_config *cfg,
		  int (*make_data)(const char *tmp_bundle, void *arg), void *arg, char **err);

/* Resolve a file name from the config to a path: bare names live in Data/;
 * ".." escapes are refused; an absolute path must be inside the bundle, or
 * under one of b->allow (--allow-path) or the config's allow_paths (symbolic
 * links followed first). Returns malloc'd path or NULL with *err. */
char *bundle_resolve(const struct bundle *b, const char *name, char **err);
/* bundle_resolve's checks on every file c names (drives, kernel, initrd,
 * bios, dtb) and bundle_check_outside's on its absolute shared folders, as
 * vm-run makes them: one line per problem to errs; returns their number. */
int bundle_check_paths(const struct bundle *b, const struct vm_config *c, struct buf *errs);
/* The check for an absolute host path (a shared folder): 0, or -1 with *err. */
int bundle_check_outside(const struct bundle *b, const char *path, char **err);
/* (Whether a bare/relative name stays inside: bundle_name_is_safe, util.h.) */

/* The bundle's display name: its folder name without .utm. */
char *bundle_display_name(const char *path);

#endif
