package experiment

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/heimdall-sdr/trainer/config"

	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/tracking"
)

// exampleSamples is how many validation inputs go into the input example.
const exampleSamples = 2

// writeMLflowModel writes the run's MLflow Model directory from its
// exported model and model card, with the first validation inputs of ds (may be nil: no input
// example) as the input example.
func writeMLflowModel(runDir string, ds *dataset.Dataset) error {
	onnxPath := rundir.Path(runDir, rundir.ModelFile)
	card, err := rundir.ReadModelCard(runDir)
	if err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	shape := []int{-1}
	for _, d := range card.InputShape[min(1, len(card.InputShape)):] {
		f, ok := d.(float64)
		if !ok {
			if i, isInt := d.(int); isInt {
				f, ok = float64(i), true
			}
		}
		if !ok {
			return fmt.Errorf("mlflow model: %s: input_shape %v", rundir.ModelCardFile, card.InputShape)
		}
		shape = append(shape, int(f))
	}
	if len(shape) != 4 {
		return fmt.Errorf("mlflow model: %s: input_shape %v, want [batch, receivers, n_mels, frames]", rundir.ModelCardFile, card.InputShape)
	}
	m := tracking.MLflowModel{
		ONNXFile:   onnxPath,
		ExtraFiles: []string{rundir.Path(runDir, rundir.ModelCardFile)},
		Inputs:     []tracking.TensorSpec{{Name: onnx.InputName, DType: "float32", Shape: shape}},
		Outputs: []tracking.TensorSpec{
			{Name: onnx.OutputPositions, DType: "float32", Shape: []int{-1, 2}},
			{Name: onnx.OutputSigmas, DType: "float32", Shape: []int{-1, 2}},
		},
		Metadata: map[string]string{"model_type": "localization-net", "model_version": card.ModelVersion, "training_run": filepath.Base(runDir)},
	}
	if m.RunID, err = tracking.StateRunID(runDir); err != nil {
		return err
	}
	if ds != nil && ds.Val != nil && ds.Val.Len() > 0 {
		per := shape[1] * shape[2] * shape[3]
		n := min(exampleSamples, ds.Val.Len())
		if len(ds.Val.X) >= n*per {
			m.Example = map[string]tracking.Tensor{onnx.InputName: {
				Shape: []int{n, shape[1], shape[2], shape[3]}, Data: ds.Val.X[:n*per],
			}}
		}
	}
	if err := tracking.WriteMLflowModel(filepath.Join(runDir, rundir.MLflowModelDir), m); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(runDir, rundir.MLflowModelDir, tracking.MLmodelFile)); err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	return nil
}

// logExportToRun records a re-export (heimdall export) in the run's
// tracking: the MLflow Model directory is logged again as model/ and, with
// tracking.register, registered as a new version (stage and alias as
// configured). A run directory that was never tracked is left alone. The
// server is the configured one, else the one the run went to.
func logExportToRun(ctx context.Context, cfg config.Config, runDir string, logw io.Writer) error {
	if _, err := os.Stat(filepath.Join(runDir, tracking.Dir, tracking.RunFile)); err != nil {
		return nil
	}
	uri, _, err := TrackingURI(cfg)
	if err != nil {
		return err
	}
	if uri == "" {
		if uri, err = tracking.StateURI(runDir); err != nil {
			return err
		}
	}
	tr, err := tracking.Start(ctx, uri, runDir, tracking.RunSpec{Experiment: cfg.Tracking.Experiment, Name: filepath.Base(runDir)}, cfg.Tracking.ClientOptions())
	if err != nil {
		return fmt.Errorf("tracking: %w", err)
	}
	t := &trackedRun{tr: tr, cfg: cfg, runDir: runDir, logw: logw}
	for _, a := range runArtifacts(runDir, nil) {
		if strings.HasPrefix(a.path, tracking.MLflowModelArtifactPath+"/") || strings.HasPrefix(a.path, "bench/") {
			t.check(tr.LogArtifact(ctx, a.src, a.path))
		}
	}
	if cfg.Tracking.Register {
		t.registerModel(ctx, nil)
	}
	t.check(tr.End(ctx, tracking.StatusFinished))
	r := tr.Report()
	if r.Failed {
		fmt.Fprintf(logw, "WARNING: tracking %s\n", r)
	}
	for _, m := range r.Models {
		if m.Version != "" {
			fmt.Fprintf(logw, "tracking: %s version %s (stage %s, alias %s)\n", m.Name, m.Version, m.Stage, m.Alias)
		}
	}
	return nil
}

// PublishRun is `heimdall models publish`: Publish, after writing the run's
// MLflow Model directory if it has none (a run exported before it existed;
// no input example), and then tagging the run's registered model versions
// with the published key (published_key, published_uri).
func PublishRun(ctx context.Context, cfg config.Config, runDir string) (Published, error) {
	if _, err := os.Stat(filepath.Join(runDir, rundir.MLflowModelDir, tracking.MLmodelFile)); err != nil {
		if _, err := os.Stat(rundir.Path(runDir, rundir.ModelFile)); err == nil {
			if err := writeMLflowModel(runDir, nil); err != nil {
				return Published{}, err
			}
		}
	}
	p, err := Publish(ctx, cfg, runDir)
	if err != nil {
		return p, err
	}
	versions, err := tracking.StateModels(runDir)
	if err != nil || len(versions) == 0 {
		return p, err
	}
	uri, _, err := TrackingURI(cfg)
	if err != nil {
		return p, err
	}
	if uri == "" {
		if uri, err = tracking.StateURI(runDir); err != nil {
			return p, err
		}
	}
	c, err := tracking.NewClient(uri, cfg.Tracking.ClientOptions())
	if err != nil {
		return p, err
	}
	for _, v := range versions {
		for k, val := range map[string]string{"published_key": p.Key, "published_uri": "s3://" + cfg.Store.ModelsBucket + "/" + p.Key} {
			if err := c.SetModelVersionTag(ctx, v.Name, v.Version, k, val); err != nil {
				return p, fmt.Errorf("published %s, but tagging %s version %s failed: %w", p.Key, v.Name, v.Version, err)
			}
		}
	}
	return p, nil
}
