#!/bin/sh
# test_cluster_members_writemap.sh: test_cluster_members.sh with LMDB's
# writable map (--lmdb-writemap) and the applied state flushed every 200 ms
# on every node: joins caught up by snapshots (staged and installed through
# the map, each install reserving for what it stages), a kill -9 in the
# middle of an install, and a concurrent history keelcheck must accept.
KEEL_MEMBERS_CONF="lmdb-writemap = true
map-bytes = 268435456
apply-flush-ms = 200" KEEL_MEMBERS_FILE=268435456 \
	exec sh tests/test_cluster_members.sh
