package experiment

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/tracking"
)

// MLflowModelDir is the MLflow Model directory in a run directory: the
// exported model.onnx and model.json as MLflow's loaders want them
// (tracking.WriteMLflowModel), logged as the run artifact model/ and
// registered from there.
const MLflowModelDir = "mlflow_model"

// exampleSamples is how many validation inputs go into the input example.
const exampleSamples = 2

// writeMLflowModel writes RUN_DIR/mlflow_model from RUN_DIR/model.onnx and
// model.json, with the first validation inputs of ds (may be nil: no input
// example) as the input example.
func writeMLflowModel(runDir string, ds *dataset.Dataset) error {
	onnxPath := filepath.Join(runDir, onnx.ModelFile)
	metaPath := filepath.Join(runDir, onnx.MetaFile)
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	var meta struct {
		ModelVersion string `json:"model_version"`
		InputShape   []any  `json:"input_shape"` // ["batch", receivers, n_mels, frames]
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return fmt.Errorf("mlflow model: parse %s: %w", metaPath, err)
	}
	shape := []int{-1}
	for _, d := range meta.InputShape[min(1, len(meta.InputShape)):] {
		f, ok := d.(float64)
		if !ok {
			return fmt.Errorf("mlflow model: %s: input_shape %v", metaPath, meta.InputShape)
		}
		shape = append(shape, int(f))
	}
	if len(shape) != 4 {
		return fmt.Errorf("mlflow model: %s: input_shape %v, want [batch, receivers, n_mels, frames]", metaPath, meta.InputShape)
	}
	m := tracking.MLflowModel{
		ONNXFile:   onnxPath,
		ExtraFiles: []string{metaPath},
		Inputs:     []tracking.TensorSpec{{Name: onnx.InputName, DType: "float32", Shape: shape}},
		Outputs: []tracking.TensorSpec{
			{Name: onnx.OutputPositions, DType: "float32", Shape: []int{-1, 2}},
			{Name: onnx.OutputSigmas, DType: "float32", Shape: []int{-1, 2}},
		},
		Metadata: map[string]string{"model_type": "localization-net", "model_version": meta.ModelVersion, "training_run": filepath.Base(runDir)},
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
	if err := tracking.WriteMLflowModel(filepath.Join(runDir, MLflowModelDir), m); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(runDir, MLflowModelDir, tracking.MLmodelFile)); err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	return nil
}
