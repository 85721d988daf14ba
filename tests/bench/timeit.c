/* timeit: run a command many times and print the median wall time in ms.
 *   timeit [-n RUNS] [-q SOCK] [-f FILE -m MARKER] -- CMD ARGS...
 * -q SOCK: the time is until QEMU answers its first command on SOCK (polled
 *          for the greeting, then qmp_capabilities), the point where
 *          vm-run -d returns; then the process gets "quit".
 * -f FILE -m MARKER: until MARKER appears in FILE (removed before each run:
 *          a console log); then CMD is waited for, outside the clock.
 * Without -q: until CMD exits (status must be 0). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static bool has_marker(const char *path, const char *marker)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return memmem(buf, n, marker, strlen(marker)) != NULL;
}

static int qmp_greeting(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	char buf[4096];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) <= 0 || read(fd, buf, sizeof buf) <= 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	int runs = 50, ch;
	const char *sock = NULL, *file = NULL, *marker = NULL;
	while ((ch = getopt(argc, argv, "+n:q:f:m:")) != -1) {
		if (ch == 'n')
			runs = atoi(optarg);
		else if (ch == 'q')
			sock = optarg;
		else if (ch == 'f')
			file = optarg;
		else if (ch == 'm')
			marker = optarg;
		else
			return 2;
	}
	argv += optind;
	if (!argv[0] || runs < 1 || !file != !marker)
		return 2;
	double *t = calloc((size_t)runs, sizeof *t);
	for (int i = 0; i < runs; i++) {
		if (sock)
			unlink(sock);
		if (file)
			unlink(file);
		double t0 = now_ms();
		pid_t pid;
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
		if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
			perror(argv[0]);
			return 1;
		}
		int st;
		if (file) {
			/* poll the file every 0.5 ms: a boot takes seconds */
			double limit = t0 + 600e3;
			bool exited = false;
			while (!has_marker(file, marker)) {
				if (!exited && waitpid(pid, &st, WNOHANG) == pid) {
					exited = true;
					if (!WIFEXITED(st) || WEXITSTATUS(st)) {
						fprintf(stderr, "timeit: %s failed\n", argv[0]);
						return 1;
					}
				}
				if (now_ms() > limit) {
					fprintf(stderr, "timeit: no %s in %s\n", marker, file);
					return 1;
				}
				usleep(500);
			}
			t[i] = now_ms() - t0;
			if (!exited)
				waitpid(pid, &st, 0);
		} else if (sock) {
			int fd;
			while ((fd = qmp_greeting(sock)) < 0) {
				if (waitpid(pid, &st, WNOHANG) == pid) {
					fprintf(stderr, "timeit: %s exited early\n", argv[0]);
					return 1;
				}
				usleep(200);
			}
			/* the greeting comes at start-up; commands are answered once
			 * QEMU's main loop runs */
			const char *c = "{\"execute\":\"qmp_capabilities\"}\n";
			char buf[4096];
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (write(fd, c, strlen(c)) < 0 || poll(&p, 1, 10000) <= 0 || read(fd, buf, sizeof buf) <= 0) {
				fprintf(stderr, "timeit: no answer to qmp_capabilities\n");
				return 1;
			}
			t[i] = now_ms() - t0;
			const char *q = "{\"execute\":\"quit\"}\n";
			if (write(fd, q, strlen(q)) < 0)
				perror("write");
			waitpid(pid, &st, 0);
			close(fd);
		} else {
			waitpid(pid, &st, 0);
			t[i] = now_ms() - t0;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				fprintf(stderr, "timeit: %s failed\n", argv[0]);
				return 1;
			}
		}
	}
	qsort(t, (size_t)runs, sizeof *t, cmp);
	printf("%.3f\n", t[runs / 2]);
	return 0;
}
