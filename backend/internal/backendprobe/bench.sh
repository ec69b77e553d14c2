#!/usr/bin/env bash
# Usage: backend/internal/backendprobe/bench.sh [ROUNDS] [BACKEND...]
#
# Side-by-side comparison of the GoMLX CPU backends on the probe network (see
# docs/BACKENDS.md): installs the XLA CPU PJRT plugin and ONNX Runtime with the
# scripts/ installers (cached), builds backendprobe with -tags onnx, and runs
# each backend ROUNDS times (default 2, interleaved) under /usr/bin/time -v in
# separate processes. Prints one RESULT line per run with the peak RSS added.
# BACKEND defaults to "xla:cpu onnx:cpu"; "go" (pure Go) takes minutes per
# training step at batch 32, so for it only inference is measured.
set -euo pipefail
cd "$(dirname "$0")/../../.."

rounds=${1:-2}
shift || true
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(xla:cpu onnx:cpu)

plugin=$(scripts/install-pjrt-cpu.sh)
ort=$(scripts/install-ort.sh)
export GOMLX_NO_AUTO_INSTALL=1 ONNXRUNTIME_SHARED_LIBRARY_PATH="$ort"

bin=$(mktemp -d)/backendprobe
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -tags onnx -o "$bin" ./backend/internal/backendprobe

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
	for b in "${backends[@]}"; do
		config=$b
		args=()
		case $b in
		xla:cpu) config="xla:$plugin" ;;
		go) args=(-notrain -infer 5) ;;
		esac
		out=$(/usr/bin/time -v "$bin" -backend "$config" "${args[@]}" 2>&1) || {
			echo "$out" >&2
			echo "RESULT backend=$b FAILED"
			continue
		}
		rss=$(echo "$out" | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}')
		echo "$(echo "$out" | grep '^RESULT' | sed "s|backend=[^ ]*|backend=$b|") peak_rss_mb=$((rss / 1024)) round=$round load=$(cut -d' ' -f1 /proc/loadavg)"
	done
done
