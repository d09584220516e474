#!/bin/sh
# test_cluster_basic.sh: a real 3-node keel cluster on loopback: election,
# redirect of a write sent to a follower, linearizable and stale reads, the
# status call, and bad input on both ports (garbage, oversized, truncated,
# bad checksum, wrong cluster id): logged, that connection closed, the node
# keeps serving and the stored data is unchanged.
. node/cluster_lib.sh
cl_setup

cl_boot 3 || { CL_FAIL=1; cl_finish; exit 1; }
L=$(cl_wait_leader 20)
check "a leader is elected" test -n "$L"
F=1
[ "$F" = "$L" ] && F=2

check "put through a follower is redirected" \
	"$KEEL_BIN/keelctl" --endpoints "$(cl_client_addr "$F")" put color blue
v=$("$KEEL_BIN/keelctl" --endpoints "$(cl_client_addr "$F")" get color)
check "linearizable get through a follower" test "$v" = "blue"
out=$(cl_ctl_one "$F" put direct x 2>&1)
check "a follower answers a write with the leader's address" \
	sh -c "echo '$out' | grep -q 'not the leader; trying $(cl_client_addr "$L")'"

stale_ok() {
	end=$(($(date +%s) + 10))
	while [ "$(date +%s)" -le "$end" ]; do
		s=$(cl_ctl_one "$1" get color --stale 2>"$CL_DIR/stale.err")
		[ "$s" = "blue" ] && grep -q stale "$CL_DIR/stale.err" && return 0
		sleep 0.1
	done
	return 1
}
for i in 1 2 3; do
	check "stale get on node $i is labelled and converges" stale_ok "$i"
done
cl_ctl get nothing-here >/dev/null 2>&1
check "get of an absent key exits 1" test $? -eq 1
check "cas on the right value" cl_ctl cas color blue green
cl_ctl cas color blue red >/dev/null 2>&1
check "cas on a wrong value exits 1" test $? -eq 1
check "append" cl_ctl append color -ish
check "value after cas and append" test "$(cl_ctl get color)" = "green-ish"
check "status names the leader" sh -c "'$KEEL_BIN/keelctl' --endpoints '$(cl_client_addr "$F")' status | grep -q '^leader $L$'"

# Silent sockets cannot hold connection slots: closed after the hello
# deadline (run in the background while the other probes go on).
"$KEEL_BIN/keelctl" probe "$(cl_client_addr "$L")" silent >"$CL_DIR/silent.c" 2>&1 &
sc=$!
"$KEEL_BIN/keelctl" probe "$(cl_peer_addr "$F")" silent >"$CL_DIR/silent.p" 2>&1 &
sp=$!

# Bad input on both ports of every kind; each must be closed by the node.
for kind in garbage oversized truncated bad-checksum wrong-cluster-client; do
	check "client port: $kind closes the connection" \
		"$KEEL_BIN/keelctl" probe "$(cl_client_addr "$L")" "$kind"
done
for kind in garbage oversized truncated bad-checksum wrong-cluster-peer; do
	check "peer port: $kind closes the connection" \
		"$KEEL_BIN/keelctl" probe "$(cl_peer_addr "$F")" "$kind"
done
check "bad client input is logged with the peer address" \
	grep -q "closing client connection from 127.0.0.1:.*checksum" "$CL_DIR/log.$L"
check "a truncated frame is logged" \
	grep -q "closing client connection from 127.0.0.1:.*input ends early" "$CL_DIR/log.$L"
check "a client of another cluster is logged" \
	grep -q "refusing client 127.0.0.1:.*cluster id 24301" "$CL_DIR/log.$L"
check "a peer of another cluster is logged" \
	grep -q "refusing peer 99 at 127.0.0.1:.*cluster id 24301" "$CL_DIR/log.$F"
wait "$sc"
check "client port: a silent connection is closed after the hello deadline" test $? -eq 0
wait "$sp"
check "peer port: a silent connection is closed after the hello deadline" test $? -eq 0
check "the hello deadline is logged" grep -q "no hello in" "$CL_DIR/log.$L"
check "the leader still serves, data unchanged" test "$(cl_ctl get color)" = "green-ish"
for i in 1 2 3; do
	check "node $i is still running" cl_alive "$i"
done
check "writes still commit after the probes" cl_ctl put after probes

# HTTP: /metrics (Prometheus text) and /status (JSON).
"$KEEL_BIN/keelctl" probe "$(cl_http_addr "$L")" get:/metrics >"$CL_DIR/metrics" 2>&1
check "GET /metrics answers 200" test $? -eq 0
check "/metrics counts the refused client" grep -q '^keel_client_cluster_refused_total 1$' "$CL_DIR/metrics"
check "/metrics counts bad client frames" grep -q '^keel_client_bad_frames_total [1-9]' "$CL_DIR/metrics"
check "/metrics counts the applied state's flushes" grep -q '^keel_apply_flushes_total [1-9]' "$CL_DIR/metrics"
check "/metrics says leader" grep -q '^keel_role 4$' "$CL_DIR/metrics"
"$KEEL_BIN/keelctl" probe "$(cl_http_addr "$F")" get:/metrics >"$CL_DIR/metrics.f" 2>&1
check "/metrics on a follower counts bad peer frames" grep -q '^keel_peer_bad_frames_total [1-9]' "$CL_DIR/metrics.f"
check "/metrics on a follower counts the refused peer" grep -q '^keel_peer_cluster_refused_total 1$' "$CL_DIR/metrics.f"
"$KEEL_BIN/keelctl" probe "$(cl_http_addr "$F")" get:/status >"$CL_DIR/status.f" 2>&1
check "GET /status is JSON naming the leader" grep -q "\"role\":\"follower\",\"term\":[0-9]*,\"leader\":$L," "$CL_DIR/status.f"

# The Redis-protocol port: pipelined commands answered in order, a read
# after a write on the same connection sees it, followers redirect.
out=$("$KEEL_BIN/keelctl" probe "$(cl_redis_addr "$L")" "redis:PING;SET r 1;GET r;DEL r;GET r;SET r2 x;GET r2;NOPE")
check "redis: PING SET GET DEL in order" test "$out" = "+PONG|+OK|\$1|1|:1|\$-1|+OK|\$1|x|-ERR unknown command or arguments 'NOPE' (keel: PING ECHO GET SET DEL)|+OK|"
redis_in_order() {
	n=0
	while [ "$n" -lt 10 ]; do
		o=$("$KEEL_BIN/keelctl" probe "$(cl_redis_addr "$L")" "redis:SET q 1;GET q;DEL q;GET q;SET q 2;GET q;GET q;DEL q")
		[ "$o" = "+OK|\$1|1|:1|\$-1|+OK|\$1|2|\$1|2|:1|+OK|" ] || { echo "got $o"; return 1; }
		n=$((n + 1))
	done
}
check "redis: a pipeline of reads and writes behaves sequentially (10 times)" redis_in_order
out=$("$KEEL_BIN/keelctl" probe "$(cl_redis_addr "$F")" "redis:SET r 2")
check "redis: a follower answers NOT_LEADER" sh -c "echo '$out' | grep -q '^-NOT_LEADER leader $L at $(cl_client_addr "$L")'"
check "redis: keel and Redis see the same data" test "$(cl_ctl get r2)" = "x"
out=$("$KEEL_BIN/keelctl" probe "$(cl_redis_addr "$L")" "redis:*x")
check "redis: a protocol error is answered and the connection closed" test "$out" = "-ERR protocol error; closing|"

# SIGTERM on the leader: it hands leadership over and exits 0.
cl_signal "$L" TERM
wait "$(cl_pid "$L")"
rc=$?
check "SIGTERM: the leader exits 0" test "$rc" -eq 0
check "SIGTERM: leadership was transferred" grep -q "transferring leadership" "$CL_DIR/log.$L"
L2=$(cl_wait_leader 10)
check "a new leader after the hand-off" test -n "$L2" -a "$L2" != "$L"
check "data survives the hand-off" test "$(cl_ctl get after)" = "probes"

# Restarting with flags that contradict the data directory is refused.
"$KEEL_BIN/keel" --data "$CL_DIR/n$L" --id 99 >"$CL_DIR/contra" 2>&1
check "restart with another --id exits 2" test $? -eq 2
check "and says what DIR holds" grep -q "contradicts .*belongs to node $L" "$CL_DIR/contra"
"$KEEL_BIN/keel" --data "$CL_DIR/n$L" --listen 127.0.0.1:1 >"$CL_DIR/contra" 2>&1
check "restart with another --listen exits 2" test $? -eq 2
check "and names the address DIR holds" grep -q "listens on $(cl_peer_addr "$L")" "$CL_DIR/contra"
"$KEEL_BIN/keel" --data "$CL_DIR/empty" >"$CL_DIR/contra" 2>&1
check "an empty DIR without --bootstrap exits 2" test $? -eq 2
"$KEEL_BIN/keel" --data d --tick-ms x >"$CL_DIR/contra" 2>&1
check "a bad flag exits 2 naming the flag" grep -q -- "--tick-ms" "$CL_DIR/contra"
check "--help exits 0" sh -c "'$KEEL_BIN/keel' --help >/dev/null"
cl_start "$L"
check "the node restarts from DIR and rejoins" sh -c "sleep 1; '$KEEL_BIN/keelctl' --endpoints $(cl_client_addr "$L") --attempts 20 get after --stale | grep -q probes"
cl_finish
