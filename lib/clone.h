/* Cloning a bundle (UTM's clone, libvirt's virt-clone): a new bundle with
 * its own identity (UUID, MAC addresses, name) and its own disks.
 *
 * A full clone copies every file (a reflink where the filesystem can,
 * copy_file_range otherwise, holes kept: SEEK_DATA/SEEK_HOLE); a linked
 * clone makes each disk in Data/ a qcow2 overlay whose backing file is the
 * source's image (qemu-img create -b SRC -F FMT), and makes those images
 * read-only files: writing to them would corrupt every clone. The saved
 * state (suspend.h) stays behind unless CLONE_WITH_STATE. The clone is
 * built in a temporary folder beside DST and renamed into place. */
#ifndef VM_CLONE_H
#define VM_CLONE_H

#define CLONE_LINKED 1     /* disks as overlays on the source's images */
#define CLONE_WITH_STATE 2 /* copy the saved state (Data/vmstate) too */

/* Clone the bundle src into dst (a path ending in .utm); name NULL: dst's
 * folder name. Refused while src runs. 0, or -1 with *err. */
int bundle_clone(const char *src, const char *dst, const char *name, int flags, char **err);

/* Copy a file keeping its holes: a reflink (FICLONE) where the filesystem
 * can, else its data regions with copy_file_range. dst must not exist. */
int copy_file_sparse(const char *src, const char *dst, char **err);

#endif
