package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/heimdall-sdr/trainer/tracking/mlflowtest"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/tracking"
)

func formatHex(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b)
}

func readSummaryTracking(t *testing.T, runDir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	tr, _ := m["tracking"].(map[string]any)
	if tr == nil {
		t.Fatalf("summary.json has no tracking section: %s", b)
	}
	return tr
}

// TestTrainTrackedInMLflow: a smoke training run tracked in a real MLflow
// server has its params, tags, per-epoch metrics and artifacts there, is
// FINISHED, and (when the ONNX export ran) its model is registered in Staging.
func TestTrainTrackedInMLflow(t *testing.T) {
	uri := mlflowtest.URI(t)
	exp, model := "heimdall-test-train-"+formatHex(rand.Uint32()), "heimdall-localization-onnx-test-"+formatHex(rand.Uint32())
	// A generous parity limit: this test is about tracking, not about how
	// well a 2-epoch smoke model exports.
	cfg := smokeConfig(t, "train.epochs=2", "export.max_mae=0.01",
		"tracking.uri="+uri, "tracking.experiment="+exp, "tracking.registered_model="+model)
	var log strings.Builder
	res, err := Train(context.Background(), cfg, TrainOptions{SimulateIfEmpty: true, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	r := res.Tracking
	if r == nil || r.Failed || r.RunID == "" || r.Backend != uri {
		t.Fatalf("tracking report %+v\n%s", r, log.String())
	}
	c, err := tracking.NewClient(uri, tracking.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run, err := c.GetRun(ctx, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.Status != tracking.StatusFinished || run.Info.RunName != filepath.Base(res.RunDir) || !strings.HasPrefix(run.Info.RunName, "rf-localization_") {
		t.Errorf("run info %+v", run.Info)
	}
	params := map[string]string{}
	for _, p := range run.Data.Params {
		params[p.Key] = p.Value
	}
	for k, v := range map[string]string{"epochs": "2", "batch_size": "8", "optimizer": "AdamW", "loss_function": "GaussianNLL",
		"validation_split": "0.25", "backbone": "cpu", "backbone_widths": "[8,16]", "train.learning_rate": "0.003", "features.n_mels": "128"} {
		if params[k] != v {
			t.Errorf("param %s = %q, want %q", k, params[k], v)
		}
	}
	for _, k := range []string{"train_sessions", "val_sessions", "param_count", "input_shape", "weight_decay"} {
		if params[k] == "" {
			t.Errorf("param %s missing", k)
		}
	}
	tags := map[string]string{}
	for _, tg := range run.Data.Tags {
		tags[tg.Key] = tg.Value
	}
	for k, v := range map[string]string{"phase": "training", "service": "training", "model": "LocalizationNet", "backend": res.Backend} {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}
	hist, err := c.MetricHistory(ctx, r.RunID, "val/loss")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Step == hist[1].Step {
		t.Errorf("val/loss history: %+v", hist)
	}
	if h, err := c.MetricHistory(ctx, r.RunID, "system/samples_per_s"); err != nil || len(h) != 2 {
		t.Errorf("system/samples_per_s history: %+v %v", h, err)
	}
	root, err := c.ListArtifacts(ctx, r.RunID, "")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range root {
		have[f.Path] = true
	}
	for _, want := range []string{"config.yaml", "metrics.jsonl", "summary.json", "checkpoints"} {
		if !have[want] {
			t.Errorf("artifacts lack %s: %+v", want, root)
		}
	}
	if tr := readSummaryTracking(t, res.RunDir); tr["failed"] != false || tr["run_id"] != r.RunID {
		t.Errorf("summary.json tracking: %v", tr)
	}
	if _, err := os.Stat(filepath.Join(res.RunDir, "model.onnx")); err != nil {
		t.Logf("no model.onnx (export off or no ONNX Runtime): registration not checked here (tracking tests cover it)")
		return
	}
	mv, err := c.ModelVersionByAlias(ctx, model, "staging")
	if err != nil {
		t.Fatalf("registered model: %v\n%s", err, log.String())
	}
	if mv.CurrentStage != tracking.StageStaging || mv.RunID != r.RunID || !strings.HasSuffix(mv.Source, "/artifacts/model") {
		t.Errorf("model version %+v", mv)
	}
}

// TestTrainTrackingServerDown: with the MLflow server unreachable,
// training completes, the summary says tracking failed and how to replay,
// and replaying to the running server delivers the whole run.
func TestTrainTrackingServerDown(t *testing.T) {
	uri := mlflowtest.URI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	_ = l.Close()
	exp := "heimdall-test-down-" + formatHex(rand.Uint32())
	cfg := smokeConfig(t, "train.epochs=2", "tracking.uri="+down, "tracking.experiment="+exp, "export.enabled=false")
	var log strings.Builder
	res, err := Train(context.Background(), cfg, TrainOptions{SimulateIfEmpty: true, Log: &log})
	if err != nil {
		t.Fatalf("training must not fail when tracking does: %v\n%s", err, log.String())
	}
	if res.Tracking == nil || !res.Tracking.Failed || !strings.Contains(log.String(), "heimdall tracking replay") {
		t.Fatalf("report %+v\n%s", res.Tracking, log.String())
	}
	if tr := readSummaryTracking(t, res.RunDir); tr["failed"] != true || !strings.Contains(tr["replay"].(string), res.RunDir) {
		t.Errorf("summary.json tracking: %v", tr)
	}
	for _, f := range []string{"run.json", "params.json", "tags.json", "metrics.jsonl", "artifacts.jsonl", "replay-state.json"} {
		if _, err := os.Stat(filepath.Join(res.RunDir, tracking.Dir, f)); err != nil {
			t.Errorf("buffer lacks %s: %v", f, err)
		}
	}

	cfg.Tracking.URI = uri
	for i := range 2 {
		s, _, err := ReplayTracking(context.Background(), cfg, res.RunDir)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (!s.RunCreated || s.Metrics == 0 || s.Artifacts == 0 || s.StatusSent != tracking.StatusFinished) {
			t.Errorf("first replay: %+v", s)
		}
		if i == 1 && s.Metrics+s.Artifacts+s.Params+s.Tags != 0 {
			t.Errorf("second replay sent %+v", s)
		}
		if tr := readSummaryTracking(t, res.RunDir); tr["failed"] != false || tr["run_id"] != s.RunID || tr["failed_before_replay"] == nil {
			t.Errorf("summary.json tracking after replay: %v", tr)
		}
		if i == 1 {
			c, _ := tracking.NewClient(uri, tracking.ClientOptions{})
			run, err := c.GetRun(context.Background(), s.RunID)
			if err != nil || run.Info.Status != tracking.StatusFinished {
				t.Errorf("replayed run %+v %v", run, err)
			}
			hist, err := c.MetricHistory(context.Background(), s.RunID, "val/loss")
			if err != nil || len(hist) != 2 {
				t.Errorf("val/loss after two replays: %+v %v", hist, err)
			}
		}
	}
}

// TestTrackingEndStatus: the run ends FINISHED, FAILED or KILLED (Ctrl-C)
// as training did; checked on the local tracker (the default).
func TestTrackingEndStatus(t *testing.T) {
	cfg := smokeConfig(t)
	for _, tc := range []struct {
		name   string
		err    error
		cancel bool
		want   string
	}{
		{"finished", nil, false, tracking.StatusFinished},
		{"failed", errors.New("trainer: loss is NaN"), false, tracking.StatusFailed},
		{"killed", fmt.Errorf("trainer: stopped after step 3: %w", context.Canceled), true, tracking.StatusKilled},
	} {
		runDir := filepath.Join(t.TempDir(), "rf-localization_20260101_000000")
		var log strings.Builder
		ctx, cancel := context.WithCancel(context.Background())
		tk, err := startTracking(ctx, cfg, runDir, nil, "go", &log)
		if err != nil {
			t.Fatal(err)
		}
		if tc.cancel {
			cancel()
		}
		r := tk.finish(ctx, nil, tc.err)
		cancel()
		if r == nil || r.Backend != "local" || r.Failed {
			t.Errorf("%s: report %+v", tc.name, r)
		}
		b, err := os.ReadFile(filepath.Join(runDir, tracking.Dir, tracking.RunFile))
		if err != nil {
			t.Fatal(err)
		}
		var run struct {
			Status  string `json:"status"`
			RunName string `json:"run_name"`
		}
		if err := json.Unmarshal(b, &run); err != nil {
			t.Fatal(err)
		}
		if run.Status != tc.want || run.RunName != "rf-localization_20260101_000000" {
			t.Errorf("%s: run.json %s", tc.name, b)
		}
		if !strings.Contains(log.String(), "tracking: local") {
			t.Errorf("%s: log %q", tc.name, log.String())
		}
	}
}
