#!/bin/sh
# run.sh: run every test suite and print one line of totals.
#
# A suite is a program $KEEL_BIN/test_* or a script tests/test_*.sh. Each
# ends its output with a line "N passed, M failed"; a suite that exits
# non-zero without failures counted (a crash, a timeout) adds one failure.
# Each suite's output goes to $KEEL_BUILD/test-logs/NAME.log; a failing
# suite's log tail is printed. The last line is exactly "N passed, M failed".
set -u
BIN=${KEEL_BIN:-bin}
LOGS=${KEEL_BUILD:-build}/test-logs
SUITE_SECONDS=${KEEL_SUITE_SECONDS:-900} # one suite's time bound
mkdir -p "$LOGS"

total_pass=0
total_fail=0

run_suite() {
	name=$1
	shift
	log="$LOGS/$name.log"
	start=$(date +%s)
	timeout -k 10 "$SUITE_SECONDS" "$@" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*passed, }
		f=${f%% failed*}
	else
		p=0
		f=0
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		[ "$rc" -eq 124 ] && echo "$name: timed out after ${SUITE_SECONDS}s" >>"$log"
		echo "$name: exited with status $rc" >>"$log"
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	printf '%-16s %4d passed, %d failed  (%ss)\n' "$name" "$p" "$f" "$secs"
	if [ "$f" -ne 0 ]; then
		echo "---- $log (last 40 lines) ----"
		tail -n 40 "$log"
		echo "----"
	fi
}

for t in "$BIN"/test_*; do
	[ -x "$t" ] || continue
	run_suite "$(basename "$t")" "$t"
done
for s in tests/test_*.sh; do
	[ -f "$s" ] || continue
	run_suite "$(basename "$s" .sh)" sh "$s"
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
