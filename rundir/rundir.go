// Package rundir owns the run directory: its layout (every file name a run
// holds is a constant here) and the typed records in it (summary, model
// card, parity, bench), each with one way to write, read and update it.
// Records are written atomically (storage/local.WriteFile); an update is a
// read-modify-write of the typed record, serialised within the process.
//
// What the records mean is decided by their writers (trainer, onnx, bench,
// experiment); rundir only keeps them in one place with stable JSON field
// names, which published models and external consumers read. It imports no
// package of the training pipeline.
package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/heimdall-sdr/trainer/storage/local"
)

// The run directory's layout, relative to RUN_DIR.
const (
	ConfigFile     = "config.yaml"   // the resolved configuration (secrets redacted).
	RunConfigFile  = "config.json"   // the trainer's model + train config and input shape.
	DatasetFile    = "dataset.txt"   // the dataset load report.
	MetricsFile    = "metrics.jsonl" // one line per evaluation.
	SummaryFile    = "summary.json"  // Summary.
	PlotsDir       = "plots"         // *.png.
	CheckpointsDir = "checkpoints"   // GoMLX checkpoints and IndexFile.
	IndexFile      = "index.json"    // in CheckpointsDir: the checkpoint index.
	ModelFile      = "model.onnx"    // the exported model.
	ModelCardFile  = "model.json"    // ModelCard.
	ParityFile     = "parity.json"   // Parity.
	BenchFile      = "bench.json"    // BenchReport of the short benchmark after export.
	TrackingDir    = "tracking"      // the local tracking records.
	// MLflowModelDir is the MLflow Model directory (MLmodel, the model and
	// its card, signature, input example; tracking.WriteMLflowModel), logged
	// as the run artifact model/ and registered from there.
	MLflowModelDir = "mlflow_model"
)

// Path is RUN_DIR/name.
func Path(dir, name string) string { return filepath.Join(dir, name) }

// mu serialises read-modify-write updates within the process.
var mu sync.Mutex

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("rundir: encode %s: %w", path, err)
	}
	if err := local.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("rundir: %w", err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rundir: read %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("rundir: parse %s: %w", path, err)
	}
	return nil
}

// update applies edit to the record at path and writes it back; a missing
// record is left alone (ok false).
func update[T any](path string, edit func(*T) error) (ok bool, err error) {
	mu.Lock()
	defer mu.Unlock()
	var v T
	if err := readJSON(path, &v); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if err := edit(&v); err != nil {
		return true, err
	}
	return true, writeJSON(path, &v)
}

// WriteFile writes data as RUN_DIR/name atomically (the text files:
// ConfigFile, DatasetFile, ...).
func WriteFile(dir, name string, data []byte) error {
	if err := local.WriteFile(Path(dir, name), data); err != nil {
		return fmt.Errorf("rundir: %w", err)
	}
	return nil
}
