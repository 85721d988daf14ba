/* vm-screen: the running VM's screen: save a screenshot, send keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "bundle.h"
#include "qmp.h"
#include "runtime.h"
#include "screen.h"
#include "tool.h"

enum { OPT_KEYS = CLI_LONG_ONLY };

static const struct cli_option options[] = {
    CLI_VALUE('k', "keys", "COMBO", "press and release keys, e.g. ctrl-alt-del, ret, shift-f1\n"
				     "(QEMU's key names; repeatable, sent in order)"),
    CLI_VALUE('t', "timeout", "SECONDS", "how long QEMU may take to answer (default 10)"),
    CLI_FLAG('q', "quiet", "no messages but errors"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-screen [-t SECONDS] BUNDLE OUT.png\n"
	     "       vm-screen [-t SECONDS] BUNDLE --keys COMBO...\n",
    .about = "Save a screenshot of the running VM's display as PNG, or send it keys.\n",
    .options = options,
};

int main(int argc, char **argv)
{
	struct strv keys = {0};
	int timeout_ms = 10000, ch;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case 'k': strv_push(&keys, optarg); break;
		case 't': timeout_ms = tool_seconds("--timeout", optarg) * 1000; break;
		}
	}
	int nargs = argc - optind;
	if (keys.n ? nargs != 1 : nargs != 2)
		tool_usage_error(&cli);
	char *err = NULL;
	for (size_t i = 0; i < keys.n; i++) {
		const char **codes;
		if (screen_parse_keys(keys.v[i], &codes, &err) < 0)
			vm_errx(EXIT_USAGE, "%s", err);
		free(codes);
	}
	struct bundle b;
	bundle_open_or_die(&b, argv[optind]);
	char *name = bundle_display_name(b.path);
	char *dir = tool_runtime_dir(&b);
	if (!runtime_locked(dir))
		vm_errx(EXIT_FAIL, "%s: not running", name);
	char *sock = path_join(dir, RT_QMP);
	struct qmp *q = qmp_connect(sock, timeout_ms, &err);
	free(sock);
	if (!q)
		vm_errx(EXIT_FAIL, "%s: QMP: %s", name, err);
	int r = 0;
	for (size_t i = 0; i < keys.n && r == 0; i++)
		r = screen_send_keys(q, keys.v[i], timeout_ms, &err);
	if (!keys.n)
		r = screen_dump(q, argv[optind + 1], timeout_ms, &err);
	qmp_close(q);
	if (r < 0)
		vm_errx(EXIT_FAIL, "%s: %s", name, err);
	strv_free(&keys);
	free(dir);
	free(name);
	bundle_close(&b);
	return EXIT_OK;
}
