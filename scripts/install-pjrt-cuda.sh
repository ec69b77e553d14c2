#!/usr/bin/env bash
# Usage: scripts/install-pjrt-cuda.sh [--dry-run | --check-pins | --check | --need]
#
# Installs XLA's CUDA 13 PJRT plugin for the GoMLX "xla" backend (xla:cuda)
# the way go-xla's own installer does (go-xla v0.4.1 installer/cuda.go,
# CudaInstall("cuda13")), but with pinned versions:
#   - jax-cuda13-pjrt==$version: only jax_plugins/xla_cuda13/xla_cuda_plugin.so
#     is kept, renamed nvidia/pjrt_c_api_cuda_plugin.so;
#   - the NVIDIA wheels that jax-cuda13-plugin lists under its "with-cuda"
#     extra (every nvidia-* requirement), pinned to the CUDA 13.0 minimums it
#     names; their nvidia/ trees are merged into nvidia/ beside the plugin,
#     which is where the plugin's RPATH ($ORIGIN/../nvidia/...) looks;
#   - nvidia/bin/ptxas -> cu13/bin/ptxas, as go-xla does.
# Nothing is installed into any Python environment, and pip is not used:
# each pin is resolved on the package index's per-project "simple" page
# (PEP 503, ~16 KB; $PIP_INDEX_URL, else pip's index: PyPI unless configured
# otherwise) to the one wheel file of that
# version for Linux x86-64 (platform tag manylinux*_x86_64 or any; whatever
# the tag, so no hand-kept tag list can rot), downloaded from the URL the
# page gives and verified against the sha256 the page gives. ~3 GB of NVIDIA
# wheels (cuDNN and cuBLAS are the big ones); needs python3 (pip only to
# name the default index) and network access to the index.
#
# Cache: ${HEIMDALL_CACHE:-$HOME/.cache/heimdall}/pjrt-cuda/<version>/ , reused
# when complete; backend.FindCUDAPlugin looks there (after $PJRT_PLUGIN_LIBRARY_PATH
# and JAX's site-packages plugin). Prints the plugin path as the last stdout
# line:  export GOMLX_BACKEND=xla:$(scripts/install-pjrt-cuda.sh)
#
# --dry-run     prints the pinned wheels and the target directory; no network.
# --check-pins  resolves every pin on the index (simple pages only, nothing
#               downloaded) and prints the wheel file each resolves to; exits 1
#               naming every pin that does not resolve. `make test` runs it.
# --check       proves the installed plugin loads: ldd finds every library it
#               needs, and `heimdall devices` on it either lists the GPUs or,
#               on a machine without one, answers PJRT's "no visible GPU"
#               (exit 0 in both cases; exit 1 for anything else).
# --need        exits 0 when this machine has an NVIDIA GPU and heimdall finds
#               no CUDA PJRT plugin (so the install is needed), 1 otherwise;
#               `make train-gpu` uses it so a CPU machine downloads nothing.
set -euo pipefail

cd "$(dirname "$0")/.."

version=0.12.0.1 # jax-cuda13-pjrt (backend.PJRTCUDAVersion)
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
pins=("jax-cuda13-pjrt==$version" "${nvidia_wheels[@]}")
python=${PYTHON:-python3}
# The package index: $PIP_INDEX_URL, else pip's configured index-url, else pip's default.
index=${PIP_INDEX_URL:-$("$python" -m pip config get global.index-url 2>/dev/null || true)}
[ -n "$index" ] || index=$("$python" -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url)' 2>/dev/null || true)

log() { echo "install-pjrt-cuda: $*" >&2; }

mode=install
case "${1:-}" in
--dry-run) mode=dry ;;
--check-pins) mode=pins ;;
--check) mode=check ;;
--need) mode=need ;;
"") ;;
*)
	echo "usage: $0 [--dry-run | --check-pins | --check | --need]" >&2
	exit 2
	;;
esac

cache=${HEIMDALL_CACHE:-$HOME/.cache/heimdall}
dir="$cache/pjrt-cuda/$version"
plugin="$dir/nvidia/pjrt_c_api_cuda_plugin.so"
bin=${HEIMDALL_BIN:-bin/heimdall}

need_index() {
	[ -n "$index" ] || {
		log "no package index: set PIP_INDEX_URL (or install pip for python3, whose default index is used)"
		exit 1
	}
}

# wheels MODE DEST PIN...: resolve (MODE=resolve: print "pin -> file") or
# download and verify (MODE=download, into DEST) the Linux x86-64 wheel of each pin.
wheels() {
	"$python" - "$index" "$@" <<'PY'
import hashlib, html.parser, os, re, sys, time, urllib.parse, urllib.request

index, mode, dest, pins = sys.argv[1].rstrip("/") + "/", sys.argv[2], sys.argv[3], sys.argv[4:]

class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self._href = [], None
    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")
    def handle_data(self, data):
        if self._href is not None:
            self.links.append((data.strip(), self._href))
            self._href = None

def fetch(url, tries=3):
    for i in range(tries):
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "heimdall-install-pjrt-cuda"})
            return urllib.request.urlopen(req, timeout=60)
        except Exception as e:
            if i == tries - 1:
                raise
            time.sleep(2 * (i + 1))

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def linux_x86_64(platforms):
    return any(p == "any" or (p.startswith("manylinux") and p.endswith("_x86_64")) for p in platforms.split("."))

def glibc(platforms):
    best = None
    for p in platforms.split("."):
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", p)
        v = (int(m[1]), int(m[2])) if m else {"manylinux2014_x86_64": (2, 17), "manylinux2010_x86_64": (2, 12), "manylinux1_x86_64": (2, 5)}.get(p)
        if v and (best is None or v < best):
            best = v
    return best

def resolve(pin):
    name, version = pin.split("==")
    page = fetch(index + norm(name) + "/").read().decode()
    p = Links()
    p.feed(page)
    found = []
    for fname, href in p.links:
        if not fname.endswith(".whl"):
            continue
        parts = fname[:-4].split("-")
        if len(parts) < 5 or norm(parts[0]) != norm(name) or parts[1] != version:
            continue
        pyt, abi, plat = parts[-3], parts[-2], parts[-1]
        if "py3" not in pyt.split(".") or abi != "none" or not linux_x86_64(plat):
            continue
        url, _, frag = urllib.parse.urljoin(index + norm(name) + "/", href).partition("#")
        sha = frag[len("sha256="):] if frag.startswith("sha256=") else ""
        found.append((fname, url, sha, glibc(plat)))
    if not found:
        wheels = [f for f, _ in p.links if f.endswith(".whl")]
        raise LookupError("%s: no py3-none Linux x86-64 wheel of version %s on %s (%d wheel files listed%s)" % (
            pin, version, index, len(wheels), ", e.g. " + wheels[-1] if wheels else ""))
    found.sort(key=lambda f: f[3] or (0, 0))  # the widest compatibility first.
    return found[0]

def try_resolve(pin):
    try:
        return resolve(pin), None
    except Exception as e:
        return None, "%s: %s" % (pin, e) if not isinstance(e, LookupError) else str(e)

import concurrent.futures
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    resolved = list(ex.map(try_resolve, pins))  # the simple pages, in parallel.
errors, needs = [], (0, 0)
for pin, (res, err) in zip(pins, resolved):
    if err:
        errors.append(err)
        continue
    fname, url, sha, libc = res
    needs = max(needs, libc or (0, 0))
    if not sha:
        errors.append("%s: %s has no sha256 on the index page" % (pin, fname))
        continue
    if mode == "resolve":
        print("%-32s -> %s" % (pin, fname))
        continue
    path = os.path.join(dest, fname)
    print("install-pjrt-cuda: %s" % fname, file=sys.stderr)
    h = hashlib.sha256()
    with fetch(url) as r, open(path + ".part", "wb") as f:
        while chunk := r.read(1 << 20):
            h.update(chunk)
            f.write(chunk)
    if h.hexdigest() != sha:
        errors.append("%s: sha256 %s, the index says %s" % (fname, h.hexdigest(), sha))
        continue
    os.replace(path + ".part", path)
if errors:
    print("install-pjrt-cuda: " + "\ninstall-pjrt-cuda: ".join(errors), file=sys.stderr)
    sys.exit(1)
if mode == "resolve":
    print("%d pins resolve; the wheels need glibc >= %d.%d" % (len(pins), *needs))
PY
}

# gpu_visible: an NVIDIA GPU with its driver (the checks backend.HasGPU makes).
gpu_visible() {
	compgen -G "/dev/nvidia[0-9]*" >/dev/null && return 0
	command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU
}

heimdall_bin() {
	if [ ! -x "$bin" ]; then
		log "building $bin"
		go build -o "$bin" ./cmd/heimdall >&2
	fi
}

case $mode in
dry)
	echo "target: $plugin"
	printf '%s\n' "${pins[@]}"
	exit 0
	;;
pins)
	need_index
	wheels resolve - "${pins[@]}"
	exit 0
	;;
need)
	gpu_visible || exit 1
	heimdall_bin
	out=$(GOMLX_NO_AUTO_INSTALL=1 "$bin" devices --set run.backend=xla:cuda 2>&1) && exit 1
	grep -q "CUDA PJRT plugin: .*(none found)" <<<"$out" && exit 0
	exit 1
	;;
check)
	[ -f "$dir/.complete" ] && [ -f "$plugin" ] || {
		log "no plugin installed in $dir: run $0 first"
		exit 1
	}
	missing=$(ldd "$plugin" 2>&1 | grep "not found" || true)
	if [ -n "$missing" ]; then
		log "$plugin: libraries not found:"
		echo "$missing" >&2
		exit 1
	fi
	log "ldd: every library of $plugin is found"
	heimdall_bin
	set +e
	out=$(GOMLX_NO_AUTO_INSTALL=1 GOMLX_BACKEND="xla:$plugin" "$bin" devices 2>&1)
	rc=$?
	set -e
	echo "$out" >&2
	if [ $rc = 0 ]; then
		log "OK: the plugin loads and lists the devices above"
		exit 0
	fi
	if grep -qi "no visible GPU devices" <<<"$out"; then
		log "OK: the plugin loads and the PJRT handshake works; this machine has no GPU (PJRT: no visible GPU devices)"
		exit 0
	fi
	log "FAILED: $bin devices on the plugin exited $rc (above)"
	exit 1
	;;
esac

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
command -v "$python" >/dev/null || {
	log "$python is required"
	exit 1
}
mkdir -p "$cache/pjrt-cuda"
cache=$(cd "$cache" && pwd)
dir="$cache/pjrt-cuda/$version"
plugin="$dir/nvidia/pjrt_c_api_cuda_plugin.so"
exec 9>"$cache/pjrt-cuda/.lock"
flock 9 # one install at a time; a second one reuses the first's result.
if [ -f "$dir/.complete" ] && [ -f "$plugin" ]; then
	log "reusing $dir"
	echo "$plugin"
	exit 0
fi
tmp=$(mktemp -d "$cache/pjrt-cuda/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

need_index
log "downloading jax-cuda13-pjrt==$version and ${#nvidia_wheels[@]} NVIDIA wheels from $index"
mkdir -p "$tmp/wheels"
wheels download "$tmp/wheels" "${pins[@]}"

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
