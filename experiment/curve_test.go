package experiment

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLearningCurve: two nested sizes on the smoke world; every point is
// judged on the same validation sessions, the fitted estimators are fitted
// on the point's own sessions (their setup says how many), the oracle is
// the same at every size (computed once), and the files are written.
func TestLearningCurve(t *testing.T) {
	cfg := smokeConfig(t, "train.epochs=2")
	if _, err := Simulate(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "curve")
	var log strings.Builder
	c, err := LearningCurve(context.Background(), cfg, CurveOptions{Sizes: []int{29, 16}, OutDir: out, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(c.Points) != 2 || c.Points[0].TrainSessions != 16 || c.Points[1].TrainSessions != 29 {
		t.Fatalf("points %+v, want sizes 16 then 29", c.Points)
	}
	if !strings.Contains(log.String(), "oracle reused") {
		t.Errorf("the oracle was not reused for the second size:\n%s", log.String())
	}
	var o1, o2 float64
	for i, p := range c.Points {
		if p.Network.KmMedian <= 0 {
			t.Errorf("size %d: network median %g", p.TrainSessions, p.Network.KmMedian)
		}
		m, ok := p.median(EstimatorOracle)
		if !ok {
			t.Fatalf("size %d: no oracle: %+v", p.TrainSessions, p.Estimators)
		}
		if i == 0 {
			o1 = m
		} else {
			o2 = m
		}
		if _, ok := p.median(EstimatorFingerprint); !ok {
			t.Errorf("size %d: no fingerprint: %+v", p.TrainSessions, p.Estimators)
		}
		if _, err := os.Stat(filepath.Join(p.RunDir, "metrics.jsonl")); err != nil {
			t.Errorf("size %d: %v", p.TrainSessions, err)
		}
	}
	if o1 != o2 {
		t.Errorf("oracle median %g at 16 sessions, %g at 29: it does not depend on the training sessions", o1, o2)
	}
	for _, f := range []string{CurveJSON, CurveTable, CurvePlot} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, CurveJSON))
	if err != nil {
		t.Fatal(err)
	}
	var back Curve
	if err := json.Unmarshal(b, &back); err != nil || len(back.Points) != 2 || back.ValSessions != c.ValSessions {
		t.Errorf("curve.json: %v, %+v", err, back)
	}
	table, _ := os.ReadFile(filepath.Join(out, CurveTable))
	if !strings.Contains(string(table), "| 16 |") || !strings.Contains(string(table), "| 29 |") {
		t.Errorf("curve.md lacks the sizes:\n%s", table)
	}
	if _, err := LearningCurve(context.Background(), cfg, CurveOptions{Sizes: []int{10000}, OutDir: out}); err == nil || !strings.Contains(err.Error(), "size 10000") {
		t.Errorf("size beyond the training split: %v, want an error naming it", err)
	}
}
