/* Minimal virtio 1.x PCI (modern) driver for firmware guests (fw_virtio.h):
 * capabilities, status and feature negotiation, polled split virtqueues.
 * Register layout from the virtio 1.2 spec, 4.1.4. */
#include "fw_pci.h"
#include "fw_virtio.h"

/* Capability types and fields (4.1.4). */
#define CAP_COMMON      1
#define CAP_NOTIFY      2
#define CAP_ISR         3
#define CAP_DEVICE      4
#define CAP_TYPE        3
#define CAP_BAR         4
#define CAP_OFFSET      8
#define CAP_LENGTH      12
#define CAP_NOTIFY_MULT 16

/* Common configuration offsets (4.1.4.3). */
#define COM_DFSELECT 0x00
#define COM_DF       0x04
#define COM_GFSELECT 0x08
#define COM_GF       0x0c
#define COM_MSIX     0x10
#define COM_NUMQ     0x12
#define COM_STATUS   0x14
#define COM_CFGGEN   0x15
#define COM_Q_SELECT 0x16
#define COM_Q_SIZE   0x18
#define COM_Q_MSIX   0x1a
#define COM_Q_ENABLE 0x1c
#define COM_Q_NOFF   0x1e
#define COM_Q_DESC   0x20
#define COM_Q_AVAIL  0x28
#define COM_Q_USED   0x30

#define ST_ACK         0x01
#define ST_DRIVER      0x02
#define ST_DRIVER_OK   0x04
#define ST_FEATURES_OK 0x08
#define ST_NEEDS_RESET 0x40
#define ST_FAILED      0x80
#define NO_VECTOR      0xffff

char fw_virtio_err[160];

static int fail(const char *fmt, ...) __printf(1, 2);

static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fw_vsnprintf(fw_virtio_err, sizeof(fw_virtio_err), fmt, ap);
	va_end(ap);
	return -1;
}

static void set_status(struct fw_virtio *vd, uint8_t s)
{
	mmio_write8(vd->common + COM_STATUS, s);
}

uint8_t fw_virtio_status(struct fw_virtio *vd)
{
	return mmio_read8(vd->common + COM_STATUS);
}

/* Walk the vendor capabilities; each structure must lie inside its BAR. */
static int read_caps(struct fw_virtio *vd)
{
	unsigned bdf = vd->bdf, n = 0;

	if (!(fw_pci_read16(bdf, FW_PCI_STATUS) & FW_PCI_STATUS_CAPS))
		return fail("virtio %02x:%02x.%x: no capability list", bdf >> 8, (bdf >> 3) & 31,
			    bdf & 7);
	for (unsigned p = fw_pci_read8(bdf, FW_PCI_CAP_PTR) & 0xfc; p;
	     p = fw_pci_read8(bdf, p + 1) & 0xfc) {
		unsigned type, bar;
		uint64_t base, addr;

		if (++n > 48 || p < 0x40)
			return fail("virtio: bad capability pointer 0x%x", p);
		if (fw_pci_read8(bdf, p) != FW_PCI_CAP_VENDOR)
			continue;
		type = fw_pci_read8(bdf, p + CAP_TYPE);
		bar = fw_pci_read8(bdf, p + CAP_BAR);
		if (type < CAP_COMMON || type > CAP_DEVICE)
			continue; /* PCI configuration access, shared memory, ... */
		if (bar > 5 || !(base = fw_pci_bar_addr(bdf, bar)))
			return fail(
				"virtio: capability %u in BAR %u, which is not a mapped memory BAR",
				type, bar);
		addr = base + fw_pci_read32(bdf, p + CAP_OFFSET);
		/* The first capability of each type is the preferred one (4.1.4). */
		switch (type) {
		case CAP_COMMON:
			if (!vd->common)
				vd->common = addr;
			break;
		case CAP_NOTIFY:
			if (!vd->notify) {
				vd->notify = addr;
				vd->notify_mult = fw_pci_read32(bdf, p + CAP_NOTIFY_MULT);
			}
			break;
		case CAP_ISR:
			if (!vd->isr)
				vd->isr = addr;
			break;
		case CAP_DEVICE:
			if (!vd->device) {
				vd->device = addr;
				vd->device_len = fw_pci_read32(bdf, p + CAP_LENGTH);
			}
			break;
		}
	}
	if (!vd->common || !vd->notify || !vd->isr)
		return fail("virtio: missing capability (common 0x%llx notify 0x%llx isr 0x%llx)",
			    (unsigned long long)vd->common, (unsigned long long)vd->notify,
			    (unsigned long long)vd->isr);
	return 0;
}

static uint64_t device_features(struct fw_virtio *vd)
{
	uint64_t f;

	mmio_write32(vd->common + COM_DFSELECT, 0);
	f = mmio_read32(vd->common + COM_DF);
	mmio_write32(vd->common + COM_DFSELECT, 1);
	return f | (uint64_t)mmio_read32(vd->common + COM_DF) << 32;
}

static void driver_features(struct fw_virtio *vd, uint64_t f)
{
	mmio_write32(vd->common + COM_GFSELECT, 0);
	mmio_write32(vd->common + COM_GF, (uint32_t)f);
	mmio_write32(vd->common + COM_GFSELECT, 1);
	mmio_write32(vd->common + COM_GF, (uint32_t)(f >> 32));
}

int fw_virtio_init(struct fw_virtio *vd, unsigned type, uint64_t wanted, uint64_t bar_base)
{
	uint16_t id = (uint16_t)(FW_VIRTIO_ID_BASE + type);
	uint64_t offered;
	unsigned spins = 0;

	memset(vd, 0, sizeof(*vd));
	if (!fw_pci_find(FW_VIRTIO_VENDOR, id, &vd->bdf))
		return fail("no PCI function %04x:%04x on bus 0", FW_VIRTIO_VENDOR, id);
	vd->bars_assigned = fw_pci_setup_mem_bars(vd->bdf, bar_base);
	if (vd->bars_assigned < 0)
		return fail("virtio: no room for the BARs below 4 GiB");
	if (read_caps(vd))
		return -1;
	/* Reset, and wait until the device says it is done (4.1.4.3.2). */
	set_status(vd, 0);
	while (fw_virtio_status(vd) != 0)
		if (++spins > 1000000)
			return fail("virtio: the device does not reset");
	set_status(vd, ST_ACK);
	set_status(vd, ST_ACK | ST_DRIVER);
	offered = device_features(vd);
	if (!(offered & (1ULL << FW_VIRTIO_F_VERSION_1)))
		return fail("virtio: VERSION_1 not offered (features 0x%llx)",
			    (unsigned long long)offered);
	vd->features = (offered & wanted) | 1ULL << FW_VIRTIO_F_VERSION_1;
	driver_features(vd, vd->features);
	set_status(vd, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(fw_virtio_status(vd) & ST_FEATURES_OK)) {
		set_status(vd, ST_ACK | ST_DRIVER | ST_FAILED);
		return fail("virtio: features 0x%llx refused", (unsigned long long)vd->features);
	}
	mmio_write16(vd->common + COM_MSIX, NO_VECTOR);
	return 0;
}

int fw_virtio_setup_vq(struct fw_virtio *vd, struct fw_vq *vq, unsigned index, uint16_t max_size,
		       uint64_t mem)
{
	uint16_t size;
	uint64_t used;

	memset(vq, 0, sizeof(*vq));
	if (index >= mmio_read16(vd->common + COM_NUMQ))
		return fail("virtio: no queue %u", index);
	mmio_write16(vd->common + COM_Q_SELECT, (uint16_t)index);
	size = mmio_read16(vd->common + COM_Q_SIZE);
	if (!size)
		return fail("virtio: queue %u not available", index);
	if (mmio_read16(vd->common + COM_Q_ENABLE))
		return fail("virtio: queue %u enabled after reset", index);
	if (size > max_size)
		size = max_size;
	while (size & (size - 1))
		size &= (uint16_t)(size - 1); /* a power of 2 for a split ring */
	vq->size = size;
	vq->index = (uint16_t)index;
	used = mem + FW_VQ_MEM_SIZE(size) - (8ULL * size + 6);
	vq->desc = (volatile struct fw_vq_desc *)(uintptr_t)mem;
	vq->avail = (volatile uint16_t *)(uintptr_t)(mem + 16ULL * size);
	vq->used = (volatile uint16_t *)(uintptr_t)used;
	memset((void *)(uintptr_t)mem, 0, FW_VQ_MEM_SIZE(size));
	vq->avail[0] = FW_VQ_AVAIL_NO_INTR; /* we poll */
	vq->notify = vd->notify + (uint64_t)mmio_read16(vd->common + COM_Q_NOFF) * vd->notify_mult;
	mmio_write16(vd->common + COM_Q_SIZE, size);
	mmio_write16(vd->common + COM_Q_MSIX, NO_VECTOR);
	mmio_write32(vd->common + COM_Q_DESC, (uint32_t)mem);
	mmio_write32(vd->common + COM_Q_DESC + 4, (uint32_t)(mem >> 32));
	mmio_write32(vd->common + COM_Q_AVAIL, (uint32_t)(mem + 16ULL * size));
	mmio_write32(vd->common + COM_Q_AVAIL + 4, (uint32_t)((mem + 16ULL * size) >> 32));
	mmio_write32(vd->common + COM_Q_USED, (uint32_t)used);
	mmio_write32(vd->common + COM_Q_USED + 4, (uint32_t)(used >> 32));
	mmio_write16(vd->common + COM_Q_ENABLE, 1);
	if (mmio_read16(vd->common + COM_Q_ENABLE) != 1)
		return fail("virtio: queue %u does not enable (status 0x%x)", index,
			    fw_virtio_status(vd));
	return 0;
}

int fw_virtio_driver_ok(struct fw_virtio *vd)
{
	uint8_t st;

	set_status(vd, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	st = fw_virtio_status(vd);
	if (st & (ST_NEEDS_RESET | ST_FAILED) || !(st & ST_DRIVER_OK))
		return fail("virtio: status 0x%x after DRIVER_OK", st);
	return 0;
}

uint8_t fw_virtio_cfg_read8(struct fw_virtio *vd, unsigned off)
{
	return mmio_read8(vd->device + off);
}

uint32_t fw_virtio_cfg_read32(struct fw_virtio *vd, unsigned off)
{
	return mmio_read32(vd->device + off);
}

uint64_t fw_virtio_cfg_read64(struct fw_virtio *vd, unsigned off)
{
	uint8_t gen;
	uint64_t v;

	do {
		gen = mmio_read8(vd->common + COM_CFGGEN);
		v = mmio_read32(vd->device + off) | (uint64_t)mmio_read32(vd->device + off + 4)
							    << 32;
	} while (gen != mmio_read8(vd->common + COM_CFGGEN));
	return v;
}

void fw_vq_publish(struct fw_vq *vq)
{
	/* x86 keeps stores in order: ring entries and descriptors are visible
	 * before the index. */
	asm volatile("" ::: "memory");
	vq->avail[1] = vq->avail_idx;
	/* The index store must be visible before the flag is read, or the
	 * device could have stopped looking in between (a lost kick). */
	asm volatile("mfence" ::: "memory");
	if (vq->used[0] & FW_VQ_USED_NO_NOTIFY)
		return;
	mmio_write16(vq->notify, vq->index);
	vq->kicks++;
}
