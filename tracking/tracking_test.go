package tracking

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSanitizeKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"train/loss", "train/loss"},
		{"val/baseline_centroid_km_mean", "val/baseline_centroid_km_mean"},
		{"model.widths", "model.widths"},
		{"a b:c-d.e_f", "a b:c-d.e_f"},
		{"σ mean", "_ mean"},
		{"/abs//path/", "abs/path"},
		{"../x/./y", "x/y"},
		{"", "_"},
		{"ünïcode=bad,chars", "_n_code_bad_chars"},
		{strings.Repeat("k", 300), strings.Repeat("k", MaxKeyLength)},
	} {
		if got := SanitizeKey(tc.in); got != tc.want {
			t.Errorf("SanitizeKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFloatJSON(t *testing.T) {
	for _, v := range []float64{0, 1.5, -2e-7, math.NaN(), math.Inf(1), math.Inf(-1)} {
		b, err := json.Marshal(Metric{Key: "k", Value: Float(v), Timestamp: 5, Step: 7})
		if err != nil {
			t.Fatal(err)
		}
		var m Metric
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		got := float64(m.Value)
		if !(got == v || math.IsNaN(got) && math.IsNaN(v)) || m.Step != 7 || m.Timestamp != 5 {
			t.Errorf("%v -> %s -> %+v", v, b, m)
		}
	}
	var m Metric // Protobuf JSON sends int64 as strings.
	if err := json.Unmarshal([]byte(`{"key":"k","value":1,"timestamp":"1700000000000","step":"3"}`), &m); err != nil || m.Step != 3 || m.Timestamp != 1700000000000 {
		t.Errorf("string int64s: %+v %v", m, err)
	}
}

func TestProxyPath(t *testing.T) {
	for _, tc := range []struct{ uri, rel, want, err string }{
		{"mlflow-artifacts:/1/abc/artifacts", "model/model.onnx", "1/abc/artifacts/model/model.onnx", ""},
		{"mlflow-artifacts://127.0.0.1:5000/1/abc/artifacts", "a b.txt", "1/abc/artifacts/a%20b.txt", ""},
		{"mlflow-artifacts:/1/abc/artifacts", "../x", "", ". or .."},
		{"s3://bucket/1/abc/artifacts", "x", "", "--serve-artifacts"},
		{"/tmp/mlruns/1/abc/artifacts", "x", "", "--serve-artifacts"},
	} {
		got, err := proxyPath(tc.uri, tc.rel)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("proxyPath(%q, %q): err %v, want %q", tc.uri, tc.rel, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("proxyPath(%q, %q) = %q, %v; want %q", tc.uri, tc.rel, got, err, tc.want)
		}
	}
}

func TestNewClientRejectsNonHTTP(t *testing.T) {
	for _, uri := range []string{"", "./mlruns", "file:///tmp/mlruns", "sqlite:///mlflow.db", "databricks"} {
		if _, err := NewClient(uri, ClientOptions{}); err == nil {
			t.Errorf("NewClient(%q): no error", uri)
		}
	}
}

// TestLocalLayout checks the documented RUN_DIR/tracking layout.
func TestLocalLayout(t *testing.T) {
	ctx := context.Background()
	runDir := t.TempDir()
	art := filepath.Join(runDir, "config.yaml")
	if err := os.WriteFile(art, []byte("train:\n  epochs: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLocal(runDir, RunSpec{Tags: map[string]string{"phase": "training"}})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.LogParams(ctx, map[string]string{"epochs": "2", "bad key=": strings.Repeat("x", 7000)}))
	must(l.LogParams(ctx, map[string]string{"epochs": "3"})) // Immutable: recorded as a tag.
	must(l.SetTags(ctx, map[string]string{"model": "LocalizationNet"}))
	must(l.LogMetrics(ctx, []Metric{{Key: "train/loss", Value: 1.5, Step: 1}, {Key: "val/loss", Value: Float(math.NaN()), Step: 1}}))
	must(l.LogArtifact(ctx, art, "config.yaml"))
	if _, err := l.RegisterModel(ctx, ModelSpec{ArtifactPath: "model/model.onnx", Stage: StageStaging}); err != nil {
		t.Fatal(err)
	}
	must(l.End(ctx, StatusFinished))

	j, err := readJournal(runDir)
	must(err)
	if !strings.HasPrefix(j.run.RunName, "rf-localization_") || len(j.run.RunName) != len("rf-localization_20060102_150405") ||
		j.run.Experiment != DefaultExperiment || j.run.Status != StatusFinished || j.run.EndTime < j.run.StartTime {
		t.Errorf("run.json: %+v", j.run)
	}
	if j.params["epochs"] != "2" || len(j.params["bad key_"]) != MaxParamValLength || j.tags["param_changed.epochs"] != "3" {
		t.Errorf("params %v / tags %v", j.params, j.tags)
	}
	if j.tags["phase"] != "training" || j.tags["model"] != "LocalizationNet" {
		t.Errorf("tags: %v", j.tags)
	}
	if len(j.metrics) != 2 || j.metrics[0].Timestamp == 0 || !math.IsNaN(float64(j.metrics[1].Value)) {
		t.Errorf("metrics: %+v", j.metrics)
	}
	if len(j.artifacts) != 1 || j.artifacts[0].Src != "config.yaml" || j.artifacts[0].Size != 19 || len(j.artifacts[0].SHA256) != 64 {
		t.Errorf("artifacts: %+v", j.artifacts)
	}
	if len(j.models) != 1 || j.models[0].Name != DefaultRegisteredModel {
		t.Errorf("models: %+v", j.models)
	}
	if r := l.Report(); r.Backend != "local" || r.Failed {
		t.Errorf("report: %+v", r)
	}

	// A torn last line (crash while appending) is ignored.
	f, err := os.OpenFile(filepath.Join(runDir, Dir, MetricsFile), os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	_, _ = f.Write([]byte(`{"key":"x","val`))
	must(f.Close())
	j, err = readJournal(runDir)
	must(err)
	if len(j.metrics) != 2 {
		t.Errorf("torn line: %d metrics", len(j.metrics))
	}

	// Reopening (resume) keeps the run and makes it RUNNING again.
	l2, err := OpenLocal(runDir, RunSpec{Name: "other"})
	must(err)
	if l2.run.RunName != j.run.RunName || l2.run.Status != StatusRunning {
		t.Errorf("reopened: %+v", l2.run)
	}
	b, err := os.ReadFile(filepath.Join(runDir, Dir, ParamsFile))
	must(err)
	if !bytes.Contains(b, []byte(`"epochs": "2"`)) {
		t.Errorf("params.json: %s", b)
	}
}

func TestTornLineThenAppend(t *testing.T) {
	ctx := context.Background()
	runDir := t.TempDir()
	l, err := OpenLocal(runDir, RunSpec{})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(runDir, Dir, MetricsFile)
	if err := os.WriteFile(p, []byte(`{"key":"a","value":1,"timestamp":1,"step":1}`+"\n"+`{"key":"x","val`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.LogMetrics(ctx, []Metric{{Key: "b", Value: 2, Step: 2}}); err != nil {
		t.Fatal(err)
	}
	j, err := readJournal(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.metrics) != 2 || j.metrics[0].Key != "a" || j.metrics[1].Key != "b" {
		t.Errorf("metrics: %+v", j.metrics)
	}
}

func TestResolveURI(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name, configured    string
		env                 map[string]string
		want, source, errIs string
	}{
		{name: "none", want: "", source: ""},
		{name: "config wins", configured: "http://a:1", env: map[string]string{"HEIMDALL_MLFLOW_TRACKING_URI": "http://b:2", "MLFLOW_TRACKING_URI": "http://c:3"}, want: "http://a:1", source: "tracking.uri"},
		{name: "heimdall env", env: map[string]string{"HEIMDALL_MLFLOW_TRACKING_URI": "http://b:2", "MLFLOW_TRACKING_URI": "http://c:3"}, want: "http://b:2", source: "HEIMDALL_MLFLOW_TRACKING_URI"},
		{name: "mlflow env", env: map[string]string{"MLFLOW_TRACKING_URI": "https://c"}, want: "https://c", source: "MLFLOW_TRACKING_URI"},
		{name: "file store", env: map[string]string{"MLFLOW_TRACKING_URI": "./mlruns"}, source: "MLFLOW_TRACKING_URI", errIs: "only an http"},
	} {
		got, src, err := ResolveURI(tc.configured, env(tc.env))
		if tc.errIs != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errIs) || src != tc.source {
				t.Errorf("%s: %q %q %v, want error %q", tc.name, got, src, err, tc.errIs)
			}
			continue
		}
		if err != nil || got != tc.want || src != tc.source {
			t.Errorf("%s: %q %q %v, want %q from %q", tc.name, got, src, err, tc.want, tc.source)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.URI = "sqlite:///x.db"
	if err := o.Validate(); err == nil || !strings.HasPrefix(err.Error(), "tracking.uri:") {
		t.Errorf("sqlite uri: %v", err)
	}
	o = DefaultOptions()
	o.Stage = "staging"
	if err := o.Validate(); err == nil || !strings.HasPrefix(err.Error(), "tracking.stage:") {
		t.Errorf("lower-case stage: %v", err)
	}
}

func TestClientCredentialsAndErrors(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error_code":"PERMISSION_DENIED","message":"no"}`))
	}))
	defer srv.Close()
	t.Setenv("MLFLOW_TRACKING_TOKEN", "")
	t.Setenv("MLFLOW_TRACKING_USERNAME", "u")
	t.Setenv("MLFLOW_TRACKING_PASSWORD", "p")
	c, err := NewClient(srv.URL, DefaultOptions().ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateRun(context.Background(), CreateRunRequest{ExperimentID: "0"})
	if got != "Basic dTpw" {
		t.Errorf("Authorization %q", got)
	}
	if !IsCode(err, "PERMISSION_DENIED") || !strings.Contains(err.Error(), "POST /api/2.0/mlflow/runs/create: HTTP 403 PERMISSION_DENIED: no") {
		t.Errorf("error: %v", err)
	}
}
