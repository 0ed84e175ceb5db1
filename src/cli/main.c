/* kvisor entry point: parse the command line, run the VM (src/vmm) and
 * report its exit status. */
#include <malloc.h>
#include <stdio.h>

#include "kvisor/cli.h"
#include "kvisor/config.h"
#include "kvisor/vmm.h"

#define KVISOR_VERSION "0.1.0"
#define EXIT_USAGE 2

int main(int argc, char **argv)
{
	struct vm_config cfg;
	enum cli_command cmd = CLI_RUN;
	int status = 0;

	/* Big buffers (kernel images, decompressed payloads) live only while the
	 * VM is built: keep them in mmap()s that free() returns to the system,
	 * instead of letting glibc raise its threshold and keep them in the heap. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	config_defaults(&cfg);
	if (cli_parse(argc, argv, &cfg, &cmd))
		return EXIT_USAGE;
	if (cmd == CLI_HELP) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (cmd == CLI_VERSION) {
		printf("kvisor %s\n", KVISOR_VERSION);
		return 0;
	}
	/* Bad input found while building the VM (kernel, initrd, /dev/kvm,
	 * --cpus beyond KVM's limit) is a usage error too. */
	if (vmm_run(&cfg, &status))
		return EXIT_USAGE;
	return status;
}
