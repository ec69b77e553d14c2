package experiment

import (
	"context"
	"errors"
	"fmt"
	"github.com/heimdall-sdr/trainer/kernels"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/bench"
	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
	"github.com/heimdall-sdr/trainer/trainer"
)

// ExportOptions control a re-export of a run.
type ExportOptions struct {
	// NoValidation skips loading the dataset for the validation parity set
	// (random inputs only).
	NoValidation bool
	// Progress receives progress bars; Log receives lines. Either may be nil.
	Progress io.Writer
	Log      io.Writer
}

// RunConfig loads the resolved configuration saved in a run directory
// (rundir.ConfigFile), with --set style overrides applied on top.
func RunConfig(runDir string, set []string) (config.Config, error) {
	path := rundir.Path(runDir, rundir.ConfigFile)
	if _, err := os.Stat(path); err != nil {
		return config.Config{}, fmt.Errorf("run directory %s: no %s (not a heimdall run directory?)", runDir, rundir.ConfigFile)
	}
	return config.Load(config.Options{File: path, Set: set})
}

// Export (re-)exports the best checkpoint of runDir to RUN_DIR/model.onnx
// with the run's configuration cfg (see RunConfig): check, parity on random
// and (unless NoValidation or the store is unavailable) validation inputs.
func Export(ctx context.Context, runDir string, cfg config.Config, o ExportOptions) (*onnx.Result, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	opened, err := backend.Open(cfg.Run.BackendOptions()) // as Train: run.backend and run.gpu_*.
	if err != nil {
		return nil, err
	}
	defer opened.Close()
	fmt.Fprint(logw, opened.Header())
	var ds *dataset.Dataset
	if !o.NoValidation {
		st, err := OpenStore(cfg)
		if err == nil {
			ds, err = dataset.Load(ctx, st, cfg.Features, cfg.Dataset, o.Progress)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			fmt.Fprintf(logw, "export: no validation inputs for parity (random inputs only): %v\n", err)
			ds = nil
		}
	}
	res, err := exportTrained(cfg, opened.Backend, opened.Spec, runDir, ds, logw)
	if err != nil {
		return res, err
	}
	return res, logExportToRun(ctx, cfg, runDir, logw)
}

// exportTrained exports the best checkpoint of runDir with an open backend;
// ds (may be nil) supplies the validation inputs and sample rate.
func exportTrained(cfg config.Config, backend compute.Backend, spec, runDir string, ds *dataset.Dataset, logw io.Writer) (*onnx.Result, error) {
	m, err := trainer.LoadModel(backend, runDir)
	if err != nil {
		return nil, err
	}
	feat := onnx.FeatureParams{
		SampleRateHz: cfg.Simulate.SampleRateHz,
		NFFT:         cfg.Features.NFFT, Hop: cfg.Features.Hop, NMels: cfg.Features.NMels, Frames: cfg.Features.Frames,
		FMin: cfg.Features.FMin, FMax: cfg.Features.FMax, Normalize: cfg.Dataset.Normalize,
	}
	o := onnx.ExportOptions{
		Session:  cfg.Export.SessionOptions(),
		MaxMAE:   cfg.Export.MaxMAE,
		Features: feat,
		Backend:  spec,
		Log:      logw,
	}
	if ds != nil {
		if ds.SampleRateHz > 0 {
			o.Features.SampleRateHz = ds.SampleRateHz
		}
		if ds.Val != nil && ds.Val.Len() > 0 {
			o.Val = &onnx.Inputs{Name: "validation", X: ds.Val.X, N: ds.Val.Len()}
		}
	}
	res, err := onnx.ExportRun(m, runDir, o)
	if res != nil && res.Parity != nil {
		if serr := addParityToSummary(runDir, res.Parity); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if err == nil {
		if berr := benchAfterExport(cfg, m, spec, runDir, logw); berr != nil {
			fmt.Fprintf(logw, "WARNING: inference benchmark after export failed: %v\n", berr)
		}
		err = writeMLflowModel(runDir, ds) // after the bench: the model card is final
	}
	return res, err
}

// benchAfterExport measures the exported model's inference latency against
// the native GoMLX model (batch 1 and 32, a few runs each: seconds), writes
// the run's bench record and puts the figures into the model card's
// inference metrics, so they travel with the published model. For careful
// figures use `heimdall bench`.
func benchAfterExport(cfg config.Config, m *trainer.Model, spec, runDir string, logw io.Writer) error {
	modelPath := rundir.Path(runDir, rundir.ModelFile)
	sess, err := onnx.NewSession(modelPath, cfg.Export.SessionOptions())
	if err != nil {
		return err
	}
	defer sess.Close()
	rep, err := bench.Run(m, spec, sess, bench.Options{
		BatchSizes: []int{1, 32}, Warmup: 2, Iterations: 10, MaxTime: 5 * time.Second, MaxMAE: cfg.Export.MaxMAE,
	})
	if err != nil {
		return err
	}
	rep.Model, rep.Checkpoint = modelPath, m.Checkpoint
	if err := rundir.WriteBench(runDir, (*rundir.BenchReport)(rep)); err != nil {
		return err
	}
	for _, r := range rep.Rows {
		fmt.Fprintf(logw, "latency batch %d: native p50 %.2f ms, ONNX Runtime p50 %.2f ms (%.2fx)\n", r.Batch, r.Native.P50ms, r.ORT.P50ms, r.Speedup)
	}
	return rundir.UpdateModelCard(runDir, func(mc *rundir.ModelCard) error {
		mc.InferenceMetrics = &rundir.InferenceMetrics{
			Date: rep.Date, Machine: &rep.Machine, Rows: rep.Rows,
			Note: "short run after export (10 iterations); see heimdall bench for careful figures",
		}
		return nil
	})
}

// addParityToSummary records the parity figures in the run's summary
// (onnx_parity), when the summary exists.
func addParityToSummary(runDir string, p *onnx.ParityReport) error {
	return rundir.UpdateSummary(runDir, func(s *rundir.Summary) error {
		s.OnnxParity = p
		return nil
	})
}

// ValidationInputs loads the dataset cfg describes and returns its
// validation split as parity inputs.
func ValidationInputs(ctx context.Context, cfg config.Config, progress io.Writer) (*onnx.Inputs, error) {
	st, err := OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	ds, err := dataset.Load(ctx, st, cfg.Features, cfg.Dataset, progress)
	if err != nil {
		return nil, err
	}
	if ds.Val == nil || ds.Val.Len() == 0 {
		return nil, errors.New("dataset has no validation sessions")
	}
	return &onnx.Inputs{Name: "validation", X: ds.Val.X, N: ds.Val.Len()}, nil
}

// Prediction is the ONNX model's answer for one session.
type Prediction struct {
	SessionID    string  `json:"session_id"`
	Model        string  `json:"model"`
	ModelVersion string  `json:"model_version,omitempty"`
	Latitude     float64 `json:"latitude"`
	Longitude    float64 `json:"longitude"`
	// SigmaLatDeg, SigmaLonDeg are the 1-sigma uncertainties in degrees.
	SigmaLatDeg float64 `json:"sigma_lat_deg"`
	SigmaLonDeg float64 `json:"sigma_lon_deg"`
	// The 1-sigma ellipse is axis-aligned (independent lat/lon sigmas):
	// semi-axes north-south and east-west in km.
	SemiAxisNSKm float64 `json:"semi_axis_north_south_km"`
	SemiAxisEWKm float64 `json:"semi_axis_east_west_km"`
	SemiMajorKm  float64 `json:"semi_major_km"`
	SemiMinorKm  float64 `json:"semi_minor_km"`
	Receivers    int     `json:"receivers_present"`
	SampleRateHz float64 `json:"sample_rate_hz"`
	// Truth and ErrorKm are set when the session has a ground truth.
	Truth   *[2]float64 `json:"truth,omitempty"`
	ErrorKm *float64    `json:"error_km,omitempty"`
}

// PredictOptions say which model and session Predict uses.
type PredictOptions struct {
	// Model is a .onnx file or a run directory (RUN_DIR/model.onnx).
	Model string
	// Session is a session directory (.../{prefix}/{id}, read directly) or
	// a session id in the configured store.
	Session string
	// SessionOptions configure ONNX Runtime.
	SessionOptions onnx.SessionOptions
}

// Predict locates the transmitter of one session with the ONNX model: the
// session's IQ files -> the training feature pipeline (dataset package, with
// the feature parameters recorded in the model) -> ONNX Runtime.
func Predict(ctx context.Context, cfg config.Config, o PredictOptions) (*Prediction, error) {
	path := o.Model
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = rundir.Path(path, rundir.ModelFile)
	}
	mp, _, err := onnx.ReadModel(path)
	if err != nil {
		return nil, err
	}
	meta, err := onnx.ReadMetadata(mp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, id, dsOpts := storage.Store(nil), o.Session, cfg.Dataset
	feat := modelFeatures(cfg.Features, &dsOpts, meta.Features)
	if fi, err := os.Stat(o.Session); err == nil && fi.IsDir() {
		abs, err := filepath.Abs(o.Session)
		if err != nil {
			return nil, err
		}
		id = filepath.Base(abs)
		dsOpts.Prefix = filepath.Base(filepath.Dir(abs))
		if st, err = local.New(filepath.Dir(filepath.Dir(abs))); err != nil {
			return nil, err
		}
	} else if st, err = OpenStore(cfg); err != nil {
		return nil, err
	}
	in, err := dataset.SessionFeatures(ctx, st, feat, dsOpts, id)
	if err != nil {
		return nil, err
	}
	sess, err := onnx.NewSession(path, o.SessionOptions)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if len(in.X) != sess.SampleSize() {
		return nil, fmt.Errorf("predict: session features have %d values, the model input is %v per sample", len(in.X), sess.InputShape)
	}
	pos, sig, err := sess.Run(in.X, 1)
	if err != nil {
		return nil, err
	}
	p := &Prediction{SessionID: id, Model: path, ModelVersion: meta.ModelVersion,
		Latitude: float64(pos[0]), Longitude: float64(pos[1]), SigmaLatDeg: float64(sig[0]), SigmaLonDeg: float64(sig[1]),
		SampleRateHz: in.SampleRateHz, Truth: in.Truth}
	kmLat, kmLon := geo.KmPerDegree(p.Latitude)
	p.SemiAxisNSKm, p.SemiAxisEWKm = p.SigmaLatDeg*kmLat, p.SigmaLonDeg*kmLon
	p.SemiMajorKm, p.SemiMinorKm = max(p.SemiAxisNSKm, p.SemiAxisEWKm), min(p.SemiAxisNSKm, p.SemiAxisEWKm)
	for _, ok := range in.Present {
		if ok {
			p.Receivers++
		}
	}
	if in.Truth != nil {
		e := geo.HaversineKm(in.Truth[0], in.Truth[1], p.Latitude, p.Longitude)
		p.ErrorKm = &e
	}
	return p, nil
}

// modelFeatures returns the feature parameters a model was trained on, from
// its card's record f, with cfg's for what the card does not say, and sets
// dso's normalisation to the model's where the card records it (a card
// written before it was recorded leaves the configuration's: for a run
// directory, the run's own config.yaml).
func modelFeatures(cfg kernels.MelConfig, dso *dataset.Options, f rundir.FeatureParams) kernels.MelConfig {
	if f.NMels > 0 {
		cfg.NFFT, cfg.Hop, cfg.NMels, cfg.Frames, cfg.FMin, cfg.FMax = f.NFFT, f.Hop, f.NMels, f.Frames, f.FMin, f.FMax
		if f.Normalize != "" {
			dso.Normalize = f.Normalize
		}
	}
	return cfg
}
