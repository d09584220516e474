#!/bin/sh
# test_cluster_edges.sh: edge cases on a one-node cluster's ports.
#   - a Redis command refused for its size does not stall the commands
#     after it on the same connection;
#   - a client frame announcing far more than any request closes the
#     connection at once (nothing is buffered for it);
#   - a stale get of an absent key is labelled stale like any stale get;
#   - an HTTP connection that never sends its request is closed;
#   - SIGTERM stops the node even while clients hold connections open on
#     any of its ports (an idle HTTP scraper, a client that never said
#     hello, a Redis client): it exits 0 instead of waiting for them.
. node/cluster_lib.sh
cl_setup
cl_boot 1 || { CL_FAIL=1; cl_finish; exit 1; }
check "a one-node cluster elects itself" test -n "$(cl_wait_leader 20)"
check "it takes a write" cl_ctl put k v

# A silent HTTP connection: the node must close it (after its deadline).
"$KEEL_BIN/keelctl" probe "$(cl_http_addr 1)" silent >"$CL_DIR/http.silent" 2>&1 &
ps=$!

long=$(head -c 1100 /dev/zero | tr '\0' 'x')
out=$("$KEEL_BIN/keelctl" probe "$(cl_redis_addr 1)" "redis:SET $long v;GET k;SET k2 w;GET k2")
echo "redis: $out"
check "redis: a key over the limit is refused, the next commands still run" \
	test "$out" = "-ERR key or value out of range|\$1|v|+OK|\$1|w|+OK|"

check "a client request frame of 4 MiB is refused at its header" \
	"$KEEL_BIN/keelctl" probe "$(cl_client_addr 1)" big-request
check "a 4 MiB frame before the hello is refused on the peer port" \
	"$KEEL_BIN/keelctl" probe "$(cl_peer_addr 1)" big-hello
check "and on the client port" \
	"$KEEL_BIN/keelctl" probe "$(cl_client_addr 1)" big-hello
check "the node still serves" cl_ctl put k2 v2

cl_ctl get nokey --stale >/dev/null 2>"$CL_DIR/stale.err"
check "a stale get of an absent key is labelled stale" grep -q "(stale read)" "$CL_DIR/stale.err"
cl_ctl get nokey >/dev/null 2>"$CL_DIR/lin.err"
check "a linearizable get of it is not" test "$(grep -c "(stale read)" "$CL_DIR/lin.err")" -eq 0

wait "$ps"
check "a silent HTTP connection is closed by the node" test "$?" -eq 0

# Connections that stay open and say nothing (each probe holds its socket
# for several seconds).
"$KEEL_BIN/keelctl" probe "$(cl_http_addr 1)" silent >/dev/null 2>&1 &
p1=$!
"$KEEL_BIN/keelctl" probe "$(cl_redis_addr 1)" silent >/dev/null 2>&1 &
p2=$!
"$KEEL_BIN/keelctl" probe "$(cl_client_addr 1)" silent >/dev/null 2>&1 &
p3=$!
sleep 0.5
pid=$(cl_pid 1)
cl_signal 1 TERM
# The drain waits at most a few seconds; poll up to 4 s (before the probes
# give up and close their sockets themselves).
i=0
while [ "$i" -lt 40 ] && kill -0 "$pid" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
stopped=1
kill -0 "$pid" 2>/dev/null && stopped=0
check "SIGTERM stops the node while idle connections are open" test "$stopped" -eq 1
if [ "$stopped" -eq 1 ]; then
	wait "$pid"
	rc=$?
	check "and it exits 0" test "$rc" -eq 0
fi
kill "$p1" "$p2" "$p3" 2>/dev/null
wait "$p1" "$p2" "$p3" 2>/dev/null
cl_finish
