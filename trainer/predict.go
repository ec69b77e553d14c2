package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
)

// DefaultPredictBatch is the largest batch Predict runs at once.
const DefaultPredictBatch = 64

// Model is a LocalizationNet with trained weights, ready for inference.
type Model struct {
	// Config is the run configuration stored in the checkpoint.
	Config RunConfig
	// Checkpoint is the base name of the loaded checkpoint.
	Checkpoint string
	// Entry is the checkpoint's index entry (epoch, step, val loss), when known.
	Entry *CheckpointEntry

	backend compute.Backend
	store   *model.Store
	exec    *model.Exec
}

// Store returns the model's variables (for export).
func (m *Model) Store() *model.Store { return m.store }

// Params returns the number of trainable parameters.
func (m *Model) Params() int { return ParamCountShape(m.Config.Model, m.Config.InputShape) }

// LoadModel loads the best checkpoint (by train.select_by; lowest val loss by default) of a run; dir is
// the run directory or its checkpoints directory.
func LoadModel(backend compute.Backend, dir string) (*Model, error) {
	ckptDir := dir
	if _, err := os.Stat(filepath.Join(dir, CheckpointsDir)); err == nil {
		ckptDir = filepath.Join(dir, CheckpointsDir)
	}
	ix, err := readIndex(ckptDir)
	if err != nil {
		return nil, err
	}
	entry := ix.Best
	if entry == nil {
		entry = ix.latest()
	}
	if entry == nil {
		return nil, fmt.Errorf("trainer: load model: no checkpoints listed in %s", filepath.Join(ckptDir, IndexFile))
	}
	m, err := LoadCheckpoint(backend, ckptDir, entry.Name)
	if err != nil {
		return nil, err
	}
	e := *entry
	m.Entry = &e
	return m, nil
}

// LoadCheckpoint loads checkpoint name (a base name, without .json/.bin)
// from a checkpoints directory; an empty name loads the latest.
func LoadCheckpoint(backend compute.Backend, ckptDir, name string) (*Model, error) {
	loadDir := ckptDir
	if name != "" {
		tmp, err := linkCheckpoint(ckptDir, name)
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		loadDir = tmp
	}
	store := model.NewStore()
	h, err := checkpoint.Load(store).Dir(loadDir).Done()
	if err != nil {
		return nil, fmt.Errorf("trainer: load checkpoint %s from %s: %w", name, ckptDir, err)
	}
	if name == "" {
		list, err := h.ListCheckpoints()
		if err == nil && len(list) > 0 {
			name = list[len(list)-1]
		}
	}
	raw, ok := store.GetParam(model.JoinPath(model.RootScopePath, runConfigParam))
	s, isString := raw.(string)
	if !ok || !isString {
		return nil, fmt.Errorf("trainer: checkpoint %s in %s has no %q parameter: not written by this package", name, ckptDir, runConfigParam)
	}
	var rc RunConfig
	if err := json.Unmarshal([]byte(s), &rc); err != nil {
		return nil, fmt.Errorf("trainer: checkpoint %s: parse run config: %w", name, err)
	}
	m := &Model{Config: rc, Checkpoint: name, backend: backend, store: store}
	if m.exec, err = newInferenceExec(backend, store, rc.Model); err != nil {
		return nil, err
	}
	return m, nil
}

// Predict runs the model on X ([n, receivers, n_mels, frames] flat) and
// returns positions and sigmas ([n, 2] flat, degrees).
func (m *Model) Predict(x []float32, n int) (pos, sigma []float32, err error) {
	return predictAll(m.exec, x, n, m.Config.InputShape, DefaultPredictBatch)
}

// Predict loads the best checkpoint of the run in dir (see LoadModel) and
// runs it on X ([n, receivers, n_mels, frames] flat).
func Predict(backend compute.Backend, dir string, x []float32, n int) (pos, sigma []float32, err error) {
	m, err := LoadModel(backend, dir)
	if err != nil {
		return nil, nil, err
	}
	return m.Predict(x, n)
}

// newInferenceExec compiles LocalizationNet in inference mode (BatchNorm on
// running statistics, no dropout) on store's variables.
func newInferenceExec(backend compute.Backend, store *model.Store, cfg ModelConfig) (*model.Exec, error) {
	exec, err := model.NewExec(backend, store, func(scope *model.Scope, x *graph.Node) (*graph.Node, *graph.Node) {
		return LocalizationNet(scope.In(ModelScope), cfg, x)
	})
	if err != nil {
		return nil, fmt.Errorf("trainer: inference executor: %w", err)
	}
	return exec.WithName("LocalizationNet inference"), nil
}

// predictAll runs exec over n samples in chunks of at most maxBatch; every
// chunk is padded to the same size, so only one graph is compiled.
func predictAll(exec *model.Exec, x []float32, n int, shape [3]int, maxBatch int) (pos, sigma []float32, err error) {
	per := sampleSize(shape)
	if n <= 0 || len(x) != n*per {
		return nil, nil, fmt.Errorf("trainer: predict: X has %d values, want n=%d * %v", len(x), n, shape)
	}
	batch := min(n, maxBatch)
	pos = make([]float32, 0, 2*n)
	sigma = make([]float32, 0, 2*n)
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		buf := make([]float32, batch*per)
		copy(buf, x[start*per:end*per])
		in := tensors.FromFlatDataAndDimensions(buf, batch, shape[0], shape[1], shape[2])
		outs, err := exec.Call(in)
		if err != nil {
			return nil, nil, fmt.Errorf("trainer: predict samples %d..%d: %w", start, end, err)
		}
		p, err1 := tensors.CopyFlatData[float32](outs[0])
		s, err2 := tensors.CopyFlatData[float32](outs[1])
		for _, t := range outs {
			_ = t.FinalizeAll()
		}
		_ = in.FinalizeAll()
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, fmt.Errorf("trainer: predict: read outputs: %w", err)
		}
		pos = append(pos, p[:2*(end-start)]...)
		sigma = append(sigma, s[:2*(end-start)]...)
	}
	return pos, sigma, nil
}
