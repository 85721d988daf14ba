/* libarchive through dlopen (archive_dl.h). */
#include <archive.h>
#include <archive_entry.h>

#include "archive_dl.h"
#include "dl.h"
#include "util.h"

struct libarchive_fns libarchive_fns;
static void *libarchive_handle;

int libarchive_load(char **err)
{
	static const struct dl_sym syms[] = {
#define X(f) DL_SYM(libarchive_fns, f),
	    LIBARCHIVE_FUNCS(X)
#undef X
	};
	if (libarchive_handle)
		return 0;
	libarchive_handle = dl_open_syms("libarchive.so.13", "libarchive", "Debian package libarchive13", syms,
					 sizeof syms / sizeof syms[0], err);
	return libarchive_handle ? 0 : -1;
}
