package backend

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute"
)

// Options say which backend Open creates. The zero value is the default:
// automatic choice (see Resolve) with DefaultGPUOptions on this machine.
type Options struct {
	// Spec is the configured backend (run.backend): "" for automatic,
	// "xla:cpu", "xla:cuda", "go", "onnx:cpu" or "xla:/abs/plugin.so".
	// $GOMLX_BACKEND is read when it is empty.
	Spec string
	// GPU are the CUDA client options (preallocation, TF32); nil means
	// DefaultGPUOptions. Non-CUDA backends ignore them.
	GPU *GPUOptions
	// Roots are where discovery looks; nil means DefaultSearchRoots().
	Roots *SearchRoots
}

// Opened is a backend created by Open, with how it was chosen.
type Opened struct {
	// Backend is the GoMLX backend (pass it on: it is the concrete backend,
	// not a wrapper). Close finalizes it.
	Backend compute.Backend
	// Spec is the resolved spec with the GPU options applied
	// ("xla:cuda,preallocate=false,tf32=true", "xla:cpu", "go").
	Spec string
	// Why says why this backend was chosen ("set in the config",
	// "fastest installed CPU backend (...)", warnings).
	Why string
}

// Open resolves the backend o names, applies the GPU options and creates it.
// A missing plugin or library is an error that names the install command
// (wrapping ErrNotFound); xla:cuda without a GPU is a *NoCUDAError.
func Open(o Options) (*Opened, error) {
	roots := DefaultSearchRoots()
	if o.Roots != nil {
		roots = *o.Roots
	}
	spec, why, err := Resolve(o.Spec, roots)
	if err != nil {
		return nil, err
	}
	gpu := DefaultGPUOptions()
	if o.GPU != nil {
		gpu = *o.GPU
	}
	spec = WithGPUOptions(spec, gpu)
	b, err := newIn(spec, roots)
	if err != nil {
		return nil, err
	}
	return &Opened{Backend: b, Spec: spec, Why: why}, nil
}

// Header is the line every command prints at start: "backend: <description> (<why>)".
func (b *Opened) Header() string {
	return fmt.Sprintf("backend: %s (%s)\n", b.Backend.Description(), b.Why)
}

// Devices describes what the backend runs on (with nvidia-smi's GPUs for CUDA).
func (b *Opened) Devices() DeviceInfo { return Describe(b.Backend, b.Spec) }

// IsCUDA reports whether the backend runs on a CUDA plugin.
func (b *Opened) IsCUDA() bool {
	return IsCUDASpec(b.Spec) || strings.Contains(strings.ToLower(b.Backend.Description()), "cuda")
}

// Close releases the backend (compute.Backend.Finalize).
func (b *Opened) Close() { b.Backend.Finalize() }
