/* qmpraw: the floor for a QMP client, for make bench.
 *   qmpraw SOCK        connect, read the greeting, qmp_capabilities,
 *                      query-status, print its reply; exit
 *   qmpraw -n N SOCK   the same, then N query-status written at once (one
 *                      blocking write of them all, from a thread) while the
 *                      replies are read in large blocks and counted by the
 *                      "return" that starts them; prints the commands per
 *                      second: the ceiling QEMU itself sets for vm-qmp -
 *   qmpraw -n N -p P SOCK   each of the N padded with P spaces: how the rate
 *                      falls with the bytes QEMU must read
 * Nothing but libc; no JSON parsing beyond counting reply lines. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int fd;
static char buf[1 << 16];
static size_t len, skip; /* skip: the line line() last returned */

/* read one line of QEMU's output (a reply, the greeting or an event) */
static char *line(void)
{
	if (skip) {
		memmove(buf, buf + skip, len - skip);
		len -= skip;
		skip = 0;
	}
	for (;;) {
		char *nl = memchr(buf, '\n', len);
		if (nl) {
			skip = (size_t)(nl - buf) + 1;
			*nl = 0;
			return buf;
		}
		if (len == sizeof buf)
			return NULL;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 30000) <= 0)
			return NULL;
		ssize_t n = read(fd, buf + len, sizeof buf - len);
		if (n <= 0)
			return NULL;
		len += (size_t)n;
	}
}

static char *reply(void)
{
	char *l;
	while ((l = line()) && strncmp(l, "{\"return\"", 9) && strncmp(l, "{\"error\"", 8))
		; /* events */
	return l;
}

static int send_all(const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

struct job {
	const char *data;
	size_t len;
	int failed;
};

static void *writer(void *arg)
{
	struct job *j = arg;
	j->failed = send_all(j->data, j->len);
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = 0, pad = 0;
	if (argc >= 4 && !strcmp(argv[1], "-n"))
		n = atol(argv[2]), argv += 2, argc -= 2;
	if (n && argc >= 4 && !strcmp(argv[1], "-p"))
		pad = atol(argv[2]), argv += 2, argc -= 2;
	if (argc != 2 || n < 0 || pad < 0 || pad > 4096) {
		fprintf(stderr, "usage: qmpraw [-n N [-p PAD]] SOCK\n");
		return 2;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror(argv[1]);
		return 1;
	}
	static const char cap[] = "{\"execute\":\"qmp_capabilities\"}\n";
	static const char qs[] = "{\"execute\":\"query-status\"}\n";
	char *l;
	if (!line() || send_all(cap, sizeof cap - 1) || !reply() ||
	    send_all(qs, sizeof qs - 1) || !(l = reply())) {
		fprintf(stderr, "qmpraw: no reply\n");
		return 1;
	}
	if (!n) {
		puts(l);
		return 0;
	}
	size_t qn = sizeof qs - 1 + (size_t)pad, total = (size_t)n * qn;
	char *out = malloc(total);
	if (!out)
		return 1;
	for (long i = 0; i < n; i++) {
		/* the padding goes inside the object, before its closing brace */
		char *c = out + (size_t)i * qn;
		memcpy(c, qs, sizeof qs - 3);
		memset(c + sizeof qs - 3, ' ', (size_t)pad);
		memcpy(c + sizeof qs - 3 + pad, "}\n", 2);
	}
	/* keep what came after the reply to query-status */
	memmove(buf, buf + skip, len - skip);
	len -= skip;
	/* blocking from here: the writer sleeps while the socket is full, the
	 * reader while nothing came */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	struct job w = {.data = out, .len = total};
	double t0 = now();
	pthread_t th;
	if (pthread_create(&th, NULL, writer, &w))
		return 1;
	long got = 0;
	/* a reply line starts with {"return" (or {"error"); events do not */
	static const char ret[] = "\n{\"return\"", er[] = "\n{\"error\"";
	char *big = malloc(1 << 20);
	size_t have = 1;
	big[0] = '\n'; /* so the first line, too, follows a newline */
	memcpy(big + 1, buf, len);
	have += len;
	for (;;) {
		/* every newline with a whole line start after it; a newline
		 * too near the end waits for the next read, with what follows */
		char *s = big, *e = big + have;
		while ((s = memchr(s, '\n', (size_t)(e - s))) && (size_t)(e - s) >= sizeof ret - 1) {
			if (!memcmp(s, ret, sizeof ret - 1) || !memcmp(s, er, sizeof er - 1))
				got++;
			s++;
		}
		if (got >= n)
			break;
		size_t keep = s ? (size_t)(e - s) : 0;
		memmove(big, e - keep, keep);
		have = keep;
		if (have == 1 << 20)
			return 1;
		ssize_t r = read(fd, big + have, (1 << 20) - have);
		if (r <= 0) {
			fprintf(stderr, "qmpraw: connection lost after %ld replies\n", got);
			return 1;
		}
		have += (size_t)r;
	}
	pthread_join(th, NULL);
	if (w.failed) {
		fprintf(stderr, "qmpraw: write failed\n");
		return 1;
	}
	printf("%.0f\n", (double)n / (now() - t0));
	return 0;
}
