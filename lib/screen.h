/* The VM's screen: which display it gets and the URI a viewer opens, and,
 * for a running VM, screenshots (QMP screendump) and keys (QMP send-key):
 * UTM's CocoaSpice window, for any viewer and for scripts. */
#ifndef VM_SCREEN_H
#define VM_SCREEN_H

#include <stdbool.h>

#include "config.h"

struct qmp;

/* The viewer URI vm-run records in the runtime dir for a VM with a display. */
#define RT_DISPLAY "display"

struct display_spec {
	char kind[8]; /* none vnc spice */
	int port;     /* vnc: a TCP port on 127.0.0.1 (>= 5900); 0 = the unix socket */
};

/* "none", "vnc", "spice" or "vnc:PORT" (5900-65535). 0, or -1 with *err. */
int display_parse(const char *s, struct display_spec *out, char **err);
/* The display a run gets: override (display_parse's syntax; NULL = none
 * given) or the config's. 0, or -1 with *err. */
int display_resolve(const struct vm_config *c, const char *override, struct display_spec *out, char **err);
/* What a viewer opens (remote-viewer URI): spice+unix:///RT/spice.sock,
 * vnc+unix:///RT/vnc.sock or vnc://127.0.0.1:PORT; NULL for none. */
char *display_uri(const struct display_spec *d, const char *runtime_dir);

/* Parse a key combination: "ctrl-alt-del", "ret", "a", "shift-f1", words
 * separated by '-' or '+'; each a QEMU QKeyCode, or a common alias (ctrl,
 * alt, del, enter, esc, win ...). *codes gets a NULL-terminated array of
 * QKeyCode names (free with free()). 0, or -1 with *err naming the key. */
int screen_parse_keys(const char *combo, const char ***codes, char **err);
/* Press and release the combination on the running VM. */
int screen_send_keys(struct qmp *q, const char *combo, int timeout_ms, char **err);
/* Save the screen as a PNG at out: QEMU writes it through a descriptor we
 * pass (add-fd), so a QEMU running as another user needs no access to
 * out's folder; a temporary file beside out is renamed into place. */
int screen_dump(struct qmp *q, const char *out, int timeout_ms, char **err);

#endif
