#!/bin/sh
# sim_bench.sh: keelsim speed under the `all` profile with client load, on
# one core: for 3 and 5 nodes, virtual seconds per wall second, events per
# second and seeds per minute (history checking included), and the peak RSS
# of one 10,000-operation seed. A benchmark: it prints numbers, asserts none.
set -eu
BIN=${1:-bin/keelsim}
SEEDS=${BENCH_SIM_SEEDS:-1:10}
OPS=${BENCH_SIM_OPS:-1000}
for nodes in 3 5; do
	start=$(date +%s%N)
	"$BIN" --seeds "$SEEDS" --nodes "$nodes" --profile all --ops "$OPS" --jobs 1 >/tmp/keelsim-bench.$$ || true
	end=$(date +%s%N)
	awk -v nodes="$nodes" -v wall_ns=$((end - start)) '
		/^seed=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
			   v += f["virtual_s"]; w += f["wall_ms"]; n++; if (f["result"] != "pass") bad++ }
		END { printf "bench-sim nodes=%d profile=all seeds=%d ops/seed=%s failed=%d virtual_s=%.1f run_wall_s=%.2f speedup=%.0fx seeds/min=%.1f\n",
			nodes, n, "'"$OPS"'", bad, v, w / 1000, v / (w / 1000), n / (wall_ns / 6e10) }' /tmp/keelsim-bench.$$
	rm -f /tmp/keelsim-bench.$$
	KEELSIM_STATS=1 "$BIN" --seed 1 --nodes "$nodes" --profile all --ops "$OPS" 2>&1 | grep -E '^stats' || true
	/usr/bin/time -f "bench-sim nodes=$nodes ops=10000 peak_rss_kb=%M wall_s=%e" \
		"$BIN" --seed 7 --nodes "$nodes" --profile all --ops 10000 2>&1 | grep -E 'bench-sim|^seed'
done
