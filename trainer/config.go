package trainer

import (
	"errors"
	"fmt"
	"strings"
)

// Model presets. PresetCPU is the default: small enough that a 2-core CPU
// runs a training step at batch 32 in a few hundred milliseconds.
const (
	PresetCPU   = "cpu"
	PresetTiny  = "tiny"
	PresetSmall = "small"
	PresetBase  = "base"
	PresetLarge = "large"
)

// Receiver encoders (model.receiver_encoder).
const (
	// EncoderJoint stacks the receivers as the stem's input channels, so the
	// first convolution mixes them.
	EncoderJoint = "joint"
	// EncoderShared runs one backbone (shared weights) over each receiver's
	// [n_mels, frames] map as its own batch element and concatenates the
	// pooled per-receiver features in receiver order before the heads.
	EncoderShared = "shared"
)

// preset holds the backbone shape of one preset.
type preset struct {
	widths, depths []int
	stemStride     int
}

// presets maps preset names to backbone shapes. The widths of tiny..large
// are those of torchvision's ConvNeXt presets; the depths are scaled for
// standard-convolution residual blocks (two dense 3x3 convs, 18*C^2
// weights) versus ConvNeXt blocks (7x7 depthwise + two 1x1 with 4x
// expansion, ~8*C^2 weights): depth = max(1, round(convnext_depth*8/18)),
// so each stage keeps roughly the ConvNeXt parameter budget
// (3 -> 1, 9 -> 4, 27 -> 12).
var presets = map[string]preset{
	PresetCPU:   {widths: []int{24, 48, 96}, depths: []int{1, 1, 1}, stemStride: 2},
	PresetTiny:  {widths: []int{96, 192, 384, 768}, depths: []int{1, 1, 4, 1}, stemStride: 2},
	PresetSmall: {widths: []int{96, 192, 384, 768}, depths: []int{1, 1, 12, 1}, stemStride: 2},
	PresetBase:  {widths: []int{128, 256, 512, 1024}, depths: []int{1, 1, 12, 1}, stemStride: 2},
	PresetLarge: {widths: []int{192, 384, 768, 1536}, depths: []int{1, 1, 12, 1}, stemStride: 2},
}

// Presets returns the preset names in size order.
func Presets() []string {
	return []string{PresetCPU, PresetTiny, PresetSmall, PresetBase, PresetLarge}
}

// ModelConfig is the `model:` section of the configuration.
type ModelConfig struct {
	// Preset picks the backbone widths/depths: cpu, tiny, small, base or
	// large. Default "cpu".
	Preset string `mapstructure:"preset" json:"preset"`
	// Widths overrides the preset's per-stage channel counts. Default: empty
	// (use the preset).
	Widths []int `mapstructure:"widths" json:"widths,omitempty"`
	// Depths overrides the preset's per-stage residual block counts; it must
	// have as many entries as the widths in use. Default: empty (use the
	// preset).
	Depths []int `mapstructure:"depths" json:"depths,omitempty"`
	// ReceiverEncoder is how the backbone sees the receivers: "joint" (the
	// receivers are the stem's input channels) or "shared" (the backbone
	// encodes each receiver separately with shared weights; the heads see
	// the concatenation of the receivers' pooled features). Default "joint".
	ReceiverEncoder string `mapstructure:"receiver_encoder" json:"receiver_encoder"`
	// MelProfile feeds the heads, besides the pooled backbone features, each
	// receiver's time-averaged mel spectrum (the input averaged over frames,
	// [receivers*n_mels] values per sample): global average pooling keeps no
	// mel position, and the per-band levels are what a received-power fit
	// uses. Default false.
	MelProfile bool `mapstructure:"mel_profile" json:"mel_profile,omitempty"`
	// MelProfileDim, when > 0, projects each receiver's mel profile with one
	// Dense(n_mels -> MelProfileDim) shared by all receivers (a per-receiver
	// level estimator learnt from 7x the samples) before the heads, which
	// then see receivers*MelProfileDim profile values; 0 passes the raw
	// receivers*n_mels profile. Used with MelProfile. Default 0.
	MelProfileDim int `mapstructure:"mel_profile_dim" json:"mel_profile_dim,omitempty"`
	// Levels, when > 0, feeds the heads, besides the pooled backbone
	// features, each receiver's received level and its fading: the time
	// mean and the time standard deviation of the lowest Levels mel bands
	// ([receivers*Levels*2] values per sample, receiver-major: the means,
	// then the standard deviations), through the level encoder
	// (LevelHidden). With dataset.normalize global the lowest band is the
	// receiver's received power in dB (docs/TRAINING.md, fifth round): the
	// quantity every power-based locator uses, which global average pooling
	// and the 128-band profile bury. Default 0 (off, HEIMDALL's network).
	Levels int `mapstructure:"levels" json:"levels,omitempty"`
	// LevelHidden are the hidden sizes of the level encoder (Dense + ReLU
	// each, no dropout) that maps the level features before they join the
	// backbone features; empty passes the raw level features. Used with
	// Levels. Default [256, 256].
	LevelHidden []int `mapstructure:"level_hidden" json:"level_hidden,omitempty"`
	// StemKernel is the stem convolution's kernel size. Default 3.
	StemKernel int `mapstructure:"stem_kernel" json:"stem_kernel"`
	// StemStride is the stem convolution's stride; 0 uses the preset's
	// (2 for every preset). Default 0.
	StemStride int `mapstructure:"stem_stride" json:"stem_stride"`
	// HeadHidden are the hidden sizes of both heads. Default [128, 64].
	HeadHidden []int `mapstructure:"head_hidden" json:"head_hidden"`
	// HeadDropout are the dropout rates after each hidden layer of the heads
	// (same length as HeadHidden). Default [0.3, 0.2].
	HeadDropout []float64 `mapstructure:"head_dropout" json:"head_dropout"`
	// UncertaintyHeadDropout overrides HeadDropout for the uncertainty
	// (sigma) head; empty uses HeadDropout. Dropout noise in the sigma head
	// biases sigma wide: the NLL's 1/sigma^2 is convex, so a noisy sigma is
	// pushed up to avoid the small draws. Default: empty.
	UncertaintyHeadDropout []float64 `mapstructure:"uncertainty_head_dropout" json:"uncertainty_head_dropout,omitempty"`
	// NormalizePositions makes the position head predict
	// (position - receivers' centroid) / PositionScale; the model output is
	// always degrees. Default true.
	NormalizePositions bool `mapstructure:"normalize_positions" json:"normalize_positions"`
	// PositionScale is the scale in degrees used when NormalizePositions is
	// set. Default 1.0.
	PositionScale float64 `mapstructure:"position_scale" json:"position_scale"`
}

// DefaultModelConfig returns the defaults documented on ModelConfig.
func DefaultModelConfig() ModelConfig {
	return ModelConfig{
		Preset:             PresetCPU,
		ReceiverEncoder:    EncoderJoint,
		StemKernel:         3,
		HeadHidden:         []int{128, 64},
		HeadDropout:        []float64{0.3, 0.2},
		LevelHidden:        []int{256, 256},
		NormalizePositions: true,
		PositionScale:      1.0,
	}
}

// Backbone returns the widths, depths and stem stride in use: the preset's,
// overridden by Widths/Depths/StemStride when set.
func (c ModelConfig) Backbone() (widths, depths []int, stemStride int) {
	p := presets[c.Preset]
	widths, depths, stemStride = p.widths, p.depths, p.stemStride
	if len(c.Widths) > 0 {
		widths = c.Widths
	}
	if len(c.Depths) > 0 {
		depths = c.Depths
	}
	if c.StemStride > 0 {
		stemStride = c.StemStride
	}
	if stemStride == 0 {
		stemStride = 2
	}
	return append([]int(nil), widths...), append([]int(nil), depths...), stemStride
}

// SharedEncoder reports whether the backbone encodes each receiver
// separately (model.receiver_encoder "shared"); "" (configs and checkpoints
// from before the key existed) is "joint".
func (c ModelConfig) SharedEncoder() bool { return c.ReceiverEncoder == EncoderShared }

// Validate checks the configuration; errors name the offending key.
func (c ModelConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("model.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, ok := presets[c.Preset]; !ok {
		bad("preset", "must be one of %s, got %q", strings.Join(Presets(), ", "), c.Preset)
	}
	if e := c.ReceiverEncoder; e != "" && e != EncoderJoint && e != EncoderShared {
		bad("receiver_encoder", "must be %q or %q, got %q", EncoderJoint, EncoderShared, c.ReceiverEncoder)
	}
	widths, depths, _ := c.Backbone()
	for i, w := range c.Widths {
		if w <= 0 {
			bad("widths", "entry %d must be > 0, got %d", i, w)
		}
	}
	for i, d := range c.Depths {
		if d < 0 {
			bad("depths", "entry %d must be >= 0, got %d", i, d)
		}
	}
	if len(widths) == 0 {
		bad("widths", "must not be empty")
	}
	if len(widths) != len(depths) {
		bad("depths", "must have as many entries as model.widths (%d), got %d", len(widths), len(depths))
	}
	if c.StemKernel <= 0 {
		bad("stem_kernel", "must be > 0, got %d", c.StemKernel)
	}
	if c.StemStride < 0 {
		bad("stem_stride", "must be >= 0, got %d", c.StemStride)
	}
	if len(c.HeadHidden) == 0 {
		bad("head_hidden", "must not be empty")
	}
	for i, h := range c.HeadHidden {
		if h <= 0 {
			bad("head_hidden", "entry %d must be > 0, got %d", i, h)
		}
	}
	if len(c.HeadDropout) != len(c.HeadHidden) {
		bad("head_dropout", "must have as many entries as model.head_hidden (%d), got %d", len(c.HeadHidden), len(c.HeadDropout))
	}
	for i, d := range c.HeadDropout {
		if d < 0 || d >= 1 {
			bad("head_dropout", "entry %d must be in [0, 1), got %g", i, d)
		}
	}
	if c.Levels < 0 {
		bad("levels", "must be >= 0, got %d", c.Levels)
	}
	for i, h := range c.LevelHidden {
		if h <= 0 {
			bad("level_hidden", "entry %d must be > 0, got %d", i, h)
		}
	}
	if c.MelProfileDim < 0 {
		bad("mel_profile_dim", "must be >= 0, got %d", c.MelProfileDim)
	}
	if n := len(c.UncertaintyHeadDropout); n > 0 && n != len(c.HeadHidden) {
		bad("uncertainty_head_dropout", "must be empty or have as many entries as model.head_hidden (%d), got %d", len(c.HeadHidden), n)
	}
	for i, d := range c.UncertaintyHeadDropout {
		if d < 0 || d >= 1 {
			bad("uncertainty_head_dropout", "entry %d must be in [0, 1), got %g", i, d)
		}
	}
	if c.NormalizePositions && c.PositionScale <= 0 {
		bad("position_scale", "must be > 0, got %g", c.PositionScale)
	}
	return errors.Join(errs...)
}

// TrainConfig is the `train:` section of the configuration. Checkpoints go to
// RUN_DIR/checkpoints (see RunOptions).
type TrainConfig struct {
	// Epochs is the maximum number of epochs. Default 100.
	Epochs int `mapstructure:"epochs" json:"epochs"`
	// BatchSize is the training batch size; the last partial batch of each
	// epoch is dropped. Default 32.
	BatchSize int `mapstructure:"batch_size" json:"batch_size"`
	// LearningRate is AdamW's peak learning rate. Default 1e-3.
	LearningRate float64 `mapstructure:"learning_rate" json:"learning_rate"`
	// WeightDecay is AdamW's decoupled weight decay. Default 1e-5.
	WeightDecay float64 `mapstructure:"weight_decay" json:"weight_decay"`
	// MinLearningRate is where the cosine schedule ends, after
	// epochs * steps_per_epoch steps. Default 1e-6.
	MinLearningRate float64 `mapstructure:"min_learning_rate" json:"min_learning_rate"`
	// Patience is how many evaluations without an improvement (SelectBy) stop
	// the run; 0 disables early stopping. Default 10.
	Patience int `mapstructure:"patience" json:"patience"`
	// KeepBest is how many best checkpoints (by SelectBy) are kept besides
	// the last one. Default 3.
	KeepBest int `mapstructure:"keep_best" json:"keep_best"`
	// Seed seeds weight initialisation, dropout and the per-epoch shuffle.
	// Default 42.
	Seed int64 `mapstructure:"seed" json:"seed"`
	// EvalEvery is the evaluation (and checkpoint) period in epochs.
	// Default 1.
	EvalEvery int `mapstructure:"eval_every" json:"eval_every"`
	// MaxSteps stops the run after this global step (0 = no limit); the
	// learning-rate schedule still spans all epochs. For smoke tests.
	// Default 0.
	MaxSteps int `mapstructure:"max_steps" json:"max_steps"`
	// BetaNLL is the beta of the beta-NLL training objective (BetaNLL):
	// 0 trains on the spec's Gaussian NLL itself; 0.5..1 stop hard samples'
	// large sigma from starving the position head of gradient. The logged
	// losses and checkpoint selection always use the Gaussian NLL.
	// Default 0.
	BetaNLL float64 `mapstructure:"beta_nll" json:"beta_nll"`
	// CalibrateSigma fits, before each evaluation, one inference-only scale
	// of the predicted sigma that minimises the Gaussian NLL in inference
	// mode on the calibration holdout (CalibrationHoldout) or, without one,
	// on part of the train split (see calibrateSigma); it is part of the
	// checkpoint and the ONNX export. Default false.
	CalibrateSigma bool `mapstructure:"calibrate_sigma" json:"calibrate_sigma,omitempty"`
	// CalibrationHoldout is the share of the train split held out from
	// training (evenly spaced in session order) to fit the sigma
	// calibration on: samples the model has not fitted, so the scale
	// corrects for the generalisation gap too (fitted on train samples it
	// came out too narrow, docs/TRAINING.md, fourth round). The val split
	// is never used. Needs CalibrateSigma. Default 0 (no holdout).
	CalibrationHoldout float64 `mapstructure:"calibration_holdout" json:"calibration_holdout,omitempty"`
	// EvalBatchSize is the batch size for evaluation and prediction; 0 uses
	// BatchSize. Default 0.
	EvalBatchSize int `mapstructure:"eval_batch_size" json:"eval_batch_size"`
	// SelectBy is what picks the best checkpoint (the one evaluated,
	// exported and loaded) and drives early stopping and pruning:
	// "val_loss" (empty is the same; the spec's lowest val Gaussian NLL),
	// "val_km_median" (lowest val median error in km), or
	// "holdout_km_median" (lowest median km on the calibration holdout,
	// train.calibration_holdout: the val split then plays no part in the
	// choice). The NLL can be spoiled by a few val sessions with a
	// collapsed sigma while positions still improve (docs/TRAINING.md,
	// sixth round). Default "" (val_loss).
	SelectBy string `mapstructure:"select_by" json:"select_by,omitempty"`
	// CalibrateTo is what the sigma calibration (CalibrateSigma) fits:
	// "nll" (empty is the same; the scale minimising the Gaussian NLL) or
	// "coverage" (the scale that puts 1-exp(-1/2) = 39.3% of the
	// calibration samples inside their 1-sigma ellipse, what a 2-D
	// Gaussian would; with heavy-tailed errors the NLL scale is widened by
	// the tail and covers more). Default "" (nll).
	CalibrateTo string `mapstructure:"calibrate_to" json:"calibrate_to,omitempty"`
}

// Values of TrainConfig.SelectBy and CalibrateTo.
const (
	SelectValLoss         = "val_loss"
	SelectValKmMedian     = "val_km_median"
	SelectHoldoutKmMedian = "holdout_km_median"
	CalibrateNLL          = "nll"
	CalibrateCoverage     = "coverage"
)

// selectBy is SelectBy with the empty default resolved.
func (c TrainConfig) selectBy() string {
	if c.SelectBy == "" {
		return SelectValLoss
	}
	return c.SelectBy
}

// DefaultTrainConfig returns the defaults documented on TrainConfig.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		Epochs:          100,
		BatchSize:       32,
		LearningRate:    1e-3,
		WeightDecay:     1e-5,
		MinLearningRate: 1e-6,
		Patience:        10,
		KeepBest:        3,
		Seed:            42,
		EvalEvery:       1,
	}
}

// Validate checks the configuration; errors name the offending key.
func (c TrainConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("train.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Epochs <= 0 {
		bad("epochs", "must be > 0, got %d", c.Epochs)
	}
	if c.BatchSize <= 0 {
		bad("batch_size", "must be > 0, got %d", c.BatchSize)
	}
	if c.LearningRate <= 0 {
		bad("learning_rate", "must be > 0, got %g", c.LearningRate)
	}
	if c.WeightDecay < 0 {
		bad("weight_decay", "must be >= 0, got %g", c.WeightDecay)
	}
	if c.MinLearningRate < 0 || c.MinLearningRate > c.LearningRate {
		bad("min_learning_rate", "must be in [0, train.learning_rate=%g], got %g", c.LearningRate, c.MinLearningRate)
	}
	if c.Patience < 0 {
		bad("patience", "must be >= 0, got %d", c.Patience)
	}
	if c.KeepBest < 1 {
		bad("keep_best", "must be >= 1, got %d", c.KeepBest)
	}
	if c.EvalEvery <= 0 {
		bad("eval_every", "must be > 0, got %d", c.EvalEvery)
	}
	if c.MaxSteps < 0 {
		bad("max_steps", "must be >= 0, got %d", c.MaxSteps)
	}
	if c.BetaNLL < 0 || c.BetaNLL > 1 {
		bad("beta_nll", "must be in [0, 1], got %g", c.BetaNLL)
	}
	if c.EvalBatchSize < 0 {
		bad("eval_batch_size", "must be >= 0, got %d", c.EvalBatchSize)
	}
	if c.CalibrationHoldout < 0 || c.CalibrationHoldout >= 0.5 {
		bad("calibration_holdout", "must be in [0, 0.5), got %g", c.CalibrationHoldout)
	} else if c.CalibrationHoldout > 0 && !c.CalibrateSigma {
		bad("calibration_holdout", "%g needs train.calibrate_sigma: true (the holdout only fits the sigma calibration)", c.CalibrationHoldout)
	}
	switch c.selectBy() {
	case SelectValLoss, SelectValKmMedian:
	case SelectHoldoutKmMedian:
		if c.CalibrationHoldout <= 0 {
			bad("select_by", "%s needs a calibration holdout (train.calibration_holdout > 0 with train.calibrate_sigma: true)", c.SelectBy)
		}
	default:
		bad("select_by", "unknown %q (want %s, %s or %s)", c.SelectBy, SelectValLoss, SelectValKmMedian, SelectHoldoutKmMedian)
	}
	switch c.CalibrateTo {
	case "", CalibrateNLL:
	case CalibrateCoverage:
		if !c.CalibrateSigma {
			bad("calibrate_to", "%s needs train.calibrate_sigma: true", c.CalibrateTo)
		}
	default:
		bad("calibrate_to", "unknown %q (want %s or %s)", c.CalibrateTo, CalibrateNLL, CalibrateCoverage)
	}
	return errors.Join(errs...)
}

func (c TrainConfig) evalBatch() int {
	if c.EvalBatchSize > 0 {
		return c.EvalBatchSize
	}
	return c.BatchSize
}
