/* PCI configuration mechanism #1 (ports 0xCF8/0xCFC), device lookup and
 * memory BAR assignment for firmware drivers (fw_pci.h). */
#include "fw_pci.h"

#define CONF1_ADDR 0xcf8
#define CONF1_DATA 0xcfc
#define BAR_IO     0x1
#define BAR_64     0x4 /* type field (bits 2:1) = 2 */
#define BAR_TYPE   0x6

static uint32_t conf1(unsigned bdf, unsigned reg)
{
	return 0x80000000u | bdf << 8 | (reg & 0xfc);
}

uint32_t fw_pci_read32(unsigned bdf, unsigned reg)
{
	outl(CONF1_ADDR, conf1(bdf, reg));
	return inl(CONF1_DATA);
}

uint16_t fw_pci_read16(unsigned bdf, unsigned reg)
{
	outl(CONF1_ADDR, conf1(bdf, reg));
	return inw(CONF1_DATA + (reg & 2));
}

uint8_t fw_pci_read8(unsigned bdf, unsigned reg)
{
	outl(CONF1_ADDR, conf1(bdf, reg));
	return inb(CONF1_DATA + (reg & 3));
}

void fw_pci_write32(unsigned bdf, unsigned reg, uint32_t v)
{
	outl(CONF1_ADDR, conf1(bdf, reg));
	outl(CONF1_DATA, v);
}

void fw_pci_write16(unsigned bdf, unsigned reg, uint16_t v)
{
	outl(CONF1_ADDR, conf1(bdf, reg));
	outw(CONF1_DATA + (reg & 2), v);
}

bool fw_pci_find(uint16_t vendor, uint16_t device, unsigned *bdf)
{
	uint32_t want = (uint32_t)device << 16 | vendor;

	for (unsigned dev = 0; dev < 32; dev++) {
		unsigned nfn = 1;

		for (unsigned fn = 0; fn < nfn; fn++) {
			uint32_t id = fw_pci_read32(FW_PCI_BDF(0, dev, fn), 0);

			if ((id & 0xffff) == 0xffff)
				continue; /* no such function */
			if (fn == 0 && (fw_pci_read8(FW_PCI_BDF(0, dev, 0), FW_PCI_HEADER) & 0x80))
				nfn = 8;
			if (id == want) {
				*bdf = FW_PCI_BDF(0, dev, fn);
				return true;
			}
		}
	}
	return false;
}

uint64_t fw_pci_bar_addr(unsigned bdf, unsigned idx)
{
	uint32_t lo = fw_pci_read32(bdf, FW_PCI_BAR0 + 4 * idx);
	uint64_t a = lo & ~0xfu;

	if (lo & BAR_IO)
		return 0;
	if ((lo & BAR_TYPE) == BAR_64 && idx < 5)
		a |= (uint64_t)fw_pci_read32(bdf, FW_PCI_BAR0 + 4 * idx + 4) << 32;
	return a;
}

/* Size of memory BAR (idx) (decoding is off); 0 if none. (*is64) says
 * whether it takes the next slot too. */
static uint64_t bar_size(unsigned bdf, unsigned idx, bool *is64)
{
	unsigned reg = FW_PCI_BAR0 + 4 * idx;
	uint32_t lo = fw_pci_read32(bdf, reg), hi = 0, slo, shi = 0xffffffff;
	uint64_t mask;

	*is64 = !(lo & BAR_IO) && (lo & BAR_TYPE) == BAR_64 && idx < 5;
	if (lo & BAR_IO)
		return 0;
	fw_pci_write32(bdf, reg, 0xffffffff);
	slo = fw_pci_read32(bdf, reg);
	fw_pci_write32(bdf, reg, lo);
	if (*is64) {
		hi = fw_pci_read32(bdf, reg + 4);
		fw_pci_write32(bdf, reg + 4, 0xffffffff);
		shi = fw_pci_read32(bdf, reg + 4);
		fw_pci_write32(bdf, reg + 4, hi);
	}
	/* A 32-bit BAR: the upper half reads as all-ones (shi's initial value). */
	mask = (uint64_t)shi << 32 | (slo & ~0xfu);
	if (!(uint32_t)mask && (uint32_t)(mask >> 32) == (*is64 ? 0 : 0xffffffff))
		return 0; /* no such BAR: every size bit reads 0 (PCI spec) */
	return ~mask + 1;
}

int fw_pci_setup_mem_bars(unsigned bdf, uint64_t base)
{
	uint64_t size[6] = { 0 }, addr[6] = { 0 };
	bool is64[6] = { false };
	uint16_t cmd = fw_pci_read16(bdf, FW_PCI_COMMAND);
	int assigned = 0;

	fw_pci_write16(bdf, FW_PCI_COMMAND, cmd & ~(FW_PCI_CMD_MEM | FW_PCI_CMD_IO));
	for (unsigned i = 0; i < 6; i++) {
		size[i] = bar_size(bdf, i, &is64[i]);
		addr[i] = size[i] ? fw_pci_bar_addr(bdf, i) : 0;
		/* Keep clear of what is assigned already. */
		if (addr[i] && addr[i] + size[i] > base)
			base = addr[i] + size[i];
		if (is64[i])
			i++;
	}
	for (unsigned i = 0; i < 6; i++) {
		if (size[i] && !addr[i]) {
			uint64_t a = (base + size[i] - 1) & ~(size[i] - 1);

			if (a + size[i] > 0x100000000ULL || a + size[i] < a) {
				fw_pci_write16(bdf, FW_PCI_COMMAND, cmd);
				return -1;
			}
			fw_pci_write32(bdf, FW_PCI_BAR0 + 4 * i,
				       (uint32_t)a |
					       (fw_pci_read32(bdf, FW_PCI_BAR0 + 4 * i) & 0xf));
			if (is64[i])
				fw_pci_write32(bdf, FW_PCI_BAR0 + 4 * i + 4, 0);
			base = a + size[i];
			assigned++;
		}
		if (is64[i])
			i++;
	}
	fw_pci_write16(bdf, FW_PCI_COMMAND, cmd | FW_PCI_CMD_MEM | FW_PCI_CMD_MASTER);
	return assigned;
}
