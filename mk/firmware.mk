# Firmware test guests (firmware/README): `make firmware` builds one PVH ELF
# image per firmware/*.c, linked with firmware/lib, as build/firmware/NAME.elf;
# `make bench-tools` builds the raw-KVM baseline of tools/bench/exits and the
# frame generator of tools/bench/net.
FW_CC      ?= gcc
FW_DIR     := $(BUILD)/firmware
FW_CFLAGS  := -std=gnu11 -ffreestanding -nostdlib -nostdinc -fno-pic -fno-pie \
	-fno-stack-protector -mno-red-zone -mgeneral-regs-only -static -O2 -g \
	-fno-asynchronous-unwind-tables -fno-omit-frame-pointer \
	-Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wshadow -Wundef \
	-Wno-unused-parameter -Werror \
	-Iinclude -Ifirmware/lib -MMD -MP
FW_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,firmware/lib/fw.lds -Wl,--build-id=none \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
FW_LIB_SRCS := $(sort $(wildcard firmware/lib/*.c firmware/lib/*.S))
FW_LIB_OBJS := $(patsubst %,$(FW_DIR)/obj/%.o,$(FW_LIB_SRCS))
FW_PROGS    := $(patsubst firmware/%.c,%,$(sort $(wildcard firmware/*.c)))
FW_ELFS     := $(FW_PROGS:%=$(FW_DIR)/%.elf)
FW_OBJS     := $(FW_PROGS:%=$(FW_DIR)/obj/firmware/%.c.o) $(FW_LIB_OBJS)
# The .d files list the headers too; these cover a first build after an edit.
FW_HDRS     := firmware/lib/fw.h include/kvisor/testdev.h include/kvisor/layout.h

.PHONY: firmware bench-tools
firmware: $(FW_ELFS)

$(FW_DIR)/obj/%.c.o: %.c $(FW_HDRS) mk/firmware.mk
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) -c -o $@ $<

$(FW_DIR)/obj/%.S.o: %.S mk/firmware.mk
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CFLAGS) -c -o $@ $<

$(FW_DIR)/%.elf: $(FW_DIR)/obj/firmware/%.c.o $(FW_LIB_OBJS) firmware/lib/fw.lds
	$(FW_CC) $(FW_LDFLAGS) -o $@ $< $(FW_LIB_OBJS)

# Minimal raw-KVM VMM for tools/bench/exits (host program, no libkvisor).
bench-tools: $(BUILD)/tools/bare_exit $(BUILD)/tools/net_gen

.PHONY: clean-bench-tools
clean: clean-bench-tools
clean-bench-tools:
	rm -f $(BUILD)/tools/bare_exit $(BUILD)/tools/net_gen

$(BUILD)/tools/bare_exit: tools/bench/bare_exit.c include/kvisor/testdev.h include/kvisor/layout.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g $(CFLAGS_WARN) -Iinclude -D_GNU_SOURCE -o $@ $<

# Host side of tools/bench/net: sends firmware/netbench.h frames on a tap.
$(BUILD)/tools/net_gen: tools/bench/net_gen.c firmware/netbench.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g $(CFLAGS_WARN) -Ifirmware -D_GNU_SOURCE -o $@ $<

# Keep the objects (they are intermediate files of the pattern chain).
.SECONDARY: $(FW_OBJS)

-include $(FW_OBJS:.o=.d)
