/* Unit tests of PCI bus 0 and MSI-X: config space through 0xCF8/0xCFC and
 * ECAM, BARs on the buses, capabilities, MSI-X tables, delivery through
 * eventfds and the GSI routing table, on a VM without KVM (mock ioctls). */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvisor/bus.h"
#include "kvisor/irq.h"
#include "kvisor/layout.h"
#include "kvisor/pci.h"
#include "kvisor/vm.h"

#define MAX_ROUTES 256

/* What the mock "KVM" received. */
static struct {
	unsigned commits;
	unsigned nr;
	struct kvm_irq_routing_entry routes[MAX_ROUTES];
	int fd_of_gsi[IRQ_MAX_GSI];
	unsigned assigned, deassigned;
	int fail_commit;
} kvm;

static int mock_set_routing(struct vm *vm, const struct kvm_irq_routing *t)
{
	if (kvm.fail_commit)
		return -kvm.fail_commit;
	ck_assert_uint_le(t->nr, MAX_ROUTES);
	kvm.commits++;
	kvm.nr = t->nr;
	memcpy(kvm.routes, t->entries, t->nr * sizeof(t->entries[0]));
	return 0;
}

static int mock_irqfd(struct vm *vm, unsigned gsi, int fd, bool assign)
{
	ck_assert_uint_lt(gsi, IRQ_MAX_GSI);
	if (assign) {
		kvm.fd_of_gsi[gsi] = fd;
		kvm.assigned++;
	} else {
		ck_assert_int_eq(kvm.fd_of_gsi[gsi], fd);
		kvm.fd_of_gsi[gsi] = -1;
		kvm.deassigned++;
	}
	return 0;
}

static const struct irq_kvm_ops mock_ops = { .set_routing = mock_set_routing, .irqfd = mock_irqfd };

static struct vm vm;

static void setup(void)
{
	memset(&kvm, 0, sizeof(kvm));
	memset(&vm, 0, sizeof(vm));
	vm.kvm_fd = vm.vm_fd = vm.stop_efd = -1;
	ck_assert_int_eq(bus_init(&vm.pio, "pio"), 0);
	ck_assert_int_eq(bus_init(&vm.mmio, "mmio"), 0);
	ck_assert_int_eq(irq_init(&vm, &mock_ops), 0);
	ck_assert_int_eq(pci_init(&vm), 0);
}

static void teardown(void)
{
	pci_destroy(&vm);
	irq_destroy(&vm);
	bus_destroy(&vm.mmio);
	bus_destroy(&vm.pio);
}

/* A device whose BARs record accesses. */
struct probe {
	unsigned reads, writes;
	uint64_t last_off;
	uint32_t last_len;
	uint64_t last_val;
};

static void probe_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct probe *p = opaque;

	p->reads++;
	p->last_off = off;
	p->last_len = len;
	memset(data, 0xa5, len);
}

static void probe_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct probe *p = opaque;

	p->writes++;
	p->last_off = off;
	p->last_len = len;
	p->last_val = 0;
	memcpy(&p->last_val, data, len);
}

static const struct bus_ops probe_ops = { .read = probe_read, .write = probe_write };

struct tdev {
	struct pci_device pci;
	struct probe bar[PCI_NR_BARS];
};

static const struct pci_device_info tdev_info = {
	.vendor_id = 0x1af4,
	.device_id = 0x1042,
	.subsys_vendor_id = 0x1af4,
	.subsys_id = 0x0002,
	.class_code = 0x010000,
	.revision = 1,
};

/* BAR0 mem32 4 KiB, BAR1 io 32 bytes, BAR2-3 mem64 prefetchable 1 MiB. */
static void tdev_init(struct tdev *t, const char *name)
{
	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(pci_device_init(&t->pci, name, &tdev_info), 0);
	ck_assert_int_eq(pci_bar_add(&t->pci, 0, 0x1000, 0, &probe_ops, &t->bar[0]), 0);
	ck_assert_int_eq(pci_bar_add(&t->pci, 1, 32, PCI_BAR_IO, &probe_ops, &t->bar[1]), 0);
	ck_assert_int_eq(pci_bar_add(&t->pci, 2, 1 << 20, PCI_BAR_MEM64 | PCI_BAR_PREFETCH,
				     &probe_ops, &t->bar[2]),
			 0);
}

/* --- guest-side accessors --------------------------------------------- */

static uint32_t conf1_addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

static void outl_cf8(uint32_t v)
{
	ck_assert(bus_access(&vm.pio, PCI_CONF1_ADDR_PORT, &v, 4, true));
}

static uint32_t cf8_read(unsigned slot, unsigned reg, unsigned len)
{
	uint32_t v = 0;

	outl_cf8(conf1_addr(0, slot, 0, reg));
	ck_assert(bus_access(&vm.pio, PCI_CONF1_DATA_PORT + (reg & 3), &v, len, false));
	return v;
}

static void cf8_write(unsigned slot, unsigned reg, unsigned len, uint32_t v)
{
	outl_cf8(conf1_addr(0, slot, 0, reg));
	ck_assert(bus_access(&vm.pio, PCI_CONF1_DATA_PORT + (reg & 3), &v, len, true));
}

static uint64_t ecam_addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return LAYOUT_PCI_ECAM_GPA + ((uint64_t)bus << 20 | slot << 15 | fn << 12 | reg);
}

static uint64_t ecam_read(unsigned slot, unsigned reg, unsigned len)
{
	uint64_t v = 0;

	ck_assert(bus_access(&vm.mmio, ecam_addr(0, slot, 0, reg), &v, len, false));
	return v;
}

static void ecam_write(unsigned slot, unsigned reg, unsigned len, uint64_t v)
{
	ck_assert(bus_access(&vm.mmio, ecam_addr(0, slot, 0, reg), &v, len, true));
}

static uint64_t mmio_read(uint64_t addr, unsigned len)
{
	uint64_t v = 0;

	bus_access(&vm.mmio, addr, &v, len, false);
	return v;
}

static bool mmio_write(uint64_t addr, unsigned len, uint64_t v)
{
	return bus_access(&vm.mmio, addr, &v, len, true);
}

/* --- config space ----------------------------------------------------- */

START_TEST(test_host_bridge)
{
	ck_assert_uint_eq(cf8_read(0, PCI_CFG_VENDOR_ID, 2), PCI_HOST_VENDOR_ID);
	ck_assert_uint_eq(cf8_read(0, PCI_CFG_DEVICE_ID, 2), PCI_HOST_DEVICE_ID);
	ck_assert_uint_eq(cf8_read(0, 0, 4), PCI_HOST_DEVICE_ID << 16 | PCI_HOST_VENDOR_ID);
	ck_assert_uint_eq(cf8_read(0, 0x08, 4), PCI_CLASS_HOST_BRIDGE << 8);
	ck_assert_uint_eq(cf8_read(0, PCI_CFG_HEADER_TYPE, 1), 0);
	ck_assert_uint_eq(cf8_read(0, PCI_CFG_STATUS, 2), 0);
	ck_assert_uint_eq(cf8_read(0, PCI_CFG_COMMAND, 2), 0);
	for (unsigned i = 0; i < PCI_NR_BARS; i++) {
		cf8_write(0, PCI_CFG_BAR0 + 4 * i, 4, 0xffffffff);
		ck_assert_uint_eq(cf8_read(0, PCI_CFG_BAR0 + 4 * i, 4), 0);
	}
	ck_assert_uint_eq(ecam_read(0, 0, 4), PCI_HOST_DEVICE_ID << 16 | PCI_HOST_VENDOR_ID);
	ck_assert_uint_eq(ecam_read(0, 0x0b, 1), 0x06);
	ck_assert_uint_eq(ecam_read(0, 0x0a, 1), 0x00);
}
END_TEST

START_TEST(test_conf1_widths)
{
	struct tdev t;
	uint32_t dw;

	tdev_init(&t, "t0");
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	ck_assert_uint_eq(t.pci.slot, 1);
	dw = cf8_read(1, 0, 4);
	ck_assert_uint_eq(dw, 0x10421af4);
	for (unsigned off = 0; off < 4; off++)
		ck_assert_uint_eq(cf8_read(1, off, 1), (dw >> (8 * off)) & 0xff);
	ck_assert_uint_eq(cf8_read(1, 0, 2), 0x1af4);
	ck_assert_uint_eq(cf8_read(1, 2, 2), 0x1042);
	/* A word at 0xCFD stays inside the dword: bytes 1-2. */
	ck_assert_uint_eq(cf8_read(1, 1, 2), (dw >> 8) & 0xffff);
	ck_assert_uint_eq(cf8_read(1, 0x2c, 4), 0x00021af4);
	ck_assert_uint_eq(cf8_read(1, 0x08, 4), 0x01000001);
	/* Byte writes at each data port offset: cache line (0x0c), interrupt
	 * line (0x3c); the read-only neighbours keep their values. */
	cf8_write(1, PCI_CFG_CACHE_LINE, 1, 0x10);
	cf8_write(1, PCI_CFG_INT_LINE, 1, 0x0b);
	cf8_write(1, PCI_CFG_INT_PIN, 1, 0x01);
	cf8_write(1, 0x3f, 1, 0x55);
	ck_assert_uint_eq(cf8_read(1, 0x0c, 4), 0x00000010);
	ck_assert_uint_eq(cf8_read(1, 0x3c, 4), 0x0000000b);
	cf8_write(1, 0x3c, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, 0x3c, 4), 0x000000ff);
	cf8_write(1, 0x3e, 2, 0xffff);
	ck_assert_uint_eq(cf8_read(1, 0x3c, 4), 0x000000ff);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

START_TEST(test_conf1_address_register)
{
	uint32_t v = 0x12345678, r;
	uint8_t b = 0x01;

	/* Linux's type-1 probe: byte write to 0xCFB, then the dword latch. */
	ck_assert(bus_access(&vm.pio, 0xcfb, &b, 1, true));
	outl_cf8(0x80000000);
	ck_assert(bus_access(&vm.pio, 0xcf8, &r, 4, false));
	ck_assert_uint_eq(r, 0x80000000);
	/* Reserved bits 30:24 and 1:0 read as zero. */
	outl_cf8(0xff00ff03 | 0x80000000);
	ck_assert(bus_access(&vm.pio, 0xcf8, &r, 4, false));
	ck_assert_uint_eq(r, 0x8000ff00);
	/* Narrow accesses to 0xCF8-0xCFB: all-ones, the latch keeps its value. */
	outl_cf8(conf1_addr(0, 0, 0, 0));
	ck_assert(bus_access(&vm.pio, 0xcf8, &b, 1, false));
	ck_assert_uint_eq(b, 0xff);
	ck_assert(bus_access(&vm.pio, 0xcf9, &b, 1, true));
	ck_assert(bus_access(&vm.pio, 0xcfa, &v, 2, true));
	ck_assert(bus_access(&vm.pio, 0xcf8, &r, 4, false));
	ck_assert_uint_eq(r, conf1_addr(0, 0, 0, 0));
	/* Bit 31 clear: data reads all-ones, writes go nowhere. */
	outl_cf8(conf1_addr(0, 0, 0, PCI_CFG_CACHE_LINE) & ~0x80000000u);
	r = 0;
	ck_assert(bus_access(&vm.pio, 0xcfc, &r, 4, false));
	ck_assert_uint_eq(r, 0xffffffff);
	v = 0x20;
	ck_assert(bus_access(&vm.pio, 0xcfc, &v, 1, true));
	ck_assert_uint_eq(cf8_read(0, PCI_CFG_CACHE_LINE, 1), 0);
	/* A dword at 0xCFD runs past 0xCFF: not claimed. */
	ck_assert(!bus_access(&vm.pio, 0xcfd, &r, 4, false));
}
END_TEST

START_TEST(test_absent_functions)
{
	uint32_t r;

	for (unsigned slot = 1; slot < PCI_SLOTS; slot++) {
		ck_assert_uint_eq(cf8_read(slot, 0, 4), 0xffffffff);
		ck_assert_uint_eq(cf8_read(slot, 0x3e, 2), 0xffff);
		ck_assert_uint_eq(ecam_read(slot, 0, 4), 0xffffffff);
		ck_assert_uint_eq(ecam_read(slot, 0xffc, 4), 0xffffffff);
	}
	/* Function 1 of the host bridge, bus 1, bus 15 through ECAM. */
	outl_cf8(conf1_addr(0, 0, 1, 0));
	ck_assert(bus_access(&vm.pio, 0xcfc, &r, 4, false));
	ck_assert_uint_eq(r, 0xffffffff);
	outl_cf8(conf1_addr(1, 0, 0, 0));
	ck_assert(bus_access(&vm.pio, 0xcfc, &r, 4, false));
	ck_assert_uint_eq(r, 0xffffffff);
	ck_assert(bus_access(&vm.mmio, ecam_addr(0, 0, 7, 0), &r, 4, false));
	ck_assert_uint_eq(r, 0xffffffff);
	ck_assert(bus_access(&vm.mmio, ecam_addr(15, 31, 7, 0xffc), &r, 4, false));
	ck_assert_uint_eq(r, 0xffffffff);
	/* Writes to absent functions are dropped without effect. */
	ck_assert(bus_access(&vm.mmio, ecam_addr(1, 0, 0, 4), &r, 4, true));
	ck_assert_uint_eq(cf8_read(0, PCI_CFG_COMMAND, 2), 0);
}
END_TEST

START_TEST(test_ecam_matches_conf1)
{
	struct tdev t;
	uint8_t vcap[16] = { PCI_CAP_VENDOR, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 };

	tdev_init(&t, "t0");
	ck_assert_int_gt(pci_cap_add(&t.pci, vcap, sizeof(vcap), NULL), 0);
	ck_assert_int_eq(pci_msix_init(&t.pci, 4, 4), 0);
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	for (unsigned slot = 0; slot < 3; slot++) {
		for (unsigned reg = 0; reg < PCI_STD_CFG_SIZE; reg += 4) {
			ck_assert_uint_eq(cf8_read(slot, reg, 4), ecam_read(slot, reg, 4));
			ck_assert_uint_eq(cf8_read(slot, reg + 1, 2), ecam_read(slot, reg + 1, 2));
			ck_assert_uint_eq(cf8_read(slot, reg + 3, 1), ecam_read(slot, reg + 3, 1));
		}
	}
	/* A write through one mechanism is seen through the other. */
	ecam_write(1, PCI_CFG_INT_LINE, 1, 0x0a);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_INT_LINE, 1), 0x0a);
	cf8_write(1, PCI_CFG_CACHE_LINE, 1, 0x40);
	ck_assert_uint_eq(ecam_read(1, PCI_CFG_CACHE_LINE, 1), 0x40);
	/* Extended space exists through ECAM and reads zero. */
	ck_assert_uint_eq(ecam_read(1, 0x100, 4), 0);
	ck_assert_uint_eq(ecam_read(1, 0xffc, 4), 0);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

START_TEST(test_read_only_and_w1c)
{
	struct tdev t;

	tdev_init(&t, "t0");
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	cf8_write(1, 0x00, 4, 0xffffffff);
	cf8_write(1, 0x08, 4, 0xffffffff);
	cf8_write(1, PCI_CFG_HEADER_TYPE, 1, 0x80);
	cf8_write(1, 0x2c, 4, 0);
	cf8_write(1, PCI_CFG_CAP_PTR, 1, 0x40);
	cf8_write(1, PCI_CFG_ROM, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, 0x00, 4), 0x10421af4);
	ck_assert_uint_eq(cf8_read(1, 0x08, 4), 0x01000001);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_HEADER_TYPE, 1), 0);
	ck_assert_uint_eq(cf8_read(1, 0x2c, 4), 0x00021af4);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_CAP_PTR, 1), 0);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_ROM, 4), 0);
	/* Status: error bits are write-1-to-clear, the rest read-only. */
	pthread_mutex_lock(&t.pci.lock);
	pci_cfg_set(&t.pci, PCI_CFG_STATUS, 2, 0x2000 | 0x0100 | PCI_STATUS_CAP_LIST);
	pthread_mutex_unlock(&t.pci.lock);
	cf8_write(1, PCI_CFG_STATUS, 2, 0);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_STATUS, 2), 0x2110);
	cf8_write(1, PCI_CFG_STATUS, 2, 0x2000 | PCI_STATUS_CAP_LIST);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_STATUS, 2), 0x0110);
	cf8_write(1, PCI_CFG_STATUS + 1, 1, 0xff);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_STATUS, 2), 0x0010);
	/* Writing the command dword must not clear status bits it did not set. */
	pthread_mutex_lock(&t.pci.lock);
	pci_cfg_set(&t.pci, PCI_CFG_STATUS, 2, 0x8000);
	pthread_mutex_unlock(&t.pci.lock);
	cf8_write(1, PCI_CFG_COMMAND, 4, PCI_CMD_MEM | PCI_CMD_IO);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_STATUS, 2), 0x8000);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

START_TEST(test_command_register)
{
	struct tdev t;

	tdev_init(&t, "t0");
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	/* Firmware-like state: decoding on, bus mastering off. */
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_COMMAND, 2), PCI_CMD_IO | PCI_CMD_MEM);
	cf8_write(1, PCI_CFG_COMMAND, 2, 0xffff);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_COMMAND, 2), 0x0407);
	cf8_write(1, PCI_CFG_COMMAND, 1, 0);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_COMMAND, 2), 0x0400);
	cf8_write(1, PCI_CFG_COMMAND + 1, 1, 0);
	ck_assert_uint_eq(cf8_read(1, PCI_CFG_COMMAND, 2), 0);
	/* Host bridge: same writable bits. */
	cf8_write(0, PCI_CFG_COMMAND, 2, 0xffff);
	ck_assert_uint_eq(cf8_read(0, PCI_CFG_COMMAND, 2), 0x0407);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

/* --- BARs -------------------------------------------------------------- */

START_TEST(test_bar_declare_rules)
{
	struct pci_device d;

	ck_assert_int_eq(pci_device_init(&d, "d", &tdev_info), 0);
	ck_assert_int_eq(pci_bar_add(&d, 6, 0x1000, 0, &probe_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 5, 0x1000, PCI_BAR_MEM64, &probe_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 0, 0x1800, 0, &probe_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 0, 8, 0, &probe_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 0, 2, PCI_BAR_IO, &probe_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 0, 512, PCI_BAR_IO, &probe_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 0, 16, PCI_BAR_IO | PCI_BAR_MEM64, &probe_ops, NULL),
			 -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 0, 1ULL << 32, 0, &probe_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 0, 0x1000, 0, NULL, NULL), -EINVAL);
	ck_assert_int_eq(pci_bar_add(&d, 1, 0x1000, PCI_BAR_MEM64, &probe_ops, NULL), 0);
	ck_assert_int_eq(pci_bar_add(&d, 2, 0x1000, 0, &probe_ops, NULL), -EEXIST);
	ck_assert_int_eq(pci_bar_add(&d, 1, 0x1000, 0, &probe_ops, NULL), -EEXIST);
	ck_assert_int_eq(pci_bar_add(&d, 0, 0x1000, PCI_BAR_MEM64, &probe_ops, NULL), -EEXIST);
	ck_assert_int_eq(pci_bar_add(&d, 3, 4, PCI_BAR_IO, &probe_ops, NULL), 0);
	pci_unregister_device(&vm, &d);
}
END_TEST

START_TEST(test_bar_sizing)
{
	struct tdev t;
	uint32_t bar0, bar1, bar2, bar3;

	tdev_init(&t, "t0");
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	/* Placed like firmware: naturally aligned inside the windows. */
	bar0 = cf8_read(1, 0x10, 4);
	bar1 = cf8_read(1, 0x14, 4);
	bar2 = cf8_read(1, 0x18, 4);
	bar3 = cf8_read(1, 0x1c, 4);
	ck_assert_uint_eq(bar0 & 0xf, 0);
	ck_assert_uint_ge(bar0, LAYOUT_PCI_MMIO32_GPA);
	ck_assert_uint_eq(bar0 % 0x1000, 0);
	ck_assert_uint_eq(bar1 & 0x3, 1);
	ck_assert_uint_ge(bar1 & ~3u, PCI_IO_BASE);
	ck_assert_uint_eq((bar1 & ~3u) % 32, 0);
	ck_assert_uint_eq(bar2 & 0xf, 0xc); /* 64-bit, prefetchable */
	ck_assert_uint_eq((bar2 & ~0xfu) % (1 << 20), 0);
	ck_assert_uint_ge(bar2 & ~0xfu, LAYOUT_PCI_MMIO32_GPA);
	ck_assert_uint_lt(bar2 & ~0xfu, LAYOUT_PCI_MMIO32_END);
	ck_assert_uint_eq(bar3, 0);
	/* Sizing as Linux does it: decoding off, all-ones, read, restore. */
	cf8_write(1, PCI_CFG_COMMAND, 2, 0);
	for (unsigned i = 0; i < PCI_NR_BARS; i++)
		cf8_write(1, 0x10 + 4 * i, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, 0x10, 4), 0xfffff000);
	ck_assert_uint_eq(cf8_read(1, 0x14, 4), 0xffffffe1);
	ck_assert_uint_eq(cf8_read(1, 0x18, 4), 0xfff0000c);
	ck_assert_uint_eq(cf8_read(1, 0x1c, 4), 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, 0x20, 4), 0);
	ck_assert_uint_eq(cf8_read(1, 0x24, 4), 0);
	ck_assert(!pci_bar_mapped(&t.pci, 0, NULL));
	cf8_write(1, 0x10, 4, bar0);
	cf8_write(1, 0x14, 4, bar1);
	cf8_write(1, 0x18, 4, bar2);
	cf8_write(1, 0x1c, 4, bar3);
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM);
	ck_assert_uint_eq(cf8_read(1, 0x10, 4), bar0);
	ck_assert_uint_eq(cf8_read(1, 0x14, 4), bar1);
	ck_assert_uint_eq(cf8_read(1, 0x18, 4), bar2);
	for (unsigned i = 0; i < 3; i++)
		ck_assert(pci_bar_mapped(&t.pci, i, NULL));
	ck_assert(!pci_bar_mapped(&t.pci, 3, NULL));
	/* Low bits are read-only: a misaligned address is truncated. */
	cf8_write(1, 0x10, 4, bar0 | 0x7ff);
	ck_assert_uint_eq(cf8_read(1, 0x10, 4), bar0);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

START_TEST(test_bar_move)
{
	struct tdev t;
	uint64_t a0, a1, a2, a;
	uint32_t v = 0;
	uint16_t port;

	tdev_init(&t, "t0");
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	ck_assert(pci_bar_mapped(&t.pci, 0, &a0));
	ck_assert(pci_bar_mapped(&t.pci, 1, &a1));
	ck_assert(pci_bar_mapped(&t.pci, 2, &a2));
	ck_assert_uint_eq(a0, cf8_read(1, 0x10, 4));
	/* Reaches the device with an offset into the BAR. */
	ck_assert_uint_eq(mmio_read(a0 + 0x10, 4), 0xa5a5a5a5);
	ck_assert_uint_eq(t.bar[0].last_off, 0x10);
	ck_assert(bus_access(&vm.pio, a1 + 3, &v, 1, true));
	ck_assert_uint_eq(t.bar[1].writes, 1);
	ck_assert_uint_eq(t.bar[1].last_off, 3);
	/* Move BAR0 with decoding on (through ECAM: re-registers from a
	 * handler running on the MMIO bus). */
	ecam_write(1, 0x10, 4, 0xd0000000);
	ck_assert(pci_bar_mapped(&t.pci, 0, &a));
	ck_assert_uint_eq(a, 0xd0000000);
	ck_assert(mmio_write(0xd0000ff8, 8, 0x1122334455667788ULL));
	ck_assert_uint_eq(t.bar[0].last_off, 0xff8);
	ck_assert_uint_eq(t.bar[0].last_val, 0x1122334455667788ULL);
	ck_assert(!mmio_write(a0, 4, 1));
	ck_assert_uint_eq(t.bar[0].writes, 1);
	/* Memory decode off: unmapped; on again: back at the same place. */
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_IO);
	ck_assert(!pci_bar_mapped(&t.pci, 0, NULL));
	ck_assert(!pci_bar_mapped(&t.pci, 2, NULL));
	ck_assert(!mmio_write(0xd0000000, 4, 1));
	ck_assert(pci_bar_mapped(&t.pci, 1, NULL));
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM);
	ck_assert(mmio_write(0xd0000000, 4, 1));
	ck_assert_uint_eq(t.bar[0].writes, 2);
	/* I/O BAR: move, decode off. */
	port = 0x2000;
	cf8_write(1, 0x14, 4, port);
	ck_assert(pci_bar_mapped(&t.pci, 1, &a));
	ck_assert_uint_eq(a, 0x2000);
	ck_assert(bus_access(&vm.pio, 0x201f, &v, 1, false));
	ck_assert_uint_eq(t.bar[1].last_off, 0x1f);
	ck_assert(!bus_access(&vm.pio, a1, &v, 1, false));
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_MEM);
	ck_assert(!bus_access(&vm.pio, 0x2000, &v, 1, false));
	/* I/O past 0xffff, address 0: unmapped. */
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM);
	cf8_write(1, 0x14, 4, 0x10000);
	ck_assert(!pci_bar_mapped(&t.pci, 1, NULL));
	cf8_write(1, 0x14, 4, 0);
	ck_assert(!pci_bar_mapped(&t.pci, 1, NULL));
	cf8_write(1, 0x14, 4, 0x3000);
	ck_assert(pci_bar_mapped(&t.pci, 1, NULL));
	/* 64-bit BAR above 4 GiB: low dword, then high dword. */
	cf8_write(1, 0x18, 4, 0x0);
	ck_assert(!pci_bar_mapped(&t.pci, 2, NULL));
	cf8_write(1, 0x1c, 4, 0x10);
	ck_assert(pci_bar_mapped(&t.pci, 2, &a));
	ck_assert_uint_eq(a, 0x1000000000ULL);
	ck_assert_uint_eq(mmio_read(0x10000fff00ULL, 2), 0xa5a5);
	ck_assert_uint_eq(t.bar[2].last_off, 0xfff00);
	ck_assert_uint_eq(mmio_read(a2, 2), 0xffff);
	pci_unregister_device(&vm, &t.pci);
	ck_assert_uint_eq(mmio_read(0xd0000000, 4), 0xffffffff);
	ck_assert(!bus_access(&vm.pio, 0x3000, &v, 1, false));
}
END_TEST

START_TEST(test_bar_collision)
{
	struct tdev t, u;
	uint64_t ta, ua, a;

	tdev_init(&t, "t0");
	tdev_init(&u, "t1");
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	ck_assert_int_eq(pci_register_device(&vm, &u.pci), 0);
	ck_assert_uint_eq(u.pci.slot, 2);
	ck_assert(pci_bar_mapped(&t.pci, 0, &ta));
	ck_assert(pci_bar_mapped(&u.pci, 0, &ua));
	ck_assert_uint_ne(ta, ua);
	/* t's BAR0 onto u's: left unmapped, u keeps its range. */
	cf8_write(1, 0x10, 4, (uint32_t)ua);
	ck_assert(!pci_bar_mapped(&t.pci, 0, NULL));
	mmio_read(ua, 4);
	ck_assert_uint_eq(u.bar[0].reads, 1);
	ck_assert_uint_eq(t.bar[0].reads, 0);
	/* Onto the ECAM window: refused too. */
	cf8_write(1, 0x10, 4, (uint32_t)LAYOUT_PCI_ECAM_GPA);
	ck_assert(!pci_bar_mapped(&t.pci, 0, NULL));
	ck_assert_uint_eq(ecam_read(0, 0, 2), PCI_HOST_VENDOR_ID);
	/* Onto the config ports: the I/O BAR is refused. */
	cf8_write(1, 0x14, 4, 0xcc0);
	ck_assert(pci_bar_mapped(&t.pci, 1, NULL));
	cf8_write(1, 0x14, 4, 0xcf0);
	ck_assert(!pci_bar_mapped(&t.pci, 1, NULL));
	ck_assert_uint_eq(cf8_read(0, 0, 2), PCI_HOST_VENDOR_ID);
	/* Swap within one device: BAR0 onto BAR2's place, then BAR2 away. */
	cf8_write(1, 0x10, 4, (uint32_t)ta);
	ck_assert(pci_bar_mapped(&t.pci, 0, NULL));
	ck_assert(pci_bar_mapped(&t.pci, 2, &a));
	cf8_write(1, 0x10, 4, (uint32_t)a);
	ck_assert(!pci_bar_mapped(&t.pci, 0, NULL));
	cf8_write(1, 0x18, 4, 0xd8000000);
	ck_assert(pci_bar_mapped(&t.pci, 2, NULL));
	ck_assert(pci_bar_mapped(&t.pci, 0, &ta));
	ck_assert_uint_eq(ta, a);
	pci_unregister_device(&vm, &u.pci);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

START_TEST(test_register_limits)
{
	static struct pci_device d[PCI_SLOTS];
	struct pci_device big;
	unsigned n = 0;

	for (unsigned i = 0; i < PCI_SLOTS; i++) {
		ck_assert_int_eq(pci_device_init(&d[i], "d", &tdev_info), 0);
		ck_assert_int_eq(pci_bar_add(&d[i], 0, 0x1000, 0, &probe_ops, &d[i]), 0);
		if (pci_register_device(&vm, &d[i]) == 0)
			n++;
	}
	ck_assert_uint_eq(n, PCI_SLOTS - 1);
	ck_assert_int_eq(pci_register_device(&vm, &d[0]), -EBUSY);
	ck_assert_uint_eq(d[30].slot, 31);
	ck_assert_uint_eq(cf8_read(31, 0, 2), tdev_info.vendor_id);
	ck_assert_int_eq(pci_bar_add(&d[0], 1, 0x1000, 0, &probe_ops, NULL), -EBUSY);
	pci_unregister_device(&vm, &d[5]);
	ck_assert_uint_eq(cf8_read(6, 0, 4), 0xffffffff);
	/* The freed slot is reused; a BAR larger than the window is refused. */
	ck_assert_int_eq(pci_device_init(&big, "big", &tdev_info), 0);
	ck_assert_int_eq(pci_bar_add(&big, 0, 1ULL << 30, PCI_BAR_MEM64, &probe_ops, NULL), 0);
	ck_assert_int_eq(pci_register_device(&vm, &big), -ENOSPC);
	pci_unregister_device(&vm, &big);
	ck_assert_int_eq(pci_device_init(&big, "big", &tdev_info), 0);
	ck_assert_int_eq(pci_bar_add(&big, 0, 1ULL << 28, PCI_BAR_MEM64, &probe_ops, NULL), 0);
	ck_assert_int_eq(pci_register_device(&vm, &big), 0);
	ck_assert_uint_eq(big.slot, 6);
	pci_unregister_device(&vm, &big);
	for (unsigned i = 0; i < PCI_SLOTS; i++)
		if (i != 5)
			pci_unregister_device(&vm, &d[i]);
}
END_TEST

/* --- capabilities ----------------------------------------------------- */

START_TEST(test_capabilities)
{
	struct tdev t;
	uint8_t c16[16] = { PCI_CAP_VENDOR, 0xee, 16, 1 }, c20[20] = { PCI_CAP_VENDOR, 0, 20, 2 };
	uint8_t c5[5] = { 0x05, 0, 0xaa, 0xbb, 0xcc };
	uint8_t wm20[20] = { 0xff, 0xff, 0, 0, 0xff, 0x0f };
	uint8_t big[200] = { PCI_CAP_VENDOR };
	const uint8_t want_id[] = { PCI_CAP_VENDOR, 0x05, PCI_CAP_VENDOR, PCI_CAP_MSIX };
	int off[3];
	unsigned n = 0, p;

	tdev_init(&t, "t0");
	ck_assert_int_eq(pci_cap_add(&t.pci, c16, 1, NULL), -EINVAL);
	off[0] = pci_cap_add(&t.pci, c16, sizeof(c16), NULL);
	off[1] = pci_cap_add(&t.pci, c5, sizeof(c5), NULL);
	off[2] = pci_cap_add(&t.pci, c20, sizeof(c20), wm20);
	ck_assert_int_eq(off[0], 0x40);
	ck_assert_int_eq(off[1], 0x50);
	ck_assert_int_eq(off[2], 0x58); /* 4-byte aligned after 0x55 */
	ck_assert_int_eq(pci_msix_init(&t.pci, 8, 4), 0);
	ck_assert_int_eq(pci_cap_add(&t.pci, big, sizeof(big), NULL), -ENOSPC);
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	ck_assert_int_eq(pci_cap_add(&t.pci, c5, sizeof(c5), NULL), -EBUSY);
	/* Walk the list as a guest does. */
	ck_assert(cf8_read(1, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (p = cf8_read(1, PCI_CFG_CAP_PTR, 1); p; p = cf8_read(1, p + 1, 1)) {
		ck_assert_uint_lt(n, 4);
		ck_assert_uint_eq(p % 4, 0);
		ck_assert_uint_ge(p, 0x40);
		ck_assert_uint_eq(cf8_read(1, p, 1), want_id[n]);
		n++;
	}
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(cf8_read(1, 0x42, 2), 0x0110); /* cap_len 16, byte 3 = 1 */
	ck_assert_uint_eq(ecam_read(1, 0x50, 4), 0xbbaa5805);
	ck_assert_uint_eq(ecam_read(1, 0x54, 4), 0x000000cc);
	/* Per-byte write masks of the 20-byte capability; the header stays. */
	cf8_write(1, 0x58, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, 0x58, 4), 0x02140000 | t.pci.msix_cap << 8 | PCI_CAP_VENDOR);
	cf8_write(1, 0x5c, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, 0x5c, 4), 0x00000fff);
	cf8_write(1, 0x40, 4, 0);
	cf8_write(1, 0x44, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, 0x40, 4), 0x01100000 | 0x50 << 8 | PCI_CAP_VENDOR);
	ck_assert_uint_eq(cf8_read(1, 0x44, 4), 0);
	/* MSI-X capability: table size N-1, table and PBA in BAR4. */
	p = t.pci.msix_cap;
	ck_assert_uint_eq(cf8_read(1, p + 2, 2), 7);
	ck_assert_uint_eq(cf8_read(1, p + 4, 4), 4);
	ck_assert_uint_eq(cf8_read(1, p + 8, 4), 0x800 | 4);
	cf8_write(1, p + 2, 2, 0xffff);
	ck_assert_uint_eq(cf8_read(1, p + 2, 2), 0xc007);
	cf8_write(1, p + 4, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, p + 4, 4), 4);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

/* Hooks for device-specific bytes: a read counter at 0x40 refreshed by
 * cfg_read, a doorbell at 0x44 seen by cfg_write. */
static unsigned hook_writes;

static void hook_cfg_read(struct pci_device *dev, uint32_t reg, uint32_t len)
{
	if (reg < 0x48 && reg + len > 0x44)
		pci_cfg_set(dev, 0x44, 4, pci_cfg_get(dev, 0x44, 4) + 1);
}

static void hook_cfg_write(struct pci_device *dev, uint32_t reg, uint32_t len)
{
	hook_writes++;
	ck_assert_uint_ge(reg + len, 0x40);
}

/* BAR map/unmap events: "+0@c0000000" or "-0@c0000000", newest last. */
static char bar_events[16][32];
static unsigned nr_bar_events;

static void hook_bar_mapped(struct pci_device *dev, unsigned idx, bool mapped, uint64_t addr)
{
	ck_assert_uint_lt(nr_bar_events, 16);
	snprintf(bar_events[nr_bar_events++], sizeof(bar_events[0]), "%c%u@%llx",
		 mapped ? '+' : '-', idx, (unsigned long long)addr);
}

static const struct pci_device_ops hook_ops = {
	.cfg_read = hook_cfg_read,
	.cfg_write = hook_cfg_write,
	.bar_mapped = hook_bar_mapped,
};

START_TEST(test_cfg_hooks)
{
	struct tdev t;
	uint8_t c[8] = { PCI_CAP_VENDOR, 0, 8 }, wm[8] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };

	tdev_init(&t, "t0");
	t.pci.ops = &hook_ops;
	ck_assert_int_eq(pci_cap_add(&t.pci, c, sizeof(c), wm), 0x40);
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	hook_writes = 0;
	ck_assert_uint_eq(cf8_read(1, 0x44, 4), 1);
	ck_assert_uint_eq(ecam_read(1, 0x44, 4), 2);
	ck_assert_uint_eq(cf8_read(1, 0x00, 4), 0x10421af4);
	ck_assert_uint_eq(cf8_read(1, 0x44, 1), 3);
	cf8_write(1, PCI_CFG_INT_LINE, 1, 5);
	ck_assert_uint_eq(hook_writes, 0);
	cf8_write(1, 0x44, 4, 100);
	ck_assert_uint_eq(hook_writes, 1);
	ck_assert_uint_eq(cf8_read(1, 0x44, 4), 101);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

START_TEST(test_bar_hook)
{
	struct tdev t;

	tdev_init(&t, "t0");
	t.pci.ops = &hook_ops;
	nr_bar_events = 0;
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	ck_assert_uint_eq(nr_bar_events, 3);
	ck_assert_str_eq(bar_events[0], "+0@c0000000");
	ck_assert_str_eq(bar_events[1], "+1@1000");
	ck_assert_str_eq(bar_events[2], "+2@c0100000");
	ecam_write(1, 0x10, 4, 0xd0000000);
	ck_assert_uint_eq(nr_bar_events, 5);
	ck_assert_str_eq(bar_events[3], "-0@c0000000");
	ck_assert_str_eq(bar_events[4], "+0@d0000000");
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_MEM);
	ck_assert_uint_eq(nr_bar_events, 6);
	ck_assert_str_eq(bar_events[5], "-1@1000");
	/* Moved onto an occupied range: dropped from the old place, not mapped. */
	cf8_write(1, 0x10, 4, (uint32_t)LAYOUT_PCI_ECAM_GPA);
	ck_assert_uint_eq(nr_bar_events, 7);
	ck_assert_str_eq(bar_events[6], "-0@d0000000");
	pci_unregister_device(&vm, &t.pci);
	ck_assert_uint_eq(nr_bar_events, 8);
	ck_assert_str_eq(bar_events[7], "-2@c0100000");
}
END_TEST

/* --- MSI-X ------------------------------------------------------------- */

struct mdev {
	struct tdev t;
	uint64_t table; /* BAR4 address */
	unsigned cap;
};

static void mdev_init(struct mdev *m, unsigned nr)
{
	tdev_init(&m->t, "msix0");
	ck_assert_int_eq(pci_msix_init(&m->t.pci, nr, 4), 0);
	ck_assert_int_eq(pci_register_device(&vm, &m->t.pci), 0);
	ck_assert(pci_bar_mapped(&m->t.pci, 4, &m->table));
	m->cap = m->t.pci.msix_cap;
	ck_assert_uint_eq(kvm.assigned, nr);
}

static unsigned gsi_of(unsigned vector)
{
	return IRQ_MSI_GSI_BASE + vector; /* first device, allocated in order */
}

/* Interrupts delivered through vector's eventfd since the last call. */
static uint64_t efd_count(unsigned vector)
{
	uint64_t n = 0;
	int fd = kvm.fd_of_gsi[gsi_of(vector)];

	ck_assert_int_gt(fd, 0);
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void msix_program(struct mdev *m, unsigned v, uint32_t addr, uint32_t data)
{
	ck_assert(mmio_write(m->table + 16 * v, 4, addr));
	ck_assert(mmio_write(m->table + 16 * v + 4, 4, 0));
	ck_assert(mmio_write(m->table + 16 * v + 8, 4, data));
}

static void msix_mask(struct mdev *m, unsigned v, bool masked)
{
	ck_assert(mmio_write(m->table + 16 * v + 12, 4, masked));
}

static uint64_t pba(struct mdev *m)
{
	return mmio_read(m->table + 0x800, 8);
}

/* The MSI route KVM has for (gsi), or NULL. */
static const struct kvm_irq_routing_entry *route_of(unsigned gsi)
{
	for (unsigned i = 0; i < kvm.nr; i++)
		if (kvm.routes[i].gsi == gsi && kvm.routes[i].type == KVM_IRQ_ROUTING_MSI)
			return &kvm.routes[i];
	return NULL;
}

static void msix_enable(struct mdev *m, uint16_t ctrl)
{
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_BUS_MASTER);
	cf8_write(1, m->cap + PCI_MSIX_CTRL, 2, ctrl);
}

START_TEST(test_msix_table)
{
	struct mdev m;

	mdev_init(&m, 8);
	ck_assert_uint_eq(m.table % 0x1000, 0);
	ck_assert_uint_eq(cf8_read(1, 0x20, 4), (uint32_t)m.table);
	/* Reset state: zero messages, every vector masked, nothing pending. */
	for (unsigned v = 0; v < 8; v++) {
		ck_assert_uint_eq(mmio_read(m.table + 16 * v, 8), 0);
		ck_assert_uint_eq(mmio_read(m.table + 16 * v + 8, 4), 0);
		ck_assert_uint_eq(mmio_read(m.table + 16 * v + 12, 4), 1);
	}
	ck_assert_uint_eq(pba(&m), 0);
	/* Dword and qword writes; address bits 1:0 and reserved control bits read 0. */
	ck_assert(mmio_write(m.table + 16, 8, 0x00000001fee0100fULL));
	ck_assert(mmio_write(m.table + 24, 8, 0xfffffffe00004041ULL));
	ck_assert_uint_eq(mmio_read(m.table + 16, 4), 0xfee0100c);
	ck_assert_uint_eq(mmio_read(m.table + 20, 4), 1);
	ck_assert_uint_eq(mmio_read(m.table + 24, 8), 0x0000000000004041ULL);
	ck_assert_uint_eq(mmio_read(m.table + 25, 1), 0x40);
	ck_assert(mmio_write(m.table + 26, 2, 0x1234));
	ck_assert_uint_eq(mmio_read(m.table + 24, 4), 0x12344041);
	/* Unaligned accesses: ignored, read zero. */
	ck_assert(mmio_write(m.table + 16 + 6, 4, 0xffffffff));
	ck_assert_uint_eq(mmio_read(m.table + 20, 4), 1);
	ck_assert_uint_eq(mmio_read(m.table + 16 + 6, 4), 0);
	ck_assert(mmio_write(m.table + 12, 8, 0));
	ck_assert_uint_eq(mmio_read(m.table + 12, 4), 1);
	/* Odd lengths (not from KVM, but the bus passes them): refused. */
	ck_assert(mmio_write(m.table + 15, 3, 0xffffff));
	ck_assert(mmio_write(m.table + 0, 3, 0xffffff));
	ck_assert_uint_eq(mmio_read(m.table + 15, 3), 0);
	ck_assert_uint_eq(mmio_read(m.table, 4), 0);
	/* Past the table, the PBA (read-only) and the rest of the BAR. */
	ck_assert(mmio_write(m.table + 16 * 8, 4, 0xffffffff));
	ck_assert_uint_eq(mmio_read(m.table + 16 * 8, 4), 0);
	ck_assert(mmio_write(m.table + 0x800, 8, ~0ULL));
	ck_assert_uint_eq(pba(&m), 0);
	ck_assert_uint_eq(mmio_read(m.table + 0xff8, 8), 0);
	ck_assert_uint_eq(mmio_read(m.table + 0x1000, 4), 0xffffffff); /* BAR is 4 KiB */
	ck_assert_int_eq(pci_msix_notify(&m.t.pci, 8), -EINVAL);
	ck_assert_int_eq(pci_msix_notify(&m.t.pci, ~0u), -EINVAL);
	ck_assert_int_eq(pci_msix_notify(&m.t.pci, 3), 0);
	ck_assert_uint_eq(pba(&m), 1 << 3);
	ck_assert_uint_eq(mmio_read(m.table + 0x800, 1), 1 << 3);
	pci_unregister_device(&vm, &m.t.pci);
	ck_assert_uint_eq(kvm.deassigned, 8);
}
END_TEST

START_TEST(test_msix_delivery)
{
	struct mdev m;
	const struct kvm_irq_routing_entry *r;

	mdev_init(&m, 4);
	ck_assert(!pci_msix_enabled(&m.t.pci));
	msix_enable(&m, PCI_MSIX_CTRL_ENABLE);
	ck_assert(pci_msix_enabled(&m.t.pci));
	ck_assert_uint_eq(kvm.commits, 0); /* nothing unmasked yet */
	msix_program(&m, 1, 0xfee00000, 0x4041);
	ck_assert_uint_eq(kvm.commits, 0);
	/* Notify while masked: pending, no interrupt. */
	ck_assert_int_eq(pci_msix_notify(&m.t.pci, 1), 0);
	ck_assert_uint_eq(efd_count(1), 0);
	ck_assert_uint_eq(pba(&m), 1 << 1);
	/* Unmask: the route is committed with the defaults, then the pending
	 * interrupt goes out and its bit clears. */
	msix_mask(&m, 1, false);
	ck_assert_uint_eq(kvm.commits, 1);
	r = route_of(gsi_of(1));
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->u.msi.address_lo, 0xfee00000);
	ck_assert_uint_eq(r->u.msi.address_hi, 0);
	ck_assert_uint_eq(r->u.msi.data, 0x4041);
	ck_assert_ptr_null(route_of(gsi_of(0)));
	ck_assert_uint_eq(efd_count(1), 1);
	ck_assert_uint_eq(pba(&m), 0);
	/* Unmasked: each notify is one eventfd write. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(pci_msix_notify(&m.t.pci, 1), 0);
	ck_assert_uint_eq(efd_count(1), 5);
	/* Mask, notify twice: one pending bit; unmask: one interrupt, no new
	 * commit (same message). */
	msix_mask(&m, 1, true);
	pci_msix_notify(&m.t.pci, 1);
	pci_msix_notify(&m.t.pci, 1);
	ck_assert_uint_eq(efd_count(1), 0);
	ck_assert_uint_eq(pba(&m), 1 << 1);
	msix_mask(&m, 1, false);
	ck_assert_uint_eq(efd_count(1), 1);
	ck_assert_uint_eq(pba(&m), 0);
	ck_assert_uint_eq(kvm.commits, 1);
	/* A new message while unmasked is routed again. */
	ck_assert(mmio_write(m.table + 16 + 8, 4, 0x4042));
	ck_assert_uint_eq(kvm.commits, 2);
	ck_assert_uint_eq(route_of(gsi_of(1))->u.msi.data, 0x4042);
	/* Another vector: its own GSI and eventfd. */
	msix_program(&m, 3, 0xfee01000, 0x0051);
	msix_mask(&m, 3, false);
	ck_assert_uint_eq(kvm.commits, 3);
	ck_assert_uint_eq(route_of(gsi_of(3))->u.msi.address_lo, 0xfee01000);
	ck_assert_uint_eq(route_of(gsi_of(1))->u.msi.data, 0x4042);
	pci_msix_notify(&m.t.pci, 3);
	ck_assert_uint_eq(efd_count(3), 1);
	ck_assert_uint_eq(efd_count(1), 0);
	pci_unregister_device(&vm, &m.t.pci);
	/* Unregistering drops the routes. */
	ck_assert_ptr_null(route_of(gsi_of(1)));
	ck_assert_ptr_null(route_of(gsi_of(3)));
}
END_TEST

START_TEST(test_msix_function_mask)
{
	struct mdev m;

	mdev_init(&m, 2);
	msix_program(&m, 0, 0xfee00000, 0x30);
	msix_mask(&m, 0, false);
	/* MSI-X disabled: pending until enabled. */
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_BUS_MASTER);
	pci_msix_notify(&m.t.pci, 0);
	ck_assert_uint_eq(efd_count(0), 0);
	ck_assert_uint_eq(pba(&m), 1);
	/* Enabled with the function mask (as Linux sets it up): still pending. */
	cf8_write(1, m.cap + PCI_MSIX_CTRL, 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	ck_assert_uint_eq(efd_count(0), 0);
	ck_assert_uint_eq(kvm.commits, 0);
	/* Function mask cleared (byte write to the high half): delivered. */
	cf8_write(1, m.cap + PCI_MSIX_CTRL + 1, 1, PCI_MSIX_CTRL_ENABLE >> 8);
	ck_assert_uint_eq(kvm.commits, 1);
	ck_assert_uint_eq(efd_count(0), 1);
	ck_assert_uint_eq(pba(&m), 0);
	/* Function mask again: notifies pend, the vector's own mask bit stays 0. */
	cf8_write(1, m.cap + PCI_MSIX_CTRL, 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
	pci_msix_notify(&m.t.pci, 0);
	ck_assert_uint_eq(efd_count(0), 0);
	ck_assert_uint_eq(mmio_read(m.table + 12, 4), 0);
	ck_assert_uint_eq(pba(&m), 1);
	cf8_write(1, m.cap + PCI_MSIX_CTRL, 2, PCI_MSIX_CTRL_ENABLE);
	ck_assert_uint_eq(efd_count(0), 1);
	/* Bus mastering off: pending; on: delivered. */
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_MEM);
	pci_msix_notify(&m.t.pci, 0);
	ck_assert_uint_eq(efd_count(0), 0);
	cf8_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_BUS_MASTER);
	ck_assert_uint_eq(efd_count(0), 1);
	/* Disable: pending; the table stays reachable. */
	cf8_write(1, m.cap + PCI_MSIX_CTRL, 2, 0);
	ck_assert(!pci_msix_enabled(&m.t.pci));
	pci_msix_notify(&m.t.pci, 0);
	ck_assert_uint_eq(efd_count(0), 0);
	ck_assert_uint_eq(pba(&m), 1);
	ck_assert_uint_eq(kvm.commits, 1);
	pci_unregister_device(&vm, &m.t.pci);
}
END_TEST

START_TEST(test_msix_bad_message)
{
	struct mdev m;

	mdev_init(&m, 1);
	msix_enable(&m, PCI_MSIX_CTRL_ENABLE);
	/* Not the LAPIC window (a DMA into RAM): never routed, kept pending. */
	msix_program(&m, 0, 0x00100000, 0x30);
	msix_mask(&m, 0, false);
	ck_assert_uint_eq(kvm.commits, 0);
	pci_msix_notify(&m.t.pci, 0);
	ck_assert_uint_eq(efd_count(0), 0);
	ck_assert_uint_eq(pba(&m), 1);
	ck_assert(mmio_write(m.table + 4, 4, 1)); /* upper address */
	ck_assert(mmio_write(m.table, 4, 0xfee00000));
	ck_assert_uint_eq(kvm.commits, 0);
	ck_assert(mmio_write(m.table + 4, 4, 0));
	ck_assert_uint_eq(kvm.commits, 1);
	ck_assert_uint_eq(efd_count(0), 1);
	/* A failing commit keeps the vector pending and is retried. */
	kvm.fail_commit = EINVAL;
	ck_assert(mmio_write(m.table + 8, 4, 0x31));
	pci_msix_notify(&m.t.pci, 0); /* still live on the old route */
	ck_assert_uint_eq(efd_count(0), 1);
	msix_mask(&m, 0, true);
	pci_msix_notify(&m.t.pci, 0);
	msix_mask(&m, 0, false);
	ck_assert_uint_eq(efd_count(0), 0);
	ck_assert_uint_eq(pba(&m), 1);
	kvm.fail_commit = 0;
	msix_mask(&m, 0, true);
	msix_mask(&m, 0, false);
	ck_assert_uint_eq(efd_count(0), 1);
	ck_assert_uint_eq(route_of(gsi_of(0))->u.msi.data, 0x31);
	pci_unregister_device(&vm, &m.t.pci);
}
END_TEST

/* Masking on one thread while another notifies: an interrupt raised while
 * the vector is unmasked is never left pending. */
struct stress {
	struct pci_device *dev;
	atomic_bool stop;
	unsigned long sent;
};

static void *stress_notify(void *arg)
{
	struct stress *s = arg;

	while (!atomic_load(&s->stop)) {
		pci_msix_notify(s->dev, 0);
		s->sent++;
	}
	return NULL;
}

START_TEST(test_msix_notify_race)
{
	struct stress s = { 0 };
	struct mdev m;
	pthread_t th;
	uint64_t got = 0;

	mdev_init(&m, 1);
	msix_enable(&m, PCI_MSIX_CTRL_ENABLE);
	msix_program(&m, 0, 0xfee00000, 0x30);
	s.dev = &m.t.pci;
	ck_assert_int_eq(pthread_create(&th, NULL, stress_notify, &s), 0);
	for (int i = 0; i < 20000; i++) {
		msix_mask(&m, 0, i & 1);
		got += efd_count(0);
	}
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);
	msix_mask(&m, 0, false);
	got += efd_count(0);
	ck_assert_uint_eq(pba(&m), 0);
	ck_assert_uint_gt(got, 0);
	ck_assert_uint_le(got, s.sent);
	pci_unregister_device(&vm, &m.t.pci);
}
END_TEST

/* --- routing table ------------------------------------------------------ */

static unsigned count_route(unsigned gsi, unsigned chip, unsigned pin)
{
	unsigned n = 0;

	for (unsigned i = 0; i < kvm.nr; i++) {
		const struct kvm_irq_routing_entry *e = &kvm.routes[i];

		if (e->gsi == gsi && e->type == KVM_IRQ_ROUTING_IRQCHIP &&
		    e->u.irqchip.irqchip == chip && e->u.irqchip.pin == pin)
			n++;
	}
	return n;
}

START_TEST(test_irq_routing_table)
{
	unsigned a, b, c;

	ck_assert_int_eq(irq_commit(&vm), 0);
	ck_assert_uint_eq(kvm.commits, 0); /* nothing changed: no ioctl */
	ck_assert_int_eq(irq_msi_alloc(&vm, &a), 0);
	ck_assert_int_eq(irq_msi_alloc(&vm, &b), 0);
	ck_assert_uint_eq(a, IRQ_MSI_GSI_BASE);
	ck_assert_uint_eq(b, IRQ_MSI_GSI_BASE + 1);
	ck_assert_int_eq(irq_msi_set(&vm, 23, 0xfee00000, 1), -EINVAL);
	ck_assert_int_eq(irq_msi_set(&vm, b + 1, 0xfee00000, 1), -EINVAL);
	ck_assert_int_eq(irq_msi_set(&vm, b, 0xfee00000, 0x22), 0);
	ck_assert_int_eq(irq_commit(&vm), 0);
	ck_assert_uint_eq(kvm.commits, 1);
	/* KVM's defaults (kvm_setup_default_irq_routing) plus one MSI route:
	 * 16 x (IOAPIC + PIC) + 8 x IOAPIC + 1. */
	ck_assert_uint_eq(kvm.nr, 16 * 2 + 8 + 1);
	for (unsigned gsi = 0; gsi < 24; gsi++) {
		ck_assert_uint_eq(count_route(gsi, KVM_IRQCHIP_IOAPIC, gsi), 1);
		if (gsi < 8)
			ck_assert_uint_eq(count_route(gsi, KVM_IRQCHIP_PIC_MASTER, gsi), 1);
		else if (gsi < 16)
			ck_assert_uint_eq(count_route(gsi, KVM_IRQCHIP_PIC_SLAVE, gsi - 8), 1);
	}
	ck_assert_uint_eq(count_route(LAYOUT_COM1_IRQ, KVM_IRQCHIP_PIC_MASTER, 4), 1);
	ck_assert_ptr_nonnull(route_of(b));
	ck_assert_ptr_null(route_of(a));
	ck_assert_int_eq(irq_msi_set(&vm, b, 0xfee00000, 0x22), 0);
	ck_assert_int_eq(irq_commit(&vm), 0);
	ck_assert_uint_eq(kvm.commits, 1); /* same message: no ioctl */
	/* Freed GSIs are reused, lowest first; their routes go. */
	irq_msi_free(&vm, a);
	irq_msi_free(&vm, b);
	ck_assert_int_eq(irq_commit(&vm), 0);
	ck_assert_uint_eq(kvm.commits, 2);
	ck_assert_uint_eq(kvm.nr, 40);
	ck_assert_int_eq(irq_msi_alloc(&vm, &c), 0);
	ck_assert_uint_eq(c, a);
	irq_msi_free(&vm, c);
	/* Exhaustion: GSIs below IRQ_MAX_GSI only. */
	for (unsigned i = IRQ_MSI_GSI_BASE; i < IRQ_MAX_GSI; i++) {
		ck_assert_int_eq(irq_msi_alloc(&vm, &c), 0);
		ck_assert_uint_eq(c, i);
	}
	ck_assert_int_eq(irq_msi_alloc(&vm, &c), -ENOSPC);
	ck_assert_int_eq(irq_irqfd(&vm, IRQ_MAX_GSI, 3, true), -EINVAL);
	ck_assert_int_eq(irq_irqfd(&vm, 30, -1, true), -EINVAL);
}
END_TEST

/* --- hostile accesses --------------------------------------------------- */

START_TEST(test_hostile_ecam)
{
	struct tdev t;
	uint64_t v;
	uint8_t buf[8];

	tdev_init(&t, "t0");
	ck_assert_int_eq(pci_register_device(&vm, &t.pci), 0);
	/* Crossing a dword: all-ones, writes dropped. */
	ck_assert_uint_eq(ecam_read(1, 0x02, 4), 0xffffffff);
	ck_assert_uint_eq(ecam_read(1, 0x03, 2), 0xffff);
	ck_assert_uint_eq(ecam_read(1, 0x3d, 4), 0xffffffff);
	ecam_write(1, 0x3b, 2, 0xffff);
	ecam_write(1, 0x0b, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(1, 0x3c, 4), 0);
	ck_assert_uint_eq(cf8_read(1, 0x0c, 4), 0);
	/* 8 bytes aligned: two dwords; unaligned: all-ones. */
	ck_assert_uint_eq(ecam_read(1, 0x00, 8), (uint64_t)cf8_read(1, 4, 4) << 32 | 0x10421af4);
	ck_assert_uint_eq(ecam_read(1, 0x04, 8), 0xffffffffffffffffULL);
	ecam_write(1, 0x38, 8, 0x000000ffffffffffULL);
	ck_assert_uint_eq(cf8_read(1, 0x3c, 4), 0xff);
	ecam_write(1, 0x3c, 8, 0);
	ck_assert_uint_eq(cf8_read(1, 0x3c, 4), 0xff);
	/* The last bytes of the space, and the last function of the window. */
	ck_assert_uint_eq(ecam_read(1, 0xff8, 8), 0);
	ecam_write(1, 0xff8, 8, ~0ULL);
	ck_assert_uint_eq(ecam_read(1, 0xfff, 1), 0);
	ck_assert_uint_eq(ecam_read(1, 0xffe, 2), 0);
	ck_assert_uint_eq(ecam_read(1, 0xffc, 8), ~0ULL);
	memset(buf, 0, sizeof(buf));
	ck_assert(bus_access(&vm.mmio, LAYOUT_PCI_ECAM_GPA + LAYOUT_PCI_ECAM_SIZE - 8, buf, 8,
			     false));
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(buf[i], 0xff);
	ck_assert(
		bus_access(&vm.mmio, LAYOUT_PCI_ECAM_GPA + LAYOUT_PCI_ECAM_SIZE - 1, buf, 1, true));
	ck_assert(!bus_access(&vm.mmio, LAYOUT_PCI_ECAM_GPA + LAYOUT_PCI_ECAM_SIZE - 4, &v, 8,
			      false));
	/* Every byte offset and width through ECAM and CF8: no crash, no state change. */
	for (unsigned reg = 0; reg < PCI_CFG_SIZE; reg++) {
		for (unsigned len = 1; len <= 8; len *= 2) {
			v = 0;
			bus_access(&vm.mmio, ecam_addr(0, 1, 0, reg), &v, len, false);
		}
	}
	for (unsigned port = 0xcf8; port < 0xd00; port++)
		for (unsigned len = 1; len <= 4; len *= 2)
			bus_access(&vm.pio, port, &v, len, false);
	ck_assert_uint_eq(cf8_read(1, 0, 4), 0x10421af4);
	pci_unregister_device(&vm, &t.pci);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("pci");
	TCase *cfg = tcase_create("config");
	TCase *bar = tcase_create("bar");
	TCase *msix = tcase_create("msix");

	tcase_add_checked_fixture(cfg, setup, teardown);
	tcase_add_test(cfg, test_host_bridge);
	tcase_add_test(cfg, test_conf1_widths);
	tcase_add_test(cfg, test_conf1_address_register);
	tcase_add_test(cfg, test_absent_functions);
	tcase_add_test(cfg, test_ecam_matches_conf1);
	tcase_add_test(cfg, test_read_only_and_w1c);
	tcase_add_test(cfg, test_command_register);
	tcase_add_test(cfg, test_capabilities);
	tcase_add_test(cfg, test_cfg_hooks);
	tcase_add_test(cfg, test_bar_hook);
	tcase_add_test(cfg, test_hostile_ecam);
	suite_add_tcase(s, cfg);
	tcase_add_checked_fixture(bar, setup, teardown);
	tcase_add_test(bar, test_bar_declare_rules);
	tcase_add_test(bar, test_bar_sizing);
	tcase_add_test(bar, test_bar_move);
	tcase_add_test(bar, test_bar_collision);
	tcase_add_test(bar, test_register_limits);
	suite_add_tcase(s, bar);
	tcase_add_checked_fixture(msix, setup, teardown);
	tcase_add_test(msix, test_msix_table);
	tcase_add_test(msix, test_msix_delivery);
	tcase_add_test(msix, test_msix_function_mask);
	tcase_add_test(msix, test_msix_bad_message);
	tcase_add_test(msix, test_msix_notify_race);
	tcase_add_test(msix, test_irq_routing_table);
	tcase_set_timeout(msix, 30);
	suite_add_tcase(s, msix);
	return s;
}

#include "unit.h"
