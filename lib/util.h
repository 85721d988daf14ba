/* Small shared helpers: diagnostics, strings, sizes, atomic files. */
#ifndef VM_UTIL_H
#define VM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define VM_VERSION "0.1.0"

/* Exit statuses every tool shares (DESIGN.md "Conventions"). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_TIMEOUT = 3,
};

/* Diagnostics: "TOOL: message" on stderr, one line. getprogname() names the tool. */
void vm_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* exit(status) after an error: what the tool still holds is not a leak
 * (LeakSanitizer is told so; success paths and returns from main are
 * checked in full). vm_errx, vm_err and usage errors end through it. */
_Noreturn void vm_exit_error(int status);
/* *err = the formatted message, when err is not NULL (library errors). */
void vm_set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void vm_errx(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void vm_err(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern int vm_verbose; /* -v count */
extern bool vm_quiet;  /* -q */
void vm_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that never returns NULL: out of memory ends the tool. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable NULL-terminated vector of strings (argv, lists). */
struct strv {
	char **v;
	size_t n, cap;
};
void strv_push(struct strv *sv, const char *s);
void strv_pushf(struct strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strv_free(struct strv *sv);
void strv_copy(struct strv *dst, const struct strv *src);
bool strv_contains(const struct strv *sv, const char *s);

/* A growable string buffer. */
struct buf {
	char *s;
	size_t len, cap;
};
void buf_add(struct buf *b, const char *s, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

/* Text fit for a terminal: control characters (C0, DEL, C1) and bytes that
 * are not UTF-8 become \xHH, so a name cannot move the cursor or retitle
 * the window. keep_newlines: '\n' stays (a multi-line message). */
void buf_put_printable(struct buf *b, const char *s, bool keep_newlines);
char *str_printable(const char *s); /* malloc'd */

/* Sizes: "512", "512M", "2G", "1.5G", "4096K", "1T"; result in bytes.
 * Bare numbers are in default_unit bytes (1 for bytes, 1<<20 for MiB). */
int parse_size(const char *s, uint64_t default_unit, uint64_t *bytes);
/* Integers in [min,max]; returns 0 or -1 with *errstr set (strtonum style). */
int parse_int(const char *s, long long min, long long max, long long *out, const char **errstr);
int parse_bool(const char *s, bool *out);
/* 2147483648 -> "2G", 1536 MiB -> "1536M" (exact, largest unit without remainder). */
char *format_size(uint64_t bytes);

/* Shell-quote one word for POSIX sh (only when needed). */
void shell_quote(struct buf *b, const char *s);

/* Files. write_file_atomic: temp file beside path, fsync, rename, fsync dir. */
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
char *read_file(const char *path, size_t *len); /* NULL + errno on failure */
/* A configuration file: a regular file (not a symbolic link, FIFO or
 * device) of at most max bytes, else NULL with *err one line naming path
 * (never the contents). NUL-terminated; *len may be NULL. */
char *read_regular_file(const char *path, size_t max, size_t *len, char **err);
int mkdir_p(const char *path, mode_t mode);
int rm_rf(const char *path);
char *path_join(const char *a, const char *b);
bool file_exists(const char *path);
bool str_in(const char *s, const char *const *list); /* NULL-terminated list */
bool has_prefix(const char *s, const char *prefix);

/* Random: a version-4 UUID and a locally administered unicast MAC (52:54:00 is QEMU's OUI). */
void uuid_generate_str(char out[37]);
void mac_generate_str(char out[18]);
bool uuid_valid(const char *s);
bool mac_valid(const char *s);

/* Long option help shared by every tool: prints usage text and exits. */
_Noreturn void usage_exit(const char *usage, int status);
void version_exit(void) __attribute__((noreturn));

/* Options every tool has. Put CLI_COMMON_LONGOPTS in the getopt_long table and
 * CLI_COMMON_SHORTOPTS ("hVqv") in the short string; in the switch, the
 * default case calls cli_common(ch, usage), which handles -h -V -q -v and
 * exits 2 with the usage on anything unknown. */
#define CLI_COMMON_SHORTOPTS "hVqv"
#define CLI_COMMON_LONGOPTS                                                                        \
	{"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},                     \
	    {"quiet", no_argument, NULL, 'q'}, {"verbose", no_argument, NULL, 'v'}
void cli_common(int ch, const char *usage);

#endif
