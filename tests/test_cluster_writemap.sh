#!/bin/sh
# test_cluster_writemap.sh: nodes with LMDB's writable map (--lmdb-writemap,
# io_real/lmdb_store.h L6). The data file takes the map's size with its
# blocks reserved ahead; appends (not idempotent) survive kill -9 of every
# node with the applied state still in the cache; a node restarted without
# the flag reads the same file, and one restarted with it again as well.
. node/cluster_lib.sh
cl_setup
MAP=268435456
CACHED="--apply-flush-ms 10000 --log-tail-entries 4 --log-tail-bytes 1024"
WRITEMAP="--lmdb-writemap --map-bytes $MAP"
CL_FLAGS="$WRITEMAP $CACHED"
N=40

cl_boot 3 || { CL_FAIL=1; cl_finish; exit 1; }
L=$(cl_wait_leader 20)
check "a leader is elected" test -n "$L"

want=$(cl_append_n a "$N")
check "$N appends acknowledged" test -n "$want"

f="$CL_DIR/n1/data.mdb"
check "the data file has the map's size" test "$(stat -c %s "$f")" -eq "$MAP"
# 2 x the high water + 128 MiB ahead: at least 128 MiB allocated; sparse,
# so not all 256
alloc=$(( $(stat -c %b "$f") * $(stat -c %B "$f") ))
check "its blocks are reserved ahead ($alloc bytes)" \
	test "$alloc" -ge 134217728 -a "$alloc" -lt "$MAP"

for n in 1 2 3; do
	cl_signal "$n" 9
	wait "$(cl_pid "$n")" 2>/dev/null
done
CL_FLAGS="$CACHED"
cl_start 1 # the same file without the writable map
CL_FLAGS="$WRITEMAP $CACHED"
cl_start 2
cl_start 3
L=$(cl_wait_leader 20)
check "a leader is elected after the crash" test -n "$L"
check "the value after the crash" test "$(cl_ctl get a)" = "$want"
cl_ctl append a "y," >/dev/null
want="${want}y,"

check "every node replayed to the same value, with or without the flag" \
	cl_every_node_has a "$want"
cl_finish
