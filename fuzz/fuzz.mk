# fuzz/fuzz.mk: fuzz harnesses (fuzz/fuzz_<target>.c), their corpus replay
# in `make test`, and the libFuzzer / AFL++ / coverage builds.
#
#   make fuzz                              build every libFuzzer and AFL++ target
#   make fuzz-run TARGET=x SECONDS=n       libFuzzer on one target (RUNS=n: stop after n execs)
#   make fuzz-afl TARGET=x SECONDS=n       AFL++ on one target
#   make fuzz-cov TARGET=x                 line coverage of core/codec*.c from the
#                                          committed + grown corpus (llvm-cov)
#   make fuzz-corpus                       regenerate the seed corpora (fuzz/gen_corpus.c)
#   make fuzz-list                         the target names
#
# The fuzz builds live in build/fuzz, use clang, and install what they need
# (fuzz/deps.sh, as root); `make test` needs none of it: it replays every
# fuzz/corpus/<target>/ file through bin/fuzz_replay_<target> (the harness
# linked with fuzz/replay.c and the normal compiler and flags).

FUZZ_TARGETS := frame msg hello request response batch membership record raft history apply resp config snapchunk
FUZZ_COMMON := fuzz_eq fuzz_roundtrip

# ---- replay in make test ----------------------------------------------------

FUZZ_REPLAY_BINS := $(patsubst %,$(BIN)/fuzz_replay_%,$(FUZZ_TARGETS))
FUZZ_COMMON_O := $(patsubst %,$(BUILD)/fuzz/%.o,$(FUZZ_COMMON))
TEST_DEPS += $(FUZZ_REPLAY_BINS)

# Harnesses of node/ parsers (resp, config) take them from libnode.
FUZZ_REPLAY_LIBS := $(if $(OBJS_node),$(LIB_node)) $(LIBS_SIM)

$(BIN)/fuzz_replay_%: $(BUILD)/fuzz/fuzz_%.o $(BUILD)/fuzz/replay.o $(FUZZ_COMMON_O) $(FUZZ_REPLAY_LIBS)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS_ALL) $(filter %.o,$^) $(FUZZ_REPLAY_LIBS) $(LDLIBS_ALL) -o $@

$(BUILD)/fuzz/gen_corpus: $(BUILD)/fuzz/gen_corpus.o $(LIBS_SIM)
	$(CC) $(LDFLAGS_ALL) $< $(LIBS_SIM) $(LDLIBS_ALL) -o $@

.PHONY: fuzz fuzz-run fuzz-afl fuzz-cov fuzz-corpus fuzz-list
fuzz-corpus: $(BUILD)/fuzz/gen_corpus
	$(BUILD)/fuzz/gen_corpus fuzz/corpus

fuzz-list:
	@echo $(FUZZ_TARGETS)

# ---- libFuzzer, AFL++ and coverage builds ------------------------------------

FUZZ_DIR := build/fuzz
FUZZ_GEN_C := $(FUZZ_DIR)/gen/keel.pb-c.c
FUZZ_LIB_SRCS = $(wildcard core/*.c) $(wildcard sim/check*.c) $(wildcard io_sim/*.c) \
	$(wildcard node/resp.c node/config.c) $(FUZZ_GEN_C)
FUZZ_HARNESS_SRCS = $(patsubst %,fuzz/%.c,$(FUZZ_COMMON))
SECONDS ?= 60
TARGET ?= msg

$(FUZZ_GEN_C): core/proto/keel.proto | $(DEPS_STAMP)
	@mkdir -p $(FUZZ_DIR)/gen
	protoc-c --c_out=$(FUZZ_DIR)/gen -Icore/proto core/proto/keel.proto

$(FUZZ_DIR)/.deps-libfuzzer: fuzz/deps.sh
	@sh fuzz/deps.sh libfuzzer
	@mkdir -p $(FUZZ_DIR) && touch $@

$(FUZZ_DIR)/.deps-afl: fuzz/deps.sh
	@sh fuzz/deps.sh afl
	@mkdir -p $(FUZZ_DIR) && touch $@

FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -MMD -MP -I$(FUZZ_DIR)/gen $(PKG_CFLAGS)
FUZZ_LIBS = $(PKG_LIBS) -lpthread -lm

# One build flavour: $(1) name, $(2) compiler, $(3) compile flags,
# $(4) link flags, $(5) deps stamp. Harness and library compile together.
define fuzz_flavour
$(FUZZ_DIR)/$(1)/%.o: %.c $(FUZZ_GEN_C) | $(5)
	@mkdir -p $$(dir $$@)
	$(2) $$(FUZZ_CFLAGS) $(3) -c $$< -o $$@

$(FUZZ_DIR)/$(1)/bin/fuzz_%: $(FUZZ_DIR)/$(1)/fuzz/fuzz_%.o \
		$$(patsubst %.c,$(FUZZ_DIR)/$(1)/%.o,$$(FUZZ_LIB_SRCS) $$(FUZZ_HARNESS_SRCS)) $(6)
	@mkdir -p $$(dir $$@)
	$(2) $(4) $$^ $$(FUZZ_LIBS) -o $$@
endef

FUZZ_SAN := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
$(eval $(call fuzz_flavour,lf,clang,$(FUZZ_SAN) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -fsanitize=fuzzer,$(FUZZ_DIR)/.deps-libfuzzer))
$(eval $(call fuzz_flavour,afl,afl-clang-fast,$(FUZZ_SAN),$(FUZZ_SAN) -fsanitize=fuzzer,$(FUZZ_DIR)/.deps-afl))
FUZZ_COV := -O0 -fprofile-instr-generate -fcoverage-mapping
$(eval $(call fuzz_flavour,cov,clang,$(FUZZ_COV),$(FUZZ_COV),$(FUZZ_DIR)/.deps-libfuzzer,$(FUZZ_DIR)/cov/fuzz/replay.o))

fuzz: $(patsubst %,$(FUZZ_DIR)/lf/bin/fuzz_%,$(FUZZ_TARGETS)) \
      $(patsubst %,$(FUZZ_DIR)/afl/bin/fuzz_%,$(FUZZ_TARGETS))

FUZZ_DICT = $(wildcard fuzz/dict/$(TARGET).dict)
# Per-target libFuzzer options.
FUZZ_OPTS_raft = -max_len=1025 # fuzz_raft.c reads at most 512 events
RUNS ?=

fuzz-run: $(FUZZ_DIR)/lf/bin/fuzz_$(TARGET)
	@mkdir -p $(FUZZ_DIR)/work/$(TARGET) $(FUZZ_DIR)/crashes
	$(FUZZ_DIR)/lf/bin/fuzz_$(TARGET) -max_total_time=$(SECONDS) \
		$(if $(RUNS),-runs=$(RUNS)) $(if $(FUZZ_DICT),-dict=$(FUZZ_DICT)) $(FUZZ_OPTS_$(TARGET)) \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$(TARGET)- \
		$(FUZZ_DIR)/work/$(TARGET) $(wildcard fuzz/corpus/$(TARGET))

fuzz-afl: $(FUZZ_DIR)/afl/bin/fuzz_$(TARGET)
	@mkdir -p $(FUZZ_DIR)/afl-out
	AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
		AFL_AUTORESUME=1 afl-fuzz -V $(SECONDS) -m none -i fuzz/corpus/$(TARGET) \
		-o $(FUZZ_DIR)/afl-out/$(TARGET) $(if $(FUZZ_DICT),-x $(FUZZ_DICT)) \
		-- $(FUZZ_DIR)/afl/bin/fuzz_$(TARGET) >$(FUZZ_DIR)/afl-out/$(TARGET).log 2>&1
	@grep -E '^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs) ' \
		$(FUZZ_DIR)/afl-out/$(TARGET)/default/fuzzer_stats
	@grep -q '^saved_crashes *: 0$$' $(FUZZ_DIR)/afl-out/$(TARGET)/default/fuzzer_stats || \
		{ echo "afl: crashes in $(FUZZ_DIR)/afl-out/$(TARGET)/default/crashes"; exit 1; }

# The code each target is meant to cover.
FUZZ_COV_FILES = $(or $(FUZZ_COV_$(TARGET)),$(wildcard core/codec*.c))
FUZZ_COV_record = core/record.c
FUZZ_COV_snapchunk = core/snapshot.c
FUZZ_COV_raft = $(wildcard core/raft*.c)
FUZZ_COV_history = $(wildcard sim/check*.c)
FUZZ_COV_resp = node/resp.c
FUZZ_COV_config = node/config.c
FUZZ_COV_apply = core/kv.c core/codec_client.c core/codec_entry.c core/codec_validate.c

# Replays fuzz/corpus/$(TARGET) and the grown build/fuzz/work/$(TARGET).
fuzz-cov: $(FUZZ_DIR)/cov/bin/fuzz_$(TARGET)
	@mkdir -p $(FUZZ_DIR)/work/$(TARGET)
	LLVM_PROFILE_FILE=$(FUZZ_DIR)/cov/$(TARGET).profraw \
		$(FUZZ_DIR)/cov/bin/fuzz_$(TARGET) fuzz/corpus/$(TARGET) $(FUZZ_DIR)/work/$(TARGET)
	llvm-profdata merge -o $(FUZZ_DIR)/cov/$(TARGET).profdata $(FUZZ_DIR)/cov/$(TARGET).profraw
	llvm-cov report $(FUZZ_DIR)/cov/bin/fuzz_$(TARGET) \
		-instr-profile=$(FUZZ_DIR)/cov/$(TARGET).profdata $(FUZZ_COV_FILES)
