/* Unit tests of the virtio PCI transport, driven as a guest driver would
 * through config space and BAR 0: identity and capabilities, feature
 * negotiation, the status state machine, queue configuration locked after
 * DRIVER_OK, reset, doorbells (MMIO and ioeventfd), the PCI configuration
 * access capability, interrupts. The device behind it is a minimal
 * test device (virtio_fake.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "virtio_fake.h"

static void expect_needs_reset(void)
{
	ck_assert(td_status(&d) & S_NR);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1) & VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_ISR_CONFIG);
}

START_TEST(test_identity)
{
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_VENDOR_ID, 2), 0x1af4);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_DEVICE_ID, 2), 0x1040 + FAKE_ID);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_REVISION, 1), 1);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_SUBSYS_VENDOR, 2), 0x1af4);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_SUBSYS_ID, 2), FAKE_ID);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_REVISION, 4) >> 8, 0xff0000);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_INT_PIN, 1), 0); /* MSI-X only */
	/* BAR 0: 64-bit memory, 16 KiB (sized the usual way). */
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_BAR0, 4) & 0xf, 0x4);
	td_cfg_write(d.slot, PCI_CFG_BAR0, 4, 0xffffffff);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_BAR0, 4) & ~0xfu, ~(uint32_t)(0x4000 - 1));
	td_cfg_write(d.slot, PCI_CFG_BAR0, 4, (uint32_t)d.bar0);
	ck_assert_uint_eq(d.common, d.bar0 + 0x0000);
	ck_assert_uint_eq(d.isr, d.bar0 + 0x1000);
	ck_assert_uint_eq(d.device, d.bar0 + 0x2000);
	ck_assert_uint_eq(d.device_len, FAKE_CFG_SIZE);
	ck_assert_uint_eq(d.notify, d.bar0 + 0x3000);
	ck_assert_uint_eq(d.notify_mult, 4);
	ck_assert_uint_ge(d.notify_len, 4 * (FAKE_QUEUES - 1) + 2);
	ck_assert_uint_eq(d.nr_vectors, FAKE_QUEUES + 1);
	ck_assert_uint_ne(d.msix_bar, 0);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_NUMQ, 2), FAKE_QUEUES);
	/* Device configuration through BAR 0, any width. */
	ck_assert_uint_eq(td_mmio_read(d.device, 1), 0x10);
	ck_assert_uint_eq(td_mmio_read(d.device + 4, 4), 0x17161514);
	ck_assert_uint_eq(td_mmio_read(d.device + 8, 8), 0x1f1e1d1c1b1a1918ULL);
	ck_assert_uint_eq(td_mmio_read(d.device + 14, 4), 0); /* crosses the end */
	td_mmio_write(d.device + 2, 2, 0xbeef);
	ck_assert_uint_eq(fake.cfg[2], 0xef);
	ck_assert_uint_eq(fake.cfg[3], 0xbe);
}
END_TEST

START_TEST(test_features)
{
	uint64_t f = td_device_features(&d);

	ck_assert_uint_eq(f, FAKE_FEAT | F_V1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
				     1ULL << VIRTIO_F_EVENT_IDX);
	td_common_write(&d, VIRTIO_PCI_COMMON_DFSELECT, 4, 2);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_DF, 4), 0);
	td_set_status(&d, S_ACK);
	td_set_status(&d, S_ACK | S_DRV);
	td_driver_features(&d, F_V1 | 1ULL << 5);
	td_common_write(&d, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_GF, 4), 1u << 5);
	td_common_write(&d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_GF, 4), 1);
	td_set_status(&d, S_ACK | S_DRV | S_FOK);
	ck_assert_uint_eq(td_status(&d), S_ACK | S_DRV | S_FOK);
	virtio_dev_lock(fake.dev);
	ck_assert_uint_eq(virtio_dev_features(fake.dev), F_V1 | 1ULL << 5);
	virtio_dev_unlock(fake.dev);
}
END_TEST

START_TEST(test_features_refused)
{
	/* No VERSION_1: FEATURES_OK reads back clear; not a protocol error. */
	td_set_status(&d, S_ACK);
	td_set_status(&d, S_ACK | S_DRV);
	td_driver_features(&d, 1ULL << 0);
	td_set_status(&d, S_ACK | S_DRV | S_FOK);
	ck_assert_uint_eq(td_status(&d), S_ACK | S_DRV);
	/* A feature the device does not offer: refused too. */
	td_driver_features(&d, F_V1 | 1ULL << 7);
	td_set_status(&d, S_ACK | S_DRV | S_FOK);
	ck_assert_uint_eq(td_status(&d), S_ACK | S_DRV);
	/* Fixed: accepted. */
	td_driver_features(&d, F_V1);
	td_set_status(&d, S_ACK | S_DRV | S_FOK);
	ck_assert_uint_eq(td_status(&d), S_ACK | S_DRV | S_FOK);
	/* Going on without FEATURES_OK would be a violation, see below. */
}
END_TEST

START_TEST(test_features_locked)
{
	drive_to_features_ok();
	td_common_write(&d, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	td_common_write(&d, VIRTIO_PCI_COMMON_GF, 4, 1);
	expect_needs_reset();
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_GF, 4), 0);
	virtio_dev_lock(fake.dev);
	ck_assert_uint_eq(virtio_dev_features(fake.dev), F_V1);
	virtio_dev_unlock(fake.dev);
}
END_TEST

/* Each bad status sequence: NEEDS_RESET, the write ignored. */
START_TEST(test_status_order)
{
	static const uint8_t seq[][4] = {
		{ S_DRV },                                       /* DRIVER before ACKNOWLEDGE */
		{ S_ACK, S_ACK | S_FOK },                        /* FEATURES_OK before DRIVER */
		{ S_ACK, S_ACK | S_DRV, S_ACK | S_DRV | S_DOK }, /* DRIVER_OK before FEATURES_OK */
		{ S_ACK, S_ACK | S_DRV, S_ACK },                 /* clearing a bit */
		{ S_ACK, 0x20 },                                 /* an unknown bit */
	};

	unsigned n = 0;
	uint8_t last;

	while (n < 4 && seq[_i][n])
		n++;
	last = n >= 2 ? seq[_i][n - 2] : 0;
	for (unsigned k = 0; k < n; k++)
		td_set_status(&d, seq[_i][k]);
	ck_assert_uint_eq(td_status(&d), last | S_NR);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), VIRTIO_PCI_ISR_CONFIG);
	/* The driver writing NEEDS_RESET back does not clear it. */
	td_set_status(&d, last | S_NR);
	ck_assert_uint_eq(td_status(&d), last | S_NR);
}
END_TEST

START_TEST(test_failed_anytime)
{
	td_set_status(&d, S_ACK);
	td_set_status(&d, S_ACK | VIRTIO_STATUS_FAILED);
	ck_assert_uint_eq(td_status(&d), S_ACK | VIRTIO_STATUS_FAILED);
}
END_TEST

START_TEST(test_config_interrupt)
{
	/* MSI-X set up, config vector 0: a violation raises it. */
	td_msix_enable(&d);
	td_common_write(&d, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	td_irqs(0);
	td_set_status(&d, S_DRV);
	ck_assert_uint_eq(td_irqs(0), 1);
	/* Only once per NEEDS_RESET. */
	td_set_status(&d, S_FOK);
	ck_assert_uint_eq(td_irqs(0), 0);
}
END_TEST

START_TEST(test_queue_fields)
{
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), FAKE_QSIZE);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_NOFF, 2), 1);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 16);
	/* 64-bit addresses as two halves or one access. */
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_DESC, 4, 0x12345000);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_DESC + 4, 4, 0x1);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_DESC, 8), 0x112345000ULL);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_USED, 8, 0x2000000040ULL);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_USED, 4), 0x40);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_USED + 4, 4), 0x20);
	/* Vectors: in range kept, out of range reads NO_VECTOR. */
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_MSIX, 2, FAKE_QUEUES);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_MSIX, 2), FAKE_QUEUES);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_MSIX, 2, FAKE_QUEUES + 1);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
	td_common_write(&d, VIRTIO_PCI_COMMON_MSIX, 2, 200);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
	/* Queue index past num_queues: size 0, writes go nowhere. */
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, FAKE_QUEUES);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2, 8);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	ck_assert_uint_eq(td_status(&d) & S_NR, 0);
	/* Read-only fields and odd widths are ignored. */
	td_common_write(&d, VIRTIO_PCI_COMMON_NUMQ, 2, 9);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 4, 0);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_NUMQ, 2), FAKE_QUEUES);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2), FAKE_QUEUES);
	ck_assert_uint_eq(td_status(&d) & S_NR, 0);
}
END_TEST

START_TEST(test_queue_bad_size)
{
	static const uint16_t bad[] = { 0, 3, 48, 2 * FAKE_QSIZE };

	td_set_status(&d, 0);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2, bad[_i]);
	expect_needs_reset();
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), FAKE_QSIZE);
}
END_TEST

/* After DRIVER_OK the queues cannot move, shrink or appear. */
START_TEST(test_queue_locked_after_driver_ok)
{
	td_init(&d, F_V1, 1, 32);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	switch (_i) {
	case 0:
		td_common_write(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
		break;
	case 1:
		td_common_write(&d, VIRTIO_PCI_COMMON_Q_DESC, 4, 0x200000);
		break;
	case 2:
		td_common_write(&d, VIRTIO_PCI_COMMON_Q_AVAIL + 4, 4, 1);
		break;
	case 3:
		td_common_write(&d, VIRTIO_PCI_COMMON_Q_USED, 8, 0x300000);
		break;
	case 4:
		td_common_write(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
		break;
	case 5:
		td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
		td_common_write(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
		break;
	}
	expect_needs_reset();
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 32);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_DESC, 8), d.q[0].desc);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_AVAIL, 8), d.q[0].avail);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_USED, 8), d.q[0].used);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
}
END_TEST

START_TEST(test_queue_locked_while_enabled)
{
	drive_to_features_ok();
	td_queue_setup(&d, 0, 16);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_DESC, 4, 0x200000);
	expect_needs_reset();
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_DESC, 8), d.q[0].desc);
}
END_TEST

START_TEST(test_queue_enable_checks)
{
	td_set_status(&d, S_ACK);
	td_set_status(&d, S_ACK | S_DRV);
	td_driver_features(&d, F_V1);
	/* Before FEATURES_OK: the ring features are not known yet. */
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	expect_needs_reset();
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

	/* Rings outside RAM, or misaligned. */
	td_set_status(&d, 0);
	drive_to_features_ok();
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_DESC, 8, TD_RAM - 0x100);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_AVAIL, 8, 0x10000);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_USED, 8, 0x20000);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	expect_needs_reset();
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

	td_set_status(&d, 0);
	drive_to_features_ok();
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_DESC, 8, 0x10008);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_AVAIL, 8, 0x20000);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_USED, 8, 0x30000);
	td_common_write(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	expect_needs_reset();
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
}
END_TEST

START_TEST(test_reset_resets)
{
	uint64_t w;

	td_init(&d, F_V1 | 1ULL << VIRTIO_F_EVENT_IDX, 2, 32);
	add_simple(0, &w);
	td_kick(&d, 0);
	ck_assert(td_wait_used(&d, 0, 1));
	ck_assert_uint_eq(fake.resets, 1); /* td_init's */
	td_set_status(&d, 0);
	ck_assert_uint_eq(td_status(&d), 0);
	ck_assert_uint_eq(fake.resets, 2);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_GFSELECT, 4), 0);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_GF, 4), 0);
	td_common_write(&d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_GF, 4), 0);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), 0);
	for (unsigned q = 0; q < FAKE_QUEUES; q++) {
		td_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), FAKE_QSIZE);
		ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
		ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_MSIX, 2),
				  VIRTIO_PCI_NO_VECTOR);
		ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_DESC, 8), 0);
		ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_AVAIL, 8), 0);
		ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_Q_USED, 8), 0);
	}
	/* A kick after the reset reaches nobody. */
	add_simple(0, &w);
	td_kick(&d, 0);
	td_sleep_ms(50);
	ck_assert_uint_eq(td_used_idx(&d, 0), 1);
	/* The device works again after a new initialisation, NEEDS_RESET too. */
	td_set_status(&d, S_DRV);
	expect_needs_reset();
	td_init(&d, F_V1, 1, 16);
	add_simple(0, &w);
	td_kick(&d, 0);
	ck_assert(td_wait_used(&d, 0, 1));
}
END_TEST

struct reset_thread {
	pthread_t t;
	bool done;
};

static void *reset_fn(void *arg)
{
	struct reset_thread *r = arg;

	td_set_status(&d, 0);
	__atomic_store_n(&r->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A reset returns only once the chains the device holds are pushed; those
 * pushes leave the used ring alone. */
START_TEST(test_reset_waits_for_inflight)
{
	struct reset_thread r = { .done = false };

	hold_two_chains();
	ck_assert_int_eq(pthread_create(&r.t, NULL, reset_fn, &r), 0);
	td_sleep_ms(100);
	ck_assert(!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST));
	virtio_dev_lock(fake.dev);
	virtio_dev_push(fake.dev, 0, fake.held[0].head, 1);
	virtio_dev_unlock(fake.dev);
	td_sleep_ms(50);
	ck_assert(!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST));
	virtio_dev_lock(fake.dev);
	virtio_dev_push(fake.dev, 0, fake.held[1].head, 1);
	virtio_dev_unlock(fake.dev);
	pthread_join(r.t, NULL);
	ck_assert(r.done);
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
	ck_assert_uint_eq(fake.resets, 2); /* td_init's, then this one */
}
END_TEST

/* Doorbells through MMIO exits (no ioeventfd), interrupts by MSI-X. */
START_TEST(test_notify_mmio)
{
	uint32_t id, len;
	uint64_t w;
	uint16_t head;

	td_kvm.ioeventfd_err = -ENOSYS;
	/* Rebind: move BAR 0 away and back, so the binds fail. */
	td_cfg_write(d.slot, PCI_CFG_COMMAND, 2, td_cfg_read(d.slot, PCI_CFG_COMMAND, 2) & ~2);
	td_cfg_write(d.slot, PCI_CFG_COMMAND, 2, td_cfg_read(d.slot, PCI_CFG_COMMAND, 2) | 2);
	ck_assert_int_lt(td_ioeventfd_at(d.notify), 0);

	td_init(&d, F_V1, FAKE_QUEUES, 32);
	for (unsigned q = 0; q < FAKE_QUEUES; q++) {
		head = add_simple(q, &w);
		td_mmio_write(d.notify + 4 * q, 2, q);
		ck_assert(td_wait_used(&d, q, 1));
		td_next_used(&d, q, &id, &len);
		ck_assert_uint_eq(id, head);
		ck_assert_uint_eq(len, 64);
		ck_assert_uint_eq(td_hva(w)[63], 0xab);
		ck_assert_uint_eq(td_irqs(q + 1), 1);
		ck_assert_uint_eq(td_mmio_read(d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
		ck_assert_uint_eq(td_mmio_read(d.isr, 1), 0); /* read clears */
	}
	/* Other widths reach the MMIO handler too; a doorbell past the queues is ignored. */
	add_simple(1, &w);
	td_mmio_write(d.notify + 4, 4, 1);
	ck_assert(td_wait_used(&d, 1, 1));
	td_mmio_write(d.notify + 4 * FAKE_QUEUES, 2, FAKE_QUEUES);
	ck_assert_uint_eq(td_mmio_read(d.notify, 2), 0);
}
END_TEST

/* Doorbells are KVM ioeventfds at BAR 0 + 0x3000 + 4 q, 2 bytes, and follow
 * BAR 0 when the guest moves it. */
START_TEST(test_notify_ioeventfd)
{
	uint64_t old = d.bar0, moved = old + 0x100000, w;

	for (unsigned q = 0; q < FAKE_QUEUES; q++) {
		int fd = td_ioeventfd_at(d.notify + 4 * q);

		ck_assert_int_ge(fd, 0);
		for (unsigned i = 0; i < td_kvm.nr_ioeventfds; i++)
			if (td_kvm.ioeventfds[i].fd == fd)
				ck_assert_uint_eq(td_kvm.ioeventfds[i].len, 2);
	}
	td_init(&d, F_V1, 1, 32);
	add_simple(0, &w);
	td_kick(&d, 0); /* writes the eventfd, as KVM would */
	ck_assert(td_wait_used(&d, 0, 1));

	td_cfg_write(d.slot, PCI_CFG_BAR0, 4, (uint32_t)moved | 4);
	ck_assert_int_lt(td_ioeventfd_at(old + 0x3000), 0);
	ck_assert_int_ge(td_ioeventfd_at(moved + 0x3000), 0);
	ck_assert_int_ge(td_ioeventfd_at(moved + 0x3000 + 4 * (FAKE_QUEUES - 1)), 0);
	d.notify = moved + 0x3000;
	d.common = moved;
	add_simple(0, &w);
	td_kick(&d, 0);
	ck_assert(td_wait_used(&d, 0, 2));
	/* Decoding off: unbound. */
	td_cfg_write(d.slot, PCI_CFG_COMMAND, 2, td_cfg_read(d.slot, PCI_CFG_COMMAND, 2) & ~2);
	for (unsigned i = 0; i < td_kvm.nr_ioeventfds; i++)
		ck_assert(!td_kvm.ioeventfds[i].on);
}
END_TEST

/* Chains made available before DRIVER_OK are served when it is set. */
START_TEST(test_driver_ok_polls)
{
	uint64_t w;

	drive_to_features_ok();
	td_queue_setup(&d, 0, 16);
	add_simple(0, &w);
	td_kick(&d, 0);
	td_sleep_ms(50);
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
	td_set_status(&d, S_ACK | S_DRV | S_FOK | S_DOK);
	ck_assert(td_wait_used(&d, 0, 1));
}
END_TEST

/* The VIRTIO_PCI_CAP_PCI_CFG window onto BAR 0. */
START_TEST(test_pci_cfg_access)
{
	unsigned c = d.cfg_cap;

	ck_assert_uint_eq(td_cfg_read(d.slot, c + 2, 1), 20);
	td_cfg_write(d.slot, c + 4, 1, VIRTIO_PCI_BAR);
	td_cfg_write(d.slot, c + 8, 4, VIRTIO_PCI_COMMON_NUMQ);
	td_cfg_write(d.slot, c + 12, 4, 2);
	ck_assert_uint_eq(td_cfg_read(d.slot, c + 16, 4), FAKE_QUEUES);
	/* A write: device_status. */
	td_cfg_write(d.slot, c + 8, 4, VIRTIO_PCI_COMMON_STATUS);
	td_cfg_write(d.slot, c + 12, 4, 1);
	td_cfg_write(d.slot, c + 16, 4, S_ACK);
	ck_assert_uint_eq(td_status(&d), S_ACK);
	ck_assert_uint_eq(td_cfg_read(d.slot, c + 16, 1), S_ACK);
	/* Device configuration, 4 bytes. */
	td_cfg_write(d.slot, c + 8, 4, 0x2000 + 4);
	td_cfg_write(d.slot, c + 12, 4, 4);
	ck_assert_uint_eq(td_cfg_read(d.slot, c + 16, 4), 0x17161514);
	/* Bad windows do nothing: another BAR, length 3, misaligned, outside. */
	td_cfg_write(d.slot, c + 4, 1, VIRTIO_PCI_MSIX_BAR);
	td_cfg_write(d.slot, c + 16, 4, 0);
	ck_assert_uint_eq(td_cfg_read(d.slot, c + 16, 4), 0);
	ck_assert_uint_eq(fake.cfg[4], 0x14);
	td_cfg_write(d.slot, c + 4, 1, VIRTIO_PCI_BAR);
	td_cfg_write(d.slot, c + 12, 4, 3);
	ck_assert_uint_eq(td_cfg_read(d.slot, c + 16, 4), 0);
	td_cfg_write(d.slot, c + 8, 4, 0x2001);
	td_cfg_write(d.slot, c + 12, 4, 2);
	ck_assert_uint_eq(td_cfg_read(d.slot, c + 16, 4), 0);
	td_cfg_write(d.slot, c + 8, 4, 0x10000);
	ck_assert_uint_eq(td_cfg_read(d.slot, c + 16, 4), 0);
	/* A reset through the window. */
	td_cfg_write(d.slot, c + 8, 4, VIRTIO_PCI_COMMON_STATUS);
	td_cfg_write(d.slot, c + 12, 4, 1);
	td_cfg_write(d.slot, c + 16, 1, 0);
	ck_assert_uint_eq(td_status(&d), 0);
	ck_assert_uint_eq(fake.resets, 1);
}
END_TEST

/* A malformed ring: NEEDS_RESET, config interrupt, the queue stops. */
START_TEST(test_malformed_ring)
{
	uint64_t w;

	td_init(&d, F_V1, 2, 16);
	/* A chain whose next index is past the table. */
	td_put_desc(d.q[0].desc, 0, td_alloc(16), 16, TD_F_NEXT, 99);
	td_avail(&d, 0, 0);
	td_kick(&d, 0);
	for (unsigned t = 0; __atomic_load_n(&fake.last_pop, __ATOMIC_SEQ_CST) >= 0; t++) {
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
	ck_assert(wait_notifies(0, 1));
	ck_assert_uint_eq(td_irqs(0), 1);
	expect_needs_reset();
	/* No queue is served any more, not even a well-formed one. */
	add_simple(1, &w);
	td_kick(&d, 1);
	td_sleep_ms(50);
	ck_assert_uint_eq(td_used_idx(&d, 1), 0);
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
}
END_TEST

/* EVENT_IDX: the driver's used_event suppresses interrupts. */
START_TEST(test_event_idx)
{
	struct td_queue *q = &d.q[0];
	uint64_t w;

	td_init(&d, F_V1 | 1ULL << VIRTIO_F_EVENT_IDX, 1, 16);
	add_simple(0, &w);
	td_kick(&d, 0);
	ck_assert(td_wait_used(&d, 0, 1));
	ck_assert_uint_eq(td_irqs(1), 1);
	/* used_event = 5: no interrupt for the next two chains. */
	__atomic_store_n((uint16_t *)td_hva(q->avail + 4 + 2 * q->size), 5, __ATOMIC_RELAXED);
	add_simple(0, &w);
	add_simple(0, &w);
	td_kick(&d, 0);
	ck_assert(td_wait_used(&d, 0, 3));
	ck_assert_uint_eq(td_irqs(1), 0);
	/* The device asked for a kick at the next avail index. */
	ck_assert_uint_eq(td_avail_event(&d, 0), 3);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("virtio_pci");
	TCase *tc = tcase_create("transport");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_identity);
	tcase_add_test(tc, test_features);
	tcase_add_test(tc, test_features_refused);
	tcase_add_test(tc, test_features_locked);
	tcase_add_loop_test(tc, test_status_order, 0, 5);
	tcase_add_test(tc, test_failed_anytime);
	tcase_add_test(tc, test_config_interrupt);
	tcase_add_test(tc, test_queue_fields);
	tcase_add_loop_test(tc, test_queue_bad_size, 0, 4);
	tcase_add_loop_test(tc, test_queue_locked_after_driver_ok, 0, 6);
	tcase_add_test(tc, test_queue_locked_while_enabled);
	tcase_add_test(tc, test_queue_enable_checks);
	tcase_add_test(tc, test_reset_resets);
	tcase_add_test(tc, test_reset_waits_for_inflight);
	tcase_add_test(tc, test_notify_mmio);
	tcase_add_test(tc, test_notify_ioeventfd);
	tcase_add_test(tc, test_driver_ok_polls);
	tcase_add_test(tc, test_pci_cfg_access);
	tcase_add_test(tc, test_malformed_ring);
	tcase_add_test(tc, test_event_idx);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
