#!/bin/sh
# test_cluster_fds.sh: a flood of idle client connections cannot starve a
# node of the file descriptors its peer connections need. Node 3 runs with
# a limit of 256 descriptors and 300 clients connect to it and stay; nodes
# 1 and 2 then restart (so node 3 must make and accept new peer
# connections) and elect a new leader; node 3 must follow the new term
# while the flood is still connected.
. node/cluster_lib.sh
cl_setup
cl_boot 3 || { CL_FAIL=1; cl_finish; exit 1; }
check "a leader is elected" test -n "$(cl_wait_leader 20)"
check "it takes a write" cl_ctl put a 1

cl_signal 3 9
sleep 0.2
(ulimit -n 256 && cl_start 3)
sleep 1
check "node 3 restarts under a 256-descriptor limit" cl_alive 3

"$KEEL_BIN/keelctl" probe "$(cl_client_addr 3)" hold:300:12000 >"$CL_DIR/hold" 2>&1 &
hp=$!
sleep 1.5
cat "$CL_DIR/hold"

conns=$("$KEEL_BIN/keelctl" probe "$(cl_http_addr 3)" get:/metrics 2>/dev/null |
	sed -n 's/^[a-z_]*client_connections \([0-9]*\).*/\1/p')
echo "node 3 client connections: $conns"
# 256 descriptors minus the reserve (SERVER_FDS_RESERVED, 128) for peers,
# HTTP and the rest.
check "node 3 holds no more clients than its descriptors allow" \
	test -n "$conns" -a "${conns:-999}" -le 128

cl_signal 1 9
cl_signal 2 9
sleep 0.3
cl_start 1
cl_start 2
L=$(cl_wait_leader 20)
check "nodes 1 and 2 elect a leader" test -n "$L"
term=$(cl_ctl_one "$L" status 2>/dev/null | sed -n 's/^term //p')
echo "leader $L term $term"

node3_term() {
	"$KEEL_BIN/keelctl" probe "$(cl_http_addr 3)" get:/status 2>/dev/null |
		sed -n 's/.*"term":\([0-9]*\).*/\1/p'
}
i=0
t3=""
while [ "$i" -lt 30 ]; do
	t3=$(node3_term)
	[ -n "$term" ] && [ "$t3" = "$term" ] && break
	sleep 0.2
	i=$((i + 1))
done
echo "node 3 term $t3"
check "node 3 follows the new leader during the client flood" test -n "$term" -a "$t3" = "$term"
check "node 3 is still up" cl_alive 3
kill "$hp" 2>/dev/null
wait "$hp" 2>/dev/null
cl_finish
