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
# inside an overall limit of ${GPU_CHECK_LIMIT:-450} s. The JSON report is
# rewritten after each stage, so a killed run still leaves one.
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
	local limit=${GPU_CHECK_LIMIT:-450}
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
	local flags=(--out "$report" --work "${TMPDIR:-/tmp}/heimdall-gpu-check")
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
			--stage-timeout devices=60s,train=210s,latency=60s,parity=120s,parity_tf32_off=30s)
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
