/* Command-line parsing for `kvisor run` and friends. */
#ifndef KVISOR_CLI_H
#define KVISOR_CLI_H

struct vm_config;

enum cli_command { CLI_RUN = 1, CLI_HELP, CLI_VERSION };

/* Parse argv into the VM description (cfg) (from config_init) and *cmd:
 * --disk, --net and --testdev add device instances, the machine options are set
 * through config_set. On error prints one line "kvisor: ..." to stderr and
 * returns -EINVAL (or -ENOMEM). */
int cli_parse(int argc, char **argv, struct vm_config *cfg, enum cli_command *cmd)
	__attribute__((warn_unused_result));

/* The usage text. */
extern const char cli_usage[];

#endif
