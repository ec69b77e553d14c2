package trainer

import (
	"strings"
	"testing"
)

// TestBaselineSigmasAndNA: a baseline with sigmas gets its 1-sigma
// coverage; an n/a one is a row with its reason, in no metric.
func TestBaselineSigmasAndNA(t *testing.T) {
	y := []float32{45, 8, 45, 8}
	pos := []float32{45.1, 8, 45, 8.5}
	sigma := []float32{0.2, 0.2, 0.2, 0.2}
	m := Evaluate(y, pos, sigma, []Baseline{
		{Name: "oracle", Positions: pos, Sigmas: sigma},
		{Name: "fingerprint", NA: "no training sessions"},
	})
	if len(m.Baselines) != 2 || m.Baselines[0].Within1Sigma == nil || *m.Baselines[0].Within1Sigma != 0.5 {
		t.Fatalf("baselines %+v", m.Baselines)
	}
	if b := m.Baselines[1]; b.NA == "" || b.KmMedian != -1 {
		t.Errorf("n/a baseline %+v", b)
	}
	flat := EpochMetrics{Val: m}.Flat()
	if _, ok := flat["val/baseline_fingerprint_km_median"]; ok {
		t.Error("an n/a baseline has metrics")
	}
	if v, ok := flat["val/baseline_oracle_within_1sigma"]; !ok || v.(float64) != 0.5 {
		t.Errorf("val/baseline_oracle_within_1sigma = %v", v)
	}
	var b strings.Builder
	if err := WriteEvalTable(&b, m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fingerprint n/a: no training sessions", "50.0%"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	d := Data{Train: Split{X: make([]float32, 2*7*128*32), Y: y}, Val: Split{X: make([]float32, 2*7*128*32), Y: y},
		ValBaselines: []Baseline{{Name: "fingerprint", NA: "x"}}}
	if err := d.Validate(); err != nil {
		t.Errorf("data with an n/a baseline: %v", err)
	}
}
