#!/bin/sh
# test_cluster_bench.sh: keelctl bench's load generator (node/benchload.c)
# against a real 3-node cluster: a counted load writes exactly the keys it
# says (following NOT_LEADER hints from whichever node each client starts
# on), gets read them back, a timed load keeps going through a kill -9 of
# the leader and ends on time, and a load started after the crash, whose
# clients start on any endpoint (the dead one too), completes.
. node/cluster_lib.sh
cl_setup

cl_boot 3 || { CL_FAIL=1; cl_finish; exit 1; }
L=$(cl_wait_leader 20)
check "a leader is elected" test -n "$L"

B="$KEEL_BIN/keelctl --endpoints $(cl_endpoints) --timeout-ms 500 --attempts 40"
$B bench --clients 8 --count 300 --keys 300 --op put --value-bytes 5 \
	>"$CL_DIR/put.out" 2>&1
check "a counted put load: 300 ops, none failed or unknown" \
	grep -q '^ops 300 failed 0 unknown 0$' "$CL_DIR/put.out"
check "the first and the last key hold the value written" \
	sh -c "[ \"\$($B get k00000000)\" = vvvvv ] && [ \"\$($B get k00000299)\" = vvvvv ]"
check "a key past --keys was not written" sh -c "! $B get k00000300 2>/dev/null"

$B bench --clients 4 --count 100 --keys 300 --op get >"$CL_DIR/get.out" 2>&1
check "a counted get load: 100 ops" \
	grep -q '^ops 100 failed 0 unknown 0$' "$CL_DIR/get.out"

start=$(date +%s)
$B bench --clients 8 --seconds 4 --op put --value-bytes 10 \
	>"$CL_DIR/timed.out" 2>&1 &
bench=$!
sleep 1
cl_signal "$L" 9
wait "$bench"
rc=$?
secs=$(($(date +%s) - start))
check "the timed load through a leader crash exits 0" test "$rc" -eq 0
check "it ends within its time plus one attempt's bound" test "$secs" -le 7
ops=$(sed -n 's/^ops \([0-9]*\) .*/\1/p' "$CL_DIR/timed.out")
check "it made progress (ops=$ops)" test "${ops:-0}" -gt 100
L2=$(cl_wait_leader 15)
check "a new leader took over" test -n "$L2" -a "$L2" != "$L"
# Every client starts on a random endpoint, the dead one included.
$B bench --clients 8 --count 200 --keys 300 --op put --value-bytes 3 \
	>"$CL_DIR/after.out" 2>&1
check "a counted load after the crash: 200 ops, none failed or unknown" \
	grep -q '^ops 200 failed 0 unknown 0$' "$CL_DIR/after.out"
check "its writes are there" test "$($B get k00000199)" = vvv

cl_finish
