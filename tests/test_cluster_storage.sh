#!/bin/sh
# test_cluster_storage.sh: a storage failure is sticky. A one-node cluster
# whose data file may not grow past 2 MiB is filled until a write fails: the
# client is told (never a false OK), the node says why in its log and exits
# 3; restarted with room, every acknowledged write is there.
# KEEL_STORAGE_FLAGS adds flags to every start (test_cluster_storage_writemap.sh).
. node/cluster_lib.sh
cl_setup
CL_FLAGS="--map-bytes 2097152 ${KEEL_STORAGE_FLAGS:-}"
cl_boot 1 || { CL_FAIL=1; cl_finish; exit 1; }
check "a one-node cluster elects itself" test -n "$(cl_wait_leader 20)"

big=$(head -c 30000 /dev/zero | tr '\0' 'x')
: >"$CL_DIR/acked"
i=1
last_rc=0
while [ "$i" -le 200 ]; do
	"$KEEL_BIN/keelctl" --endpoints "$(cl_client_addr 1)" --timeout-ms 1000 --attempts 2 \
		put "big$i" "$big" >/dev/null 2>>"$CL_DIR/ctl.err"
	last_rc=$?
	[ "$last_rc" -ne 0 ] && break
	echo "big$i" >>"$CL_DIR/acked"
	i=$((i + 1))
done
check "writes fail once the data file is full" test "$last_rc" -ne 0
check "the failed write is not reported as done" test "$last_rc" -ne 0 -a "$last_rc" -ne 1
wait "$(cl_pid 1)"
rc=$?
check "the node stops with exit code 3" test "$rc" -eq 3
check "the node says storage failed, and how" grep -q "storage failed: out of memory (KEEL_ENOMEM)" "$CL_DIR/log.1"
check "and what the store said" grep -q "the store said: .*MDB_MAP_FULL" "$CL_DIR/log.1"
check "some writes were acknowledged first" test "$(wc -l <"$CL_DIR/acked")" -gt 5

CL_FLAGS="--map-bytes 67108864 ${KEEL_STORAGE_FLAGS:-}"
cl_start 1
check "restarted with room, it serves again" test -n "$(cl_wait_leader 20)"
all_there() {
	while read -r k; do
		v=$(cl_ctl_one 1 get "$k" 2>/dev/null)
		[ "${#v}" -eq 30000 ] || { echo "lost $k"; return 1; }
	done <"$CL_DIR/acked"
}
check "every acknowledged write survived the failure" all_there
check "and it takes new writes" cl_ctl put after full
cl_finish
