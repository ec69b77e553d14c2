// Package trainertest trains the tiny test model (internal/testenv's
// dimensions and synthetic data) for the tests of the packages above the
// trainer (onnx, bench, ...). The trainer's own tests use testenv directly.
package trainertest

import (
	"bytes"
	"context"

	"github.com/gomlx/compute"

	"github.com/heimdall-sdr/trainer/internal/testenv"
	"github.com/heimdall-sdr/trainer/trainer"
)

// TinyModel is the tiny test model (testenv.TinyModel) on the default
// model configuration.
func TinyModel() trainer.ModelConfig {
	m := trainer.DefaultModelConfig()
	m.Widths, m.Depths, m.HeadHidden, m.HeadDropout = testenv.TinyModel()
	return m
}

// Split is n samples of testenv.SynthXY on testenv.Shape.
func Split(n int, seed uint64) trainer.Split {
	x, y := testenv.SynthXY(n, seed, testenv.Shape)
	return trainer.Split{X: x, Y: y}
}

// Train trains mc with tc into runDir on nTrain synthetic samples (seed 1)
// and evaluates on nVal (seed 2), quietly and without plots; it returns the
// val split.
func Train(backend compute.Backend, runDir string, mc trainer.ModelConfig, tc trainer.TrainConfig, nTrain, nVal int) (trainer.Split, error) {
	val := Split(nVal, 2)
	data := trainer.Data{Train: Split(nTrain, 1), Val: val, InputShape: testenv.Shape}
	var log bytes.Buffer
	_, err := trainer.Train(context.Background(), backend, data, mc, tc, trainer.RunOptions{RunDir: runDir, Log: &log, NoPlots: true})
	return val, err
}
