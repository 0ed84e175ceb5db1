/* Command-line parsing for `kvisor run` and friends. */
#ifndef KVISOR_CLI_H
#define KVISOR_CLI_H

#include <stdint.h>

struct vm_config;

enum cli_command { CLI_RUN = 1, CLI_HELP, CLI_VERSION };

/* Parse a memory size: a whole number with an optional K, M, G or T suffix
 * (powers of 1024; a bare number means MiB, like QEMU's -m). 0 or -EINVAL
 * (malformed, zero, overflow). */
int cli_parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));

/* Parse argv into (cfg) (which holds the defaults) and *cmd. On error prints
 * one line "kvisor: ..." to stderr and returns -EINVAL. */
int cli_parse(int argc, char **argv, struct vm_config *cfg, enum cli_command *cmd)
	__attribute__((warn_unused_result));

/* The usage text. */
extern const char cli_usage[];

#endif
