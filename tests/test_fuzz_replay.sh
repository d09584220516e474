#!/bin/sh
# test_fuzz_replay.sh: replay every committed fuzz corpus file
# (fuzz/corpus/<target>/*) through its harness, linked with the plain
# replay driver (fuzz/replay.c): a regression input that crashed once fails
# here if it crashes again. Counts one test per corpus file.
set -u
BIN=${KEEL_BIN:-bin}
pass=0
fail=0

for dir in fuzz/corpus/*/; do
	t=$(basename "$dir")
	bin="$BIN/fuzz_replay_$t"
	files=$(find "$dir" -type f | wc -l)
	if [ ! -x "$bin" ]; then
		echo "FAIL $t: no replay binary $bin ($files files)"
		fail=$((fail + files))
		continue
	fi
	if out=$("$bin" "$dir" 2>&1); then
		n=$(echo "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, 0 failed$/\1/p')
		if [ "$n" = "$files" ]; then
			echo "ok   $t: $n files"
			pass=$((pass + n))
			continue
		fi
	fi
	# The target failed: find the inputs that fail, one process each.
	for f in $(find "$dir" -type f | sort); do
		if "$bin" "$f" >/dev/null 2>&1; then
			pass=$((pass + 1))
		else
			echo "FAIL $t: $f"
			"$bin" "$f" 2>&1 | tail -n 5
			fail=$((fail + 1))
		fi
	done
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
