package trainer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/norm"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/metric"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/gomlx/gomlx/ml/train/optimizer/cosineschedule"
	"github.com/schollz/progressbar/v3"

	"github.com/heimdall-sdr/trainer/progress"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/stats"
)

// RunOptions are the per-invocation settings of Train. The zero value
// (except RunDir) is a quiet, fresh run.
type RunOptions struct {
	// RunDir receives the run config, checkpoints, metrics lines, the
	// summary and plots (rundir's layout). Required.
	RunDir string
	// Resume continues from the latest checkpoint in RunDir/checkpoints
	// (global step, weights, optimizer and schedule state, RNG, data
	// position, early-stopping state). Without it, a RunDir that already
	// holds checkpoints is an error.
	Resume bool
	// Progress receives a progress bar (loss, steps/s, ETA); nil: none.
	Progress io.Writer
	// Log receives start-up information and one line per evaluation; nil:
	// discarded.
	Log io.Writer
	// OnEpoch is called after each evaluation, once the checkpoint and the
	// metrics line are written (e.g. for experiment tracking). An error
	// stops the run and is returned.
	OnEpoch func(EpochMetrics) error
	// NoPlots skips writing RUN_DIR/plots.
	NoPlots bool
	// Devices is run.devices: "" or "1" trains on device 0; "all" trains
	// data parallel over every device the backend reports, splitting each
	// train.batch_size batch evenly over them (evaluation, prediction and
	// checkpoints stay on device 0).
	Devices string
}

// ErrNonFiniteLoss is matched (errors.Is) by a *NonFiniteLossError.
var ErrNonFiniteLoss = errors.New("non-finite loss")

// NonFiniteLossError reports a NaN or Inf loss; the run stops without
// saving, so the latest checkpoint stays the last good one.
type NonFiniteLossError struct {
	Phase          string // "train" (batch loss) or "val".
	Step           int64  // global step (1-based) whose loss was not finite.
	Loss           float64
	LastCheckpoint string // base name of the last good checkpoint, "" if none.
}

func (e *NonFiniteLossError) Error() string {
	ck := e.LastCheckpoint
	if ck == "" {
		ck = "none"
	}
	return fmt.Sprintf("trainer: %s loss is %v at step %d: run stopped; last good checkpoint: %s", e.Phase, e.Loss, e.Step, ck)
}

// Is makes errors.Is(err, ErrNonFiniteLoss) true.
func (e *NonFiniteLossError) Is(target error) bool { return target == ErrNonFiniteLoss }

// errEarlyStop is returned by the evaluation hook to end train.Loop.
var errEarlyStop = errors.New("early stopping")

// Indices of the train step's metric outputs: train.Trainer puts the batch
// loss and its moving average first, then ours (trainMetrics).
const (
	metricLoss = iota
	metricLossEMA
	metricMSE
	metricLog
	metricMAE
	metricSigma
	numMetrics
)

func trainMetrics() []metric.Interface {
	m := func(name string, fn func(labels, preds []*graph.Node) *graph.Node) metric.Interface {
		return metric.NewBaseMetric(name, name, metric.LossMetricType,
			func(_ *model.Scope, labels, preds []*graph.Node) *graph.Node { return fn(labels, preds) }, nil)
	}
	return []metric.Interface{
		m("mse_term", func(l, p []*graph.Node) *graph.Node { mse, _ := GaussianNLLTerms(l[0], p[0], p[1]); return mse }),
		m("log_term", func(l, p []*graph.Node) *graph.Node { _, lt := GaussianNLLTerms(l[0], p[0], p[1]); return lt }),
		m("mae", func(l, p []*graph.Node) *graph.Node { return graph.ReduceAllMean(graph.Abs(graph.Sub(l[0], p[0]))) }),
		m("sigma_mean", func(_, p []*graph.Node) *graph.Node { return graph.ReduceAllMean(p[1]) }),
	}
}

// newTrainer builds the GoMLX trainer: LocalizationNet, Gaussian NLL, AdamW
// with a cosine schedule from lr to min lr over totalSteps.
func newTrainer(backend compute.Backend, store *model.Store, mcfg ModelConfig, tcfg TrainConfig, totalSteps int) *train.Trainer {
	modelFn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		g := inputs[0].Graph()
		if scope.IsTraining(g) {
			cosineschedule.New(scope, g, dtypes.Float32).
				LearningRate(tcfg.LearningRate).
				MinLearningRate(tcfg.MinLearningRate).
				PeriodSteps(totalSteps).
				Done()
		}
		pos, sigma := LocalizationNet(scope.In(ModelScope), mcfg, inputs[0])
		return []*graph.Node{pos, sigma}
	}
	opt := optimizer.Adam().LearningRate(tcfg.LearningRate).WeightDecay(tcfg.WeightDecay).Done()
	return train.NewTrainer(backend, store, modelFn, newLossFn(tcfg), opt, trainMetrics(), nil)
}

// newStore returns a store seeded with seed and carrying the run config.
func newStore(seed int64, rc RunConfig) (*model.Store, error) {
	b, err := json.Marshal(rc)
	if err != nil {
		return nil, fmt.Errorf("trainer: encode run config: %w", err)
	}
	store := model.NewStore()
	store.SetParam(model.JoinPath(model.RootScopePath, model.ParamInitialSeed), seed)
	store.SetParam(model.JoinPath(model.RootScopePath, runConfigParam), string(b))
	return store, nil
}

// run is the state of one Train invocation, shared by the loop hooks.
type run struct {
	ctx        context.Context
	opts       RunOptions
	log        io.Writer
	data       Data
	shape      [3]int
	tcfg       TrainConfig
	spe        int64 // steps per epoch.
	stopStep   int64
	ckptDir    string
	store      *model.Store
	handler    *checkpoint.Handler
	evalExec   *model.Exec
	trainer    *train.Trainer
	ix         *checkpointIndex
	history    []EpochMetrics
	bar        *progressbar.ProgressBar
	sums       [numMetrics]float64
	sumSteps   int64
	sinceEval  time.Time
	evalStart  time.Time
	lastPos    []float32
	lastSigma  []float32
	lastEvalAt int64
	sigmaScale float64 // the last sigma calibration factor (1 if none).
	calib      Split   // the calibration holdout (train.calibration_holdout); empty if none.
}

// Train trains LocalizationNet on data in opts.RunDir with GoMLX's
// train.Trainer and train.Loop; evaluation, checkpoints, early stopping,
// metrics.jsonl, progress and the OnEpoch callback are loop hooks. It
// returns the run summary (also written as the run directory's summary).
func Train(ctx context.Context, backend compute.Backend, data Data, mcfg ModelConfig, tcfg TrainConfig, opts RunOptions) (*Summary, error) {
	started := time.Now()
	if backend == nil {
		return nil, errors.New("trainer: train: nil backend")
	}
	if err := errors.Join(mcfg.Validate(), tcfg.Validate()); err != nil {
		return nil, fmt.Errorf("trainer: invalid config: %w", err)
	}
	if err := data.Validate(); err != nil {
		return nil, err
	}
	if opts.RunDir == "" {
		return nil, errors.New("trainer: train: RunOptions.RunDir is required")
	}
	nDev, err := numTrainDevices(backend, opts.Devices)
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	if tcfg.BatchSize%nDev != 0 {
		return nil, fmt.Errorf("trainer: train.batch_size: %d is not divisible by the %d devices of run.devices %q", tcfg.BatchSize, nDev, opts.Devices)
	}
	r := &run{ctx: ctx, opts: opts, log: opts.Log, data: data, shape: data.inputShape(), tcfg: tcfg,
		ckptDir: filepath.Join(opts.RunDir, CheckpointsDir), lastEvalAt: -1, sigmaScale: 1}
	if r.log == nil {
		r.log = io.Discard
	}
	if tcfg.CalibrateSigma && tcfg.CalibrationHoldout > 0 {
		r.data.Train, r.calib = holdOut(data.Train, r.shape, tcfg.CalibrationHoldout)
		if r.calib.Len() == 0 || r.data.Train.Len() == 0 {
			return nil, fmt.Errorf("trainer: train.calibration_holdout %g of %d train samples leaves an empty side", tcfg.CalibrationHoldout, data.Train.Len())
		}
		fmt.Fprintf(r.log, "trainer: %d train samples held out to calibrate sigma (train.calibration_holdout %g); %d train\n",
			r.calib.Len(), tcfg.CalibrationHoldout, r.data.Train.Len())
	}
	data = r.data
	r.spe = int64(data.Train.Len() / tcfg.BatchSize)
	if r.spe == 0 {
		return nil, fmt.Errorf("trainer: train.batch_size: %d is larger than the train set (%d samples)", tcfg.BatchSize, data.Train.Len())
	}
	totalSteps := int64(tcfg.Epochs) * r.spe
	r.stopStep = totalSteps
	if tcfg.MaxSteps > 0 && int64(tcfg.MaxSteps) < totalSteps {
		r.stopStep = int64(tcfg.MaxSteps)
	}
	if err := os.MkdirAll(r.ckptDir, 0o755); err != nil {
		return nil, fmt.Errorf("trainer: create %s: %w", r.ckptDir, err)
	}
	rc := RunConfig{Model: mcfg, Train: tcfg, InputShape: r.shape}
	if err := r.prepareRunDir(rc); err != nil {
		return nil, err
	}

	if r.store, err = newStore(tcfg.Seed, rc); err != nil {
		return nil, err
	}
	if r.handler, err = checkpoint.Build(r.store).Dir(r.ckptDir).Keep(-1).Done(); err != nil {
		return nil, fmt.Errorf("trainer: open checkpoints in %s: %w", r.ckptDir, err)
	}
	// A variable restored from a checkpoint is created trainable unless the
	// code that uses it says otherwise; the RNG state's accessor does not,
	// so AdamW would "train" (weight-decay) it on resume. Pin it.
	if v := r.store.GetVariable(model.JoinPath(model.RootScopePath, model.RNGStateVariableName)); v != nil {
		v.SetTrainable(false)
	}
	// Same for the inference-only sigma calibration factor.
	if v := r.store.GetVariable(model.JoinPath(model.RootScopePath, ModelScope, SigmaScaleScope, SigmaScaleName)); v != nil {
		v.SetTrainable(false)
	}
	// A resumed checkpoint restores its params; keep this invocation's config.
	r.store.SetParam(model.JoinPath(model.RootScopePath, runConfigParam), mustJSON(rc))
	startStep := optimizer.GetGlobalStep(r.store)

	trainer := newTrainer(backend, r.store, mcfg, tcfg, int(totalSteps))
	r.trainer = trainer
	if r.evalExec, err = newInferenceExec(backend, r.store, mcfg); err != nil {
		return nil, err
	}
	widths, depths, stemStride := mcfg.Backbone()
	fmt.Fprintf(r.log, "trainer: backend %s\n", backend.Description())
	if nDev > 1 {
		fmt.Fprintf(r.log, "trainer: data parallel over %d devices, %d samples per device per step\n", nDev, tcfg.BatchSize/nDev)
	}
	fmt.Fprintf(r.log, "trainer: LocalizationNet preset %s widths %v depths %v stem stride %d: %d parameters\n",
		mcfg.Preset, widths, depths, stemStride, ParamCountShape(mcfg, r.shape))
	fmt.Fprintf(r.log, "trainer: %d train / %d val samples, batch %d, %d steps/epoch, %d epochs (%d steps), run to step %d\n",
		data.Train.Len(), data.Val.Len(), tcfg.BatchSize, r.spe, tcfg.Epochs, totalSteps, r.stopStep)
	if startStep > 0 {
		fmt.Fprintf(r.log, "trainer: resumed from %s at step %d\n", r.ix.latest().Name, startStep)
	}

	loop := train.NewLoop(trainer)
	loop.OnStep("heimdall: metrics, evaluation, checkpoints", 0, r.onStep)
	if startStep < r.stopStep && !r.ix.EarlyStopped {
		r.bar = progress.New(opts.Progress, r.stopStep-startStep, "training", "steps")
	}
	r.sinceEval, r.evalStart = time.Now(), time.Now()
	if !r.ix.EarlyStopped {
		ds := &trainDataset{ctx: ctx, split: data.Train, shape: r.shape, batch: tcfg.BatchSize, seed: tcfg.Seed, startStep: startStep}
		if nDev > 1 {
			var sds *shardedDataset
			if sds, err = newShardedDataset(backend, ds, nDev); err == nil {
				_, err = loop.RunToGlobalStep(sds, int(r.stopStep))
			}
		} else {
			_, err = loop.RunToGlobalStep(ds, int(r.stopStep))
		}
	}
	if r.bar != nil {
		_ = r.bar.Exit()
		fmt.Fprintln(opts.Progress)
	}
	if err != nil && !errors.Is(err, errEarlyStop) {
		var nf *NonFiniteLossError
		if errors.As(err, &nf) {
			return nil, nf
		}
		return nil, fmt.Errorf("trainer: training loop: %w", err)
	}
	return r.finish(backend, mcfg, loop, started)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // Plain structs: cannot fail.
	}
	return string(b)
}

// prepareRunDir checks resume preconditions, drops incomplete checkpoints
// and metrics lines past the latest checkpoint, and writes config.json.
func (r *run) prepareRunDir(rc RunConfig) error {
	var err error
	if r.ix, err = readIndex(r.ckptDir); err != nil {
		return err
	}
	latest := r.ix.latest()
	if latest != nil && !r.opts.Resume {
		return fmt.Errorf("trainer: %s already has checkpoints (latest %s): set Resume or use a new run directory", r.ckptDir, latest.Name)
	}
	if latest != nil {
		b, err := os.ReadFile(filepath.Join(r.opts.RunDir, ConfigFile))
		if err != nil {
			return fmt.Errorf("trainer: resume: read saved config: %w", err)
		}
		var saved RunConfig
		if err := json.Unmarshal(b, &saved); err != nil {
			return fmt.Errorf("trainer: resume: parse %s: %w", ConfigFile, err)
		}
		a, b2 := saved, rc
		a.Train.MaxSteps, b2.Train.MaxSteps = 0, 0
		// Compare as saved (JSON): a nil and an empty slice are the same
		// config (omitempty keys come back nil).
		if mustJSON(a) != mustJSON(b2) {
			return fmt.Errorf("trainer: resume: configuration differs from the run's %s (only train.max_steps may change): saved %s, given %s",
				ConfigFile, mustJSON(saved), mustJSON(rc))
		}
	}
	if err := removeUnlisted(r.ckptDir, r.ix); err != nil {
		return err
	}
	var keepUpTo int64 = -1
	if latest != nil {
		keepUpTo = latest.Step
	}
	if r.history, err = truncateMetrics(filepath.Join(r.opts.RunDir, MetricsFile), keepUpTo); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		return fmt.Errorf("trainer: encode config: %w", err)
	}
	return writeFileAtomic(filepath.Join(r.opts.RunDir, ConfigFile), append(b, '\n'))
}

// truncateMetrics keeps the metrics.jsonl lines with step <= upTo (all
// removed when upTo < 0) and returns them as history (epoch, step, losses).
func truncateMetrics(path string, upTo int64) ([]EpochMetrics, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trainer: read %s: %w", path, err)
	}
	var kept bytes.Buffer
	var history []EpochMetrics
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var line struct {
			Epoch     int      `json:"epoch"`
			Step      int64    `json:"step"`
			TrainLoss *float64 `json:"train/loss"`
			ValLoss   *float64 `json:"val/loss"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Step > upTo {
			continue
		}
		kept.Write(sc.Bytes())
		kept.WriteByte('\n')
		e := EpochMetrics{Epoch: line.Epoch, Step: line.Step}
		e.Train.Loss, e.Val.Loss = deref(line.TrainLoss), deref(line.ValLoss)
		history = append(history, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trainer: read %s: %w", path, err)
	}
	return history, writeFileAtomic(path, kept.Bytes())
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func scalar(t *tensors.Tensor) float64 {
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (r *run) lastCheckpointName() string {
	if c := r.ix.latest(); c != nil {
		return c.Name
	}
	return ""
}

// onStep is the loop hook: NaN guard, train metric sums, progress, and at
// each epoch end (and at the last step) evaluation + checkpoint.
func (r *run) onStep(loop *train.Loop, metrics []*tensors.Tensor) error {
	step := int64(loop.LoopStep) + 1 // Global steps done, counting this one.
	if len(metrics) < numMetrics {
		return fmt.Errorf("trainer: step %d: %d metrics, want %d", step, len(metrics), numMetrics)
	}
	loss := scalar(metrics[metricLoss])
	if !finite(loss) {
		return &NonFiniteLossError{Phase: "train", Step: step, Loss: loss, LastCheckpoint: r.lastCheckpointName()}
	}
	for i := range numMetrics {
		r.sums[i] += scalar(metrics[i])
	}
	r.sumSteps++
	epoch := int((step + r.spe - 1) / r.spe)
	if r.bar != nil {
		r.bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f", epoch, r.tcfg.Epochs, scalar(metrics[metricLossEMA])))
		_ = r.bar.Add(1)
	}
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("trainer: stopped after step %d: %w", step, err)
	}
	if step%r.spe != 0 && step != r.stopStep {
		return nil
	}
	if epoch%r.tcfg.EvalEvery != 0 && step != r.stopStep {
		return nil
	}
	return r.evaluate(step, epoch)
}

// evaluate runs the val set in inference mode, saves a checkpoint, updates
// the index (best, pruning, early stopping), appends metrics.jsonl and
// calls OnEpoch.
func (r *run) evaluate(step int64, epoch int) error {
	trainSecs := time.Since(r.sinceEval).Seconds()
	val := r.data.Val
	// Recompute the batch-norm statistics for the current weights (see
	// bnStatsBatches) before evaluating and checkpointing.
	ds := &statsDataset{ctx: r.ctx, split: r.data.Train, shape: r.shape, batch: r.tcfg.BatchSize, maxBatches: bnStatsBatches}
	if _, err := norm.UpdateBatchNormAverages(r.trainer, ds); err != nil {
		return fmt.Errorf("trainer: batch-norm statistics at step %d: %w", step, err)
	}
	var holdoutKm float64
	if r.tcfg.CalibrateSigma {
		var err error
		if holdoutKm, err = r.calibrateSigma(); err != nil {
			return fmt.Errorf("trainer: sigma calibration at step %d: %w", step, err)
		}
	}
	pos, sigma, err := predictAll(r.evalExec, val.X, val.Len(), r.shape, r.tcfg.evalBatch())
	if err != nil {
		return fmt.Errorf("trainer: evaluate at step %d: %w", step, err)
	}
	vm := Evaluate(val.Y, pos, sigma, r.data.ValBaselines)
	if !finite(vm.Loss) {
		return &NonFiniteLossError{Phase: "val", Step: step, Loss: vm.Loss, LastCheckpoint: r.lastCheckpointName()}
	}
	r.lastPos, r.lastSigma, r.lastEvalAt = pos, sigma, step
	n := float64(r.sumSteps)
	em := EpochMetrics{
		Epoch: epoch, Step: step, Val: vm, LR: r.learningRate(),
		// train/loss is the spec's NLL (its two terms), also when the
		// objective is beta-NLL.
		Train: TrainMetrics{Loss: (r.sums[metricMSE] + r.sums[metricLog]) / n, MSETerm: r.sums[metricMSE] / n,
			LogTerm: r.sums[metricLog] / n, MAE: r.sums[metricMAE] / n, SigmaMean: r.sums[metricSigma] / n},
		SamplesPerS:     n * float64(r.tcfg.BatchSize) / trainSecs,
		HoldoutKmMedian: holdoutKm,
	}
	entry := CheckpointEntry{Epoch: epoch, Step: step, ValLoss: vm.Loss, ValKmMedian: vm.KmMedian, HoldoutKmMedian: holdoutKm}
	sel := r.tcfg.selectBy()
	em.Best = r.ix.Best == nil || entry.score(sel) < r.ix.Best.score(sel)

	if err := r.handler.Save(); err != nil {
		return fmt.Errorf("trainer: save checkpoint at step %d: %w", step, err)
	}
	list, err := r.handler.ListCheckpoints()
	if err != nil || len(list) == 0 {
		return fmt.Errorf("trainer: list checkpoints after saving step %d: %w", step, err)
	}
	entry.Name = list[len(list)-1]
	r.ix.Checkpoints = append(r.ix.Checkpoints, entry)
	if em.Best {
		r.ix.Best, r.ix.BadEvals = &entry, 0
	} else {
		r.ix.BadEvals++
	}
	stop := r.tcfg.Patience > 0 && r.ix.BadEvals >= r.tcfg.Patience
	r.ix.EarlyStopped = stop
	if err := r.ix.prune(r.ckptDir, r.tcfg.KeepBest, sel); err != nil {
		return err
	}
	if err := writeIndex(r.ckptDir, r.ix); err != nil {
		return err
	}
	em.EpochSeconds = time.Since(r.evalStart).Seconds()
	if err := appendJSONLine(filepath.Join(r.opts.RunDir, MetricsFile), em.Flat()); err != nil {
		return err
	}
	r.history = append(r.history, em)
	mark := ""
	if em.Best {
		mark = " *"
	}
	hold := ""
	if holdoutKm > 0 {
		hold = fmt.Sprintf(" | holdout median %.2f km", holdoutKm)
	}
	fmt.Fprintf(r.log, "epoch %3d step %6d: train loss %.4f | val loss %.4f mae %.4f° km mean %.2f median %.2f p90 %.2f | in 1σ %.0f%% 2σ %.0f%% (σ scale %.3f)%s | lr %.2e | %.0f samples/s%s\n",
		epoch, step, em.Train.Loss, vm.Loss, vm.MAE, vm.KmMean, vm.KmMedian, vm.KmP90,
		100*vm.Within1Sigma, 100*vm.Within2Sigma, r.sigmaScale, hold, em.LR, em.SamplesPerS, mark)
	if r.opts.OnEpoch != nil {
		if err := r.opts.OnEpoch(em); err != nil {
			return fmt.Errorf("trainer: OnEpoch at epoch %d: %w", epoch, err)
		}
	}
	r.sums, r.sumSteps = [numMetrics]float64{}, 0
	r.sinceEval, r.evalStart = time.Now(), time.Now()
	if stop {
		fmt.Fprintf(r.log, "trainer: early stopping: no %s improvement in %d evaluations (best epoch %d)\n", sel, r.tcfg.Patience, r.ix.Best.Epoch)
		return errEarlyStop
	}
	return nil
}

// calibrateSigma sets the inference-only sigma scale k (SigmaScaleVariable)
// fitted (sigmaScale, train.calibrate_to) in inference mode on the
// calibration holdout (train.calibration_holdout) or, without one, on the
// first bnStatsBatches*batch *train* samples; by default the k that
// minimises the Gaussian NLL, k^2 = mean((y - mu)^2 / sigma^2) over
// samples x 2 with sigma at k = 1. With a holdout it also returns the
// holdout's median km error (for train.select_by), 0 without one.
// Training fits sigma to train-mode errors (dropout, batch statistics),
// which are larger than the inference-mode ones, so the raw sigma is too
// wide; on samples the model has fitted the inference-mode errors are too
// small, hence the holdout. The val set is not used.
func (r *run) calibrateSigma() (holdoutKm float64, err error) {
	v := r.store.GetVariable(model.JoinPath(model.RootScopePath, ModelScope, SigmaScaleScope, SigmaScaleName))
	if v == nil {
		return 0, errors.New("sigma calibration variable missing")
	}
	if err := v.SetValue(tensors.FromScalar(float32(1))); err != nil {
		return 0, err
	}
	src := r.data.Train
	n := min(src.Len(), bnStatsBatches*r.tcfg.BatchSize)
	if r.calib.Len() > 0 {
		src, n = r.calib, r.calib.Len()
	}
	per := sampleSize(r.shape)
	pos, sigma, err := predictAll(r.evalExec, src.X[:n*per], n, r.shape, r.tcfg.evalBatch())
	if err != nil {
		return 0, err
	}
	y := src.Y[:2*n]
	if r.calib.Len() > 0 {
		holdoutKm = stats.Percentile(KmErrors(y, pos), 50)
	}
	k := sigmaScale(y, pos, sigma, r.tcfg.CalibrateTo)
	r.sigmaScale = k
	return holdoutKm, v.SetValue(tensors.FromScalar(float32(k)))
}

// sigmaScale is the calibration factor k of the sigmas (flat [N, 2]
// degrees, at k = 1) for truth y and positions pos: with to "coverage" the
// k that puts GaussianWithin1Sigma of the samples inside their 1-sigma
// ellipse (the 39.3% quantile of each sample's normalised squared distance,
// square-rooted), otherwise the NLL-optimal k, k^2 = mean((y - mu)^2 /
// sigma^2) over samples x 2. It is 1 when undefined (no samples, zero
// errors).
func sigmaScale(y, pos, sigma []float32, to string) float64 {
	n := len(pos) / 2
	if n == 0 {
		return 1
	}
	d2 := make([]float64, n)
	var sum float64
	for i := range n {
		d2[i] = ellipseDist2(y, pos, sigma, i)
		sum += d2[i]
	}
	var k float64
	if to == CalibrateCoverage {
		k = math.Sqrt(stats.Percentile(d2, 100*GaussianWithin1Sigma))
	} else {
		k = math.Sqrt(sum / float64(2*n))
	}
	if !finite(k) || k <= 0 {
		return 1
	}
	return k
}

// learningRate reads the learning-rate variable the cosine schedule set.
func (r *run) learningRate() float64 {
	v := r.store.GetVariable(model.JoinPath(model.RootScopePath, optimizer.Scope, optimizer.ParamLearningRate))
	if v == nil {
		return math.NaN()
	}
	t, err := v.Value()
	if err != nil {
		return math.NaN()
	}
	return scalar(t)
}

func appendJSONLine(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("trainer: encode metrics line: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("trainer: open %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("trainer: append to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("trainer: close %s: %w", path, err)
	}
	return nil
}

// finish evaluates the best checkpoint, writes plots and the summary.
func (r *run) finish(backend compute.Backend, mcfg ModelConfig, loop *train.Loop, started time.Time) (*Summary, error) {
	best, latest := r.ix.Best, r.ix.latest()
	if best == nil || latest == nil {
		return nil, fmt.Errorf("trainer: no evaluated checkpoint in %s", r.ckptDir)
	}
	pos, sigma := r.lastPos, r.lastSigma
	if r.lastEvalAt != best.Step {
		m, err := LoadCheckpoint(backend, r.ckptDir, best.Name)
		if err != nil {
			return nil, err
		}
		if pos, sigma, err = predictAll(m.exec, r.data.Val.X, r.data.Val.Len(), r.shape, r.tcfg.evalBatch()); err != nil {
			return nil, fmt.Errorf("trainer: evaluate best checkpoint %s: %w", best.Name, err)
		}
	}
	s := &Summary{
		RunDir: r.opts.RunDir, Backend: backend.Description(), Preset: mcfg.Preset,
		Params: ParamCountShape(mcfg, r.shape), Epochs: latest.Epoch, Steps: optimizer.GetGlobalStep(r.store),
		StepsPerEpoch: int(r.spe), StopReason: "completed", BestEpoch: best.Epoch, BestStep: best.Step,
		BestCheckpoint: best.Name, SelectedBy: r.tcfg.selectBy(), TrainSeconds: time.Since(started).Seconds(),
		Val: Evaluate(r.data.Val.Y, pos, sigma, r.data.ValBaselines),
	}
	switch {
	case r.ix.EarlyStopped:
		s.StopReason = "early_stopping"
	case s.Steps < int64(r.tcfg.Epochs)*r.spe:
		s.StopReason = "max_steps"
	}
	if len(loop.TrainStepDurations) > 0 {
		s.SamplesPerS = float64(r.tcfg.BatchSize) / loop.MedianTrainStepDuration().Seconds()
	}
	if !r.opts.NoPlots {
		if err := WritePlots(filepath.Join(r.opts.RunDir, PlotsDir), r.history, r.data.Val.Y, pos, r.data.ValBaselines); err != nil {
			fmt.Fprintf(r.log, "trainer: plots: %v\n", err)
		}
	}
	if err := rundir.WriteSummary(r.opts.RunDir, (*rundir.Summary)(sanitize(s))); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	return s, nil
}

// sanitize returns a copy of s with NaN/Inf (not representable in JSON)
// replaced by -1.
func sanitize(s *Summary) *Summary {
	c := *s
	fix := func(p ...*float64) {
		for _, f := range p {
			if !finite(*f) {
				*f = -1
			}
		}
	}
	v := &c.Val
	fix(&c.SamplesPerS, &v.Loss, &v.MSETerm, &v.LogTerm, &v.MAE, &v.SigmaMean, &v.SigmaMin, &v.SigmaMax,
		&v.KmMean, &v.KmStd, &v.KmMedian, &v.KmP90, &v.Within1Sigma, &v.Within2Sigma)
	v.Baselines = append([]BaselineMetrics(nil), v.Baselines...)
	for i := range v.Baselines {
		b := &v.Baselines[i]
		fix(&b.KmMean, &b.KmMedian, &b.KmP90)
	}
	return &c
}

// bnStatsBatches is how many train batches (in split order) recompute the
// batch-norm statistics before each evaluation ("precise BN"): GoMLX's
// norm.UpdateBatchNormAverages resets the running averages and, with the
// default momentum 0.99, takes the exact mean over these batches, twice
// (the second pass normalises with the new statistics). 16 x 32 = 512
// samples costs ~4 s per evaluation on the 2-core CPU.
const bnStatsBatches = 16

// statsDataset is one pass over a split in order, in full batches (the last
// partial batch is dropped; at most maxBatches when > 0), for recomputing
// batch-norm statistics.
type statsDataset struct {
	ctx        context.Context
	split      Split
	shape      [3]int
	batch      int
	maxBatches int
}

var _ train.Dataset = (*statsDataset)(nil)

func (d *statsDataset) Name() string { return "heimdall-bn-stats" }

func (d *statsDataset) Iter() iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		n := d.split.Len() / d.batch
		if d.maxBatches > 0 {
			n = min(n, d.maxBatches)
		}
		idx := make([]int, d.batch)
		for b := range n {
			if err := d.ctx.Err(); err != nil {
				yield(train.Batch{}, fmt.Errorf("trainer: data: %w", err))
				return
			}
			for i := range idx {
				idx[i] = b*d.batch + i
			}
			x, y := gather(d.split, d.shape, idx, d.batch)
			batch := train.Batch{
				Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, d.batch, d.shape[0], d.shape[1], d.shape[2])},
				Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(y, d.batch, 2)},
			}
			if !yield(batch, nil) {
				return
			}
		}
	}
}
