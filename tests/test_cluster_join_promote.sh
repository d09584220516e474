#!/bin/sh
# test_cluster_join_promote.sh: a joiner promotes itself even when every
# address it joined through is gone by then. Node 4 joins a 3-node cluster
# through node 1 alone; its snapshot install is slowed (testing-only flag)
# so that it cannot be promoted yet when node 1 is killed; once caught up it
# must still find the leader (through its own node's leader hint) and
# become a voter.
. node/cluster_lib.sh
cl_setup
printf 'log-tail-entries = 16\nlog-tail-bytes = 65536\n' >"$CL_DIR/small.conf"
CL_FLAGS="--config $CL_DIR/small.conf"

ctl() {
	"$KEEL_BIN/keelctl" --endpoints "$(cl_client_addr 2),$(cl_client_addr 3)" \
		--timeout-ms 500 --attempts 20 "$@"
}
voters() { ctl members list 2>/dev/null | awk '$2 == "voter" { print $1 }' | sort -n | tr '\n' ' '; }

cl_boot 3 || { CL_FAIL=1; cl_finish; exit 1; }
check "a leader is elected" test -n "$(cl_wait_leader 20)"
"$KEEL_BIN/keelctl" --endpoints "$(cl_endpoints)" bench --clients 8 --count 1500 \
	--op put --value-bytes 1000 --keys 1500 >"$CL_DIR/load.out" 2>&1
check "1500 keys of 1000 bytes loaded" grep -q "^ops 1500 failed 0" "$CL_DIR/load.out"

CL_FLAGS="--config $CL_DIR/small.conf --debug-snapshot-delay-ms 250"
cl_join 4 "$(cl_client_addr 1)"
check "the joiner starts receiving a snapshot" cl_wait_log 4 "receiving a snapshot" 20
J=$(cl_join_id 4)
check "the joiner has an id" test -n "$J"
not_voter() { ! voters | grep -qw "$J"; }
check "it is not a voter yet" not_voter
cl_signal 1 9
wait "$(cl_pid 1)" 2>/dev/null

promoted() {
	end=$(($(date +%s) + 30))
	while [ "$(date +%s)" -le "$end" ]; do
		voters | grep -qw "$J" && return 0
		sleep 0.3
	done
	echo "voters: $(voters)"
	return 1
}
check "with its only --join address gone, node $J still becomes a voter" promoted
check "the cluster takes writes" ctl put after-promotion 1
cl_finish
