#!/usr/bin/env bash
# Usage: scripts/install-ort.sh
#
# Installs the ONNX Runtime shared library (CPU, linux/x86_64) used by the
# GoMLX "onnx" backend (github.com/gomlx/compute-onnx needs ORT >= 1.26) and
# by onnxruntime_go. It is taken from the npm package onnxruntime-node (MIT),
# which ships the upstream libonnxruntime.so.1; the package's install script
# is never run (`npm pack` only downloads the tarball).
#
# Cached outside the repo at
#   ${HEIMDALL_CACHE:-$HOME/.cache/heimdall}/onnxruntime/<version>/
# and reused when present. Prints the absolute path of libonnxruntime.so
# (a symlink to libonnxruntime.so.1) as the last line on stdout; progress
# goes to stderr. Use it as:
#   export ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/install-ort.sh)
set -euo pipefail

version=1.30.0
# sha256 of the registry tarball onnxruntime-node-1.30.0.tgz and of the library in it.
tgz_sha256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
lib_sha256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23

log() { echo "install-ort: $*" >&2; }

case "$(uname -s)/$(uname -m)" in
Linux/x86_64) ;;
*)
	log "only linux/x86_64 is supported (got $(uname -s)/$(uname -m))"
	exit 1
	;;
esac

cache=${HEIMDALL_CACHE:-$HOME/.cache/heimdall}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd) # absolute, so the printed path is too
dir="$cache/onnxruntime/$version"
lib="$dir/libonnxruntime.so"

if [ -f "$dir/.complete" ] && [ -f "$dir/libonnxruntime.so.1" ]; then
	log "reusing $dir"
	echo "$lib"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	log "npm is required (apt-get install npm, or any Node.js install)"
	exit 1
fi

mkdir -p "$cache/onnxruntime"
tmp=$(mktemp -d "$cache/onnxruntime/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "downloading onnxruntime-node@$version from the npm registry (~110 MB)"
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >&2)
tgz="$tmp/onnxruntime-node-$version.tgz"
echo "$tgz_sha256  $tgz" | sha256sum --check --status || {
	log "sha256 mismatch for $tgz"
	exit 1
}
mkdir -p "$tmp/out"
tar -xzf "$tgz" -C "$tmp/out" --strip-components=5 package/bin/napi-v6/linux/x64/libonnxruntime.so.1
echo "$lib_sha256  $tmp/out/libonnxruntime.so.1" | sha256sum --check --status || {
	log "sha256 mismatch for libonnxruntime.so.1"
	exit 1
}
ln -s libonnxruntime.so.1 "$tmp/out/libonnxruntime.so"
touch "$tmp/out/.complete"

rm -rf "$dir"
mv "$tmp/out" "$dir"
log "installed $dir"
echo "$lib"
