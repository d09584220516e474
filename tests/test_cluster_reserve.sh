#!/bin/sh
# test_cluster_reserve.sh: with LMDB's writable map (--lmdb-writemap) a full
# disk must be a clean, sticky storage failure, never a SIGBUS: the storage
# test with the data file's reservation failing past 170 MiB (the testing
# flag --debug-reserve-limit-bytes, as a full disk would) instead of a full
# map. The write that needs more is not acknowledged, the node says it could
# not reserve the blocks and exits 3; restarted, it has every acknowledged
# write.
KEEL_STORAGE_FLAGS="--lmdb-writemap --map-bytes 268435456" \
KEEL_STORAGE_FULL="--debug-reserve-limit-bytes 178257920" \
KEEL_STORAGE_ROOM="" \
KEEL_STORAGE_ERR="No space left on device" \
KEEL_STORAGE_SAID="cannot reserve the data file's blocks" \
KEEL_STORAGE_FILE=268435456 \
	exec sh tests/test_cluster_storage.sh
