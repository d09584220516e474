# node.mk: the production node's extra targets (make run / make stop live in
# the top Makefile and call ci/cluster.sh).
#
#   make bench-node   fresh 3-node cluster; keelctl bench with 1 and 64
#                     clients (100-byte puts, BENCH_SECONDS=15 each) and each
#                     node's peak RSS after loading 100,000 keys; then all of
#                     it again on a fresh cluster with --apply-flush-ms 400
#                     (BENCH_FLUSH_MS), the throughput setting of node/NODE.md

BENCH_FLUSH_MS ?= 400

.PHONY: bench-node
bench-node: programs
	@KEEL_BIN=$(BIN) sh node/bench.sh
	@KEEL_BIN=$(BIN) CL_FLAGS="--apply-flush-ms $(BENCH_FLUSH_MS)" sh node/bench.sh
