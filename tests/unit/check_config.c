/* Unit tests of the VM description (src/config): machine defaults and
 * options, device instances (ids, options as text and typed params, two
 * of one type), and the exact text of every validation error. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kvisor/block.h"
#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/virtio_blk.h"
#include "kvisor/virtio_net.h"

static struct vm_config cfg;
static char err[CONFIG_ERR_MAX];

static void cfg_setup(void)
{
	ck_assert_int_eq(config_init(&cfg), 0);
	err[0] = '\0';
}

static void cfg_teardown(void)
{
	config_free(&cfg);
}

static int add(const char *type, const char *id, const char *opts)
{
	return config_add_device(&cfg, type, id, opts, err, sizeof(err));
}

static const struct virtio_blk_params *blk(unsigned i)
{
	ck_assert_uint_lt(i, cfg.nr_devices);
	ck_assert_ptr_eq(cfg.devices[i]->type, &virtio_blk_type);
	return cfg.devices[i]->params;
}

START_TEST(test_init)
{
	static const char *const ids[] = { "serial0", "acpi-pm0", "kbc0", "pci0" };
	static const struct device_type *const types[] = { &serial8250_type, &acpi_pm_type,
							   &i8042_type, &pci_host_type };
	struct vm_config zero;

	ck_assert_uint_eq(cfg.mem_size, CONFIG_DEFAULT_MEM);
	ck_assert_uint_eq(cfg.cpus, 1);
	ck_assert(cfg.kernel_unpack);
	ck_assert_uint_eq(cfg.profile_hz, CONFIG_PROFILE_HZ_DEFAULT);
	ck_assert_ptr_null(cfg.kernel);
	ck_assert_ptr_null(cfg.profile);
	ck_assert_uint_eq(cfg.nr_devices, 4);
	for (unsigned i = 0; i < 4; i++) {
		ck_assert_str_eq(cfg.devices[i]->id, ids[i]);
		ck_assert_ptr_eq(cfg.devices[i]->type, types[i]);
		ck_assert_uint_eq(cfg.devices[i]->nr_opts, 0);
		ck_assert_ptr_eq(config_find_device(&cfg, ids[i]), cfg.devices[i]);
	}
	ck_assert_ptr_null(config_find_device(&cfg, "serial1"));
	config_free(&cfg);
	memset(&zero, 0, sizeof(zero));
	ck_assert_mem_eq(&cfg, &zero, sizeof(zero));
	config_free(&cfg); /* an empty description is fine too */
}
END_TEST

START_TEST(test_sizes)
{
	uint64_t v;

	ck_assert_int_eq(config_parse_size("256M", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(config_parse_size("256", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(config_parse_size("1G", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 30);
	ck_assert_int_eq(config_parse_size("2GiB", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(config_parse_size("65536k", &v), 0);
	ck_assert_uint_eq(v, 64ULL << 20);
	ck_assert_int_eq(config_parse_size("1T", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 40);
	ck_assert_int_eq(config_parse_size("", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("abc", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("-1M", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("0", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("12X", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("1MM", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("99999999999999999999", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size("17592186044416T", &v), -EINVAL);
	ck_assert_int_eq(config_parse_size(NULL, &v), -EINVAL);
}
END_TEST

/* Machine options: typed, and strings copied (the caller's text may go). */
START_TEST(test_set)
{
	char kernel[] = "vmlinux";

	ck_assert_int_eq(config_set(&cfg, "kernel", kernel, err, sizeof(err)), 0);
	kernel[0] = 'X';
	ck_assert_str_eq(cfg.kernel, "vmlinux");
	ck_assert_int_eq(config_set(&cfg, "kernel", "bzImage", err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.kernel, "bzImage"); /* the last one wins */
	ck_assert_int_eq(config_set(&cfg, "initrd", "rd", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "cmdline", "quiet", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "console-log", "log", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "mem", "1G", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "cpus", "8", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "on-reboot", "restart", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "pvm-compat", "on", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "kernel-unpack", "off", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "profile", "p.txt,hz=50", err, sizeof(err)), 0);
	ck_assert_ptr_null(cfg.name);
	ck_assert_int_eq(config_set(&cfg, "name", "web-1_a", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "name", "abcdefghijklmnopqrstuvwxyz01234", err,
				    sizeof(err)),
			 0);
	ck_assert_str_eq(cfg.name, "abcdefghijklmnopqrstuvwxyz01234"); /* 31 bytes: the longest */
	ck_assert_str_eq(cfg.initrd, "rd");
	ck_assert_str_eq(cfg.cmdline, "quiet");
	ck_assert_str_eq(cfg.console_log, "log");
	ck_assert_uint_eq(cfg.mem_size, 1ULL << 30);
	ck_assert_uint_eq(cfg.cpus, 8);
	ck_assert_int_eq(cfg.on_reboot, CONFIG_REBOOT_RESTART);
	ck_assert_int_eq(cfg.pvm_compat, CONFIG_ON);
	ck_assert(!cfg.kernel_unpack);
	ck_assert_str_eq(cfg.profile, "p.txt");
	ck_assert_uint_eq(cfg.profile_hz, 50);
}
END_TEST

START_TEST(test_set_errors)
{
	static const struct {
		const char *key, *value, *msg;
	} bad[] = {
		{ "mem", "abc", "mem: invalid size 'abc' (use e.g. 256M or 1G)" },
		{ "mem", "8M", "mem 8M: at least 16 MiB are needed" },
		{ "mem", "16387K", "mem 16387K: must be a multiple of 4 KiB" },
		{ "cpus", "0", "cpus: invalid count '0' (at least 1)" },
		{ "cpus", "4294967296", "cpus: invalid count '4294967296' (at least 1)" },
		{ "on-reboot", "maybe", "on-reboot: invalid value 'maybe'" },
		{ "pvm-compat", "yes", "pvm-compat: invalid value 'yes'" },
		{ "kernel-unpack", "auto", "kernel-unpack: invalid value 'auto'" },
		{ "profile", "p,hz=0", "profile p: invalid hz '0' (1 to 10000)" },
		{ "profile", "p,rate=1", "profile p: unknown option 'rate=1' (hz=N)" },
		{ "profile", "", "profile '': FILE is missing" },
		{ "memory", "1G", "memory: unknown machine option" },
		{ "name", "",
		  "name: invalid name '' (a letter, then letters, digits, '-' or '_'; at most 31 "
		  "bytes)" },
		{ "name", "my vm",
		  "name: invalid name 'my vm' (a letter, then letters, digits, '-' or '_'; at most "
		  "31 bytes)" },
		{ "name", "1vm",
		  "name: invalid name '1vm' (a letter, then letters, digits, '-' or '_'; at most 31 "
		  "bytes)" },
		{ "name", "abcdefghijklmnopqrstuvwxyz012345",
		  "name: invalid name 'abcdefghijklmnopqrstuvwxyz012345' (a letter, then letters, "
		  "digits, '-' or '_'; at most 31 bytes)" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(config_set(&cfg, bad[i].key, bad[i].value, err, sizeof(err)) ==
				      -EINVAL,
			      "%s=%s accepted", bad[i].key, bad[i].value);
		ck_assert_str_eq(err, bad[i].msg);
	}
	/* Nothing changed. */
	ck_assert_uint_eq(cfg.mem_size, CONFIG_DEFAULT_MEM);
	ck_assert_uint_eq(cfg.cpus, 1);
	ck_assert_ptr_null(cfg.profile);
	ck_assert_ptr_null(cfg.name);
}
END_TEST

static const struct virtio_net_params *net(const char *id)
{
	const struct config_device *d = config_find_device(&cfg, id);

	ck_assert_msg(d != NULL, "no device %s", id);
	ck_assert_ptr_eq(d->type, &virtio_net_type);
	return d->params;
}

/* A repeatable option (CONFIG_OPT_LIST): every value in the order given,
 * counted, up to the spec's limit; other options stay single. */
START_TEST(test_list_option)
{
	const struct virtio_net_params *p;
	char opts[64 * (NET_HOSTFWD_MAX + 1)];
	size_t off = 0;

	ck_assert_int_eq(add("virtio-net", NULL, NULL), 0);
	ck_assert_uint_eq(net("net0")->nr_hostfwd, 0);
	ck_assert_int_eq(
		add("virtio-net", NULL,
		    "mode=user,hostfwd=tcp::8080-:80,restrict=on,hostfwd=udp:127.0.0.1:53-10.0.2.15:53"),
		0);
	p = net("net1");
	ck_assert_uint_eq(p->nr_hostfwd, 2);
	ck_assert_str_eq(p->hostfwd[0], "tcp::8080-:80");
	ck_assert_str_eq(p->hostfwd[1], "udp:127.0.0.1:53-10.0.2.15:53");
	ck_assert(p->restrict_outbound);
	ck_assert_ptr_null(p->hostfwd[2]);
	/* Exactly the limit, then one more. */
	for (unsigned i = 0; i < NET_HOSTFWD_MAX; i++)
		off += (size_t)snprintf(opts + off, sizeof(opts) - off, "%shostfwd=tcp::%u-:80",
					i ? "," : "", 2000 + i);
	ck_assert_int_eq(add("virtio-net", NULL, opts), 0);
	p = net("net2");
	ck_assert_uint_eq(p->nr_hostfwd, NET_HOSTFWD_MAX);
	ck_assert_str_eq(p->hostfwd[NET_HOSTFWD_MAX - 1], "tcp::2015-:80");
	snprintf(opts + off, sizeof(opts) - off, ",hostfwd=tcp::3000-:80");
	ck_assert_int_eq(add("virtio-net", NULL, opts), -EINVAL);
	ck_assert_str_eq(err, "net3: hostfwd: at most 16 may be given");
	ck_assert_int_eq(add("virtio-net", NULL, "hostfwd=tcp::1-:1,restrict=on,restrict=off"),
			 -EINVAL);
	ck_assert_str_eq(err, "net3: duplicate option 'restrict'");
	ck_assert_uint_eq(cfg.nr_devices, 4 + 3);
}
END_TEST

/* --net's options as typed params: the default mode and link, each mode's
 * own options, a MAC parsed (either case of hex). */
START_TEST(test_net_params)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	const struct virtio_net_params *p;

	ck_assert_int_eq(add("virtio-net", NULL, NULL), 0);
	p = net("net0");
	ck_assert_uint_eq(p->mode, VIRTIO_NET_DEFAULT_MODE);
	ck_assert_uint_eq(p->link, VIRTIO_NET_LINK_UP);
	ck_assert(!p->mac_given);
	ck_assert(!p->restrict_outbound);
	ck_assert_int_eq(add("virtio-net", "lan",
			     "mode=tap,ifname=tap7,mac=52:54:00:AB:cd:EF,link=down"),
			 0);
	p = net("lan");
	ck_assert_uint_eq(p->mode, NET_MODE_TAP);
	ck_assert_str_eq(p->ifname, "tap7");
	ck_assert(p->mac_given);
	ck_assert_mem_eq(p->mac, mac, 6);
	ck_assert_uint_eq(p->link, VIRTIO_NET_LINK_DOWN);
	ck_assert_int_eq(add("virtio-net", NULL, "mode=stream,path=/run/passt.sock"), 0);
	ck_assert_uint_eq(net("net1")->mode, NET_MODE_STREAM);
	ck_assert_str_eq(net("net1")->path, "/run/passt.sock");
	ck_assert_int_eq(add("virtio-net", NULL,
			     "mode=passt,path=/usr/bin/passt,hostfwd=tcp::1-:2"),
			 0);
	ck_assert_uint_eq(net("net2")->mode, NET_MODE_PASST);
	ck_assert_int_eq(add("virtio-net", NULL, "mode=internal,name=lab.1"), 0);
	ck_assert_uint_eq(net("net3")->mode, NET_MODE_INTERNAL);
	ck_assert_str_eq(net("net3")->segment, "lab.1");
	/* The mode choices are enum net_mode, in order. */
	for (int m = NET_MODE_USER; m <= NET_MODE_INTERNAL; m++) {
		char opts[64];

		config_free(&cfg);
		ck_assert_int_eq(config_init(&cfg), 0);
		snprintf(opts, sizeof(opts), "mode=%s%s", net_mode_name(m),
			 m == NET_MODE_STREAM   ? ",path=s" :
			 m == NET_MODE_INTERNAL ? ",name=n" :
						  "");
		ck_assert_int_eq(add("virtio-net", NULL, opts), 0);
		ck_assert_uint_eq(net("net0")->mode, (unsigned)m);
	}
}
END_TEST

START_TEST(test_net_errors)
{
	static const struct {
		const char *opts, *msg;
	} bad[] = {
		{ "mode=bridge",
		  "net0: mode: expected user, passt, stream, tap or internal, got 'bridge'" },
		{ "link=off", "net0: link: expected up or down, got 'off'" },
		{ "ifname=tap0", "net0: ifname: only for mode tap" },
		{ "mode=tap,hostfwd=tcp::80-:80", "net0: hostfwd: only for modes user and passt" },
		{ "mode=passt,restrict=on", "net0: restrict: only for mode user" },
		{ "mode=user,path=/bin/x", "net0: path: only for modes passt and stream" },
		{ "mode=tap,name=seg", "net0: name: only for mode internal" },
		{ "mode=stream", "net0: mode stream needs path=SOCKET" },
		{ "mode=stream,path=", "net0: mode stream needs path=SOCKET" },
		{ "mode=internal", "net0: mode internal needs name=SEGMENT" },
		{ "mode=internal,name=a/b",
		  "net0: name: invalid segment name 'a/b' (letters, digits, '.', '-' or '_', not "
		  "starting with '.')" },
		{ "mode=internal,name=..",
		  "net0: name: invalid segment name '..' (letters, digits, '.', '-' or '_', not "
		  "starting with '.')" },
		{ "mode=tap,ifname=abcdefghijklmnop",
		  "net0: ifname: expected at most 15 bytes, got 'abcdefghijklmnop'" },
		{ "mac=52:54:00:12:34",
		  "net0: mac: expected XX:XX:XX:XX:XX:XX (hex), got '52:54:00:12:34'" },
		{ "mac=52-54-00-12-34-56",
		  "net0: mac: expected XX:XX:XX:XX:XX:XX (hex), got '52-54-00-12-34-56'" },
		{ "mac=52:54:00:12:34:5g",
		  "net0: mac: expected XX:XX:XX:XX:XX:XX (hex), got '52:54:00:12:34:5g'" },
		{ "mac=52:54:00:12:34:567",
		  "net0: mac: expected XX:XX:XX:XX:XX:XX (hex), got '52:54:00:12:34:567'" },
		{ "mac=", "net0: mac: expected XX:XX:XX:XX:XX:XX (hex), got ''" },
		{ "mac=01:00:5e:00:00:01",
		  "net0: mac: 01:00:5e:00:00:01 is a multicast address (the first octet must be "
		  "even)" },
		{ "mac=ff:ff:ff:ff:ff:ff",
		  "net0: mac: ff:ff:ff:ff:ff:ff is a multicast address (the first octet must be "
		  "even)" },
		{ "mac=00:00:00:00:00:00", "net0: mac: 00:00:00:00:00:00 is not a valid address" },
		{ "hostfwd=tcp:8080-:80",
		  "net0: hostfwd: expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, got "
		  "'tcp:8080-:80'" },
		{ "hostfwd=sctp::8080-:80",
		  "net0: hostfwd: expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, got "
		  "'sctp::8080-:80'" },
		{ "hostfwd=tcp::8080",
		  "net0: hostfwd: expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, got "
		  "'tcp::8080'" },
		{ "hostfwd=tcp::0-:80",
		  "net0: hostfwd: invalid port '0' in 'tcp::0-:80' (1 to 65535)" },
		{ "hostfwd=udp::53-:65536",
		  "net0: hostfwd: invalid port '65536' in 'udp::53-:65536' (1 to 65535)" },
		{ "hostfwd=tcp::http-:80",
		  "net0: hostfwd: invalid port 'http' in 'tcp::http-:80' (1 to 65535)" },
		{ "hostfwd=tcp:localhost:8080-:80",
		  "net0: hostfwd: invalid address 'localhost' in 'tcp:localhost:8080-:80' (IPv4)" },
		{ "hostfwd=tcp::8080-10.0.2.300:80",
		  "net0: hostfwd: invalid address '10.0.2.300' in 'tcp::8080-10.0.2.300:80' (IPv4)" },
		{ "hostfwd=tcp::8080-:80,hostfwd=tcp::1-:",
		  "net0: hostfwd: invalid port '' in 'tcp::1-:' (1 to 65535)" },
		{ "vlan=1",
		  "net0: unknown option 'vlan' (id, mode, mac, hostfwd, restrict, path, ifname, name, "
		  "link)" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(add("virtio-net", NULL, bad[i].opts) == -EINVAL, "'%s' accepted",
			      bad[i].opts);
		ck_assert_str_eq(err, bad[i].msg);
		ck_assert_uint_eq(cfg.nr_devices, 4);
	}
}
END_TEST

/* Two instances of one type: own ids, own options, own params. */
START_TEST(test_two_disks)
{
	const struct config_device *d0, *d1;

	ck_assert_int_eq(add("virtio-blk", NULL, "path=a.img"), 0);
	ck_assert_int_eq(add("virtio-blk", NULL, "path=b.img,readonly=on,cache=none,serial=S1"), 0);
	ck_assert_uint_eq(cfg.nr_devices, 6);
	d0 = cfg.devices[4];
	d1 = cfg.devices[5];
	ck_assert_str_eq(d0->id, "disk0");
	ck_assert_str_eq(d1->id, "disk1");
	ck_assert_ptr_ne(d0->params, d1->params);
	ck_assert_str_eq(blk(4)->path, "a.img");
	ck_assert(!blk(4)->readonly);
	ck_assert_uint_eq(blk(4)->cache, BLOCK_CACHE_WRITEBACK);
	ck_assert_ptr_null(blk(4)->serial);
	ck_assert_str_eq(blk(5)->path, "b.img");
	ck_assert(blk(5)->readonly);
	ck_assert_uint_eq(blk(5)->cache, BLOCK_CACHE_NONE);
	ck_assert_str_eq(blk(5)->serial, "S1");
	/* The text as given, in order. */
	ck_assert_uint_eq(d1->nr_opts, 4);
	ck_assert_str_eq(d1->opts[1].key, "readonly");
	ck_assert_str_eq(d1->opts[1].value, "on");
	ck_assert_str_eq(config_device_opt(d1, "serial"), "S1");
	ck_assert_ptr_null(config_device_opt(d0, "serial"));
}
END_TEST

/* Ids: given, as "id=", or the prefix with the lowest free number. */
START_TEST(test_ids)
{
	ck_assert_int_eq(add("virtio-blk", NULL, "path=a,id=disk1"), 0);
	ck_assert_int_eq(add("virtio-blk", NULL, "path=b"), 0);
	ck_assert_int_eq(add("virtio-blk", NULL, "id=Root_fs-2,path=c"), 0);
	ck_assert_int_eq(add("virtio-blk", "data", "path=d"), 0);
	ck_assert_int_eq(add("virtio-blk", NULL, "path=e"), 0);
	ck_assert_str_eq(cfg.devices[4]->id, "disk1");
	ck_assert_str_eq(cfg.devices[5]->id, "disk0");
	ck_assert_str_eq(cfg.devices[6]->id, "Root_fs-2");
	ck_assert_str_eq(cfg.devices[7]->id, "data");
	ck_assert_str_eq(cfg.devices[8]->id, "disk2");
	ck_assert_str_eq(blk(6)->path, "c");
	ck_assert_uint_eq(cfg.devices[6]->nr_opts, 1);
	/* 31 bytes is the longest id. */
	ck_assert_int_eq(add("pci-testdev", "abcdefghijklmnopqrstuvwxyz01234", NULL), 0);
}
END_TEST

START_TEST(test_add_errors)
{
	static const struct {
		const char *type, *id, *opts, *msg;
	} bad[] = {
		{ "virtio-blk", NULL, "path=a,readonly=maybe",
		  "disk0: readonly: expected on or off, got 'maybe'" },
		{ "virtio-blk", NULL,
		  "path=a,readonly=", "disk0: readonly: expected on or off, got ''" },
		{ "virtio-blk", NULL, "path=a,cache=unsafe",
		  "disk0: cache: expected writeback or none, got 'unsafe'" },
		{ "virtio-blk", NULL, "path=a,serial=123456789012345678901",
		  "disk0: serial: expected at most 20 bytes, got '123456789012345678901'" },
		{ "virtio-blk", NULL, "path=a,foo=1",
		  "disk0: unknown option 'foo' (id, path, readonly, serial, cache)" },
		{ "virtio-blk", NULL, "path=a,=1",
		  "disk0: unknown option '' (id, path, readonly, serial, cache)" },
		{ "virtio-blk", "boot", "path=a,ro", "boot: 'ro' is not KEY=VALUE" },
		{ "virtio-blk", NULL, "path=a,id", "disk0: 'id' is not KEY=VALUE" },
		{ "virtio-blk", NULL, "path=a,,readonly=on", "disk0: '' is not KEY=VALUE" },
		{ "virtio-blk", NULL, "path=a,cache=none,cache=none",
		  "disk0: duplicate option 'cache'" },
		{ "virtio-blk", NULL, "readonly=on", "disk0: path is missing" },
		{ "virtio-blk", NULL, "path=", "disk0: path is missing" },
		{ "virtio-blk", NULL, NULL, "disk0: path is missing" },
		{ "virtio-blk", "kbc0", "path=a", "kbc0: duplicate id" },
		{ "virtio-blk", "x", "path=a,id=y", "virtio-blk: duplicate option 'id'" },
		{ "virtio-blk", NULL, "id=x,id=y,path=a", "virtio-blk: duplicate option 'id'" },
		{ "virtio-blk", "", "path=a",
		  "virtio-blk: invalid id '' (a letter, then letters, digits, '-' or '_'; "
		  "at most 31 bytes)" },
		{ "virtio-blk", "disk 1", "path=a",
		  "virtio-blk: invalid id 'disk 1' (a letter, then letters, digits, '-' or '_'; "
		  "at most 31 bytes)" },
		{ "virtio-blk", "abcdefghijklmnopqrstuvwxyz012345", "path=a",
		  "virtio-blk: invalid id 'abcdefghijklmnopqrstuvwxyz012345' (a letter, then "
		  "letters, digits, '-' or '_'; at most 31 bytes)" },
		{ "testdev", NULL, "port=0xf4", "testdev0: unknown option 'port' (id)" },
		{ "serial8250", NULL, NULL, "serial1: at most 1 serial8250 device" },
		{ "pci-host", "pci9", NULL, "pci9: at most 1 pci-host device" },
		{ "virtio-nic", NULL, NULL,
		  "unknown device type 'virtio-nic' (serial8250, acpi-pm, i8042, pci-host, testdev, "
		  "pci-testdev, virtio-blk, virtio-net)" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(add(bad[i].type, bad[i].id, bad[i].opts) == -EINVAL,
			      "case %zu accepted", i);
		ck_assert_str_eq(err, bad[i].msg);
		ck_assert_uint_eq(cfg.nr_devices, 4); /* nothing was added */
	}
}
END_TEST

/* The instance limit is a rule of the type, reported with the id. */
/* The error line of the builders and of device types' check hooks. */
START_TEST(test_error_line)
{
	char line[8] = "unset";

	ck_assert_int_eq(config_error(NULL, 0, "%s", "dropped"), -EINVAL);
	ck_assert_int_eq(config_error(line, 0, "%s", "dropped"), -EINVAL);
	ck_assert_str_eq(line, "unset");
	ck_assert_int_eq(config_error(line, sizeof(line), "net%u: %s", 1u, "mac"), -EINVAL);
	ck_assert_str_eq(line, "net1: m"); /* cut to fit */
}
END_TEST

START_TEST(test_disk_limit)
{
	for (unsigned i = 0; i < VIRTIO_BLK_MAX_DISKS; i++)
		ck_assert_int_eq(add("virtio-blk", NULL, "path=d.img"), 0);
	ck_assert_int_eq(add("virtio-blk", "last", "path=d.img"), -EINVAL);
	ck_assert_str_eq(err, "last: at most 16 virtio-blk devices");
	ck_assert_int_eq(add("testdev", NULL, NULL), 0);
	ck_assert_int_eq(add("testdev", NULL, NULL), -EINVAL);
	ck_assert_str_eq(err, "testdev1: at most 1 testdev device");
	ck_assert_uint_eq(cfg.nr_devices, 4 + VIRTIO_BLK_MAX_DISKS + 1);
	for (unsigned i = 0; i < VIRTIO_NET_MAX_DEVICES; i++)
		ck_assert_int_eq(add("virtio-net", NULL, NULL), 0);
	ck_assert_int_eq(add("virtio-net", NULL, NULL), -EINVAL);
	ck_assert_str_eq(err, "net8: at most 8 virtio-net devices");
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("model");

	tcase_add_checked_fixture(tc, cfg_setup, cfg_teardown);
	tcase_add_test(tc, test_init);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_set);
	tcase_add_test(tc, test_set_errors);
	tcase_add_test(tc, test_list_option);
	tcase_add_test(tc, test_net_params);
	tcase_add_test(tc, test_net_errors);
	tcase_add_test(tc, test_two_disks);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_add_errors);
	tcase_add_test(tc, test_disk_limit);
	tcase_add_test(tc, test_error_line);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
