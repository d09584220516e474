#!/bin/sh
# test_sim_cli.sh: keelsim's command line: flags are validated, a run
# replays bit for bit, --trace/--history write what they say, and the
# output line has its fields. (Failing seeds and their replay lines are
# exercised by `make mutants`.)
set -u
BIN=${KEEL_BIN:-bin}
SIM=$BIN/keelsim
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }

expect_usage() { # name args...
	name=$1
	shift
	"$SIM" "$@" >"$tmp/o" 2>&1
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q 'usage:' "$tmp/o"; then ok "$name"; else no "$name (rc=$rc)"; fi
}

expect_usage no_seed --nodes 3
expect_usage bad_nodes --seed 1 --nodes 0
expect_usage too_many_nodes --seed 1 --nodes 8
expect_usage bad_profile --seed 1 --profile stormy
expect_usage bad_seed --seed -4
expect_usage bad_seeds --seeds 5:2
expect_usage seeds_not_range --seeds 5
expect_usage bad_jobs --seeds 1:2 --jobs 0
expect_usage bad_ops --seed 1 --ops 0
expect_usage unknown_flag --seed 1 --frobnicate
expect_usage missing_value --seed
expect_usage trace_needs_one_seed --seeds 1:2 --trace "$tmp/t"
: >"$tmp/plainfile"
expect_usage html_not_dir --seed 1 --html "$tmp/plainfile"
if "$SIM" --seed 3 --ops 50 --profile calm --html "$tmp/pics" >/dev/null 2>&1 && [ -d "$tmp/pics" ]; then
	ok html_dir_created
else
	no html_dir_created
fi

"$SIM" --seed 11 --ops 150 --profile all --trace "$tmp/trace" --history "$tmp/hist" >"$tmp/a"
rc=$?
line=$(cat "$tmp/a")
if [ "$rc" -eq 0 ] && echo "$line" | grep -Eq '^seed=11 result=pass reason=none ops=[0-9]+ virtual_s=[0-9.]+ wall_ms=[0-9]+ trace_hash=[0-9a-f]{16}$'; then
	ok output_line
else
	no "output_line: $line"
fi
if head -1 "$tmp/hist" | grep -q '^# keel history v1' && [ "$(grep -vc '^#' "$tmp/hist")" -ge 100 ]; then
	ok history_file
else
	no history_file
fi
if grep -q ' sim  heal' "$tmp/trace" && grep -q 'leader term' "$tmp/trace"; then ok trace_file; else no trace_file; fi
if "$BIN/keelcheck" "$tmp/hist" | grep -q ' ok '; then ok history_checks_ok; else no history_checks_ok; fi

"$SIM" --seed 11 --ops 150 --profile all >"$tmp/b"
h1=$(sed 's/.*trace_hash=//' "$tmp/a")
h2=$(sed 's/.*trace_hash=//' "$tmp/b")
if [ "$h1" = "$h2" ]; then ok replay_same_hash; else no "replay_same_hash $h1 $h2"; fi
"$SIM" --seed 12 --ops 150 --profile all >"$tmp/c"
h3=$(sed 's/.*trace_hash=//' "$tmp/c")
if [ "$h1" != "$h3" ]; then ok other_seed_other_hash; else no other_seed_other_hash; fi
if "$SIM" --seed 13 --ops 100 --profile swarm --check-determinism | grep -q 'result=pass'; then
	ok check_determinism
else
	no check_determinism
fi

"$SIM" --seeds 1:3 --ops 50 --profile calm --jobs 2 >"$tmp/d"
if [ "$(grep -c '^seed=' "$tmp/d")" -eq 3 ] && grep -q '3 passed, 0 failed' "$tmp/d"; then
	ok seeds_range
else
	no seeds_range
fi

# A 1-node cluster under the crash profile must still pass (restart from disk).
if "$SIM" --seed 5 --nodes 1 --ops 100 --profile crash | grep -q 'result=pass'; then
	ok one_node_crash
else
	no one_node_crash
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
