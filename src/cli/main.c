/* kvisor entry point: parse the command line, run the VM (src/vmm) and
 * report its exit status. */
#include <malloc.h>
#include <stdio.h>

#include "kvisor/cli.h"
#include "kvisor/config.h"
#include "kvisor/log.h"
#include "kvisor/vmm.h"

#define KVISOR_VERSION "0.1.0"
#define EXIT_USAGE     2

int main(int argc, char **argv)
{
	struct vm_config cfg;
	enum cli_command cmd = CLI_RUN;
	int status = 0;

	/* Big buffers (kernel images, decompressed payloads) live only while the
	 * VM is built: keep them in mmap()s that free() returns to the system,
	 * instead of letting glibc raise its threshold and keep them in the heap. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (config_init(&cfg)) {
		log_err("out of memory");
		return EXIT_USAGE;
	}
	if (cli_parse(argc, argv, &cfg, &cmd))
		goto out_usage;
	if (cmd == CLI_HELP || cmd == CLI_VERSION) {
		if (cmd == CLI_HELP)
			fputs(cli_usage, stdout);
		else
			printf("kvisor %s\n", KVISOR_VERSION);
		config_free(&cfg);
		return 0;
	}
	/* Bad input found while building the VM (kernel, initrd, /dev/kvm,
	 * --cpus beyond KVM's limit) is a usage error too. */
	if (vmm_run(&cfg, &status))
		goto out_usage;
	config_free(&cfg);
	return status;
out_usage:
	config_free(&cfg);
	return EXIT_USAGE;
}
