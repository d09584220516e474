#!/bin/sh
# test_cluster_replay.sh: the write-back cache of the applied state
# (node/wcache.h) loses nothing and applies nothing twice across kill -9.
# With --apply-flush-ms 10000 every node's applied state stays in its cache;
# after N appends to one key (not idempotent: a replay that skipped an entry
# or applied one twice changes the value) all three nodes are killed at
# once and restarted; the value must be exactly the N appends, on each node.
# A tiny log tail makes compaction due all the time: it must wait for the
# applied state to reach LMDB (node/disk.h invariant 7), or the restarted
# nodes would have nothing to replay.
. node/cluster_lib.sh
cl_setup
CL_FLAGS="--apply-flush-ms 10000 --log-tail-entries 4 --log-tail-bytes 1024"
N=40

cl_boot 3 || { CL_FAIL=1; cl_finish; exit 1; }
L=$(cl_wait_leader 20)
check "a leader is elected" test -n "$L"

want=$(cl_append_n a "$N")
check "$N appends acknowledged" test -n "$want"
check "the value before the crash" test "$(cl_ctl get a)" = "$want"

for n in 1 2 3; do
	cl_signal "$n" 9
	wait "$(cl_pid "$n")" 2>/dev/null
done
for n in 1 2 3; do
	cl_start "$n"
done
L=$(cl_wait_leader 20)
check "a leader is elected after the crash" test -n "$L"
check "the value after the crash" test "$(cl_ctl get a)" = "$want"

check "every node replayed to the same value" \
	cl_every_node_has a "$want"
cl_finish
