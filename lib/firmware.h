/* Firmware images from Debian's packages and the bundle's UEFI variables. */
#ifndef VM_FIRMWARE_H
#define VM_FIRMWARE_H
#include "bundle.h"

/* The UEFI code image for an architecture, from $VM_FIRMWARE_DIR or
 * Debian's firmware folders (malloc'd), or NULL if none is installed. */
char *firmware_uefi_code(const char *arch);
/* The empty UEFI variable store each bundle gets a copy of (efi_vars.fd),
 * found the same way; NULL if none. */
char *firmware_uefi_vars(const char *arch);
/* Create the bundle's UEFI variable store from that template if the config
 * wants UEFI and it is missing (UTM does the same at start; a config.zip or
 * vm-config set firmware uefi leaves none). 1 if created, 0 if nothing to
 * do, -1 with *err. */
int firmware_ensure_efi_vars(const struct bundle *b, char **err);
#endif
