/* QEMU option strings ("virtio-net-pci,netdev=net-n0,mac=..."): the one way
 * argv.c builds them. QEMU splits an option at each ',' and reads ",," as a
 * literal comma, so a value from the config either matches its grammar (a
 * matching value holds no ',') or has its commas doubled: no config value
 * can add a key to an option (issue 15: "br0,helper=..." on -netdev bridge
 * ran a command as root).
 *
 *   struct qopt *o = qopt_new("virtio-net-pci");
 *   qopt_add(o, "netdev", "net-n0");
 *   qopt_add_checked(o, "mac", n->mac, &grammar_mac, "net.%s.mac", n->id);
 *   char *s = qopt_finish(o, &err);   // NULL and *err if a check failed
 */
#ifndef VM_QOPT_H
#define VM_QOPT_H

#include <stdbool.h>

struct grammar; /* config.h: a value's grammar, as the field table names it */
struct qopt;

/* Commas doubled, the rest as is (malloc'd). */
char *qopt_escape(const char *s);

/* An option string that starts with head (a driver or backend name, or an
 * implied value such as "unix:PATH"), escaped; NULL: it starts with the
 * first key. */
struct qopt *qopt_new(const char *head);
/* ",key=value", value escaped; key NULL: a bare item (the head, when
 * qopt_new had none). key is the caller's constant. */
void qopt_add(struct qopt *o, const char *key, const char *value);
void qopt_addf(struct qopt *o, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* qopt_add of a config value that must match g; if it does not, nothing is
 * added and qopt_finish fails with "CFGKEY: 'VALUE' is not WHAT" (cfgkey a
 * format: "net.%s.bridge", id). */
bool qopt_add_checked(struct qopt *o, const char *key, const char *value, const struct grammar *g,
		      const char *cfgkey, ...) __attribute__((format(printf, 5, 6)));
/* keys appended as they are, when they match g: a list of KEY=VALUE the
 * config holds by design (machine_props, UTM's MachinePropertyOverride). */
bool qopt_add_keys(struct qopt *o, const char *keys, const struct grammar *g, const char *cfgkey);
/* Drops an option string that will not be used. */
void qopt_free(struct qopt *o);
/* The string (malloc'd), or NULL with *err (the first failed check); frees o. */
char *qopt_finish(struct qopt *o, char **err);

#endif
