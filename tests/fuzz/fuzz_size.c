/* Size and number strings as the tools take them (parse_size: "512M",
 * "1.5G", "4096KiB"; parse_int; parse_bool), with the promise vm-disk and
 * vm-config rely on: format_size gives a string that parses back to the same
 * number of bytes. Also the other small string checks of user input: ids,
 * UUIDs, MAC addresses, bundle-relative names, archive format names. */
#include <limits.h>

#include "archive.h"
#include "bundle.h"
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	vm_quiet = true;
	return 0;
}

static void size_roundtrip(const char *s, uint64_t unit)
{
	uint64_t bytes;
	if (parse_size(s, unit, &bytes) < 0)
		return;
	char *f = format_size(bytes);
	uint64_t back;
	FUZZ_ASSERT(parse_size(f, 1, &back) == 0, "'%s' -> %llu -> '%s' does not parse", s,
		    (unsigned long long)bytes, f);
	FUZZ_ASSERT(back == bytes, "'%s' -> %llu -> '%s' -> %llu", s, (unsigned long long)bytes, f,
		    (unsigned long long)back);
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	size_roundtrip(s, 1);
	size_roundtrip(s, 1ULL << 20);
	size_roundtrip(s, 512);

	long long v;
	const char *es = NULL;
	if (parse_int(s, LLONG_MIN, LLONG_MAX, &v, &es) == 0) {
		char *t = xasprintf("%lld", v);
		long long w;
		FUZZ_ASSERT(parse_int(t, LLONG_MIN, LLONG_MAX, &w, NULL) == 0 && w == v, "%s", t);
		free(t);
	}
	(void)parse_int(s, 1, 65535, &v, &es);
	bool b;
	(void)parse_bool(s, &b);

	(void)config_id_valid(s);
	(void)uuid_valid(s);
	(void)mac_valid(s);
	(void)bundle_name_is_safe(s);
	(void)pack_format_parse(s);
	(void)pack_format_from_name(s);
	struct buf q = {0};
	shell_quote(&q, s);
	buf_free(&q);
	free(s);
	return 0;
}
