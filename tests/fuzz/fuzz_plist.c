/* UTM's config.plist, XML or binary, as bundle_open reads it
 * (config_parse_plist), then what the tools do with it: validate, copy
 * (through vm.conf, which must hold whatever a plist gave), write back into
 * the same document (vm-config set), upgrade a UTM 3 one, and the view.plist
 * notes. */
#include "config.h"
#include "config_plist.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	vm_quiet = true;
	return 0;
}

/* The nesting of <dict> and <array> in libplist's own XML of a document.
 * Anything deeper than config_plist.c's limit (128) must have been refused:
 * a document nested 50,000 deep overflowed libplist's recursion (issue 15),
 * and this finds a missing limit at depth 129, which mutation reaches, not
 * only at the tens of thousands where the stack gives out. */
#define FUZZ_MAX_DEPTH 128
static int xml_nesting(const char *x)
{
	int depth = 0, max = 0;
	for (const char *p = strchr(x, '<'); p; p = strchr(p + 1, '<')) {
		if (!strncmp(p, "<dict>", 6) || !strncmp(p, "<array>", 7))
			max = ++depth > max ? depth : max;
		else if (!strncmp(p, "</dict>", 7) || !strncmp(p, "</array>", 8))
			depth--;
	}
	return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_config c;
	struct plist_meta meta;
	void *doc = NULL;
	char *err = NULL;
	struct buf notes = {0};

	config_plist_view_notes((const char *)data, size, &notes);
	buf_free(&notes);

	/* as bundle_open: the caller gives a zeroed config and frees it, also
	 * after a failure (a decode can stop half way) */
	config_init(&c);

	if (config_parse_plist(&c, "config.plist", (const char *)data, size, &doc, &meta, &err) < 0) {
		FUZZ_ASSERT(err && *err, "a failed parse gives no error");
		FUZZ_ASSERT(!doc, "a failed parse keeps a document");
		free(err);
		config_free(&c);
		return 0;
	}

	size_t xlen;
	char *whole = config_plist_xml(doc, &xlen);
	FUZZ_ASSERT(whole, "no XML for a document read");
	int depth = xml_nesting(whole);
	FUZZ_ASSERT(depth <= FUZZ_MAX_DEPTH + 1, "a document nested %d deep was accepted", depth);
	free(whole);

	/* every tool's effective config: a copy through vm.conf, defaults */
	struct vm_config d;
	fuzz_use_model(&c, false, &d);
	config_free(&d);

	if (meta.kind == PLIST_UTM_QEMU && !meta.readonly) {
		/* vm-config set on a UTM bundle: the model back into the document */
		void *copy = config_plist_copy(doc);
		if (config_plist_update(copy, &c, 0, NULL, "config.plist", &err) == 0) {
			size_t len;
			char *xml = config_plist_xml(copy, &len);
			FUZZ_ASSERT(xml, "no XML for an updated document");
			/* and what was written reads back */
			struct vm_config c2;
			struct plist_meta m2;
			void *doc2 = NULL;
			config_init(&c2);
			int r = config_parse_plist(&c2, "config.plist", xml, len, &doc2, &m2, &err);
			FUZZ_ASSERT(r == 0, "written config.plist does not parse: %s", err);
			config_free(&c2);
			plist_meta_free(&m2);
			config_plist_free(doc2);
			free(xml);
		} else {
			free(err);
		}
		config_plist_free(copy);
	} else if (meta.kind == PLIST_UTM_LEGACY) {
		void *up = config_plist_upgrade(doc, &c, "fuzz", "config.plist", &err);
		if (up) {
			size_t len;
			free(config_plist_xml(up, &len));
			config_plist_free(up);
		} else {
			free(err);
		}
	}

	config_plist_free(doc);
	plist_meta_free(&meta);
	config_free(&c);
	return 0;
}
