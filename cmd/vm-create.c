/* vm-create: make a new bundle from flags, or import one from an archive. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "bundle.h"
#include "clone.h"
#include "cloudinit.h"
#include "firmware.h"
#include "media.h"
#include "proc.h"
#include "tool.h"

enum { OPT_FROM = CLI_LONG_ONLY, OPT_KEEP_ID, OPT_CLOUD_INIT, OPT_META_DATA, OPT_SSH_KEY, OPT_NETWORK_CONFIG,
       OPT_CLONE, OPT_LINKED, OPT_WITH_STATE };

static const struct cli_option options[] = {
    CLI_VALUE('n', "name", "NAME", "display name (default: from PATH)"),
    CLI_VALUE('a', "arch", "ARCH", "x86_64 (default), aarch64, riscv64, ppc, m68k, ..."),
    CLI_VALUE('M', "machine", "TYPE", "QEMU machine type (default: per architecture)"),
    CLI_VALUE('m', "memory", "SIZE", "memory, e.g. 512M or 2G (default 512M)"),
    CLI_VALUE('c', "cpus", "N", "virtual CPUs (default 1)"),
    CLI_VALUE('d', "disk", "SIZE", "a new qcow2 disk in Data/ (repeatable)"),
    CLI_VALUE('C', "cdrom", "FILE", "a CD-ROM drive with FILE (repeatable; - for an empty drive)"),
    CLI_VALUE('k', "kernel", "FILE", "kernel for direct boot (copied into Data/)"),
    CLI_VALUE('i', "initrd", "FILE", "initial ramdisk (copied into Data/)"),
    CLI_VALUE('A', "append", "CMDLINE", "kernel command line"),
    CLI_VALUE('f', "firmware", "TYPE", "bios, uefi or none"),
    CLI_VALUE('N', "net", "MODE", "user, none, tap:IF, bridge:BR, socket:HOST:PORT,\n"
				  "listen:HOST:PORT, mcast:ADDR:PORT (repeatable; default user)"),
    CLI_VALUE('F', "forward", "RULE", "port forward on the last user network, e.g. tcp:2222-:22"),
    CLI_VALUE('D', "display", "TYPE", "none (default), vnc or spice (a unix socket)"),
    CLI_VALUE('e', "extra", "ARG", "extra QEMU argument (repeatable)"),
    CLI_VALUE('s', "set", "KEY=VALUE", "any configuration key (see vm-config(1); repeatable)"),
    CLI_VALUE(OPT_CLOUD_INIT, "cloud-init", "USER_DATA",
	      "a cloud-init NoCloud seed, Data/seed.iso (label cidata), in\n"
	      "a read-only drive named seed: a virtio disk, or a CD-ROM on\n"
	      "machines without virtio or with --set drive.seed.media=cdrom;\n"
	      "USER_DATA as given (#cloud-config, #! ...), meta-data with\n"
	      "the UUID and name"),
    CLI_VALUE(OPT_META_DATA, "meta-data", "FILE", "with --cloud-init: this meta-data instead"),
    CLI_VALUE(OPT_SSH_KEY, "ssh-key", "FILE", "with --cloud-init: authorize the SSH public key(s) in FILE\n"
					      "for the image's default user (repeatable)"),
    CLI_VALUE(OPT_NETWORK_CONFIG, "network-config", "FILE", "with --cloud-init: network configuration for the seed"),
    CLI_VALUE(OPT_FROM, "from", "ARCHIVE", "import a bundle from a .utm.zip, .zip or .tar[.gz|.zst|...]\n"
					   "(- for stdin); no other configuration options"),
    CLI_FLAG(OPT_KEEP_ID, "keep-identity", "with --from: keep the UUID and MAC addresses"),
    CLI_VALUE(OPT_CLONE, "clone", "SRC", "a copy of the bundle SRC with a new UUID, MAC addresses\n"
					"and name (--name, else from PATH); disks copied sparse\n"
					"(a reflink where the filesystem can)"),
    CLI_FLAG(OPT_LINKED, "linked", "with --clone: each disk a qcow2 overlay on SRC's image\n"
				   "(which becomes a read-only file)"),
    CLI_FLAG(OPT_WITH_STATE, "with-state", "with --clone: copy SRC's saved state (Data/vmstate) too"),
    CLI_FLAG('q', "quiet", "do not print the new bundle's path"),
    CLI_FLAG('v', "verbose", "with --from: name each entry on stderr"),
    CLI_END,
};

static const struct cli_spec cli = {
    .usage = "usage: vm-create [options] PATH[.utm]\n"
	     "       vm-create --from ARCHIVE [--keep-identity] PATH[.utm]\n"
	     "       vm-create --clone SRC [--linked] [--with-state] [--name NAME] PATH[.utm]\n",
    .about = "Make a new VM bundle and print its path.\n",
    .options = options,
};

struct plan {
	struct strv disks;  /* sizes, in bytes, as decimal strings */
	struct strv copies; /* pairs: source path, name in Data/ */
	char *efi_template;
	struct cloudinit_seed *seed; /* --cloud-init: written to Data/seed.iso */
};

#define SEED_ID "seed"
#define SEED_IMAGE "seed.iso"

/* Runs inside the temporary bundle: images, copies, UEFI variables. */
static int make_data(const char *tmp, void *arg)
{
	struct plan *p = arg;
	for (size_t i = 0; i < p->disks.n; i += 2) {
		char *img = xasprintf("%s/Data/%s", tmp, p->disks.v[i]);
		char *const av[] = {"qemu-img", "create", "-q", "-f", "qcow2", img, p->disks.v[i + 1], NULL};
		struct buf err = {0};
		int st = proc_run(av, NULL, &err);
		free(img);
		if (st != 0) {
			char *line = proc_error_line("qemu-img", st, &err);
			vm_warnx("%s", line);
			free(line);
			buf_free(&err);
			return -1;
		}
		buf_free(&err);
	}
	for (size_t i = 0; i + 1 < p->copies.n; i += 2) {
		size_t len;
		char *data = read_file(p->copies.v[i], &len);
		if (!data) {
			vm_warn("%s", p->copies.v[i]);
			return -1;
		}
		char *dst = xasprintf("%s/Data/%s", tmp, p->copies.v[i + 1]);
		int r = write_file_atomic(dst, data, len, 0644);
		if (r < 0)
			vm_warn("%s", dst);
		free(dst);
		free(data);
		if (r < 0)
			return -1;
	}
	if (p->seed) {
		char *iso = xasprintf("%s/Data/%s", tmp, SEED_IMAGE), *err = NULL;
		int r = cloudinit_write(p->seed, iso, &err);
		free(iso);
		if (r < 0) {
			vm_warnx("%s", err);
			free(err);
			return -1;
		}
	}
	return 0;
}

static char *basename_of(const char *path)
{
	const char *s = strrchr(path, '/');
	return xstrdup(s ? s + 1 : path);
}

static void set_or_die(struct vm_config *c, const char *key, const char *value)
{
	char *err = NULL;
	if (config_set(c, key, value, &err) < 0)
		vm_errx(EXIT_USAGE, "%s", err);
}

/* Copy FILE into Data/ and name it in the config. */
static void copy_in(struct plan *p, struct vm_config *c, const char *key, const char *file)
{
	if (access(file, R_OK) < 0)
		vm_err(EXIT_FAIL, "%s", file);
	char *base = basename_of(file);
	for (size_t i = 1; i < p->copies.n; i += 2)
		if (!strcmp(p->copies.v[i], base))
			vm_errx(EXIT_USAGE, "%s: two files named %s", file, base);
	strv_push(&p->copies, file);
	strv_push(&p->copies, base);
	set_or_die(c, key, base);
	free(base);
}

/* "tcp:2222-:22" is "tcp::2222-:22" without the empty host address. */
static char *normalize_forward(const char *rule)
{
	const char *colon = strchr(rule, ':');
	const char *dash = strchr(rule, '-');
	if (colon && dash && !memchr(colon + 1, ':', (size_t)(dash - colon - 1)))
		return xasprintf("%.*s:%s", (int)(colon - rule + 1), rule, colon + 1);
	return xstrdup(rule);
}

static void add_net(struct vm_config *c, const char *spec)
{
	char *id = config_new_id(c, SEC_NET, "net");
	struct vm_net *n = config_add_net(c, id);
	const char *arg = strchr(spec, ':');
	size_t mlen = arg ? (size_t)(arg - spec) : strlen(spec);
	char *mode = strndup(spec, mlen);
	arg = arg ? arg + 1 : NULL;
	char *key = xasprintf("net.%s.mode", id);
	if (!strcmp(mode, "listen")) {
		set_or_die(c, key, "socket");
		n->listen = true;
	} else {
		set_or_die(c, key, mode);
	}
	free(key);
	if (arg) {
		if (!strcmp(mode, "tap"))
			n->ifname = xstrdup(arg);
		else if (!strcmp(mode, "bridge"))
			n->bridge = xstrdup(arg);
		else if (!strcmp(mode, "socket") || !strcmp(mode, "listen") || !strcmp(mode, "mcast"))
			n->address = xstrdup(arg);
		else
			vm_errx(EXIT_USAGE, "--net %s: mode %s takes no argument", spec, mode);
	}
	free(mode);
	free(id);
}

/* --from: the bundle comes whole from the archive (lib/archive.c). */
static int import_main(const char *from, char *path, int flags, int nconfig)
{
	if (!from)
		vm_errx(EXIT_USAGE, "--keep-identity: only with --from");
	if (nconfig)
		vm_errx(EXIT_USAGE, "--from: no other configuration options (change them with vm-config)");
	if (!vm_quiet && isatty(STDERR_FILENO))
		flags |= IMPORT_PROGRESS;
	if (vm_verbose)
		flags |= IMPORT_VERBOSE;
	char *err = NULL;
	if (bundle_import(from, path, flags, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		free(path);
		return EXIT_FAIL;
	}
	if (!vm_quiet)
		puts(path);
	free(path);
	return 0;
}

int main(int argc, char **argv)
{
	const char *from = NULL, *clone = NULL;
	int clone_flags = 0;
	int import_flags = 0, nconfig = 0;
	struct vm_config c;
	struct plan plan = {0};
	struct strv disks = {0}, cdroms = {0}, forwards = {0}, ssh_keys = {0};
	struct cloudinit_opts ci = {.ssh_keys = &ssh_keys};
	struct cloudinit_seed seed = {0};
	bool nets_given = false;
	config_init(&c);
	int ch;
	while ((ch = tool_getopt(&cli, argc, argv)) != -1) {
		if (ch != OPT_FROM && ch != OPT_KEEP_ID && ch != OPT_CLONE && ch != OPT_LINKED &&
		    ch != OPT_WITH_STATE)
			nconfig++;
		switch (ch) {
		case OPT_FROM: from = optarg; break;
		case OPT_CLONE: clone = optarg; break;
		case OPT_LINKED: clone_flags |= CLONE_LINKED; break;
		case OPT_WITH_STATE: clone_flags |= CLONE_WITH_STATE; break;
		case OPT_KEEP_ID: import_flags |= IMPORT_KEEP_IDENTITY; break;
		case OPT_CLOUD_INIT: ci.user_data = optarg; break;
		case OPT_META_DATA: ci.meta_data = optarg; break;
		case OPT_SSH_KEY: strv_push(&ssh_keys, optarg); break;
		case OPT_NETWORK_CONFIG: ci.network_config = optarg; break;
		case 'n': set_or_die(&c, "name", optarg); break;
		case 'a': set_or_die(&c, "arch", optarg); break;
		case 'M': set_or_die(&c, "machine", optarg); break;
		case 'm': set_or_die(&c, "memory", optarg); break;
		case 'c': set_or_die(&c, "cpus", optarg); break;
		case 'd': strv_push(&disks, optarg); break;
		case 'C': strv_push(&cdroms, optarg); break;
		case 'k': copy_in(&plan, &c, "kernel", optarg); break;
		case 'i': copy_in(&plan, &c, "initrd", optarg); break;
		case 'A': set_or_die(&c, "append", optarg); break;
		case 'f': set_or_die(&c, "firmware", optarg); break;
		case 'N':
			nets_given = true;
			add_net(&c, optarg);
			break;
		case 'F': strv_push(&forwards, optarg); break;
		case 'D': set_or_die(&c, "display", optarg); break;
		case 'e': config_add(&c, "extra_args", optarg, NULL); break;
		case 's': {
			char *eq = strchr(optarg, '=');
			if (!eq)
				vm_errx(EXIT_USAGE, "--set %s: expected KEY=VALUE", optarg);
			*eq = '\0';
			set_or_die(&c, optarg, eq + 1);
			break;
		}
		}
	}
	if (argc - optind != 1)
		tool_usage_error(&cli);

	const char *arg = argv[optind];
	size_t alen = strlen(arg);
	while (alen > 1 && arg[alen - 1] == '/')
		alen--;
	char *path = alen > 4 && !strncmp(arg + alen - 4, ".utm", 4) ? strndup(arg, alen)
								     : xasprintf("%.*s.utm", (int)alen, arg);
	/* A bundle is built as ".NAME.utm.tmp.XXXXXX" beside it: 12 bytes more
	 * than NAME.utm must fit in a file name (NAME_MAX, 255). */
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strlen(base) <= 4)
		vm_errx(EXIT_USAGE, "'%s': no bundle name (give a NAME, or DIR/NAME)", arg);
	if (strlen(base) + 12 > 255)
		vm_errx(EXIT_USAGE, "%s: the name is too long (at most %d bytes before .utm)", base, 255 - 12 - 4);
	if (from || import_flags)
		return import_main(from, path, import_flags, nconfig);
	if (clone_flags && !clone)
		vm_errx(EXIT_USAGE, "--linked and --with-state: only with --clone");
	if (clone && nconfig > (c.name ? 1 : 0))
		vm_errx(EXIT_USAGE, "--clone: no configuration options but --name (vm-config changes the clone)");
	if (clone) {
		char *err = NULL;
		if (bundle_clone(clone, path, c.name, clone_flags, &err) < 0)
			vm_errx(EXIT_FAIL, "%s", err);
		if (!vm_quiet)
			puts(path);
		free(path);
		config_free(&c);
		return EXIT_OK;
	}
	if (!ci.user_data && (ci.meta_data || ci.network_config || ssh_keys.n))
		vm_errx(EXIT_USAGE, "%s: only with --cloud-init",
			ci.meta_data ? "--meta-data" : ci.network_config ? "--network-config" : "--ssh-key");
	if (!c.name) {
		char *dn = bundle_display_name(path);
		c.name = dn;
	}
	if (!nets_given && !c.nnets) /* --set net.X... already made one */
		add_net(&c, "user");
	for (size_t i = 0; i < forwards.n; i++) {
		struct vm_net *last = NULL;
		for (size_t j = 0; j < c.nnets; j++)
			if (!strcmp(c.nets[j].mode, "user"))
				last = &c.nets[j];
		if (!last)
			vm_errx(EXIT_USAGE, "--forward %s: needs a user-mode network", forwards.v[i]);
		char *rule = normalize_forward(forwards.v[i]);
		strv_push(&last->forward, rule);
		free(rule);
	}
	for (size_t i = 0; i < disks.n; i++) {
		uint64_t bytes;
		if (parse_size(disks.v[i], 1ULL << 30, &bytes) < 0 || bytes < 1 << 20)
			vm_errx(EXIT_USAGE, "--disk %s: not a size (e.g. 10G, 512M)", disks.v[i]);
		char *id = config_new_id(&c, SEC_DRIVE, "hd");
		char *img = xasprintf("%s.qcow2", id);
		config_add_drive(&c, id)->image = xstrdup(img);
		strv_push(&plan.disks, img);
		strv_pushf(&plan.disks, "%llu", (unsigned long long)bytes);
		free(img);
		free(id);
	}
	for (size_t i = 0; i < cdroms.n; i++) {
		char *id = config_new_id(&c, SEC_DRIVE, "cd");
		struct vm_drive *d = config_add_drive(&c, id);
		d->media = xstrdup("cdrom");
		d->removable = d->readonly = true;
		if (strcmp(cdroms.v[i], "-")) {
			char *real = realpath(cdroms.v[i], NULL);
			if (!real)
				vm_err(EXIT_FAIL, "%s", cdroms.v[i]);
			config_allow_path(&c, real); /* named by the user: allowed */
			d->image = real;
		}
		free(id);
	}
	if (ci.user_data) {
		/* NoCloud finds the seed by its label on any drive the guest sees:
		 * the drive media_seed_is_disk describes, unless --set
		 * drive.seed.media=cdrom or drive.seed.interface asks otherwise. */
		struct vm_drive *d = config_drive(&c, SEED_ID);
		if (d && d->image)
			vm_errx(EXIT_USAGE, "--cloud-init: a drive named %s exists already", SEED_ID);
		if (!d)
			d = config_add_drive(&c, SEED_ID);
		if (!d->media) {
			struct vm_config e;
			config_copy(&e, &c);
			config_apply_defaults(&e);
			d->media = xstrdup(media_seed_is_disk(&e, d->interface) ? "disk" : "cdrom");
			config_free(&e);
		}
		d->format = xstrdup("raw");
		d->image = xstrdup(SEED_IMAGE);
		d->readonly = true;
		d->removable = !strcmp(d->media, "cdrom");
		if (!d->bootindex)
			d->bootindex = MEDIA_SEED_BOOTINDEX;
	}
	config_new_identity(&c);
	if (ci.user_data) {
		/* every input is read and checked before anything is made */
		char *err = NULL;
		ci.instance_id = c.uuid;
		ci.hostname = c.name;
		if (cloudinit_load(&ci, &seed, &err) < 0)
			vm_errx(EXIT_FAIL, "%s", err);
		plan.seed = &seed;
	}
	struct vm_config eff;
	config_copy(&eff, &c);
	config_apply_defaults(&eff);
	if (!strcmp(eff.firmware, "uefi")) {
		/* a per-bundle copy of the variable store, like UTM's efi_vars.fd */
		char *tmpl = firmware_uefi_vars(eff.arch);
		if (!tmpl)
			vm_errx(EXIT_FAIL, "firmware: no UEFI variable store for %s (install ovmf or qemu-efi-aarch64)",
				eff.arch);
		strv_push(&plan.copies, tmpl);
		free(tmpl);
		strv_push(&plan.copies, "efi_vars.fd");
		set_or_die(&c, "efi_vars", "efi_vars.fd");
	}
	char *problem = config_first_problem(&eff);
	if (problem)
		vm_errx(EXIT_USAGE, "%s", problem);
	char *err = NULL;
	int status = EXIT_OK;
	if (bundle_create(path, &c, make_data, &plan, &err) < 0) {
		vm_warnx("%s", err);
		free(err);
		status = EXIT_FAIL;
	} else if (!vm_quiet) {
		puts(path);
	}
	free(path);
	config_free(&c);
	config_free(&eff);
	strv_free(&plan.disks);
	strv_free(&plan.copies);
	strv_free(&disks);
	strv_free(&cdroms);
	strv_free(&forwards);
	strv_free(&ssh_keys);
	cloudinit_seed_free(&seed);
	return status;
}
