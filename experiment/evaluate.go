package experiment

import (
	"context"
	"errors"
	"fmt"
	"github.com/heimdall-sdr/trainer/backend"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/kernels"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/trainer"
)

// Evaluation engines: how the model is run.
const (
	EngineAuto  = "auto"  // ONNX Runtime when there is a model.onnx and the library, else the GoMLX checkpoint
	EngineONNX  = "onnx"  // ONNX Runtime on RUN_DIR/model.onnx or FILE.onnx
	EngineGoMLX = "gomlx" // the run's best checkpoint on the configured GoMLX backend
)

// Evaluation sets: which of the loaded sessions are evaluated.
const (
	SetAuto = "auto" // val for a run's own dataset, else all
	SetVal  = "val"  // the validation split (dataset.validation_split, split_seed)
	SetAll  = "all"  // every loaded session
)

// EvaluateOptions say what Evaluate evaluates, on what.
type EvaluateOptions struct {
	// Model is a run directory (its model.onnx or best checkpoint) or a
	// .onnx file.
	Model string
	// Engine is EngineAuto (default), EngineONNX or EngineGoMLX.
	Engine string
	// Set (--split) is SetAuto (default), SetVal or SetAll.
	Set string
	// Prefix overrides dataset.prefix: the sessions to evaluate.
	Prefix string
	// MaxSessions overrides dataset.max_sessions when > 0.
	MaxSessions int
	// TrainPrefix names sessions (in the same store) the fitted baselines
	// learn from, all of them; by default the run's training split.
	TrainPrefix string
	// SessionOptions configure ONNX Runtime.
	SessionOptions onnx.SessionOptions
	// Progress receives progress bars; Log receives lines. Either may be nil.
	Progress io.Writer
	Log      io.Writer
}

// Evaluation is a model's report on a set of sessions: the same metrics as
// a run's validation summary.
type Evaluation struct {
	// Model is the model evaluated (a .onnx file or a checkpoint) and
	// Engine how it ran ("onnxruntime", "gomlx <backend>").
	Model  string `json:"model"`
	Engine string `json:"engine"`
	// Store and Prefix are where the sessions came from; Set says which of
	// them were evaluated ("validation split (share 0.25, seed 42)",
	// "all sessions").
	Store  string `json:"store"`
	Prefix string `json:"prefix"`
	Set    string `json:"set"`
	// Dataset is how loading went.
	Dataset string `json:"dataset"`
	// Metrics are the model's metrics and every estimator's beside it.
	Metrics rundir.EvalMetrics `json:"metrics"`
	// Estimators says how the estimators were set up.
	Estimators rundir.Estimators `json:"estimators"`

	y, pos    []float32
	baselines []trainer.Baseline
}

// WriteText prints the evaluation as train prints its summary table.
func (e *Evaluation) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "model       %s (%s)\n", e.Model, e.Engine)
	fmt.Fprintf(w, "sessions    %d: %s of %s under %s/\n", e.Metrics.N, e.Set, e.Store, e.Prefix)
	fit := fmt.Sprintf("%d sessions (%s)", e.Estimators.FitSessions, e.Estimators.FitSource)
	if e.Estimators.FitSessions == 0 {
		fit = "none"
	}
	if f := e.Estimators.Fingerprint; f != nil {
		fit += fmt.Sprintf(", fingerprint k=%d", f.K)
	}
	fmt.Fprintf(w, "baselines   fitted on %s\n", fit)
	if e.Estimators.OracleWorld != "" {
		fmt.Fprintf(w, "oracle      %s\n", e.Estimators.OracleWorld)
	}
	fmt.Fprintln(w)
	return trainer.WriteEvalTable(w, e.Metrics)
}

// WritePlots writes the error CDF (model and estimators) and the positions
// map into dir.
func (e *Evaluation) WritePlots(dir string) error {
	return trainer.WriteEvalPlots(dir, e.y, e.pos, e.baselines)
}

// Evaluate runs a trained model on a set of stored sessions and reports it
// beside the classical baselines and the oracle, as training reports its
// validation split. cfg is the run's configuration for a run directory
// (RunConfig) or the resolved configuration for a bare .onnx file; it
// names the store, the dataset options and the features.
func Evaluate(ctx context.Context, cfg config.Config, o EvaluateOptions) (*Evaluation, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	if o.Model == "" {
		return nil, errors.New("evaluate: --model is required (a run directory or a .onnx file)")
	}
	fi, err := os.Stat(o.Model)
	if err != nil {
		return nil, fmt.Errorf("evaluate: model %s: %w", o.Model, err)
	}
	runDir := ""
	if fi.IsDir() {
		runDir = o.Model
		if _, err := os.Stat(rundir.Path(runDir, rundir.ConfigFile)); err != nil {
			return nil, fmt.Errorf("evaluate: %s is not a run directory (no %s)", runDir, rundir.ConfigFile)
		}
	}
	engine := o.Engine
	if engine == "" {
		engine = EngineAuto
	}
	set := o.Set
	if set == "" {
		set = SetAuto
	}
	if set != SetAuto && set != SetVal && set != SetAll {
		return nil, fmt.Errorf("evaluate: --split %q: must be %s, %s or %s", set, SetAuto, SetVal, SetAll)
	}

	mdl, err := openModel(cfg, o, runDir, engine, logw)
	if err != nil {
		return nil, err
	}
	defer mdl.close()

	// The sessions.
	dso := cfg.Dataset
	if o.Prefix != "" {
		dso.Prefix = o.Prefix
	}
	if o.MaxSessions > 0 {
		dso.MaxSessions = o.MaxSessions
	}
	// The run's own sessions: its saved store, prefix and cap.
	own := false
	if runDir != "" {
		if saved, err := RunConfig(runDir, nil); err == nil {
			own = sameStore(saved.Store, cfg.Store) && dso.Prefix == saved.Dataset.Prefix && dso.MaxSessions == saved.Dataset.MaxSessions
		}
	}
	if set == SetAuto {
		set = SetAll
		if own {
			set = SetVal
		}
	}
	st, err := OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	ids, err := dataset.ListSessions(ctx, st, dso.Prefix)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("evaluate: no sessions under prefix %q in %s", dso.Prefix, st)
	}
	feat := cfg.Features
	if f := mdl.features; f != nil {
		feat = modelFeatures(cfg.Features, &dso, *f)
	}
	ds, err := dataset.Load(ctx, st, feat, dso, o.Progress)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "dataset: %s\n", ds.Report)
	ev := &Evaluation{Model: mdl.name, Engine: mdl.engine, Store: st.String(), Prefix: dso.Prefix, Dataset: ds.Report.String()}

	eval := ds.Val
	fit := fitSet{split: ds.Train, source: "the run's training split"}
	if set == SetVal {
		ev.Set = fmt.Sprintf("validation split (share %g, seed %d)", dso.ValidationSplit, dso.SplitSeed)
		if !own {
			fit.source = fmt.Sprintf("training split of %s/", dso.Prefix)
		}
	} else {
		ev.Set = "all sessions"
		eval = concatSplits(ds.Train, ds.Val)
		if own {
			fmt.Fprintf(logw, "WARNING: evaluate: --split all on the run's own sessions includes its training split (the model and the fitted baselines have seen those)\n")
		}
		fit = evalFitSet(ctx, cfg, feat, o, runDir, logw)
	}
	if o.TrainPrefix != "" && set == SetVal {
		fit = evalFitSet(ctx, cfg, feat, o, runDir, logw)
	}

	shape := mdl.shape
	if want := len(ds.Receivers) * ds.NMels * ds.Frames; shape[0]*shape[1]*shape[2] != want {
		return nil, fmt.Errorf("evaluate: the model's input is %v per session, the sessions' features [%d %d %d]", shape, len(ds.Receivers), ds.NMels, ds.Frames)
	}
	pos, sigma, err := mdl.predict(eval.X, eval.Len())
	if err != nil {
		return nil, fmt.Errorf("evaluate: run %s: %w", mdl.name, err)
	}
	bases, setup := estimatorsOn(eval, ds.Receivers, fit, ds.Origin, logw)
	ev.Metrics = trainer.Evaluate(eval.Y, pos, sigma, bases)
	ev.Estimators = setup
	ev.y, ev.pos, ev.baselines = eval.Y, pos, bases
	return ev, nil
}

// evalFitSet loads the sessions the fitted baselines learn from when the
// evaluated set is not a run's own split: --train-prefix (all of its
// sessions), else the run's training split, else none.
func evalFitSet(ctx context.Context, cfg config.Config, feat kernels.MelConfig, o EvaluateOptions, runDir string, logw io.Writer) fitSet {
	load := func(dso dataset.Options) (*dataset.Dataset, error) {
		s, err := OpenStore(cfg)
		if err != nil {
			return nil, err
		}
		return dataset.Load(ctx, s, feat, dso, o.Progress)
	}
	switch {
	case o.TrainPrefix != "":
		dso := cfg.Dataset
		dso.Prefix, dso.MaxSessions = o.TrainPrefix, 0
		ds, err := load(dso)
		if err != nil {
			return fitSet{na: fmt.Sprintf("--train-prefix %s: %v", o.TrainPrefix, err)}
		}
		return fitSet{split: concatSplits(ds.Train, ds.Val), source: fmt.Sprintf("all sessions under %s/", o.TrainPrefix)}
	case runDir != "":
		// The run's training split: its saved store and dataset options.
		saved, err := RunConfig(runDir, nil)
		var ds *dataset.Dataset
		if err == nil {
			var st storage.Store
			if st, err = OpenStore(saved); err == nil {
				ds, err = dataset.Load(ctx, st, feat, saved.Dataset, o.Progress)
			}
		}
		if err != nil {
			fmt.Fprintf(logw, "evaluate: the run's training sessions are not available (%v); the fitted baselines are n/a\n", err)
			return fitSet{na: "the run's training sessions are not available: " + firstLine(err.Error())}
		}
		return fitSet{split: ds.Train, source: fmt.Sprintf("the run's training split (%s/)", saved.Dataset.Prefix)}
	default:
		return fitSet{na: "no training sessions for a bare .onnx model (pass --train-prefix)"}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// sameStore reports whether a and b name the same store.
func sameStore(a, b config.Store) bool {
	if a.Kind != b.Kind {
		return false
	}
	if a.Kind == "local" {
		x, errX := filepath.Abs(a.Root)
		y, errY := filepath.Abs(b.Root)
		return errX == nil && errY == nil && x == y
	}
	return a.Endpoint == b.Endpoint && a.Bucket == b.Bucket
}

// concatSplits returns a's sessions followed by b's.
func concatSplits(a, b *dataset.Split) *dataset.Split {
	s := &dataset.Split{}
	for _, p := range []*dataset.Split{a, b} {
		if p == nil {
			continue
		}
		s.IDs = append(s.IDs, p.IDs...)
		s.X = append(s.X, p.X...)
		s.Y = append(s.Y, p.Y...)
		s.PowerDB = append(s.PowerDB, p.PowerDB...)
		s.Present = append(s.Present, p.Present...)
	}
	return s
}

// evalModel is a model ready to run: ONNX Runtime or a GoMLX checkpoint.
type evalModel struct {
	name, engine string
	shape        [3]int
	features     *onnx.FeatureParams // recorded in the ONNX model; nil: the config's
	predict      func(x []float32, n int) (pos, sigma []float32, err error)
	close        func()
}

// openModel opens the model o.Model names with the engine asked for.
func openModel(cfg config.Config, o EvaluateOptions, runDir, engine string, logw io.Writer) (*evalModel, error) {
	onnxPath := o.Model
	if runDir != "" {
		onnxPath = rundir.Path(runDir, rundir.ModelFile)
	} else if !strings.HasSuffix(strings.ToLower(onnxPath), ".onnx") {
		return nil, fmt.Errorf("evaluate: model %s is neither a run directory nor a .onnx file", o.Model)
	}
	_, statErr := os.Stat(onnxPath)
	switch engine {
	case EngineAuto, EngineONNX:
		if statErr != nil {
			if engine == EngineONNX || runDir == "" {
				return nil, fmt.Errorf("evaluate: model %s: %w", onnxPath, statErr)
			}
			fmt.Fprintf(logw, "evaluate: %s has no %s; running its best checkpoint with GoMLX\n", runDir, rundir.ModelFile)
			return openCheckpoint(cfg, runDir)
		}
		m, err := openONNX(onnxPath, o.SessionOptions)
		if errors.Is(err, onnx.ErrNoRuntime) && engine == EngineAuto && runDir != "" {
			fmt.Fprintf(logw, "evaluate: %v; running the best checkpoint with GoMLX\n", err)
			return openCheckpoint(cfg, runDir)
		}
		return m, err
	case EngineGoMLX:
		if runDir == "" {
			return nil, fmt.Errorf("evaluate: --engine gomlx needs a run directory (its checkpoints), not %s", o.Model)
		}
		return openCheckpoint(cfg, runDir)
	default:
		return nil, fmt.Errorf("evaluate: --engine %q: must be %s, %s or %s", engine, EngineAuto, EngineONNX, EngineGoMLX)
	}
}

func openONNX(path string, so onnx.SessionOptions) (*evalModel, error) {
	mp, _, err := onnx.ReadModel(path)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	meta, err := onnx.ReadMetadata(mp)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %s: %w", path, err)
	}
	sess, err := onnx.NewSession(path, so)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %s: %w", path, err)
	}
	m := &evalModel{name: path, engine: "onnxruntime", shape: sess.InputShape, close: func() { sess.Close() }}
	if meta.Features.NMels > 0 {
		f := meta.Features
		m.features = &f
	}
	m.predict = func(x []float32, n int) ([]float32, []float32, error) {
		per := sess.SampleSize()
		var pos, sig []float32
		for i := 0; i < n; i += trainer.DefaultPredictBatch {
			k := min(trainer.DefaultPredictBatch, n-i)
			p, s, err := sess.Run(x[i*per:(i+k)*per], k)
			if err != nil {
				return nil, nil, err
			}
			pos, sig = append(pos, p...), append(sig, s...)
		}
		return pos, sig, nil
	}
	return m, nil
}

func openCheckpoint(cfg config.Config, runDir string) (*evalModel, error) {
	opened, err := backend.Open(cfg.Run.BackendOptions()) // as Train: run.backend and run.gpu_*.
	if err != nil {
		return nil, err
	}
	tm, err := trainer.LoadModel(opened.Backend, runDir)
	if err != nil {
		opened.Close()
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return &evalModel{
		name: filepath.Join(runDir, rundir.CheckpointsDir, tm.Checkpoint), engine: "gomlx " + opened.Spec,
		shape: tm.Config.InputShape, predict: tm.Predict, close: opened.Close,
	}, nil
}
