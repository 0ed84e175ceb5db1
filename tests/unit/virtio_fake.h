/* A minimal virtio test device on the PCI transport, for the unit tests of
 * the transport (check_virtio_pci.c) and of the device API
 * (check_virtio_dev.c): it pushes every chain at once, or holds them. */
#ifndef KVISOR_TESTS_VIRTIO_FAKE_H
#define KVISOR_TESTS_VIRTIO_FAKE_H

#include <stdint.h>
#include <string.h>

#include "kvisor/log.h"
#include "kvisor/vq.h"
#include "virtio_driver.h"

#define FAKE_ID       30 /* an unassigned virtio device ID */
#define FAKE_QUEUES   3
#define FAKE_QSIZE    64
#define FAKE_FEAT     (1ULL << 0 | 1ULL << 5)
#define FAKE_CFG_SIZE 16

#define S_ACK VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRV VIRTIO_STATUS_DRIVER
#define S_FOK VIRTIO_STATUS_FEATURES_OK
#define S_DOK VIRTIO_STATUS_DRIVER_OK
#define S_NR  VIRTIO_STATUS_NEEDS_RESET
#define F_V1  (1ULL << VIRTIO_F_VERSION_1)

/* The test device: pushes every chain at once (writing its writable bytes
 * with 0xab), or holds them when asked to; pops with virtio_dev_pop, or
 * with virtio_dev_pop_polled when asked to. */
static struct fake {
	struct virtio_dev *dev;
	uint8_t cfg[FAKE_CFG_SIZE];
	unsigned notifies[FAKE_QUEUES];
	unsigned resets;
	bool hold;
	bool polled; /* take chains with virtio_dev_pop_polled */
	unsigned nheld;
	struct {
		unsigned q;
		uint16_t head;
	} held[64];
	int last_pop;
	struct vq_chain chain;
} fake;

static void fake_cfg_read(void *opaque, uint32_t off, void *data, uint32_t len)
{
	ck_assert_uint_le(off + len, FAKE_CFG_SIZE);
	memcpy(data, fake.cfg + off, len);
}

static void fake_cfg_write(void *opaque, uint32_t off, const void *data, uint32_t len)
{
	memcpy(fake.cfg + off, data, len);
}

static void fake_queue_notify(void *opaque, unsigned q)
{
	int r;

	__atomic_add_fetch(&fake.notifies[q], 1, __ATOMIC_SEQ_CST);
	while ((r = fake.polled ? virtio_dev_pop_polled(fake.dev, q, &fake.chain) :
				  virtio_dev_pop(fake.dev, q, &fake.chain)) > 0) {
		uint8_t fill[64];

		if (fake.hold) {
			ck_assert_uint_lt(fake.nheld, 64);
			fake.held[fake.nheld].q = q;
			fake.held[fake.nheld++].head = fake.chain.head;
			continue;
		}
		memset(fill, 0xab, sizeof(fill));
		vq_chain_write(&fake.chain, 0, fill,
			       fake.chain.writable_len < 64 ? fake.chain.writable_len : 64);
		virtio_dev_push(fake.dev, q, fake.chain.head, (uint32_t)fake.chain.writable_len);
	}
	virtio_dev_notify(fake.dev, q);
	__atomic_store_n(&fake.last_pop, r, __ATOMIC_SEQ_CST);
}

static void fake_reset(void *opaque)
{
	fake.resets++;
	fake.nheld = 0;
}

static const struct virtio_ops fake_ops = {
	.cfg_read = fake_cfg_read,
	.cfg_write = fake_cfg_write,
	.queue_notify = fake_queue_notify,
	.reset = fake_reset,
};

static struct td_dev d;

static void setup(void)
{
	const struct virtio_dev_config cfg = {
		.transport = VIRTIO_TRANSPORT_PCI,
		.name = "virtio-test0",
		.device_id = FAKE_ID,
		.features = FAKE_FEAT,
		.nr_queues = FAKE_QUEUES,
		.queue_size = FAKE_QSIZE,
		.cfg_size = FAKE_CFG_SIZE,
	};

	log_threshold = LOG_ERR; /* violations are logged as warnings */
	memset(&fake, 0, sizeof(fake));
	for (unsigned i = 0; i < FAKE_CFG_SIZE; i++)
		fake.cfg[i] = (uint8_t)(0x10 + i);
	memset(&td_cfg, 0, sizeof(td_cfg));
	td_cfg.cpus = 1;
	td_vm_setup();
	ck_assert_int_eq(virtio_dev_create(&fake.dev, &td_vm, td_vm.io, &cfg, &fake_ops, NULL), 0);
	td_probe(&d, VIRTIO_PCI_DEVICE_ID_BASE + FAKE_ID, 0);
}

static void teardown(void)
{
	virtio_dev_destroy(fake.dev);
	td_vm_teardown();
}

static inline unsigned notifies(unsigned q)
{
	return __atomic_load_n(&fake.notifies[q], __ATOMIC_SEQ_CST);
}

/* Wait until queue (q) was served (n) times in total. */
static inline bool wait_notifies(unsigned q, unsigned n)
{
	for (unsigned t = 0; t < TD_TIMEOUT_MS; t++) {
		if (notifies(q) >= n)
			return true;
		td_sleep_ms(1);
	}
	return false;
}

/* Wait until the test device holds (n) chains. */
static inline void wait_held(unsigned n)
{
	for (unsigned t = 0;; t++) {
		unsigned held;

		virtio_dev_lock(fake.dev);
		held = fake.nheld;
		virtio_dev_unlock(fake.dev);
		if (held >= n)
			return;
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
}

/* The driver's setup up to FEATURES_OK with VERSION_1 only: no queues,
 * no DRIVER_OK yet. */
static inline void drive_to_features_ok(void)
{
	td_set_status(&d, S_ACK);
	td_set_status(&d, S_ACK | S_DRV);
	td_driver_features(&d, F_V1);
	td_set_status(&d, S_ACK | S_DRV | S_FOK);
}

/* A chain of one readable and one writable buffer on queue (q). */
static inline uint16_t add_simple(unsigned q, uint64_t *wbuf)
{
	struct td_buf b[2] = { { td_alloc(32), 32, false }, { td_alloc(64), 64, true } };

	*wbuf = b[1].gpa;
	return td_add(&d, q, b, 2);
}

/* The driver set up with one queue of 16 entries, and two chains kicked on
 * it that the device now holds (fake.held[0] and [1]). */
static inline void hold_two_chains(void)
{
	uint64_t w;

	td_init(&d, F_V1, 1, 16);
	fake.hold = true;
	add_simple(0, &w);
	add_simple(0, &w);
	td_kick(&d, 0);
	wait_held(2);
}

#endif
