/* Reports to kvisor's test device (--testdev): a struct testdev_msg built on
 * the stack (identity-mapped, so its address is its guest-physical address)
 * whose address goes out with one 32-bit OUT. Power-off and reset too. */
#include "fw.h"

static void fw_report_text(uint32_t type, uint64_t arg, const char *file, unsigned line,
			   const char *text)
{
	struct testdev_msg m = {
		.magic = TESTDEV_MAGIC,
		.type = type,
		.line = line,
		.arg = arg,
		.file_gpa = (uintptr_t)file,
		.msg_gpa = (uintptr_t)text,
	};

	/* The "memory" clobber of outl orders the stores before the exit. */
	outl(LAYOUT_TESTDEV_PORT, (uint32_t)(uintptr_t)&m);
}

static void fw_report(uint32_t type, uint64_t arg, const char *fmt, va_list ap)
{
	char text[TESTDEV_STR_MAX];

	fw_vsnprintf(text, sizeof(text), fmt, ap);
	fw_report_text(type, arg, NULL, 0, text);
}

void fw_sync(uint64_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fw_report(TESTDEV_SYNC, n, fmt, ap);
	va_end(ap);
}

void fw_print(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fw_report(TESTDEV_PRINT, 0, fmt, ap);
	va_end(ap);
}

/* kvisor stops the VM on DONE and FAIL; without --testdev nobody listens,
 * so end the VM anyway: power off after DONE; after FAIL, say it on the
 * console and triple-fault, a failure status under any VMM. */
void fw_done(void)
{
	fw_report_text(TESTDEV_DONE, 0, NULL, 0, "ok");
	fw_poweroff();
}

void fw_fail(const char *file, unsigned line, const char *fmt, ...)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) no_idt = { 0, 0 };
	char text[TESTDEV_STR_MAX];
	va_list ap;

	va_start(ap, fmt);
	fw_vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fw_report_text(TESTDEV_FAIL, 0, file, line, text);
	fw_printf("firmware: FAIL %s:%u: %s\n", file, line, text);
	asm volatile("lidt %0; ud2" : : "m"(no_idt));
	fw_halt();
}

void fw_poweroff(void)
{
	outb(LAYOUT_ACPI_SLEEP_CTL, (LAYOUT_ACPI_SLP_TYP_S5 << 2) | LAYOUT_ACPI_SLP_EN);
	fw_halt();
}

void fw_reset(void)
{
	outb(LAYOUT_ACPI_RESET, LAYOUT_ACPI_RESET_VAL);
	fw_halt();
}

/* After a report that stops the VM, or if nobody listens (no --testdev). */
void fw_halt(void)
{
	for (;;)
		asm volatile("cli; hlt");
}
