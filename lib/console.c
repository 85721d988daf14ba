/* The serial console relay (console.h). */
#include "console.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

void console_relay_init(struct console_relay *r, int con, bool raw, bool *leave)
{
	*r = (struct console_relay){.con = con, .in = STDIN_FILENO, .out = STDOUT_FILENO, .raw = raw,
				    .leave = leave, .in_open = true, .i_con = -1, .i_in = -1};
}

int console_relay_fds(void *relay, struct pollfd *pf, int max)
{
	struct console_relay *r = relay;
	int n = 0;
	r->i_con = r->i_in = -1;
	if (r->con >= 0 && max >= 2) {
		pf[r->i_con = n++] = (struct pollfd){.fd = r->con, .events = POLLIN};
		if (r->in_open)
			pf[r->i_in = n++] = (struct pollfd){.fd = r->in, .events = POLLIN};
	}
	return n;
}

void console_relay_io(void *relay, const struct pollfd *pf, int n)
{
	struct console_relay *r = relay;
	char buf[16384];
	if (r->i_con >= 0 && r->i_con < n && pf[r->i_con].revents) {
		ssize_t k = read(r->con, buf, sizeof buf);
		if (k > 0) {
			(void)write_full(r->out, buf, (size_t)k);
		} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(r->con);
			r->con = -1;
		}
	}
	if (r->i_in < 0 || r->i_in >= n || r->con < 0 || !pf[r->i_in].revents)
		return;
	ssize_t k = read(r->in, buf, sizeof buf);
	if (k > 0) {
		char *esc = r->raw ? memchr(buf, CONSOLE_ESCAPE_KEY, (size_t)k) : NULL;
		if (esc && r->leave)
			*r->leave = true;
		(void)write_full(r->con, buf, esc ? (size_t)(esc - buf) : (size_t)k);
	} else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
		/* End of input: keep showing the console (no half-close: QEMU
		 * would take it for a disconnect). */
		r->in_open = false;
	}
}

void console_relay_drain(struct console_relay *r)
{
	char buf[16384];
	for (ssize_t k; r->con >= 0 && ((k = read(r->con, buf, sizeof buf)) > 0 || (k < 0 && errno == EINTR));)
		if (k > 0)
			(void)write_full(r->out, buf, (size_t)k);
}
