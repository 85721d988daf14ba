/* Running helper programs (qemu-img, swtpm...) and reporting their failure. */
#ifndef VM_PROC_H
#define VM_PROC_H

#include "util.h"

/* Run argv (PATH search), wait. Its stderr (and stdout if out is NULL) is
 * captured into *errout (may be NULL to discard). Returns the exit status,
 * 128+signal when killed, or -1 if it could not start (errno set). */
int proc_run(char *const argv[], struct buf *out, struct buf *errout);

/* One line for a failed command: "qemu-img: <its last stderr line>". */
char *proc_error_line(const char *prog, int status, const struct buf *errout);

#endif
