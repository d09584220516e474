#!/bin/sh
# test_cluster_snapidle.sh: a leader's outgoing snapshot stream holds an
# LMDB read transaction (which stops LMDB from reusing pages). When the
# follower it serves stops asking and no one else waits (here the learner
# is removed in the middle of its slowed install), the leader closes the
# stream after SERVER_SNAP_IDLE_MS (3 s) and says so; the cluster goes on.
. node/cluster_lib.sh
cl_setup
# A small log tail, so a joiner needs a snapshot.
printf 'log-tail-entries = 16\nlog-tail-bytes = 65536\n' >"$CL_DIR/small.conf"
CL_FLAGS="--config $CL_DIR/small.conf"

ctl() {
	"$KEEL_BIN/keelctl" --endpoints "$(cl_client_addr 1)" --timeout-ms 500 --attempts 20 "$@"
}

cl_boot 1 || { CL_FAIL=1; cl_finish; exit 1; }
check "a one-node cluster elects itself" test "$(cl_wait_leader 10)" = 1
"$KEEL_BIN/keelctl" --endpoints "$(cl_client_addr 1)" bench --clients 8 --count 2000 \
	--op put --value-bytes 1000 --keys 2000 >"$CL_DIR/load.out" 2>&1
check "2000 keys of 1000 bytes loaded" grep -q "^ops 2000 failed 0" "$CL_DIR/load.out"

CL_FLAGS="--config $CL_DIR/small.conf --debug-snapshot-delay-ms 400"
cl_join 2 "$(cl_client_addr 1)"
CL_N=2
check "the joiner starts receiving a snapshot" cl_wait_log 2 "receiving a snapshot" 20
J=$(cl_join_id 2)
check "the joiner has an id" test -n "$J"
check "its install is not finished" \
	sh -c "! grep -q 'snapshot through index [0-9]* installed' '$CL_DIR/log.2'"
check "the learner is removed in the middle of its install" ctl members remove "$J"

check "the leader closes the idle stream" \
	cl_wait_log 1 "snapshot stream for node $J idle for [0-9]* ms; closed" 12
check "the cluster takes writes afterwards" ctl put after-removal 1
check "and serves them" test "$(ctl get after-removal)" = 1
cl_finish
