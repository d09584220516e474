#!/bin/sh
# bench.sh: make bench-node. A fresh 3-node cluster on loopback (free ports,
# data in a temporary directory), then keelctl bench: 100-byte puts with 1
# and with 64 clients, BENCH_SECONDS (default 15) each; then 100,000 keys are
# loaded and a second 64-client run reports each node's peak resident memory
# (VmHWM). A benchmark, not a test: it prints numbers and asserts nothing.
. node/cluster_lib.sh
S=${BENCH_SECONDS:-15}
cl_setup
cl_boot 3 || exit 1
L=$(cl_wait_leader 20) || { echo "no leader"; exit 1; }
echo "== fresh 3-node cluster, leader node $L, ${S}s per run, flags: ${CL_FLAGS:-none}"
B="$KEEL_BIN/keelctl --endpoints $(cl_endpoints)"
echo "== 1 client, put, 100-byte values"
$B bench --clients 1 --seconds "$S" --op put --value-bytes 100
echo "== 64 clients, put, 100-byte values"
$B bench --clients 64 --seconds "$S" --op put --value-bytes 100
echo "== loading 100,000 keys of 100 bytes"
$B bench --clients 32 --count 100000 --keys 100000 --op put --value-bytes 100 | grep -E "^ops|throughput"
echo "== 64 clients, put, 100-byte values, over 100,000 keys"
$B bench --clients 64 --seconds "$S" --op put --value-bytes 100 --keys 100000
for i in 1 2 3; do
	st="/proc/$(cl_pid "$i")/status"
	echo "node $i peak RSS: $(sed -n 's/^VmHWM:[[:space:]]*//p' "$st")" \
		"(now: anonymous $(sed -n 's/^RssAnon:[[:space:]]*//p' "$st"), file-backed $(sed -n 's/^RssFile:[[:space:]]*//p' "$st"))"
done
