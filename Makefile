# SPDX-License-Identifier: GPL-2.0
# vmir top-level build. `make` builds every userspace part into build/,
# `make check` runs every test, `make demo` runs the demo.

BUILD	?= build
BIN	:= $(BUILD)/bin
KVER	?= $(shell ls -1 /lib/modules 2>/dev/null | grep -- '-amd64$$' | sort -V | tail -n 1)
KDIR	?= $(if $(KVER),/lib/modules/$(KVER)/build,/lib/modules/$(shell uname -r)/build)

PKGS	:= liburing libsodium inih libnl-genl-3.0 check
CC	?= cc
CFLAGS	?= -O2 -g
WARN	:= -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 -Werror=implicit-function-declaration
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Ilibclient -Iserver
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs liburing libsodium inih 2>/dev/null)
NL_LIBS    = $(shell pkg-config --libs libnl-genl-3.0 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(CPPFLAGS) $(PKG_CFLAGS) -MMD -MP

LIB_SRCS	:= $(wildcard libclient/*.c)
SRV_SRCS	:= $(wildcard server/srv_*.c)
CHUNKD_SRCS	:= $(wildcard server/chunkd*.c)
VERSIOND_SRCS	:= $(wildcard server/versiond*.c)
CTL_SRCS	:= $(wildcard tools/vmirctl*.c)
HELPER_SRCS	:= $(wildcard tools/helper*.c)
UNIT_SRCS	:= $(wildcard tests/unit/check_*.c)
BENCH_SRCS	:= $(wildcard tests/bench/*.c)
ITEST_SRCS	:= $(wildcard tests/integration/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBVMIR	:= $(BUILD)/libvmir.a
PROGS	:= $(if $(CHUNKD_SRCS),$(BIN)/vmir-chunkd) \
	   $(if $(VERSIOND_SRCS),$(BIN)/vmir-versiond) \
	   $(if $(CTL_SRCS),$(BIN)/vmirctl) \
	   $(if $(HELPER_SRCS),$(BIN)/vmir-helper)
UNITS	:= $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
BENCHES	:= $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
ITESTS	:= $(patsubst tests/integration/%.c,$(BUILD)/itest/%,$(ITEST_SRCS))

.PHONY: all deps deps-kernel module check check-unit check-integration \
	check-kernel demo bench-repo bench-device bench-deploy clean

all: deps $(LIBVMIR) $(PROGS) $(UNITS) $(BENCHES) $(ITESTS)

# Installs the Debian packages the build needs, only when one is missing.
deps:
	@scripts/deps user

deps-kernel:
	@scripts/deps kernel

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBVMIR): $(call obj,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/vmir-chunkd: $(call obj,$(CHUNKD_SRCS) $(SRV_SRCS)) $(LIBVMIR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(BIN)/vmir-versiond: $(call obj,$(VERSIOND_SRCS) $(SRV_SRCS)) $(LIBVMIR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(BIN)/vmirctl: $(call obj,$(CTL_SRCS)) $(LIBVMIR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(NL_LIBS) -lpthread

$(BIN)/vmir-helper: $(call obj,$(HELPER_SRCS)) $(LIBVMIR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(NL_LIBS) -lpthread

# Unit tests may link the servers' object files they test (all but main).
SRV_LIB_OBJS = $(call obj,$(filter-out server/chunkd.c server/versiond.c,$(CHUNKD_SRCS) $(VERSIOND_SRCS) $(SRV_SRCS)))
# Objects a test needs beyond those, listed before libvmir.a on the link.
UNIT_EXTRA_check_helper_state := $(call obj,tools/helper_state.c)
.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c $(SRV_LIB_OBJS) $$(UNIT_EXTRA_$$*) $(LIBVMIR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS) -lpthread

$(BUILD)/itest/%: tests/integration/%.c $(LIBVMIR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(BUILD)/bench/%: tests/bench/%.c $(LIBVMIR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

module: deps-kernel
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod modules

check: all
	@tests/run-tests $(if $(wildcard kmod/*.c),unit integration kernel,unit integration)

check-unit: all
	@tests/run-tests unit

check-integration: all
	@tests/run-tests integration

check-kernel: all
	@tests/run-tests kernel

demo: all
	@tools/vmir-demo

bench-repo: all
	@tests/bench/bench-repo

bench-device: all
	@tests/bench/bench-device

# Quick multi-deployment run (N = 1, 2, the recorded boot replayed, all
# five strategies, both repository layouts) in one guest; the full one is
# bench/multideploy (docs/performance.md). Results in build/bench-deploy.
bench-deploy: all
	@bench/multideploy --nodes 1,2 --real-nodes none --mem 4096 \
		--out $(BUILD)/bench-deploy/results

clean:
	rm -rf $(BUILD)
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod clean 2>/dev/null

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
