/* Capstone, loaded on first use: kvisor only needs a decoder when a guest
 * hits an instruction the host cannot emulate, so a VM that never does
 * pays nothing for it (the library's relocated tables cost ~3 MiB of RSS). */
#ifndef KVISOR_PVM_CAPSTONE_DL_H
#define KVISOR_PVM_CAPSTONE_DL_H

#include <capstone/capstone.h>

struct capstone_api {
	cs_err (*open)(cs_arch arch, cs_mode mode, csh *handle);
	cs_err (*option)(csh handle, cs_opt_type type, size_t value);
	size_t (*disasm)(csh handle, const uint8_t *code, size_t size, uint64_t address,
			 size_t count, cs_insn **insn);
	void (*free)(cs_insn *insn, size_t count);
	cs_err (*close)(csh *handle);
};

/* The library's entry points, or NULL when it cannot be loaded (logged once). */
const struct capstone_api *capstone_api(void);

#endif
