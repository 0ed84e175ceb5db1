/* Unit tests of command-line parsing into the VM description: machine
 * options, --disk, --net and --testdev instances, and the exact error
 * lines. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvisor/block.h"
#include "kvisor/cli.h"
#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/log.h"
#include "kvisor/virtio_blk.h"
#include "kvisor/virtio_net.h"

#include "unit_capture.h"

/* One description per test process (check forks each test); parse()
 * starts it afresh, the fixture frees it. */
static struct vm_config cfg;

static void cfg_teardown(void)
{
	config_free(&cfg);
}

static int parse(enum cli_command *cmd, int argc, char **argv)
{
	config_free(&cfg);
	ck_assert_int_eq(config_init(&cfg), 0);
	return cli_parse(argc, argv, &cfg, cmd);
}

/* Run "kvisor (argv...)": the result and what was printed on stderr, into
 * (msg). */
static int parse_err(int argc, char **argv, char *msg, size_t cap)
{
	enum cli_command cmd;
	struct unit_capture c;
	int ret;

	unit_capture_begin(&c);
	ret = parse(&cmd, argc, argv);
	unit_capture_end(&c, msg, cap);
	return ret;
}

/* Parse "kvisor run --kernel k (opt) (spec)". */
static int parse_opt(const char *opt, const char *spec, char *msg, size_t cap)
{
	char *argv[] = { "kvisor", "run", "--kernel", "k", (char *)opt, (char *)spec };

	return parse_err(6, argv, msg, cap);
}

/* The params of instance (id), which must exist with type (type). */
static const void *params_of(const char *id, const char *type)
{
	const struct config_device *d = config_find_device(&cfg, id);

	ck_assert_msg(d != NULL, "no device %s", id);
	ck_assert_str_eq(d->type->name, type);
	return d->params;
}

START_TEST(test_run_options)
{
	char *argv[] = { "kvisor",
			 "run",
			 "--kernel",
			 "k",
			 "--initrd",
			 "i",
			 "--mem",
			 "1G",
			 "--cpus",
			 "4",
			 "--cmdline",
			 "quiet",
			 "--on-reboot",
			 "restart",
			 "--pvm-compat",
			 "off",
			 "--kernel-unpack",
			 "off",
			 "--testdev",
			 "--console-log",
			 "log" };
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cmd, 21, argv), 0);
	ck_assert_int_eq(cmd, CLI_RUN);
	ck_assert_str_eq(cfg.kernel, "k");
	ck_assert_str_eq(cfg.initrd, "i");
	ck_assert_str_eq(cfg.cmdline, "quiet");
	ck_assert_str_eq(cfg.console_log, "log");
	ck_assert_uint_eq(cfg.mem_size, 1ULL << 30);
	ck_assert_uint_eq(cfg.cpus, 4);
	ck_assert_int_eq(cfg.on_reboot, CONFIG_REBOOT_RESTART);
	ck_assert_int_eq(cfg.pvm_compat, CONFIG_OFF);
	ck_assert(!cfg.kernel_unpack);
	/* --testdev: both test devices, as instances */
	params_of("testdev0", "testdev");
	params_of("pci-testdev0", "pci-testdev");
}
END_TEST

START_TEST(test_defaults)
{
	char *argv[] = { "kvisor", "run", "--kernel=k" };
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cmd, 3, argv), 0);
	ck_assert_uint_eq(cfg.mem_size, CONFIG_DEFAULT_MEM);
	ck_assert_uint_eq(cfg.cpus, 1);
	ck_assert_ptr_null(cfg.cmdline);
	ck_assert_int_eq(cfg.pvm_compat, CONFIG_AUTO);
	ck_assert(cfg.kernel_unpack);
	ck_assert_ptr_null(cfg.profile);
	/* Only the machine's devices, in registry order. */
	ck_assert_uint_eq(cfg.nr_devices, 4);
	ck_assert_str_eq(cfg.devices[0]->id, "serial0");
	ck_assert_str_eq(cfg.devices[1]->id, "acpi-pm0");
	ck_assert_str_eq(cfg.devices[2]->id, "kbc0");
	ck_assert_str_eq(cfg.devices[3]->id, "pci0");
}
END_TEST

START_TEST(test_errors)
{
	static const struct {
		char *argv[4];
		const char *msg;
	} bad[] = {
		{ { "kvisor", "run", "--bogus", NULL },
		  "kvisor: unknown option '--bogus' (see kvisor --help)\n" },
		{ { "kvisor", "run", "--mem", "1K" },
		  "kvisor: --mem 1K: at least 16 MiB are needed\n" },
		{ { "kvisor", "run", "--mem", "abc" },
		  "kvisor: --mem: invalid size 'abc' (use e.g. 256M or 1G)\n" },
		{ { "kvisor", "run", "--mem", "16387K" },
		  "kvisor: --mem 16387K: must be a multiple of 4 KiB\n" },
		{ { "kvisor", "run", "--cpus", "0" },
		  "kvisor: --cpus: invalid count '0' (at least 1)\n" },
		{ { "kvisor", "run", "--cpus", "x" },
		  "kvisor: --cpus: invalid count 'x' (at least 1)\n" },
		{ { "kvisor", "run", "--on-reboot", "maybe" },
		  "kvisor: --on-reboot: invalid value 'maybe'\n" },
		{ { "kvisor", "run", "--pvm-compat", "yes" },
		  "kvisor: --pvm-compat: invalid value 'yes'\n" },
		{ { "kvisor", "run", "--kernel-unpack", "yes" },
		  "kvisor: --kernel-unpack: invalid value 'yes'\n" },
		{ { "kvisor", "run", "--log-level", "loud" },
		  "kvisor: --log-level: invalid value 'loud'\n" },
		{ { "kvisor", "run", "--kernel", NULL },
		  "kvisor: option '--kernel' needs a value\n" },
		{ { "kvisor", "fly", NULL, NULL },
		  "kvisor: unknown command 'fly' (see kvisor --help)\n" },
		{ { "kvisor", "run", "extra", NULL }, "kvisor: unexpected argument 'extra'\n" },
		{ { "kvisor", "run", NULL, NULL }, "kvisor: run: --kernel PATH is required\n" },
		{ { "kvisor", NULL, NULL, NULL },
		  "kvisor: no command given (see kvisor --help)\n" },
	};
	char msg[512];

	log_threshold = LOG_ERR;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int argc = 0;

		while (argc < 4 && bad[i].argv[argc])
			argc++;
		ck_assert_msg(parse_err(argc, (char **)bad[i].argv, msg, sizeof(msg)) == -EINVAL,
			      "case %zu accepted", i);
		ck_assert_str_eq(msg, bad[i].msg);
	}
}
END_TEST

START_TEST(test_help_version)
{
	char *h[] = { "kvisor", "--help" }, *v[] = { "kvisor", "--version" };
	char *rh[] = { "kvisor", "run", "--help" };
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cmd, 2, h), 0);
	ck_assert_int_eq(cmd, CLI_HELP);
	ck_assert_int_eq(parse(&cmd, 2, v), 0);
	ck_assert_int_eq(cmd, CLI_VERSION);
	ck_assert_int_eq(parse(&cmd, 3, rh), 0);
	ck_assert_int_eq(cmd, CLI_HELP);
}
END_TEST

START_TEST(test_disks)
{
	char *argv[] = { "kvisor",   "run",
			 "--kernel", "k",
			 "--disk",   "a.img",
			 "--disk",   "/b/c.raw,readonly=on,serial=SER-0123456789abcdef,cache=none",
			 "--disk",   "d.img,cache=writeback,readonly=off,serial=",
			 "--disk",   "e=f.img,id=boot" };
	const struct virtio_blk_params *p;
	const struct config_device *d;
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cmd, 12, argv), 0);
	ck_assert_uint_eq(cfg.nr_devices, 4 + 4);
	p = params_of("disk0", "virtio-blk");
	ck_assert_str_eq(p->path, "a.img");
	ck_assert(!p->readonly);
	ck_assert_uint_eq(p->cache, BLOCK_CACHE_WRITEBACK);
	ck_assert_ptr_null(p->serial);
	p = params_of("disk1", "virtio-blk");
	ck_assert_str_eq(p->path, "/b/c.raw");
	ck_assert(p->readonly);
	ck_assert_uint_eq(p->cache, BLOCK_CACHE_NONE);
	ck_assert_str_eq(p->serial, "SER-0123456789abcdef"); /* exactly 20 bytes */
	p = params_of("disk2", "virtio-blk");
	ck_assert_str_eq(p->path, "d.img");
	ck_assert(!p->readonly);
	ck_assert_uint_eq(p->cache, BLOCK_CACHE_WRITEBACK);
	ck_assert_str_eq(p->serial, "");
	p = params_of("boot", "virtio-blk"); /* id= names it; the path may hold '=' */
	ck_assert_str_eq(p->path, "e=f.img");
	/* In --disk order after the machine's devices, options as given. */
	d = cfg.devices[5];
	ck_assert_str_eq(d->id, "disk1");
	ck_assert_uint_eq(d->nr_opts, 4);
	ck_assert_str_eq(d->opts[0].key, "path");
	ck_assert_str_eq(d->opts[0].value, "/b/c.raw");
	ck_assert_str_eq(d->opts[3].key, "cache");
	ck_assert_str_eq(d->opts[3].value, "none");
	ck_assert_str_eq(cfg.devices[7]->id, "boot");
	ck_assert_uint_eq(cfg.devices[7]->nr_opts, 1); /* id is not among the options */
}
END_TEST

START_TEST(test_disk_errors)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "x.img,readonly=yes",
		  "kvisor: disk0: readonly: expected on or off, got 'yes'\n" },
		{ "x.img,cache=unsafe",
		  "kvisor: disk0: cache: expected writeback or none, got 'unsafe'\n" },
		{ "x.img,serial=123456789012345678901",
		  "kvisor: disk0: serial: expected at most 20 bytes, got '123456789012345678901'\n" },
		{ "x.img,format=raw",
		  "kvisor: disk0: unknown option 'format' (id, path, readonly, serial, cache)\n" },
		{ "x.img,readonly", "kvisor: disk0: 'readonly' is not KEY=VALUE\n" },
		{ "x.img,", "kvisor: disk0: '' is not KEY=VALUE\n" },
		{ "x.img,cache=none,cache=none", "kvisor: disk0: duplicate option 'cache'\n" },
		{ "x.img,path=y.img", "kvisor: disk0: duplicate option 'path'\n" },
		{ "x.img,id=0x",
		  "kvisor: virtio-blk: invalid id '0x' (a letter, then letters, digits, "
		  "'-' or '_'; at most 31 bytes)\n" },
		{ "x.img,id=serial0", "kvisor: serial0: duplicate id\n" },
		{ ",readonly=on", "kvisor: disk0: path is missing\n" },
		{ "", "kvisor: disk0: path is missing\n" },
	};
	char msg[512];

	log_threshold = LOG_ERR;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse_opt("--disk", bad[i].spec, msg, sizeof(msg)) == -EINVAL,
			      "'%s' accepted", bad[i].spec);
		ck_assert_str_eq(msg, bad[i].msg);
	}
}
END_TEST

START_TEST(test_disk_limit)
{
	char *argv[4 + 2 * (VIRTIO_BLK_MAX_DISKS + 1)], msg[512];
	enum cli_command cmd;
	int argc = 0;

	argv[argc++] = "kvisor";
	argv[argc++] = "run";
	argv[argc++] = "--kernel";
	argv[argc++] = "k";
	for (int i = 0; i < VIRTIO_BLK_MAX_DISKS; i++) {
		argv[argc++] = "--disk";
		argv[argc++] = "d.img";
	}
	ck_assert_int_eq(parse(&cmd, argc, argv), 0);
	ck_assert_uint_eq(cfg.nr_devices, 4 + VIRTIO_BLK_MAX_DISKS);
	argv[argc++] = "--disk";
	argv[argc++] = "one-too-many.img";
	log_threshold = LOG_ERR;
	ck_assert_int_eq(parse_err(argc, argv, msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "kvisor: disk16: at most 16 virtio-blk devices\n");
}
END_TEST

/* --net [MODE][,KEY=VALUE...], repeatable: a first item without '=' is the
 * mode; without one, the default; net0, net1... in order (eth0, eth1...). */
START_TEST(test_nets)
{
	char *argv[] = { "kvisor",   "run",
			 "--kernel", "k",
			 "--name",   "web1",
			 "--net",    "user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-:53",
			 "--net",    "mac=02:00:00:00:00:01,link=down",
			 "--net",    "tap,ifname=tap3,id=lan",
			 "--net",    "internal,name=seg",
			 "--net",    "" };
	const struct virtio_net_params *p;
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cmd, 16, argv), 0);
	ck_assert_str_eq(cfg.name, "web1");
	ck_assert_uint_eq(cfg.nr_devices, 4 + 5);
	p = params_of("net0", "virtio-net");
	ck_assert_uint_eq(p->mode, NET_MODE_USER);
	ck_assert_uint_eq(p->nr_hostfwd, 2);
	ck_assert_str_eq(p->hostfwd[0], "tcp:127.0.0.1:8080-:80");
	ck_assert_str_eq(p->hostfwd[1], "udp::5353-:53");
	p = params_of("net1", "virtio-net");
	ck_assert_uint_eq(p->mode, VIRTIO_NET_DEFAULT_MODE);
	ck_assert(p->mac_given);
	ck_assert_uint_eq(p->mac[5], 1);
	ck_assert_uint_eq(p->link, VIRTIO_NET_LINK_DOWN);
	p = params_of("lan", "virtio-net");
	ck_assert_uint_eq(p->mode, NET_MODE_TAP);
	ck_assert_str_eq(p->ifname, "tap3");
	p = params_of("net2", "virtio-net");
	ck_assert_uint_eq(p->mode, NET_MODE_INTERNAL);
	ck_assert_str_eq(p->segment, "seg");
	p = params_of("net3", "virtio-net");
	ck_assert_uint_eq(p->mode, VIRTIO_NET_DEFAULT_MODE);
	ck_assert_str_eq(cfg.devices[4]->opts[0].key, "mode");
	ck_assert_str_eq(cfg.devices[4]->opts[0].value, "user");
}
END_TEST

START_TEST(test_net_errors)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "bridge",
		  "kvisor: net0: mode: expected user, passt, stream, tap or internal, got 'bridge'\n" },
		{ "user,mode=tap", "kvisor: net0: duplicate option 'mode'\n" },
		{ "user,ifname=tap0", "kvisor: net0: ifname: only for mode tap\n" },
		{ "tap,hostfwd=tcp::8080-:80",
		  "kvisor: net0: hostfwd: only for modes user and passt\n" },
		{ "stream", "kvisor: net0: mode stream needs path=SOCKET\n" },
		{ "user,mac=03:00:00:00:00:01",
		  "kvisor: net0: mac: 03:00:00:00:00:01 is a multicast address (the first octet "
		  "must be even)\n" },
		{ "user,mac=0200.0000.0001",
		  "kvisor: net0: mac: expected XX:XX:XX:XX:XX:XX (hex), got '0200.0000.0001'\n" },
		{ "user,hostfwd=tcp::8080:80",
		  "kvisor: net0: hostfwd: expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, "
		  "got 'tcp::8080:80'\n" },
		{ "user,hostfwd", "kvisor: net0: 'hostfwd' is not KEY=VALUE\n" },
		{ "user,id=eth0,id=eth1", "kvisor: virtio-net: duplicate option 'id'\n" },
	};
	char msg[512];

	log_threshold = LOG_ERR;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse_opt("--net", bad[i].spec, msg, sizeof(msg)) == -EINVAL,
			      "'%s' accepted", bad[i].spec);
		ck_assert_str_eq(msg, bad[i].msg);
	}
	ck_assert_int_eq(parse_opt("--name", "a b", msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "kvisor: --name: invalid name 'a b' (a letter, then letters, digits, "
			      "'-' or '_'; at most 31 bytes)\n");
}
END_TEST

START_TEST(test_testdev_twice)
{
	char *argv[] = { "kvisor", "run", "--kernel", "k", "--testdev", "--testdev" };
	char msg[512];

	log_threshold = LOG_ERR;
	ck_assert_int_eq(parse_err(6, argv, msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "kvisor: testdev1: at most 1 testdev device\n");
}
END_TEST

START_TEST(test_profile)
{
	static const struct {
		const char *spec, *path;
		unsigned hz;
	} good[] = {
		{ "prof.txt", "prof.txt", CONFIG_PROFILE_HZ_DEFAULT },
		{ "/tmp/p,hz=250", "/tmp/p", 250 },
		{ "p,hz=1", "p", 1 },
		{ "p,hz=10000", "p", 10000 },
		{ "p,hz=5,hz=7", "p", 7 },
	};
	char *argv[] = { "kvisor", "run", "--kernel", "k", "--profile", NULL };
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cmd, 4, argv), 0);
	ck_assert_ptr_null(cfg.profile); /* off by default */
	ck_assert_uint_eq(cfg.profile_hz, CONFIG_PROFILE_HZ_DEFAULT);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		argv[5] = (char *)good[i].spec;
		ck_assert_msg(parse(&cmd, 6, argv) == 0, "'%s' refused", good[i].spec);
		ck_assert_str_eq(cfg.profile, good[i].path);
		ck_assert_uint_eq(cfg.profile_hz, good[i].hz);
	}
}
END_TEST

START_TEST(test_profile_errors)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "p.txt,hz=0", "kvisor: --profile p.txt: invalid hz '0' (1 to 10000)\n" },
		{ "p.txt,hz=10001", "kvisor: --profile p.txt: invalid hz '10001' (1 to 10000)\n" },
		{ "p.txt,hz=-5", "kvisor: --profile p.txt: invalid hz '-5' (1 to 10000)\n" },
		{ "p.txt,hz=1k", "kvisor: --profile p.txt: invalid hz '1k' (1 to 10000)\n" },
		{ "p.txt,hz=", "kvisor: --profile p.txt: invalid hz '' (1 to 10000)\n" },
		{ "p.txt,hz=99999999999999999999",
		  "kvisor: --profile p.txt: invalid hz '99999999999999999999' (1 to 10000)\n" },
		{ "p.txt,rate=5", "kvisor: --profile p.txt: unknown option 'rate=5' (hz=N)\n" },
		{ "p.txt,", "kvisor: --profile p.txt: unknown option '' (hz=N)\n" },
		{ ",hz=100", "kvisor: --profile ',hz=100': FILE is missing\n" },
		{ "", "kvisor: --profile '': FILE is missing\n" },
	};
	char msg[512];

	log_threshold = LOG_ERR;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse_opt("--profile", bad[i].spec, msg, sizeof(msg)) == -EINVAL,
			      "'%s' accepted", bad[i].spec);
		ck_assert_str_eq(msg, bad[i].msg);
	}
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("args");

	tcase_add_checked_fixture(tc, NULL, cfg_teardown);
	tcase_add_test(tc, test_run_options);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_help_version);
	tcase_add_test(tc, test_disks);
	tcase_add_test(tc, test_disk_errors);
	tcase_add_test(tc, test_disk_limit);
	tcase_add_test(tc, test_nets);
	tcase_add_test(tc, test_net_errors);
	tcase_add_test(tc, test_testdev_twice);
	tcase_add_test(tc, test_profile);
	tcase_add_test(tc, test_profile_errors);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
