package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/storage/local"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/ml/model/checkpoint"
)

// The parts of the run directory the trainer writes (rundir's layout).
const (
	CheckpointsDir = rundir.CheckpointsDir
	IndexFile      = rundir.IndexFile // in CheckpointsDir.
	MetricsFile    = rundir.MetricsFile
	ConfigFile     = rundir.RunConfigFile
	PlotsDir       = rundir.PlotsDir
)

// runConfigParam is the model.Store parameter holding the run configuration
// (JSON), so every checkpoint carries it.
const runConfigParam = "heimdall_run_config"

// RunConfig is the resolved configuration of a run: saved as
// RUN_DIR/config.json and inside every checkpoint.
type RunConfig struct {
	Model      ModelConfig `json:"model"`
	Train      TrainConfig `json:"train"`
	InputShape [3]int      `json:"input_shape"` // receivers, n_mels, frames.
}

// CheckpointEntry describes one saved checkpoint.
type CheckpointEntry struct {
	Name    string  `json:"name"` // base name in CheckpointsDir (+ .json / .bin).
	Epoch   int     `json:"epoch"`
	Step    int64   `json:"step"`
	ValLoss float64 `json:"val_loss"`
	// ValKmMedian and HoldoutKmMedian are the median km errors on the val
	// split and on the calibration holdout (0 when not measured: older
	// indexes, no holdout).
	ValKmMedian     float64 `json:"val_km_median,omitempty"`
	HoldoutKmMedian float64 `json:"holdout_km_median,omitempty"`
}

// score is the entry's value of the selection criterion (train.select_by);
// lower is better.
func (e CheckpointEntry) score(selectBy string) float64 {
	switch selectBy {
	case SelectValKmMedian:
		return e.ValKmMedian
	case SelectHoldoutKmMedian:
		return e.HoldoutKmMedian
	}
	return e.ValLoss
}

// checkpointIndex is CheckpointsDir/index.json: the complete checkpoints
// (a checkpoint is listed only after GoMLX finished writing it) and the
// early-stopping state needed to resume.
type checkpointIndex struct {
	Checkpoints  []CheckpointEntry `json:"checkpoints"` // oldest first; the last is the latest.
	Best         *CheckpointEntry  `json:"best,omitempty"`
	BadEvals     int               `json:"evals_without_improvement"`
	EarlyStopped bool              `json:"early_stopped"`
}

func (ix *checkpointIndex) latest() *CheckpointEntry {
	if len(ix.Checkpoints) == 0 {
		return nil
	}
	return &ix.Checkpoints[len(ix.Checkpoints)-1]
}

func readIndex(dir string) (*checkpointIndex, error) {
	ix := &checkpointIndex{}
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if errors.Is(err, os.ErrNotExist) {
		return ix, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trainer: read checkpoint index: %w", err)
	}
	if err := json.Unmarshal(b, ix); err != nil {
		return nil, fmt.Errorf("trainer: parse checkpoint index %s: %w", filepath.Join(dir, IndexFile), err)
	}
	return ix, nil
}

func writeIndex(dir string, ix *checkpointIndex) error {
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return fmt.Errorf("trainer: encode checkpoint index: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, IndexFile), b)
}

// prune keeps the latest checkpoint and the keepBest ones with the lowest
// score (train.select_by), deleting the files of the others.
func (ix *checkpointIndex) prune(dir string, keepBest int, selectBy string) error {
	ranked := slices.Clone(ix.Checkpoints)
	slices.SortStableFunc(ranked, func(a, b CheckpointEntry) int {
		sa, sb := a.score(selectBy), b.score(selectBy)
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	keep := map[string]bool{ix.latest().Name: true}
	for i := 0; i < keepBest && i < len(ranked); i++ {
		keep[ranked[i].Name] = true
	}
	var kept []CheckpointEntry
	for _, c := range ix.Checkpoints {
		if keep[c.Name] {
			kept = append(kept, c)
			continue
		}
		if err := removeCheckpointFiles(dir, c.Name); err != nil {
			return err
		}
	}
	ix.Checkpoints = kept
	return nil
}

func removeCheckpointFiles(dir, name string) error {
	for _, suffix := range []string{checkpoint.JsonNameSuffix, checkpoint.BinDataSuffix} {
		if err := os.Remove(filepath.Join(dir, name+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("trainer: remove checkpoint %s: %w", name, err)
		}
	}
	return nil
}

// removeUnlisted deletes checkpoint files that the index does not list:
// leftovers of a save interrupted before the index was updated. It runs
// before GoMLX's handler loads "the latest" checkpoint on resume.
func removeUnlisted(dir string, ix *checkpointIndex) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("trainer: list checkpoints: %w", err)
	}
	listed := map[string]bool{}
	for _, c := range ix.Checkpoints {
		listed[c.Name] = true
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, "checkpoint-") {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(name, checkpoint.JsonNameSuffix), checkpoint.BinDataSuffix)
		if !listed[base] {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("trainer: remove incomplete checkpoint file %s: %w", name, err)
			}
		}
	}
	return nil
}

// linkCheckpoint makes a temporary directory holding only checkpoint name
// of dir (hard links, or copies where linking fails), because GoMLX's
// checkpoint handler always loads the latest checkpoint of a directory.
func linkCheckpoint(dir, name string) (tmp string, err error) {
	tmp, err = os.MkdirTemp("", "heimdall-ckpt-*")
	if err != nil {
		return "", fmt.Errorf("trainer: temp dir for checkpoint %s: %w", name, err)
	}
	for _, suffix := range []string{checkpoint.JsonNameSuffix, checkpoint.BinDataSuffix} {
		src, dst := filepath.Join(dir, name+suffix), filepath.Join(tmp, name+suffix)
		if err := os.Link(src, dst); err == nil {
			continue
		}
		if err := copyFile(src, dst); err != nil {
			_ = os.RemoveAll(tmp)
			return "", err
		}
	}
	return tmp, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("trainer: copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("trainer: copy to %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("trainer: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("trainer: copy to %s: %w", dst, err)
	}
	return nil
}

// writeFileAtomic writes data to path atomically (local.WriteFile).
func writeFileAtomic(path string, data []byte) error {
	if err := local.WriteFile(path, data); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	return nil
}
