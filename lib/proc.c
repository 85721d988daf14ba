#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int proc_run(char *const argv[], struct buf *out, struct buf *errout)
{
	int opipe[2] = {-1, -1}, epipe[2];
	if (pipe2(epipe, O_CLOEXEC) < 0)
		return -1;
	if (out && pipe2(opipe, O_CLOEXEC) < 0) {
		close(epipe[0]);
		close(epipe[1]);
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, epipe[1], 2);
	posix_spawn_file_actions_adddup2(&fa, out ? opipe[1] : epipe[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(epipe[1]);
	if (out)
		close(opipe[1]);
	if (r != 0) {
		close(epipe[0]);
		if (out)
			close(opipe[0]);
		errno = r;
		return -1;
	}
	struct pollfd pf[2] = {{.fd = epipe[0], .events = POLLIN}, {.fd = out ? opipe[0] : -1, .events = POLLIN}};
	int open_fds = out ? 2 : 1;
	char chunk[4096];
	while (open_fds > 0) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(pf[i].fd, chunk, sizeof chunk);
			if (n <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
				continue;
			}
			struct buf *dst = i == 0 ? errout : out;
			if (dst)
				buf_add(dst, chunk, (size_t)n);
		}
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

char *proc_error_line(const char *prog, int status, const struct buf *errout)
{
	if (status < 0)
		return xasprintf("%s: %s", prog, strerror(errno));
	/* the last non-empty line is the one that says why */
	const char *s = errout && errout->s ? errout->s : "";
	const char *end = s + strlen(s);
	while (end > s && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	const char *start = end;
	while (start > s && start[-1] != '\n')
		start--;
	if (start == end)
		return status > 128 ? xasprintf("%s: killed by signal %d", prog, status - 128)
				    : xasprintf("%s: exited with status %d", prog, status);
	return xasprintf("%.*s", (int)(end - start), start);
}
