/* Shared libraries opened on first use (dlopen), not linked: libguestfs
 * (offline.c) and libplist (config_plist.c) would cost every tool their
 * load time at start, and most runs never need them. */
#ifndef VM_DL_H
#define VM_DL_H

#include <stddef.h>

/* One function to resolve: its name, and where its address goes. */
struct dl_sym {
	const char *name;
	void **slot;
};
/* For a table over a struct of typed function pointers: DL_SYM(fns, f)
 * resolves symbol "f" into fns.f; DL_SYM_AS(fns, f, "prefix_f") another name. */
#define DL_SYM(fns, f) {#f, (void **)&(fns).f}
#define DL_SYM_AS(fns, f, sym) {(sym), (void **)&(fns).f}

/* Open soname and resolve the n symbols; returns the handle, or NULL with
 * *err: "WHAT is not installed (HINT): dlerror", or "WHAT: no SYMBOL (too
 * old?)". what names the library for the user ("libguestfs"), hint how to
 * get it ("Debian package libguestfs0"). On failure no slot is changed. */
void *dl_open_syms(const char *soname, const char *what, const char *hint, const struct dl_sym *syms, size_t n,
		   char **err);

#endif
