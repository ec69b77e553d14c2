// Package experiment wires the pieces into the jobs the commands run:
// simulate a dataset, evaluate the classical baseline, and train
// LocalizationNet end to end (store -> dataset -> trainer -> run directory).
// Each job is one call taking the resolved config.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/compute"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/baseline"
	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/sim"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
	"github.com/heimdall-sdr/trainer/tracking"
	"github.com/heimdall-sdr/trainer/trainer"
)

// OpenStore opens the store the config names.
func OpenStore(cfg config.Config) (storage.Store, error) {
	switch cfg.Store.Kind {
	case "local":
		return local.New(cfg.Store.Root)
	case "s3":
		return openS3(cfg)
	default:
		return nil, fmt.Errorf("store.kind: %q is not supported", cfg.Store.Kind)
	}
}

// Simulate writes cfg.Simulate.Sessions synthetic sessions into the store.
func Simulate(ctx context.Context, cfg config.Config, progress io.Writer) (sim.Summary, error) {
	st, err := OpenStore(cfg)
	if err != nil {
		return sim.Summary{}, err
	}
	return sim.Generate(ctx, st, cfg.Simulate, progress)
}

// HasSessions reports whether the configured store holds any session.
func HasSessions(ctx context.Context, cfg config.Config) (bool, error) {
	st, err := OpenStore(cfg)
	if err != nil {
		return false, err
	}
	ids, err := dataset.ListSessions(ctx, st, cfg.Dataset.Prefix)
	if err != nil {
		return false, err
	}
	return len(ids) > 0, nil
}

// BaselineReport is every estimator's error on the validation split: the
// classical baselines (centroid, least squares, and calibrated least
// squares and fingerprinting fitted on the training split) and the oracle.
type BaselineReport struct {
	Centroid     baseline.Errors `json:"centroid"`
	LeastSquares baseline.Errors `json:"least_squares"`
	// Estimators are all of them in report order (n/a ones with their
	// reason); Setup says how they were fitted and what they cost.
	Estimators []rundir.BaselineMetrics `json:"estimators"`
	Setup      rundir.Estimators        `json:"setup"`
}

// Baseline evaluates the classical baselines and the oracle on the same
// validation sessions the trainer would use.
func Baseline(ctx context.Context, cfg config.Config, progress io.Writer) (BaselineReport, *dataset.Dataset, error) {
	st, err := OpenStore(cfg)
	if err != nil {
		return BaselineReport{}, nil, err
	}
	ds, err := dataset.Load(ctx, st, cfg.Features, cfg.Dataset, progress)
	if err != nil {
		return BaselineReport{}, nil, err
	}
	rep, _ := valBaselines(ds, progress)
	return rep, ds, nil
}

// valBaselines locates every validation session with every estimator
// (estimatorsOn), the fitted ones fitted on the training split.
func valBaselines(ds *dataset.Dataset, logw io.Writer) (BaselineReport, []trainer.Baseline) {
	bases, setup := estimatorsOn(ds.Val, ds.Receivers, fitSet{split: ds.Train, source: "training split"}, ds.Origin, logw)
	rep := BaselineReport{Estimators: estimatorErrors(ds.Val.Y, bases), Setup: setup}
	for _, b := range bases[:2] {
		km := make([]float64, ds.Val.Len())
		for i := range km {
			km[i] = geo.HaversineKm(float64(ds.Val.Y[2*i]), float64(ds.Val.Y[2*i+1]), float64(b.Positions[2*i]), float64(b.Positions[2*i+1]))
		}
		if b.Name == EstimatorCentroid {
			rep.Centroid = baseline.Summarize(km)
		} else {
			rep.LeastSquares = baseline.Summarize(km)
		}
	}
	return rep, bases
}

// estimatorLine is the estimators' medians on one line, for logs.
func estimatorLine(ms []rundir.BaselineMetrics) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		if m.NA != "" {
			fmt.Fprintf(&b, "%s n/a", m.Name)
		} else {
			fmt.Fprintf(&b, "%s %.1f", m.Name, m.KmMedian)
		}
	}
	return b.String()
}

// TrainOptions control a training job; the zero value trains into a new run
// directory without output.
type TrainOptions struct {
	// ResumeDir continues the run in this directory from its last checkpoint.
	ResumeDir string
	// SimulateIfEmpty generates the configured synthetic dataset first when
	// the store holds no session (what `make train` does on a fresh clone).
	SimulateIfEmpty bool
	// Progress receives progress bars; Log receives start-up lines and the
	// summary. Either may be nil.
	Progress io.Writer
	Log      io.Writer
}

// TrainResult says where the run went and how it ended.
type TrainResult struct {
	RunDir   string
	Backend  string
	Summary  *trainer.Summary
	Baseline BaselineReport
	Dataset  dataset.Report
	// Export is the ONNX export done at the end of training (nil when
	// export.enabled is false or training failed).
	Export *onnx.Result
	// Published is the model version uploaded to store.models_bucket (nil
	// unless store.kind is s3 and store.publish is on).
	Published *Published
	// Tracking says where the run was tracked (MLflow or RUN_DIR/tracking)
	// and whether sending it failed (see experiment/tracking.go).
	Tracking *tracking.Report
}

// Train runs the main job: (simulate,) load the dataset, evaluate the
// baseline on the validation split, train, and leave everything in the run
// directory.
func Train(ctx context.Context, cfg config.Config, o TrainOptions) (*TrainResult, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	opened, err := backend.Open(cfg.Run.BackendOptions()) // run.backend and run.gpu_*.
	if err != nil {
		return nil, err
	}
	defer opened.Close()
	be, spec := opened.Backend, opened.Spec
	fmt.Fprint(logw, opened.Header())
	fmt.Fprint(logw, opened.Devices()) // device name(s); GPU name and memory via nvidia-smi.

	st, err := OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	if o.SimulateIfEmpty {
		ids, err := dataset.ListSessions(ctx, st, cfg.Dataset.Prefix)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			fmt.Fprintf(logw, "no sessions in %s: simulating %d (seed %d)\n", st, cfg.Simulate.Sessions, cfg.Simulate.Seed)
			if _, err := Simulate(ctx, cfg, o.Progress); err != nil {
				return nil, err
			}
		}
	}

	ds, err := dataset.Load(ctx, st, cfg.Features, cfg.Dataset, o.Progress)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "dataset: %s\n", ds.Report)
	fmt.Fprintf(logw, "split: %d train / %d val sessions (by session, seed %d)\n", ds.Train.Len(), ds.Val.Len(), cfg.Dataset.SplitSeed)
	brep, bases := valBaselines(ds, logw)
	fmt.Fprintf(logw, "estimators on val, median km: %s\n", estimatorLine(brep.Estimators))

	runDir := o.ResumeDir
	if runDir == "" {
		name := cfg.Run.Name
		if name == "" {
			name = "rf-localization_" + time.Now().UTC().Format("20060102_150405")
		}
		runDir = filepath.Join(cfg.Run.Dir, name)
		if _, err := os.Stat(runDir); err == nil {
			return nil, fmt.Errorf("run directory %s already exists (use --resume %s to continue it, or another run.name)", runDir, runDir)
		}
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	if err := writeRunFiles(runDir, cfg, ds, brep, spec); err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "run directory: %s\n", runDir)
	tk, err := startTracking(ctx, cfg, runDir, ds, spec, logw)
	if err != nil {
		return nil, err
	}

	res, err := trainExportPublish(ctx, cfg, be, spec, runDir, ds, brep, bases, tk.onEpoch, o, logw)
	res.Tracking = tk.finish(ctx, res, err) // The run's end status follows err.
	return res, err
}

// trainExportPublish trains into runDir, then exports (export.enabled) and
// publishes (store.kind s3 and store.publish) the model; the result says
// how far it got.
func trainExportPublish(ctx context.Context, cfg config.Config, backend compute.Backend, spec, runDir string, ds *dataset.Dataset,
	brep BaselineReport, bases []trainer.Baseline, onEpoch func(trainer.EpochMetrics) error, o TrainOptions, logw io.Writer) (*TrainResult, error) {
	sum, err := trainer.Train(ctx, backend, trainerData(ds, ds.Train, bases), cfg.Model, cfg.Train, trainer.RunOptions{
		RunDir:   runDir,
		Resume:   o.ResumeDir != "",
		Progress: o.Progress,
		Log:      logw,
		OnEpoch:  onEpoch,
		Devices:  cfg.Run.Devices,
	})
	res := &TrainResult{RunDir: runDir, Backend: spec, Summary: sum, Baseline: brep, Dataset: ds.Report}
	if err != nil {
		return res, fmt.Errorf("train (run directory %s): %w", runDir, err)
	}
	setup := brep.Setup
	if err := rundir.UpdateSummary(runDir, func(s *rundir.Summary) error { s.Estimators = &setup; return nil }); err != nil {
		return res, fmt.Errorf("train (run directory %s): %w", runDir, err)
	}
	sum.Estimators = &setup
	if cfg.Export.Enabled {
		exp, err := exportTrained(cfg, backend, spec, runDir, ds, logw)
		res.Export = exp
		if errors.Is(err, onnx.ErrNoRuntime) {
			// Training succeeded; the export needs the ORT library.
			fmt.Fprintf(logw, "WARNING: ONNX export skipped: %v\n  then run: heimdall export %s\n", err, runDir)
		} else if err != nil {
			return res, fmt.Errorf("export (run directory %s): %w", runDir, err)
		}
	}
	if res.Export != nil && cfg.Store.Kind == "s3" && cfg.Store.Publish {
		pub, err := Publish(ctx, cfg, runDir)
		if err != nil {
			return res, fmt.Errorf("publish (run directory %s): %w", runDir, err)
		}
		res.Published = &pub
		fmt.Fprintf(logw, "published: s3://%s/%s (sha256 %s, %d bytes)\n", cfg.Store.ModelsBucket, pub.Key, pub.SHA256, pub.Size)
	}
	return res, nil
}

// trainerData is what trainer.Train consumes: train (ds.Train or a part
// of it), ds's val split with the estimators' positions on it, ds's shape.
func trainerData(ds *dataset.Dataset, train *dataset.Split, bases []trainer.Baseline) trainer.Data {
	return trainer.Data{
		Train:        trainer.Split{X: train.X, Y: train.Y, IDs: train.IDs},
		Val:          trainer.Split{X: ds.Val.X, Y: ds.Val.Y, IDs: ds.Val.IDs},
		ValBaselines: bases,
		InputShape:   [3]int{len(ds.Receivers), ds.NMels, ds.Frames},
	}
}

// writeRunFiles saves the resolved config and the dataset report.
func writeRunFiles(dir string, cfg config.Config, ds *dataset.Dataset, b BaselineReport, backend string) error {
	y, err := cfg.YAML()
	if err != nil {
		return err
	}
	if err := rundir.WriteFile(dir, rundir.ConfigFile, y); err != nil {
		return err
	}
	var rep strings.Builder
	fmt.Fprintf(&rep, "backend: %s\nfeature_key: %s\nsample_rate_hz: %g\ntrain_sessions: %d\nval_sessions: %d\n%s\n",
		backend, ds.FeatureKey, ds.SampleRateHz, ds.Train.Len(), ds.Val.Len(), ds.Report)
	writeEstimatorSetup(&rep, b.Setup)
	for _, m := range b.Estimators {
		if m.NA != "" {
			fmt.Fprintf(&rep, "baseline_val: %s n/a (%s)\n", m.Name, m.NA)
			continue
		}
		fmt.Fprintf(&rep, "baseline_val: %s mean %.2f km, median %.2f km, p90 %.2f km", m.Name, m.KmMean, m.KmMedian, m.KmP90)
		if m.Within1Sigma != nil {
			fmt.Fprintf(&rep, ", inside its 1-sigma %.1f%%", 100**m.Within1Sigma)
		}
		rep.WriteString("\n")
	}
	return rundir.WriteFile(dir, rundir.DatasetFile, []byte(rep.String()))
}
