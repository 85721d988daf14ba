/* Command lines: one option table per tool, as git's parse-options. The
 * getopt_long short string, its struct option array and the --help text are
 * all made from the table, so an option is written once. -h/--help,
 * -V/--version, -q/--quiet and -v/--verbose are every tool's and need no
 * entry (an entry with the same letter only changes its help text).
 *
 * This module builds and parses; it never prints help or exits: the tool
 * layer (cmd/tool.h, tool_getopt) does that. A tool, converted:
 *
 *	enum { OPT_NO_SANDBOX = CLI_LONG_ONLY, OPT_ALLOW_PATH };
 *	static const struct cli_option options[] = {
 *	    CLI_FLAG('j', "json", "a JSON array of words"),
 *	    CLI_VALUE('a', "accel", "A", "accelerator: auto, kvm or tcg\n(default: the config's)"),
 *	    CLI_FLAG(OPT_NO_SANDBOX, "no-sandbox", "leave out QEMU's seccomp sandbox"),
 *	    CLI_VALUE(OPT_ALLOW_PATH, "allow-path", "PATH", "the config may name PATH"),
 *	    CLI_END,
 *	};
 *	static const struct cli_spec cli = {
 *	    .usage = "usage: vm-argv [options] BUNDLE\n",
 *	    .about = "Print the QEMU command line for BUNDLE, program first.\n",
 *	    .options = options,
 *	};
 *	...
 *	int ch;
 *	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
 *		switch (ch) {
 *		case 'j': json = true; break;
 *		case 'a': accel = optarg; break;
 *		...
 *		}
 *	}
 *	if (argc - optind != 1)
 *		tool_usage_error(&cli);
 *
 * tool_getopt handles -h (prints cli_help, exits 0), -V, -q (vm_quiet),
 * -v (vm_verbose++) and unknown options (the synopsis, exit 2) itself, and
 * returns every other option's id with optarg set, as getopt_long does. */
#ifndef VM_CLI_H
#define VM_CLI_H

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

enum cli_kind {
	CLI_KIND_END = 0,
	CLI_KIND_FLAG,	/* takes no argument */
	CLI_KIND_VALUE, /* takes one (arg names it in --help) */
	CLI_KIND_TEXT,	/* no option: a line of --help text, e.g. a heading */
};

/* Ids of options without a short letter start here (getopt_long returns them). */
#define CLI_LONG_ONLY 0x100

struct cli_option {
	enum cli_kind kind;
	int id;		  /* the short letter, or CLI_LONG_ONLY + n for a long-only option */
	const char *name; /* the long name without "--", or NULL for a short-only option */
	const char *arg;  /* CLI_KIND_VALUE: the argument's name in --help ("SIZE") */
	const char *help; /* the text; '\n' continues it on the next line, in its column */
};

#define CLI_FLAG(id, name, help) {CLI_KIND_FLAG, (id), (name), NULL, (help)}
#define CLI_VALUE(id, name, arg, help) {CLI_KIND_VALUE, (id), (name), (arg), (help)}
#define CLI_TEXT(text) {CLI_KIND_TEXT, 0, NULL, NULL, (text)}
#define CLI_END {CLI_KIND_END, 0, NULL, NULL, NULL}

/* cli_spec.flags. IN_ORDER: stop at the first operand (getopt's "+"), so what
 * follows it (a verb's own arguments, "-3") is left for the tool. */
#define CLI_IN_ORDER 1

struct cli_spec {
	const char *usage; /* "usage: TOOL ...\n" and further "       TOOL ...\n" lines */
	const char *about; /* what the tool does, printed after the usage lines; may be NULL */
	const struct cli_option *options; /* ends with CLI_END */
	int flags;
};

/* What getopt_long takes, made from a table. */
struct cli_getopt {
	char *shortopts;
	struct option *longopts;
};
void cli_getopt_build(const struct cli_spec *spec, struct cli_getopt *out);
void cli_getopt_free(struct cli_getopt *g);

/* The whole --help text: usage, about, then one line per option
 * ("  -a, --accel A     text"; the common options last unless the table
 * has them). malloc'd. */
char *cli_help(const struct cli_spec *spec);
/* For a usage error: the usage lines only. malloc'd. */
char *cli_synopsis(const struct cli_spec *spec);

/* Durations (--timeout S): seconds, fractions allowed ("30", "0.5"). 0
 * means no timeout: wait forever, *ms = CLI_FOREVER (-1, what poll takes).
 * Any other value is rounded up to whole milliseconds. Returns 0, or -1
 * when s is not a number of seconds from 0 to CLI_SECONDS_MAX. */
#define CLI_FOREVER (-1)
#define CLI_SECONDS_MAX 2000000
int parse_seconds(const char *s, int *ms);

/* JSON output, the same for every tool: CLI_JSON_PRETTY indents by two and
 * keeps {} and [] whole; COMPACT is one line; AUTO is pretty on a terminal.
 * Strings are never slash-escaped. A newline follows. Write errors show in
 * ferror(f) (the tool layer checks stdout at exit). */
enum cli_json { CLI_JSON_COMPACT, CLI_JSON_PRETTY, CLI_JSON_AUTO };
void print_json(FILE *f, struct json_object *v, enum cli_json style);

#endif
