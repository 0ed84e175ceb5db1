/* Test device for firmware guests (--testdev): a report port carrying
 * SYNC/DONE/FAIL/PRINT messages and an MMIO scratch window. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/testdev.h"
#include "kvisor/vm.h"

struct testdev {
	struct vm *vm;
	pthread_mutex_t lock;
	uint64_t scratch;
	uint32_t mmio_count;
};

static void testdev_str(struct testdev *t, uint64_t gpa, char *buf)
{
	if (!gpa || mem_read_str(&t->vm->mem, gpa, buf, TESTDEV_STR_MAX) < 0)
		snprintf(buf, TESTDEV_STR_MAX, "%s", gpa ? "<bad address>" : "");
}

static void testdev_report(struct testdev *t, uint32_t gpa)
{
	char file[TESTDEV_STR_MAX], msg[TESTDEV_STR_MAX];
	struct testdev_msg m;

	if (mem_read(&t->vm->mem, gpa, &m, sizeof(m)) || m.magic != TESTDEV_MAGIC) {
		log_warn("testdev: bad message at 0x%" PRIx32, gpa);
		return;
	}
	testdev_str(t, m.file_gpa, file);
	testdev_str(t, m.msg_gpa, msg);
	switch (m.type) {
	case TESTDEV_SYNC:
		fprintf(stderr, "testdev: SYNC %llu %s\n", m.arg, msg);
		break;
	case TESTDEV_PRINT:
		fprintf(stderr, "testdev: %s\n", msg);
		break;
	case TESTDEV_DONE:
		fprintf(stderr, "testdev: DONE %s\n", msg);
		vm_request_stop(t->vm, VM_STOP_TESTDEV, 0);
		break;
	case TESTDEV_FAIL:
		fprintf(stderr, "testdev: FAIL %s:%u: %s\n", file, m.line, msg);
		vm_request_stop(t->vm, VM_STOP_TESTDEV, 1);
		break;
	default:
		log_warn("testdev: unknown message type %u", m.type);
		break;
	}
}

static void testdev_pio_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	memset(data, 0, len);
}

static void testdev_pio_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	uint32_t gpa = 0;

	if (off != 0 || len != 4)
		return;
	memcpy(&gpa, data, 4);
	testdev_report(opaque, gpa);
}

static void testdev_mmio_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct testdev *t = opaque;
	uint64_t v = UINT64_MAX;

	pthread_mutex_lock(&t->lock);
	t->mmio_count++;
	if (off + len <= TESTDEV_MMIO_SCRATCH + 8)
		v = t->scratch >> (8 * off);
	else if (off == TESTDEV_MMIO_COUNT && len == 4)
		v = t->mmio_count;
	pthread_mutex_unlock(&t->lock);
	memcpy(data, &v, len);
}

static void testdev_mmio_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct testdev *t = opaque;
	uint64_t v = 0, mask;

	if (off + len > TESTDEV_MMIO_SCRATCH + 8)
		return;
	memcpy(&v, data, len);
	mask = (len == 8 ? UINT64_MAX : ((1ULL << (8 * len)) - 1)) << (8 * off);
	pthread_mutex_lock(&t->lock);
	t->mmio_count++;
	t->scratch = (t->scratch & ~mask) | ((v << (8 * off)) & mask);
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_ops testdev_pio_ops = {
	.read = testdev_pio_read,
	.write = testdev_pio_write,
};
static const struct bus_ops testdev_mmio_ops = {
	.read = testdev_mmio_read,
	.write = testdev_mmio_write,
};

static int testdev_create(struct vm *vm, const struct config_device *inst, void **state)
{
	struct testdev *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	t->vm = vm;
	pthread_mutex_init(&t->lock, NULL);
	ret = bus_register(&vm->pio, LAYOUT_TESTDEV_PORT, 4, &testdev_pio_ops, t);
	if (ret)
		goto err_free;
	ret = bus_register(&vm->mmio, LAYOUT_TESTDEV_MMIO_GPA, LAYOUT_TESTDEV_MMIO_LEN,
			   &testdev_mmio_ops, t);
	if (ret)
		goto err_pio;
	*state = t;
	return 0;
err_pio:
	bus_unregister(&vm->pio, LAYOUT_TESTDEV_PORT, t);
err_free:
	pthread_mutex_destroy(&t->lock);
	free(t);
	return ret;
}

static void testdev_destroy(struct vm *vm, void *state)
{
	struct testdev *t = state;

	bus_unregister(&vm->mmio, LAYOUT_TESTDEV_MMIO_GPA, t);
	bus_unregister(&vm->pio, LAYOUT_TESTDEV_PORT, t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* One: the firmware finds it at fixed addresses. */
const struct device_type testdev_type = {
	.name = "testdev",
	.id_prefix = "testdev",
	.max_instances = 1,
	.create = testdev_create,
	.destroy = testdev_destroy,
};
