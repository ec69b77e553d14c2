package trainer

import (
	"strings"
	"testing"
)

func TestDefaultsValidate(t *testing.T) {
	if err := DefaultModelConfig().Validate(); err != nil {
		t.Errorf("default model config: %v", err)
	}
	if err := DefaultTrainConfig().Validate(); err != nil {
		t.Errorf("default train config: %v", err)
	}
	for _, p := range Presets() {
		m := DefaultModelConfig()
		m.Preset = p
		if err := m.Validate(); err != nil {
			t.Errorf("preset %s: %v", p, err)
		}
	}
}

func TestValidateNamesKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ModelConfig, *TrainConfig)
		want string
	}{
		{"batch", func(_ *ModelConfig, c *TrainConfig) { c.BatchSize = -1 }, "train.batch_size: must be > 0, got -1"},
		{"epochs", func(_ *ModelConfig, c *TrainConfig) { c.Epochs = 0 }, "train.epochs: must be > 0, got 0"},
		{"lr", func(_ *ModelConfig, c *TrainConfig) { c.LearningRate = 0 }, "train.learning_rate: must be > 0"},
		{"min lr", func(_ *ModelConfig, c *TrainConfig) { c.MinLearningRate = 1 }, "train.min_learning_rate"},
		{"keep", func(_ *ModelConfig, c *TrainConfig) { c.KeepBest = 0 }, "train.keep_best: must be >= 1, got 0"},
		{"eval", func(_ *ModelConfig, c *TrainConfig) { c.EvalEvery = 0 }, "train.eval_every"},
		{"patience", func(_ *ModelConfig, c *TrainConfig) { c.Patience = -2 }, "train.patience: must be >= 0, got -2"},
		{"preset", func(m *ModelConfig, _ *TrainConfig) { m.Preset = "huge" }, `model.preset: must be one of cpu, tiny, small, base, large, got "huge"`},
		{"depths", func(m *ModelConfig, _ *TrainConfig) { m.Widths = []int{4, 8} }, "model.depths: must have as many entries as model.widths (2), got 3"},
		{"width", func(m *ModelConfig, _ *TrainConfig) { m.Widths, m.Depths = []int{4, 0}, []int{1, 1} }, "model.widths: entry 1 must be > 0, got 0"},
		{"dropout", func(m *ModelConfig, _ *TrainConfig) { m.HeadDropout = []float64{0.3} }, "model.head_dropout"},
		{"dropout range", func(m *ModelConfig, _ *TrainConfig) { m.HeadDropout = []float64{0.3, 1} }, "model.head_dropout: entry 1 must be in [0, 1), got 1"},
		{"scale", func(m *ModelConfig, _ *TrainConfig) { m.PositionScale = 0 }, "model.position_scale: must be > 0, got 0"},
		{"stem", func(m *ModelConfig, _ *TrainConfig) { m.StemKernel = 0 }, "model.stem_kernel: must be > 0, got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, c := DefaultModelConfig(), DefaultTrainConfig()
			tc.edit(&m, &c)
			err := m.Validate()
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBackboneOverrides(t *testing.T) {
	m := DefaultModelConfig()
	w, d, s := m.Backbone()
	if len(w) != 3 || w[0] != 24 || d[2] != 1 || s != 2 {
		t.Errorf("cpu preset backbone %v %v %d", w, d, s)
	}
	m.Preset, m.Depths, m.StemStride = PresetLarge, []int{2, 2, 2, 2}, 4
	w, d, s = m.Backbone()
	if w[3] != 1536 || d[0] != 2 || s != 4 {
		t.Errorf("large with overrides: %v %v %d", w, d, s)
	}
}

// TestParamCountPresets checks ParamCount against the table of
// docs/TRAINING.md (7 receivers, without model.mel_profile) and that the
// presets grow in the documented order.
func TestParamCountPresets(t *testing.T) {
	want := map[string]int{PresetCPU: 314_460, PresetTiny: 25_780_452, PresetSmall: 47_026_404, PresetBase: 83_487_236, PresetLarge: 187_595_844}
	prev := 0
	for _, p := range Presets() {
		m := DefaultModelConfig()
		m.Preset, m.MelProfile = p, false
		got := ParamCount(m, DefaultReceivers)
		t.Logf("preset %-5s params %d", p, got)
		if got != want[p] {
			t.Errorf("preset %s: %d parameters, docs/TRAINING.md says %d", p, got, want[p])
		}
		if got <= prev {
			t.Errorf("preset %s: %d parameters, not more than the preset before it (%d)", p, got, prev)
		}
		prev = got
	}
	m := DefaultModelConfig()
	m.Preset, m.MelProfile = PresetCPU, true
	if got := ParamCount(m, DefaultReceivers); got != 543_836 {
		t.Errorf("preset cpu with mel_profile: %d parameters, docs/TRAINING.md says 543836", got)
	}
}
