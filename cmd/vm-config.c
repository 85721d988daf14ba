/* vm-config: read and change a bundle's configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle.h"
#include "tool.h"

static const struct cli_option options[] = {
    CLI_FLAG('j', "json", "show: every field as JSON"),
    CLI_FLAG('r', "raw", "show: only what the file sets, without defaults"),
    CLI_FLAG('q', "quiet", "validate, upgrade: print nothing on success"),
    CLI_END,
};

/* IN_ORDER: stop at the bundle, so values like "-3" reach the verb; show's
 * own options may follow it */
static const struct cli_spec cli = {
    .usage = "usage: vm-config [-q] BUNDLE get KEY\n"
	     "       vm-config [-q] BUNDLE set KEY VALUE [KEY VALUE ...]\n"
	     "       vm-config [-q] BUNDLE add KEY VALUE\n"
	     "       vm-config [-q] BUNDLE unset KEY ...\n"
	     "       vm-config [-q] BUNDLE show [--json] [--raw]\n"
	     "       vm-config [-q] BUNDLE validate\n"
	     "       vm-config [-q] BUNDLE edit\n"
	     "       vm-config [-q] BUNDLE upgrade   (a UTM 3 bundle to UTM 4's format)\n"
	     "       vm-config keys\n",
    .about = "Keys are paths: memory, cpus, drive.cd0.interface, net.net0.forward ...\n"
	     "(vm-config keys lists them all).\n",
    .options = options,
    .flags = CLI_IN_ORDER,
};

static const char *const type_names[] = {"string", "enum", "integer", "size (MiB)", "boolean", "list"};

static int cmd_keys(void)
{
	for (int k = 0; k < SEC_COUNT; k++) {
		for (const struct field *f = config_sections[k].fields; f->key; f++) {
			char *key = k == SEC_TOP ? xstrdup(f->key) : xasprintf("%s.ID.%s", config_sections[k].name, f->key);
			printf("%-22s %-10s %s", key, type_names[f->type], f->doc);
			if (f->values) {
				fputs(" (", stdout);
				for (const char *const *v = f->values; *v; v++)
					printf("%s%s", v == f->values ? "" : " ", *v);
				fputs(")", stdout);
			}
			putchar('\n');
			free(key);
		}
	}
	return 0;
}

/* Check the config the change would leave; print its problems. paths:
 * also the files vm-run would refuse as they stand (validate); a change
 * may name a host file that a run allows with --allow-path. */
static bool valid_or_report(const struct bundle *b, const struct vm_config *c, bool paths_too)
{
	struct vm_config eff;
	config_copy(&eff, c);
	config_apply_defaults(&eff);
	struct buf errs = {0};
	int n = config_validate(&eff, &errs);
	struct buf paths = {0}; /* files vm-run would refuse (outside the bundle ...) */
	int np = paths_too ? bundle_check_paths(b, &eff, &paths) : 0;
	config_free(&eff);
	if (n) {
		for (char *line = strtok(errs.s, "\n"); line; line = strtok(NULL, "\n"))
			vm_warnx("%s: %s", b->conf_path, line);
	}
	if (np)
		for (char *line = strtok(paths.s, "\n"); line; line = strtok(NULL, "\n"))
			vm_warnx("%s", line);
	buf_free(&paths);
	n += np;
	buf_free(&errs);
	return n == 0;
}

static int save(struct bundle *b)
{
	char *err = NULL;
	if (bundle_save(b, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		return EXIT_FAIL;
	}
	return 0;
}

static int cmd_edit(struct bundle *b)
{
	const char *ed = getenv("VISUAL");
	if (!ed || !*ed)
		ed = getenv("EDITOR");
	if (!ed || !*ed)
		ed = "vi";
	char *tmp = xasprintf("%s.edit.XXXXXX", b->conf_path);
	char *text = config_format_vmconf(&b->cfg);
	int fd = mkstemp(tmp);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) < 0)
		vm_err(EXIT_FAIL, "%s", tmp);
	free(text);
	int status = EXIT_FAIL;
	for (;;) {
		char *cmd = xasprintf("%s \"$1\"", ed);
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/sh", "sh", "-c", cmd, "sh", tmp, (char *)NULL);
			_exit(127);
		}
		int st;
		free(cmd);
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			vm_warnx("%s: editor failed; nothing changed", b->conf_path);
			break;
		}
		size_t len;
		char *edited = read_file(tmp, &len), *err = NULL;
		struct vm_config c;
		if (edited && config_parse_vmconf(&c, b->conf_path, edited, &err) == 0) {
			bool ok = valid_or_report(b, &c, false);
			if (ok) {
				config_free(&b->cfg);
				b->cfg = c;
				status = save(b);
				free(edited);
				break;
			}
			config_free(&c);
		} else if (err) {
			vm_warnx("%s", err);
			free(err);
		}
		free(edited);
		if (!isatty(0)) {
			vm_warnx("%s: nothing changed", b->conf_path);
			break;
		}
		fprintf(stderr, "vm-config: edit again? [Y/n] ");
		char ans[16] = "";
		if (!fgets(ans, sizeof ans, stdin) || ans[0] == 'n' || ans[0] == 'N') {
			vm_warnx("%s: nothing changed", b->conf_path);
			break;
		}
	}
	unlink(tmp);
	free(tmp);
	return status;
}

int main(int argc, char **argv)
{
	bool json = false, raw = false;
	int ch;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		switch (ch) {
		case 'j': json = true; break;
		case 'r': raw = true; break;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc >= 2 && !strcmp(argv[1], "show")) {
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
				json = true;
			else if (!strcmp(argv[i], "--raw") || !strcmp(argv[i], "-r"))
				raw = true;
			else
				tool_usage_error(&cli);
		}
		argc = 2;
	}
	if (argc == 1 && !strcmp(argv[0], "keys"))
		return cmd_keys();
	if (argc < 2)
		tool_usage_error(&cli);
	const char *verb = argv[1];
	static const char *const writers[] = {"set", "add", "unset", "edit", "upgrade", NULL};
	static const char *const verbs[] = {"get", "set", "add", "unset", "show", "validate", "edit", "upgrade", NULL};
	if (!str_in(verb, verbs))
		vm_errx(EXIT_USAGE, "%s: unknown command (get, set, add, unset, show, validate, edit, upgrade)", verb);
	if ((!strcmp(verb, "get") && argc != 3) || (!strcmp(verb, "set") && (argc < 4 || argc % 2)) ||
	    (!strcmp(verb, "add") && argc != 4) || (!strcmp(verb, "unset") && argc < 3) ||
	    (str_in(verb, (const char *const[]){"show", "validate", "edit", "upgrade", NULL}) && argc != 2))
		tool_usage_error(&cli);

	struct bundle b;
	bundle_open_flags_or_die(&b, argv[0], str_in(verb, writers) ? BUNDLE_LOCK : 0);
	int status = 0;
	char *err = NULL;

	if (!strcmp(verb, "get")) {
		struct vm_config eff;
		bundle_effective_config(&b, &eff);
		struct buf out = {0};
		int r = config_get(&eff, argv[2], &out, &err);
		if (r < 0) {
			vm_warnx("%s: %s", b.conf_path, err);
			status = EXIT_FAIL;
		} else if (r > 0) {
			status = EXIT_FAIL; /* not set: print nothing, like git config */
		} else {
			puts(out.s ? out.s : "");
		}
		free(err);
		buf_free(&out);
		config_free(&eff);
	} else if (!strcmp(verb, "set") || !strcmp(verb, "add") || !strcmp(verb, "unset")) {
		/* all or nothing: apply to a copy, check, then save */
		struct vm_config c;
		config_copy(&c, &b.cfg);
		int step = !strcmp(verb, "unset") ? 1 : 2;
		for (int i = 2; i < argc && !status; i += step) {
			int r = !strcmp(verb, "set")   ? config_set(&c, argv[i], argv[i + 1], &err)
				: !strcmp(verb, "add") ? config_add(&c, argv[i], argv[i + 1], &err)
						       : config_unset(&c, argv[i], &err);
			if (r < 0) {
				vm_warnx("%s: %s", b.conf_path, err);
				free(err);
				status = EXIT_FAIL;
			}
		}
		if (!status && !valid_or_report(&b, &c, false))
			status = EXIT_FAIL;
		if (!status) {
			config_free(&b.cfg);
			b.cfg = c;
			status = save(&b);
		} else {
			config_free(&c);
		}
	} else if (!strcmp(verb, "show")) {
		struct vm_config eff;
		if (raw)
			config_copy(&eff, &b.cfg);
		else
			bundle_effective_config(&b, &eff);
		if (json) {
			struct json_object *j = config_json(&eff);
			print_json(stdout, j, CLI_JSON_AUTO);
			json_object_put(j);
		} else {
			char *text = config_format_vmconf(&eff);
			fputs(text, stdout);
			free(text);
		}
		config_free(&eff);
	} else if (!strcmp(verb, "validate")) {
		status = valid_or_report(&b, &b.cfg, true) ? 0 : EXIT_FAIL;
		if (!status && !vm_quiet)
			printf("%s: valid\n", b.conf_path);
	} else if (!strcmp(verb, "edit")) {
		status = cmd_edit(&b);
	} else if (!strcmp(verb, "upgrade")) {
		if (bundle_upgrade(&b, &err) < 0) {
			vm_warnx("%s", err);
			free(err);
			status = EXIT_FAIL;
		} else if (!vm_quiet) {
			printf("%s: upgraded to UTM 4 (ConfigurationVersion 4)\n", b.path);
		}
	}
	bundle_close(&b);
	return status;
}
