#!/bin/sh
# test_cluster_history.sh: concurrent clients against a real 3-node cluster
# while a nemesis SIGKILLs (and restarts) and SIGSTOPs (and resumes) random
# nodes for a bounded time. The clients' history, in keel's native format,
# must be linearizable according to keelcheck; afterwards the healed cluster
# must still take writes. KEEL_HISTORY_FLAGS: extra keel flags (see
# test_cluster_history_cached.sh).
. node/cluster_lib.sh
cl_setup
CL_FLAGS=${KEEL_HISTORY_FLAGS:-}
SECONDS_RUN=${KEEL_HISTORY_SECONDS:-8}

cl_boot 3 || { CL_FAIL=1; cl_finish; exit 1; }
L=$(cl_wait_leader 20)
check "a leader is elected" test -n "$L"

"$KEEL_BIN/keelctl" --endpoints "$(cl_endpoints)" --timeout-ms 300 --attempts 8 \
	workload --clients 6 --seconds "$SECONDS_RUN" --keys 4 \
	--history "$CL_DIR/history.txt" >"$CL_DIR/workload.out" 2>&1 &
wl=$!

rnd() { echo $(($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1)); }
end=$(($(date +%s) + SECONDS_RUN - 1))
faults=0
while [ "$(date +%s)" -lt "$end" ]; do
	n=$(($(rnd 3) + 1))
	if [ "$(rnd 2)" -eq 0 ]; then
		echo "nemesis: kill -9 node $n" >>"$CL_DIR/nemesis.log"
		cl_signal "$n" 9
		wait "$(cl_pid "$n")" 2>/dev/null
		sleep 0.4
		cl_start "$n"
	else
		echo "nemesis: stop node $n for 1s" >>"$CL_DIR/nemesis.log"
		cl_signal "$n" STOP
		sleep 1
		cl_signal "$n" CONT
	fi
	faults=$((faults + 1))
	sleep 0.3
done
wait "$wl"
check "the workload finished" test $? -eq 0
cat "$CL_DIR/workload.out"
check "the nemesis injected faults" test "$faults" -gt 0
check "the history has operations" test "$(wc -l <"$CL_DIR/history.txt")" -gt 100
check "some operations succeeded" grep -q " ok " "$CL_DIR/history.txt"
"$KEEL_BIN/keelcheck" --model keel "$CL_DIR/history.txt" >"$CL_DIR/check.out" 2>&1
rc=$?
cat "$CL_DIR/check.out"
check "keelcheck: the history is linearizable" test "$rc" -eq 0
check "keelcheck says ok" grep -q " ok " "$CL_DIR/check.out"
# The check is not vacuous: the same history with one read changed to a
# value nobody wrote must be rejected.
awk 'BEGIN { done = 0 }
	!done && $2 == "get" && $8 == "ok" && $9 != "-" { $9 = "\047bogus"; done = 1 }
	{ print }' "$CL_DIR/history.txt" >"$CL_DIR/broken.txt"
check "a read was altered for the negative control" sh -c "grep -q \"'bogus\" '$CL_DIR/broken.txt'"
"$KEEL_BIN/keelcheck" --model keel "$CL_DIR/broken.txt" >"$CL_DIR/check-broken.out" 2>&1
check "keelcheck rejects the altered history" test $? -ne 0
check "the healed cluster takes writes" cl_ctl put healed yes
check "and serves them" test "$(cl_ctl get healed)" = "yes"
cl_finish
