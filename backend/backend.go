// Package backend resolves and opens the GoMLX compute backend that trains
// and runs LocalizationNet: which one (the config's run.backend,
// $GOMLX_BACKEND, else automatic), where its plugin or library is (plugin
// discovery: installers' caches, Python site-packages, go-xla's directories,
// $PJRT_PLUGIN_LIBRARY_PATH), the CUDA client options, and what it runs on
// (device descriptions, GPUs from nvidia-smi). Open is the one way every
// command (train, export, bench, devices, device-check) creates a backend.
//
// A backend spec is what a user writes in the config or in $GOMLX_BACKEND:
//
//	"xla:cpu"             XLA with the CPU PJRT plugin (scripts/install-pjrt-cpu.sh)
//	"xla:cuda"            XLA with a CUDA PJRT plugin (JAX's jax-cuda12/13 wheels or scripts/install-pjrt-cuda.sh)
//	"xla:/abs/plugin.so"  XLA with that PJRT plugin
//	"onnx:cpu"            ONNX Runtime (scripts/install-ort.sh; binary built with -tags onnx)
//	"go"                  the pure-Go backend (always available, very slow for convolutions)
//
// Options after a comma are passed to GoMLX unchanged ("xla:cuda,preallocate=false").
// Resolve picks the spec; Config turns it into the GoMLX config string
// (absolute plugin paths, library environment); New creates the backend;
// Open does all three with the GPU options.
//
// Backends are registered by blank imports: "go" here (github.com/gomlx/compute/gobackend),
// "xla" in backend_xla.go (github.com/gomlx/go-xla/compute/xla; needs cgo, left out with
// -tags noxla), "onnx" in backend_onnx.go (github.com/gomlx/compute-onnx; -tags onnx).
package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // registers the "go" backend.
)

// Pinned versions installed by scripts/install-pjrt-cpu.sh, scripts/install-pjrt-cuda.sh
// and scripts/install-ort.sh: their cache directories are searched first.
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
	// EnvXLAFlags carries XLA's debug options; New adds
	// --xla_gpu_cuda_data_dir for CUDA plugins whose NVIDIA tree has nvvm/libdevice.
	EnvXLAFlags = "XLA_FLAGS"
)

// CPUPreference is the order in which installed CPU backends are chosen
// automatically: fastest first, as measured in docs/BACKENDS.md.
var CPUPreference = []string{"xla:cpu", "onnx:cpu"}

// ErrNotFound is wrapped by discovery errors when a plugin or library is not installed.
var ErrNotFound = errors.New("not found")

// Resolve decides which backend spec to use and says why.
//
// Order: the configured value (e.g. "xla:cpu", "xla:cuda", "onnx:cpu", "go",
// "xla:/abs/plugin.so"), then $GOMLX_BACKEND (read through roots.Getenv), then
// automatic: "xla:cuda" when a GPU and a CUDA plugin are found, else the first
// installed and compiled-in backend of CPUPreference, else "go" with a warning
// in why. Explicit specs are normalised ("onnx" -> "onnx:cpu", "xla" -> "xla:cpu")
// and checked for syntax only; Config checks that they are installed.
func Resolve(configured string, roots SearchRoots) (spec string, why string, err error) {
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
		config, _, err := Config(cpu, roots)
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

// Config turns a spec into the config string for compute.NewWithConfig
// and the environment variables the backend needs set before it is created:
// "xla:cpu" and "xla:cuda" become "xla:/abs/plugin.so" (go-xla does not look in
// our cache, and an absolute path also stops its GitHub auto-installer);
// "onnx:cpu" sets $ONNXRUNTIME_SHARED_LIBRARY_PATH. A missing plugin or library
// is an error wrapping ErrNotFound that names the install command.
func Config(spec string, roots SearchRoots) (config string, env map[string]string, err error) {
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

// New creates the GoMLX backend for spec (see Resolve), setting
// the environment variables its libraries need. Errors name the install
// command when a plugin or library is missing, and say when a backend is not
// compiled into the binary (instead of GoMLX's panic).
func New(spec string) (compute.Backend, error) { return newIn(spec, DefaultSearchRoots()) }

// newIn is New with the given search roots.
func newIn(spec string, roots SearchRoots) (compute.Backend, error) {
	config, env, err := Config(spec, roots)
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
