package trainer

// Backend selection: which GoMLX compute backend trains and runs the model.
//
// A backend spec is what a user writes in the config or in $GOMLX_BACKEND:
//
//	"xla:cpu"             XLA with the CPU PJRT plugin (scripts/install-pjrt-cpu.sh)
//	"xla:cuda"            XLA with a CUDA PJRT plugin (JAX's jax-cuda12/13-plugin wheels or go-xla's install)
//	"xla:/abs/plugin.so"  XLA with that PJRT plugin
//	"onnx:cpu"            ONNX Runtime (scripts/install-ort.sh; binary built with -tags onnx)
//	"go"                  the pure-Go backend (always available, very slow for convolutions)
//
// Options after a comma are passed to GoMLX unchanged ("xla:cuda,preallocate=false").
// ResolveBackend picks the spec; BackendConfig turns it into the GoMLX config string
// (absolute plugin paths, library environment); NewBackend creates the backend.
//
// Backends are registered by blank imports: "go" here (github.com/gomlx/compute/gobackend),
// "xla" in backend_xla.go (github.com/gomlx/go-xla/compute/xla; needs cgo, left out with
// -tags noxla), "onnx" in backend_onnx.go (github.com/gomlx/compute-onnx; -tags onnx).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // registers the "go" backend.
)

// Pinned versions installed by scripts/install-pjrt-cpu.sh and scripts/install-ort.sh:
// their cache directories are searched first.
const (
	PJRTCPUVersion     = "0.11.2"   // PyPI lammps-jax-pjrt-cpu: XLA CPU PJRT plugin, C API v0.115.
	PJRTCUDAVersion    = "0.12.0.1" // PyPI jax-cuda13-pjrt: XLA CUDA 13 PJRT plugin (+ NVIDIA wheels).
	ONNXRuntimeVersion = "1.30.0"   // npm onnxruntime-node: libonnxruntime.so.1.

	InstallPJRTCPU  = "scripts/install-pjrt-cpu.sh"
	InstallPJRTCUDA = "scripts/install-pjrt-cuda.sh"
	InstallORT      = "scripts/install-ort.sh"

	// EnvBackend is GoMLX's environment variable for the backend config.
	EnvBackend = "GOMLX_BACKEND"
	// EnvPJRTPluginPath is go-xla's plugin search path (a file or ":"-separated directories).
	EnvPJRTPluginPath = "PJRT_PLUGIN_LIBRARY_PATH"
	// EnvORTLibrary is the ONNX Runtime library that compute-onnx loads.
	EnvORTLibrary = "ONNXRUNTIME_SHARED_LIBRARY_PATH"
	// EnvNoAutoInstall stops go-xla and compute-onnx from downloading plugins from GitHub
	// (read once at program start; absolute plugin/library paths avoid it anyway).
	EnvNoAutoInstall = "GOMLX_NO_AUTO_INSTALL"
	// EnvCache is the root of the cache the scripts/ installers write to.
	EnvCache = "HEIMDALL_CACHE"
	// EnvXLAFlags carries XLA's debug options; NewBackend adds
	// --xla_gpu_cuda_data_dir for CUDA plugins whose NVIDIA tree has nvvm/libdevice.
	EnvXLAFlags = "XLA_FLAGS"
)

// CPUPreference is the order in which installed CPU backends are chosen
// automatically: fastest first, as measured in docs/BACKENDS.md.
var CPUPreference = []string{"xla:cpu", "onnx:cpu"}

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
	// CUDA plugin is usually installed there (e.g. /opt/venv/lib/python3.12/site-packages).
	for _, dir := range filepath.SplitList(r.getenv("PATH")) {
		if filepath.IsAbs(dir) && filepath.Base(dir) == "bin" && isFile(filepath.Join(dir, "python3")) {
			patterns = append(patterns, filepath.Join(filepath.Dir(dir), "lib", "python3*", "site-packages"))
		}
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

// ErrNotFound is wrapped by discovery errors when a plugin or library is not installed.
var ErrNotFound = errors.New("not found")

// ResolveBackend decides which backend spec to use and says why.
//
// Order: the configured value (e.g. "xla:cpu", "xla:cuda", "onnx:cpu", "go",
// "xla:/abs/plugin.so"), then $GOMLX_BACKEND (read through roots.Getenv), then
// automatic: "xla:cuda" when a GPU and a CUDA plugin are found, else the first
// installed and compiled-in backend of CPUPreference, else "go" with a warning
// in why. Explicit specs are normalised ("onnx" -> "onnx:cpu", "xla" -> "xla:cpu")
// and checked for syntax only; BackendConfig checks that they are installed.
func ResolveBackend(configured string, roots SearchRoots) (spec string, why string, err error) {
	if configured = strings.TrimSpace(configured); configured != "" {
		spec, err := normalizeSpec(configured)
		if err != nil {
			return "", "", fmt.Errorf("backend: config value %q: %w", configured, err)
		}
		return spec, "set in the config", nil
	}
	if env := strings.TrimSpace(roots.getenv(EnvBackend)); env != "" {
		spec, err := normalizeSpec(env)
		if err != nil {
			return "", "", fmt.Errorf("backend: $%s=%q: %w", EnvBackend, env, err)
		}
		return spec, "set by $" + EnvBackend, nil
	}

	var notes []string
	if gpu, how := roots.HasGPU(); gpu {
		path, _, looked, err := FindCUDAPlugin(roots)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("GPU found (%s) but no CUDA PJRT plugin: looked in %s", how, strings.Join(looked, ", ")))
		case !roots.isCompiled("xla"):
			notes = append(notes, "GPU found but the xla backend is not compiled in (cgo disabled or -tags noxla)")
		default:
			return "xla:cuda", fmt.Sprintf("GPU found (%s), CUDA plugin %s", how, path), nil
		}
	}
	for _, cpu := range CPUPreference {
		name, _, _ := strings.Cut(cpu, ":")
		if !roots.isCompiled(name) {
			notes = append(notes, fmt.Sprintf("%s not compiled in", cpu))
			continue
		}
		config, _, err := BackendConfig(cpu, roots)
		if err != nil {
			notes = append(notes, err.Error())
			continue
		}
		_, file, _ := strings.Cut(config, ":")
		if name == "onnx" {
			file = findORTLibraryPath(roots)
		}
		why := "fastest installed CPU backend (" + file + ")"
		if len(notes) > 0 {
			why += "; " + strings.Join(notes, "; ")
		}
		return cpu, why, nil
	}
	notes = append(notes, fmt.Sprintf("WARNING: falling back to the pure-Go backend, ~60x slower at training; run %s (and build with cgo)", InstallPJRTCPU))
	return "go", strings.Join(notes, "; "), nil
}

// normalizeSpec checks the syntax of a spec and fills in defaults.
func normalizeSpec(spec string) (string, error) {
	name, rest, hasRest := strings.Cut(spec, ":")
	switch name {
	case "go":
		return spec, nil
	case "xla", "stablehlo", "hlo", "shlo":
		if !hasRest || rest == "" {
			return "xla:cpu", nil
		}
		plugin, _, _ := strings.Cut(rest, ",")
		if strings.ContainsRune(plugin, '/') && !filepath.IsAbs(plugin) {
			return "", fmt.Errorf("PJRT plugin path %q must be absolute", plugin)
		}
		return "xla:" + rest, nil
	case "onnx", "onnxruntime":
		if !hasRest || rest == "" {
			return "onnx:cpu", nil
		}
		return "onnx:" + rest, nil
	case "":
		return "", errors.New("empty backend name")
	default:
		return "", fmt.Errorf("unknown backend %q (want xla:cpu, xla:cuda, xla:/abs/plugin.so, onnx:cpu or go)", name)
	}
}

// BackendConfig turns a spec into the config string for compute.NewWithConfig
// and the environment variables the backend needs set before it is created:
// "xla:cpu" and "xla:cuda" become "xla:/abs/plugin.so" (go-xla does not look in
// our cache, and an absolute path also stops its GitHub auto-installer);
// "onnx:cpu" sets $ONNXRUNTIME_SHARED_LIBRARY_PATH. A missing plugin or library
// is an error wrapping ErrNotFound that names the install command.
func BackendConfig(spec string, roots SearchRoots) (config string, env map[string]string, err error) {
	spec, err = normalizeSpec(spec)
	if err != nil {
		return "", nil, fmt.Errorf("backend: %w", err)
	}
	name, rest, _ := strings.Cut(spec, ":")
	plugin, opts, _ := strings.Cut(rest, ",")
	if opts != "" {
		opts = "," + opts
	}
	env = map[string]string{}
	switch name {
	case "go":
		return spec, env, nil
	case "xla":
		switch {
		case filepath.IsAbs(plugin):
			if !isFile(plugin) {
				return "", nil, fmt.Errorf("backend %s: PJRT plugin %s: %w", spec, plugin, ErrNotFound)
			}
			return "xla:" + plugin + opts, env, nil
		case plugin == "cpu":
			path, looked := FindCPUPlugin(roots)
			if path == "" {
				return "", nil, fmt.Errorf("backend xla:cpu: XLA CPU PJRT plugin %w: looked in %s; run %s",
					ErrNotFound, strings.Join(looked, ", "), InstallPJRTCPU)
			}
			return "xla:" + path + opts, env, nil
		case plugin == "cuda" || plugin == "gpu":
			// The NVIDIA libraries are found by the plugin itself (JAX's wheels use an
			// RPATH to site-packages/nvidia; go-xla sets XLA_FLAGS for its own layout).
			path, libDirs, err := CheckCUDA(roots)
			if err != nil {
				return "", nil, fmt.Errorf("backend xla:cuda: %w", err)
			}
			if flags, ok := cudaDataDirFlag(roots.getenv(EnvXLAFlags), libDirs); ok {
				env[EnvXLAFlags] = flags
			}
			return "xla:" + path + opts, env, nil
		default:
			// Another plugin name: let go-xla search $PJRT_PLUGIN_LIBRARY_PATH and its directories.
			return spec, env, nil
		}
	case "onnx":
		lib := findORTLibraryPath(roots)
		if lib == "" {
			return "", nil, fmt.Errorf("backend %s: ONNX Runtime library (libonnxruntime.so, ORT >= 1.26) %w: looked in $%s, %s; run %s",
				spec, ErrNotFound, EnvORTLibrary, strings.Join(ortCandidates(roots), ", "), InstallORT)
		}
		env[EnvORTLibrary] = lib
		return "onnx:" + rest, env, nil
	}
	return "", nil, fmt.Errorf("backend: unknown spec %q", spec)
}

// NewBackend creates the GoMLX backend for spec (see ResolveBackend), setting
// the environment variables its libraries need. Errors name the install
// command when a plugin or library is missing, and say when a backend is not
// compiled into the binary (instead of GoMLX's panic).
func NewBackend(spec string) (compute.Backend, error) {
	roots := DefaultSearchRoots()
	config, env, err := BackendConfig(spec, roots)
	if err != nil {
		return nil, err
	}
	name, _, _ := strings.Cut(config, ":")
	if !roots.isCompiled(name) {
		hint := "build with cgo enabled and without -tags noxla"
		if name == "onnx" {
			hint = "build with -tags onnx (and cgo)"
		}
		return nil, fmt.Errorf("backend %s: %q backend is not compiled into this binary (have %v): %s", spec, name, compute.List(), hint)
	}
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			return nil, fmt.Errorf("backend %s: set $%s: %w", spec, k, err)
		}
	}
	backend, err := newWithConfig(config)
	if err != nil {
		return nil, fmt.Errorf("backend %s (%s): %w", spec, config, err)
	}
	return backend, nil
}

// newWithConfig calls compute.NewWithConfig, turning its panics into errors.
func newWithConfig(config string) (b compute.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return compute.NewWithConfig(config)
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

// NoCUDAError says that "xla:cuda" cannot run here: no NVIDIA GPU is visible
// and/or no CUDA PJRT plugin is installed. It wraps ErrNotFound.
type NoCUDAError struct {
	// GPU is how the GPU was seen ("" when it was not: GPULooked says where it was looked for).
	GPU       string
	GPULooked []string
	// PluginLooked lists every plugin location tried (empty when a plugin was found).
	PluginLooked []string
	Plugin       string
}

func (e *NoCUDAError) Error() string {
	var b strings.Builder
	b.WriteString("no GPU/plugin found: looked in ")
	if e.GPU != "" {
		fmt.Fprintf(&b, "GPU: found (%s); ", e.GPU)
	} else {
		fmt.Fprintf(&b, "GPU: %s (no NVIDIA GPU); ", strings.Join(e.GPULooked, ", "))
	}
	if e.Plugin != "" {
		fmt.Fprintf(&b, "CUDA PJRT plugin: found (%s)", e.Plugin)
	} else {
		fmt.Fprintf(&b, "CUDA PJRT plugin: %s (none found)", strings.Join(e.PluginLooked, ", "))
	}
	if e.Plugin == "" {
		b.WriteString("; " + cudaInstallHint)
	}
	if e.GPU == "" {
		b.WriteString("; xla:cuda needs an NVIDIA GPU with its driver (/dev/nvidia0, nvidia-smi): use backend xla:cpu or \"\" (auto) on this machine")
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrNotFound) true.
func (e *NoCUDAError) Unwrap() error { return ErrNotFound }

// gpuLooked describes where HasGPU looks.
func (r SearchRoots) gpuLooked() []string {
	var l []string
	if r.DevDir != "" {
		l = append(l, filepath.Join(r.DevDir, "nvidia[0-9]*"))
	}
	if r.NvidiaSMI != nil {
		l = append(l, "nvidia-smi -L")
	}
	if len(l) == 0 {
		l = append(l, "(GPU checks disabled)")
	}
	return l
}

// CheckCUDA is what "xla:cuda" needs: an NVIDIA GPU (HasGPU) and a CUDA PJRT
// plugin (FindCUDAPlugin). Without either it returns a *NoCUDAError naming
// every place it looked and the install command.
func CheckCUDA(roots SearchRoots) (plugin string, libDirs []string, err error) {
	gpu, how := roots.HasGPU()
	plugin, libDirs, looked, perr := FindCUDAPlugin(roots)
	if gpu && perr == nil {
		return plugin, libDirs, nil
	}
	e := &NoCUDAError{GPU: how, Plugin: plugin}
	if !gpu {
		e.GPULooked = roots.gpuLooked()
	}
	if perr != nil {
		e.PluginLooked = lookedWithEnv(roots, looked)
	}
	return "", nil, e
}

// cudaDataDirFlag returns XLA_FLAGS with --xla_gpu_cuda_data_dir added when
// it is not set yet and one of the NVIDIA library directories' parents holds
// nvvm/libdevice (the layout of go-xla's and scripts/install-pjrt-cuda.sh's
// nvidia/cu13, and of the nvidia-cuda-nvcc wheel). JAX's own site-packages
// layout needs nothing: XLA finds it relative to the plugin.
func cudaDataDirFlag(current string, libDirs []string) (string, bool) {
	if strings.Contains(current, "--xla_gpu_cuda_data_dir") {
		return "", false
	}
	for _, d := range libDirs {
		root := filepath.Dir(d)
		if isDir(filepath.Join(root, "nvvm", "libdevice")) {
			return strings.TrimSpace(current + " --xla_gpu_cuda_data_dir=" + root), true
		}
	}
	return "", false
}

// GPUOptions are the CUDA client settings passed to go-xla as backend options.
type GPUOptions struct {
	// Preallocate lets XLA reserve MemoryFraction of the GPU memory when the
	// client starts (XLA's own default, 75%). false allocates on demand.
	Preallocate bool
	// MemoryFraction is the fraction preallocated; 0 keeps XLA's 0.75.
	MemoryFraction float64
	// TF32 lets float32 matrix multiplications use TensorFloat-32 (10-bit
	// mantissa) on Ampere and newer GPUs: faster, ~1e-3 relative error.
	TF32 bool
}

// DefaultGPUOptions: no preallocation, TF32 on (go-xla's CUDA defaults, made explicit).
func DefaultGPUOptions() GPUOptions { return GPUOptions{TF32: true} }

// IsCUDASpec reports whether spec selects a CUDA PJRT plugin ("xla:cuda",
// "xla:gpu", or an absolute plugin path whose name says cuda/nvidia).
func IsCUDASpec(spec string) bool {
	name, rest, _ := strings.Cut(spec, ":")
	if name != "xla" && name != "stablehlo" && name != "hlo" && name != "shlo" {
		return false
	}
	plugin, _, _ := strings.Cut(rest, ",")
	return plugin == "cuda" || plugin == "gpu" || (filepath.IsAbs(plugin) && isCUDAName(plugin))
}

// WithGPUOptions appends o as go-xla backend options ("preallocate=false",
// "memory_fraction=0.5", "tf32=false") to a CUDA spec; options already in
// the spec win. Other specs are returned unchanged.
func WithGPUOptions(spec string, o GPUOptions) string {
	if !IsCUDASpec(spec) {
		return spec
	}
	_, opts, _ := strings.Cut(spec, ",")
	has := func(key string) bool {
		for _, kv := range strings.Split(opts, ",") {
			k, _, _ := strings.Cut(kv, "=")
			if k == key || k == "no"+key {
				return true
			}
		}
		return false
	}
	add := func(key, val string) {
		if !has(key) {
			spec += "," + key + "=" + val
		}
	}
	add("preallocate", fmt.Sprint(o.Preallocate))
	if o.Preallocate && o.MemoryFraction > 0 {
		add("memory_fraction", fmt.Sprint(o.MemoryFraction))
	}
	add("tf32", fmt.Sprint(o.TF32))
	return spec
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
