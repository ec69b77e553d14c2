#!/usr/bin/env bash
# Usage: scripts/install-pjrt-cuda.sh [--dry-run]
#
# Installs XLA's CUDA 13 PJRT plugin for the GoMLX "xla" backend (xla:cuda)
# the way go-xla's own installer does (go-xla v0.4.1 installer/cuda.go,
# CudaInstall("cuda13")), but with pinned versions and pip instead of Go:
#   - jax-cuda13-pjrt==$version: only jax_plugins/xla_cuda13/xla_cuda_plugin.so
#     is kept, renamed nvidia/pjrt_c_api_cuda_plugin.so;
#   - the NVIDIA wheels that jax-cuda13-plugin lists under its "with-cuda"
#     extra (every nvidia-* requirement), pinned to the CUDA 13.0 minimums it
#     names; their nvidia/ trees are merged into nvidia/ beside the plugin,
#     which is where the plugin's RPATH ($ORIGIN/../nvidia/...) looks;
#   - nvidia/bin/ptxas -> cu13/bin/ptxas, as go-xla does.
# Nothing is installed into any Python environment. Needs pip and network
# access to PyPI (~3 GB of NVIDIA wheels; cuDNN and cuBLAS are the big ones).
#
# Cache: ${HEIMDALL_CACHE:-$HOME/.cache/heimdall}/pjrt-cuda/<version>/ , reused
# when complete; trainer.FindCUDAPlugin looks there (after $PJRT_PLUGIN_LIBRARY_PATH
# and JAX's site-packages plugin). Prints the plugin path as the last stdout
# line:  export GOMLX_BACKEND=xla:$(scripts/install-pjrt-cuda.sh)
#
# --dry-run prints the pinned wheels and the target directory, downloads nothing.
set -euo pipefail

version=0.12.0.1 # jax-cuda13-pjrt (trainer.PJRTCUDAVersion)
# nvidia-* requirements of jax-cuda13-plugin[with-cuda] (0.10.2, the newest
# jax-cuda13-plugin on PyPI here), pinned to the minimum each names (CUDA 13.0).
nvidia_wheels=(
	nvidia-cublas==13.0.0.19
	nvidia-cuda-cupti==13.0.48
	nvidia-cuda-nvcc==13.0.48
	nvidia-cuda-runtime==13.0.48
	nvidia-cudnn-cu13==9.12.0.46
	nvidia-cufft==12.0.0.15
	nvidia-cusolver==12.0.3.29
	nvidia-cusparse==12.6.2.49
	nvidia-nccl-cu13==2.27.7
	nvidia-nvjitlink==13.0.39
	nvidia-cuda-nvrtc==13.0.48
	nvidia-nvshmem-cu13==3.3.20
	nvidia-nvvm==13.0.48
)
platforms=(manylinux_2_27_x86_64 manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64)

log() { echo "install-pjrt-cuda: $*" >&2; }

dry=0
case "${1:-}" in
--dry-run) dry=1 ;;
"") ;;
*)
	echo "usage: $0 [--dry-run]" >&2
	exit 2
	;;
esac

cache=${HEIMDALL_CACHE:-$HOME/.cache/heimdall}
dir="$cache/pjrt-cuda/$version"
plugin="$dir/nvidia/pjrt_c_api_cuda_plugin.so"

if [ "$dry" = 1 ]; then
	echo "target: $plugin"
	echo "jax-cuda13-pjrt==$version"
	printf '%s\n' "${nvidia_wheels[@]}"
	exit 0
fi

case "$(uname -s)/$(uname -m)" in
Linux/x86_64) ;;
*)
	log "only linux/x86_64 is supported (got $(uname -s)/$(uname -m))"
	exit 1
	;;
esac
if [ -f "$dir/.complete" ] && [ -f "$plugin" ]; then
	log "reusing $dir"
	echo "$plugin"
	exit 0
fi
python=${PYTHON:-python3}
"$python" -m pip --version >/dev/null 2>&1 || {
	log "$python with pip is required"
	exit 1
}
mkdir -p "$cache/pjrt-cuda"
cache=$(cd "$cache" && pwd)
dir="$cache/pjrt-cuda/$version"
plugin="$dir/nvidia/pjrt_c_api_cuda_plugin.so"
tmp=$(mktemp -d "$cache/pjrt-cuda/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

plat=()
for p in "${platforms[@]}"; do plat+=(--platform "$p"); done
log "downloading jax-cuda13-pjrt==$version and ${#nvidia_wheels[@]} NVIDIA wheels from PyPI"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
	"${plat[@]}" --python-version 3.12 --implementation cp -d "$tmp/wheels" \
	"jax-cuda13-pjrt==$version" "${nvidia_wheels[@]}" >&2

mkdir -p "$tmp/out/nvidia"
"$python" - "$tmp/wheels" "$tmp/out/nvidia" <<'PY'
import glob, os, shutil, sys, zipfile
wheels, out = sys.argv[1:]
for w in sorted(glob.glob(os.path.join(wheels, "*.whl"))):
    with zipfile.ZipFile(w) as z:
        for info in z.infolist():
            name = info.filename
            if name.endswith("xla_cuda_plugin.so"):
                dst = os.path.join(out, "pjrt_c_api_cuda_plugin.so")
            elif name.startswith("nvidia/") and not name.endswith("/"):
                dst = os.path.join(out, name[len("nvidia/"):])
            else:
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with z.open(info) as src, open(dst, "wb") as f:
                shutil.copyfileobj(src, f)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(dst, mode or 0o644)
PY
[ -f "$tmp/out/nvidia/pjrt_c_api_cuda_plugin.so" ] || {
	log "xla_cuda_plugin.so not found in jax-cuda13-pjrt==$version"
	exit 1
}
chmod 0755 "$tmp/out/nvidia/pjrt_c_api_cuda_plugin.so"
mkdir -p "$tmp/out/nvidia/bin"
[ -e "$tmp/out/nvidia/cu13/bin/ptxas" ] && ln -sf ../cu13/bin/ptxas "$tmp/out/nvidia/bin/ptxas"
touch "$tmp/out/.complete"
rm -rf "$dir"
mv "$tmp/out" "$dir"
log "installed $plugin"
echo "$plugin"
