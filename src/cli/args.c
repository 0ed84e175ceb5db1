/* Argument parsing for the kvisor command line (no exits here: main decides). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/cli.h"
#include "kvisor/config.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"

const char cli_usage[] =
	"usage: kvisor run --kernel PATH [options]\n"
	"       kvisor --help | --version\n"
	"\n"
	"options of run:\n"
	"  --kernel PATH         bzImage, or ELF vmlinux/firmware with a PVH note\n"
	"  --initrd PATH         initramfs (gzip/xz/zstd/lz4 are unpacked by kvisor)\n"
	"  --cmdline STRING      kernel command line (default \"" CONFIG_DEFAULT_CMDLINE "\")\n"
	"  --mem SIZE            guest RAM, e.g. 256M or 1G (default 256M; bare number = MiB)\n"
	"  --cpus N              number of vCPUs (default 1)\n"
	"  --console-log FILE    also append guest console output to FILE\n"
	"  --on-reboot ACTION    exit (default) or restart when the guest reboots\n"
	"  --pvm-compat MODE     auto (default), on or off: kvm-pvm compatibility layer\n"
	"  --kernel-unpack MODE  on (default) or off: boot a bzImage's payload directly\n"
	"  --disk PATH[,readonly=on|off][,serial=ID][,cache=none|writeback]\n"
	"                        raw disk image as virtio-blk (repeatable: vda, vdb, ...)\n"
	"  --testdev             add the firmware test device (port 0xf4)\n"
	"  --profile FILE[,hz=N] sample each vCPU's RIP and CPL N times a second (default\n"
	"                        1000, at most 10000) and write the counts to FILE at exit\n"
	"  --log-level LEVEL     error, warn, info (default) or debug\n"
	"  -v, --verbose         same as --log-level debug\n"
	"\n"
	"console: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A\n";

void config_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = CONFIG_DEFAULT_MEM;
	cfg->cpus = 1;
	cfg->kernel_unpack = true;
	cfg->profile_hz = CONFIG_PROFILE_HZ_DEFAULT;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 20;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0': shift = 20; break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || v == 0 || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int cli_parse_uint(const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 0xffffffffUL)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

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

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS, OPT_CONSOLE_LOG,
	OPT_ON_REBOOT, OPT_PVM_COMPAT, OPT_KERNEL_UNPACK, OPT_TESTDEV, OPT_LOG_LEVEL, OPT_DISK,
	OPT_PROFILE,
};

static const struct option cli_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "console-log", required_argument, NULL, OPT_CONSOLE_LOG },
	{ "on-reboot", required_argument, NULL, OPT_ON_REBOOT },
	{ "pvm-compat", required_argument, NULL, OPT_PVM_COMPAT },
	{ "kernel-unpack", required_argument, NULL, OPT_KERNEL_UNPACK },
	{ "testdev", no_argument, NULL, OPT_TESTDEV },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int cli_mem(const char *v, struct vm_config *cfg)
{
	if (cli_parse_size(v, &cfg->mem_size)) {
		log_err("--mem: invalid size '%s' (use e.g. 256M or 1G)", v);
		return -EINVAL;
	}
	if (cfg->mem_size < MEM_MIN_SIZE) {
		log_err("--mem %s: at least %llu MiB are needed", v, MEM_MIN_SIZE >> 20);
		return -EINVAL;
	}
	if (cfg->mem_size & 0xfff) {
		log_err("--mem %s: must be a multiple of 4 KiB", v);
		return -EINVAL;
	}
	return 0;
}

/* One KEY=VALUE (of length (len)) of --disk (d). */
static int cli_disk_opt(struct config_disk *d, const char *opt, size_t len)
{
	static const char *const onoff[] = { "off", "on", NULL };
	static const char *const caches[] = { "writeback", "none", NULL };
	const char *eq = memchr(opt, '=', len);
	const char *const *names = NULL;
	char val[64];
	size_t klen, vlen;
	int i;

	if (!eq) {
		log_err("--disk %s: '%.*s' is not KEY=VALUE", d->path, (int)len, opt);
		return -EINVAL;
	}
	klen = (size_t)(eq - opt);
	vlen = len - klen - 1;
	if (klen == 6 && !strncmp(opt, "serial", 6)) {
		if (vlen > CONFIG_DISK_SERIAL_MAX) {
			log_err("--disk %s: serial '%.*s' is longer than %d bytes", d->path, (int)vlen,
				eq + 1, CONFIG_DISK_SERIAL_MAX);
			return -EINVAL;
		}
		memcpy(d->serial, eq + 1, vlen);
		d->serial[vlen] = '\0';
		return 0;
	}
	if (klen == 8 && !strncmp(opt, "readonly", 8))
		names = onoff;
	else if (klen == 5 && !strncmp(opt, "cache", 5))
		names = caches;
	if (!names) {
		log_err("--disk %s: unknown option '%.*s' (readonly, serial, cache)", d->path,
			(int)klen, opt);
		return -EINVAL;
	}
	snprintf(val, sizeof(val), "%.*s", (int)vlen, eq + 1);
	for (i = 0; names[i] && (vlen >= sizeof(val) || strcmp(val, names[i])); i++)
		;
	if (!names[i]) {
		log_err("--disk %s: invalid %.*s '%.*s' (%s or %s)", d->path, (int)klen, opt,
			(int)vlen, eq + 1, names[0], names[1]);
		return -EINVAL;
	}
	if (names == onoff)
		d->readonly = i == 1;
	else
		d->cache = i == 1 ? CONFIG_CACHE_NONE : CONFIG_CACHE_WRITEBACK;
	return 0;
}

/* --disk PATH[,KEY=VALUE]...: the path ends at the first comma. */
static int cli_disk(const char *v, struct vm_config *cfg)
{
	const char *comma = strchr(v, ',');
	size_t plen = comma ? (size_t)(comma - v) : strlen(v);
	struct config_disk *d;

	if (cfg->nr_disks == CONFIG_MAX_DISKS) {
		log_err("--disk %s: at most %d disks", v, CONFIG_MAX_DISKS);
		return -EINVAL;
	}
	if (plen == 0 || plen >= CONFIG_DISK_PATH_MAX) {
		log_err("--disk '%s': %s", v, plen ? "path too long" : "PATH is missing");
		return -EINVAL;
	}
	d = &cfg->disks[cfg->nr_disks];
	memset(d, 0, sizeof(*d));
	memcpy(d->path, v, plen);
	while (comma) {
		const char *opt = comma + 1, *next = strchr(opt, ',');
		size_t len = next ? (size_t)(next - opt) : strlen(opt);

		if (cli_disk_opt(d, opt, len))
			return -EINVAL;
		comma = next;
	}
	cfg->nr_disks++;
	return 0;
}

/* --profile FILE[,hz=N]: the path ends at the first comma. */
static int cli_profile(const char *v, struct vm_config *cfg)
{
	const char *comma = strchr(v, ',');
	size_t plen = comma ? (size_t)(comma - v) : strlen(v);
	unsigned hz = CONFIG_PROFILE_HZ_DEFAULT;

	if (plen == 0 || plen >= sizeof(cfg->profile)) {
		log_err("--profile '%s': %s", v, plen ? "path too long" : "FILE is missing");
		return -EINVAL;
	}
	while (comma) {
		const char *opt = comma + 1, *next = strchr(opt, ',');
		int len = (int)(next ? (size_t)(next - opt) : strlen(opt));
		char val[16];

		if (len < 3 || strncmp(opt, "hz=", 3)) {
			log_err("--profile %.*s: unknown option '%.*s' (hz=N)", (int)plen, v, len, opt);
			return -EINVAL;
		}
		snprintf(val, sizeof(val), "%.*s", len - 3, opt + 3);
		if (len - 3 >= (int)sizeof(val) || cli_parse_uint(val, &hz) || hz == 0 ||
		    hz > CONFIG_PROFILE_HZ_MAX) {
			log_err("--profile %.*s: invalid hz '%.*s' (1 to %d)", (int)plen, v, len - 3,
				opt + 3, CONFIG_PROFILE_HZ_MAX);
			return -EINVAL;
		}
		comma = next;
	}
	memcpy(cfg->profile, v, plen);
	cfg->profile[plen] = '\0';
	cfg->profile_hz = hz;
	return 0;
}

static int cli_option(int c, const char *v, struct vm_config *cfg)
{
	static const char *const reboot[] = { "exit", "restart", NULL };
	static const char *const tri[] = { "auto", "on", "off", NULL };
	static const char *const onoff[] = { "off", "on", NULL };
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	int i = 0, ret = 0;

	switch (c) {
	case OPT_KERNEL: cfg->kernel = v; break;
	case OPT_INITRD: cfg->initrd = v; break;
	case OPT_CMDLINE: cfg->cmdline = v; break;
	case OPT_CONSOLE_LOG: cfg->console_log = v; break;
	case OPT_TESTDEV: cfg->testdev = true; break;
	case 'v': log_threshold = LOG_DEBUG; break;
	case OPT_MEM: return cli_mem(v, cfg);
	case OPT_DISK: return cli_disk(v, cfg);
	case OPT_PROFILE: return cli_profile(v, cfg);
	case OPT_CPUS:
		if (cli_parse_uint(v, &cfg->cpus) || cfg->cpus == 0) {
			log_err("--cpus: invalid count '%s' (at least 1)", v);
			return -EINVAL;
		}
		break;
	case OPT_ON_REBOOT:
		ret = cli_choice("--on-reboot", v, reboot, &i);
		cfg->on_reboot = i == 1 ? CONFIG_REBOOT_RESTART : CONFIG_REBOOT_EXIT;
		break;
	case OPT_PVM_COMPAT:
		ret = cli_choice("--pvm-compat", v, tri, &i);
		cfg->pvm_compat = i == 1 ? CONFIG_ON : i == 2 ? CONFIG_OFF : CONFIG_AUTO;
		break;
	case OPT_KERNEL_UNPACK:
		ret = cli_choice("--kernel-unpack", v, onoff, &i);
		cfg->kernel_unpack = i == 1;
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
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", cli_options, NULL)) != -1) {
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
		if (cli_option(c, optarg, cfg))
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
