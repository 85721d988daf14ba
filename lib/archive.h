/* Bundle archives: pack a bundle into a zip or tar (plain, gzip, zstd, xz,
 * bzip2) and import one safely, keeping sparse disk images sparse.
 *
 * This header shares its name with libarchive's <archive.h>, and -Ilib puts
 * it first in the search path, so it pulls in the real one with
 * #include_next (outside the guard: found as "archive.h" from lib/ the
 * next search meets this file again, whose #include_next then goes on past
 * lib/). A file that includes <archive.h> or "archive.h" gets both; in
 * lib/ itself write <archive.h>, as a quoted name found beside the source
 * file makes clang warn (-Winclude-next-absolute-path). */
#ifndef VM_ARCHIVE_H
#define VM_ARCHIVE_H

#include <stdbool.h>

enum pack_format {
	PACK_NONE = 0,
	PACK_ZIP,
	PACK_TAR,
	PACK_TAR_GZ,
	PACK_TAR_ZST,
	PACK_TAR_XZ,
	PACK_TAR_BZ2,
};

/* "zip", "tar", "tar.gz", "tar.zst", "tar.xz", "tar.bz2" (and "tgz",
 * "tzst", "txz", "tbz2"); PACK_NONE if unknown. */
enum pack_format pack_format_parse(const char *word);
/* The format a file name asks for: "x.utm.zip", "x.tar.zst", "x.tgz"... */
enum pack_format pack_format_from_name(const char *path);
const char *pack_format_name(enum pack_format f);

/* bundle_pack flags */
#define PACK_FORCE 1    /* replace out if it exists */
#define PACK_PROGRESS 2 /* progress on stderr (callers check isatty(2)) */
#define PACK_VERBOSE 4  /* name each entry on stderr */

/* Pack the bundle folder dir into out ("-": stdout) as one top-level folder
 * NAME.utm/ (UTM's layout). Files are written through a temporary file beside
 * out, renamed into place at the end. Holes in files (SEEK_HOLE) become
 * sparse entries in tar formats; zip has no sparse entries, so holes are
 * stored as compressed zeros there. A zip (UTM's format) of a bundle with
 * vm.conf also gets a config.plist made from it (config_plist_new), in place
 * of any in the bundle; what it cannot hold is named in a notice on stderr
 * (unless vm_quiet). On failure returns -1 with *err one line naming the
 * file. */
int bundle_pack(const char *dir, const char *out, enum pack_format f, int flags, char **err);

/* bundle_unpack / bundle_import flags */
#define IMPORT_KEEP_IDENTITY 1 /* keep the UUID and MAC addresses */
#define IMPORT_PROGRESS 2
#define IMPORT_VERBOSE 4

/* Extract archive ("-": stdin; zip or tar, any compression) into the
 * existing folder dir: the contents of the archive's single top-level folder
 * land in dir. Refused, with an error naming the archive and the entry:
 * absolute paths, ".." components, hard links, symbolic links that are
 * absolute or contain "..", device nodes, fifos and sockets, entries with
 * more data than their header declares, files outside the top-level folder
 * or a second top-level folder, and paths through a link. __MACOSX/ folders
 * and AppleDouble "._*" files (macOS metadata) are skipped. Runs of zeros
 * are not written, so images come out sparse. *top (may be NULL) gets the
 * top-level folder's name. On failure dir may hold part of the archive; the
 * caller removes it. */
int bundle_unpack(const char *archive, const char *dir, int flags, char **top, char **err);

/* vm-create --from: import archive as a new bundle at path, which must not
 * exist. Built in a temporary folder beside path (bundle_create) and renamed
 * at the end, so a failed import leaves nothing behind. Unless
 * IMPORT_KEEP_IDENTITY, the copy gets a new UUID and MAC addresses. A
 * bundle with both vm.conf and config.plist keeps vm.conf and drops the
 * config.plist vm-pack made for UTM, unless that is newer (changed in UTM
 * since): then it wins, with a notice on stderr unless vm_quiet. When the
 * configuration cannot be written (UTM 3's read-only config.plist), the
 * identity is kept, with a warning. */
int bundle_import(const char *archive, const char *path, int flags, char **err);

#endif

#include_next <archive.h>
