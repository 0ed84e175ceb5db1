/* Reboot request: banner, then the ACPI reset register, or the i8042
 * "pulse reset" command with fw.reset=kbd on the command line. */
#include "fw.h"

#define I8042_CMD   (LAYOUT_I8042_PORT + 4)
#define I8042_RESET 0xfe

void main(void)
{
	fw_printf("kvisor firmware: reboot\n");
	if (fw_cmdline_is("fw.reset", "kbd")) {
		outb(I8042_CMD, I8042_RESET);
		FW_FAIL("still running after the i8042 reset command");
	}
	fw_reset();
}
