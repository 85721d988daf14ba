/* Writing ISO 9660 images (CD-ROM media, cloud-init seeds) with libarchive's
 * iso9660 writer: Rock Ridge (long names, permissions, symlinks) and Joliet
 * by default, so Linux and Windows guests see the names as given.
 *
 * The image is written to a temporary file beside the target and renamed
 * into place by iso_commit(); iso_discard() (or any failure) removes it, so
 * a half-written image never appears under the target name.
 *
 *	struct iso_opts o = {.label = "cidata"};
 *	struct iso *w = iso_create("seed.iso", &o, &err);
 *	iso_add_data(w, "meta-data", md, strlen(md), &err);
 *	iso_add_path(w, "user-data", "/tmp/user-data", &err);
 *	iso_commit(w, &err);
 */
#ifndef VM_ISO_H
#define VM_ISO_H

#include <stdbool.h>
#include <stddef.h>

#define ISO_LABEL_MAX 32 /* the volume identifier field */

struct iso_opts {
	const char *label;  /* volume label, 1..32 characters; NULL: "CDROM" */
	bool no_joliet;	    /* leave out the Joliet tree (Windows names) */
	bool no_rockridge;  /* leave out Rock Ridge (POSIX names and modes) */
};

struct iso;

/* Start an image that will be named path. NULL with *err on failure. */
struct iso *iso_create(const char *path, const struct iso_opts *o, char **err);

/* A regular file named name (a path inside the image, "dir/file" makes the
 * folders it needs) with these bytes, mode 0644. */
int iso_add_data(struct iso *w, const char *name, const void *data, size_t len, char **err);

/* A file, symlink or folder of the host under name; a folder brings its whole
 * tree (sorted by name, so the image is the same for the same tree). name ""
 * or "/" puts a folder's contents at the root of the image. Owners are not
 * kept (root:root); modes and times are. */
int iso_add_path(struct iso *w, const char *name, const char *host_path, char **err);

/* Finish the image and rename it into place; frees w. 0, or -1 with *err
 * (the target is untouched then). */
int iso_commit(struct iso *w, char **err);

/* Give up: remove the temporary file and free w. NULL is fine. */
void iso_discard(struct iso *w);

/* Is s usable as a volume label? On false *why says what is wrong. */
bool iso_label_valid(const char *s, const char **why);

#endif
