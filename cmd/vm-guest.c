/* vm-guest: inside the running guest, through the QEMU guest agent
 * (lib/agent.c): run a command, copy files in and out, read its addresses,
 * ping, info, set its clock, freeze its filesystems, shut it down. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"
#include "bundle.h"
#include "jsonobj.h"
#include "runtime.h"
#include "tool.h"

enum { OPT_ENV = CLI_LONG_ONLY, OPT_REBOOT, OPT_WAIT, OPT_NO_STDIN };

static const struct cli_option options[] = {
    CLI_VALUE(OPT_ENV, "env", "K=V", "exec: the command's environment (repeatable; given, it\n"
				     "replaces the agent's)"),
    CLI_VALUE('i', "input", "FILE", "exec: the command's stdin from FILE (- for ours; default:\n"
				    "ours when it is a pipe or a file)"),
    CLI_FLAG('n', "no-stdin", "exec: give the command no stdin"),
    CLI_VALUE('t', "timeout", "SECONDS", "exec: kill the command after SECONDS (exit status 124)"),
    CLI_VALUE(OPT_WAIT, "wait", "SECONDS", "wait up to SECONDS for the agent to answer (a guest\n"
					    "still booting); default: one try of 3 s"),
    CLI_FLAG('j', "json", "ip, info: JSON on stdout"),
    CLI_FLAG(OPT_REBOOT, "reboot", "shutdown: reboot instead"),
    CLI_FLAG('q', "quiet", "no messages but errors"),
    CLI_FLAG('v', "verbose", "say what is done"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-guest [options] BUNDLE exec [--env K=V]... [--input FILE|-] [--timeout S] -- ARGV...\n"
	     "       vm-guest [options] BUNDLE cp HOST_PATH :GUEST_PATH\n"
	     "       vm-guest [options] BUNDLE cp :GUEST_PATH HOST_PATH\n"
	     "       vm-guest [options] BUNDLE ip [--json]\n"
	     "       vm-guest [options] BUNDLE ping|info|time-sync|fsfreeze|fsthaw\n"
	     "       vm-guest [options] BUNDLE shutdown [--reboot]\n",
    .about = "Work inside a running VM through the QEMU guest agent (qemu-guest-agent in the\n"
	     "guest): exec exits with the command's exit status; cp's - is stdin or stdout.\n",
    .options = options,
    .flags = CLI_IN_ORDER,
};

static struct {
	struct strv env;
	const char *input;
	bool no_stdin, json, reboot;
	int timeout_ms, wait_ms;
} opt = {.timeout_ms = -1, .wait_ms = 0};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int on_output(void *ctx, int stream, const char *data, size_t len)
{
	(void)ctx;
	return write_full(stream == AGENT_STDERR ? 2 : 1, data, len);
}

/* All of fd, for the agent's input-data (it takes stdin in one message). */
static char *slurp(int fd, size_t *len)
{
	struct buf b = {0};
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR && !interrupted)
			continue;
		if (n < 0) {
			buf_free(&b);
			return NULL;
		}
		if (n == 0)
			break;
		buf_add(&b, chunk, (size_t)n);
	}
	*len = b.len;
	return b.s ? b.s : xstrdup("");
}

static bool stdin_is_data(void)
{
	struct stat st;
	return fstat(0, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode));
}

static int cmd_exec(struct agent *a, const char *name, int argc, char **argv)
{
	if (argc < 1)
		tool_usage_error(&cli);
	char *input = NULL, *err = NULL;
	size_t input_len = 0;
	const char *from = opt.input ? opt.input : !opt.no_stdin && stdin_is_data() ? "-" : NULL;
	if (from) {
		int fd = strcmp(from, "-") ? open(from, O_RDONLY | O_CLOEXEC) : 0;
		if (fd < 0)
			vm_err(EXIT_FAIL, "%s", from);
		input = slurp(fd, &input_len);
		if (!input)
			vm_err(EXIT_FAIL, "%s", strcmp(from, "-") ? from : "stdin");
		if (fd > 0)
			close(fd);
	}
	struct agent_exec e = {
	    .argv = (const char *const *)argv,
	    .env = opt.env.n ? (const char *const *)opt.env.v : NULL,
	    .input = input,
	    .input_len = input_len,
	    .timeout_ms = opt.timeout_ms,
	    .output = on_output,
	};
	int status = 0;
	int r = agent_exec(a, &e, &status, &err);
	free(input);
	if (r == AGENT_EXEC_NOT_RUN) {
		vm_warnx("%s: %s", name, err);
		free(err);
		return 127;
	}
	if (r == AGENT_EXEC_TIMEOUT) {
		vm_warnx("%s: %s", name, err);
		free(err);
		return 124;
	}
	if (r < 0) {
		vm_warnx("%s: %s", name, err);
		free(err);
		return interrupted ? 130 : EXIT_FAIL;
	}
	return status;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int cmd_cp(struct agent *a, const char *name, int argc, char **argv)
{
	if (argc != 2 || (argv[0][0] == ':') == (argv[1][0] == ':'))
		tool_usage_error(&cli);
	char *err = NULL;
	uint64_t bytes = 0;
	double t0 = now_ms();
	int r;
	if (argv[1][0] == ':') {
		/* host to guest */
		const char *src = argv[0];
		char *dst = xstrdup(argv[1] + 1);
		int fd = 0, mode = -1;
		if (strcmp(src, "-")) {
			fd = open(src, O_RDONLY | O_CLOEXEC);
			struct stat st;
			if (fd < 0 || fstat(fd, &st) < 0)
				vm_err(EXIT_FAIL, "%s", src);
			if (S_ISDIR(st.st_mode))
				vm_errx(EXIT_FAIL, "%s: is a directory", src);
			if (S_ISREG(st.st_mode))
				mode = (int)(st.st_mode & 07777);
		}
		if (!*dst || dst[strlen(dst) - 1] == '/') {
			if (!strcmp(src, "-"))
				vm_errx(EXIT_USAGE, "cp - :DIR/: name the guest file");
			char *d = xasprintf("%s%s", *dst ? dst : "./", base_name(src));
			free(dst);
			dst = d;
		}
		r = agent_file_put(a, fd, dst, mode, &bytes, &err);
		if (fd > 0)
			close(fd);
		if (r == 0)
			vm_info("%s: copied %s to :%s (%llu bytes, %.1f MB/s)", name, src, dst,
				(unsigned long long)bytes, bytes / 1e3 / (now_ms() - t0 + 1e-3));
		free(dst);
	} else {
		/* guest to host: a temporary file beside the target, renamed at the end */
		const char *src = argv[0] + 1;
		char *dst = xstrdup(argv[1]);
		struct stat st;
		if (strcmp(dst, "-") && stat(dst, &st) == 0 && S_ISDIR(st.st_mode)) {
			char *d = path_join(dst, base_name(src));
			free(dst);
			dst = d;
		}
		int fd = 1, mode = -1;
		char *tmp = NULL;
		if (strcmp(dst, "-")) {
			char *dcopy = xstrdup(dst);
			tmp = xasprintf("%s/.%s.tmp.XXXXXX", dirname(dcopy), base_name(dst));
			free(dcopy);
			fd = mkostemp(tmp, O_CLOEXEC);
			if (fd < 0)
				vm_err(EXIT_FAIL, "%s", dst);
		}
		r = agent_file_get(a, src, fd, tmp ? &mode : NULL, &bytes, &err);
		if (tmp) {
			mode_t um = umask(0);
			umask(um);
			if (r == 0 && fchmod(fd, mode >= 0 ? (mode_t)mode : 0666 & ~um) < 0)
				r = -1, err = xasprintf("%s: %s", dst, strerror(errno));
			if (r == 0 && (fsync(fd) < 0 || rename(tmp, dst) < 0))
				r = -1, err = xasprintf("%s: %s", dst, strerror(errno));
			close(fd);
			if (r < 0)
				unlink(tmp);
			free(tmp);
		}
		if (r == 0)
			vm_info("%s: copied :%s to %s (%llu bytes, %.1f MB/s)", name, src, dst,
				(unsigned long long)bytes, bytes / 1e3 / (now_ms() - t0 + 1e-3));
		free(dst);
	}
	if (r < 0) {
		vm_warnx("%s: %s", name, err);
		free(err);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int cmd_ip(struct agent *a, const char *name, int argc, char **argv)
{
	(void)argv;
	if (argc)
		tool_usage_error(&cli);
	struct json_object *ret = NULL;
	char *err = NULL;
	if (agent_interfaces(a, &ret, &err) < 0) {
		vm_warnx("%s: %s", name, err);
		free(err);
		return EXIT_FAIL;
	}
	if (opt.json) {
		print_json(stdout, ret, CLI_JSON_AUTO);
	} else {
		/* as ip -brief: NAME MAC ADDRESS/PREFIX... */
		for (size_t i = 0; i < json_object_array_length(ret); i++) {
			struct json_object *ifc = json_object_array_get_idx(ret, i), *addrs, *v;
			const char *mac = json_member_str(ifc, "hardware-address");
			printf("%-12s %s", json_member_str(ifc, "name") ? json_member_str(ifc, "name") : "?", mac ? mac : "-");
			if (json_object_object_get_ex(ifc, "ip-addresses", &addrs))
				for (size_t k = 0; k < json_object_array_length(addrs); k++) {
					struct json_object *ad = json_object_array_get_idx(addrs, k);
					const char *ip = json_member_str(ad, "ip-address");
					if (!ip)
						continue;
					printf(" %s", ip);
					if (json_object_object_get_ex(ad, "prefix", &v))
						printf("/%d", json_object_get_int(v));
				}
			putchar('\n');
		}
	}
	json_object_put(ret);
	return EXIT_OK;
}

static int cmd_info(struct agent *a, const char *name)
{
	struct json_object *ret = NULL, *cmds, *v;
	char *err = NULL;
	if (agent_info(a, &ret, &err) < 0) {
		vm_warnx("%s: %s", name, err);
		free(err);
		return EXIT_FAIL;
	}
	if (opt.json) {
		print_json(stdout, ret, CLI_JSON_AUTO);
	} else {
		printf("version %s\n", json_member_str(ret, "version") ? json_member_str(ret, "version") : "?");
		if (json_object_object_get_ex(ret, "supported_commands", &cmds))
			for (size_t i = 0; i < json_object_array_length(cmds); i++) {
				struct json_object *c = json_object_array_get_idx(cmds, i);
				bool on = !json_object_object_get_ex(c, "enabled", &v) || json_object_get_boolean(v);
				printf("%s%s\n", json_member_str(c, "name") ? json_member_str(c, "name") : "?", on ? "" : " (disabled)");
			}
	}
	json_object_put(ret);
	return EXIT_OK;
}

static int simple(struct agent *a, const char *name, const char *cmd)
{
	char *err = NULL;
	int r, n = 0;
	if (!strcmp(cmd, "ping"))
		r = agent_ping(a, &err);
	else if (!strcmp(cmd, "time-sync"))
		r = agent_set_time(a, &err);
	else if (!strcmp(cmd, "fsfreeze"))
		r = agent_fsfreeze(a, &n, &err);
	else if (!strcmp(cmd, "fsthaw"))
		r = agent_fsthaw(a, &n, &err);
	else
		r = agent_shutdown(a, opt.reboot ? "reboot" : "powerdown", &err);
	if (r < 0) {
		vm_warnx("%s: %s", name, err);
		free(err);
		return EXIT_FAIL;
	}
	if (!strcmp(cmd, "fsfreeze") && !vm_quiet)
		printf("froze %d filesystem%s\n", n, n == 1 ? "" : "s");
	if (!strcmp(cmd, "fsthaw") && !vm_quiet)
		printf("thawed %d filesystem%s\n", n, n == 1 ? "" : "s");
	return EXIT_OK;
}

static const char *const commands[] = {"exec", "cp", "ip", "ping", "info", "time-sync",
				       "fsfreeze", "fsthaw", "shutdown", NULL};

int main(int argc, char **argv)
{
	int ch;
	const char *cmd = NULL, *bundle_arg = NULL;
	/* options come before BUNDLE, or after COMMAND (before exec's -- or ARGV) */
	for (int round = 0; round < 2; round++) {
		while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
			switch (ch) {
			case OPT_ENV:
				if (!strchr(optarg, '=') || optarg[0] == '=')
					vm_errx(EXIT_USAGE, "--env %s: not K=V", optarg);
				strv_push(&opt.env, optarg);
				break;
			case 'i': opt.input = optarg; break;
			case 'n': opt.no_stdin = true; break;
			case 't': opt.timeout_ms = tool_seconds("--timeout", optarg); break;
			case OPT_WAIT: opt.wait_ms = tool_seconds("--wait", optarg); break;
			case 'j': opt.json = true; break;
			case OPT_REBOOT: opt.reboot = true; break;
			}
		}
		if (round == 0) {
			/* BUNDLE COMMAND: the options after them, up to -- or ARGV */
			if (argc - optind < 2)
				tool_usage_error(&cli);
			bundle_arg = argv[optind];
			cmd = argv[optind + 1];
			/* getopt goes on from COMMAND as if it were argv[0] */
			argv += optind + 1;
			argc -= optind + 1;
			optind = 0;
		}
	}
	argc -= optind;
	argv += optind;
	if (!str_in(cmd, commands))
		vm_errx(EXIT_USAGE, "%s: unknown command (exec, cp, ip, ping, info, time-sync, fsfreeze, "
				    "fsthaw, shutdown)", cmd);
	if (strcmp(cmd, "exec") && strcmp(cmd, "cp") && strcmp(cmd, "ip") && argc)
		tool_usage_error(&cli);

	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct bundle b;
	bundle_open_or_die(&b, bundle_arg);
	char *name = bundle_display_name(b.path);
	char *dir = tool_runtime_dir(&b);
	if (!runtime_locked(dir))
		vm_errx(EXIT_FAIL, "%s: not running", name);
	char *err = NULL;
	struct agent *a = NULL;
	double until = opt.wait_ms > 0 ? now_ms() + opt.wait_ms : 0;
	for (;;) {
		a = agent_connect(dir, name, -1, AGENT_SYNC_MS, &err);
		if (a || !until || now_ms() >= until || interrupted || !runtime_locked(dir))
			break;
		free(err);
		err = NULL;
		usleep(200000);
	}
	if (!a)
		vm_errx(EXIT_FAIL, "%s", err);
	agent_set_interrupt(a, &interrupted);
	vm_info("%s: the guest agent answers", name);
	int status;
	if (!strcmp(cmd, "exec"))
		status = cmd_exec(a, name, argc, argv);
	else if (!strcmp(cmd, "cp"))
		status = cmd_cp(a, name, argc, argv);
	else if (!strcmp(cmd, "ip"))
		status = cmd_ip(a, name, argc, argv);
	else if (!strcmp(cmd, "info"))
		status = cmd_info(a, name);
	else
		status = simple(a, name, cmd);
	agent_close(a);
	strv_free(&opt.env);
	free(dir);
	free(name);
	bundle_close(&b);
	return status;
}
