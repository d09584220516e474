#!/bin/sh
# test_cluster_crash.sh: kill -9 of the leader of a real 3-node cluster while
# a client writes: a new leader is elected, every acknowledged write is still
# there, and the killed node restarts from its data directory and catches up.
. node/cluster_lib.sh
cl_setup

cl_boot 3 || { CL_FAIL=1; cl_finish; exit 1; }
L=$(cl_wait_leader 20)
check "a leader is elected" test -n "$L"

: >"$CL_DIR/acked"
i=1
while [ "$i" -le 20 ]; do
	cl_ctl put "k$i" "v$i" && echo "k$i v$i" >>"$CL_DIR/acked"
	i=$((i + 1))
done
check "20 writes acknowledged before the crash" test "$(wc -l <"$CL_DIR/acked")" -eq 20

# A writer that keeps going through the crash; it records what was acked.
(
	j=1
	while [ "$j" -le 60 ]; do
		cl_ctl put "c$j" "w$j" 2>/dev/null && echo "c$j w$j" >>"$CL_DIR/acked"
		j=$((j + 1))
	done
) &
writer=$!
sleep 0.3
cl_signal "$L" 9
wait "$(cl_pid "$L")" 2>/dev/null
check "the old leader is dead" sh -c "! kill -0 $(cl_pid "$L") 2>/dev/null"
L2=$(cl_wait_leader 15)
check "a new leader is elected" test -n "$L2" -a "$L2" != "$L"
wait "$writer"

all_acked_present() {
	while read -r k v; do
		got=$(cl_ctl get "$k" 2>/dev/null)
		if [ "$got" != "$v" ]; then
			echo "acknowledged $k=$v but read '$got'"
			return 1
		fi
	done <"$CL_DIR/acked"
	return 0
}
n=$(wc -l <"$CL_DIR/acked")
check "every acknowledged write ($n) survives the crash" all_acked_present
check "the cluster takes new writes" cl_ctl put after crash

cl_start "$L"
caught_up() {
	end=$(($(date +%s) + 15))
	while [ "$(date +%s)" -le "$end" ]; do
		[ "$(cl_ctl_one "$L" get after --stale 2>/dev/null)" = "crash" ] &&
			[ "$(cl_ctl_one "$L" get k1 --stale 2>/dev/null)" = "v1" ] && return 0
		sleep 0.2
	done
	return 1
}
check "the restarted node catches up from its data directory" caught_up
check "the restarted node kept its identity" grep -q "node=$L .*serving" "$CL_DIR/log.$L"
check "all three nodes answer status" sh -c "for i in 1 2 3; do '$KEEL_BIN/keelctl' --endpoints \$(echo '$(cl_endpoints)' | cut -d, -f\$i) --attempts 3 status >/dev/null || exit 1; done"
cl_finish
