#!/bin/sh
# test_cluster_history_writemap.sh: test_cluster_history.sh with LMDB's
# writable map (--lmdb-writemap, io_real/lmdb_store.h L6) and the applied
# state flushed every 500 ms: every flush writes its pages through the map,
# and every kill -9 and SIGSTOP lands on a node doing so; keelcheck must
# still find the history linearizable.
KEEL_HISTORY_FLAGS="--lmdb-writemap --map-bytes 268435456 --apply-flush-ms 500" \
	exec sh tests/test_cluster_history.sh
