/* Test port protocol between firmware test guests and kvisor (--testdev).
 * Shared by the VMM and the freestanding firmware; no host headers. */
#ifndef KVISOR_TESTDEV_H
#define KVISOR_TESTDEV_H

/* A guest reports by writing, with a 32-bit OUT to LAYOUT_TESTDEV_PORT, the
 * guest-physical address of a struct testdev_msg (below 4 GiB). kvisor reads
 * the message through the checked translator; strings are bounded. */
#define TESTDEV_MAGIC 0x4b565354u /* "TSVK" */

enum testdev_type {
	TESTDEV_SYNC = 1,  /* progress mark: prints "testdev: SYNC <arg> <msg>" */
	TESTDEV_DONE = 2,  /* success: prints "testdev: DONE", VM exits 0 */
	TESTDEV_FAIL = 3,  /* failure: prints "testdev: FAIL file:line: msg", exit 1 */
	TESTDEV_PRINT = 4, /* prints "testdev: <msg>" */
};

struct testdev_msg {
	unsigned int magic;
	unsigned int type;
	unsigned int line;
	unsigned int reserved;
	unsigned long long arg;
	unsigned long long file_gpa; /* NUL-terminated, at most 256 bytes; 0 = none */
	unsigned long long msg_gpa;  /* NUL-terminated, at most 256 bytes; 0 = none */
};

#define TESTDEV_STR_MAX 256

/* MMIO window at LAYOUT_TESTDEV_MMIO_GPA: offset 0 is a 64-bit scratch
 * register (reads return the last value written, any width 1/2/4/8);
 * offset 8 reads the number of MMIO accesses so far (32-bit); other offsets
 * read all-ones and ignore writes. */
#define TESTDEV_MMIO_SCRATCH 0x0
#define TESTDEV_MMIO_COUNT   0x8

#endif
