#!/bin/sh
# test_cluster_history_cached.sh: test_cluster_history.sh with the applied
# state held in the write-back cache for seconds (--apply-flush-ms 3000,
# node/disk.h), so that nearly every kill -9 loses applied state that only
# the log has, and the restarted node must replay it to the same results.
KEEL_HISTORY_FLAGS="--apply-flush-ms 3000" exec sh tests/test_cluster_history.sh
