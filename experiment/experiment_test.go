package experiment

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/configs"
)

// smokeConfig loads the shipped configs/smoke.yaml with every path moved
// into a temporary directory.
func smokeConfig(t *testing.T, set ...string) config.Config {
	t.Helper()
	dir := t.TempDir()
	b, err := configs.FS.ReadFile("smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "smoke.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	set = append([]string{
		"store.root=" + filepath.Join(dir, "data"),
		"run.dir=" + filepath.Join(dir, "runs"),
		"dataset.cache_dir=" + filepath.Join(dir, "cache"),
	}, set...)
	cfg, err := config.Load(config.Options{File: file, Set: set, Env: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func readMetrics(t *testing.T, runDir string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(runDir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics.jsonl: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// TestSmokeTrain is the end-to-end smoke run of `heimdall train --simulate
// --config configs/smoke.yaml`: simulate, featurise, train a few epochs.
func TestSmokeTrain(t *testing.T) {
	cfg := smokeConfig(t, "run.name=smoke", "train.epochs=4")
	var log strings.Builder
	res, err := Train(context.Background(), cfg, TrainOptions{SimulateIfEmpty: true, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, want := range []string{"backend:", "dataset:", "estimators on val", "run directory"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	for _, f := range []string{"config.yaml", "dataset.txt", "metrics.jsonl", "summary.json"} {
		if _, err := os.Stat(filepath.Join(res.RunDir, f)); err != nil {
			t.Errorf("run directory lacks %s: %v", f, err)
		}
	}
	ckpts, _ := filepath.Glob(filepath.Join(res.RunDir, "checkpoints", "*"))
	if len(ckpts) == 0 {
		t.Fatal("no checkpoint written")
	}
	m := readMetrics(t, res.RunDir)
	if len(m) != 4 {
		t.Fatalf("want 4 epochs of metrics, got %d", len(m))
	}
	first, last := m[0]["train/loss"].(float64), m[len(m)-1]["train/loss"].(float64)
	if !(last < first) {
		t.Errorf("training loss did not decrease: epoch 1 %.4f, epoch %d %.4f", first, len(m), last)
	}
	if res.Summary.Val.N == 0 || res.Baseline.LeastSquares.N != res.Summary.Val.N {
		t.Errorf("val sessions: model %d, baseline %d", res.Summary.Val.N, res.Baseline.LeastSquares.N)
	}
	// Every estimator is reported beside the model, the oracle from the
	// world the simulated sessions record.
	var names []string
	for _, b := range res.Summary.Val.Baselines {
		names = append(names, b.Name)
		if b.NA != "" {
			t.Errorf("estimator %s n/a on simulated sessions: %s", b.Name, b.NA)
		}
	}
	if got := strings.Join(names, ","); got != "centroid,least_squares,calibrated_least_squares,fingerprint,oracle" {
		t.Errorf("summary estimators %s", got)
	}
	if e := res.Summary.Estimators; e == nil || e.OracleWorld == "" || e.Fingerprint == nil || e.FitSessions == 0 {
		t.Errorf("summary estimators setup %+v", e)
	}
	if _, ok := m[len(m)-1]["val/baseline_oracle_km_median"]; !ok {
		t.Error("metrics lack val/baseline_oracle_km_median")
	}
	// The saved config loads back as the run's configuration.
	again, err := config.Load(config.Options{File: filepath.Join(res.RunDir, "config.yaml"), Env: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("saved config.yaml does not load: %v", err)
	}
	if again.Train.Epochs != 4 || again.Model.Widths[0] != cfg.Model.Widths[0] {
		t.Errorf("saved config differs: %+v", again.Train)
	}

	// A second run on the same store reuses the data and the feature cache.
	cfg.Run.Name = "smoke2"
	cfg.Train.Epochs = 1
	res2, err := Train(context.Background(), cfg, TrainOptions{SimulateIfEmpty: true})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Dataset.CacheMisses != 0 || res2.Dataset.CacheHits != res.Dataset.Loaded {
		t.Errorf("second run: cache hits %d misses %d", res2.Dataset.CacheHits, res2.Dataset.CacheMisses)
	}
	// The same run name again is refused rather than overwritten.
	if _, err := Train(context.Background(), cfg, TrainOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("reusing a run name: %v", err)
	}
}

// TestSmokeResume stops a smoke run after a few steps and resumes it from
// its checkpoint with the configuration saved in the run directory.
func TestSmokeResume(t *testing.T) {
	cfg := smokeConfig(t, "run.name=resume", "train.epochs=3", "train.max_steps=4")
	res, err := Train(context.Background(), cfg, TrainOptions{SimulateIfEmpty: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Steps != 4 || res.Summary.StopReason != "max_steps" {
		t.Fatalf("first leg: steps %d, stop %q", res.Summary.Steps, res.Summary.StopReason)
	}
	saved, err := config.Load(config.Options{File: filepath.Join(res.RunDir, "config.yaml"), Set: []string{"train.max_steps=0"}, Env: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	res2, err := Train(context.Background(), saved, TrainOptions{ResumeDir: res.RunDir})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(3 * res.Summary.StepsPerEpoch)
	if res2.Summary.Steps != want || res2.Summary.StopReason != "completed" {
		t.Fatalf("resumed run: steps %d (want %d), stop %q", res2.Summary.Steps, want, res2.Summary.StopReason)
	}
	m := readMetrics(t, res.RunDir)
	if got := m[len(m)-1]["step"].(float64); int64(got) != want {
		t.Errorf("metrics continue to step %v, want %d", got, want)
	}
}
