#!/usr/bin/env bash
# Usage: scripts/install-pjrt-cpu.sh
#
# Installs the XLA CPU PJRT plugin used by the GoMLX "xla" backend
# (github.com/gomlx/go-xla, which needs cgo). go-xla's own auto-installer
# fetches it from GitHub releases; this script takes it from PyPI instead:
# the wheel lammps-jax-pjrt-cpu (Apache-2.0; XLA's CPU PJRT plugin built from
# the XLA of jaxlib 0.11.2, PJRT C API v0.115), downloaded with
# `pip download --no-deps` and verified by sha256. Only the .so (and the
# license files) are kept; nothing is installed into any Python environment.
#
# Cached outside the repo at
#   ${HEIMDALL_CACHE:-$HOME/.cache/heimdall}/pjrt-cpu/<version>/
# and reused when present. The plugin is named pjrt_c_api_cpu_plugin.so, so
# the directory also works as PJRT_PLUGIN_LIBRARY_PATH (plugin name "cpu").
# Prints the absolute path of the plugin as the last line on stdout;
# progress goes to stderr. Use it as:
#   export GOMLX_BACKEND=xla:$(scripts/install-pjrt-cpu.sh) GOMLX_NO_AUTO_INSTALL=1
set -euo pipefail

package=lammps-jax-pjrt-cpu
version=0.11.2
wheel=lammps_jax_pjrt_cpu-0.11.2-py3-none-manylinux_2_27_x86_64.whl
wheel_sha256=1319390d948b39f69f7dade496b7c385149d9ca6097a6b62114da113216d9ad1
member=lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so

log() { echo "install-pjrt-cpu: $*" >&2; }

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
dir="$cache/pjrt-cpu/$version"
plugin="$dir/pjrt_c_api_cpu_plugin.so"

if [ -f "$dir/.complete" ] && [ -f "$plugin" ]; then
	log "reusing $dir"
	echo "$plugin"
	exit 0
fi

python=${PYTHON:-python3}
if ! "$python" -m pip --version >/dev/null 2>&1; then
	log "$python with pip is required"
	exit 1
fi

mkdir -p "$cache/pjrt-cpu"
tmp=$(mktemp -d "$cache/pjrt-cpu/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "downloading $package==$version from PyPI (~63 MB wheel, ~200 MB plugin)"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps \
	--only-binary=:all: --platform manylinux_2_27_x86_64 \
	-d "$tmp" "$package==$version" >&2
echo "$wheel_sha256  $tmp/$wheel" | sha256sum --check --status || {
	log "sha256 mismatch for $wheel"
	exit 1
}

mkdir -p "$tmp/out"
"$python" - "$tmp/$wheel" "$tmp/out" "$member" <<'PY'
import shutil, sys, zipfile
wheel, out, member = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    with z.open(member) as src, open(out + "/pjrt_c_api_cpu_plugin.so", "wb") as dst:
        shutil.copyfileobj(src, dst)
    for name in z.namelist():
        if "/licenses/" in name:
            with z.open(name) as src, open(out + "/" + name.rsplit("/", 1)[1], "wb") as dst:
                shutil.copyfileobj(src, dst)
PY
chmod 0755 "$tmp/out/pjrt_c_api_cpu_plugin.so"
echo "$package==$version $wheel sha256:$wheel_sha256" >"$tmp/out/SOURCE"
touch "$tmp/out/.complete"

rm -rf "$dir"
mv "$tmp/out" "$dir"
log "installed $dir"
echo "$plugin"
