#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int vm_verbose;
bool vm_quiet;

/* Messages name bundles, files and entries the user (or an archive) chose:
 * their control characters are escaped (buf_put_printable), newlines
 * kept, so a multi-line message stays one. */
static void vwarn_common(const char *fmt, va_list ap, int errnum)
{
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	struct buf b = {0};
	buf_printf(&b, "%s: ", getprogname());
	buf_put_printable(&b, msg ? msg : fmt, true);
	if (errnum)
		buf_printf(&b, ": %s", strerror(errnum));
	buf_puts(&b, "\n");
	fputs(b.s, stderr);
	buf_free(&b);
	free(msg);
}

void vm_warnx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn_common(fmt, ap, 0);
	va_end(ap);
}

void vm_warn(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vwarn_common(fmt, ap, e);
	va_end(ap);
}

/* Out of memory: the library has no caller to hand the error to that could
 * do better, so it ends the process as malloc's users always have (abort,
 * not exit: no atexit handlers run on a heap in an unknown state). */
void vm_oom(void)
{
	static const char msg[] = ": out of memory\n";
	const char *name = getprogname();
	if (write(STDERR_FILENO, name, strlen(name)) < 0 || write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
		/* nothing left to report it with */
	}
	abort();
}

void vm_set_err(char **err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		vm_oom();
	va_end(ap);
}

void vm_info(const char *fmt, ...)
{
	if (!vm_verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vwarn_common(fmt, ap, 0);
	va_end(ap);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		vm_oom();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p)
		vm_oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		vm_oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		vm_oom();
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		vm_oom();
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void strv_push(struct strv *sv, const char *s)
{
	if (sv->n + 2 > sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 16;
		sv->v = xrealloc(sv->v, sv->cap * sizeof(*sv->v));
	}
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

void strv_pushf(struct strv *sv, const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		vm_oom();
	va_end(ap);
	strv_push(sv, s);
	free(s);
}

void strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

void strv_copy(struct strv *dst, const struct strv *src)
{
	for (size_t i = 0; i < src->n; i++)
		strv_push(dst, src->v[i]);
}

bool strv_contains(const struct strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	char *s;
	int n;
	va_list ap;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		vm_oom();
	buf_add(b, s, (size_t)n);
	free(s);
}

void buf_free(struct buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

/* The length of the UTF-8 sequence at s (1..4), or 0 if it is not one (or
 * encodes a C1 control, U+0080..U+009F, which terminals may obey). */
static size_t utf8_printable_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
	if (!n || (n == 2 && s[0] == 0xc2 && s[1] < 0xa0))
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
	    (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
		return 0; /* overlong, surrogate, past U+10FFFF */
	return n;
}

void buf_put_printable(struct buf *b, const char *s, bool keep_newlines)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = utf8_printable_len(p);
		if (n == 1 && (*p < 0x20 || *p == 0x7f) && !(keep_newlines && *p == '\n'))
			n = 0;
		if (n) {
			buf_add(b, (const char *)p, n);
			p += n;
		} else {
			buf_printf(b, "\\x%02x", *p++);
		}
	}
}

char *str_printable(const char *s)
{
	struct buf b = {0};
	buf_put_printable(&b, s, false);
	return b.s ? b.s : xstrdup("");
}

int parse_size(const char *s, uint64_t default_unit, uint64_t *bytes)
{
	const char *p = s;
	uint64_t whole = 0, frac = 0, fracdiv = 1, unit = default_unit;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (fracdiv < 1000000000ULL) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fracdiv *= 10;
			}
		}
	}
	if (*p) {
		switch (toupper((unsigned char)*p)) {
		case 'B': unit = 1; break;
		case 'K': unit = 1ULL << 10; break;
		case 'M': unit = 1ULL << 20; break;
		case 'G': unit = 1ULL << 30; break;
		case 'T': unit = 1ULL << 40; break;
		default: return -1;
		}
		p++;
		/* accept K, KB, KiB, M, MB, MiB ... */
		if (unit != 1 && (*p == 'i' || *p == 'I'))
			p++;
		if (unit != 1 && (*p == 'b' || *p == 'B'))
			p++;
		if (*p)
			return -1;
	}
	if (whole > UINT64_MAX / unit)
		return -1;
	uint64_t r = whole * unit;
	uint64_t f = (uint64_t)((long double)frac / (long double)fracdiv * (long double)unit);
	if (r > UINT64_MAX - f)
		return -1;
	*bytes = r + f;
	return 0;
}

int parse_int(const char *s, long long min, long long max, long long *out, const char **errstr)
{
	const char *e = NULL;
	long long v = strtonum(s, min, max, &e);
	if (e) {
		if (errstr)
			*errstr = e;
		return -1;
	}
	*out = v;
	return 0;
}

int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1", NULL};
	static const char *const no[] = {"false", "no", "off", "0", NULL};
	if (str_in(s, yes))
		*out = true;
	else if (str_in(s, no))
		*out = false;
	else
		return -1;
	return 0;
}

char *format_size(uint64_t bytes)
{
	static const char units[] = "TGMK";
	for (int i = 0; i < 4; i++) {
		uint64_t u = 1ULL << (10 * (4 - i));
		if (bytes && bytes % u == 0)
			return xasprintf("%llu%c", (unsigned long long)(bytes / u), units[i]);
	}
	return xasprintf("%llu", (unsigned long long)bytes);
}

void shell_quote(struct buf *b, const char *s)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_-+=:,./";
	if (*s && strspn(s, safe) == strlen(s)) {
		buf_puts(b, s);
		return;
	}
	buf_puts(b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			buf_puts(b, "'\\''");
		else
			buf_add(b, s, 1);
	}
	buf_puts(b, "'");
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return strndup(path, (size_t)(slash - path));
}

int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	int fd = mkstemp(tmp), saved;
	if (fd < 0) {
		free(tmp);
		return -1;
	}
	if (fchmod(fd, mode) < 0)
		goto fail;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	free(tmp);
	char *dir = dir_of(path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(dir);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}

int write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* a non-blocking fd (a console socket): wait for room */
			poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, -1);
			continue;
		}
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

char *read_file(const char *path, size_t *lenp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct buf b = {0};
	char chunk[8192];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			buf_free(&b);
			errno = e;
			return NULL;
		}
		if (n == 0)
			break;
		buf_add(&b, chunk, (size_t)n);
	}
	close(fd);
	if (!b.s)
		b.s = xstrdup("");
	if (lenp)
		*lenp = b.len;
	return b.s;
}

char *read_regular_file(const char *path, size_t max, size_t *lenp, char **err)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	if (fd < 0) {
		vm_set_err(err, "%s: %s", path, errno == ELOOP ? "is a symbolic link, not a file" : strerror(errno));
		return NULL;
	}
	const char *why = fstat(fd, &st) < 0	 ? strerror(errno)
			  : !S_ISREG(st.st_mode)	 ? "not a regular file"
			  : (uint64_t)st.st_size > max ? "too large"
						       : NULL;
	if (why) {
		if (!strcmp(why, "too large"))
			vm_set_err(err, "%s: larger than %zu bytes", path, max);
		else
			vm_set_err(err, "%s: %s", path, why);
		close(fd);
		return NULL;
	}
	char *data = xmalloc((size_t)st.st_size + 1);
	size_t len = 0;
	for (;;) {
		/* up to one byte past max, to see a file that grew */
		ssize_t n = read(fd, data + len, (size_t)st.st_size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vm_set_err(err, "%s: %s", path, strerror(errno));
			close(fd);
			free(data);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > (size_t)st.st_size) {
			vm_set_err(err, "%s: changed while being read", path);
			close(fd);
			free(data);
			return NULL;
		}
	}
	close(fd);
	data[len] = '\0';
	if (lenp)
		*lenp = len;
	return data;
}

int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	int r = mkdir(p, mode);
	free(p);
	if (r < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (!d)
			return -1;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char *sub = path_join(path, de->d_name);
			rm_rf(sub);
			free(sub);
		}
		closedir(d);
		return rmdir(path);
	}
	return unlink(path);
}

char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	if (la && a[la - 1] == '/')
		return xasprintf("%s%s", a, b);
	return xasprintf("%s/%s", a, b);
}

bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

bool str_in(const char *s, const char *const *list)
{
	if (!s)
		return false;
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool bundle_name_is_safe(const char *name)
{
	if (!*name || name[0] == '/')
		return false;
	/* no ".." component anywhere */
	const char *p = name;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
		while (*p == '/')
			p++;
	}
	return true;
}

static void random_bytes(unsigned char *p, size_t n)
{
	arc4random_buf(p, n);
}

void uuid_generate_str(char out[37])
{
	unsigned char u[16];
	random_bytes(u, sizeof u);
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
}

void mac_generate_str(char out[18])
{
	unsigned char m[3];
	random_bytes(m, sizeof m);
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", m[0], m[1], m[2]);
}

bool uuid_valid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

bool mac_valid(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (s[i] != ':')
				return false;
		} else if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	/* a multicast MAC cannot be a NIC's address */
	unsigned first = (unsigned)strtoul(s, NULL, 16);
	return (first & 1) == 0;
}

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int unix_addr(const char *path, void *sap, int *dirfd)
{
	struct sockaddr_un *sa = sap;
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	*dirfd = -1;
	if (strlen(path) < sizeof sa->sun_path) {
		memcpy(sa->sun_path, path, strlen(path) + 1);
		return 0;
	}
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xasprintf("%.*s", (int)(slash - path), path) : xstrdup(".");
	int dfd = open(*dir ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (dfd < 0)
		return -1;
	char *alt = xasprintf("/proc/self/fd/%d/%s", dfd, slash ? slash + 1 : path);
	bool fits = strlen(alt) < sizeof sa->sun_path;
	if (fits)
		memcpy(sa->sun_path, alt, strlen(alt) + 1);
	free(alt);
	if (!fits) {
		close(dfd);
		errno = ENAMETOOLONG;
		return -1;
	}
	*dirfd = dfd;
	return 0;
}

/* The failure of unix_listen or unix_connect: *err names path, the
 * descriptors are closed, errno is kept. */
static int unix_fail(const char *path, int fd, int dfd, char **err)
{
	int e = errno;
	vm_set_err(err, "%s: %s", path, strerror(e));
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	errno = e;
	return -1;
}

int unix_listen(const char *path, int backlog, char **err)
{
	struct sockaddr_un sa;
	int dfd, fd = -1;
	if (unix_addr(path, &sa, &dfd) < 0)
		goto fail;
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	mode_t old = umask(0177); /* srw------- */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(fd, backlog) < 0)
		goto fail;
	if (dfd >= 0)
		close(dfd);
	return fd;
fail:
	return unix_fail(path, fd, dfd, err);
}

int unix_connect(const char *path, char **err)
{
	struct sockaddr_un sa;
	int dfd = -1, fd = -1;
	if (unix_addr(path, &sa, &dfd) < 0)
		goto fail;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		goto fail;
	if (dfd >= 0)
		close(dfd);
	return fd;
fail:
	return unix_fail(path, fd, dfd, err);
}

void shell_quote_argv(struct buf *b, const struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++) {
		if (i)
			buf_puts(b, " ");
		shell_quote(b, sv->v[i]);
	}
}
