#!/bin/sh
# test_cluster_reserve.sh: with LMDB's writable map (--lmdb-writemap) a full
# disk must be a clean, sticky storage failure, never a SIGBUS. A one-node
# cluster whose reservation of data-file blocks fails past 170 MiB (the
# testing flag --debug-reserve-limit-bytes, as a full disk would) is filled
# until a write fails: the client is told (never a false OK), the node says
# it could not reserve the blocks and exits 3; restarted with room, every
# acknowledged write is there.
. node/cluster_lib.sh
cl_setup
WM="--lmdb-writemap --map-bytes 268435456"
CL_FLAGS="$WM --debug-reserve-limit-bytes 178257920"
cl_boot 1 || { CL_FAIL=1; cl_finish; exit 1; }
check "a one-node cluster elects itself" test -n "$(cl_wait_leader 20)"

big=$(head -c 60000 /dev/zero | tr '\0' 'x')
: >"$CL_DIR/acked"
i=1
last_rc=0
while [ "$i" -le 1000 ]; do
	"$KEEL_BIN/keelctl" --endpoints "$(cl_client_addr 1)" --timeout-ms 1000 --attempts 2 \
		put "big$i" "$big" >/dev/null 2>>"$CL_DIR/ctl.err"
	last_rc=$?
	[ "$last_rc" -ne 0 ] && break
	echo "big$i" >>"$CL_DIR/acked"
	i=$((i + 1))
done
check "writes fail once the reservation fails" test "$last_rc" -ne 0
check "the failed write is not reported as done" test "$last_rc" -ne 0 -a "$last_rc" -ne 1
wait "$(cl_pid 1)"
rc=$?
check "the node stops with exit code 3, not a signal" test "$rc" -eq 3
check "the node says storage failed" grep -q "storage failed: No space left on device" "$CL_DIR/log.1"
check "and that the blocks could not be reserved" grep -q "the store said: cannot reserve the data file's blocks" "$CL_DIR/log.1"
check "some writes were acknowledged first" test "$(wc -l <"$CL_DIR/acked")" -gt 100

CL_FLAGS="$WM"
cl_start 1
check "restarted with room, it serves again" test -n "$(cl_wait_leader 20)"
all_there() {
	while read -r k; do
		v=$(cl_ctl_one 1 get "$k" 2>/dev/null)
		[ "${#v}" -eq 60000 ] || { echo "lost $k"; return 1; }
	done <"$CL_DIR/acked"
}
check "every acknowledged write survived the failure" all_there
check "and it takes new writes" cl_ctl put after full
cl_finish
