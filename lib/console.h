/* The serial console on a terminal (UTM's terminal window for a serial
 * port): QEMU's console socket relayed to and from the caller's stdio by
 * launch_supervise's loop (launch_sup.add_fds / on_fds, ctx the relay).
 * Ctrl-] on a raw terminal asks to detach: the VM runs on. */
#ifndef VM_CONSOLE_H
#define VM_CONSOLE_H

#include <poll.h>
#include <stdbool.h>

#define CONSOLE_ESCAPE_KEY 0x1d /* Ctrl-] */

struct console_relay {
	int con;     /* the console socket (connected, non-blocking); -1 once closed */
	int in, out; /* the caller's side: STDIN_FILENO, STDOUT_FILENO */
	bool raw;    /* in is a terminal in raw mode: the escape key detaches */
	bool *leave; /* set on the escape key (launch_sup.leave) */
	/* state */
	bool in_open; /* in has not reached its end */
	int i_con, i_in;
};

/* A relay between the socket con and in/out. */
void console_relay_init(struct console_relay *r, int con, bool raw, bool *leave);
/* launch_sup.add_fds: the relay's descriptors; returns how many. */
int console_relay_fds(void *relay, struct pollfd *pf, int max);
/* launch_sup.on_fds: console to out, in to the console. */
void console_relay_io(void *relay, const struct pollfd *pf, int n);
/* What the console still holds when QEMU is gone, to out. */
void console_relay_drain(struct console_relay *r);

#endif
