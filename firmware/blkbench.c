/* Block benchmark guest (tools/bench/blk): drives the first virtio-blk PCI
 * function with its own polled driver at CPL3 and times three jobs with
 * rdtsc: sequential 1 MiB reads, random 4 KiB reads, sequential 1 MiB
 * writes, each keeping blk.qd (random: blk.rand_qd) requests in flight.
 * Result lines go to COM1 (QEMU has no test port):
 *   blkbench: <job> len=<bytes> qd=<n> reqs=<n> bytes=<n> tsc=<ticks>
 *             errors=<n> badlen=<n> baddata=<n> kicks=<n>
 * Features: VERSION_1 and FLUSH, as every Linux guest has them: without
 * FLUSH, QEMU turns its write cache off ("auto writethrough", a flush
 * after each write) while kvisor does not. No flush is ever sent.
 * Reads are checked against the image pattern tools/bench/blk writes (each
 * 512-byte sector starts with its own byte offset, little-endian; the rest
 * is 0xa5), and writes write that same pattern, so the image stays valid.
 * Command line: blk.qd (default 32), blk.rand_qd (32), blk.seq_mib (the
 * whole disk), blk.rand_reqs (65536), blk.jobs (bits: 1 seqread, 2
 * randread, 4 seqwrite; default 7), blk.verify (1), blk.seed (1). */
#include "fw.h"
#include "fw_pci.h"
#include "fw_virtio.h"

#define VIRTIO_ID_BLOCK 2
#define BLK_F_FLUSH     9
#define BLK_T_IN        0
#define BLK_T_OUT       1
#define BLK_S_OK        0
#define SECTOR          512ULL
#define PATTERN_BYTE    0xa5

/* Guest-physical memory the benchmark uses (identity-mapped RAM). */
#define RING_GPA    0x800000ULL         /* 8 MiB: the virtqueue */
#define HDR_GPA     (RING_GPA + 0x8000) /* request headers, 16 bytes each */
#define STATUS_GPA  (RING_GPA + 0x9000) /* status bytes */
#define BUF_GPA     0x1000000ULL        /* 16 MiB: one data buffer per slot */
#define SEQ_LEN     (1ULL << 20)
#define RAND_LEN    4096ULL
#define MAX_QD      85              /* 3 descriptors each in a 256-entry queue */
#define BAR_BASE    0xc0000000ULL   /* for BARs left unassigned */
#define STALL_TICKS 100000000000ULL /* no completion for this long: stalled */

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct job {
	const char *name;
	unsigned bit;
	uint32_t type;
	uint64_t len;
	bool random;
	unsigned qd;
	uint64_t reqs;
	/* results */
	uint64_t tsc, errors, badlen, baddata, kicks;
};

static struct fw_virtio dev;
static struct fw_vq vq;
static uint64_t capacity; /* bytes */
static uint64_t seed;
static bool verify;
static char err[200];
static uint64_t slot_off[MAX_QD];

static volatile struct blk_hdr *hdr(unsigned slot)
{
	return (volatile struct blk_hdr *)(uintptr_t)(HDR_GPA + 16ULL * slot);
}

static volatile uint8_t *status(unsigned slot)
{
	return (volatile uint8_t *)(uintptr_t)(STATUS_GPA + slot);
}

static uint64_t buf(unsigned slot, uint64_t len)
{
	return BUF_GPA + (uint64_t)slot * len;
}

/* xorshift64*: the same offsets on every VMM. */
static uint64_t prng(void)
{
	seed ^= seed >> 12;
	seed ^= seed << 25;
	seed ^= seed >> 27;
	return seed * 0x2545f4914f6cdd1dULL;
}

static uint64_t next_offset(const struct job *j, uint64_t n)
{
	uint64_t span = capacity / j->len * j->len;

	if (j->random)
		return prng() % (capacity / j->len) * j->len;
	return n * j->len % span;
}

/* Fill (len) bytes at (gpa) with the image pattern of disk offset (off):
 * only the offsets (the rest was set up by fill_pattern). */
static void stamp(uint64_t gpa, uint64_t off, uint64_t len)
{
	for (uint64_t s = 0; s < len; s += SECTOR)
		*(volatile uint64_t *)(uintptr_t)(gpa + s) = off + s;
}

static void fill_pattern(uint64_t gpa, uint64_t len)
{
	memset((void *)(uintptr_t)gpa, PATTERN_BYTE, len);
}

/* Sectors of a read whose tag is not their offset. */
static bool check(uint64_t gpa, uint64_t off, uint64_t len)
{
	for (uint64_t s = 0; s < len; s += SECTOR)
		if (*(volatile uint64_t *)(uintptr_t)(gpa + s) != off + s)
			return false;
	return true;
}

/* Build slot (slot)'s chain for request (n) of (j) and add it. */
static void submit(struct job *j, unsigned slot, uint64_t n)
{
	uint16_t d = (uint16_t)(3 * slot);
	uint64_t off = next_offset(j, n), data = buf(slot, j->len);

	slot_off[slot] = off;
	hdr(slot)->type = j->type;
	hdr(slot)->reserved = 0;
	hdr(slot)->sector = off / SECTOR;
	*status(slot) = 0xff;
	if (j->type == BLK_T_OUT)
		stamp(data, off, j->len);
	vq.desc[d] = (struct fw_vq_desc){ HDR_GPA + 16ULL * slot, 16, FW_VQ_DESC_NEXT,
					  (uint16_t)(d + 1) };
	vq.desc[d + 1] = (struct fw_vq_desc){
		data, (uint32_t)j->len,
		(uint16_t)(FW_VQ_DESC_NEXT | (j->type == BLK_T_IN ? FW_VQ_DESC_WRITE : 0)),
		(uint16_t)(d + 2)
	};
	vq.desc[d + 2] = (struct fw_vq_desc){ STATUS_GPA + slot, 1, FW_VQ_DESC_WRITE, 0 };
	fw_vq_add(&vq, d);
}

/* A used chain: its status, used length and, for reads, the data. */
static void complete(struct job *j, uint32_t id, uint32_t len)
{
	unsigned slot = id / 3;
	uint8_t st = *status(slot);
	uint32_t want = j->type == BLK_T_IN ? (uint32_t)j->len + 1 : 1;

	if (st != BLK_S_OK) {
		if (!j->errors)
			fw_printf("blkbench: %s: request at byte %llu: status %u\n", j->name,
				  (unsigned long long)slot_off[slot], st);
		j->errors++;
		return;
	}
	if (len != want) {
		if (!j->badlen)
			fw_printf("blkbench: %s: request at byte %llu: used length %u, expected %u\n",
				  j->name, (unsigned long long)slot_off[slot], len, want);
		j->badlen++;
	}
	if (verify && j->type == BLK_T_IN && !check(buf(slot, j->len), slot_off[slot], j->len)) {
		if (!j->baddata)
			fw_printf("blkbench: %s: request at byte %llu: wrong data (tag 0x%llx)\n",
				  j->name, (unsigned long long)slot_off[slot],
				  (unsigned long long)*(volatile uint64_t *)(uintptr_t)buf(slot,
											   j->len));
		j->baddata++;
	}
}

/* Keep (j->qd) requests in flight until (j->reqs) are done; 0 or -1 (stall,
 * or a chain the driver never made). */
static int run_job(struct job *j)
{
	uint64_t issued = 0, done = 0, t0, last, k0 = vq.kicks;
	unsigned qd = j->qd;

	if (j->type == BLK_T_OUT)
		fill_pattern(BUF_GPA, qd * j->len);
	if (qd > j->reqs)
		qd = (unsigned)j->reqs;
	t0 = rdtsc();
	for (unsigned s = 0; s < qd; s++)
		submit(j, s, issued++);
	fw_vq_publish(&vq);
	last = rdtsc();
	while (done < j->reqs) {
		uint32_t id, len;
		bool any = false;

		while (fw_vq_get_used(&vq, &id, &len)) {
			if (id % 3 || id / 3 >= qd) {
				fw_snprintf(err, sizeof(err),
					    "%s: used id %u was never made available", j->name, id);
				return -1;
			}
			complete(j, id, len);
			done++;
			any = true;
			if (issued < j->reqs)
				submit(j, id / 3, issued++);
		}
		if (any) {
			fw_vq_publish(&vq);
			last = rdtsc();
		} else if (rdtsc() - last > STALL_TICKS) {
			fw_snprintf(err, sizeof(err),
				    "%s: stalled, %llu of %llu requests done (status 0x%x)",
				    j->name, (unsigned long long)done, (unsigned long long)j->reqs,
				    fw_virtio_status(&dev));
			return -1;
		} else {
			asm volatile("pause");
		}
	}
	j->tsc = rdtsc() - t0;
	j->kicks = vq.kicks - k0;
	return 0;
}

/* The memory map says the benchmark's RAM exists (when there is one). */
static int check_ram(uint64_t end)
{
	const struct hvm_start_info *si = fw_start_info();
	const struct hvm_memmap_entry *e;

	if (!si || si->version < 1 || !si->memmap_paddr)
		return 0;
	e = (const void *)(uintptr_t)si->memmap_paddr;
	for (unsigned i = 0; i < si->memmap_entries; i++)
		if (e[i].type == 1 && e[i].addr <= RING_GPA && e[i].addr + e[i].size >= end)
			return 0;
	fw_snprintf(err, sizeof(err), "RAM 0x%llx-0x%llx needed (give the guest more memory)",
		    (unsigned long long)RING_GPA, (unsigned long long)end);
	return -1;
}

static int setup(void)
{
	if (fw_virtio_init(&dev, VIRTIO_ID_BLOCK, 1ULL << BLK_F_FLUSH, BAR_BASE) ||
	    fw_virtio_setup_vq(&dev, &vq, 0, 256, RING_GPA) || fw_virtio_driver_ok(&dev)) {
		fw_snprintf(err, sizeof(err), "%s", fw_virtio_err);
		return -1;
	}
	if (FW_VQ_MEM_SIZE(vq.size) > HDR_GPA - RING_GPA) {
		fw_snprintf(err, sizeof(err), "ring too large");
		return -1;
	}
	capacity = fw_virtio_cfg_read64(&dev, 0) * SECTOR;
	fw_printf("blkbench: virtio-blk at %02x:%02x.%x, %llu bytes, queue size %u, "
		  "features 0x%llx, %d BARs assigned here\n",
		  dev.bdf >> 8, (dev.bdf >> 3) & 31, dev.bdf & 7, (unsigned long long)capacity,
		  vq.size, (unsigned long long)dev.features, dev.bars_assigned);
	if (capacity < SEQ_LEN) {
		fw_snprintf(err, sizeof(err), "disk of %llu bytes: at least 1 MiB needed",
			    (unsigned long long)capacity);
		return -1;
	}
	return 0;
}

/* CPL3: everything, so that only the runtime's start-up runs emulated on
 * kvm-pvm hosts. 0: all requests succeeded; 1: some failed; -1: error. */
static uint64_t bench(uint64_t arg)
{
	uint64_t qd = fw_cmdline_u64("blk.qd", 32), rqd = fw_cmdline_u64("blk.rand_qd", 32);
	uint64_t jobs = fw_cmdline_u64("blk.jobs", 7), seq_mib, bad = 0;
	struct job list[] = {
		{ .name = "seqread",
		  .bit = 1,
		  .type = BLK_T_IN,
		  .len = SEQ_LEN,
		  .qd = (unsigned)qd },
		{ .name = "randread",
		  .bit = 2,
		  .type = BLK_T_IN,
		  .len = RAND_LEN,
		  .random = true,
		  .qd = (unsigned)rqd,
		  .reqs = fw_cmdline_u64("blk.rand_reqs", 65536) },
		{ .name = "seqwrite",
		  .bit = 4,
		  .type = BLK_T_OUT,
		  .len = SEQ_LEN,
		  .qd = (unsigned)qd },
	};

	seed = fw_cmdline_u64("blk.seed", 1) | 1;
	verify = fw_cmdline_u64("blk.verify", 1) != 0;
	if (!qd || !rqd || qd > MAX_QD || rqd > MAX_QD) {
		fw_snprintf(err, sizeof(err), "blk.qd=%llu blk.rand_qd=%llu: 1 to %u",
			    (unsigned long long)qd, (unsigned long long)rqd, MAX_QD);
		return (uint64_t)-1;
	}
	if (check_ram(BUF_GPA + qd * SEQ_LEN) || setup())
		return (uint64_t)-1;
	if (3 * (qd > rqd ? qd : rqd) > vq.size) {
		fw_snprintf(err, sizeof(err),
			    "queue of %u entries: blk.qd and blk.rand_qd up to %u", vq.size,
			    vq.size / 3);
		return (uint64_t)-1;
	}
	/* Touch every buffer once: the first DMA into a page would also pay for
	 * the host allocating it, in whichever job came first. */
	fill_pattern(BUF_GPA, qd * SEQ_LEN);
	seq_mib = fw_cmdline_u64("blk.seq_mib", capacity / SEQ_LEN);
	list[0].reqs = list[2].reqs = seq_mib;
	for (unsigned i = 0; i < ARRAY_SIZE(list); i++) {
		struct job *j = &list[i];

		if (!(jobs & j->bit) || !j->reqs)
			continue;
		if (run_job(j))
			return (uint64_t)-1;
		fw_printf("blkbench: %s len=%llu qd=%u reqs=%llu bytes=%llu tsc=%llu errors=%llu "
			  "badlen=%llu baddata=%llu kicks=%llu\n",
			  j->name, (unsigned long long)j->len,
			  j->qd < j->reqs ? j->qd : (unsigned)j->reqs, (unsigned long long)j->reqs,
			  (unsigned long long)(j->reqs * j->len), (unsigned long long)j->tsc,
			  (unsigned long long)j->errors, (unsigned long long)j->badlen,
			  (unsigned long long)j->baddata, (unsigned long long)j->kicks);
		bad += j->errors + j->badlen + j->baddata;
	}
	return bad ? 1 : 0;
}

void main(void)
{
	uint64_t ret;

	fw_printf("kvisor firmware: blkbench\n");
	/* Legacy PICs masked: no stray interrupt while we poll. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	ret = fw_user_call(bench, 0);
	if (ret == (uint64_t)-1) {
		fw_printf("blkbench: error: %s\n", err);
		FW_FAIL("%s", err);
	}
	if (ret)
		FW_FAIL("failed requests (see the blkbench lines on the console)");
	fw_printf("blkbench: done\n");
}
