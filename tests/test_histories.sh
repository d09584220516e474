#!/bin/sh
# test_histories.sh: keelcheck agrees with every verdict of the public
# histories (../shared/histories/expected.tsv, relative to the repo root),
# writes an HTML picture naming the key for an illegal one, and rejects
# malformed input and bad flags with exit status 2.
set -u
BIN=${KEEL_BIN:-bin}
CHECK=$BIN/keelcheck
DIR=../shared/histories
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

if [ ! -f "$DIR/expected.tsv" ]; then
	echo "FAIL $DIR/expected.tsv is missing (the shared histories must be next to the repo)"
	echo "0 passed, 1 failed"
	exit 1
fi
if [ ! -x "$CHECK" ]; then
	echo "FAIL $CHECK is not built"
	echo "0 passed, 1 failed"
	exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 1. Every verdict, in one run (one line per file, in order).
files=$(cut -f1 "$DIR/expected.tsv" | sed "s|^|$DIR/|")
# shellcheck disable=SC2086
"$CHECK" $files >"$TMP/out" 2>"$TMP/err"
rc=$?
n=0
while IFS="$(printf '\t')" read -r file want; do
	n=$((n + 1))
	line=$(sed -n "${n}p" "$TMP/out")
	got=$(echo "$line" | cut -d' ' -f2)
	name=$(echo "$line" | cut -d' ' -f1)
	if [ "$name" = "$DIR/$file" ] && [ "$got" = "$want" ]; then
		ok
	else
		bad "$file: expected $want, got '$line'"
	fi
done <"$DIR/expected.tsv"
if [ "$n" -eq 108 ]; then ok; else bad "expected.tsv has $n lines, not 108"; fi
# Some are illegal, so the status must be 1.
if [ "$rc" -eq 1 ]; then ok; else bad "status $rc over the public set, expected 1"; fi

# 2. Status of all-ok files, and the output line's shape.
"$CHECK" "$DIR/kv/c10-ok.txt" "$DIR/jepsen/etcd_002.log" >"$TMP/ok" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -Eq '^[^ ]+ ok ops=[0-9]+ check_ms=[0-9.]+$' "$TMP/ok"; then ok; else
	bad "all-ok run: status $rc, output $(cat "$TMP/ok")"; fi

# 3. HTML for an illegal history names the failing key.
"$CHECK" --html "$TMP/html" "$DIR/kv/c10-bad.txt" >"$TMP/h" 2>&1
rc=$?
key=$(sed -n 's/.* key=\([^ ]*\).*/\1/p' "$TMP/h")
page="$TMP/html/c10-bad.txt.html"
if [ "$rc" -eq 1 ] && [ -s "$page" ] && [ -n "$key" ]; then ok; else bad "html run: status $rc, $(cat "$TMP/h")"; fi
plain=$(echo "$key" | sed "s/^'//")
if [ -s "$page" ] && grep -q "data-key=\"$plain\"" "$page" && grep -q '<svg' "$page"; then ok; else
	bad "the page does not name key $key"; fi

# 4. Malformed input: status 2 and "file:line: reason" on stderr.
printf '# keel history v1\n1 get %sk - - 10 20 ok -\n1 get %sk - - 30 20 ok -\n' "'" "'" >"$TMP/m1"
"$CHECK" "$TMP/m1" >/dev/null 2>"$TMP/e1"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "m1:3: complete_ns is before invoke_ns" "$TMP/e1"; then ok; else
	bad "malformed native: status $rc, $(cat "$TMP/e1")"; fi
printf 'INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:bogus\t:read\tnil\n' >"$TMP/m2"
"$CHECK" "$TMP/m2" >/dev/null 2>"$TMP/e2"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "m2:2: type" "$TMP/e2"; then ok; else bad "malformed jepsen: status $rc, $(cat "$TMP/e2")"; fi
printf '{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n{:process 0, :type :ok, :f :get, :key "a" :value "x}\n' >"$TMP/m3"
"$CHECK" "$TMP/m3" >/dev/null 2>"$TMP/e3"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "m3:2: unterminated string" "$TMP/e3"; then ok; else bad "malformed edn: status $rc, $(cat "$TMP/e3")"; fi
"$CHECK" "$TMP/does-not-exist" >/dev/null 2>"$TMP/e4"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "does-not-exist: cannot read" "$TMP/e4"; then ok; else bad "missing file: status $rc"; fi

# 5. Bad flags: status 2 with a message.
for args in "--model nope $TMP/m1" "--timeout-ms x $TMP/m1" "--timeout-ms 0 $TMP/m1" "--frobnicate $TMP/m1" "--html" ""; do
	# shellcheck disable=SC2086
	"$CHECK" $args >/dev/null 2>"$TMP/e5"
	rc=$?
	if [ "$rc" -eq 2 ] && [ -s "$TMP/e5" ]; then ok; else bad "flags '$args': status $rc"; fi
done

# 6. A model that lacks an operation is an input error naming the line.
printf '# keel history v1\n1 del %sk - - 10 20 ok true\n' "'" >"$TMP/m6"
"$CHECK" --model register "$TMP/m6" >/dev/null 2>"$TMP/e6"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "m6:2: operation del is not in model register" "$TMP/e6"; then ok; else
	bad "model mismatch: status $rc, $(cat "$TMP/e6")"; fi

# 7. Unknown: 100,000 overlapping puts and reads on one key take far more
# than 1 ms to check, so a 1 ms limit gives status 3 and why=timeout.
awk 'BEGIN {
	print "# keel history v1"
	for (i = 0; i < 50000; i++) {
		t = 20 * i
		printf "%d put %ck %cv%d - %d %d ok -\n", i % 16, 39, 39, i, t, t + 35
		printf "%d get %ck - - %d %d ok %cv%d\n", 16 + i % 16, 39, t + 36, t + 50, 39, i
	}
}' >"$TMP/hard"
"$CHECK" --timeout-ms 1 "$TMP/hard" >"$TMP/u" 2>&1
rc=$?
if [ "$rc" -eq 3 ] && grep -q ' unknown ops=100000 .*why=timeout' "$TMP/u"; then ok; else
	bad "tiny timeout: status $rc, $(cat "$TMP/u")"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
