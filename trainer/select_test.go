package trainer

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSigmaScale: the NLL scale is sqrt(mean d^2 / 2); the coverage scale
// puts 39.3% of the samples inside their 1-sigma ellipse; with
// heavy-tailed errors (a Gaussian core plus 20% of 5x wider outliers) the
// NLL scale, widened by the tail, covers far more than 39.3%, and the
// coverage scale is the narrower one.
func TestSigmaScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 4000
	y := make([]float32, 2*n)
	pos := make([]float32, 2*n)
	sigma := make([]float32, 2*n)
	var sum float64
	for i := range 2 * n {
		s := 0.05 + 0.1*rng.Float64()
		e := rng.NormFloat64() * s * 0.5 // the model's sigma is 2x too wide for the core
		if i/2%5 == 0 {
			e *= 5
		}
		y[i], pos[i], sigma[i] = float32(45+e), 45, float32(s)
		d := (float64(y[i]) - float64(pos[i])) / float64(sigma[i])
		sum += d * d
	}
	kNLL := sigmaScale(y, pos, sigma, CalibrateNLL)
	if want := math.Sqrt(sum / (2 * n)); math.Abs(kNLL-want) > 1e-6*want {
		t.Errorf("nll scale %g, want %g", kNLL, want)
	}
	if k := sigmaScale(y, pos, sigma, ""); k != kNLL {
		t.Errorf("empty calibrate_to gave %g, want the nll scale %g", k, kNLL)
	}
	kCov := sigmaScale(y, pos, sigma, CalibrateCoverage)
	scaled := func(k float64) []float32 {
		out := make([]float32, len(sigma))
		for i, s := range sigma {
			out[i] = float32(k * float64(s))
		}
		return out
	}
	w1, _ := Calibration(y, pos, scaled(kCov))
	if math.Abs(w1-GaussianWithin1Sigma) > 0.01 {
		t.Errorf("coverage scale %g: %.3f inside 1 sigma, want %.3f", kCov, w1, GaussianWithin1Sigma)
	}
	wNLL, _ := Calibration(y, pos, scaled(kNLL))
	if kCov >= kNLL || wNLL < GaussianWithin1Sigma+0.15 {
		t.Errorf("heavy tails: coverage scale %g (nll %g, covering %.3f): want the coverage scale narrower and the nll one covering > %.2f",
			kCov, kNLL, wNLL, GaussianWithin1Sigma+0.15)
	}
	if k := sigmaScale(nil, nil, nil, CalibrateCoverage); k != 1 {
		t.Errorf("no samples: scale %g, want 1", k)
	}
}

// TestPruneBySelection: pruning keeps the best checkpoints by the
// selection criterion, which can disagree with the val loss.
func TestPruneBySelection(t *testing.T) {
	dir := t.TempDir()
	ix := &checkpointIndex{}
	// val loss falls with the epoch, the median km rises after epoch 2.
	kms := []float64{30, 20, 25, 28, 29}
	for i, km := range kms {
		name := "ckpt-" + string(rune('a'+i))
		ix.Checkpoints = append(ix.Checkpoints, CheckpointEntry{Name: name, Epoch: i + 1, ValLoss: -float64(i), ValKmMedian: km, HoldoutKmMedian: km + 1})
	}
	for _, tc := range []struct {
		by   string
		keep []string
	}{
		{SelectValLoss, []string{"ckpt-e"}},
		{SelectValKmMedian, []string{"ckpt-b", "ckpt-e"}},
		{SelectHoldoutKmMedian, []string{"ckpt-b", "ckpt-e"}},
	} {
		cp := &checkpointIndex{Checkpoints: append([]CheckpointEntry(nil), ix.Checkpoints...)}
		sub := filepath.Join(dir, tc.by)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, c := range cp.Checkpoints {
			for _, suf := range []string{".json", ".bin"} {
				if err := os.WriteFile(filepath.Join(sub, c.Name+suf), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := cp.prune(sub, 1, tc.by); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cp.Checkpoints {
			got = append(got, c.Name)
		}
		if strings.Join(got, ",") != strings.Join(tc.keep, ",") {
			t.Errorf("select_by %s: kept %v, want %v", tc.by, got, tc.keep)
		}
	}
}

// TestSelectByHoldout: with train.select_by holdout_km_median every
// evaluation logs the holdout's median km, the best checkpoint is the
// epoch with the lowest one (not necessarily the lowest val loss), the
// summary says how it was chosen, and the config check refuses what
// cannot work.
func TestSelectByHoldout(t *testing.T) {
	backend := testBackend(t)
	data := synthData(64, 16)
	tcfg := tinyTrain()
	tcfg.Epochs = 4
	tcfg.CalibrateSigma, tcfg.CalibrationHoldout = true, 0.25
	tcfg.SelectBy, tcfg.CalibrateTo = SelectHoldoutKmMedian, CalibrateCoverage
	dir := filepath.Join(t.TempDir(), "run")
	var log strings.Builder
	s, err := Train(context.Background(), backend, data, tinyModel(), tcfg, RunOptions{RunDir: dir, NoPlots: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if s.SelectedBy != SelectHoldoutKmMedian {
		t.Errorf("summary selected_by %q", s.SelectedBy)
	}
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bestEpoch, bestKm := 0, math.Inf(1)
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		lines++
		km, ok := m["holdout/km_median"].(float64)
		if !ok || km <= 0 {
			t.Fatalf("metrics line %d has no holdout/km_median: %v", lines, m)
		}
		better := km < bestKm
		if better {
			bestEpoch, bestKm = int(m["epoch"].(float64)), km
		}
		if m["best"] != better {
			t.Errorf("epoch %v: best=%v but holdout median %g vs best so far %g", m["epoch"], m["best"], km, bestKm)
		}
	}
	if lines != tcfg.Epochs {
		t.Fatalf("%d metrics lines, want %d", lines, tcfg.Epochs)
	}
	if s.BestEpoch != bestEpoch {
		t.Errorf("best epoch %d, want %d (lowest holdout median %g)", s.BestEpoch, bestEpoch, bestKm)
	}
	if !strings.Contains(log.String(), "holdout median") {
		t.Errorf("epoch lines do not show the holdout median:\n%s", log.String())
	}

	for _, tc := range []struct {
		mut  func(*TrainConfig)
		want string
	}{
		{func(c *TrainConfig) { c.SelectBy = "val_km" }, "select_by: unknown"},
		{func(c *TrainConfig) { c.CalibrationHoldout = 0 }, "select_by: holdout_km_median needs a calibration holdout"},
		{func(c *TrainConfig) { c.CalibrateTo = "quantile" }, "calibrate_to: unknown"},
		{func(c *TrainConfig) { c.CalibrateSigma, c.CalibrationHoldout, c.SelectBy = false, 0, "" }, "calibrate_to: coverage needs train.calibrate_sigma"},
	} {
		c := tcfg
		tc.mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate: %v, want %q", err, tc.want)
		}
	}
}
