/* The tool layer (tool.h): exits, the option loop, the stdout check. */
#include "tool.h"
#include "runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define VM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VM_ASAN 1
#endif
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define VM_VALGRIND_HOOK 1
#endif
#endif
#ifdef VM_ASAN
static volatile int exiting_on_error;
/* LeakSanitizer's hook: no leak report for an exit on an error. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return exiting_on_error;
}
#endif

void vm_exit_error(int status)
{
	/* What a tool still holds when it gives up on an error is the system's
	 * to reclaim, not a leak: LeakSanitizer is turned off, and valgrind's
	 * log gets a mark that tests/run reads (memory errors still count). */
#ifdef VM_ASAN
	if (status != 0)
		exiting_on_error = 1;
#endif
#ifdef VM_VALGRIND_HOOK
	if (status != 0 && RUNNING_ON_VALGRIND)
		VALGRIND_PRINTF("utmkit: error exit %d\n", status);
#endif
	exit(status);
}

static _Noreturn void vdie(int status, int errnum, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", getprogname());
	vfprintf(stderr, fmt, ap);
	if (errnum)
		fprintf(stderr, ": %s", strerror(errnum));
	fputc('\n', stderr);
	vm_exit_error(status);
}

void vm_errx(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdie(status, 0, fmt, ap);
}

void vm_err(int status, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vdie(status, e, fmt, ap);
}

/* ---- stdout, checked at exit ---- */

static void check_stdout(void)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return;
	int e = errno;
	/* a reader that went away (SIGPIPE ignored) is no news to anyone */
	if (e != EPIPE)
		fprintf(stderr, "%s: stdout: %s\n", getprogname(), e ? strerror(e) : "write error");
	/* exit() may not be called again from an atexit handler */
	_exit(EXIT_FAIL);
}

__attribute__((constructor)) static void install_stdout_check(void)
{
	atexit(check_stdout);
}

/* ---- options ---- */

static void print_usage_error(const char *synopsis)
{
	fputs(synopsis, stderr);
	fprintf(stderr, "(%s --help for more)\n", getprogname());
}

void tool_usage_error(const struct cli_spec *spec)
{
	char *s = cli_synopsis(spec);
	print_usage_error(s);
	free(s);
	vm_exit_error(EXIT_USAGE);
}

int tool_getopt(const struct cli_spec *spec, int argc, char **argv)
{
	static const struct cli_spec *built;
	static struct cli_getopt g;
	if (built != spec) {
		cli_getopt_free(&g);
		cli_getopt_build(spec, &g);
		built = spec;
	}
	for (;;) {
		int ch = getopt_long(argc, argv, g.shortopts, g.longopts, NULL);
		switch (ch) {
		case -1:
			cli_getopt_free(&g);
			built = NULL;
			return -1;
		case 'h': {
			char *help = cli_help(spec);
			fputs(help, stdout);
			free(help);
			exit(EXIT_OK);
		}
		case 'V': version_exit();
		case 'q': vm_quiet = true; break;
		case 'v': vm_verbose++; break;
		case '?':
		case ':': tool_usage_error(spec);
		default: return ch;
		}
	}
}

int tool_seconds(const char *opt, const char *value)
{
	int ms;
	if (parse_seconds(value, &ms) < 0)
		vm_errx(EXIT_USAGE, "%s %s: expected seconds, 0 (no timeout) to %d", opt, value, CLI_SECONDS_MAX);
	return ms;
}

/* ---- bundles ---- */

void bundle_open_flags_or_die(struct bundle *b, const char *arg, int flags)
{
	char *err = NULL;
	if (bundle_open_flags(b, arg, flags, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		vm_exit_error(EXIT_FAIL);
	}
}

void bundle_open_or_die(struct bundle *b, const char *arg)
{
	bundle_open_flags_or_die(b, arg, 0);
}

char *tool_runtime_dir(const struct bundle *b)
{
	char *err = NULL, *dir = bundle_runtime_path(b, NULL, &err);
	if (!dir)
		vm_errx(EXIT_FAIL, "%s", err);
	return dir;
}

void version_exit(void)
{
	printf("%s (utmkit) %s\n", getprogname(), VM_VERSION);
	exit(0);
}

