/* Unit tests of command-line parsing: sizes, counts, choices, errors. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvisor/cli.h"
#include "kvisor/config.h"
#include "kvisor/log.h"

START_TEST(test_sizes)
{
	uint64_t v;

	ck_assert_int_eq(cli_parse_size("256M", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(cli_parse_size("256", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(cli_parse_size("1G", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 30);
	ck_assert_int_eq(cli_parse_size("2GiB", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(cli_parse_size("65536k", &v), 0);
	ck_assert_uint_eq(v, 64ULL << 20);
	ck_assert_int_eq(cli_parse_size("1T", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 40);
	ck_assert_int_eq(cli_parse_size("", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("abc", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("-1M", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("0", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("12X", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("1MM", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("99999999999999999999", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("17592186044416T", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size(NULL, &v), -EINVAL);
}
END_TEST

static int parse(struct vm_config *cfg, enum cli_command *cmd, int argc, char **argv)
{
	config_defaults(cfg);
	return cli_parse(argc, argv, cfg, cmd);
}

START_TEST(test_run_options)
{
	char *argv[] = { "kvisor", "run", "--kernel", "k", "--initrd", "i", "--mem", "1G", "--cpus",
			 "4", "--cmdline", "quiet", "--on-reboot", "restart", "--pvm-compat", "off",
			 "--kernel-unpack", "off", "--testdev", "--console-log", "log" };
	struct vm_config cfg;
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cfg, &cmd, 21, argv), 0);
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
	ck_assert(cfg.testdev);
}
END_TEST

START_TEST(test_defaults)
{
	char *argv[] = { "kvisor", "run", "--kernel=k" };
	struct vm_config cfg;
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cfg, &cmd, 3, argv), 0);
	ck_assert_uint_eq(cfg.mem_size, CONFIG_DEFAULT_MEM);
	ck_assert_uint_eq(cfg.cpus, 1);
	ck_assert_ptr_null(cfg.cmdline);
	ck_assert_int_eq(cfg.pvm_compat, CONFIG_AUTO);
	ck_assert(cfg.kernel_unpack);
	ck_assert(!cfg.testdev);
}
END_TEST

START_TEST(test_errors)
{
	static char *bad[][4] = {
		{ "kvisor", "run", "--bogus", NULL },
		{ "kvisor", "run", "--mem", "1K" },
		{ "kvisor", "run", "--mem", "abc" },
		{ "kvisor", "run", "--mem", "16387K" },
		{ "kvisor", "run", "--cpus", "0" },
		{ "kvisor", "run", "--cpus", "x" },
		{ "kvisor", "run", "--on-reboot", "maybe" },
		{ "kvisor", "run", "--pvm-compat", "yes" },
		{ "kvisor", "run", "--kernel", NULL },
		{ "kvisor", "fly", NULL, NULL },
		{ "kvisor", "run", "extra", NULL },
		{ "kvisor", "run", NULL, NULL },
	};
	struct vm_config cfg;
	enum cli_command cmd;

	log_threshold = -1; /* keep the expected error lines out of the test log */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int argc = 0;

		while (argc < 4 && bad[i][argc])
			argc++;
		ck_assert_msg(parse(&cfg, &cmd, argc, bad[i]) == -EINVAL, "case %zu accepted", i);
	}
	ck_assert_int_eq(parse(&cfg, &cmd, 1, bad[0]), -EINVAL);
}
END_TEST

START_TEST(test_help_version)
{
	char *h[] = { "kvisor", "--help" }, *v[] = { "kvisor", "--version" };
	char *rh[] = { "kvisor", "run", "--help" };
	struct vm_config cfg;
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cfg, &cmd, 2, h), 0);
	ck_assert_int_eq(cmd, CLI_HELP);
	ck_assert_int_eq(parse(&cfg, &cmd, 2, v), 0);
	ck_assert_int_eq(cmd, CLI_VERSION);
	ck_assert_int_eq(parse(&cfg, &cmd, 3, rh), 0);
	ck_assert_int_eq(cmd, CLI_HELP);
}
END_TEST

START_TEST(test_disks)
{
	char *argv[] = { "kvisor", "run", "--kernel", "k", "--disk", "a.img", "--disk",
			 "/b/c.raw,readonly=on,serial=SER-0123456789abcdef,cache=none",
			 "--disk", "d.img,cache=writeback,readonly=off,serial=" };
	struct vm_config cfg;
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cfg, &cmd, 10, argv), 0);
	ck_assert_uint_eq(cfg.nr_disks, 3);
	ck_assert_str_eq(cfg.disks[0].path, "a.img");
	ck_assert(!cfg.disks[0].readonly);
	ck_assert_int_eq(cfg.disks[0].cache, CONFIG_CACHE_WRITEBACK);
	ck_assert_str_eq(cfg.disks[0].serial, "");
	ck_assert_str_eq(cfg.disks[1].path, "/b/c.raw");
	ck_assert(cfg.disks[1].readonly);
	ck_assert_int_eq(cfg.disks[1].cache, CONFIG_CACHE_NONE);
	ck_assert_str_eq(cfg.disks[1].serial, "SER-0123456789abcdef"); /* exactly 20 bytes */
	ck_assert_str_eq(cfg.disks[2].path, "d.img");
	ck_assert(!cfg.disks[2].readonly);
	ck_assert_int_eq(cfg.disks[2].cache, CONFIG_CACHE_WRITEBACK);
	ck_assert_str_eq(cfg.disks[2].serial, "");
}
END_TEST

/* Parse "kvisor run --kernel k (opt) (spec)": the result and the one
 * line printed on stderr, into (msg). */
static int parse_opt(const char *opt, const char *spec, char *msg, size_t cap)
{
	char *argv[] = { "kvisor", "run", "--kernel", "k", (char *)opt, (char *)spec };
	struct vm_config cfg;
	enum cli_command cmd;
	FILE *f = tmpfile();
	int saved = dup(2), ret;
	ssize_t n;

	ck_assert_ptr_nonnull(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	ret = parse(&cfg, &cmd, 6, argv);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fileno(f), msg, cap - 1, 0);
	msg[n > 0 ? n : 0] = '\0';
	fclose(f);
	return ret;
}

START_TEST(test_disk_errors)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "x.img,readonly=yes", "kvisor: --disk x.img: invalid readonly 'yes' (off or on)\n" },
		{ "x.img,cache=unsafe", "kvisor: --disk x.img: invalid cache 'unsafe' (writeback or none)\n" },
		{ "x.img,serial=123456789012345678901",
		  "kvisor: --disk x.img: serial '123456789012345678901' is longer than 20 bytes\n" },
		{ "x.img,format=raw",
		  "kvisor: --disk x.img: unknown option 'format' (readonly, serial, cache)\n" },
		{ "x.img,readonly", "kvisor: --disk x.img: 'readonly' is not KEY=VALUE\n" },
		{ "x.img,", "kvisor: --disk x.img: '' is not KEY=VALUE\n" },
		{ ",readonly=on", "kvisor: --disk ',readonly=on': PATH is missing\n" },
		{ "", "kvisor: --disk '': PATH is missing\n" },
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
	char *argv[4 + 2 * (CONFIG_MAX_DISKS + 1)];
	struct vm_config cfg;
	enum cli_command cmd;
	int argc = 0;

	argv[argc++] = "kvisor";
	argv[argc++] = "run";
	argv[argc++] = "--kernel";
	argv[argc++] = "k";
	for (int i = 0; i < CONFIG_MAX_DISKS; i++) {
		argv[argc++] = "--disk";
		argv[argc++] = "d.img";
	}
	ck_assert_int_eq(parse(&cfg, &cmd, argc, argv), 0);
	ck_assert_uint_eq(cfg.nr_disks, CONFIG_MAX_DISKS);
	argv[argc++] = "--disk";
	argv[argc++] = "one-too-many.img";
	log_threshold = -1;
	ck_assert_int_eq(parse(&cfg, &cmd, argc, argv), -EINVAL);
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
	struct vm_config cfg;
	enum cli_command cmd;

	ck_assert_int_eq(parse(&cfg, &cmd, 4, argv), 0);
	ck_assert_str_eq(cfg.profile, ""); /* off by default */
	ck_assert_uint_eq(cfg.profile_hz, CONFIG_PROFILE_HZ_DEFAULT);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		argv[5] = (char *)good[i].spec;
		ck_assert_msg(parse(&cfg, &cmd, 6, argv) == 0, "'%s' refused", good[i].spec);
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

	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_run_options);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_help_version);
	tcase_add_test(tc, test_disks);
	tcase_add_test(tc, test_disk_errors);
	tcase_add_test(tc, test_disk_limit);
	tcase_add_test(tc, test_profile);
	tcase_add_test(tc, test_profile_errors);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
