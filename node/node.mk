# node.mk: the production node's extra targets (make run / make stop live in
# the top Makefile and call ci/cluster.sh).
#
#   make bench-node   fresh 3-node cluster; keelctl bench with 1 and 64
#                     clients (100-byte puts, BENCH_SECONDS=15 each) and each
#                     node's peak RSS after loading 100,000 keys; then all of
#                     it again on a fresh cluster with the throughput profile
#                     of node/NODE.md (BENCH_PROFILE)

BENCH_PROFILE ?= --apply-flush-ms 1000 --log-tail-bytes 1048576 --lmdb-writemap

.PHONY: bench-node
bench-node: programs
	@KEEL_BIN=$(BIN) sh node/bench.sh
	@KEEL_BIN=$(BIN) CL_FLAGS="$(BENCH_PROFILE)" sh node/bench.sh
