#!/bin/sh
# fuzz-smoke.sh: run every libFuzzer target for a short, bounded time
# (FUZZ_SMOKE_SECONDS each, default 20) from its committed corpus. Not part
# of `make test`; builds and installs what it needs (see fuzz/fuzz.mk).
# A finding leaves its input in build/fuzz/crashes/ and fails the script.
# Last line: "N passed, M failed" (one per target).
set -u
cd "$(dirname "$0")/.."
SECS=${FUZZ_SMOKE_SECONDS:-20}
make -s -j2 fuzz >/dev/null || { echo "fuzz build failed"; echo "0 passed, 1 failed"; exit 1; }
pass=0
fail=0
mkdir -p build/fuzz/logs
for t in $(make -s fuzz-list); do
	log=build/fuzz/logs/smoke-$t.log
	if make -s fuzz-run TARGET="$t" SECONDS="$SECS" >"$log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
		echo "ok   $t: $execs runs, $rate/s"
		pass=$((pass + 1))
	else
		echo "FAIL $t (log: $log)"
		tail -n 30 "$log"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
