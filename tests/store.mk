# store.mk: the store benchmark (tests/bench_store.c).
#
#   make bench-store   kv_apply + sync throughput on the memory and LMDB
#                      stores, 64 and 1 puts per apply; peak RSS

$(BIN)/bench_store: $(BUILD)/tests/bench_store.o $(LIBS_ALL)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS_ALL) $< $(LIBS_ALL) $(LDLIBS_ALL) -o $@

.PHONY: bench-store
bench-store: $(BIN)/bench_store
	@$(BIN)/bench_store mem 64 100000
	@$(BIN)/bench_store lmdb 64 100000
	@$(BIN)/bench_store lmdb 1 2000
