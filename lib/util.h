/* Small shared helpers: diagnostics, strings, sizes, atomic files. */
#ifndef VM_UTIL_H
#define VM_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define VM_VERSION "0.1.0"

/* Exit statuses every tool shares (each page's EXIT STATUS section in man/). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_TIMEOUT = 3,
};

/* Diagnostics: "TOOL: message" on stderr, one line. getprogname() names the tool. */
void vm_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* *err = the formatted message, when err is not NULL (library errors). */
void vm_set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Out of memory: "TOOL: out of memory" and abort(). The library returns
 * every other error; the exiting helpers (vm_errx ...) are the tools' own,
 * in cmd/tool.h. */
_Noreturn void vm_oom(void);
extern int vm_verbose; /* -v count */
extern bool vm_quiet;  /* -q */
void vm_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that never returns NULL: out of memory ends the tool (vm_oom). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xvasprintf(const char *fmt, va_list ap);
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
/* All of p to fd (retrying after signals, waiting for room on a
 * non-blocking fd): 0, or -1 with errno. */
int write_full(int fd, const void *p, size_t n);
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
/* A name from a config that stays inside the folder it is taken relative to:
 * not empty, not absolute, no ".." component. */
bool bundle_name_is_safe(const char *name);

/* Random: a version-4 UUID and a locally administered unicast MAC (52:54:00 is QEMU's OUI). */
void uuid_generate_str(char out[37]);
void mac_generate_str(char out[18]);
bool uuid_valid(const char *s);
bool mac_valid(const char *s);

/* The words of sv, each shell-quoted, separated by spaces (a command line to show). */
void shell_quote_argv(struct buf *b, const struct strv *sv);

/* Milliseconds on CLOCK_MONOTONIC: deadlines and durations, never dates. */
double now_ms(void);

/* Unix sockets at paths of any length. sun_path holds 108 bytes; a longer
 * path is reached through its folder's /proc/self/fd/N entry. unix_addr
 * fills *sa for path (struct sockaddr_un *), with *dirfd the folder's fd
 * to close after bind/connect (-1 when none); 0, or -1 with errno
 * (ENAMETOOLONG when even the short form does not fit). */
int unix_addr(const char *path, void *sa, int *dirfd);
/* A listening socket (close-on-exec) at path, which is replaced, mode 0600.
 * Returns the fd, or -1 with *err naming path. */
int unix_listen(const char *path, int backlog, char **err);
/* A connected socket (close-on-exec) to path, or -1 with *err and errno. */
int unix_connect(const char *path, char **err);

#endif
