package backend

// CUDA: what xla:cuda needs (a GPU and a plugin), the error when it is
// missing, and the client options passed to go-xla.

import (
	"fmt"
	"path/filepath"
	"strings"
)

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
