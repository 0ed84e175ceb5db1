/* Network benchmark guest (tools/bench/net): drives the first virtio-net PCI
 * function with its own polled driver at CPL3 (VERSION_1 and MAC only: no
 * offloads, no mergeable buffers) and times its jobs with rdtsc. Result
 * lines go to COM1 (QEMU has no test port); see the comment of main. */
#include "fw.h"
#include "fw_net.h"
#include "netbench.h"

#define NET_GPA  0x800000ULL /* 8 MiB: rings and buffers (identity-mapped RAM) */
#define BAR_BASE 0xc0000000ULL

struct job {
	const char *name;
	bool rx;
	uint32_t len; /* frame bytes, without the vnet header */
	uint64_t frames;
	/* results */
	uint64_t tsc, kicks, lost, stray, badlen;
};

static struct fw_net net;
static uint8_t dst[6];
static unsigned batch;
static uint64_t stall_ticks, idle_ticks;
static char err[200];

static int stalled(const struct job *j, uint64_t done)
{
	fw_snprintf(err, sizeof(err), "%s: stalled, %llu of %llu frames done (status 0x%x)",
		    j->name, (unsigned long long)done, (unsigned long long)j->frames,
		    fw_virtio_status(&net.dev));
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
	for (unsigned s = 0; s < net.tx.size; s++) {
		volatile uint8_t *b = fw_net_tx_buf(&net, s);

		memset((void *)b, 0, FW_NET_HDR_LEN + len);
		nb_frame_init(b + FW_NET_HDR_LEN, dst, net.mac, job);
		fw_net_tx_desc(&net, s, len);
	}
}

static void tx_add(unsigned slot, uint64_t seq)
{
	nb_frame_set_seq(fw_net_tx_buf(&net, slot) + FW_NET_HDR_LEN, seq);
	fw_vq_add(&net.tx, (uint16_t)slot);
}

/* Send (j->frames) frames, keeping the queue full; the clock runs from the
 * first frame made available to the last one the device gave back. New
 * frames are published (and the device perhaps kicked) in groups of
 * (batch), or at once when the device has nothing else to send. */
static int tx_job(struct job *j, uint32_t id)
{
	uint64_t added = 0, done = 0, k0 = net.tx.kicks, t0, last;
	unsigned pending = 0;

	tx_prepare(j->len, id);
	t0 = rdtsc();
	while (added < j->frames && added < net.tx.size) {
		tx_add((unsigned)added, added);
		added++;
	}
	fw_vq_publish(&net.tx);
	last = rdtsc();
	while (done < j->frames) {
		uint32_t slot, len;
		bool any = false;

		while (fw_vq_get_used(&net.tx, &slot, &len)) {
			if (slot >= net.tx.size)
				return bad_id(j, slot);
			done++;
			any = true;
			if (added < j->frames) {
				tx_add(slot, added++);
				pending++;
			}
		}
		if (pending && (pending >= batch || added - done == pending)) {
			fw_vq_publish(&net.tx);
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
	j->kicks = net.tx.kicks - k0;
	return 0;
}

/* Count (j->frames) bench frames of job (id) after the first one, which
 * starts the clock; other frames are strays (host noise, a previous job's
 * tail). Buffers go back in groups of (batch), or when no frame came for
 * (idle_ticks): a kick per frame would cost more than the frame. Sequence
 * gaps are frames lost after the tap took them (the host's generator sends
 * a frame the full tap refused again, with the same number). */
static int rx_job(struct job *j, uint32_t id)
{
	uint64_t got = 0, next = 0, k0 = net.rx.kicks, t0 = 0, last = rdtsc(), now;
	unsigned pending = 0;
	bool started = false;

	fw_printf("netbench: rx-wait job=%u len=%u frames=%llu\n", id, j->len,
		  (unsigned long long)j->frames);
	while (got < j->frames) {
		uint32_t slot, len;
		bool any = false;

		while (fw_vq_get_used(&net.rx, &slot, &len)) {
			volatile const uint8_t *f = fw_net_rx_buf(&net, slot) + FW_NET_HDR_LEN;
			unsigned long long seq;

			if (slot >= net.rx.size)
				return bad_id(j, slot);
			any = true;
			if (len < FW_NET_HDR_LEN + NB_FRAME_MIN || len > FW_NET_BUF ||
			    !nb_frame_is(f, id, &seq))
				j->stray++;
			else if (len != FW_NET_HDR_LEN + j->len)
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
			fw_vq_add(&net.rx, (uint16_t)slot);
			pending++;
		}
		now = rdtsc();
		if (any)
			last = now;
		if (pending && (pending >= batch || now - last > idle_ticks)) {
			fw_vq_publish(&net.rx);
			pending = 0;
		}
		if (!any && now - last > stall_ticks)
			return stalled(j, got);
		if (!any)
			asm volatile("pause");
	}
	j->tsc = rdtsc() - t0;
	if (pending)
		fw_vq_publish(&net.rx);
	j->kicks = net.rx.kicks - k0;
	return 0;
}

static int setup(void)
{
	const uint8_t *mac = net.mac;

	if (fw_net_init(&net, NET_GPA, BAR_BASE)) {
		fw_snprintf(err, sizeof(err), "%s", fw_virtio_err);
		return -1;
	}
	fw_printf("netbench: virtio-net at %02x:%02x.%x, mac %02x:%02x:%02x:%02x:%02x:%02x, "
		  "queue sizes %u/%u, features 0x%llx, %d BARs assigned here\n",
		  net.dev.bdf >> 8, (net.dev.bdf >> 3) & 31, net.dev.bdf & 7, mac[0], mac[1],
		  mac[2], mac[3], mac[4], mac[5], net.rx.size, net.tx.size,
		  (unsigned long long)net.dev.features, net.dev.bars_assigned);
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
	if (!batch || batch > FW_NET_Q) {
		fw_snprintf(err, sizeof(err), "net.batch=%u: 1 to %u", batch, FW_NET_Q);
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
