# check.mk: targets for keelcheck (sim/check*.c, sim/keelcheck.c).
#
#   make bench-check   median parse and check time per public history, and totals

BENCH_CHECK_RUNS ?= 15
BENCH_CHECK_DIR ?= ../shared/histories

.PHONY: bench-check
bench-check: $(BIN)/keelcheck
	@cut -f1 $(BENCH_CHECK_DIR)/expected.tsv | sed 's|^|$(BENCH_CHECK_DIR)/|' | \
	xargs $(BIN)/keelcheck --repeat $(BENCH_CHECK_RUNS) | \
	awk '{ for (i = 3; i <= NF; i++) { split($$i, kv, "="); f[kv[1]] = kv[2] } \
	       printf "%-44s %-8s ops=%-5s check_ms=%8.3f parse_ms=%7.3f\n", $$1, $$2, f["ops"], f["check_ms"], f["parse_ms"]; \
	       c += f["check_ms"]; p += f["parse_ms"]; \
	       if ($$1 ~ /jepsen/) { ec += f["check_ms"]; ep += f["parse_ms"] } \
	       if (f["check_ms"] > mx) { mx = f["check_ms"]; mf = $$1 } } \
	     END { printf "etcd set: check_ms=%.3f parse_ms=%.3f\n", ec, ep; \
	           printf "all:      check_ms=%.3f parse_ms=%.3f (thread CPU time, medians of $(BENCH_CHECK_RUNS) runs)\n", c, p; \
	           printf "slowest:  %s check_ms=%.3f\n", mf, mx }'; true
