/* Network benchmark guest (tools/bench/net): drives the first virtio-net PCI
 * function with its own polled driver at CPL3 (VERSION_1 and MAC only: no
 * offloads, no mergeable buffers) and times its jobs with rdtsc. Result
 * lines go to COM1 (QEMU has no test port); see the comment of main. */
#include "fw.h"
#include "fw_pci.h"
#include "fw_virtio.h"
#include "netbench.h"

#define VIRTIO_ID_NET 1
#define NET_F_MAC     5
#define RXQ           0
#define TXQ           1
#define QSIZE         256

/* Guest-physical memory the benchmark uses (identity-mapped RAM). */
#define RX_RING_GPA 0x800000ULL /* 8 MiB */
#define TX_RING_GPA 0x810000ULL
#define RX_BUF_GPA  0x1000000ULL /* 16 MiB: QSIZE buffers of BUF_SIZE */
#define TX_BUF_GPA  0x1100000ULL
#define BUF_SIZE \
	2048u /* >= NB_HDR_LEN + 1514: what a driver without
			     MRG_RXBUF and GUEST_TSO must give (5.1.6.3.1) */
#define BAR_BASE 0xc0000000ULL

struct job {
	const char *name;
	bool rx;
	uint32_t len; /* frame bytes, without the vnet header */
	uint64_t frames;
	/* results */
	uint64_t tsc, kicks, lost, stray, badlen;
};

static struct fw_virtio dev;
static struct fw_vq rxq, txq;
static uint8_t mac[6], dst[6];
static unsigned batch;
static uint64_t stall_ticks, idle_ticks;
static char err[200];

static volatile uint8_t *rx_buf(unsigned slot)
{
	return (volatile uint8_t *)(uintptr_t)(RX_BUF_GPA + (uint64_t)slot * BUF_SIZE);
}

static volatile uint8_t *tx_buf(unsigned slot)
{
	return (volatile uint8_t *)(uintptr_t)(TX_BUF_GPA + (uint64_t)slot * BUF_SIZE);
}

static int stalled(const struct job *j, uint64_t done)
{
	fw_snprintf(err, sizeof(err), "%s: stalled, %llu of %llu frames done (status 0x%x)",
		    j->name, (unsigned long long)done, (unsigned long long)j->frames,
		    fw_virtio_status(&dev));
	return -1;
}

static int bad_id(const struct job *j, uint32_t id)
{
	fw_snprintf(err, sizeof(err), "%s: used id %u was never made available", j->name, id);
	return -1;
}

/* Every tx slot: a zeroed vnet header (no offload), then a bench frame of
 * (len) bytes for job (job); the descriptor covers both. */
static void tx_prepare(uint32_t len, uint32_t job)
{
	for (unsigned s = 0; s < txq.size; s++) {
		volatile uint8_t *b = tx_buf(s);

		memset((void *)b, 0, NB_HDR_LEN + len);
		nb_frame_init(b + NB_HDR_LEN, dst, mac, job);
		txq.desc[s] = (struct fw_vq_desc){ TX_BUF_GPA + (uint64_t)s * BUF_SIZE,
						   NB_HDR_LEN + len, 0, 0 };
	}
}

static void tx_add(unsigned slot, uint64_t seq)
{
	nb_frame_set_seq(tx_buf(slot) + NB_HDR_LEN, seq);
	fw_vq_add(&txq, (uint16_t)slot);
}

/* Send (j->frames) frames, keeping the queue full; the clock runs from the
 * first frame made available to the last one the device gave back. New
 * frames are published (and the device perhaps kicked) in groups of
 * (batch), or at once when the device has nothing else to send. */
static int tx_job(struct job *j, uint32_t id)
{
	uint64_t added = 0, done = 0, k0 = txq.kicks, t0, last;
	unsigned pending = 0;

	tx_prepare(j->len, id);
	t0 = rdtsc();
	while (added < j->frames && added < txq.size) {
		tx_add((unsigned)added, added);
		added++;
	}
	fw_vq_publish(&txq);
	last = rdtsc();
	while (done < j->frames) {
		uint32_t slot, len;
		bool any = false;

		while (fw_vq_get_used(&txq, &slot, &len)) {
			if (slot >= txq.size)
				return bad_id(j, slot);
			done++;
			any = true;
			if (added < j->frames) {
				tx_add(slot, added++);
				pending++;
			}
		}
		if (pending && (pending >= batch || added - done == pending)) {
			fw_vq_publish(&txq);
			pending = 0;
		}
		if (any)
			last = rdtsc();
		else if (rdtsc() - last > stall_ticks)
			return stalled(j, done);
		else
			asm volatile("pause");
	}
	j->tsc = last - t0;
	j->kicks = txq.kicks - k0;
	return 0;
}

/* Every receive descriptor: one device-writable buffer of BUF_SIZE. */
static void rx_fill(void)
{
	for (unsigned s = 0; s < rxq.size; s++) {
		rxq.desc[s] = (struct fw_vq_desc){ RX_BUF_GPA + (uint64_t)s * BUF_SIZE, BUF_SIZE,
						   FW_VQ_DESC_WRITE, 0 };
		fw_vq_add(&rxq, (uint16_t)s);
	}
	fw_vq_publish(&rxq);
}

/* Count (j->frames) bench frames of job (id) after the first one, which
 * starts the clock; other frames are strays (host noise, a previous job's
 * tail). Buffers go back in groups of (batch), or when no frame came for
 * (idle_ticks): a kick per frame would cost more than the frame. Sequence
 * gaps are frames lost on the way (the host sends faster than a VMM can
 * take them, and the tap drops the rest). */
static int rx_job(struct job *j, uint32_t id)
{
	uint64_t got = 0, next = 0, k0 = rxq.kicks, t0 = 0, last = rdtsc(), now;
	unsigned pending = 0;
	bool started = false;

	fw_printf("netbench: rx-wait job=%u len=%u frames=%llu\n", id, j->len,
		  (unsigned long long)j->frames);
	while (got < j->frames) {
		uint32_t slot, len;
		bool any = false;

		while (fw_vq_get_used(&rxq, &slot, &len)) {
			volatile const uint8_t *f = rx_buf(slot) + NB_HDR_LEN;
			unsigned long long seq;

			if (slot >= rxq.size)
				return bad_id(j, slot);
			any = true;
			if (len < NB_HDR_LEN + NB_FRAME_MIN || len > BUF_SIZE ||
			    !nb_frame_is(f, id, &seq))
				j->stray++;
			else if (len != NB_HDR_LEN + j->len)
				j->badlen++;
			else if (!started) {
				started = true;
				t0 = rdtsc();
				next = seq + 1;
			} else {
				got++;
				if (seq > next)
					j->lost += seq - next;
				if (seq >= next)
					next = seq + 1;
			}
			fw_vq_add(&rxq, (uint16_t)slot);
			pending++;
		}
		now = rdtsc();
		if (any)
			last = now;
		if (pending && (pending >= batch || now - last > idle_ticks)) {
			fw_vq_publish(&rxq);
			pending = 0;
		}
		if (!any && now - last > stall_ticks)
			return stalled(j, got);
		if (!any)
			asm volatile("pause");
	}
	j->tsc = rdtsc() - t0;
	if (pending)
		fw_vq_publish(&rxq);
	j->kicks = rxq.kicks - k0;
	return 0;
}

static int setup(void)
{
	if (fw_virtio_init(&dev, VIRTIO_ID_NET, 1ULL << NET_F_MAC, BAR_BASE) ||
	    fw_virtio_setup_vq(&dev, &rxq, RXQ, QSIZE, RX_RING_GPA) ||
	    fw_virtio_setup_vq(&dev, &txq, TXQ, QSIZE, TX_RING_GPA) || fw_virtio_driver_ok(&dev)) {
		fw_snprintf(err, sizeof(err), "%s", fw_virtio_err);
		return -1;
	}
	if (!(dev.features & 1ULL << NET_F_MAC)) {
		fw_snprintf(err, sizeof(err), "the device has no MAC address (features 0x%llx)",
			    (unsigned long long)dev.features);
		return -1;
	}
	for (unsigned i = 0; i < 6; i++)
		mac[i] = fw_virtio_cfg_read8(&dev, i);
	rx_fill();
	fw_printf("netbench: virtio-net at %02x:%02x.%x, mac %02x:%02x:%02x:%02x:%02x:%02x, "
		  "queue sizes %u/%u, features 0x%llx, %d BARs assigned here\n",
		  dev.bdf >> 8, (dev.bdf >> 3) & 31, dev.bdf & 7, mac[0], mac[1], mac[2], mac[3],
		  mac[4], mac[5], rxq.size, txq.size, (unsigned long long)dev.features,
		  dev.bars_assigned);
	return 0;
}

/* CPL3: everything, so that only the runtime's start-up runs emulated on
 * kvm-pvm hosts. 0, or -1 with the reason in err. */
static uint64_t bench(uint64_t arg)
{
	struct job list[] = {
		{ .name = "tx", .len = 64, .frames = fw_cmdline_u64("net.tx64", 1000000) },
		{ .name = "tx", .len = 1500, .frames = fw_cmdline_u64("net.tx1500", 300000) },
		{ .name = "rx",
		  .rx = true,
		  .len = 64,
		  .frames = fw_cmdline_u64("net.rx64", 500000) },
		{ .name = "rx",
		  .rx = true,
		  .len = 1500,
		  .frames = fw_cmdline_u64("net.rx1500", 200000) },
	};
	uint64_t d = fw_cmdline_u64("net.dst", NB_HOST_MAC);

	for (unsigned i = 0; i < 6; i++)
		dst[i] = (uint8_t)(d >> (40 - 8 * i));
	batch = (unsigned)fw_cmdline_u64("net.batch", 32);
	stall_ticks = fw_cmdline_u64("net.stall_tsc", 100000000000ULL);
	idle_ticks = fw_cmdline_u64("net.idle_tsc", 200000);
	if (!batch || batch > QSIZE) {
		fw_snprintf(err, sizeof(err), "net.batch=%u: 1 to %u", batch, QSIZE);
		return (uint64_t)-1;
	}
	if (setup())
		return (uint64_t)-1;
	for (unsigned i = 0; i < ARRAY_SIZE(list); i++) {
		struct job *j = &list[i];

		if (!j->frames)
			continue;
		if ((j->rx ? rx_job : tx_job)(j, i + 1))
			return (uint64_t)-1;
		fw_printf("netbench: %s len=%u frames=%llu bytes=%llu tsc=%llu kicks=%llu", j->name,
			  j->len, (unsigned long long)j->frames,
			  (unsigned long long)(j->frames * j->len), (unsigned long long)j->tsc,
			  (unsigned long long)j->kicks);
		if (j->rx)
			fw_printf(" lost=%llu stray=%llu badlen=%llu", (unsigned long long)j->lost,
				  (unsigned long long)j->stray, (unsigned long long)j->badlen);
		fw_printf("\n");
	}
	return 0;
}

/* Jobs, in this order (command-line key = frame count, 0 skips the job):
 *   net.tx64 (1000000), net.tx1500 (300000)   frames of 64 and 1500 bytes
 *       sent to net.dst (default NB_HOST_MAC) as fast as the device takes them
 *   net.rx64 (500000), net.rx1500 (200000)    after "netbench: rx-wait
 *       job=<id> len=<n> frames=<n>", count the host's frames of that job
 * Each job ends with one line:
 *   netbench: tx|rx len=<n> frames=<n> bytes=<n> tsc=<ticks> kicks=<n>
 *             [rx: lost=<n> stray=<n> badlen=<n>]
 * and the guest with "netbench: done" (or "netbench: error: ..."). Also:
 * net.batch (32) frames per publish, net.stall_tsc (1e11) ticks without
 * progress that end the run, net.idle_tsc (2e5) ticks without a received
 * frame after which the buffers taken so far go back. */
void main(void)
{
	fw_printf("kvisor firmware: netbench\n");
	/* Legacy PICs masked: no stray interrupt while we poll. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	if (fw_user_call(bench, 0)) {
		fw_printf("netbench: error: %s\n", err);
		FW_FAIL("%s", err);
	}
	fw_printf("netbench: done\n");
}
