# kvisor build. `make run` and `make check` install what is missing first.
# CFLAGS and LDFLAGS are the user's (default -O2 -g): `make CFLAGS='-O0 -g'`
# keeps the flags kvisor needs (KV_CFLAGS). SANITIZE=address,undefined builds
# kvisor and the unit tests with sanitizers, by default into a build
# directory of its own (BUILD=DIR chooses another), see docs/testing.md.
CC      ?= gcc
comma   := ,
ifeq ($(origin BUILD),undefined)
BUILD   := $(if $(SANITIZE),build/san-$(subst $(comma),-,$(SANITIZE)),build)
endif
PKGS    := libelf zlib liblzma libzstd liblz4 liburing slirp
# Capstone is dlopen()ed on first use (src/pvm/capstone_dl.c): headers only.
DL_PKGS := capstone
CFLAGS_WARN := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
	-Wshadow -Wundef -Wno-unused-parameter -Werror
CFLAGS  ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(DL_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Required flags, apart from CFLAGS so that overriding it keeps them.
KV_CFLAGS  := -std=gnu11 $(CFLAGS_WARN) -Iinclude -D_GNU_SOURCE -pthread -MMD -MP $(PKG_CFLAGS)
KV_LDFLAGS :=
ifneq ($(SANITIZE),)
# Stop at the first report: a sanitizer finding fails the test that hit it.
SAN_FLAGS  := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
KV_CFLAGS  += $(SAN_FLAGS)
KV_LDFLAGS += $(SAN_FLAGS)
endif
LDLIBS  += $(PKG_LIBS) -pthread

LIB_SRCS  := $(filter-out src/cli/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ  := $(BUILD)/obj/src/cli/main.o
UNIT_SRCS := $(sort $(wildcard tests/unit/check_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HDRS := $(wildcard tests/unit/*.h)

.PHONY: all setup run check sanitize-check unit-check firmware-check guest-check clean \
	format-check format-apply
all: $(BUILD)/kvisor

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(KV_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libkvisor.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/kvisor: $(MAIN_OBJ) $(BUILD)/libkvisor.a
	$(CC) $(KV_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/check_%: tests/unit/check_%.c $(BUILD)/libkvisor.a $(UNIT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KV_CFLAGS) $(CFLAGS) $(shell pkg-config --cflags check) -Itests/unit -include check.h \
		-o $@ $< $(BUILD)/libkvisor.a $(KV_LDFLAGS) $(LDFLAGS) $(LDLIBS) \
		$(shell pkg-config --libs check)

setup:
	@tools/setup

include mk/firmware.mk
include mk/guest.mk

run: setup
	@$(MAKE) --no-print-directory all guest
	$(BUILD)/kvisor run --kernel $(GUEST_DIR)/bzImage --initrd $(GUEST_DIR)/initramfs.cpio \
		--cpus 1 --mem 256M

unit-check: $(UNIT_BINS)
	@tools/run-unit-tests $(UNIT_BINS)

firmware-check: $(BUILD)/kvisor firmware
	@KVISOR=$(BUILD)/kvisor FW_DIR=$(FW_DIR) tests/firmware/run

guest-check: $(BUILD)/kvisor guest firmware
	@KVISOR=$(BUILD)/kvisor FW_DIR=$(FW_DIR) tests/guest/run

# CHECK_STAGES: a subset of tools/check's stages (default: all of them).
check: setup
	@$(MAKE) --no-print-directory all
	@CHECK_OUT=$(BUILD)/tests tools/check $(CHECK_STAGES)

# The sanitizer stage of CI: unit and firmware tests with kvisor and the
# unit tests built with ASan and UBSan, in their own build directory.
SAN_CHECK ?= address,undefined
sanitize-check:
	@$(MAKE) --no-print-directory BUILD=build/san-$(subst $(comma),-,$(SAN_CHECK)) \
		SANITIZE=$(SAN_CHECK) CHECK_STAGES="unit firmware" check

format-check:
	@tools/format-check

format-apply:
	@tools/format-apply

clean:
	rm -rf $(BUILD)/obj $(BUILD)/tests $(BUILD)/kvisor $(BUILD)/libkvisor.a $(BUILD)/firmware

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BINS:=.d)
