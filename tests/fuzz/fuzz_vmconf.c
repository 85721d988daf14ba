/* vm.conf as the tools read it: config_parse_vmconf (libconfuse), then what
 * every tool does with a parsed config (validate, defaults, JSON, the plist
 * writer), and the codec's promise that config_copy relies on: what
 * config_format_vmconf writes parses back to the same text. */
#include "config.h"
#include "config_plist.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	vm_quiet = true;
	return 0;
}

/* The model survives format -> parse -> format unchanged. */
void fuzz_vmconf_roundtrip(const struct vm_config *c);
void fuzz_vmconf_roundtrip(const struct vm_config *c)
{
	char *text = config_format_vmconf(c), *err = NULL;
	struct vm_config back;
	int r = config_parse_vmconf(&back, "fuzz.conf", text, &err);
	FUZZ_ASSERT(r == 0, "written vm.conf does not parse: %s\n%s", err, text);
	char *again = config_format_vmconf(&back);
	FUZZ_ASSERT(!strcmp(text, again), "round trip changed the config:\n%s\n---\n%s", text, again);
	free(again);
	config_free(&back);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size), *err = NULL;
	struct vm_config c;
	if (config_parse_vmconf(&c, "fuzz.conf", text, &err) < 0) {
		FUZZ_ASSERT(err && *err, "a failed parse gives no error");
		free(err);
		free(text);
		return 0;
	}
	free(text);
	fuzz_vmconf_roundtrip(&c);

	struct vm_config d;
	fuzz_use_model(&c, true, &d);
	fuzz_vmconf_roundtrip(&d);

	/* vm-pack's config.plist for UTM, from the parsed model */
	struct buf skipped = {0};
	void *doc = config_plist_new(&c, CONFIG_PLIST_LENIENT, &skipped, &err);
	if (doc) {
		size_t len;
		free(config_plist_xml(doc, &len));
		config_plist_free(doc);
	} else {
		free(err);
	}
	buf_free(&skipped);

	config_free(&d);
	config_free(&c);
	return 0;
}
