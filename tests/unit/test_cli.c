/* Command lines from one table (lib/cli.c): getopt's arguments, --help,
 * durations and JSON output. */
#include "cli.h"
#include "testutil.h"
#include "util.h"

enum { OPT_LONG_ONLY = CLI_LONG_ONLY, OPT_TEXT_BELOW };

static const struct cli_option options[] = {
    CLI_FLAG('j', "json", "JSON output"),
    CLI_VALUE('t', "timeout", "S", "seconds\nsecond line"),
    CLI_VALUE(OPT_LONG_ONLY, "long-only", "FILE", "no short letter"),
    CLI_FLAG(OPT_TEXT_BELOW, "a-very-long-option-name", "text on the next line"),
    CLI_TEXT("a line of text"),
    CLI_FLAG('q', "quiet", "nothing at all"),
    CLI_END,
};

static const struct cli_spec spec = {
    .usage = "usage: t [options] X\n",
    .about = "About t.\n",
    .options = options,
};

static void getopt_strings(void **state)
{
	struct cli_getopt g;
	cli_getopt_build(&spec, &g);
	/* the table's letters, then the common ones it lacks (q is in it) */
	assert_string_equal(g.shortopts, "jt:qvhV");
	const char *names[] = {"json", "timeout", "long-only", "a-very-long-option-name", "quiet", "verbose", "help",
			       "version"};
	const int has_arg[] = {0, 1, 1, 0, 0, 0, 0, 0};
	const int ids[] = {'j', 't', OPT_LONG_ONLY, OPT_TEXT_BELOW, 'q', 'v', 'h', 'V'};
	size_t n = 0;
	for (; g.longopts[n].name; n++) {
		assert_true(n < 8);
		assert_string_equal(g.longopts[n].name, names[n]);
		assert_int_equal(g.longopts[n].has_arg, has_arg[n]);
		assert_int_equal(g.longopts[n].val, ids[n]);
	}
	assert_int_equal(n, 8);
	cli_getopt_free(&g);

	static const struct cli_spec in_order = {.usage = "", .options = options, .flags = CLI_IN_ORDER};
	cli_getopt_build(&in_order, &g);
	assert_int_equal(g.shortopts[0], '+');
	cli_getopt_free(&g);
}

static void help_lists_every_option(void **state)
{
	char *h = cli_help(&spec);
	assert_string_equal(h, "usage: t [options] X\n"
			       "About t.\n"
			       "  -j, --json            JSON output\n"
			       "  -t, --timeout S       seconds\n"
			       "                        second line\n"
			       "      --long-only FILE  no short letter\n"
			       "      --a-very-long-option-name\n"
			       "                        text on the next line\n"
			       "a line of text\n"
			       "  -q, --quiet           nothing at all\n"
			       "  -v, --verbose         say more\n"
			       "  -h, --help            this help\n"
			       "  -V, --version         print the version\n");
	free(h);
	char *s = cli_synopsis(&spec);
	assert_string_equal(s, "usage: t [options] X\n");
	free(s);
}

static void seconds(void **state)
{
	int ms = 12345;
	assert_int_equal(parse_seconds("0", &ms), 0);
	assert_int_equal(ms, CLI_FOREVER);
	assert_int_equal(parse_seconds("0.0", &ms), 0);
	assert_int_equal(ms, CLI_FOREVER);
	assert_int_equal(parse_seconds("30", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(parse_seconds("0.5", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(parse_seconds("0.0001", &ms), 0);
	assert_int_equal(ms, 1); /* rounded up: never 0, which is no timeout */
	assert_int_equal(parse_seconds("2000000", &ms), 0);
	assert_int_equal(ms, 2000000000);
	const char *bad[] = {"", "-1", "x", "1s", " 1", "inf", "nan", "1e3", "0x10", "2000001", NULL};
	for (const char **b = bad; *b; b++) {
		ms = 7;
		assert_int_equal(parse_seconds(*b, &ms), -1);
		assert_int_equal(ms, 7);
	}
}

static char *json_text(struct json_object *v, enum cli_json style)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	print_json(f, v, style);
	fclose(f);
	return text;
}

static void json_output(void **state)
{
	struct json_object *v = json_tokener_parse("{\"a\":[1,\"x/y\"],\"b\":{},\"c\":[],\"d\":null}");
	assert_non_null(v);
	char *t = json_text(v, CLI_JSON_COMPACT);
	assert_string_equal(t, "{\"a\":[1,\"x/y\"],\"b\":{},\"c\":[],\"d\":null}\n");
	free(t);
	t = json_text(v, CLI_JSON_PRETTY);
	assert_string_equal(t, "{\n  \"a\": [\n    1,\n    \"x/y\"\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": null\n}\n");
	free(t);
	/* AUTO: a memory stream is no terminal */
	t = json_text(v, CLI_JSON_AUTO);
	assert_string_equal(t, "{\"a\":[1,\"x/y\"],\"b\":{},\"c\":[],\"d\":null}\n");
	free(t);
	json_object_put(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(getopt_strings),
	    cmocka_unit_test(help_lists_every_option),
	    cmocka_unit_test(seconds),
	    cmocka_unit_test(json_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
