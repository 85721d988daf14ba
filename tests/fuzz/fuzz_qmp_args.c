/* qmp-shell style input as vm-qmp reads it (lib/qmp_args.c): each input line
 * goes through qmp_parse_line (a JSON command, or COMMAND key=value ... with
 * quotes, escapes and bracketed JSON values), the word splitter, the
 * key=value adder both ways, and the checks and completions against a
 * query-qmp-schema. The schema is a small built-in one, or the first line
 * when that is a JSON array (a QEMU describes its own commands). */
#include "fuzz.h"
#include "qmp_args.h"

/* In query-qmp-schema's shape: tests/unit/test_qmp.c's, with a number
 * member and builtin besides. */
static const char schema_text[] =
    "["
    "{\"name\": \"str\", \"meta-type\": \"builtin\", \"json-type\": \"string\"},"
    "{\"name\": \"int\", \"meta-type\": \"builtin\", \"json-type\": \"int\"},"
    "{\"name\": \"bool\", \"meta-type\": \"builtin\", \"json-type\": \"boolean\"},"
    "{\"name\": \"null\", \"meta-type\": \"builtin\", \"json-type\": \"null\"},"
    "{\"name\": \"any\", \"meta-type\": \"builtin\", \"json-type\": \"value\"},"
    "{\"name\": \"number\", \"meta-type\": \"builtin\", \"json-type\": \"number\"},"
    "{\"name\": \"0\", \"meta-type\": \"object\", \"members\": []},"
    "{\"name\": \"query-status\", \"meta-type\": \"command\", \"arg-type\": \"0\", \"ret-type\": \"1\"},"
    "{\"name\": \"1\", \"meta-type\": \"object\", \"members\": [{\"name\": \"running\", \"type\": \"bool\"}]},"
    "{\"name\": \"blockdev-change-medium\", \"meta-type\": \"command\", \"arg-type\": \"16\", \"ret-type\": \"0\"},"
    "{\"name\": \"16\", \"meta-type\": \"object\", \"members\": ["
    "  {\"name\": \"id\", \"type\": \"str\", \"default\": null},"
    "  {\"name\": \"filename\", \"type\": \"str\"},"
    "  {\"name\": \"force\", \"type\": \"bool\", \"default\": null},"
    "  {\"name\": \"read-only-mode\", \"type\": \"273\", \"default\": null}]},"
    "{\"name\": \"273\", \"meta-type\": \"enum\", \"values\": [\"retain\", \"read-only\", \"read-write\"]},"
    "{\"name\": \"netdev_add\", \"meta-type\": \"command\", \"arg-type\": \"100\", \"ret-type\": \"0\"},"
    "{\"name\": \"100\", \"meta-type\": \"object\", \"tag\": \"type\","
    "  \"members\": [{\"name\": \"id\", \"type\": \"str\"}, {\"name\": \"type\", \"type\": \"347\"}],"
    "  \"variants\": [{\"case\": \"user\", \"type\": \"349\"}, {\"case\": \"none\", \"type\": \"0\"}]},"
    "{\"name\": \"347\", \"meta-type\": \"enum\", \"values\": [\"user\", \"none\"]},"
    "{\"name\": \"349\", \"meta-type\": \"object\", \"members\": ["
    "  {\"name\": \"net\", \"type\": \"str\", \"default\": null},"
    "  {\"name\": \"hostfwd\", \"type\": \"[350]\", \"default\": null},"
    "  {\"name\": \"opts\", \"type\": \"351\", \"default\": null}]},"
    "{\"name\": \"[350]\", \"meta-type\": \"array\", \"element-type\": \"350\"},"
    "{\"name\": \"350\", \"meta-type\": \"object\", \"members\": [{\"name\": \"str\", \"type\": \"str\"}]},"
    "{\"name\": \"351\", \"meta-type\": \"object\", \"members\": [{\"name\": \"depth\", \"type\": \"int\"}, "
    "{\"name\": \"alt\", \"type\": \"352\", \"default\": null}, {\"name\": \"ratio\", \"type\": \"number\", \"default\": null}]},"
    "{\"name\": \"352\", \"meta-type\": \"alternate\", \"members\": [{\"type\": \"str\"}, {\"type\": \"null\"}]},"
    "{\"name\": \"device_add\", \"meta-type\": \"command\", \"arg-type\": \"186\", \"ret-type\": \"0\"},"
    "{\"name\": \"186\", \"meta-type\": \"object\", \"members\": [{\"name\": \"driver\", \"type\": \"str\"}, {\"name\": \"id\", \"type\": \"str\", \"default\": null}]},"
    "{\"name\": \"SHUTDOWN\", \"meta-type\": \"event\", \"arg-type\": \"0\"}"
    "]";

static struct qmp_schema *builtin;

static void free_builtin(void)
{
	qmp_schema_free(builtin);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	vm_quiet = true;
	struct json_object *j = json_tokener_parse(schema_text);
	if (!j || !(builtin = qmp_schema_new(j)))
		abort();
	json_object_put(j);
	atexit(free_builtin);
	return 0;
}

static void one_line(const struct qmp_schema *s, const char *line)
{
	char *err = NULL;
	bool shorthand = false;
	struct json_object *cmd = qmp_parse_line(line, &shorthand, &err), *v, *args = NULL;
	if (!cmd) {
		free(err);
	} else {
		FUZZ_ASSERT(json_object_object_get_ex(cmd, "execute", &v) ||
				json_object_object_get_ex(cmd, "exec-oob", &v),
			    "a command without execute: %s", line);
		const char *name = json_object_get_string(v);
		json_object_object_get_ex(cmd, "arguments", &args);
		if (qmp_schema_check(s, name, args, shorthand, &err) < 0)
			free(err);
		err = NULL;
		json_object_to_json_string(cmd);
		struct buf b = {0};
		qmp_schema_describe(s, name, &b);
		buf_free(&b);
		json_object_put(cmd);
	}

	/* the splitter and the adder on their own, and completion of the last
	 * word as the REPL does it */
	struct strv words = {0};
	bool *quoted = NULL;
	err = NULL;
	if (qmp_split_words(line, &words, &quoted, &err) == 0) {
		struct json_object *obj = json_object_new_object();
		for (size_t i = 1; i < words.n; i++) {
			if (qmp_args_add(obj, words.v[i], quoted[i], &err) < 0)
				free(err);
			err = NULL;
		}
		json_object_put(obj);
		if (words.n > 0) {
			struct json_object *a = qmp_parse_args((int)words.n - 1, words.v + 1, &err);
			if (a)
				json_object_put(a);
			else
				free(err);
			struct strv comp = {0};
			qmp_schema_complete(s, words.v[0], words.n > 1 ? words.v[words.n - 1] : "", &comp);
			strv_free(&comp);
		}
		free(quoted);
	} else {
		free(err);
	}
	strv_free(&words);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct qmp_schema *own = NULL;
	char *line = text, *nl;

	if (*text == '[') {
		nl = strchr(text, '\n');
		if (nl)
			*nl = '\0';
		struct json_object *j = json_tokener_parse(text);
		if (j) {
			own = qmp_schema_new(j);
			json_object_put(j);
		}
		line = nl ? nl + 1 : text + strlen(text);
	}
	const struct qmp_schema *s = own ? own : builtin;
	if (own) {
		const struct strv *cmds = qmp_schema_commands(own);
		for (size_t i = 0; i < cmds->n && i < 8; i++) {
			struct buf b = {0};
			qmp_schema_describe(own, cmds->v[i], &b);
			buf_free(&b);
		}
	}
	for (; line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		one_line(s, line);
	}
	qmp_schema_free(own);
	free(text);
	return 0;
}
