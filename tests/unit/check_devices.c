/* Unit tests of the device registry: a VM's instances created from its
 * description without KVM (the machine's devices, the test devices, two
 * instances of one type), their order, lookup by id, creation errors and
 * teardown. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvisor/device.h"
#include "kvisor/log.h"
#include "kvisor/pci_testdev.h"
#include "unit_capture.h"
#include "virtio_driver.h"

/* td_vm without PCI bus 0: the pci-host instance (pci0) creates it. */
static void regvm_setup(void)
{
	memset(&td_kvm, 0, sizeof(td_kvm));
	memset(&td_vm, 0, sizeof(td_vm));
	td_vm.kvm_fd = td_vm.vm_fd = td_vm.stop_efd = -1;
	td_vm.cfg = &td_cfg;
	ck_assert_int_eq(bus_init(&td_vm.pio, "pio"), 0);
	ck_assert_int_eq(bus_init(&td_vm.mmio, "mmio"), 0);
	ck_assert_int_eq(mem_init(&td_vm.mem, TD_RAM), 0);
	ck_assert_int_eq(irq_init(&td_vm, &td_irq_ops), 0);
	ck_assert_int_eq(evloop_create(&td_vm.io, "io"), 0);
	ck_assert_int_eq(config_init(&td_cfg), 0);
	td_cfg.cpus = 1;
}

static void regvm_teardown(void)
{
	devices_destroy(&td_vm);
	td_vm_teardown();
	config_free(&td_cfg);
}

static void add(const char *type, const char *id, const char *opts)
{
	char err[CONFIG_ERR_MAX];

	ck_assert_msg(config_add_device(&td_cfg, type, id, opts, err, sizeof(err)) == 0, "%s", err);
}

/* The BAR0 scratch register of the pci-testdev in (slot). */
static uint64_t scratch_addr(unsigned slot)
{
	ck_assert_uint_eq(td_cfg_read(slot, PCI_CFG_VENDOR_ID, 4),
			  (uint32_t)PCI_TESTDEV_DEVICE_ID << 16 | PCI_TESTDEV_VENDOR_ID);
	return td_bar_addr(slot, PCI_TESTDEV_REGS_BAR) + PCI_TESTDEV_SCRATCH;
}

/* Instances added out of registry order are created in it (the PCI test
 * functions before the disks would be, the port test device before
 * them), in description order within a type; the list is newest first. */
START_TEST(test_create_order)
{
	static const char *const want[] = { "probe", "pci-testdev0", "testdev0", "pci0",
					    "kbc0",  "acpi-pm0",     "serial0" };
	static const char *const types[] = { "pci-testdev", "pci-testdev", "testdev",   "pci-host",
					     "i8042",       "acpi-pm",     "serial8250" };
	struct device *d;
	unsigned n = 0;

	add("pci-testdev", NULL, NULL);
	add("testdev", NULL, NULL);
	add("pci-testdev", "probe", NULL);
	ck_assert_int_eq(devices_create(&td_vm), 0);
	for (d = td_vm.devices; d; d = d->next, n++) {
		ck_assert_uint_lt(n, 7);
		ck_assert_str_eq(d->id, want[n]);
		ck_assert_str_eq(d->type->name, types[n]);
		ck_assert_ptr_eq(d->inst, config_find_device(&td_cfg, want[n]));
		ck_assert_ptr_eq(device_find(&td_vm, want[n]), d);
	}
	ck_assert_uint_eq(n, 7);
	ck_assert_ptr_null(device_find(&td_vm, "disk0"));
	ck_assert_ptr_nonnull(td_vm.serial); /* the console UART */
	ck_assert_ptr_eq(td_vm.pci, device_find(&td_vm, "pci0")->state);
}
END_TEST

/* Two instances of one type: two PCI functions, each with its own state. */
START_TEST(test_two_instances)
{
	uint64_t a, b;

	add("pci-testdev", NULL, NULL);
	add("pci-testdev", NULL, NULL);
	ck_assert_int_eq(devices_create(&td_vm), 0);
	ck_assert_ptr_ne(device_find(&td_vm, "pci-testdev0")->state,
			 device_find(&td_vm, "pci-testdev1")->state);
	/* 00:00.0 is the host bridge; the test functions take slots 1 and 2. */
	ck_assert_uint_eq(td_cfg_read(0, PCI_CFG_VENDOR_ID, 4),
			  (uint32_t)PCI_HOST_DEVICE_ID << 16 | PCI_HOST_VENDOR_ID);
	a = scratch_addr(1);
	b = scratch_addr(2);
	ck_assert_uint_ne(a, b);
	td_cfg_write(1, PCI_CFG_COMMAND, 2, PCI_CMD_MEM);
	td_cfg_write(2, PCI_CFG_COMMAND, 2, PCI_CMD_MEM);
	td_mmio_write(a, 4, 0x11111111);
	td_mmio_write(b, 4, 0x22222222);
	ck_assert_uint_eq(td_mmio_read(a, 4), 0x11111111);
	ck_assert_uint_eq(td_mmio_read(b, 4), 0x22222222);
}
END_TEST

static void ignore_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	memset(data, 0, len);
}

static void ignore_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
}

/* A device that cannot be created: one line naming it, and what was
 * created before it stays listed for devices_destroy. */
START_TEST(test_create_error)
{
	static const struct bus_ops ops = { .read = ignore_read, .write = ignore_write };
	static int owner;
	char msg[512];
	struct unit_capture c;
	int ret;

	add("testdev", NULL, NULL);
	add("pci-testdev", NULL, NULL);
	ck_assert_int_eq(bus_register(&td_vm.pio, LAYOUT_TESTDEV_PORT, 1, &ops, &owner), 0);
	log_threshold = LOG_ERR;
	unit_capture_begin(&c);
	ret = devices_create(&td_vm);
	unit_capture_end(&c, msg, sizeof(msg));
	ck_assert_int_eq(ret, -EEXIST);
	ck_assert_str_eq(msg, "kvisor: testdev0: cannot create testdev: File exists\n");
	ck_assert_str_eq(td_vm.devices->id, "pci0"); /* the machine's, created before */
	ck_assert_ptr_null(device_find(&td_vm, "testdev0"));
	ck_assert_ptr_null(device_find(&td_vm, "pci-testdev0")); /* never reached */
	ck_assert_int_eq(bus_unregister(&td_vm.pio, LAYOUT_TESTDEV_PORT, &owner), 0);
}
END_TEST

/* devices_destroy undoes everything, PCI bus 0 included. */
START_TEST(test_destroy)
{
	add("testdev", NULL, NULL);
	add("pci-testdev", NULL, NULL);
	ck_assert_int_eq(devices_create(&td_vm), 0);
	ck_assert_uint_gt(td_vm.pio.nr, 0);
	devices_destroy(&td_vm);
	ck_assert_ptr_null(td_vm.devices);
	ck_assert_ptr_null(td_vm.pci);
	ck_assert_ptr_null(td_vm.serial);
	ck_assert_uint_eq(td_vm.pio.nr, 0);
	ck_assert_uint_eq(td_vm.mmio.nr, 0);
}
END_TEST

START_TEST(test_type_find)
{
	ck_assert_ptr_eq(device_type_find("virtio-blk"), &virtio_blk_type);
	ck_assert_ptr_eq(device_type_find("serial8250"), &serial8250_type);
	ck_assert_ptr_eq(device_type_find("virtio-net"), &virtio_net_type);
	ck_assert_ptr_null(device_type_find("virtio-nic"));
	ck_assert_ptr_null(device_type_find(""));
	/* Every type can be named in a description and makes unique ids. */
	for (const struct device_type *const *t = device_types; *t; t++) {
		ck_assert_ptr_nonnull((*t)->id_prefix);
		ck_assert_ptr_nonnull((*t)->create);
		for (const struct device_type *const *u = t + 1; *u; u++) {
			ck_assert_str_ne((*t)->name, (*u)->name);
			ck_assert_str_ne((*t)->id_prefix, (*u)->id_prefix);
		}
	}
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("devices");
	TCase *tc = tcase_create("registry");

	tcase_add_checked_fixture(tc, regvm_setup, regvm_teardown);
	tcase_add_test(tc, test_create_order);
	tcase_add_test(tc, test_two_instances);
	tcase_add_test(tc, test_create_error);
	tcase_add_test(tc, test_destroy);
	tcase_add_test(tc, test_type_find);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
