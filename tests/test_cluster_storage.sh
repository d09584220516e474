#!/bin/sh
# test_cluster_storage.sh: a storage failure is sticky. A one-node cluster
# whose data file may not grow past 2 MiB is filled until a write fails: the
# client is told (never a false OK), the node says why in its log and exits
# 3 (not by a signal); restarted with room, every acknowledged write is
# there. Wrappers change what fills up:
#   KEEL_STORAGE_FLAGS  added to every start (test_cluster_storage_writemap.sh)
#   KEEL_STORAGE_FULL   the flags that bound the space (default: a 2 MiB map)
#   KEEL_STORAGE_ROOM   the restart's flags (default: a 64 MiB map)
#   KEEL_STORAGE_ERR    how the node names the failure
#   KEEL_STORAGE_SAID   what the store said, as a grep pattern
#   KEEL_STORAGE_FILE   the data file's size once started (the writable map
#                       gives it the map's size), when set
. node/cluster_lib.sh
cl_setup
FULL=${KEEL_STORAGE_FULL:---map-bytes 2097152}
ROOM=${KEEL_STORAGE_ROOM---map-bytes 67108864}
ERR=${KEEL_STORAGE_ERR:-out of memory (KEEL_ENOMEM)}
SAID=${KEEL_STORAGE_SAID:-.*MDB_MAP_FULL}
CL_FLAGS="$FULL ${KEEL_STORAGE_FLAGS:-}"
cl_boot 1 || { CL_FAIL=1; cl_finish; exit 1; }
check "a one-node cluster elects itself" test -n "$(cl_wait_leader 20)"
if [ -n "${KEEL_STORAGE_FILE:-}" ]; then
	check "the data file has the map's size" \
		test "$(stat -c %s "$CL_DIR/n1/data.mdb")" -eq "$KEEL_STORAGE_FILE"
fi

big=$(head -c 60000 /dev/zero | tr '\0' 'x')
: >"$CL_DIR/acked"
i=1
last_rc=0
while [ "$i" -le 2000 ]; do
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
check "the node stops with exit code 3, not a signal" test "$rc" -eq 3
check "the node says storage failed, and how" grep -qF "storage failed: $ERR" "$CL_DIR/log.1"
check "and what the store said" grep -q "the store said: $SAID" "$CL_DIR/log.1"
check "some writes were acknowledged first" test "$(wc -l <"$CL_DIR/acked")" -gt 5

CL_FLAGS="$ROOM ${KEEL_STORAGE_FLAGS:-}"
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
