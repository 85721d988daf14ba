/* The tool layer: what only a program may do, kept out of lib/ (which
 * returns its errors): print and exit, the option loop with --help and
 * --version, and the check that stdout was written. Every cmd/vm-*.c links
 * build/tool.o (the Makefile); it is not a tool itself. */
#ifndef VM_TOOL_H
#define VM_TOOL_H

#include "bundle.h"
#include "cli.h"
#include "util.h"

/* exit(status) after an error: what the tool still holds is not a leak
 * (LeakSanitizer is told so; success paths and returns from main are
 * checked in full). vm_errx, vm_err and usage errors end through it. */
_Noreturn void vm_exit_error(int status);
/* "TOOL: message" (vm_err: ": strerror(errno)" too) on stderr, then exit. */
_Noreturn void vm_errx(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void vm_err(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The option loop of a tool with a cli_spec table (lib/cli.h has an
 * example): getopt_long over the table. Handles -h/--help (the help on
 * stdout, exit 0), -V/--version, -q (vm_quiet), -v (vm_verbose++) and an
 * unknown option or missing argument (the usage lines on stderr, exit 2);
 * returns any other option's id with optarg set, -1 at the end (optind is
 * then the first operand). */
int tool_getopt(const struct cli_spec *spec, int argc, char **argv);
/* A usage error found after the options: the usage lines, exit 2. */
_Noreturn void tool_usage_error(const struct cli_spec *spec);
/* A duration option (--timeout S) through parse_seconds: milliseconds, or
 * CLI_FOREVER for 0; anything else is a usage error naming opt. */
int tool_seconds(const char *opt, const char *value);

/* bundle_open, or print "TOOL: error" and exit 1. */
void bundle_open_or_die(struct bundle *b, const char *name_or_path);
void bundle_open_flags_or_die(struct bundle *b, const char *name_or_path, int flags);
/* The bundle's runtime directory (created), or exit 1 saying why not. */
char *tool_runtime_dir(const struct bundle *b);

/* Stdout is checked once, at exit, in every tool (an atexit handler this
 * layer installs before main): a write error (a full disk, a closed pipe)
 * makes a tool that would have succeeded exit 1 with "TOOL: stdout: why".
 * No tool needs its own final fflush. */

/* --version: "TOOL (utmkit) VERSION" on stdout, exit 0. */
_Noreturn void version_exit(void);

#endif
