package experiment

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/session"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/s3/s3test"
)

// TestEvaluate trains a smoke run, then evaluates it: on its own sessions
// it reproduces the run's validation numbers; on a freshly simulated set of
// the same world it evaluates every session with the oracle; on sessions
// with no simulation record the oracle is n/a; bad input names the thing.
func TestEvaluate(t *testing.T) {
	ctx := context.Background()
	cfg := smokeConfig(t, "run.name=eval", "train.epochs=2")
	res, err := Train(ctx, cfg, TrainOptions{SimulateIfEmpty: true})
	if err != nil {
		t.Fatal(err)
	}
	runCfg, err := RunConfig(res.RunDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := rundir.ReadSummary(res.RunDir)
	if err != nil {
		t.Fatal(err)
	}

	for _, engine := range []string{EngineAuto, EngineGoMLX} {
		t.Run("reproduces the run/"+engine, func(t *testing.T) { reproduces(t, runCfg, res.RunDir, sum, engine) })
	}

	t.Run("fresh sessions of the same world", func(t *testing.T) {
		sc := runCfg
		sc.Simulate.Prefix, sc.Simulate.Seed, sc.Simulate.Sessions = "fresh", 99, 16
		if _, err := Simulate(ctx, sc, nil); err != nil {
			t.Fatal(err)
		}
		ev, err := Evaluate(ctx, runCfg, EvaluateOptions{Model: res.RunDir, Prefix: "fresh"})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Set != "all sessions" || ev.Metrics.N < 8 {
			t.Errorf("evaluated %d sessions (%s), want all approved of 16", ev.Metrics.N, ev.Set)
		}
		if ev.Estimators.FitSessions != trainLen(t, runCfg) {
			t.Errorf("fitted on %d sessions (%s), want the run's training split", ev.Estimators.FitSessions, ev.Estimators.FitSource)
		}
		for _, b := range ev.Metrics.Baselines {
			if b.NA != "" || !(b.KmMedian > 0) {
				t.Errorf("estimator %s on fresh sessions: %+v", b.Name, b)
			}
		}
	})

	t.Run("unknown world", func(t *testing.T) {
		sc := runCfg
		sc.Simulate.Prefix, sc.Simulate.Seed, sc.Simulate.Sessions = "real", 98, 8
		if _, err := Simulate(ctx, sc, nil); err != nil {
			t.Fatal(err)
		}
		st, err := OpenStore(sc)
		if err != nil {
			t.Fatal(err)
		}
		stripSimulation(t, st, "real")
		// A bare .onnx file when the run has one; else its checkpoint.
		model := rundir.Path(res.RunDir, rundir.ModelFile)
		if res.Export == nil {
			model = res.RunDir
		}
		ev, err := Evaluate(ctx, runCfg, EvaluateOptions{Model: model, Prefix: "real"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Errorf("JSON with n/a estimators: %v", err)
		}
		for _, b := range ev.Metrics.Baselines {
			switch b.Name {
			case EstimatorOracle:
				if !strings.Contains(b.NA, "no simulation record") {
					t.Errorf("oracle on sessions of an unknown world: %+v", b)
				}
			case EstimatorCalibrated, EstimatorFingerprint:
				if res.Export != nil && !strings.Contains(b.NA, "--train-prefix") {
					t.Errorf("%s for a bare .onnx without training sessions: %+v", b.Name, b)
				}
			}
		}
		if res.Export != nil {
			ev, err := Evaluate(ctx, runCfg, EvaluateOptions{Model: model, Prefix: "real", TrainPrefix: "fresh"})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Estimators.FitSessions == 0 || ev.Metrics.Baselines[2].NA != "" {
				t.Errorf("--train-prefix fresh: fitted on %d (%s), %+v", ev.Estimators.FitSessions, ev.Estimators.FitSource, ev.Metrics.Baselines[2])
			}
		}
	})

	t.Run("sessions in S3", func(t *testing.T) {
		srv := s3test.Shared(t)
		// The run's configuration pointed at a bucket of freshly simulated
		// sessions of the same world.
		c3 := s3Config(t, srv, s3test.Bucket(t))
		if _, err := Simulate(ctx, c3, nil); err != nil {
			t.Fatal(err)
		}
		rc := runCfg
		rc.Store, rc.Dataset.CacheDir = c3.Store, c3.Dataset.CacheDir
		ev, err := Evaluate(ctx, rc, EvaluateOptions{Model: res.RunDir, MaxSessions: 5})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Metrics.N != 5 || ev.Set != "all sessions" || !strings.HasPrefix(ev.Store, "s3:") {
			t.Errorf("evaluated %d sessions (%s) of %s", ev.Metrics.N, ev.Set, ev.Store)
		}
		if ev.Estimators.FitSessions != trainLen(t, runCfg) {
			t.Errorf("fitted on %d sessions (%s), want the run's training split", ev.Estimators.FitSessions, ev.Estimators.FitSource)
		}
		if o := ev.Metrics.Baselines[4]; o.Name != EstimatorOracle || o.NA != "" {
			t.Errorf("oracle on S3 sessions: %+v", o)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, c := range []struct {
			name string
			o    EvaluateOptions
			want string
		}{
			{"no model", EvaluateOptions{}, "--model"},
			{"missing model", EvaluateOptions{Model: filepath.Join(t.TempDir(), "gone.onnx")}, "gone.onnx"},
			{"not a run", EvaluateOptions{Model: t.TempDir()}, "not a run directory"},
			{"empty prefix", EvaluateOptions{Model: res.RunDir, Prefix: "nothing-here"}, `"nothing-here"`},
			{"bad split", EvaluateOptions{Model: res.RunDir, Set: "test"}, "--split"},
		} {
			_, err := Evaluate(ctx, runCfg, c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want one naming %s", c.name, err, c.want)
			}
		}
	})
}

// reproduces evaluates runDir on its own sessions with engine and checks
// the run's validation numbers come back.
func reproduces(t *testing.T, runCfg config.Config, runDir string, sum *rundir.Summary, engine string) {
	ctx := context.Background()
	ev, err := Evaluate(ctx, runCfg, EvaluateOptions{Model: runDir, Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("engine %s, set %s", ev.Engine, ev.Set)
	got, want := ev.Metrics, sum.Val
	if got.N != want.N || !strings.HasPrefix(ev.Set, "validation split") {
		t.Fatalf("evaluated %d sessions (%s), the run validated %d", got.N, ev.Set, want.N)
	}
	// ONNX Runtime vs GoMLX differ by < 1e-5 degrees (export parity).
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"km mean", got.KmMean, want.KmMean}, {"km median", got.KmMedian, want.KmMedian}, {"km p90", got.KmP90, want.KmP90}} {
		if math.Abs(c.got-c.want) > 0.01 {
			t.Errorf("%s: evaluate %.4f, run %.4f", c.name, c.got, c.want)
		}
	}
	if math.Abs(got.Within1Sigma-want.Within1Sigma) > 1.0/float64(want.N)+1e-9 {
		t.Errorf("inside 1-sigma: evaluate %.3f, run %.3f", got.Within1Sigma, want.Within1Sigma)
	}
	if len(got.Baselines) != len(want.Baselines) {
		t.Fatalf("estimators: evaluate %d, run %d", len(got.Baselines), len(want.Baselines))
	}
	for i, b := range got.Baselines {
		w := want.Baselines[i]
		if b.Name != w.Name || b.NA != w.NA || math.Abs(b.KmMean-w.KmMean) > 1e-6 || math.Abs(b.KmMedian-w.KmMedian) > 1e-6 || math.Abs(b.KmP90-w.KmP90) > 1e-6 {
			t.Errorf("estimator %d: evaluate %+v, run %+v", i, b, w)
		}
	}
	var text strings.Builder
	if err := ev.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LocalizationNet", "calibrated_least_squares", "fingerprint", "oracle", "inside 1-sigma"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
	if _, err := json.Marshal(ev); err != nil {
		t.Errorf("JSON: %v", err)
	}
	if err := ev.WritePlots(filepath.Join(t.TempDir(), "plots")); err != nil {
		t.Errorf("plots: %v", err)
	}
}

// trainLen is the size of the training split cfg's dataset gives.
func trainLen(t *testing.T, cfg config.Config) int {
	t.Helper()
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.Load(context.Background(), st, cfg.Features, cfg.Dataset, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ds.Train.Len()
}

// stripSimulation removes the simulation record from every session.json
// under prefix, as sessions of real recordings have none.
func stripSimulation(t *testing.T, st storage.Store, prefix string) {
	t.Helper()
	ctx := context.Background()
	ids, err := dataset.ListSessions(ctx, st, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		key := session.InfoKey(prefix, id)
		b, err := storage.ReadAll(ctx, st, key)
		if err != nil {
			t.Fatal(err)
		}
		var info session.Info
		if err := json.Unmarshal(b, &info); err != nil {
			t.Fatal(err)
		}
		info.Simulation, info.Source = nil, "websdr"
		out, _ := json.Marshal(info)
		if err := st.Put(ctx, key, strings.NewReader(string(out)), int64(len(out)), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
