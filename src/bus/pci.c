/* PCI bus 0: configuration space through ports 0xCF8/0xCFC and ECAM, the
 * host bridge, BAR placement and moves, capability lists, registration.
 * Config accesses are on the guest's boot path: an array index and one
 * device lock, no allocation. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/bus.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/vm.h"
#include "pci_priv.h"

#define PCI_CONF1_ENABLE   0x80000000u
#define PCI_CONF1_MASK     0x80fffffcu /* enable, bus, device, function, register */
#define PCI_BAR_IO_FLAG    0x1u
#define PCI_BAR_MEM64_FLAG 0x4u
#define PCI_BAR_PREF_FLAG  0x8u
#define PCI_BAR_UPPER      0x100u /* bars[] flag: the upper half of a 64-bit BAR */
#define PCI_ECAM_BUS_SHIFT 20
#define PCI_ECAM_DEV_SHIFT 15
#define PCI_ECAM_FN_SHIFT  12
#define PCI_BAR_REG(i)     (PCI_CFG_BAR0 + 4 * (i))

struct pci_bus {
	/* Filled before the vCPUs start, emptied after they stop; read by the
	 * config fast path without a lock (acquire/release for the pointer). */
	struct pci_device *slots[PCI_SLOTS];
	uint32_t conf1_addr;  /* the 0xCF8 latch, one per machine as in hardware */
	pthread_mutex_t lock; /* registration and the address windows */
	uint64_t next_mmio;
	uint64_t next_io;
	struct pci_device host;
};

static struct log_ratelimit pci_bar_rl, pci_ecam_rl;

uint32_t pci_cfg_get(const struct pci_device *dev, unsigned off, unsigned len)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < len && off + i < PCI_CFG_SIZE; i++)
		v |= (uint32_t)dev->cfg[off + i] << (8 * i);
	return v;
}

void pci_cfg_set(struct pci_device *dev, unsigned off, unsigned len, uint32_t val)
{
	for (unsigned i = 0; i < len && off + i < PCI_CFG_SIZE; i++)
		dev->cfg[off + i] = (uint8_t)(val >> (8 * i));
}

static void pci_wmask_set(struct pci_device *dev, unsigned off, unsigned len, uint32_t mask)
{
	for (unsigned i = 0; i < len; i++)
		dev->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

int pci_device_init(struct pci_device *dev, const char *name, const struct pci_device_info *info)
{
	int ret;

	memset(dev, 0, sizeof(*dev));
	ret = -pthread_mutex_init(&dev->lock, NULL);
	if (ret)
		return ret;
	dev->name = name;
	dev->cap_end = PCI_CFG_CAP_START;
	pci_cfg_set(dev, PCI_CFG_VENDOR_ID, 2, info->vendor_id);
	pci_cfg_set(dev, PCI_CFG_DEVICE_ID, 2, info->device_id);
	pci_cfg_set(dev, PCI_CFG_REVISION, 1, info->revision);
	pci_cfg_set(dev, PCI_CFG_CLASS, 3, info->class_code);
	pci_cfg_set(dev, PCI_CFG_SUBSYS_VENDOR, 2, info->subsys_vendor_id);
	pci_cfg_set(dev, PCI_CFG_SUBSYS_ID, 2, info->subsys_id);
	/* Header type 0, single function; no ROM, no INTx pin. */
	pci_wmask_set(dev, PCI_CFG_COMMAND, 2,
		      PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_BUS_MASTER | PCI_CMD_INTX_DISABLE);
	dev->w1c[PCI_CFG_STATUS] = PCI_STATUS_W1C & 0xff;
	dev->w1c[PCI_CFG_STATUS + 1] = PCI_STATUS_W1C >> 8;
	dev->wmask[PCI_CFG_CACHE_LINE] = 0xff;
	dev->wmask[PCI_CFG_INT_LINE] = 0xff;
	return 0;
}

int pci_bar_add(struct pci_device *dev, unsigned idx, uint64_t size, unsigned flags,
		const struct bus_ops *ops, void *opaque)
{
	bool io = flags & PCI_BAR_IO, mem64 = flags & PCI_BAR_MEM64;
	uint64_t mask = ~(size - 1);
	uint32_t low;

	if (dev->registered)
		return -EBUSY;
	if (idx >= PCI_NR_BARS || (mem64 && idx + 1 >= PCI_NR_BARS) || !ops ||
	    (flags & ~(PCI_BAR_IO | PCI_BAR_MEM64 | PCI_BAR_PREFETCH)) ||
	    (io && (flags & (PCI_BAR_MEM64 | PCI_BAR_PREFETCH))))
		return -EINVAL;
	if (size & (size - 1) || size < (io ? 4 : 16) || (io && size > 256) ||
	    (!io && !mem64 && size > (1ULL << 31)) || (mem64 && size > (1ULL << 63)))
		return -EINVAL;
	if (dev->bars[idx].size || (dev->bars[idx].flags & PCI_BAR_UPPER) ||
	    (mem64 && (dev->bars[idx + 1].size || (dev->bars[idx + 1].flags & PCI_BAR_UPPER))))
		return -EEXIST;
	dev->bars[idx] = (struct pci_bar){
		.size = size,
		.flags = flags,
		.ops = ops,
		.opaque = opaque,
	};
	/* The low bits say what the BAR is; the address bits below the size
	 * stay zero, which is how the guest sizes it (write all-ones, read back). */
	if (io) {
		low = PCI_BAR_IO_FLAG;
		pci_wmask_set(dev, PCI_BAR_REG(idx), 4, (uint32_t)mask & ~0x3u);
	} else {
		low = (mem64 ? PCI_BAR_MEM64_FLAG : 0) |
		      (flags & PCI_BAR_PREFETCH ? PCI_BAR_PREF_FLAG : 0);
		pci_wmask_set(dev, PCI_BAR_REG(idx), 4, (uint32_t)mask & ~0xfu);
	}
	pci_cfg_set(dev, PCI_BAR_REG(idx), 4, low);
	if (mem64) {
		dev->bars[idx + 1].flags = PCI_BAR_UPPER;
		pci_wmask_set(dev, PCI_BAR_REG(idx + 1), 4, (uint32_t)(mask >> 32));
	}
	return 0;
}

int pci_cap_add(struct pci_device *dev, const void *cap, unsigned len, const uint8_t *wmask)
{
	const uint8_t *c = cap;
	unsigned off = (dev->cap_end + 3u) & ~3u;

	if (dev->registered)
		return -EBUSY;
	if (len < 2)
		return -EINVAL;
	if (len > PCI_STD_CFG_SIZE - off)
		return -ENOSPC;
	memcpy(&dev->cfg[off], c, len);
	dev->cfg[off + 1] = 0; /* end of the list */
	if (wmask)
		memcpy(&dev->wmask[off], wmask, len);
	dev->wmask[off] = dev->wmask[off + 1] = 0;
	if (dev->last_cap)
		dev->cfg[dev->last_cap + 1] = (uint8_t)off;
	else
		dev->cfg[PCI_CFG_CAP_PTR] = (uint8_t)off;
	dev->cfg[PCI_CFG_STATUS] |= PCI_STATUS_CAP_LIST;
	dev->last_cap = (uint16_t)off;
	dev->cap_end = (uint16_t)(off + len);
	return (int)off;
}

/* Where BAR (i) should be decoded, from the command register and its
 * address; false when it should not be (dev->lock held). */
static bool pci_bar_wanted(const struct pci_device *dev, unsigned i, uint64_t *addr)
{
	const struct pci_bar *bar = &dev->bars[i];
	uint32_t cmd = pci_cfg_get(dev, PCI_CFG_COMMAND, 2);
	uint64_t a, last;

	if (!bar->size)
		return false;
	if (bar->flags & PCI_BAR_IO) {
		a = pci_cfg_get(dev, PCI_BAR_REG(i), 4) & ~0x3u;
		if (!(cmd & PCI_CMD_IO) || a + bar->size > PCI_IO_END)
			return false;
	} else {
		a = pci_cfg_get(dev, PCI_BAR_REG(i), 4) & ~0xfu;
		if (bar->flags & PCI_BAR_MEM64)
			a |= (uint64_t)pci_cfg_get(dev, PCI_BAR_REG(i + 1), 4) << 32;
		if (!(cmd & PCI_CMD_MEM) || __builtin_add_overflow(a, bar->size - 1, &last))
			return false;
	}
	/* Address 0 is what firmware leaves unassigned (and is RAM or legacy ports). */
	*addr = a;
	return a != 0;
}

static struct bus *pci_bar_bus(const struct pci_device *dev, unsigned i)
{
	return dev->bars[i].flags & PCI_BAR_IO ? &dev->vm->pio : &dev->vm->mmio;
}

/* Drop BAR (i) from its bus and tell the device (dev->lock held). */
static void pci_bar_unmap(struct pci_device *dev, unsigned i)
{
	struct pci_bar *bar = &dev->bars[i];

	bus_unregister(pci_bar_bus(dev, i), bar->mapped_addr, bar->opaque);
	bar->mapped = false;
	if (dev->ops && dev->ops->bar_mapped)
		dev->ops->bar_mapped(dev, i, false, bar->mapped_addr);
}

static void pci_bar_log_refused(const struct pci_device *dev, unsigned i, uint64_t addr, int err)
{
	const struct pci_bar *bar = &dev->bars[i];

	log_ratelimited(&pci_bar_rl, LOG_WARN,
			PCI_DEV_FMT ": BAR%u %s 0x%" PRIx64 "-0x%" PRIx64 ": %s, left unmapped",
			PCI_DEV_ARGS(dev), i, bar->flags & PCI_BAR_IO ? "io" : "mem", addr,
			addr + bar->size - 1,
			err == -EEXIST ? "overlaps another range" : strerror(-err));
}

/* Make every BAR's bus registration follow the config space: first drop
 * those that moved or stopped decoding, then map the rest, so a BAR can
 * take an address another BAR of the device just left. A range someone
 * else holds leaves the BAR unmapped, logged once per address; the guest
 * can move it again (dev->lock held; the bus lock is not, see bus_access). */
static void pci_bars_update(struct pci_device *dev)
{
	uint64_t want[PCI_NR_BARS];
	bool on[PCI_NR_BARS];

	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *bar = &dev->bars[i];

		on[i] = pci_bar_wanted(dev, i, &want[i]);
		if (bar->mapped && (!on[i] || want[i] != bar->mapped_addr))
			pci_bar_unmap(dev, i);
	}
	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *bar = &dev->bars[i];
		int ret;

		if (!on[i] || bar->mapped)
			continue;
		ret = bus_register(pci_bar_bus(dev, i), want[i], bar->size, bar->ops, bar->opaque);
		if (!ret) {
			bar->mapped = true;
			bar->mapped_addr = want[i];
			bar->failed_addr = 0;
			if (dev->ops && dev->ops->bar_mapped)
				dev->ops->bar_mapped(dev, i, true, want[i]);
			continue;
		}
		if (bar->failed_addr != want[i])
			pci_bar_log_refused(dev, i, want[i], ret);
		bar->failed_addr = want[i];
	}
}

bool pci_bar_mapped(struct pci_device *dev, unsigned idx, uint64_t *addr)
{
	bool mapped;

	if (idx >= PCI_NR_BARS)
		return false;
	pthread_mutex_lock(&dev->lock);
	mapped = dev->bars[idx].mapped;
	if (mapped && addr)
		*addr = dev->bars[idx].mapped_addr;
	pthread_mutex_unlock(&dev->lock);
	return mapped;
}

static bool pci_overlaps(uint32_t reg, uint32_t len, uint32_t start, uint32_t n)
{
	return reg < start + n && start < reg + len;
}

/* One config access to a present device: (reg & 3) + len <= 4, so it stays
 * inside one dword and inside the 4 KiB space. */
static void pci_cfg_access(struct pci_device *dev, uint32_t reg, void *data, uint32_t len,
			   bool is_write)
{
	const uint8_t *in = data;
	uint32_t old_cmd, cmd;

	pthread_mutex_lock(&dev->lock);
	if (!is_write) {
		if (dev->ops && dev->ops->cfg_read && reg + len > PCI_CFG_CAP_START)
			dev->ops->cfg_read(dev, reg, len);
		memcpy(data, &dev->cfg[reg], len);
		pthread_mutex_unlock(&dev->lock);
		return;
	}
	old_cmd = pci_cfg_get(dev, PCI_CFG_COMMAND, 2);
	for (uint32_t i = 0; i < len; i++) {
		uint32_t r = reg + i;
		uint8_t b = (uint8_t)((dev->cfg[r] & ~dev->wmask[r]) | (in[i] & dev->wmask[r]));

		if (r < PCI_STD_CFG_SIZE)
			b &= (uint8_t) ~(in[i] & dev->w1c[r]);
		dev->cfg[r] = b;
	}
	cmd = pci_cfg_get(dev, PCI_CFG_COMMAND, 2);
	if ((cmd ^ old_cmd) & (PCI_CMD_IO | PCI_CMD_MEM) ||
	    pci_overlaps(reg, len, PCI_CFG_BAR0, 4 * PCI_NR_BARS))
		pci_bars_update(dev);
	if (dev->msix && ((cmd ^ old_cmd) & PCI_CMD_BUS_MASTER ||
			  pci_overlaps(reg, len, dev->msix_cap + PCI_MSIX_CTRL, 2)))
		pci_msix_update(dev);
	if (dev->ops && dev->ops->cfg_write && reg + len > PCI_CFG_CAP_START)
		dev->ops->cfg_write(dev, reg, len);
	pthread_mutex_unlock(&dev->lock);
}

static struct pci_device *pci_lookup(struct pci_bus *b, unsigned bus, unsigned slot, unsigned fn)
{
	if (bus != 0 || fn != 0 || slot >= PCI_SLOTS)
		return NULL;
	return __atomic_load_n(&b->slots[slot], __ATOMIC_ACQUIRE);
}

/* Ports 0xCF8-0xCFF: the address latch (dword accesses only) and the data
 * window onto the dword it selects. Absent functions read all-ones. */
static void pci_conf1_rw(struct pci_bus *b, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct pci_device *dev = NULL;
	uint32_t a;

	if (off < 4) {
		if (off != 0 || len != 4) {
			/* Byte writes to 0xCF9/0xCFB (reset control, type-1 probing) go nowhere. */
			if (!is_write)
				memset(data, 0xff, len);
		} else if (is_write) {
			memcpy(&a, data, 4);
			__atomic_store_n(&b->conf1_addr, a & PCI_CONF1_MASK, __ATOMIC_RELAXED);
		} else {
			a = __atomic_load_n(&b->conf1_addr, __ATOMIC_RELAXED);
			memcpy(data, &a, 4);
		}
		return;
	}
	/* bus_access keeps the access inside 0xCF8-0xCFF: off - 4 + len <= 4. */
	a = __atomic_load_n(&b->conf1_addr, __ATOMIC_RELAXED);
	if (a & PCI_CONF1_ENABLE)
		dev = pci_lookup(b, (a >> 16) & 0xff, (a >> 11) & 0x1f, (a >> 8) & 0x7);
	if (dev)
		pci_cfg_access(dev, (a & 0xfc) | (uint32_t)(off - 4), data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
}

static void pci_conf1_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	pci_conf1_rw(opaque, off, data, len, false);
}

static void pci_conf1_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	pci_conf1_rw(opaque, off, (void *)data, len, true);
}

static const struct bus_ops pci_conf1_ops = { .read = pci_conf1_read, .write = pci_conf1_write };

/* ECAM: bus << 20 | device << 15 | function << 12 | register. An access
 * must stay inside one dword; an aligned 8-byte access is split in two, as
 * a root complex does; anything else reads all-ones and writes nothing. */
static void pci_ecam_rw(struct pci_bus *b, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	unsigned bus = (unsigned)(off >> PCI_ECAM_BUS_SHIFT);
	unsigned slot = (off >> PCI_ECAM_DEV_SHIFT) & 0x1f, fn = (off >> PCI_ECAM_FN_SHIFT) & 0x7;
	struct pci_device *dev;

	if (len == 8 && (off & 7) == 0) {
		pci_ecam_rw(b, off, data, 4, is_write);
		pci_ecam_rw(b, off + 4, data + 4, 4, is_write);
		return;
	}
	if (len > 4 || (off & 3) + len > 4) {
		log_ratelimited(&pci_ecam_rl, LOG_DEBUG,
				"pci: ECAM %s of %u bytes at +0x%" PRIx64
				" crosses a dword: ignored",
				is_write ? "write" : "read", len, off);
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	dev = pci_lookup(b, bus, slot, fn);
	if (dev)
		pci_cfg_access(dev, (uint32_t)(off & (PCI_CFG_SIZE - 1)), data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
}

static void pci_ecam_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	pci_ecam_rw(opaque, off, data, len, false);
}

static void pci_ecam_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	pci_ecam_rw(opaque, off, (void *)data, len, true);
}

static const struct bus_ops pci_ecam_ops = { .read = pci_ecam_read, .write = pci_ecam_write };

/* Place (dev)'s BARs the way firmware would: each naturally aligned, memory
 * BARs (64-bit ones too) in the 32-bit window the DSDT's PCI0 _CRS
 * announces, I/O BARs from PCI_IO_BASE. Writes the addresses into the
 * config space and returns the window tops in (*mmio, *io); -ENOSPC. */
static int pci_assign_bars(struct pci_device *dev, uint64_t *mmio, uint64_t *io)
{
	uint16_t cmd = 0;

	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		const struct pci_bar *bar = &dev->bars[i];
		bool is_io = bar->flags & PCI_BAR_IO;
		uint64_t *next = is_io ? io : mmio;
		uint64_t start = is_io ? PCI_IO_BASE : LAYOUT_PCI_MMIO32_GPA;
		uint64_t end = is_io ? PCI_IO_END : LAYOUT_PCI_MMIO32_END;
		uint32_t low = pci_cfg_get(dev, PCI_BAR_REG(i), 4) & (is_io ? 0x3 : 0xf);
		uint64_t a;

		if (!bar->size)
			continue;
		a = (*next + bar->size - 1) & ~(bar->size - 1);
		if (bar->size > end - start || a > end - bar->size) {
			log_err(PCI_DEV_FMT ": no room for BAR%u (%s, 0x%" PRIx64 " bytes)",
				PCI_DEV_ARGS(dev), i, is_io ? "io" : "mem", bar->size);
			return -ENOSPC;
		}
		*next = a + bar->size;
		pci_cfg_set(dev, PCI_BAR_REG(i), 4, (uint32_t)a | low);
		if (bar->flags & PCI_BAR_MEM64)
			pci_cfg_set(dev, PCI_BAR_REG(i + 1), 4, (uint32_t)(a >> 32));
		cmd |= is_io ? PCI_CMD_IO : PCI_CMD_MEM;
	}
	/* Decoding on, as firmware leaves it; bus mastering is the driver's call. */
	pci_cfg_set(dev, PCI_CFG_COMMAND, 2, pci_cfg_get(dev, PCI_CFG_COMMAND, 2) | cmd);
	return 0;
}

static void pci_log_device(const struct pci_device *dev)
{
	log_debug(PCI_DEV_FMT ": [%04x:%04x] class 0x%06x", PCI_DEV_ARGS(dev),
		  pci_cfg_get(dev, PCI_CFG_VENDOR_ID, 2), pci_cfg_get(dev, PCI_CFG_DEVICE_ID, 2),
		  pci_cfg_get(dev, PCI_CFG_CLASS, 3));
	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		const struct pci_bar *bar = &dev->bars[i];

		if (bar->size)
			log_debug(PCI_DEV_FMT ": BAR%u %s at 0x%" PRIx64 ", 0x%" PRIx64 " bytes%s",
				  PCI_DEV_ARGS(dev), i, bar->flags & PCI_BAR_IO ? "io" : "mem",
				  bar->mapped_addr, bar->size, bar->mapped ? "" : " (unmapped)");
	}
}

int pci_register_device(struct vm *vm, struct pci_device *dev)
{
	struct pci_bus *b = vm->pci;
	uint64_t mmio, io;
	unsigned slot;
	int ret;

	pthread_mutex_lock(&b->lock);
	ret = -EBUSY;
	if (dev->registered)
		goto out;
	/* 00:00.0 is the host bridge's. */
	for (slot = dev == &b->host ? 0 : 1; slot < PCI_SLOTS && b->slots[slot]; slot++)
		;
	ret = -ENOSPC;
	if (slot == PCI_SLOTS || (dev == &b->host) != (slot == 0)) {
		log_err("pci: no free slot on bus 0 for %s", dev->name);
		goto out;
	}
	dev->vm = vm;
	dev->slot = slot;
	mmio = b->next_mmio;
	io = b->next_io;
	ret = pci_assign_bars(dev, &mmio, &io);
	if (ret)
		goto out;
	if (dev->msix) {
		ret = pci_msix_attach(dev);
		if (ret)
			goto out;
	}
	b->next_mmio = mmio;
	b->next_io = io;
	pthread_mutex_lock(&dev->lock);
	pci_bars_update(dev);
	pthread_mutex_unlock(&dev->lock);
	dev->registered = true;
	__atomic_store_n(&b->slots[slot], dev, __ATOMIC_RELEASE);
	pci_log_device(dev);
out:
	pthread_mutex_unlock(&b->lock);
	return ret;
}

void pci_unregister_device(struct vm *vm, struct pci_device *dev)
{
	if (dev->registered) {
		pthread_mutex_lock(&vm->pci->lock);
		__atomic_store_n(&vm->pci->slots[dev->slot], NULL, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&vm->pci->lock);
		pthread_mutex_lock(&dev->lock);
		for (unsigned i = 0; i < PCI_NR_BARS; i++) {
			if (dev->bars[i].mapped)
				pci_bar_unmap(dev, i);
		}
		pthread_mutex_unlock(&dev->lock);
		dev->registered = false;
	}
	pci_msix_release(dev);
	pthread_mutex_destroy(&dev->lock);
}

int pci_init(struct vm *vm)
{
	static const struct pci_device_info host_info = {
		.vendor_id = PCI_HOST_VENDOR_ID,
		.device_id = PCI_HOST_DEVICE_ID,
		.class_code = PCI_CLASS_HOST_BRIDGE,
	};
	struct pci_bus *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return -ENOMEM;
	ret = -pthread_mutex_init(&b->lock, NULL);
	if (ret) {
		free(b);
		return ret;
	}
	b->next_mmio = LAYOUT_PCI_MMIO32_GPA;
	b->next_io = PCI_IO_BASE;
	vm->pci = b;
	ret = pci_device_init(&b->host, "host-bridge", &host_info);
	if (ret)
		return ret;
	ret = bus_register(&vm->pio, PCI_CONF1_ADDR_PORT, 8, &pci_conf1_ops, b);
	if (!ret)
		ret = bus_register(&vm->mmio, LAYOUT_PCI_ECAM_GPA, LAYOUT_PCI_ECAM_SIZE,
				   &pci_ecam_ops, b);
	if (!ret)
		ret = pci_register_device(vm, &b->host);
	if (ret)
		log_err("pci: cannot set up bus 0: %s", strerror(-ret));
	return ret;
}

void pci_destroy(struct vm *vm)
{
	struct pci_bus *b = vm->pci;

	if (!b)
		return;
	pci_unregister_device(vm, &b->host);
	bus_unregister(&vm->mmio, LAYOUT_PCI_ECAM_GPA, b);
	bus_unregister(&vm->pio, PCI_CONF1_ADDR_PORT, b);
	pthread_mutex_destroy(&b->lock);
	free(b);
	vm->pci = NULL;
}
