package backend

// Discovery: where the PJRT plugins, the ONNX Runtime library and the GPU
// are looked for. Every place comes from SearchRoots, so a fake tree can
// stand in for a machine in tests.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute"
)

// SearchRoots are the places and facts backend discovery looks at. Every field
// can point into a fake tree, so discovery is testable without a GPU;
// DefaultSearchRoots describes the real machine.
type SearchRoots struct {
	// Getenv reads the environment; nil means an empty environment.
	Getenv func(string) string
	// Home is the user's home directory (for ~/.local/lib/go-xla, ~/.cache/heimdall).
	Home string
	// Cache is the installers' cache root; empty means $HEIMDALL_CACHE, else Home/.cache/heimdall.
	Cache string
	// SitePackages are Python site-packages directories searched for JAX's CUDA plugin
	// (jax_plugins/xla_cuda13 or xla_cuda12, with nvidia/*/lib beside).
	SitePackages []string
	// PythonPrefixes are globs of Python installation prefixes (venvs, conda)
	// whose lib/python3*/site-packages are searched even when their python3
	// is not on $PATH: GPU images often ship JAX's CUDA plugin in a venv such
	// as /opt/torch/.venv. Only DefaultSearchRoots uses them.
	PythonPrefixes []string
	// GoXLADirs are go-xla's default plugin directories (~/.local/lib/go-xla, /usr/local/lib/go-xla).
	GoXLADirs []string
	// ORTDirs are extra directories searched for libonnxruntime.so (compute-onnx's ~/.local/lib/onnxruntime).
	ORTDirs []string
	// DevDir is where /dev/nvidia0 is looked for; empty skips the check.
	DevDir string
	// NvidiaSMI reports whether nvidia-smi lists a GPU; nil skips it.
	NvidiaSMI func() bool
	// Compiled lists the backends compiled into the binary; nil means compute.List().
	Compiled []string
}

// DefaultSearchRoots returns the SearchRoots of this machine and process.
func DefaultSearchRoots() SearchRoots {
	home, _ := os.UserHomeDir()
	r := SearchRoots{
		Getenv:    os.Getenv,
		Home:      home,
		DevDir:    "/dev",
		NvidiaSMI: nvidiaSMI,
		GoXLADirs: []string{"/usr/local/lib/go-xla"},
		PythonPrefixes: []string{"/opt/*/.venv", "/opt/*/venv", "/opt/venv", "/opt/conda", "/opt/conda/envs/*",
			"/usr/local/*/.venv"},
	}
	if home != "" {
		r.GoXLADirs = append([]string{filepath.Join(home, ".local", "lib", "go-xla")}, r.GoXLADirs...)
		r.ORTDirs = []string{filepath.Join(home, ".local", "lib", "onnxruntime")}
	}
	r.SitePackages = defaultSitePackages(r)
	return r
}

// defaultSitePackages lists existing Python site-packages directories without running Python:
// $VIRTUAL_ENV, $PYTHONPATH, the installers' venvs, the user's and the system's.
func defaultSitePackages(r SearchRoots) []string {
	var patterns []string
	if venv := r.getenv("VIRTUAL_ENV"); venv != "" {
		patterns = append(patterns, filepath.Join(venv, "lib", "python3*", "site-packages"))
	}
	for _, p := range filepath.SplitList(r.getenv("PYTHONPATH")) {
		if filepath.IsAbs(p) {
			patterns = append(patterns, p)
		}
	}
	patterns = append(patterns, filepath.Join(r.cache(), "venv", "*", "lib", "python3*", "site-packages"))
	// The python3 on $PATH, when it lives in a venv or prefix (.../bin/python3): JAX's
	// CUDA plugin is usually installed there (e.g. /opt/torch/.venv/lib/python3.12/site-packages).
	// A python3 that is a link into a venv (/usr/local/bin/python3 -> /opt/torch/.venv/bin/python3)
	// counts for that venv too.
	for _, dir := range filepath.SplitList(r.getenv("PATH")) {
		if filepath.IsAbs(dir) && isFile(filepath.Join(dir, "python3")) {
			for _, prefix := range pythonPrefixes(filepath.Join(dir, "python3")) {
				patterns = append(patterns, filepath.Join(prefix, "lib", "python3*", "site-packages"))
			}
		}
	}
	for _, prefix := range r.PythonPrefixes {
		patterns = append(patterns, filepath.Join(prefix, "lib", "python3*", "site-packages"))
	}
	if r.Home != "" {
		patterns = append(patterns, filepath.Join(r.Home, ".local", "lib", "python3*", "site-packages"))
	}
	patterns = append(patterns,
		"/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
		"/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages")
	var dirs []string
	for _, p := range patterns {
		matches, _ := filepath.Glob(p)
		sort.Strings(matches)
		for _, m := range matches {
			if isDir(m) && !slices.Contains(dirs, m) {
				dirs = append(dirs, m)
			}
		}
	}
	return dirs
}

// pythonPrefixes returns the prefix (the parent of bin/) of python, and of
// every link it goes through on the way to the real interpreter.
func pythonPrefixes(python string) []string {
	var prefixes []string
	p := python
	for range 8 { // links followed at most.
		if d := filepath.Dir(p); filepath.Base(d) == "bin" {
			prefixes = append(prefixes, filepath.Dir(d))
		}
		target, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return prefixes
}

func nvidiaSMI() bool {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		return false
	}
	out, err := exec.Command("nvidia-smi", "-L").Output()
	return err == nil && strings.Contains(string(out), "GPU")
}

func (r SearchRoots) getenv(key string) string {
	if r.Getenv == nil {
		return ""
	}
	return r.Getenv(key)
}

func (r SearchRoots) cache() string {
	if r.Cache != "" {
		return r.Cache
	}
	if c := r.getenv(EnvCache); c != "" {
		return c
	}
	if r.Home == "" {
		return ""
	}
	return filepath.Join(r.Home, ".cache", "heimdall")
}

func (r SearchRoots) compiled() []string {
	if r.Compiled != nil {
		return r.Compiled
	}
	return compute.List()
}

func (r SearchRoots) isCompiled(backendName string) bool {
	names := r.compiled()
	switch backendName {
	case "onnx":
		return slices.Contains(names, "onnx") || slices.Contains(names, "onnxruntime")
	default:
		return slices.Contains(names, backendName)
	}
}

// HasGPU reports whether an NVIDIA GPU is visible, and how it was seen.
func (r SearchRoots) HasGPU() (bool, string) {
	if r.DevDir != "" {
		if matches, _ := filepath.Glob(filepath.Join(r.DevDir, "nvidia[0-9]*")); len(matches) > 0 {
			sort.Strings(matches)
			return true, matches[0]
		}
	}
	if r.NvidiaSMI != nil && r.NvidiaSMI() {
		return true, "nvidia-smi"
	}
	return false, ""
}

// FindCPUPlugin looks for the XLA CPU PJRT plugin: a file in
// $PJRT_PLUGIN_LIBRARY_PATH (or a pjrt_c_api_cpu*_plugin.so in its
// directories), the installer's cache (pjrt-cpu/<PJRTCPUVersion>), then
// go-xla's default directories. It returns the path ("" if none) and what it
// looked at.
func FindCPUPlugin(roots SearchRoots) (path string, looked []string) {
	var candidates []string
	for _, p := range filepath.SplitList(roots.getenv(EnvPJRTPluginPath)) {
		if p == "" {
			continue
		}
		if isFile(p) {
			if strings.Contains(strings.ToLower(filepath.Base(p)), "cpu") {
				candidates = append(candidates, p)
			}
			continue
		}
		candidates = append(candidates, cpuPluginGlobs(p)...)
	}
	if c := roots.cache(); c != "" {
		candidates = append(candidates, filepath.Join(c, "pjrt-cpu", PJRTCPUVersion, "pjrt_c_api_cpu_plugin.so"))
	}
	for _, d := range roots.GoXLADirs {
		candidates = append(candidates, cpuPluginGlobs(d)...)
	}
	for _, c := range candidates {
		looked = append(looked, c)
		if strings.ContainsAny(c, "*?[") {
			matches, _ := filepath.Glob(c)
			sort.Sort(sort.Reverse(sort.StringSlice(matches))) // newest version first.
			for _, m := range matches {
				if isFile(m) {
					return m, looked
				}
			}
			continue
		}
		if isFile(c) {
			return c, looked
		}
	}
	return "", looked
}

func cpuPluginGlobs(dir string) []string {
	return []string{
		filepath.Join(dir, "pjrt_c_api_cpu_plugin.so"),
		filepath.Join(dir, "pjrt_c_api_cpu_*_plugin.so"), // go-xla's installer: pjrt_c_api_cpu_v0.114.0_plugin.so
	}
}

// FindCUDAPlugin looks for a CUDA PJRT plugin and the NVIDIA library
// directories it needs, in order:
//
//  1. $PJRT_PLUGIN_LIBRARY_PATH (a plugin file, or directories holding
//     pjrt_c_api_cuda*_plugin.so) and $GOMLX_BACKEND=xla:/abs/plugin.so;
//  2. JAX's plugin in each site-packages directory:
//     jax_plugins/xla_cuda13/xla_cuda_plugin.so, then xla_cuda12, with the
//     libraries in site-packages/nvidia/*/lib;
//  3. go-xla's directories: <dir>/nvidia/pjrt_c_api_cuda_plugin.so with
//     <dir>/nvidia/*/lib, then <dir>/pjrt_c_api_cuda_plugin.so.
//
// It does not check for a GPU. looked lists every path tried, for errors.
func FindCUDAPlugin(roots SearchRoots) (path string, libDirs []string, looked []string, err error) {
	check := func(p string) bool {
		looked = append(looked, p)
		return isFile(p)
	}
	// 1. Explicit paths.
	for _, p := range filepath.SplitList(roots.getenv(EnvPJRTPluginPath)) {
		if p == "" {
			continue
		}
		if isFile(p) {
			looked = append(looked, p)
			if isCUDAName(p) {
				return p, nvidiaLibDirs(filepath.Dir(p)), looked, nil
			}
			continue
		}
		for _, name := range []string{"pjrt_c_api_cuda_plugin.so", "pjrt-plugin-cuda.so", "pjrt_plugin_cuda.so"} {
			if c := filepath.Join(p, name); check(c) {
				return c, nvidiaLibDirs(p), looked, nil
			}
		}
	}
	if env := roots.getenv(EnvBackend); strings.HasPrefix(env, "xla:/") {
		p, _, _ := strings.Cut(strings.TrimPrefix(env, "xla:"), ",")
		if isCUDAName(p) && check(p) {
			return p, nvidiaLibDirs(filepath.Dir(p)), looked, nil
		}
	}
	// 2. JAX's CUDA plugin wheels (jax-cuda13-plugin / jax-cuda12-plugin).
	for _, sp := range roots.SitePackages {
		for _, v := range []string{"xla_cuda13", "xla_cuda12"} {
			if c := filepath.Join(sp, "jax_plugins", v, "xla_cuda_plugin.so"); check(c) {
				return c, globDirs(filepath.Join(sp, "nvidia", "*", "lib")), looked, nil
			}
		}
	}
	// 3. The installers: scripts/install-pjrt-cuda.sh's cache (go-xla's layout), then
	// go-xla's own install directories.
	if c := roots.cache(); c != "" {
		d := filepath.Join(c, "pjrt-cuda", PJRTCUDAVersion)
		if p := filepath.Join(d, "nvidia", "pjrt_c_api_cuda_plugin.so"); check(p) {
			return p, globDirs(filepath.Join(d, "nvidia", "*", "lib")), looked, nil
		}
	}
	for _, d := range roots.GoXLADirs {
		if c := filepath.Join(d, "nvidia", "pjrt_c_api_cuda_plugin.so"); check(c) {
			return c, globDirs(filepath.Join(d, "nvidia", "*", "lib")), looked, nil
		}
		if c := filepath.Join(d, "pjrt_c_api_cuda_plugin.so"); check(c) {
			return c, nvidiaLibDirs(d), looked, nil
		}
	}
	return "", nil, looked, fmt.Errorf("CUDA PJRT plugin %w: looked in %s; %s",
		ErrNotFound, strings.Join(lookedWithEnv(roots, looked), ", "), cudaInstallHint)
}

// cudaInstallHint says how to get a CUDA PJRT plugin.
const cudaInstallHint = "install one with " + InstallPJRTCUDA + " (jax-cuda13-pjrt " + PJRTCUDAVersion +
	" + NVIDIA wheels from PyPI into the cache) or pip install 'jax[cuda13]', or set $" + EnvPJRTPluginPath +
	" to a pjrt_c_api_cuda_plugin.so / xla_cuda_plugin.so"

// lookedWithEnv prefixes looked with the environment variables FindCUDAPlugin read, for messages.
func lookedWithEnv(roots SearchRoots, looked []string) []string {
	var out []string
	if roots.getenv(EnvPJRTPluginPath) == "" {
		out = append(out, "$"+EnvPJRTPluginPath+" (unset)")
	}
	if !strings.HasPrefix(roots.getenv(EnvBackend), "xla:/") {
		out = append(out, "$"+EnvBackend+"=xla:/path (unset)")
	}
	return append(out, looked...)
}

func isCUDAName(p string) bool {
	u := strings.ToUpper(filepath.Base(p)) + strings.ToUpper(filepath.Base(filepath.Dir(p)))
	return strings.Contains(u, "CUDA") || strings.Contains(u, "NVIDIA")
}

// nvidiaLibDirs returns <dir>/nvidia/*/lib if any.
func nvidiaLibDirs(dir string) []string {
	return globDirs(filepath.Join(dir, "nvidia", "*", "lib"))
}

func globDirs(pattern string) []string {
	matches, _ := filepath.Glob(pattern)
	sort.Strings(matches)
	var dirs []string
	for _, m := range matches {
		if isDir(m) {
			dirs = append(dirs, m)
		}
	}
	return dirs
}

func ortCandidates(roots SearchRoots) []string {
	var c []string
	if p := roots.getenv(EnvORTLibrary); p != "" {
		c = append(c, p)
	}
	if cache := roots.cache(); cache != "" {
		c = append(c, filepath.Join(cache, "onnxruntime", ONNXRuntimeVersion, "libonnxruntime.so"))
	}
	for _, d := range roots.ORTDirs {
		c = append(c, filepath.Join(d, "libonnxruntime.so"))
	}
	return c
}

// findORTLibraryPath returns the first existing ONNX Runtime library: $ONNXRUNTIME_SHARED_LIBRARY_PATH,
// the installer's cache, then compute-onnx's default directory.
func findORTLibraryPath(roots SearchRoots) string {
	for _, c := range ortCandidates(roots) {
		if isFile(c) {
			return c
		}
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Compiled reports whether the backend name ("go", "xla", "onnx") is
// compiled into this binary.
func Compiled(name string) bool { return SearchRoots{}.isCompiled(name) }
