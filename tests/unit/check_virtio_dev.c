/* Unit tests of the transport-neutral virtio device API (kvisor/virtio.h)
 * as a device model uses it, over the PCI transport with the test device
 * of virtio_fake.h and the host-side driver of virtio_driver.h: creation
 * and its refusals, push without an interrupt until notify, configuration
 * changes (generation and interrupt), unpop, polled pops, pause and resume. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "unit_capture.h"
#include "virtio_fake.h"

/* Create a device from (cfg) with stderr captured into (msg). */
static int create_captured(const struct virtio_dev_config *cfg, struct virtio_dev **dev, char *msg,
			   size_t cap)
{
	struct unit_capture c;
	int ret;

	unit_capture_begin(&c);
	ret = virtio_dev_create(dev, &td_vm, td_vm.io, cfg, &fake_ops, NULL);
	unit_capture_end(&c, msg, cap);
	return ret;
}

START_TEST(test_create_refusals)
{
	struct virtio_dev_config cfg = {
		.transport = 0, /* not chosen */
		.name = "virtio-test1",
		.device_id = FAKE_ID,
		.nr_queues = 1,
		.queue_size = 16,
	};
	struct virtio_dev *dev = NULL;
	char msg[256];

	ck_assert_int_eq(create_captured(&cfg, &dev, msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "kvisor: virtio-test1: unknown virtio transport 0\n");
	ck_assert_ptr_null(dev);
	/* The PCI transport's own limits. */
	cfg.transport = VIRTIO_TRANSPORT_PCI;
	cfg.nr_queues = VIRTIO_PCI_MAX_QUEUES + 1;
	ck_assert_int_eq(create_captured(&cfg, &dev, msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "kvisor: virtio-test1: bad virtio device parameters\n");
	cfg.nr_queues = 1;
	cfg.queue_size = 24; /* not a power of 2 */
	ck_assert_int_eq(create_captured(&cfg, &dev, msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "kvisor: virtio-test1: bad virtio device parameters\n");
	cfg.queue_size = 16;
	cfg.cfg_size = VIRTIO_PCI_DEVICE_MAX + 1;
	ck_assert_int_eq(create_captured(&cfg, &dev, msg, sizeof(msg)), -EINVAL);
	ck_assert_str_eq(msg, "kvisor: virtio-test1: bad virtio device parameters\n");
	ck_assert_ptr_null(dev);
	/* A good one: a second function next to the fixture's. */
	cfg.cfg_size = 0;
	ck_assert_int_eq(create_captured(&cfg, &dev, msg, sizeof(msg)), 0);
	ck_assert_str_eq(msg, "");
	ck_assert_ptr_nonnull(dev);
	virtio_dev_destroy(dev);
	virtio_dev_destroy(NULL);
}
END_TEST

/* Pushes fill the used ring at once; the interrupt waits for notify, which
 * sends one for the batch and none when nothing new was pushed. */
START_TEST(test_push_then_notify)
{
	hold_two_chains();
	td_irqs(1); /* the pass's notify: nothing was pushed, so nothing sent */
	virtio_dev_lock(fake.dev);
	virtio_dev_push(fake.dev, 0, fake.held[0].head, 0);
	virtio_dev_push(fake.dev, 0, fake.held[1].head, 0);
	virtio_dev_unlock(fake.dev);
	ck_assert_uint_eq(td_used_idx(&d, 0), 2);
	ck_assert_uint_eq(td_irqs(1), 0);
	virtio_dev_lock(fake.dev);
	virtio_dev_notify(fake.dev, 0);
	virtio_dev_notify(fake.dev, 0);
	virtio_dev_unlock(fake.dev);
	ck_assert_uint_eq(td_irqs(1), 1);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), VIRTIO_PCI_ISR_QUEUE);
	/* Out of range or not set up: nothing happens. */
	virtio_dev_lock(fake.dev);
	virtio_dev_notify(fake.dev, 1);
	virtio_dev_notify(fake.dev, FAKE_QUEUES);
	virtio_dev_unlock(fake.dev);
	ck_assert_uint_eq(td_irqs(2), 0);
}
END_TEST

/* Unpop gives the last chains back: the next pass pops the same ones, in
 * the same order; nothing reached the used ring; a pause does not wait for
 * them. Unpopping more than is in flight is refused (a host bug). */
START_TEST(test_unpop)
{
	uint16_t heads[2];
	char msg[256];
	struct unit_capture c;

	hold_two_chains();
	heads[0] = fake.held[0].head;
	heads[1] = fake.held[1].head;
	virtio_dev_lock(fake.dev);
	unit_capture_begin(&c);
	virtio_dev_unpop(fake.dev, 0, 3);
	unit_capture_end(&c, msg, sizeof(msg));
	virtio_dev_unpop(fake.dev, 0, 0);
	virtio_dev_unpop(fake.dev, 0, 2);
	fake.nheld = 0;
	virtio_dev_unlock(fake.dev);
	ck_assert_str_eq(msg,
			 "kvisor: virtio-test0: unpop of 3 chains on queue 0 with 2 in flight\n");
	ck_assert_int_eq(virtio_dev_pause(fake.dev), 0); /* nothing in flight */
	virtio_dev_resume(fake.dev);                     /* kicks the queue: pops them again */
	wait_held(2);
	ck_assert_uint_eq(fake.held[0].head, heads[0]);
	ck_assert_uint_eq(fake.held[1].head, heads[1]);
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
	virtio_dev_lock(fake.dev);
	virtio_dev_push(fake.dev, 0, heads[0], 0);
	virtio_dev_push(fake.dev, 0, heads[1], 0);
	virtio_dev_notify(fake.dev, 0);
	virtio_dev_unlock(fake.dev);
	ck_assert_uint_eq(td_used_idx(&d, 0), 2);
	ck_assert_uint_eq(td_status(&d) & S_NR, 0);
}
END_TEST

/* A device that polls its queue: pop_polled serves the chains and leaves
 * kicks off (NO_NOTIFY stays set) when the ring runs empty, so the driver
 * adds more without kicking; the pop that ends the polling turns them on
 * again, and looks once more: a chain added before it is not missed. */
START_TEST(test_pop_polled)
{
	uint64_t w;
	int r;

	td_init(&d, F_V1, 1, 16);
	fake.polled = true;
	add_simple(0, &w);
	td_kick(&d, 0);
	ck_assert(td_wait_used(&d, 0, 1));
	ck_assert(wait_notifies(0, 1));
	ck_assert_uint_eq(td_used_flags(&d, 0), 1); /* the doorbell turned kicks off */
	/* Without a kick, as a driver that sees NO_NOTIFY does. */
	add_simple(0, &w);
	virtio_dev_lock(fake.dev);
	ck_assert_int_eq(virtio_dev_pop_polled(fake.dev, 0, &fake.chain), 1);
	virtio_dev_push(fake.dev, 0, fake.chain.head, 0);
	ck_assert_int_eq(virtio_dev_pop_polled(fake.dev, 0, &fake.chain), 0);
	ck_assert_uint_eq(td_used_flags(&d, 0), 1); /* still off: empty now, back soon */
	add_simple(0, &w);
	/* Stop polling: pop turns kicks on, finds the chain added meanwhile. */
	ck_assert_int_eq(virtio_dev_pop(fake.dev, 0, &fake.chain), 1);
	virtio_dev_push(fake.dev, 0, fake.chain.head, 0);
	r = virtio_dev_pop(fake.dev, 0, &fake.chain);
	virtio_dev_unlock(fake.dev);
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(td_used_flags(&d, 0), 0);
	ck_assert_uint_eq(td_used_idx(&d, 0), 3);
}
END_TEST

static uint8_t generation(void)
{
	return (uint8_t)td_common_read(&d, VIRTIO_PCI_COMMON_CFGGEN, 1);
}

static void config_changed(uint8_t byte0)
{
	virtio_dev_lock(fake.dev);
	fake.cfg[0] = byte0;
	virtio_dev_config_changed(fake.dev);
	virtio_dev_unlock(fake.dev);
}

/* Each change bumps config_generation; the driver hears of it through the
 * configuration vector and ISR bit 0x2, from DRIVER_OK on. */
START_TEST(test_config_changed)
{
	uint8_t g = generation();

	ck_assert_uint_eq(g, 0);
	config_changed(0x99);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 1));
	ck_assert_uint_eq(td_mmio_read(d.device, 1), 0x99);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), 0); /* no driver yet */
	/* Driver set up to FEATURES_OK, config vector 0: still not told. */
	drive_to_features_ok();
	td_msix_enable(&d);
	td_common_write(&d, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	td_irqs(0);
	config_changed(0x9a);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 2));
	ck_assert_uint_eq(td_irqs(0), 0);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), 0);
	/* DRIVER_OK: the change it missed is notified now, once. */
	td_set_status(&d, S_ACK | S_DRV | S_FOK | S_DOK);
	ck_assert_uint_eq(td_irqs(0), 1);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), VIRTIO_PCI_ISR_CONFIG);
	ck_assert_uint_eq(td_status(&d) & S_NR, 0);
	/* Running: each change notifies at once. */
	config_changed(0x9b);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 3));
	ck_assert_uint_eq(td_irqs(0), 1);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), VIRTIO_PCI_ISR_CONFIG);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), 0);
	config_changed(0x9c);
	config_changed(0x9d);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 5));
	ck_assert_uint_eq(td_irqs(0), 2);
	ck_assert_uint_eq(td_mmio_read(d.device, 1), 0x9d);
	/* A reset keeps the generation (a driver compares two reads) and
	 * forgets a change not yet notified: the new driver reads it all. */
	td_set_status(&d, 0);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 5));
	config_changed(0x9e);
	td_init(&d, F_V1, 1, 16); /* drains the vector's count itself */
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), 0);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 6));
	/* The 8-bit field wraps. */
	for (unsigned i = 0; i < 250; i++)
		config_changed((uint8_t)i);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 256));
}
END_TEST

struct pauser {
	pthread_t t;
	int ret;
	bool done;
};

static void *pause_fn(void *arg)
{
	struct pauser *p = arg;

	p->ret = virtio_dev_pause(fake.dev);
	__atomic_store_n(&p->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static bool paused_yet(struct pauser *p)
{
	return __atomic_load_n(&p->done, __ATOMIC_SEQ_CST);
}

/* Pause, from a thread that is not the loop's, returns only once every
 * chain the device popped was pushed; those pushes reach the ring. */
START_TEST(test_pause_waits_for_inflight)
{
	struct pauser p = { .done = false };

	hold_two_chains();
	ck_assert_int_eq(pthread_create(&p.t, NULL, pause_fn, &p), 0);
	td_sleep_ms(100);
	ck_assert(!paused_yet(&p));
	virtio_dev_lock(fake.dev);
	virtio_dev_push(fake.dev, 0, fake.held[0].head, 0);
	virtio_dev_notify(fake.dev, 0);
	virtio_dev_unlock(fake.dev);
	td_sleep_ms(50);
	ck_assert(!paused_yet(&p));
	virtio_dev_lock(fake.dev);
	virtio_dev_push(fake.dev, 0, fake.held[1].head, 0);
	virtio_dev_notify(fake.dev, 0);
	virtio_dev_unlock(fake.dev);
	pthread_join(p.t, NULL);
	ck_assert(paused_yet(&p));
	ck_assert_int_eq(p.ret, 0);
	ck_assert_uint_eq(td_used_idx(&d, 0), 2);
	ck_assert_uint_eq(td_irqs(1), 2); /* completions notify while paused too */
	ck_assert_int_eq(virtio_dev_pause(fake.dev), -EALREADY);
	virtio_dev_resume(fake.dev);
}
END_TEST

/* While paused nothing is popped: kicks (and DRIVER_OK) leave the chains in
 * the ring, queue_notify does not run, pop returns 0. Resume serves them. */
START_TEST(test_kick_while_paused)
{
	unsigned before[2];
	uint64_t w;
	int r;

	td_init(&d, F_V1, 2, 16);
	ck_assert_int_eq(virtio_dev_pause(fake.dev), 0); /* nothing in flight: at once */
	for (unsigned q = 0; q < 2; q++) {
		before[q] = notifies(q);
		add_simple(q, &w);
		td_kick(&d, q);
	}
	td_sleep_ms(100);
	for (unsigned q = 0; q < 2; q++) {
		ck_assert_uint_eq(notifies(q), before[q]);
		ck_assert_uint_eq(td_used_idx(&d, q), 0);
	}
	/* A device popping on its own (e.g. from a completion) gets nothing. */
	virtio_dev_lock(fake.dev);
	r = virtio_dev_pop(fake.dev, 0, &fake.chain);
	virtio_dev_unlock(fake.dev);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(virtio_dev_pause(fake.dev), -EALREADY);
	virtio_dev_resume(fake.dev);
	for (unsigned q = 0; q < 2; q++) {
		ck_assert(td_wait_used(&d, q, 1));
		ck_assert_uint_eq(td_irqs(q + 1), 1);
	}
	/* Resumed for good: a new kick is served as usual; a second resume
	 * changes nothing. */
	virtio_dev_resume(fake.dev);
	add_simple(0, &w);
	td_kick(&d, 0);
	ck_assert(td_wait_used(&d, 0, 2));
	ck_assert_uint_eq(td_status(&d) & S_NR, 0);
}
END_TEST

/* A driver that finishes its setup while the device is paused: the queues
 * start when the device resumes. */
START_TEST(test_driver_ok_while_paused)
{
	uint64_t w;

	drive_to_features_ok();
	td_queue_setup(&d, 0, 16);
	add_simple(0, &w);
	ck_assert_int_eq(virtio_dev_pause(fake.dev), 0);
	td_set_status(&d, S_ACK | S_DRV | S_FOK | S_DOK);
	td_sleep_ms(50);
	ck_assert_uint_eq(notifies(0), 0);
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
	virtio_dev_resume(fake.dev);
	ck_assert(td_wait_used(&d, 0, 1));
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("virtio_dev");
	TCase *tc = tcase_create("api");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_create_refusals);
	tcase_add_test(tc, test_push_then_notify);
	tcase_add_test(tc, test_config_changed);
	tcase_add_test(tc, test_unpop);
	tcase_add_test(tc, test_pop_polled);
	tcase_add_test(tc, test_pause_waits_for_inflight);
	tcase_add_test(tc, test_kick_while_paused);
	tcase_add_test(tc, test_driver_ok_while_paused);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
