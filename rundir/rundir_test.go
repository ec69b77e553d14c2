package rundir

import (
	"encoding/json"
	"os"
	"testing"
)

func TestSummaryUpdate(t *testing.T) {
	dir := t.TempDir()
	called := false
	if err := UpdateSummary(dir, func(*Summary) error { called = true; return nil }); err != nil || called {
		t.Fatalf("update without a summary: err %v, edit called %v; want a no-op", err, called)
	}
	if err := WriteSummary(dir, &Summary{Preset: "cpu", Val: EvalMetrics{N: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := UpdateSummary(dir, func(s *Summary) error { s.OnnxParity = &Parity{Pass: true}; return nil }); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Preset != "cpu" || s.Val.N != 3 || s.OnnxParity == nil || !s.OnnxParity.Pass || s.Tracking != nil {
		t.Errorf("summary after update: %+v", s)
	}
	b, _ := os.ReadFile(Path(dir, SummaryFile))
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"run_dir", "preset", "val", "onnx_parity"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q: %s", SummaryFile, k, b)
		}
	}
	if _, ok := m["tracking"]; ok {
		t.Errorf("%s has an empty tracking section: %s", SummaryFile, b)
	}
}

func TestModelCardUpdate(t *testing.T) {
	dir := t.TempDir()
	if err := UpdateModelCard(dir, func(*ModelCard) error { return nil }); err == nil {
		t.Error("updating a missing model card: want an error")
	}
	loss := 0.5
	if err := WriteModelCard(dir, &ModelCard{ModelType: "localization-net", Opset: 14, InferenceMetrics: &InferenceMetrics{ValLoss: &loss}}); err != nil {
		t.Fatal(err)
	}
	if err := UpdateModelCard(dir, func(m *ModelCard) error {
		m.InferenceMetrics = &InferenceMetrics{Date: "d", Rows: []BenchRow{{Batch: 1}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m, err := ReadModelCard(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Opset != 14 || m.InferenceMetrics.ValLoss != nil || len(m.InferenceMetrics.Rows) != 1 {
		t.Errorf("model card after update: %+v %+v", m, m.InferenceMetrics)
	}
}
