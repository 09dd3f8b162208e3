# SPDX-License-Identifier: GPL-2.0
# vmir top-level build. `make` builds every userspace part into build/,
# `make check` runs every test, `make demo` runs the demo; those two first
# install the Debian packages the build needs (`make deps`), `make` alone
# never does.
#
# The userspace is built in layers. Each one includes and links only the
# layers below it, never one above:
#
#   tools/         vmirctl, vmir-helper (tools/helper/) on libvmir, common
#                  and tools/nl/
#   tools/nl/      build/libvmir-nl.a: the module's netlink client, for
#                  vmirctl, vmir-helper and the kernel test client
#   server/        vmir-chunkd, vmir-versiond       on server/srv/ and common
#   server/srv/    build/libvmir-srv.a: the servers' io_uring framework
#                  (accept, handshake, frames, replies), also vmir-helper's
#                  peer server; on common only
#   libclient/     build/libvmir.a, build/libvmir.so: the client library,
#                  public header include/libvmir.h, exports libvmir.map
#   common/        build/libvmir-common.a: wire codec, log, config, key
#                  files, addresses, sizes, clocks, full-length I/O
#   include/uapi/  the netlink uapi header, shared with the kernel module
#
# tests/lib/ holds what the tests share; only tests link it.

# The one version of vmir: libvmir's pkg-config file, the DKMS tree and
# the module's MODULE_VERSION (kmod/Kbuild reads it from here when
# `make module` or dkms.conf does not pass it).
VMIR_VERSION := 0.1.0

BUILD	?= build
BIN	:= $(BUILD)/bin
KVER	?= $(shell ls -1 /lib/modules 2>/dev/null | grep -- '-amd64$$' | sort -V | tail -n 1)
KDIR	?= $(if $(KVER),/lib/modules/$(KVER)/build,/lib/modules/$(shell uname -r)/build)

CC	?= cc
CFLAGS	?= -O2 -g
WARN	:= -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 -Werror=implicit-function-declaration
CPPFLAGS += -D_GNU_SOURCE
PKG_LIBS   = $(shell pkg-config --libs liburing libsodium inih libzstd 2>/dev/null)
SODIUM_LIBS = $(shell pkg-config --libs libsodium 2>/dev/null)
NL_CFLAGS  = $(shell pkg-config --cflags libnl-genl-3.0 2>/dev/null)
NL_LIBS    = $(shell pkg-config --libs libnl-genl-3.0 2>/dev/null)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)
# INC: the include path of the layer a file belongs to (set per target)
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(CPPFLAGS) $(INC) -MMD -MP

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
pic = $(patsubst %.c,$(BUILD)/pic/%.o,$(1))

# --- the layers, bottom up --------------------------------------------------

COMMON_SRCS	:= $(wildcard common/*.c)
COMMON_INC	:= -Iinclude -Icommon
COMMON_A	:= $(BUILD)/libvmir-common.a

LIB_SRCS	:= $(wildcard libclient/*.c)
LIB_INC		:= $(COMMON_INC) -Ilibclient
LIBVMIR_A	:= $(BUILD)/libvmir.a
LIBVMIR_SO	:= $(BUILD)/libvmir.so
LIBVMIR_SONAME	:= libvmir.so.0

SRV_SRCS	:= $(wildcard server/srv/*.c)
SRV_A		:= $(BUILD)/libvmir-srv.a
CHUNKD_SRCS	:= $(wildcard server/chunkd*.c)
VERSIOND_SRCS	:= $(wildcard server/versiond*.c)
SRV_INC		:= $(COMMON_INC) -Iserver/srv -Iserver

# tools: libvmir's public header, common's helpers, the netlink client
NL_SRCS		:= $(wildcard tools/nl/*.c)
NL_A		:= $(BUILD)/libvmir-nl.a
CTL_SRCS	:= $(wildcard tools/vmirctl*.c)
HELPER_SRCS	:= $(wildcard tools/helper/*.c)
TOOL_INC	:= $(COMMON_INC) -Itools/nl $(NL_CFLAGS)
# the kernel test client: the uapi header and the netlink client only
GENL_TEST	:= $(BUILD)/kernel/vmir-genl-test

TESTLIB_SRCS	:= $(wildcard tests/lib/*.c)
TESTLIB_INC	:= $(COMMON_INC) -Itests/lib

$(BUILD)/obj/common/%.o $(BUILD)/pic/common/%.o: INC := $(COMMON_INC)
$(BUILD)/obj/libclient/%.o $(BUILD)/pic/libclient/%.o: INC := $(LIB_INC)
$(BUILD)/obj/server/%.o: INC := $(SRV_INC)
$(BUILD)/obj/server/srv/%.o: INC := $(COMMON_INC) -Iserver/srv
$(BUILD)/obj/tools/%.o: INC := $(TOOL_INC)
$(BUILD)/obj/tools/helper/%.o: INC := $(TOOL_INC) -Itools/helper -Iserver/srv
$(BUILD)/obj/tools/nl/%.o: INC := -Iinclude $(NL_CFLAGS)
$(BUILD)/obj/tests/lib/%.o: INC := $(TESTLIB_INC)

PROGS	:= $(if $(CHUNKD_SRCS),$(BIN)/vmir-chunkd) \
	   $(if $(VERSIOND_SRCS),$(BIN)/vmir-versiond) \
	   $(if $(CTL_SRCS),$(BIN)/vmirctl) \
	   $(if $(HELPER_SRCS),$(BIN)/vmir-helper)
UNITS	:= $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/check_*.c))
BENCHES	:= $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/*.c))
ITESTS	:= $(patsubst tests/integration/%.c,$(BUILD)/itest/%,$(wildcard tests/integration/*.c))

.PHONY: all deps deps-kernel module check check-unit check-integration \
	check-install check-kernel check-kernel-debug demo bench-repo \
	bench-device bench-deploy install uninstall clean

all: $(COMMON_A) $(SRV_A) $(LIBVMIR_A) $(LIBVMIR_SO) $(BUILD)/libvmir.exports \
     $(NL_A) $(PROGS) $(GENL_TEST) $(UNITS) $(BENCHES) $(ITESTS)

# Installs the Debian packages the build needs, only when one is missing.
deps:
	@scripts/deps user

deps-kernel:
	@scripts/deps kernel

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -c -o $@ $<

$(COMMON_A): $(call obj,$(COMMON_SRCS))
	rm -f $@ && ar rcs $@ $^

# libvmir.a holds libclient alone: link it before libvmir-common.a.
$(LIBVMIR_A): $(call obj,$(LIB_SRCS))
	rm -f $@ && ar rcs $@ $^

# libvmir.so.0 carries the common layer inside and exports libvmir.map
# only; libvmir.so, what -lvmir finds, links to it.
$(BUILD)/$(LIBVMIR_SONAME): $(call pic,$(LIB_SRCS) $(COMMON_SRCS)) \
			    libclient/libvmir.map
	$(CC) $(CFLAGS) -shared -o $@ $(filter %.o,$^) \
		-Wl,-soname,$(LIBVMIR_SONAME) \
		-Wl,--version-script=libclient/libvmir.map -Wl,--no-undefined \
		$(PKG_LIBS) -lpthread

$(LIBVMIR_SO): $(BUILD)/$(LIBVMIR_SONAME)
	ln -sfn $(LIBVMIR_SONAME) $@

# The build test of libvmir's face: the .so exports exactly what
# include/libvmir.h declares and libvmir.map lists.
$(BUILD)/libvmir.exports: $(LIBVMIR_SO) include/libvmir.h \
			  libclient/libvmir.map tests/unit/libvmir-exports
	CC="$(CC)" tests/unit/libvmir-exports $(LIBVMIR_SO) include/libvmir.h \
		libclient/libvmir.map >$@.tmp
	@mv $@.tmp $@

$(NL_A): $(call obj,$(NL_SRCS))
	rm -f $@ && ar rcs $@ $^

$(SRV_A): $(call obj,$(SRV_SRCS))
	rm -f $@ && ar rcs $@ $^

$(BIN)/vmir-chunkd: $(call obj,$(CHUNKD_SRCS)) $(SRV_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(BIN)/vmir-versiond: $(call obj,$(VERSIOND_SRCS)) $(SRV_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(BIN)/vmirctl: $(call obj,$(CTL_SRCS)) $(NL_A) $(LIBVMIR_A) $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(NL_LIBS) -lpthread

$(BIN)/vmir-helper: $(call obj,$(HELPER_SRCS)) $(NL_A) $(LIBVMIR_A) $(SRV_A) \
		   $(COMMON_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(NL_LIBS) -lpthread

# --- tests ------------------------------------------------------------------
# A unit test links the code it tests, the test helpers it uses and the
# archives of the layers below, with that layer's include path.
$(BUILD)/tests/check_proto: INC := $(COMMON_INC)
$(BUILD)/tests/check_proto: $(COMMON_A)
$(BUILD)/tests/check_util: INC := $(COMMON_INC)
$(BUILD)/tests/check_util: $(COMMON_A)
$(BUILD)/tests/check_tree: INC := $(LIB_INC)
$(BUILD)/tests/check_tree: $(call obj,libclient/tree.c) $(COMMON_A)
$(BUILD)/tests/check_placement: INC := $(LIB_INC)
$(BUILD)/tests/check_placement: $(call obj,libclient/placement.c) $(COMMON_A)
$(BUILD)/tests/check_profile: INC := $(LIB_INC)
$(BUILD)/tests/check_profile: $(call obj,libclient/profile.c) $(COMMON_A)
$(BUILD)/tests/check_client: INC := $(LIB_INC)
$(BUILD)/tests/check_client: $(LIBVMIR_A) $(COMMON_A)
$(BUILD)/tests/check_chunkd: INC := $(SRV_INC) -Itests/lib
$(BUILD)/tests/check_chunkd: $(call obj,server/chunkd_server.c \
	server/chunkd_store.c $(TESTLIB_SRCS)) $(SRV_A) $(COMMON_A)
$(BUILD)/tests/check_versiond: INC := $(SRV_INC) -Itests/lib
$(BUILD)/tests/check_versiond: $(call obj,server/versiond_server.c \
	server/versiond_db.c server/versiond_log.c server/versiond_state.c \
	server/versiond_peers.c \
	$(TESTLIB_SRCS)) $(SRV_A) $(COMMON_A)
$(BUILD)/tests/check_helper_state: INC := $(COMMON_INC) -Itools/helper
$(BUILD)/tests/check_helper_state: $(call obj,tools/helper/state.c) $(call obj,tools/helper/map.c) $(COMMON_A)

$(BUILD)/tests/%: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -o $@ $(filter %.c %.o %.a,$^) \
		$(CHECK_LIBS) $(PKG_LIBS) -lpthread

# Integration programs use libvmir as any program would: the public
# header and the shared library, found next to them at run time.
$(BUILD)/itest/%: INC := -Iinclude
$(BUILD)/itest/%: tests/integration/%.c $(LIBVMIR_SO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< -L$(BUILD) -lvmir -Wl,-rpath,'$$ORIGIN/..'

# Built with the rest, so that a uapi change that breaks it breaks the
# build, not only the guest suite (tests/kernel/vm-run runs it).
$(GENL_TEST): INC := -Iinclude -Itools/nl $(NL_CFLAGS)
$(GENL_TEST): tests/kernel/lib/vmir-genl-test.c $(NL_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(NL_LIBS) -lpthread

# Benchmark peers measure the machine, not vmir: they link none of it.
$(BUILD)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(SODIUM_LIBS) -lpthread

module: deps-kernel
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod VMIR_VERSION=$(VMIR_VERSION) modules

check: deps
	@$(MAKE) --no-print-directory all
	@tests/run-tests $(if $(wildcard kmod/*.c),unit integration install kernel,unit integration install)

check-unit: all
	@tests/run-tests unit

check-integration: all
	@tests/run-tests integration

check-install: all
	@tests/run-tests install

check-kernel: all
	@tests/run-tests kernel

# The kernel suite under the debug kernel (KASAN, lockdep, might_sleep,
# hung tasks) that scripts/debug-kernel builds once into
# /var/cache/vmir-kernel (about two hours the first time), with longer
# limits for the slower guest; the run itself takes about 40 min on an
# idle machine, hours on a busy one (docs/kernel-debug.md). Too long for
# CI: not part of `make check`.
DEBUG_KERNEL_ENV = VMIR_VM_MEM=$${VMIR_VM_MEM:-3072} \
	VMIR_SUITE_TIMEOUT=$${VMIR_SUITE_TIMEOUT:-14400} \
	VMIR_TEST_TIMEOUT=$${VMIR_TEST_TIMEOUT:-1800} \
	VMIR_TIME_SCALE=$${VMIR_TIME_SCALE:-10} \
	VMIR_TEST_OUT=$(BUILD)/test-logs-debug
check-kernel-debug: all
	@root=$$(scripts/debug-kernel) && \
	VMIR_VM_KERNEL=$$root $(DEBUG_KERNEL_ENV) tests/run-tests kernel

demo: deps
	@$(MAKE) --no-print-directory all
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

# --- install ----------------------------------------------------------------
# `make install` copies the built programs, libvmir, its header and
# pkg-config file, the man pages, the systemd units, the bash completion
# of vmirctl and the module's DKMS source tree under $(DESTDIR)$(PREFIX),
# and an example configuration to $(DESTDIR)$(SYSCONFDIR)/vmir (never
# over a vmir.conf); `make uninstall` removes exactly those files, and
# the directories that are vmir's alone once empty. Files named *.in
# get the directories and the version written in (@SBINDIR@, ...).
PREFIX		?= /usr/local
BINDIR		?= $(PREFIX)/bin
SBINDIR		?= $(PREFIX)/sbin
LIBDIR		?= $(PREFIX)/lib
INCLUDEDIR	?= $(PREFIX)/include
MANDIR		?= $(PREFIX)/share/man
BASHCOMPDIR	?= $(PREFIX)/share/bash-completion/completions
UNITDIR		?= $(PREFIX)/lib/systemd/system
MODLOADDIR	?= $(PREFIX)/lib/modules-load.d
DKMSDIR		?= $(PREFIX)/src/vmir-$(VMIR_VERSION)
SYSCONFDIR	?= /etc
# run after installing the library without DESTDIR
LDCONFIG	?= ldconfig

# the static library installed: libvmir and the common layer it needs in
# one archive (the build keeps them apart, libvmir.a and
# libvmir-common.a); position-independent, as the shared one
$(BUILD)/dist/libvmir.a: $(call pic,$(LIB_SRCS) $(COMMON_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

SUBST = sed -e 's|@VERSION@|$(VMIR_VERSION)|g' -e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' \
	-e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

MAN_PAGES	:= $(wildcard docs/man/*.[0-9])
UNIT_FILES	:= $(wildcard tools/systemd/*.service.in)
KMOD_SRCS	:= $(filter-out %.mod.c,$(wildcard kmod/*.c)) $(wildcard kmod/*.h)

# MODE SOURCE DESTINATION, for every file installed
INSTALL_FILES = \
	755 $(BIN)/vmirctl $(BINDIR)/vmirctl \
	755 $(BIN)/vmir-helper $(SBINDIR)/vmir-helper \
	755 $(BIN)/vmir-versiond $(SBINDIR)/vmir-versiond \
	755 $(BIN)/vmir-chunkd $(SBINDIR)/vmir-chunkd \
	755 $(BUILD)/$(LIBVMIR_SONAME) $(LIBDIR)/$(LIBVMIR_SONAME) \
	644 $(BUILD)/dist/libvmir.a $(LIBDIR)/libvmir.a \
	644 include/libvmir.h $(INCLUDEDIR)/vmir/libvmir.h \
	644 include/uapi/linux/vmir.h $(INCLUDEDIR)/vmir/uapi/linux/vmir.h \
	644 libclient/vmir.pc.in $(LIBDIR)/pkgconfig/vmir.pc \
	$(foreach m,$(MAN_PAGES),644 $(m) \
		$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
	$(foreach u,$(UNIT_FILES),644 $(u) $(UNITDIR)/$(notdir $(u:.in=))) \
	644 tools/systemd/modules-load.conf $(MODLOADDIR)/vmir.conf \
	644 tools/bash-completion/vmirctl $(BASHCOMPDIR)/vmirctl \
	644 docs/vmir.conf.example $(SYSCONFDIR)/vmir/vmir.conf.example \
	644 tools/dkms/dkms.conf.in $(DKMSDIR)/dkms.conf \
	644 Kbuild $(DKMSDIR)/Kbuild \
	644 kmod/Kbuild $(DKMSDIR)/kmod/Kbuild \
	$(foreach f,$(KMOD_SRCS),644 $(f) $(DKMSDIR)/$(f)) \
	644 include/uapi/linux/vmir.h $(DKMSDIR)/include/uapi/linux/vmir.h

install: $(PROGS) $(BUILD)/$(LIBVMIR_SONAME) $(BUILD)/libvmir.exports \
	 $(BUILD)/dist/libvmir.a
	@set -e; set -- $(INSTALL_FILES); \
	while [ $$# -gt 0 ]; do \
		mode=$$1 src=$$2 dst="$(DESTDIR)$$3"; shift 3; \
		echo "  INSTALL $$dst"; \
		mkdir -p "$${dst%/*}"; \
		case $$src in \
		*.in)	$(SUBST) "$$src" >"$$dst.tmp"; \
			chmod "$$mode" "$$dst.tmp"; mv -f "$$dst.tmp" "$$dst" ;; \
		*)	install -m "$$mode" "$$src" "$$dst" ;; \
		esac; \
	done
	ln -sfn $(LIBVMIR_SONAME) "$(DESTDIR)$(LIBDIR)/libvmir.so"
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
		echo "  $(LDCONFIG)"; $(LDCONFIG); fi

uninstall:
	@set -- $(INSTALL_FILES); \
	while [ $$# -gt 0 ]; do \
		dst="$(DESTDIR)$$3"; shift 3; \
		if [ -e "$$dst" ]; then echo "  RM $$dst"; rm -f "$$dst"; fi; \
	done
	rm -f "$(DESTDIR)$(LIBDIR)/libvmir.so"
	@for d in "$(DESTDIR)$(DKMSDIR)/include/uapi/linux" \
		  "$(DESTDIR)$(DKMSDIR)/include/uapi" \
		  "$(DESTDIR)$(DKMSDIR)/include" "$(DESTDIR)$(DKMSDIR)/kmod" \
		  "$(DESTDIR)$(DKMSDIR)" \
		  "$(DESTDIR)$(INCLUDEDIR)/vmir/uapi/linux" \
		  "$(DESTDIR)$(INCLUDEDIR)/vmir/uapi" \
		  "$(DESTDIR)$(INCLUDEDIR)/vmir" "$(DESTDIR)$(SYSCONFDIR)/vmir"; do \
		[ -d "$$d" ] && rmdir --ignore-fail-on-non-empty "$$d"; \
	done; true

clean:
	rm -rf $(BUILD)
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod clean 2>/dev/null

-include $(shell find $(BUILD)/obj $(BUILD)/pic $(BUILD)/tests $(BUILD)/itest \
		   $(BUILD)/bench -name '*.d' 2>/dev/null)
