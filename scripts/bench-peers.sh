#!/usr/bin/env bash
# Usage: scripts/bench-peers.sh [RUN_DIR]        (make bench-peers [RUN_DIR=...])
#
# The framework comparison of issue 8 (bench/peers/): our LocalizationNet
# (GoMLX, XLA CPU) vs the same network in PyTorch on this machine, one
# process tree, one report:
#   1. installs what it needs: XLA CPU plugin + ONNX Runtime (cached), the
#      Python side (scripts/pyvenv.sh peers bench/peers/requirements.txt:
#      PyTorch, onnxruntime, onnx in a venv cached outside the repo; the
#      features comparison installs the scipy venv of
#      scripts/requirements-golden.txt the same way);
#   2. RUN_DIR, or (default) trains runs/bench-peers-quick from
#      bench/peers/quick.yaml (the default `cpu` preset on a small simulated
#      set) when it does not exist yet;
#   3. dumps the shared tensors (a training batch of our cached features,
#      parity inputs, our native outputs) as .npy;
#   4. parity, peak FLOP/s, training throughput (PyTorch eager, ours on XLA
#      CPU, ours on pure Go for 2 steps), the step profile (forward only,
#      backbone cut after each stage), inference latency (`heimdall bench`
#      and PyTorch eager / PyTorch's ONNX export in ONNX Runtime), then
#      ONNX batch 1 side by side (`peerbench onnx` from Go and `peers.py onnx`
#      from Python, each timing our export and PyTorch's interleaved, the two
#      processes alternating BENCH_PEERS_ONNX_ROUNDS times, default 5: at 0.25 ms a call the p50 of one round moves by 5-30% with other work on a 2-core machine) and
#      the features per core, ours vs scipy (scripts/bench-features.sh;
#      BENCH_PEERS_FEATURES=0 skips it);
#   5. writes OUT/report.md + OUT/report.json and prints the Markdown.
#
# Environment: BENCH_PEERS_OUT (default runs/bench-peers-report),
# BENCH_PEERS_STEPS (timed training steps, default 20), BENCH_PEERS_GO=0 to
# skip the pure-Go backend (2 steps, ~15 s each), BENCH_PEERS_PROFILE=0 to
# skip the sub-graph profile, BENCH_PEERS_THREADS (default: nproc),
# OMP_WAIT_POLICY (default PASSIVE, see below).
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=${1:-}
arg_run=${1:-}
out=${BENCH_PEERS_OUT:-runs/bench-peers-report}
steps=${BENCH_PEERS_STEPS:-20}
threads=${BENCH_PEERS_THREADS:-$(nproc)}
export GOMLX_NO_AUTO_INSTALL=1
# PyTorch's OpenMP threads busy-wait at every barrier by default; on a machine
# shared with other work a descheduled thread then stalls each op (measured
# here: batch-1 inference 300 ms instead of 3 ms at 2 threads). Passive
# waiting makes the 2-thread figures meaningful; override to compare.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
log() { echo "bench-peers: $*" >&2; }

log "installing: XLA CPU plugin, ONNX Runtime, Python venv (cached)"
scripts/install-pjrt-cpu.sh >/dev/null
scripts/install-ort.sh >/dev/null
venv=$(scripts/pyvenv.sh peers bench/peers/requirements.txt)
py="$venv/bin/python"
go build -o bin/heimdall ./cmd/heimdall
go build -o bin/peerbench ./bench/peers/peerbench

if [ -z "$run_dir" ]; then
	run_dir=runs/bench-peers-quick
	if [ ! -f "$run_dir/checkpoints/index.json" ] || [ ! -f "$run_dir/model.onnx" ]; then
		rm -rf "$run_dir"
		log "training the quick run $run_dir (bench/peers/quick.yaml)"
		bin/heimdall train --config bench/peers/quick.yaml --simulate >&2
	else
		# Re-export with this checkout's exporter (the run may predate it).
		bin/heimdall export --no-validation "$run_dir" >/dev/null 2>&1
	fi
fi
[ -f "$run_dir/config.json" ] || { log "not a run directory: $run_dir"; exit 2; }

rm -rf "$out"
mkdir -p "$out/tensors"
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load)
log "dumping tensors from $run_dir"
bin/peerbench dump -run "$run_dir" -out "$out/tensors" 2>/dev/null

P="bench/peers/pytorch/peers.py"
common=(--run "$run_dir" --dump "$out/tensors" --threads "$threads")
log "parity"
"$py" "$P" parity "${common[@]}" >"$out/parity.json"
"$py" "$P" flops "${common[@]}" >"$out/flops.json"
log "peak FLOP/s"
OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads "$py" "$P" peak --threads "$threads" >"$out/peak.json"

gotrain() { # name, extra flags
	local name=$1
	shift
	log "training step: ours $name"
	bin/peerbench train -run "$run_dir" -x "$out/tensors/train_x.npy" -y "$out/tensors/train_y.npy" "$@" >"$out/train-$name.json"
}
pytrain() {
	local name=$1
	shift
	log "training step: $name"
	"$py" "$P" train "${common[@]}" "$@" 2>/dev/null >"$out/train-$name.json"
}
# Side by side, alternating.
pytrain pytorch --steps "$steps"
gotrain xla -steps "$steps"
if [ "${BENCH_PEERS_PROFILE:-1}" != 0 ]; then
	pytrain pytorch-eval --mode eval --steps "$steps"
	gotrain xla-eval -mode eval -steps "$steps"
	nstages=$("$py" -c "import json,sys; sys.path.insert(0,'bench/peers/pytorch'); import model; print(len(model.backbone(json.load(open('$out/tensors/meta.json'))['run_config']['model'])[0]))")
	for k in $(seq 1 $((nstages - 1))); do
		pytrain "pytorch-stages$k" --stages "$k" --steps "$steps"
		w=$("$py" -c "import json,sys; sys.path.insert(0,'bench/peers/pytorch'); import model; c=model.truncated(json.load(open('$out/tensors/meta.json'))['run_config']['model'],$k); w,d,_=model.backbone(c); print(','.join(map(str,w)), ','.join(map(str,d)))")
		gotrain "xla-stages$k" -steps "$steps" -widths "${w% *}" -depths "${w#* }"
	done
fi
if [ "${BENCH_PEERS_GO:-1}" != 0 ]; then
	gotrain go -backend go -steps 2 -warmup 1
fi

log "inference: heimdall bench (native vs ONNX Runtime from Go)"
bin/heimdall bench "$run_dir" --batch 1,32 --no-validation --json "$out/heimdall-bench.json" --markdown "$out/heimdall-bench.md" >"$out/heimdall-bench.txt" 2>"$out/heimdall-bench.log"
log "inference: PyTorch eager and PyTorch's ONNX export in ONNX Runtime"
"$py" "$P" infer "${common[@]}" --onnx-out "$out/pytorch-export.onnx" 2>/dev/null >"$out/pytorch-infer.json"

onnx_rounds=${BENCH_PEERS_ONNX_ROUNDS:-5}
log "ONNX batch 1 side by side: both exports from Go and from Python, alternating ($onnx_rounds rounds)"
files="$run_dir/model.onnx,$out/pytorch-export.onnx"
for r in $(seq 1 "$onnx_rounds"); do
	bin/peerbench onnx -files "$files" -batch 1 -rounds 10 -per 20 >"$out/onnx-b1-go-$r.json"
	"$py" "$P" onnx --files "$files" --batch 1 --rounds 10 --per 20 2>/dev/null >"$out/onnx-b1-py-$r.json"
done
if [ "${BENCH_PEERS_FEATURES:-1}" != 0 ]; then
	log "features: ours (kernels, 1 core) vs scipy (1 core), alternating"
	scripts/bench-features.sh "$out/features.json" >/dev/null
fi

load_after=$(load)
shared=false
# More runnable work than cores before or after: somebody else was using the machine.
if awk -v a="${load_before%% *}" -v b="${load_after%% *}" -v n="$(nproc)" 'BEGIN{exit !(a>n || b>n)}'; then shared=true; fi
"$py" - "$out/env.json" <<EOF
import json, sys, subprocess, datetime
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
meta = json.load(open("$out/tensors/meta.json"))
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "command": "make bench-peers" + (" RUN_DIR=$arg_run" if "$arg_run" else ""),
    "cpu": cpu, "cores": $(nproc), "threads": $threads,
    "load_before": "$load_before", "load_after": "$load_after", "shared": "$shared" == "true",
    "run_dir": "$run_dir", "input_shape": meta["run_config"]["input_shape"],
    "go": subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True).stdout.strip(),
    "ort": json.load(open("$out/heimdall-bench.json"))["machine"].get("onnxruntime_version", "?"),
    "steps": $steps, "omp_wait_policy": "$OMP_WAIT_POLICY",
}, open(sys.argv[1], "w"), indent=1)
EOF
"$py" bench/peers/pytorch/report.py "$out"
log "wrote $out/report.md and $out/report.json"
