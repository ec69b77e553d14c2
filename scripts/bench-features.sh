#!/usr/bin/env bash
# Usage: scripts/bench-features.sh [OUT.json]
#
# Feature extraction per core, ours vs the scipy reference, side by side:
# BenchmarkFeaturesSession (kernels/, one goroutine, GOMAXPROCS 1) and
# bench/peers/scipy/features.py (scipy.signal.stft + numpy, the same spec and
# session, BLAS on one thread), alternating for BENCH_FEATURES_ROUNDS rounds
# (default 3) of BENCH_FEATURES_SECONDS each (default 3). Prints (and writes
# to OUT.json) one JSON object: each round's sessions/s of both, wall clock
# and per CPU-second of each process, their ratios, the median ratios
# (ratio_median: per CPU-second, the per-core figure that holds when other
# work shares the machine), load average before/after. The scipy venv is
# scripts/pyvenv.sh golden scripts/requirements-golden.txt (cached). Called
# by scripts/bench-peers.sh (report section "Features").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-}
rounds=${BENCH_FEATURES_ROUNDS:-3}
secs=${BENCH_FEATURES_SECONDS:-3}
py="$(scripts/pyvenv.sh golden scripts/requirements-golden.txt)/bin/python"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/kernels.test" ./kernels
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load)
: >"$tmp/rounds"
for r in $(seq 1 "$rounds"); do
	ours=$(cd kernels && "$tmp/kernels.test" -test.run '^$' -test.bench '^BenchmarkFeaturesSession$' -test.cpu 1 -test.benchtime "${secs}s" |
		awk '/^BenchmarkFeaturesSession/ {w = c = 0; for (i = 1; i < NF; i++) { if ($(i+1) == "sessions/s") w = $i; if ($(i+1) == "sessions/cpu-s") c = $i }; print w, c}')
	scipy=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$py" bench/peers/scipy/features.py --seconds "$secs" --repeats 1)
	echo "$ours $scipy" >>"$tmp/rounds"
	echo "bench-features: round $r: ours $ours (sessions/s, sessions/cpu-s)" >&2
done
load_after=$(load)
"$py" - "$tmp/rounds" "$load_before" "$load_after" "${out:-/dev/stdout}" <<'PY'
import json, statistics, sys
rounds = []
for line in open(sys.argv[1]):
    ours, ours_cpu, js = line.split(" ", 2)
    s = json.loads(js)
    r = {"ours_sessions_per_s": float(ours), "scipy_sessions_per_s": s["sessions_per_s"],
         "ratio_wall": float(ours) / s["sessions_per_s"]}
    if float(ours_cpu) > 0:
        r.update(ours_sessions_per_cpu_s=float(ours_cpu), scipy_sessions_per_cpu_s=s["sessions_per_cpu_s"],
                 ratio_cpu=float(ours_cpu) / s["sessions_per_cpu_s"])
    rounds.append(r)
res = {
    "ours": "kernels BenchmarkFeaturesSession, -cpu 1 (GOMAXPROCS 1, one goroutine)",
    "scipy": "bench/peers/scipy/features.py: " + s["impl"] + f" (numpy {s['numpy']}, scipy {s['scipy']}, BLAS 1 thread)",
    "session": s["session"],
    "rounds": rounds,
    "ours_sessions_per_s": statistics.median(r["ours_sessions_per_s"] for r in rounds),
    "scipy_sessions_per_s": statistics.median(r["scipy_sessions_per_s"] for r in rounds),
    "ratio_wall_median": statistics.median(r["ratio_wall"] for r in rounds),
    # Per core: sessions per CPU-second of each process (wall clock when
    # CPU time was not measured).
    "ratio_median": statistics.median(r.get("ratio_cpu", r["ratio_wall"]) for r in rounds),
    "ratio_basis": "cpu time" if all("ratio_cpu" in r for r in rounds) else "wall clock",
    "load_before": sys.argv[2], "load_after": sys.argv[3],
}
with open(sys.argv[4], "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
PY
