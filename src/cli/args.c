/* Argument parsing for the kvisor command line: it fills the VM description
 * (include/kvisor/config.h), which validates; no exits here: main decides. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/cli.h"
#include "kvisor/config.h"
#include "kvisor/log.h"

const char cli_usage[] =
	"usage: kvisor run --kernel PATH [options]\n"
	"       kvisor --help | --version\n"
	"\n"
	"options of run:\n"
	"  --kernel PATH         bzImage, or ELF vmlinux/firmware with a PVH note\n"
	"  --name NAME           the VM's name (letters, digits, '-', '_'): messages, default\n"
	"                        MACs\n"
	"  --initrd PATH         initramfs (gzip/xz/zstd/lz4 are unpacked by kvisor)\n"
	"  --cmdline STRING      kernel command line (default \"" CONFIG_DEFAULT_CMDLINE "\")\n"
	"  --mem SIZE            guest RAM, e.g. 256M or 1G (default 256M; bare number = MiB)\n"
	"  --cpus N              number of vCPUs (default 1)\n"
	"  --console-log FILE    also append guest console output to FILE\n"
	"  --on-reboot ACTION    exit (default) or restart when the guest reboots\n"
	"  --pvm-compat MODE     auto (default), on or off: kvm-pvm compatibility layer\n"
	"  --kernel-unpack MODE  on (default) or off: boot a bzImage's payload directly\n"
	"  --disk PATH[,readonly=on|off][,serial=ID][,cache=none|writeback][,id=NAME]\n"
	"                        raw disk image as virtio-blk (repeatable: vda, vdb, ...;\n"
	"                        ids disk0, disk1, ... unless id= names it)\n"
	"  --net [MODE][,KEY=VALUE...]\n"
	"                        a virtio-net NIC (repeatable: eth0, eth1, ...; ids net0, ...)\n"
	"                        MODE: passt (default: NAT in a passt process), user (NAT\n"
	"                        in kvisor with libslirp; neither needs privileges), stream,\n"
	"                        tap or internal; options: id=, mac=XX:XX:XX:XX:XX:XX,\n"
	"                        link=up|down; user and passt: hostfwd=tcp|udp:[HOSTADDR]:\n"
	"                        HOSTPORT-[GUESTADDR]:GUESTPORT (repeatable); user:\n"
	"                        restrict=on|off; passt: path=BINARY; stream: path=SOCKET;\n"
	"                        tap: ifname=DEV (none: a new one); internal: name=SEGMENT\n"
	"  --testdev             add the firmware test devices (port 0xf4, PCI function)\n"
	"  --profile FILE[,hz=N] sample each vCPU's RIP and CPL N times a second (default\n"
	"                        1000, at most 10000) and write the counts to FILE at exit\n"
	"  --log-level LEVEL     error, warn, info (default) or debug\n"
	"  -v, --verbose         same as --log-level debug\n"
	"\n"
	"console: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A\n"
	"signals: SIGUSR2 pauses the VM and resumes it; SIGTERM or SIGINT stop it\n";

static int cli_choice(const char *opt, const char *v, const char *const names[], int *out)
{
	for (int i = 0; names[i]; i++) {
		if (!strcmp(v, names[i])) {
			*out = i;
			return 0;
		}
	}
	log_err("%s: invalid value '%s'", opt, v);
	return -EINVAL;
}

enum { OPT_MACHINE = 256, OPT_TESTDEV, OPT_LOG_LEVEL, OPT_DISK, OPT_NET };

/* Machine options are named as in the VM description (config_set). */
static const struct option cli_options[] = {
	{ "name", required_argument, NULL, OPT_MACHINE },
	{ "kernel", required_argument, NULL, OPT_MACHINE },
	{ "initrd", required_argument, NULL, OPT_MACHINE },
	{ "cmdline", required_argument, NULL, OPT_MACHINE },
	{ "mem", required_argument, NULL, OPT_MACHINE },
	{ "cpus", required_argument, NULL, OPT_MACHINE },
	{ "console-log", required_argument, NULL, OPT_MACHINE },
	{ "on-reboot", required_argument, NULL, OPT_MACHINE },
	{ "pvm-compat", required_argument, NULL, OPT_MACHINE },
	{ "kernel-unpack", required_argument, NULL, OPT_MACHINE },
	{ "profile", required_argument, NULL, OPT_MACHINE },
	{ "testdev", no_argument, NULL, OPT_TESTDEV },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* --disk PATH[,KEY=VALUE]...: a virtio-blk instance whose path option is
 * PATH (which ends at the first comma). */
static int cli_disk(const char *v, struct vm_config *cfg)
{
	char err[CONFIG_ERR_MAX], *opts;
	int ret;

	if (asprintf(&opts, "path=%s", v) < 0)
		return -ENOMEM;
	ret = config_add_device(cfg, "virtio-blk", NULL, opts, err, sizeof(err));
	free(opts);
	if (ret)
		log_err("%s", err);
	return ret;
}

/* --net [MODE][,KEY=VALUE]...: a virtio-net instance; a first item without
 * '=' is its mode option. */
static int cli_net(const char *v, struct vm_config *cfg)
{
	size_t first = strcspn(v, ",");
	char err[CONFIG_ERR_MAX], *opts = NULL;
	int ret;

	if (first && !memchr(v, '=', first) && asprintf(&opts, "mode=%s", v) < 0)
		return -ENOMEM;
	ret = config_add_device(cfg, "virtio-net", NULL, opts ? opts : v, err, sizeof(err));
	free(opts);
	if (ret)
		log_err("%s", err);
	return ret;
}

/* --testdev: the firmware test devices, port/MMIO and PCI. */
static int cli_testdev(struct vm_config *cfg)
{
	char err[CONFIG_ERR_MAX];
	int ret = config_add_device(cfg, "testdev", NULL, NULL, err, sizeof(err));

	if (!ret)
		ret = config_add_device(cfg, "pci-testdev", NULL, NULL, err, sizeof(err));
	if (ret)
		log_err("%s", err);
	return ret;
}

static int cli_option(int c, const char *name, const char *v, struct vm_config *cfg)
{
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	char err[CONFIG_ERR_MAX];
	int i = 0, ret = 0;

	switch (c) {
	case OPT_MACHINE:
		ret = config_set(cfg, name, v, err, sizeof(err));
		if (ret)
			log_err("--%s", err); /* the message starts with the option's name */
		return ret;
	case OPT_DISK:
		return cli_disk(v, cfg);
	case OPT_NET:
		return cli_net(v, cfg);
	case OPT_TESTDEV:
		return cli_testdev(cfg);
	case 'v':
		log_threshold = LOG_DEBUG;
		break;
	case OPT_LOG_LEVEL:
		ret = cli_choice("--log-level", v, levels, &i);
		if (!ret)
			log_threshold = i;
		break;
	default:
		return -EINVAL;
	}
	return ret;
}

static int cli_parse_run(int argc, char **argv, struct vm_config *cfg)
{
	int c, idx = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", cli_options, &idx)) != -1) {
		if (c == '?') {
			log_err("unknown option '%s' (see kvisor --help)", argv[optind - 1]);
			return -EINVAL;
		}
		if (c == ':') {
			log_err("option '%s' needs a value", argv[optind - 1]);
			return -EINVAL;
		}
		if (c == 'h')
			return 1;
		if (cli_option(c, cli_options[idx].name, optarg, cfg))
			return -EINVAL;
	}
	if (optind < argc) {
		log_err("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->kernel) {
		log_err("run: --kernel PATH is required");
		return -EINVAL;
	}
	return 0;
}

int cli_parse(int argc, char **argv, struct vm_config *cfg, enum cli_command *cmd)
{
	int ret;

	if (argc < 2) {
		log_err("no command given (see kvisor --help)");
		return -EINVAL;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		*cmd = CLI_HELP;
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		*cmd = CLI_VERSION;
		return 0;
	}
	if (strcmp(argv[1], "run")) {
		log_err("unknown command '%s' (see kvisor --help)", argv[1]);
		return -EINVAL;
	}
	ret = cli_parse_run(argc - 1, argv + 1, cfg);
	if (ret < 0)
		return ret;
	*cmd = ret == 1 ? CLI_HELP : CLI_RUN;
	return 0;
}
