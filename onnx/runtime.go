package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/onnx/onnxpb"
)

// ErrNoRuntime is returned (wrapped) when the ONNX Runtime library cannot be
// found or loaded.
var ErrNoRuntime = errors.New("ONNX Runtime library unavailable")

// LibraryPath returns the ONNX Runtime shared library to load: the absolute
// form of $ONNXRUNTIME_SHARED_LIBRARY_PATH when set, else the library
// scripts/install-ort.sh caches in
// ${HEIMDALL_CACHE:-$HOME/.cache/heimdall}/onnxruntime/<version>/.
func LibraryPath() (string, error) {
	if p := os.Getenv(backend.EnvORTLibrary); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("onnx: %w: $%s=%q: %v", ErrNoRuntime, backend.EnvORTLibrary, p, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("onnx: %w: $%s=%s does not exist; run %s", ErrNoRuntime, backend.EnvORTLibrary, abs, backend.InstallORT)
		}
		return abs, nil
	}
	cache := os.Getenv(backend.EnvCache)
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("onnx: %w: no $%s and no home directory; run %s", ErrNoRuntime, backend.EnvCache, backend.InstallORT)
		}
		cache = filepath.Join(home, ".cache", "heimdall")
	}
	p, err := filepath.Abs(filepath.Join(cache, "onnxruntime", backend.ONNXRuntimeVersion, "libonnxruntime.so"))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("onnx: %w: %s not found and $%s not set; run %s (ONNX Runtime %s)",
			ErrNoRuntime, p, backend.EnvORTLibrary, backend.InstallORT, backend.ONNXRuntimeVersion)
	}
	return p, nil
}

var (
	initOnce sync.Once
	initErr  error
	initPath string
)

// InitRuntime loads the ONNX Runtime library (LibraryPath) once per
// process; later calls return the first result.
func InitRuntime() error {
	initOnce.Do(func() {
		p, err := LibraryPath()
		if err != nil {
			initErr = err
			return
		}
		ort.SetSharedLibraryPath(p)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			initErr = fmt.Errorf("onnx: %w: load %s: %v (run %s)", ErrNoRuntime, p, err, backend.InstallORT)
			return
		}
		initPath = p
	})
	return initErr
}

// RuntimeVersion is the loaded ONNX Runtime's version ("" before InitRuntime).
func RuntimeVersion() string {
	if InitRuntime() != nil {
		return ""
	}
	return ort.GetVersion()
}

// RuntimeLibrary is the path of the loaded library.
func RuntimeLibrary() string { return initPath }

// SessionOptions configure an ONNX Runtime session.
type SessionOptions struct {
	// IntraOpThreads is ORT's intra-op thread count; 0 means 1 (the steadiest
	// latency on a 2-core machine).
	IntraOpThreads int
	// GraphOptimization is "all" (default), "extended", "basic" or "disable".
	GraphOptimization string
	// CUDA appends the CUDA execution provider; an error if unavailable.
	CUDA bool
}

func (o SessionOptions) threads() int {
	if o.IntraOpThreads <= 0 {
		return 1
	}
	return o.IntraOpThreads
}

// GraphOptimizationLevels are the accepted SessionOptions.GraphOptimization values.
var GraphOptimizationLevels = map[string]ort.GraphOptimizationLevel{
	"":         ort.GraphOptimizationLevelEnableAll,
	"all":      ort.GraphOptimizationLevelEnableAll,
	"extended": ort.GraphOptimizationLevelEnableExtended,
	"basic":    ort.GraphOptimizationLevelEnableBasic,
	"disable":  ort.GraphOptimizationLevelDisableAll,
}

// Session is an ONNX Runtime session of an exported LocalizationNet.
type Session struct {
	s *ort.DynamicAdvancedSession
	// InputShape is [receivers, n_mels, frames] (the batch is dynamic).
	InputShape [3]int
	Options    SessionOptions

	// out are output tensors kept for the batch size of the last Run, so
	// that repeated runs at one batch size (serving, the benchmark) do not
	// have ONNX Runtime allocate and Go free two outputs per call. mu guards
	// them; a Run that finds them busy (concurrent callers) lets ONNX
	// Runtime allocate its own.
	mu   sync.Mutex
	outN int
	out  [2]*ort.Tensor[float32]
}

// NewSession loads the .onnx file at path: it must parse, pass Check and
// have LocalizationNet's inputs and outputs.
func NewSession(path string, o SessionOptions) (*Session, error) {
	_, data, err := ReadModel(path)
	if err != nil {
		return nil, err
	}
	s, err := NewSessionFromBytes(data, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// NewSessionFromBytes creates a session from a serialized model.
func NewSessionFromBytes(data []byte, o SessionOptions) (*Session, error) {
	mp, err := ParseModel(data)
	if err != nil {
		return nil, err
	}
	shape, err := inputShape(mp)
	if err != nil {
		return nil, err
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	level, ok := GraphOptimizationLevels[strings.ToLower(o.GraphOptimization)]
	if !ok {
		return nil, fmt.Errorf("onnx: graph optimisation level %q: want all, extended, basic or disable", o.GraphOptimization)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(o.threads()); err != nil {
		return nil, fmt.Errorf("onnx: intra-op threads %d: %w", o.threads(), err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnx: inter-op threads: %w", err)
	}
	if err := so.SetGraphOptimizationLevel(level); err != nil {
		return nil, fmt.Errorf("onnx: graph optimisation level: %w", err)
	}
	if o.CUDA {
		cu, err := ort.NewCUDAProviderOptions()
		if err == nil {
			err = so.AppendExecutionProviderCUDA(cu)
			cu.Destroy()
		}
		if err != nil {
			return nil, fmt.Errorf("onnx: CUDA execution provider unavailable (the onnxruntime-node library is CPU-only; install a CUDA build of ONNX Runtime %s and set $%s): %v",
				backend.ONNXRuntimeVersion, backend.EnvORTLibrary, err)
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{InputName}, []string{OutputPositions, OutputSigmas}, so)
	if err != nil {
		return nil, fmt.Errorf("onnx: create ONNX Runtime session: %w", err)
	}
	return &Session{s: s, InputShape: shape, Options: o}, nil
}

// inputShape checks the model's I/O names and returns its input's
// [receivers, n_mels, frames].
func inputShape(mp *onnxpb.ModelProto) ([3]int, error) {
	g := mp.GetGraph()
	var shape [3]int
	if len(g.GetInput()) != 1 || g.GetInput()[0].GetName() != InputName {
		return shape, fmt.Errorf("onnx: model input must be %q only, got %v", InputName, valueNames(g.GetInput()))
	}
	outs := valueNames(g.GetOutput())
	if len(outs) != 2 || outs[0] != OutputPositions || outs[1] != OutputSigmas {
		return shape, fmt.Errorf("onnx: model outputs must be %q, %q, got %v", OutputPositions, OutputSigmas, outs)
	}
	dims := g.GetInput()[0].GetType().GetTensorType().GetShape().GetDim()
	if len(dims) != 4 {
		return shape, fmt.Errorf("onnx: model input %q has rank %d, want 4 [batch, receivers, n_mels, frames]", InputName, len(dims))
	}
	for i := range 3 {
		shape[i] = int(dims[i+1].GetDimValue())
		if shape[i] <= 0 {
			return shape, fmt.Errorf("onnx: model input %q: dimension %d must be fixed", InputName, i+1)
		}
	}
	return shape, nil
}

func valueNames(vs []*onnxpb.ValueInfoProto) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.GetName())
	}
	return out
}

// SampleSize is receivers * n_mels * frames.
func (s *Session) SampleSize() int { return s.InputShape[0] * s.InputShape[1] * s.InputShape[2] }

// Run runs the model on x ([n, receivers, n_mels, frames] flat) in one
// batch of n and returns positions and sigmas ([n, 2] flat, degrees).
func (s *Session) Run(x []float32, n int) (pos, sigma []float32, err error) {
	per := s.SampleSize()
	if n <= 0 || len(x) != n*per {
		return nil, nil, fmt.Errorf("onnx: wrong input shape: %d values for batch %d, model input is [batch, %d, %d, %d] (%d values per sample)",
			len(x), n, s.InputShape[0], s.InputShape[1], s.InputShape[2], per)
	}
	// The input tensor wraps x (no copy).
	in, err := ort.NewTensor(ort.NewShape(int64(n), int64(s.InputShape[0]), int64(s.InputShape[1]), int64(s.InputShape[2])), x)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: input tensor: %w", err)
	}
	defer in.Destroy()
	if s.mu.TryLock() {
		defer s.mu.Unlock()
		if err := s.outputsFor(n); err != nil {
			return nil, nil, err
		}
		if err := s.s.Run([]ort.Value{in}, []ort.Value{s.out[0], s.out[1]}); err != nil {
			return nil, nil, fmt.Errorf("onnx: run: %w", err)
		}
		return append([]float32(nil), s.out[0].GetData()...), append([]float32(nil), s.out[1].GetData()...), nil
	}
	outs := []ort.Value{nil, nil}
	if err := s.s.Run([]ort.Value{in}, outs); err != nil {
		return nil, nil, fmt.Errorf("onnx: run: %w", err)
	}
	defer func() {
		for _, o := range outs {
			if o != nil {
				o.Destroy()
			}
		}
	}()
	p, ok1 := outs[0].(*ort.Tensor[float32])
	q, ok2 := outs[1].(*ort.Tensor[float32])
	if !ok1 || !ok2 {
		return nil, nil, errors.New("onnx: run: outputs are not float32 tensors")
	}
	pos = append([]float32(nil), p.GetData()...)
	sigma = append([]float32(nil), q.GetData()...)
	if len(pos) != 2*n || len(sigma) != 2*n {
		return nil, nil, fmt.Errorf("onnx: run: outputs have %d and %d values, want %d", len(pos), len(sigma), 2*n)
	}
	return pos, sigma, nil
}

// outputsFor makes s.out [n, 2] tensors; s.mu is held.
func (s *Session) outputsFor(n int) error {
	if s.outN == n && s.out[0] != nil {
		return nil
	}
	s.destroyOutputs()
	for i := range s.out {
		t, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), 2))
		if err != nil {
			s.destroyOutputs()
			return fmt.Errorf("onnx: output tensor: %w", err)
		}
		s.out[i] = t
	}
	s.outN = n
	return nil
}

func (s *Session) destroyOutputs() {
	for i, t := range s.out {
		if t != nil {
			_ = t.Destroy()
			s.out[i] = nil
		}
	}
	s.outN = 0
}

// Close releases the session.
func (s *Session) Close() error {
	if s == nil || s.s == nil {
		return nil
	}
	s.mu.Lock()
	s.destroyOutputs()
	s.mu.Unlock()
	err := s.s.Destroy()
	s.s = nil
	return err
}
