/* Firmware images from Debian's packages (ovmf, qemu-efi-aarch64,
 * qemu-efi-arm) and the bundle's own UEFI variable store. */
#include "firmware.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *firmware_dirs[] = {"/usr/share/OVMF", "/usr/share/AAVMF", "/usr/share/qemu-efi-aarch64",
				      "/usr/share/qemu", NULL};

/* The first of names found in $VM_FIRMWARE_DIR or Debian's firmware dirs. */
static char *find_firmware(const char *const *names)
{
	const char *env = getenv("VM_FIRMWARE_DIR");
	for (int i = 0; names[i]; i++) {
		if (env) {
			char *p = path_join(env, names[i]);
			if (file_exists(p))
				return p;
			free(p);
		}
		for (int d = 0; firmware_dirs[d]; d++) {
			char *p = path_join(firmware_dirs[d], names[i]);
			if (file_exists(p))
				return p;
			free(p);
		}
	}
	return NULL;
}

/* Debian's UEFI images (ovmf, qemu-efi-aarch64, qemu-efi-arm): the code,
 * and the empty variable store each bundle gets a copy of. */
static const struct {
	const char *arch, *code[3], *vars[3];
} uefi_images[] = {
    {"x86_64", {"OVMF_CODE_4M.fd", "OVMF_CODE.fd"}, {"OVMF_VARS_4M.fd", "OVMF_VARS.fd"}},
    {"aarch64", {"AAVMF_CODE.fd", "QEMU_EFI.fd"}, {"AAVMF_VARS.fd"}},
    {"arm", {"AAVMF32_CODE.fd"}, {"AAVMF32_VARS.fd"}},
    {"i386", {"OVMF32_CODE_4M.secboot.fd"}, {"OVMF32_VARS_4M.fd"}},
};

static char *uefi_image(const char *arch, bool vars)
{
	for (size_t i = 0; i < sizeof(uefi_images) / sizeof(uefi_images[0]); i++)
		if (!strcmp(arch, uefi_images[i].arch))
			return find_firmware(vars ? uefi_images[i].vars : uefi_images[i].code);
	return NULL;
}

char *firmware_uefi_code(const char *arch)
{
	return uefi_image(arch, false);
}

char *firmware_uefi_vars(const char *arch)
{
	return uefi_image(arch, true);
}

int firmware_ensure_efi_vars(const struct bundle *b, char **err)
{
	struct vm_config c;
	bundle_effective_config(b, &c);
	int r = 0;
	char *path = NULL, *tmpl = NULL, *data = NULL, *e = NULL;
	if (c.bios || strcmp(c.firmware, "uefi") != 0)
		goto out;
	if (!(path = bundle_resolve(b, c.efi_vars, &e))) {
		*err = xasprintf("efi_vars: %s", e);
		r = -1;
		goto out;
	}
	if (access(path, F_OK) == 0 || errno != ENOENT)
		goto out; /* there, or a problem that opening it will name */
	if (!(tmpl = firmware_uefi_vars(c.arch))) {
		*err = xasprintf("efi_vars: %s is missing, and there is no UEFI variable store for %s "
				 "to copy (install ovmf or qemu-efi-aarch64)",
				 path, c.arch);
		r = -1;
		goto out;
	}
	size_t len = 0;
	if (!(data = read_file(tmpl, &len)) || write_file_atomic(path, data, len, 0644) < 0) {
		*err = xasprintf("efi_vars: %s: %s", data ? path : tmpl, strerror(errno));
		r = -1;
		goto out;
	}
	r = 1;
out:
	free(e);
	free(path);
	free(tmpl);
	free(data);
	config_free(&c);
	return r;
}
