/* Lazy loading of the Capstone decoder (see capstone_dl.h). */
#include <dlfcn.h>
#include <pthread.h>

#include "capstone_dl.h"
#include "kvisor/log.h"

#define CAPSTONE_SONAME "libcapstone.so.4"

static struct capstone_api capstone;
static const struct capstone_api *capstone_loaded;
static pthread_once_t capstone_once = PTHREAD_ONCE_INIT;

static void capstone_load(void)
{
	void *h = dlopen(CAPSTONE_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		log_err("cannot load the instruction decoder: %s", dlerror());
		return;
	}
	/* POSIX: a dlsym result converts to a function pointer. */
	*(void **)&capstone.open = dlsym(h, "cs_open");
	*(void **)&capstone.option = dlsym(h, "cs_option");
	*(void **)&capstone.disasm = dlsym(h, "cs_disasm");
	*(void **)&capstone.free = dlsym(h, "cs_free");
	*(void **)&capstone.close = dlsym(h, "cs_close");
	if (!capstone.open || !capstone.option || !capstone.disasm || !capstone.free ||
	    !capstone.close) {
		log_err("%s: missing cs_* entry points", CAPSTONE_SONAME);
		dlclose(h);
		return;
	}
	capstone_loaded = &capstone;
}

const struct capstone_api *capstone_api(void)
{
	pthread_once(&capstone_once, capstone_load);
	return capstone_loaded;
}
