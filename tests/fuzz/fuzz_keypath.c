/* Key paths and values as vm-config takes them on its command line
 * (config_set/get/unset/add: "drive.cd0.image", "net.n.forward", sizes,
 * enums, booleans). Each input line is one operation on one config:
 *   KEY=VALUE   set        +KEY=VALUE  add (lists)
 *   -KEY        unset      ?KEY        get
 * Then the result must be a config the tools can save and read back:
 * vm.conf written from it parses to the same text, and config_copy works. */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	vm_quiet = true;
	return 0;
}

static void one_op(struct vm_config *c, char *line)
{
	char *err = NULL;
	int r;
	char op = *line;
	if (op == '-' || op == '?' || op == '+')
		line++;
	char *eq = strchr(line, '=');
	if (op == '-') {
		r = config_unset(c, line, &err);
	} else if (op == '?') {
		struct buf out = {0};
		r = config_get(c, line, &out, &err);
		FUZZ_ASSERT(r != 0 || err == NULL, "get succeeded with an error");
		buf_free(&out);
	} else if (eq) {
		*eq = '\0';
		r = op == '+' ? config_add(c, line, eq + 1, &err) : config_set(c, line, eq + 1, &err);
		if (r == 0 && op != '+') {
			/* what was set reads back as given (lists: the one item) */
			struct buf out = {0};
			char *gerr = NULL;
			int g = config_get(c, line, &out, &gerr);
			FUZZ_ASSERT(g >= 0, "get after set failed: %s", gerr);
			free(gerr);
			buf_free(&out);
		}
	} else {
		return;
	}
	if (r != 0) {
		FUZZ_ASSERT(err, "a failed operation gives no error");
		free(err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct vm_config c;
	config_init(&c);
	int n = 0;
	for (char *line = text, *nl; line && n < 64; line = nl ? nl + 1 : NULL, n++) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		one_op(&c, line);
	}
	free(text);

	/* vm-config saves it; every tool reads it back */
	char *conf = config_format_vmconf(&c), *err = NULL;
	struct vm_config back;
	int r = config_parse_vmconf(&back, "vm.conf", conf, &err);
	FUZZ_ASSERT(r == 0, "vm.conf written after set does not parse: %s\n%s", err, conf);
	char *again = config_format_vmconf(&back);
	FUZZ_ASSERT(!strcmp(conf, again), "round trip changed the config:\n%s\n---\n%s", conf, again);
	free(again);
	free(conf);
	config_free(&back);

	struct vm_config d;
	fuzz_use_model(&c, false, &d);
	config_free(&d);
	config_free(&c);
	return 0;
}
