/* The running VM's screen: screenshots (QMP screendump) and keys (QMP
 * send-key), UTM's CocoaSpice window for scripts. Which display a VM gets
 * and the URI a viewer opens are in argv.h (display_parse ...). */
#ifndef VM_SCREEN_H
#define VM_SCREEN_H

struct qmp;

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
