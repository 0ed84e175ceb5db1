# kvisor build. `make run` and `make check` install what is missing first.
CC      ?= gcc
BUILD   := build
PKGS    := libelf zlib liblzma libzstd liblz4 liburing
# Capstone is dlopen()ed on first use (src/pvm/capstone_dl.c): headers only.
DL_PKGS := capstone
CFLAGS_WARN := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
	-Wshadow -Wundef -Wno-unused-parameter -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(CFLAGS_WARN) -Iinclude -D_GNU_SOURCE -pthread -MMD -MP
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(DL_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
endif
LDLIBS  += $(PKG_LIBS) -pthread

LIB_SRCS  := $(filter-out src/cli/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ  := $(BUILD)/obj/src/cli/main.o
UNIT_SRCS := $(sort $(wildcard tests/unit/check_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all setup run check unit-check firmware-check guest-check clean format-check
all: $(BUILD)/kvisor

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/libkvisor.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/kvisor: $(MAIN_OBJ) $(BUILD)/libkvisor.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/check_%: tests/unit/check_%.c $(BUILD)/libkvisor.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(shell pkg-config --cflags check) -Itests/unit -include check.h -o $@ $< \
		$(BUILD)/libkvisor.a $(LDFLAGS) $(LDLIBS) $(shell pkg-config --libs check)

setup:
	@tools/setup

include mk/firmware.mk
include mk/guest.mk

run: setup
	@$(MAKE) --no-print-directory all guest
	$(BUILD)/kvisor run --kernel $(BUILD)/guest/bzImage --initrd $(BUILD)/guest/initramfs.cpio \
		--cpus 1 --mem 256M

unit-check: $(UNIT_BINS)
	@tools/run-unit-tests $(UNIT_BINS)

firmware-check: $(BUILD)/kvisor firmware
	@tests/firmware/run

guest-check: $(BUILD)/kvisor guest
	@tests/guest/run

check: setup
	@$(MAKE) --no-print-directory all
	@tools/check

format-check:
	@tools/format-check

clean:
	rm -rf $(BUILD)/obj $(BUILD)/tests $(BUILD)/kvisor $(BUILD)/libkvisor.a $(BUILD)/firmware

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d)
