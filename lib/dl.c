/* dlopen with a table of symbols (dl.h). */
#include "dl.h"

#include <dlfcn.h>
#include <stdlib.h>

#include "util.h"

void *dl_open_syms(const char *soname, const char *what, const char *hint, const struct dl_sym *syms, size_t n,
		   char **err)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		vm_set_err(err, "%s is not installed (%s): %s", what, hint, dlerror());
		return NULL;
	}
	void **found = xcalloc(n, sizeof *found);
	for (size_t i = 0; i < n; i++) {
		found[i] = dlsym(h, syms[i].name);
		if (!found[i]) {
			vm_set_err(err, "%s: no %s (%s too old?)", what, syms[i].name, soname);
			free(found);
			dlclose(h);
			return NULL;
		}
	}
	for (size_t i = 0; i < n; i++)
		*syms[i].slot = found[i];
	free(found);
	return h;
}
