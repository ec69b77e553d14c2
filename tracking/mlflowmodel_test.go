package tracking

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestWriteMLflowModel: the directory has the files and MLmodel keys that
// the pinned MLflow's loaders read (the end-to-end load by MLflow's own
// client is experiment's TestRegisteredModelLoadsInMLflowClient).
func TestWriteMLflowModel(t *testing.T) {
	src := t.TempDir()
	onnxFile, meta := filepath.Join(src, "model.onnx"), filepath.Join(src, "model.json")
	for _, f := range []string{onnxFile, meta} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "mlflow_model")
	m := MLflowModel{
		ONNXFile: onnxFile, ExtraFiles: []string{meta}, RunID: "abc",
		Inputs:  []TensorSpec{{"mel_spectrogram", "float32", []int{-1, 2, 1, 3}}},
		Outputs: []TensorSpec{{"positions", "float32", []int{-1, 2}}, {"uncertainties", "float32", []int{-1, 2}}},
		Example: map[string]Tensor{"mel_spectrogram": {Shape: []int{1, 2, 1, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}},
		Time:    time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
	}
	for range 2 { // the second write replaces the first
		if err := WriteMLflowModel(dir, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"MLmodel", "model.onnx", "model.json", "requirements.txt", "python_env.yaml", "conda.yaml", "input_example.json", "serving_input_example.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".tmp-*")); len(left) > 0 {
		t.Errorf("temporary directories left: %v", left)
	}
	b, err := os.ReadFile(filepath.Join(dir, MLmodelFile))
	if err != nil {
		t.Fatal(err)
	}
	var ml struct {
		Flavors struct {
			ONNX struct {
				Data        string   `yaml:"data"`
				ONNXVersion string   `yaml:"onnx_version"`
				Providers   []string `yaml:"providers"`
			} `yaml:"onnx"`
			Pyfunc struct {
				Loader string            `yaml:"loader_module"`
				Data   string            `yaml:"data"`
				Env    map[string]string `yaml:"env"`
			} `yaml:"python_function"`
		} `yaml:"flavors"`
		RunID     string `yaml:"run_id"`
		Version   string `yaml:"mlflow_version"`
		Created   string `yaml:"utc_time_created"`
		Signature struct {
			Inputs, Outputs string
		} `yaml:"signature"`
		Example map[string]string `yaml:"saved_input_example_info"`
	}
	if err := yaml.Unmarshal(b, &ml); err != nil {
		t.Fatalf("MLmodel: %v\n%s", err, b)
	}
	f := ml.Flavors
	if f.ONNX.Data != "model.onnx" || f.ONNX.ONNXVersion != ONNXPackageVersion || len(f.ONNX.Providers) != 2 ||
		f.Pyfunc.Loader != "mlflow.onnx" || f.Pyfunc.Data != "model.onnx" || f.Pyfunc.Env["virtualenv"] != "python_env.yaml" ||
		ml.RunID != "abc" || ml.Version != MLflowVersion || ml.Created != "2026-12-02 10:00:00.000000" ||
		ml.Example["artifact_path"] != "input_example.json" || ml.Example["type"] != "ndarray" {
		t.Errorf("MLmodel:\n%s", b)
	}
	var in []map[string]any
	if err := json.Unmarshal([]byte(ml.Signature.Inputs), &in); err != nil || len(in) != 1 || in[0]["name"] != "mel_spectrogram" || in[0]["type"] != "tensor" {
		t.Errorf("signature inputs %q: %v", ml.Signature.Inputs, err)
	}
	ex, _ := os.ReadFile(filepath.Join(dir, "input_example.json"))
	if string(ex) != `{"mel_spectrogram":[[[[1,2,3]],[[4,5,6]]]]}` {
		t.Errorf("input example %s", ex)
	}
	req, _ := os.ReadFile(filepath.Join(dir, "requirements.txt"))
	for _, want := range []string{"onnx==" + ONNXPackageVersion, "onnxruntime==" + ONNXRuntimePackageVersion} {
		if !strings.Contains(string(req), want) {
			t.Errorf("requirements.txt %q lacks %s", req, want)
		}
	}
	if err := WriteMLflowModel(dir, MLflowModel{ONNXFile: onnxFile}); err == nil {
		t.Error("no signature: want an error")
	}
}

// TestClientURIUserinfo: user-info in the tracking URI is sent as basic
// auth and never part of the client's URI (reports, logs, replay state).
func TestClientURIUserinfo(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Write([]byte(`{"experiment": {"experiment_id": "1", "name": "e"}}`))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("alice", "s3cr3t")
	c, err := NewClient(u.String(), ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.URI() != srv.URL {
		t.Errorf("URI() = %q, want %q", c.URI(), srv.URL)
	}
	if _, err := c.ExperimentByName(context.Background(), "e"); err != nil {
		t.Fatal(err)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cr3t")); auth != want {
		t.Errorf("Authorization %q, want %q", auth, want)
	}
	if _, err := NewClient("ftp://alice:s3cr3t@h:1", ClientOptions{}); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %v must not show the password", err)
	}
	if err := (Options{URI: "ftp://alice:s3cr3t@h:1", Experiment: "e", RegisteredModel: "m", TimeoutS: 1}).Validate(); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %v must not show the password", err)
	}
}
