package tracking

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The MLflow Model directory (the "MLmodel format") as the pinned MLflow
// (3.17.2, scripts/requirements-mlflow.txt) writes it for an ONNX model in
// mlflow.onnx.save_model and reads it in mlflow.onnx.load_model,
// mlflow.pyfunc.load_model and mlflow.models.get_model_info:
//
//	MLmodel                     flavors onnx (data, onnx_version, providers) and
//	                            python_function (loader_module mlflow.onnx, data,
//	                            env), signature, saved_input_example_info, ...
//	model.onnx                  the model (flavor data)
//	requirements.txt            pip requirements (onnx, onnxruntime pinned)
//	python_env.yaml             python version, build deps, -r requirements.txt
//	conda.yaml                  the same for conda (the flavor's env names both)
//	input_example.json          {"mel_spectrogram": [[...]]}
//	serving_input_example.json  {"inputs": {"mel_spectrogram": [[...]]}}
//
// plus any extra files (the model card, rundir.ModelCardFile) beside them.
const (
	MLmodelFile             = "MLmodel"
	MLflowModelArtifactPath = "model" // the run artifact directory of the model
	// MLflowVersion is the pinned MLflow whose format this is.
	MLflowVersion = "3.17.2"
)

// Pinned versions a consumer's environment gets (requirements.txt), the
// same as scripts/requirements-mlflow-client.txt.
const (
	ONNXPackageVersion        = "1.19.1"
	ONNXRuntimePackageVersion = "1.30.0"
	DefaultPythonVersion      = "3.11"
)

// TensorSpec is one named tensor of a model signature (MLflow's
// TensorSpec: dtype as numpy names it, -1 for a variable dimension).
type TensorSpec struct {
	Name  string
	DType string // e.g. "float32"
	Shape []int
}

// Tensor is a float32 tensor in row-major order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// MLflowModel describes an MLflow Model directory for an ONNX model. Zero
// values of the optional fields are the documented defaults.
type MLflowModel struct {
	// ONNXFile is copied in as model.onnx. Required.
	ONNXFile string
	// ExtraFiles are copied in by base name (e.g. the run's model card).
	ExtraFiles []string
	// Inputs and Outputs are the signature. Required.
	Inputs, Outputs []TensorSpec
	// Example is the input example by input name (a few real inputs); nil
	// writes none.
	Example map[string]Tensor
	// RunID is the MLflow run the directory is logged to ("" = unknown).
	RunID string
	// Metadata goes into MLmodel's metadata section (string values).
	Metadata map[string]string
	// Requirements are the pip requirements. Default mlflow, onnx and
	// onnxruntime pinned (MLflowVersion, ONNXPackageVersion,
	// ONNXRuntimePackageVersion), as mlflow.onnx.save_model infers them.
	Requirements []string
	// ONNXVersion is the onnx flavor's onnx_version. Default ONNXPackageVersion.
	ONNXVersion string
	// PythonVersion of the consumer environment. Default DefaultPythonVersion.
	PythonVersion string
	// Providers are ONNX Runtime execution providers, preferred first.
	// Default CUDA, then CPU (mlflow.onnx's default).
	Providers []string
	// Time is the creation time. Default now.
	Time time.Time
}

// WriteMLflowModel writes m as an MLflow Model directory dir, replacing
// what is there: it is assembled in a temporary directory beside dir and
// renamed into place.
func WriteMLflowModel(dir string, m MLflowModel) error {
	if m.ONNXFile == "" || len(m.Inputs) == 0 || len(m.Outputs) == 0 {
		return errors.New("mlflow model: ONNX file, inputs and outputs are required")
	}
	if m.Requirements == nil {
		m.Requirements = []string{"mlflow==" + MLflowVersion, "onnx==" + ONNXPackageVersion, "onnxruntime==" + ONNXRuntimePackageVersion}
	}
	if m.ONNXVersion == "" {
		m.ONNXVersion = ONNXPackageVersion
	}
	if m.PythonVersion == "" {
		m.PythonVersion = DefaultPythonVersion
	}
	if m.Providers == nil {
		m.Providers = []string{"CUDAExecutionProvider", "CPUExecutionProvider"}
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+filepath.Base(dir)+"-*")
	if err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := copyFile(m.ONNXFile, filepath.Join(tmp, "model.onnx")); err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	for _, f := range m.ExtraFiles {
		if err := copyFile(f, filepath.Join(tmp, filepath.Base(f))); err != nil {
			return fmt.Errorf("mlflow model: %w", err)
		}
	}
	files := map[string][]byte{
		"requirements.txt": []byte(strings.Join(m.Requirements, "\n")),
	}
	pyEnv := map[string]any{
		"python":             m.PythonVersion,
		"build_dependencies": []string{"pip", "setuptools", "wheel"},
		"dependencies":       []string{"-r requirements.txt"},
	}
	conda := map[string]any{
		"name":         "mlflow-env",
		"channels":     []string{"conda-forge"},
		"dependencies": []any{"python=" + m.PythonVersion, "pip", map[string]any{"pip": m.Requirements}},
	}
	for name, v := range map[string]any{"python_env.yaml": pyEnv, "conda.yaml": conda} {
		b, err := yamlOrdered(v)
		if err != nil {
			return err
		}
		files[name] = b
	}
	var exampleInfo map[string]any
	if len(m.Example) > 0 {
		ex := map[string]any{}
		for name, t := range m.Example {
			v, err := nested(t)
			if err != nil {
				return fmt.Errorf("mlflow model: input example %s: %w", name, err)
			}
			ex[name] = v
		}
		b, err := json.Marshal(ex)
		if err != nil {
			return fmt.Errorf("mlflow model: input example: %w", err)
		}
		files["input_example.json"] = b
		if b, err = json.Marshal(map[string]any{"inputs": ex}); err != nil {
			return fmt.Errorf("mlflow model: input example: %w", err)
		}
		files["serving_input_example.json"] = b
		exampleInfo = map[string]any{
			"artifact_path": "input_example.json", "serving_input_path": "serving_input_example.json", "type": "ndarray",
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return fmt.Errorf("mlflow model: %w", err)
		}
	}
	size, err := dirSize(tmp)
	if err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	ml, err := m.mlmodel(exampleInfo, size)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, MLmodelFile), ml, 0o644); err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("mlflow model: replace %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("mlflow model: %w", err)
	}
	return nil
}

// mlmodel renders the MLmodel file (keys as mlflow.models.Model.to_dict
// writes them).
func (m MLflowModel) mlmodel(exampleInfo map[string]any, size int64) ([]byte, error) {
	specs := func(ts []TensorSpec) (string, error) {
		out := make([]map[string]any, len(ts))
		for i, t := range ts {
			out[i] = map[string]any{"type": "tensor", "tensor-spec": map[string]any{"dtype": t.DType, "shape": t.Shape}, "name": t.Name}
		}
		b, err := json.Marshal(out)
		return string(b), err
	}
	in, err := specs(m.Inputs)
	if err != nil {
		return nil, fmt.Errorf("mlflow model: signature: %w", err)
	}
	out, err := specs(m.Outputs)
	if err != nil {
		return nil, fmt.Errorf("mlflow model: signature: %w", err)
	}
	uuid := make([]byte, 16)
	if _, err := rand.Read(uuid); err != nil {
		return nil, fmt.Errorf("mlflow model: uuid: %w", err)
	}
	doc := map[string]any{
		"artifact_path": MLflowModelArtifactPath,
		"flavors": map[string]any{
			"onnx": map[string]any{
				"code":                 nil,
				"data":                 "model.onnx",
				"onnx_session_options": nil,
				"onnx_version":         m.ONNXVersion,
				"providers":            m.Providers,
			},
			"python_function": map[string]any{
				"data":           "model.onnx",
				"env":            map[string]any{"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
				"loader_module":  "mlflow.onnx",
				"python_version": m.PythonVersion,
			},
		},
		"is_signature_from_type_hint": false,
		"mlflow_version":              MLflowVersion,
		"model_id":                    nil, // a run artifact, not an MLflow 3 logged model
		"model_size_bytes":            size,
		"prompts":                     nil,
		"model_uuid":                  hex.EncodeToString(uuid),
		"signature":                   map[string]any{"inputs": in, "outputs": out, "params": nil},
		"type_hint_from_example":      false,
		"utc_time_created":            m.Time.UTC().Format("2006-01-02 15:04:05.000000"),
	}
	if m.RunID != "" {
		doc["run_id"] = m.RunID
	}
	if exampleInfo != nil {
		doc["saved_input_example_info"] = exampleInfo
	}
	if len(m.Metadata) > 0 {
		doc["metadata"] = m.Metadata
	}
	return yamlOrdered(doc)
}

// nested turns a tensor into nested lists for JSON.
func nested(t Tensor) (any, error) {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	if len(t.Shape) == 0 || n != len(t.Data) {
		return nil, fmt.Errorf("shape %v does not hold %d values", t.Shape, len(t.Data))
	}
	var build func(dims []int, data []float32) any
	build = func(dims []int, data []float32) any {
		if len(dims) == 1 {
			out := make([]float64, len(data))
			for i, v := range data {
				out[i] = float64(v)
			}
			return out
		}
		step := len(data) / dims[0]
		out := make([]any, dims[0])
		for i := range out {
			out[i] = build(dims[1:], data[i*step:(i+1)*step])
		}
		return out
	}
	return build(t.Shape, t.Data), nil
}

func yamlOrdered(v any) ([]byte, error) {
	var sb strings.Builder
	enc := yaml.NewEncoder(&sb)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("mlflow model: yaml: %w", err)
	}
	return []byte(sb.String()), nil
}

// copyFile copies src to dst (a hard link where the file system allows:
// the run's files are replaced by rename, never rewritten in place).
func copyFile(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	return n, err
}

// StateRunID returns the MLflow run id recorded in
// RUN_DIR/tracking/replay-state.json ("" if the run never reached a server).
func StateRunID(runDir string) (string, error) {
	var st replayState
	if err := readJSON(filepath.Join(runDir, Dir, ReplayStateFile), &st); err != nil {
		return "", err
	}
	return st.RunID, nil
}

// StateModels returns the model versions RUN_DIR/tracking/replay-state.json
// records as registered on the server.
func StateModels(runDir string) ([]Registration, error) {
	var st replayState
	if err := readJSON(filepath.Join(runDir, Dir, ReplayStateFile), &st); err != nil {
		return nil, err
	}
	var out []Registration
	for _, ms := range st.Models {
		if ms.Version != "" {
			out = append(out, Registration{Name: ms.Name, Version: ms.Version, Source: ms.Source, Stage: ms.Stage, Alias: ms.Alias})
		}
	}
	return out, nil
}
