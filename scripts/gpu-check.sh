#!/usr/bin/env bash
# Usage:
#   scripts/gpu-check.sh build              (here: build .device/heimdall, report its size)
#   scripts/gpu-check.sh run [--cpu-dry-run] [device-check flags...]
#                                           (on the GPU machine: write $OUT/gpu-check.json)
#
# The device check of docs/GPU.md. `build` runs on a machine with Go (cgo on)
# and writes .device/ (git-ignored; carried to the GPU machine, < 64 MiB):
# the heimdall binary, stripped, linked against glibc only (go-xla loads PJRT
# plugins with dlopen). `run` needs no Go and no network: it takes the CUDA
# PJRT plugin from the JAX installed there (python3's jax_plugins.xla_cuda13,
# or xla_cuda12), puts its site-packages/nvidia/*/lib on LD_LIBRARY_PATH, and
# runs `heimdall device-check` (base preset, 30 steps at batch 32, latency at
# batch 1 and 32, CPU parity on the pure-Go backend) with per-stage timeouts
# inside an overall limit of ${GPU_CHECK_LIMIT:-390} s. The JSON report is
# rewritten after each stage, so a killed run still leaves one.
#
# After it, the PyTorch peer (.device/pytorch/peers.py device-check, copied by
# `build`) loads the checkpoint that run trained into the same LocalizationNet
# on CUDA: parity vs the same weights in PyTorch on the CPU, AdamW training
# samples/s at the same batch, eager inference p50 at batch 1 and 32. Its
# JSON goes into the report as "pytorch_cuda" ("pytorch_cpu_dry_run" with
# --cpu-dry-run), under its own ${GPU_CHECK_TORCH_LIMIT:-75} s timeout; when
# it cannot run, the section holds the reason. PYTHON overrides python3.
#
# --cpu-dry-run runs the same script logic here, without a GPU: the XLA CPU
# plugin (scripts/install-pjrt-cpu.sh's cache, else the pure-Go backend), the
# cpu preset on a small input, report in ${OUT:-.device/out}/gpu-check.json.
#
# Device tool: command "bash scripts/gpu-check.sh run", carry [".device"].
set -uo pipefail

cd "$(dirname "$0")/.."
dev=.device
bin=$dev/heimdall
log() { echo "gpu-check: $*" >&2; }

build() {
	mkdir -p "$dev"
	log "building $bin (cgo, stripped)"
	CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o "$bin" ./cmd/heimdall || exit 1
	mkdir -p "$dev/pytorch"
	cp bench/peers/pytorch/model.py bench/peers/pytorch/peers.py "$dev/pytorch/"
	size=$(stat -c %s "$bin")
	total=$(du -sb "$dev" | cut -f1)
	log "$bin: $((size / 1024 / 1024)) MiB ($size bytes); $dev total $((total / 1024 / 1024)) MiB"
	log "dynamic libraries:"
	ldd "$bin" >&2 || true
	if [ "$total" -gt $((50 * 1024 * 1024)) ]; then
		log "$dev is over 50 MiB: too big to carry with the working tree (64 MiB limit)"
		exit 1
	fi
	echo "$bin"
}

# find_jax_plugin prints the directory of python3's jax_plugins.xla_cuda13 (or 12).
find_jax_plugin() {
	local py=${PYTHON:-python3}
	"$py" - <<'PY' 2>/dev/null
import importlib.util
for name in ("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"):
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    if spec and spec.submodule_search_locations:
        print(list(spec.submodule_search_locations)[0])
        break
PY
}

# fallback_report writes a minimal JSON report when the binary left none.
fallback_report() {
	local out=$1 rc=$2 note=$3
	[ -s "$out" ] && return 0
	cat >"$out" <<JSON
{"complete": false, "exit_code": $rc, "error": "$note", "stages": {}}
JSON
}

# pytorch_peer runs peers.py device-check on the run the check trained and
# merges its JSON (or the reason it did not run) into the report.
pytorch_peer() {
	local dry=$1 work=$2 report=$3 logf=$4
	local py=${PYTHON:-python3} key=pytorch_cuda device=cuda tl=${GPU_CHECK_TORCH_LIMIT:-75}
	[ "$dry" = 1 ] && key=pytorch_cpu_dry_run device=cpu
	local res="$work/pytorch-peer.json" err="$work/pytorch-peer.err" run_dir batch
	rm -f "$res" "$err"
	run_dir=$(ls -d "$work"/run-* 2>/dev/null | tail -1)
	batch=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["train"]["batch"])' "$report" 2>/dev/null)
	echo "== pytorch peer ($key, limit ${tl}s) run ${run_dir:-none} batch ${batch:-?}" >>"$logf"
	if ! "$py" -c 'import torch' 2>/dev/null; then
		echo "{\"skipped\": \"no torch in $py\"}" >"$res"
	elif [ "$device" = cuda ] && ! "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
		echo "{\"skipped\": \"torch.cuda.is_available() is false\"}" >"$res"
	elif [ -z "$run_dir" ] || [ -z "$batch" ] || [ ! -f "$dev/pytorch/peers.py" ]; then
		echo "{\"skipped\": \"no trained run, train batch or $dev/pytorch/peers.py\"}" >"$res"
	else
		local t0=$SECONDS rc
		timeout --kill-after=5 "$tl" "$py" "$dev/pytorch/peers.py" device-check --run "$run_dir" --device "$device" \
			--batch "$batch" --steps 30 --batches 1,32 --iterations 50 --threads "$(nproc)" \
			--max-time $((tl * 2 / 3)) >"$res.tmp" 2>"$err"
		rc=$?
		echo "== pytorch peer exit $rc after $((SECONDS - t0)) s" >>"$logf"
		tail -n 5 "$err" >>"$logf"
		if [ $rc = 0 ] && [ -s "$res.tmp" ]; then
			mv "$res.tmp" "$res"
		else
			"$py" -c 'import json,sys; print(json.dumps({"error": "exit %s" % sys.argv[1], "stderr_tail": open(sys.argv[2]).read()[-800:]}))' \
				"$rc" "$err" >"$res" 2>/dev/null || echo "{\"error\": \"exit $rc\"}" >"$res"
		fi
	fi
	"$py" - "$report" "$key" "$res" <<'PY' 2>>"$logf" || echo "pytorch peer: could not merge $res into $report" >>"$logf"
import json, sys
rep, key, res = sys.argv[1:]
r = json.load(open(rep))
try:
    r[key] = json.load(open(res))
except Exception as e:
    r[key] = {"error": "unreadable peers.py output: %s" % e}
tmp = rep + ".tmp"
json.dump(r, open(tmp, "w"), indent=2)
import os; os.replace(tmp, rep)
PY
}

run() {
	local dry=0 args=()
	for a in "$@"; do
		case "$a" in
		--cpu-dry-run) dry=1 ;;
		*) args+=("$a") ;;
		esac
	done
	local out_dir=${OUT:-$dev/out}
	mkdir -p "$out_dir"
	local report="$out_dir/gpu-check.json" logf="$out_dir/gpu-check.log"
	local limit=${GPU_CHECK_LIMIT:-390}
	export GOMLX_NO_AUTO_INSTALL=1
	if [ ! -x "$bin" ]; then
		log "$bin missing: run 'scripts/gpu-check.sh build' first (and carry .device)"
		fallback_report "$report" 1 "$bin missing"
		exit 1
	fi
	{
		echo "== $(date -u +%FT%TZ) gpu-check run (dry=$dry) on $(hostname)"
		uname -a
		nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version --format=csv 2>&1 || echo "nvidia-smi: not available"
	} >"$logf" 2>&1
	local work="${TMPDIR:-/tmp}/heimdall-gpu-check"
	local flags=(--out "$report" --work "$work")
	if [ "$dry" = 1 ]; then
		local cpu
		cpu=$(ls "${HEIMDALL_CACHE:-$HOME/.cache/heimdall}"/pjrt-cpu/*/pjrt_c_api_cpu_plugin.so 2>/dev/null | tail -1)
		[ -n "$cpu" ] && export PJRT_PLUGIN_LIBRARY_PATH=$(dirname "$cpu")
		flags+=(--cpu-dry-run --stage-timeout devices=30s,train=90s,latency=30s,parity=60s)
	else
		local plugdir sp
		plugdir=$(find_jax_plugin)
		if [ -n "$plugdir" ] && [ -f "$plugdir/xla_cuda_plugin.so" ]; then
			sp=$(dirname "$(dirname "$plugdir")")
			export PJRT_PLUGIN_LIBRARY_PATH="$plugdir/xla_cuda_plugin.so"
			local libs
			libs=$(ls -d "$sp"/nvidia/*/lib 2>/dev/null | tr '\n' ':')
			export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}"
			echo "plugin: $PJRT_PLUGIN_LIBRARY_PATH" >>"$logf"
			echo "nvidia libs: $libs" >>"$logf"
		else
			echo "no jax_plugins.xla_cuda13/12 in python3 ($(command -v python3)); heimdall searches itself" >>"$logf"
		fi
		flags+=(--backend xla:cuda --preset base --steps 30 --batch 32 --latency-batch 1,32 --latency-runs 50
			--parity-samples 2 --cpu-backend go
			--stage-timeout devices=45s,train=180s,latency=45s,parity=90s,parity_tf32_off=30s)
	fi
	log "running $bin device-check (limit ${limit}s), log $logf"
	local t0=$SECONDS rc
	timeout --kill-after=10 "$limit" "$bin" device-check "${flags[@]}" "${args[@]}" >>"$logf" 2>&1
	rc=$?
	echo "== exit $rc after $((SECONDS - t0)) s" >>"$logf"
	case $rc in
	124 | 137) fallback_report "$report" $rc "killed after ${limit}s" ;;
	*) fallback_report "$report" $rc "device-check exited $rc without a report" ;;
	esac
	pytorch_peer "$dry" "$work" "$report" "$logf"
	tail -n 25 "$logf" >&2
	echo "$report"
	cat "$report"
	return $rc
}

case "${1:-}" in
build) build ;;
run)
	shift
	run "$@"
	;;
*)
	echo "usage: $0 build | run [--cpu-dry-run] [device-check flags]" >&2
	exit 2
	;;
esac
