/* QMP arguments as people type them (qmp-shell's key=value syntax), and
 * checks against the schema the running QEMU describes (query-qmp-schema).
 * Shared by vm-qmp and any tool that passes QMP arguments through. */
#ifndef VM_QMP_ARGS_H
#define VM_QMP_ARGS_H

#include <json-c/json.h>
#include <stdbool.h>

#include "util.h"

/* "key=value" words into a new arguments object. A value is parsed as JSON
 * when it is JSON (1, -2.5, true, null, "s", [..], {..}), else it is the
 * string as written; dotted keys nest ("a.b=1" is {"a":{"b":1}}).
 * NULL with *err naming the word. */
struct json_object *qmp_parse_args(int argc, char *const argv[], char **err);
/* Add one word to obj (e.g. on top of --args). as_string: the value is a
 * string as written, never JSON. 0, or -1 with *err. */
int qmp_args_add(struct json_object *obj, const char *word, bool as_string, char **err);

/* Split a shorthand line into words: blanks separate; '...' and "..." quote
 * (a value with quotes is always a string), \ escapes the next character;
 * a value starting with { or [ runs to its closing bracket, blanks included.
 * If quoted is not NULL, *quoted gets a malloc'd array: did word i's value
 * have quotes. 0, or -1 with *err. */
int qmp_split_words(const char *line, struct strv *words, bool **quoted, char **err);

/* One input line to a command object {"execute":..., "arguments":...}: a JSON
 * object as QMP takes it, or "COMMAND key=value ...". *shorthand (may be NULL)
 * tells which. A blank line or a # comment: NULL with *err NULL.
 * Otherwise NULL with *err on a syntax error. */
struct json_object *qmp_parse_line(const char *line, bool *shorthand, char **err);

/* The schema of a running QEMU, from the return value of query-qmp-schema
 * (which is not consumed). */
struct qmp_schema;
struct qmp_schema *qmp_schema_new(struct json_object *schema);
void qmp_schema_free(struct qmp_schema *s);
/* Command names, sorted. */
const struct strv *qmp_schema_commands(const struct qmp_schema *s);
bool qmp_schema_has_command(const struct qmp_schema *s, const char *cmd);
/* Check args (may be NULL) for cmd: unknown command, unknown or missing
 * argument, wrong type, value not in an enum; errors name the argument by
 * its dotted path. With coerce, numbers, booleans and null given where a
 * string is wanted become strings, as typed ("node-name=123").
 * 0, or -1 with *err. */
int qmp_schema_check(const struct qmp_schema *s, const char *cmd, struct json_object *args,
		     bool coerce, char **err);
/* Completions for word, an argument of cmd being typed: "fi" gives "filename=",
 * "file." gives "file.driver=" ..., "read-only-mode=r" gives the enum values. */
void qmp_schema_complete(const struct qmp_schema *s, const char *cmd, const char *word,
			 struct strv *out);
/* A command's arguments and return type, for people. -1: no such command. */
int qmp_schema_describe(const struct qmp_schema *s, const char *cmd, struct buf *out);

#endif
