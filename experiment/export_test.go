package experiment

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/internal/testenv"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/trainer"
)

func needORT(t *testing.T) {
	t.Helper()
	testenv.RequireORT(t, onnx.InitRuntime())
}

// TestTrainExportsAndPredicts: train writes model.onnx with passing parity;
// export re-exports; predict on a simulated validation session gives the
// GoMLX model's answer (same features) and its validation error.
func TestTrainExportsAndPredicts(t *testing.T) {
	needORT(t)
	cfg := smokeConfig(t, "run.name=onnx", "train.epochs=2")
	var log strings.Builder
	res, err := Train(context.Background(), cfg, TrainOptions{SimulateIfEmpty: true, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Export == nil || !res.Export.Parity.Pass {
		t.Fatalf("no passing export after train:\n%s", log.String())
	}
	t.Log("\n" + res.Export.Parity.String())
	for _, f := range []string{rundir.ModelFile, rundir.ModelCardFile, rundir.ParityFile} {
		if _, err := os.Stat(filepath.Join(res.RunDir, f)); err != nil {
			t.Errorf("run directory lacks %s: %v", f, err)
		}
	}
	var sum map[string]any
	b, _ := os.ReadFile(filepath.Join(res.RunDir, rundir.SummaryFile))
	if err := json.Unmarshal(b, &sum); err != nil || sum["onnx_parity"] == nil {
		t.Errorf("summary.json lacks onnx_parity (%v)", err)
	}
	if len(res.Export.Parity.Sets) != 2 {
		t.Errorf("want random and validation parity sets, got %+v", res.Export.Parity.Sets)
	}

	// Re-export from the run directory's own config.
	rc, err := RunConfig(res.RunDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Export(context.Background(), res.RunDir, rc, ExportOptions{})
	if err != nil || !again.Parity.Pass {
		t.Fatalf("re-export: %v", err)
	}

	// Predict one validation session: by id in the store and by directory.
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.Load(context.Background(), st, cfg.Features, cfg.Dataset, nil)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := backend.Open(cfg.Run.BackendOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	m, err := trainer.LoadModel(opened.Backend, res.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	gp, _, err := m.Predict(ds.Val.X, ds.Val.Len())
	if err != nil {
		t.Fatal(err)
	}
	valKm := trainer.KmErrors(ds.Val.Y, gp)
	worst := 0.0
	for _, e := range valKm {
		worst = math.Max(worst, e)
	}
	id := ds.Val.IDs[0]
	for _, ref := range []string{id, filepath.Join(cfg.Store.Root, cfg.Dataset.Prefix, id)} {
		p, err := Predict(context.Background(), cfg, PredictOptions{Model: res.RunDir, Session: ref})
		if err != nil {
			t.Fatalf("predict %s: %v", ref, err)
		}
		t.Logf("predict %s: %.4f, %.4f, ellipse %.1f x %.1f km, error %.1f km (val: this session %.1f, worst %.1f km)",
			ref, p.Latitude, p.Longitude, p.SemiAxisNSKm, p.SemiAxisEWKm, *p.ErrorKm, valKm[0], worst)
		if math.Abs(p.Latitude-float64(gp[0])) > 1e-4 || math.Abs(p.Longitude-float64(gp[1])) > 1e-4 {
			t.Errorf("predict %s: %.6f, %.6f; the GoMLX model on the training features gives %.6f, %.6f", ref, p.Latitude, p.Longitude, gp[0], gp[1])
		}
		if p.ErrorKm == nil || *p.ErrorKm > worst+0.01 || p.Receivers != len(geo.Receivers) {
			t.Errorf("predict %s: error %v km outside the validation range (worst %.2f km), receivers %d", ref, p.ErrorKm, worst, p.Receivers)
		}
		if !(p.SemiAxisNSKm > 0 && p.SemiAxisEWKm > 0) {
			t.Errorf("predict %s: ellipse %g x %g km", ref, p.SemiAxisNSKm, p.SemiAxisEWKm)
		}
	}

	// Bad inputs: one clear error each.
	if _, err := Predict(context.Background(), cfg, PredictOptions{Model: filepath.Join(t.TempDir(), "x.onnx"), Session: id}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing model: %v", err)
	}
	if _, err := Predict(context.Background(), cfg, PredictOptions{Model: res.RunDir, Session: "no-such-session"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing session: %v", err)
	}
}
