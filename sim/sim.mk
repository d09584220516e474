# sim/sim.mk: targets for keelsim (sim/sim*.c, sim/keelsim.c).
#
#   make sim          the default sweep: swarm seeds on 3 and 5 nodes
#   make mutants      one keelsim per planted bug (core/mutant.h), run until caught
#   make bench-sim    speed: virtual s per wall s, events/s, seeds/min, peak RSS
#
# SIM_SEEDS, SIM_OPS, SIM_JOBS tune the sweep; MUTANT_SEEDS_MAX bounds the
# seeds tried per planted bug.

SIM_SEEDS ?= 1:100
SIM_OPS ?= 1000
SIM_JOBS ?= 2
MUTANT_SEEDS_MAX ?= 600

.PHONY: sim mutants bench-sim

TEST_DEPS += $(BIN)/keelsim

sim: $(BIN)/keelsim
	$(BIN)/keelsim --seeds $(SIM_SEEDS) --nodes 3 --profile swarm --ops $(SIM_OPS) --jobs $(SIM_JOBS)
	$(BIN)/keelsim --seeds $(SIM_SEEDS) --nodes 5 --profile swarm --ops $(SIM_OPS) --jobs $(SIM_JOBS)

# Each mutant gets its own build tree (build/mutant/N): every object is
# compiled with -DKEEL_MUTANT=N there, never in build/plain or build/san.
mutant-bin-%: | $(DEPS_STAMP)
	@$(MAKE) -s --no-print-directory BUILD=build/mutant/$* BIN=build/mutant/$*/bin \
		EXTRA_CFLAGS=-DKEEL_MUTANT=$* build/mutant/$*/bin/keelsim

MUTANT_COUNT := $(shell sed -n "s/^#define MUTANT_COUNT \([0-9]*\).*/\1/p" core/mutant.h)
mutants: $(foreach n,$(shell seq 1 $(MUTANT_COUNT)),mutant-bin-$(n))
	@MUTANT_SEEDS_MAX=$(MUTANT_SEEDS_MAX) SIM_JOBS=$(SIM_JOBS) sh sim/sim_mutants.sh

bench-sim: $(BIN)/keelsim
	@sh sim/sim_bench.sh $(BIN)/keelsim
