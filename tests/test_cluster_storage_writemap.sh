#!/bin/sh
# test_cluster_storage_writemap.sh: test_cluster_storage.sh with LMDB's
# writable map (--lmdb-writemap): a full map is the same clean, sticky
# failure (exit 3, nothing acknowledged lost), and the node restarted with a
# larger map (the file grows to it) serves every acknowledged write.
KEEL_STORAGE_FLAGS="--lmdb-writemap" KEEL_STORAGE_FILE=2097152 \
	exec sh tests/test_cluster_storage.sh
