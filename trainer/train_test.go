package trainer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"

	"github.com/heimdall-sdr/trainer/rundir"
)

func TestTrainSmoke(t *testing.T) {
	backend := testBackend(t)
	data := synthData(64, 32)
	dir := t.TempDir()
	var log, progress bytes.Buffer
	var epochs []EpochMetrics
	s, err := Train(context.Background(), backend, data, tinyModel(), tinyTrain(), RunOptions{
		RunDir: dir, Log: &log, Progress: &progress,
		OnEpoch: func(e EpochMetrics) error { epochs = append(epochs, e); return nil },
	})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + s.String())
	if len(epochs) != 3 {
		t.Fatalf("OnEpoch called %d times, want 3", len(epochs))
	}
	// Loss decreases: train and val loss of the last epoch below the first.
	if first, last := epochs[0], epochs[2]; !(last.Train.Loss < first.Train.Loss) || !(last.Val.Loss < first.Val.Loss) {
		t.Errorf("loss did not decrease: train %.4f -> %.4f, val %.4f -> %.4f",
			first.Train.Loss, last.Train.Loss, first.Val.Loss, last.Val.Loss)
	}
	if s.Steps != 24 || s.StepsPerEpoch != 8 || s.StopReason != "completed" {
		t.Errorf("summary steps %d spe %d reason %q, want 24, 8, completed", s.Steps, s.StepsPerEpoch, s.StopReason)
	}
	if len(s.Val.Baselines) != 2 || s.Val.Baselines[1].Name != "least_squares" {
		t.Errorf("baselines missing from summary: %+v", s.Val.Baselines)
	}
	for _, f := range []string{ConfigFile, MetricsFile, rundir.SummaryFile, filepath.Join(CheckpointsDir, IndexFile),
		filepath.Join(PlotsDir, "loss.png"), filepath.Join(PlotsDir, "error_cdf.png"), filepath.Join(PlotsDir, "positions.png")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	lines := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, MetricsFile))), "\n")
	if len(lines) != 3 {
		t.Fatalf("metrics.jsonl has %d lines, want 3", len(lines))
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &line); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"epoch", "step", "lr", "samples_per_s", "epoch_seconds", "train/loss", "train/mae",
		"val/loss", "val/position_error_mean", "val/within_2sigma", "val/baseline_centroid_km_mean"} {
		if _, ok := line[k]; !ok {
			t.Errorf("metrics line lacks %q: %v", k, line)
		}
	}
	if !strings.Contains(progress.String(), "loss") {
		t.Errorf("progress output has no loss: %q", progress.String())
	}

	// Checkpoints: keep_best 3 + last, all listed and on disk.
	ix, err := readIndex(filepath.Join(dir, CheckpointsDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Checkpoints) == 0 || ix.Best == nil {
		t.Fatalf("index has no checkpoints: %+v", ix)
	}
	for _, c := range ix.Checkpoints {
		if _, err := os.Stat(filepath.Join(dir, CheckpointsDir, c.Name+checkpoint.BinDataSuffix)); err != nil {
			t.Errorf("checkpoint %s: %v", c.Name, err)
		}
	}

	// Inference from the run dir reproduces the summary and the param count.
	m, err := LoadModel(backend, dir)
	if err != nil {
		t.Fatal(err)
	}
	pos, sigma, err := m.Predict(data.Val.X, data.Val.Len())
	if err != nil {
		t.Fatal(err)
	}
	got := Evaluate(data.Val.Y, pos, sigma, nil)
	if math.Abs(got.Loss-s.Val.Loss) > 1e-5 {
		t.Errorf("Predict val loss %.6f, summary %.6f", got.Loss, s.Val.Loss)
	}
	for i, v := range sigma {
		if v < SigmaMinDeg || v > SigmaMaxDeg {
			t.Fatalf("sigma[%d] = %g outside [%g, %g]", i, v, SigmaMinDeg, SigmaMaxDeg)
		}
	}
	if n, want := TrainableParams(m.Store()), ParamCountShape(tinyModel(), testShape); n != want {
		t.Errorf("trainable params in store %d, ParamCount %d", n, want)
	}

	// A second fresh run into the same directory is refused.
	if _, err := Train(context.Background(), backend, data, tinyModel(), tinyTrain(), RunOptions{RunDir: dir}); err == nil ||
		!strings.Contains(err.Error(), "Resume") {
		t.Errorf("fresh run over existing checkpoints: err = %v, want a Resume hint", err)
	}
}

// TestResumeMatchesStraightRun trains 24 steps straight and 12 + resume 12
// (stopping mid-epoch) and compares the final variables.
func TestResumeMatchesStraightRun(t *testing.T) {
	backend := testBackend(t)
	data := synthData(64, 16)
	mcfg, tcfg := tinyModel(), tinyTrain()
	ctx := context.Background()

	straight := t.TempDir()
	sA, err := Train(ctx, backend, data, mcfg, tcfg, RunOptions{RunDir: straight, NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}

	split := t.TempDir()
	first := tcfg
	first.MaxSteps = 12
	s1, err := Train(ctx, backend, data, mcfg, first, RunOptions{RunDir: split, NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	if s1.Steps != 12 || s1.StopReason != "max_steps" {
		t.Fatalf("first half: steps %d reason %q, want 12 max_steps", s1.Steps, s1.StopReason)
	}
	var logB bytes.Buffer
	sB, err := Train(ctx, backend, data, mcfg, tcfg, RunOptions{RunDir: split, Resume: true, NoPlots: true, Log: &logB})
	t.Log(logB.String())
	if err != nil {
		t.Fatal(err)
	}
	if sB.Steps != sA.Steps {
		t.Fatalf("resumed run ended at step %d, straight at %d", sB.Steps, sA.Steps)
	}
	// Compare the last evaluation (step 24) of both runs. The summaries'
	// best checkpoints may differ: the split run has one more evaluation
	// (at its stop step 12), which can be its best.
	if a, b := lastValLoss(t, straight), lastValLoss(t, split); math.Abs(a-b) > 1e-4 {
		t.Errorf("last val loss straight %.6f, resumed %.6f", a, b)
	}
	a, b := latestVariables(t, straight), latestVariables(t, split)
	if len(a) == 0 {
		t.Fatal("no variables in the straight run's checkpoint")
	}
	compared := 0
	for name, va := range a {
		if strings.Contains(name, "uuid") { // Metric scratch scopes have random names.
			continue
		}
		vb, ok := b[name]
		if !ok {
			t.Errorf("variable %s missing after resume", name)
			continue
		}
		for i := range va {
			if d := math.Abs(va[i] - vb[i]); d > 1e-4*(1+math.Abs(va[i])) {
				t.Errorf("variable %s[%d]: straight %g, resumed %g", name, i, va[i], vb[i])
				break
			}
		}
		compared++
	}
	t.Logf("compared %d variables; final val loss %.6f", compared, sA.Val.Loss)
}

// latestVariables loads every variable of the latest checkpoint in a run.
func latestVariables(t *testing.T, runDir string) map[string][]float64 {
	t.Helper()
	store := model.NewStore()
	if _, err := checkpoint.Load(store).Dir(filepath.Join(runDir, CheckpointsDir)).Immediate().Done(); err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for v := range store.IterVariables() {
		val, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		out[v.Path()] = flatFloat64(t, val)
	}
	return out
}

func flatFloat64(t *testing.T, v *tensors.Tensor) []float64 {
	t.Helper()
	var out []float64
	switch v.DType().String() {
	case "Float32":
		for _, x := range tensors.MustCopyFlatData[float32](v) {
			out = append(out, float64(x))
		}
	case "Float64":
		out = tensors.MustCopyFlatData[float64](v)
	case "Int64":
		for _, x := range tensors.MustCopyFlatData[int64](v) {
			out = append(out, float64(x))
		}
	}
	return out
}

func TestNaNLossStopsRun(t *testing.T) {
	backend := testBackend(t)
	data := synthData(32, 8)
	dir := t.TempDir()
	tcfg := tinyTrain()
	tcfg.MaxSteps = 4 // One epoch (32/8), then a checkpoint.
	if _, err := Train(context.Background(), backend, data, tinyModel(), tcfg, RunOptions{RunDir: dir, NoPlots: true}); err != nil {
		t.Fatal(err)
	}
	ix, err := readIndex(filepath.Join(dir, CheckpointsDir))
	if err != nil {
		t.Fatal(err)
	}
	good := ix.latest().Name

	bad := data
	bad.Train.X = append([]float32(nil), data.Train.X...)
	for i := range bad.Train.X {
		bad.Train.X[i] = float32(math.NaN())
	}
	tcfg.MaxSteps = 0
	_, err = Train(context.Background(), backend, bad, tinyModel(), tcfg, RunOptions{RunDir: dir, Resume: true, NoPlots: true})
	var nf *NonFiniteLossError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNonFiniteLoss) {
		t.Fatalf("err = %v, want a NonFiniteLossError", err)
	}
	if nf.Step != 5 || nf.Phase != "train" || nf.LastCheckpoint != good {
		t.Errorf("error %+v, want step 5, train, checkpoint %s", nf, good)
	}
	if !strings.Contains(err.Error(), "step 5") || !strings.Contains(err.Error(), good) {
		t.Errorf("error message %q should name step 5 and %s", err, good)
	}
	ix2, err := readIndex(filepath.Join(dir, CheckpointsDir))
	if err != nil {
		t.Fatal(err)
	}
	if ix2.latest().Name != good {
		t.Errorf("latest checkpoint after NaN is %s, want the last good one %s", ix2.latest().Name, good)
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointsDir, good+checkpoint.BinDataSuffix)); err != nil {
		t.Errorf("last good checkpoint gone: %v", err)
	}
}

func TestEarlyStopping(t *testing.T) {
	backend := testBackend(t)
	data := synthData(32, 8)
	tcfg := tinyTrain()
	tcfg.Epochs, tcfg.Patience, tcfg.KeepBest = 30, 1, 1
	tcfg.LearningRate, tcfg.MinLearningRate = 1e-9, 1e-9 // Nothing improves after the first evaluation.
	dir := t.TempDir()
	s, err := Train(context.Background(), backend, data, tinyModel(), tcfg, RunOptions{RunDir: dir, NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.StopReason != "early_stopping" || s.Epochs >= 30 {
		t.Errorf("stop reason %q after %d epochs, want early_stopping well before 30", s.StopReason, s.Epochs)
	}
	ix, err := readIndex(filepath.Join(dir, CheckpointsDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Checkpoints) > 2 {
		t.Errorf("keep_best 1 + last kept %d checkpoints", len(ix.Checkpoints))
	}
	// Resuming an early-stopped run trains no further.
	s2, err := Train(context.Background(), backend, data, tinyModel(), tcfg, RunOptions{RunDir: dir, Resume: true, NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Steps != s.Steps {
		t.Errorf("resumed early-stopped run moved from step %d to %d", s.Steps, s2.Steps)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lastValLoss returns val/loss of the last line of RUN_DIR/metrics.jsonl.
func lastValLoss(t *testing.T, runDir string) float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatal(err)
	}
	v, ok := m["val/loss"].(float64)
	if !ok {
		t.Fatalf("no val/loss in the last line of %s", MetricsFile)
	}
	return v
}
