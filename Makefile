# keel: one entry point for everything. See README.md.
#
#   make            build every library and program
#   make test       run every suite; last line "N passed, M failed"
#   make SAN=1 test the same with -fsanitize=address,undefined
#   make run/stop   a local 3-node cluster (node/node.mk)
#   make sim, make mutants, make fuzz, make bench-*  (see */*.mk)
#   make deps       install missing Debian packages (as root)
#
# Sources are found by directory: core/*.c -> build/libcore.a, io_sim/*.c ->
# build/libio_sim.a, and so on. A program's main lives in a file listed in
# MAINS; tests/test_X.c becomes bin/test_X linked with every library (static
# archives: only what is referenced is pulled in). Each directory may add
# targets in its own DIR/NAME.mk.

SAN ?= 0
CC := $(if $(filter default,$(origin CC)),cc,$(CC))

ifeq ($(SAN),1)
BUILD := build/san
BIN := build/san/bin
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD := build/plain
BIN := bin
SANFLAGS :=
endif

PKGS := libuv libprotobuf-c libxxhash lmdb
# Deferred (=): evaluated when a recipe runs, after `deps` has installed them.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT ?= -O2
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(OPT) -g $(SANFLAGS) -MMD -MP -I$(BUILD)/gen -Icore
CFLAGS_ALL = $(CFLAGS_BASE) $(WARN) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_ALL = $(SANFLAGS) $(EXTRA_LDFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lpthread -lm

DEPS_STAMP := build/.deps-ok

.PHONY: all test deps clean run stop help
all: programs

# ---- dependencies ---------------------------------------------------------

deps:
	@sh ci/deps.sh

$(DEPS_STAMP): ci/deps.sh
	@sh ci/deps.sh
	@mkdir -p build && touch $@

# ---- generated protobuf code ---------------------------------------------

GEN_C := $(BUILD)/gen/keel.pb-c.c
GEN_H := $(BUILD)/gen/keel.pb-c.h
GEN_O := $(BUILD)/gen/keel.pb-c.o

$(GEN_C) $(GEN_H) &: core/proto/keel.proto | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Icore/proto core/proto/keel.proto

$(GEN_O): $(GEN_C) $(GEN_H)
	$(CC) -std=c11 $(OPT) -g $(SANFLAGS) -w $(PKG_CFLAGS) -I$(BUILD)/gen -c $< -o $@

# ---- libraries ------------------------------------------------------------

MAINS := node/keel.c node/keelctl.c sim/keelsim.c sim/keelcheck.c
LIB_DIRS := core io_sim io_real node sim

lib_srcs = $(filter-out $(MAINS),$(wildcard $(1)/*.c))
obj_of = $(patsubst %.c,$(BUILD)/%.o,$(1))

$(foreach d,$(LIB_DIRS),$(eval OBJS_$(d) := $(call obj_of,$(call lib_srcs,$(d)))))
OBJS_core += $(if $(wildcard core/proto/keel.proto),$(GEN_O))

LIB_core := $(BUILD)/libcore.a
LIB_io_sim := $(BUILD)/libio_sim.a
LIB_io_real := $(BUILD)/libio_real.a
LIB_node := $(BUILD)/libnode.a
LIB_sim := $(BUILD)/libsim.a

# Link orders, users before providers. core/ calls keel_panic, which each
# world defines (io_sim/panic.c, io_real/panic.c): the world's archive is
# scanned again after core so a program gets its own world's panic.
libs_of = $(foreach d,$(1),$(if $(OBJS_$(d)),$(LIB_$(d))))
LIBS_REAL := $(call libs_of,node io_real core io_real)
LIBS_SIM := $(call libs_of,sim io_sim core io_sim)
LIBS_ALL := $(call libs_of,sim node io_sim io_real core io_sim)

$(foreach d,$(LIB_DIRS),$(eval $(LIB_$(d)): $(OBJS_$(d)) ; @rm -f $$@ && ar rcs $$@ $$^))

# Every object waits for the packages and the generated header.
$(BUILD)/%.o: %.c | $(DEPS_STAMP) $(if $(wildcard core/proto/keel.proto),$(GEN_H))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# ---- programs -------------------------------------------------------------

PROG_keel := node/keel.c
PROG_keelctl := node/keelctl.c
PROG_keelsim := sim/keelsim.c
PROG_keelcheck := sim/keelcheck.c
PROGRAMS := $(foreach p,keel keelctl keelsim keelcheck,$(if $(wildcard $(PROG_$(p))),$(BIN)/$(p)))

$(BIN)/%: $(BUILD)/node/%.o $(LIBS_REAL)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS_ALL) $< $(LIBS_REAL) $(LDLIBS_ALL) -o $@

$(BIN)/%: $(BUILD)/sim/%.o $(LIBS_SIM)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS_ALL) $< $(LIBS_SIM) $(LDLIBS_ALL) -o $@

# ---- tests ----------------------------------------------------------------

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BIN)/%,$(TEST_SRCS))
HARNESS_O := $(BUILD)/tests/harness.o

$(BIN)/test_%: $(BUILD)/tests/test_%.o $(HARNESS_O) $(LIBS_ALL)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS_ALL) $< $(HARNESS_O) $(LIBS_ALL) $(LDLIBS_ALL) -o $@

.SECONDARY:

# Directories add what `make test` needs built (e.g. fuzz replayers).
TEST_DEPS :=

# ---- per-directory targets -------------------------------------------------

-include $(wildcard */*.mk)

.PHONY: programs
programs: $(PROGRAMS) $(TEST_BINS)

test: programs $(TEST_DEPS)
	@KEEL_BIN=$(BIN) KEEL_BUILD=$(BUILD) SAN=$(SAN) sh tests/run.sh

run: programs
	@sh ci/cluster.sh start

stop:
	@sh ci/cluster.sh stop

clean:
	rm -rf build bin

help:
	@sed -n '1,12p' Makefile

-include $(shell find build -name '*.d' 2>/dev/null)
