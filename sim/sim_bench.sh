#!/bin/sh
# sim_bench.sh: keelsim speed under the `all` profile with client load, one
# seed at a time (one core): for 3 and 5 nodes, virtual seconds per wall
# second, events per second and seeds per minute (history checking
# included), and the peak RSS of one 10,000-operation seed. A benchmark: it
# prints numbers, asserts none. Wall time on a busy machine understates the
# speed; the cpu_s figure is the processes' own CPU time.
set -eu
BIN=${1:-bin/keelsim}
SEEDS=${BENCH_SIM_SEEDS:-1:20}
OPS=${BENCH_SIM_OPS:-1000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for nodes in 3 5; do
	start=$(date +%s%N)
	KEELSIM_STATS=1 /usr/bin/time -f "cpu_s=%U+%S" -o "$out.time" \
		"$BIN" --seeds "$SEEDS" --nodes "$nodes" --profile all --ops "$OPS" --jobs 1 >"$out" || true
	end=$(date +%s%N)
	cpu=$(sed -n 's/^cpu_s=\([0-9.]*\)+\([0-9.]*\)/\1 \2/p' "$out.time" | awk '{ print $1 + $2 }')
	awk -v nodes="$nodes" -v ops="$OPS" -v wall_ns=$((end - start)) -v cpu="$cpu" '
		/^seed=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
			   v += f["virtual_s"]; w += f["wall_ms"]; n++; if (f["result"] != "pass") bad++ }
		/^stats/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); g[kv[1]] = kv[2] }; ev += g["events"] }
		END { printf "bench-sim nodes=%d profile=all seeds=%d ops/seed=%d failed=%d virtual_s=%.1f wall_s=%.2f cpu_s=%.2f virtual_per_wall=%.0fx virtual_per_cpu=%.0fx events/s=%.0f (per cpu s %.0f) seeds/min=%.1f\n",
			nodes, n, ops, bad, v, w / 1000, cpu, v / (w / 1000), v / cpu, ev / (w / 1000), ev / cpu, n / (wall_ns / 6e10) }' "$out"
	rm -f "$out.time"
	/usr/bin/time -f "bench-sim nodes=$nodes ops=10000 peak_rss_mib=%M wall_s=%e cpu_s=%U" \
		"$BIN" --seed 7 --nodes "$nodes" --profile all --ops 10000 2>&1 |
		awk '/peak_rss_mib/ { for (i = 1; i <= NF; i++) if ($i ~ /^peak_rss_mib=/) { split($i, kv, "="); $i = sprintf("peak_rss_mib=%.1f", kv[2] / 1024) } } { print }'
done
