/* vm.conf as the tools read it: config_parse_vmconf (libconfuse), then what
 * every tool does with a parsed config (validate, defaults, JSON, the plist
 * writer), and the codec's promise that config_copy relies on: what
 * config_format_vmconf writes parses back to the same text. */
#include "config.h"
#include "config_plist.h"
#include "fuzz.h"

/* A value in the environment that no parsed config may hold unless the
 * input wrote it (libconfuse's ${VAR} expansion, issue 15). */
#define FUZZ_ENV_VALUE "EXPANDED_FROM_ENV"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	vm_quiet = true;
	setenv("UTMKIT_FUZZ", FUZZ_ENV_VALUE, 1);
	setenv("HOME", FUZZ_ENV_VALUE, 1);
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
	bool env_in_input = strstr(text, FUZZ_ENV_VALUE);
	free(text);
	fuzz_vmconf_roundtrip(&c);
	if (!env_in_input) {
		char *written = config_format_vmconf(&c);
		FUZZ_ASSERT(!strstr(written, FUZZ_ENV_VALUE), "a value came from the environment:\n%s", written);
		free(written);
	}

	struct vm_config d;
	fuzz_use_model(&c, true, &d);
	fuzz_vmconf_roundtrip(&d);

	/* vm-pack's config.plist for UTM, from the parsed model */
	struct buf skipped = {0};
	void *doc = config_plist_new(&c, CONFIG_PLIST_LENIENT, &skipped, &err);
	struct vm_config eff;
	config_copy(&eff, &c);
	config_apply_defaults(&eff);
	char *problem = config_first_problem(&eff);
	config_free(&eff);
	if (doc && !problem) {
		/* what vm-pack writes for UTM of a valid config reads back
		 * (issue 15: a Network entry without a Mode did not) */
		size_t len;
		char *xml = config_plist_xml(doc, &len);
		struct vm_config back;
		struct plist_meta meta;
		void *doc2 = NULL;
		config_init(&back);
		int pr = config_parse_plist(&back, "fuzz.plist", xml, len, &doc2, &meta, &err);
		FUZZ_ASSERT(pr == 0, "the config.plist written does not read back: %s", err);
		config_plist_free(doc2);
		plist_meta_free(&meta);
		config_free(&back);
		free(xml);
		config_plist_free(doc);
	} else if (doc) {
		config_plist_free(doc);
	} else {
		free(err);
	}
	free(problem);
	buf_free(&skipped);

	config_free(&d);
	config_free(&c);
	return 0;
}
