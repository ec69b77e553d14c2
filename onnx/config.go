package onnx

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the `export:` section of the configuration: ONNX export at the
// end of training, its parity gate and the ONNX Runtime session settings
// (also used by `bench` and `predict`).
type Config struct {
	// Enabled exports RUN_DIR/model.onnx at the end of `train`. Default true.
	Enabled bool `mapstructure:"enabled"`
	// MaxMAE fails the export when the mean absolute difference between the
	// GoMLX and ONNX Runtime outputs exceeds it for either output.
	// Default 1e-5.
	MaxMAE float64 `mapstructure:"max_mae"`
	// IntraOpThreads is ONNX Runtime's intra-op thread count. Default 1 (the
	// steadiest latency on a 2-core CPU).
	IntraOpThreads int `mapstructure:"intra_op_threads"`
	// GraphOptimization is ONNX Runtime's graph optimisation level: all,
	// extended, basic or disable. Default "all".
	GraphOptimization string `mapstructure:"graph_optimization"`
	// CUDA runs ONNX Runtime on the CUDA execution provider; an error when
	// the library has no CUDA support. Default false.
	CUDA bool `mapstructure:"cuda"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Enabled: true, MaxMAE: DefaultMaxMAE, IntraOpThreads: 1, GraphOptimization: "all"}
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	var errs []error
	if !(c.MaxMAE > 0) {
		errs = append(errs, fmt.Errorf("export.max_mae: must be > 0, got %g", c.MaxMAE))
	}
	if c.IntraOpThreads < 0 {
		errs = append(errs, fmt.Errorf("export.intra_op_threads: must be >= 0, got %d", c.IntraOpThreads))
	}
	if _, ok := GraphOptimizationLevels[strings.ToLower(c.GraphOptimization)]; !ok {
		errs = append(errs, fmt.Errorf("export.graph_optimization: must be all, extended, basic or disable, got %q", c.GraphOptimization))
	}
	return errors.Join(errs...)
}

// SessionOptions are the ONNX Runtime settings of the section.
func (c Config) SessionOptions() SessionOptions {
	return SessionOptions{IntraOpThreads: c.IntraOpThreads, GraphOptimization: c.GraphOptimization, CUDA: c.CUDA}
}
