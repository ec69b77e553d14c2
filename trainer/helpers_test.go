package trainer

import (
	"os"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/gomlx/backends/default" // Go backend; XLA unless built with -tags noxla.

	"github.com/heimdall-sdr/trainer/internal/testenv"
)

// testBackend returns the backend named by GOMLX_BACKEND, or the pure Go
// backend (fast enough for the tiny test models).
func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	config := os.Getenv(compute.ConfigEnvVar)
	if config == "" {
		config = "go"
	}
	b, err := compute.NewWithConfig(config)
	if err != nil {
		t.Skipf("backend %q unavailable: %v", config, err)
	}
	return b
}

// testShape is the reduced test input (testenv.Shape).
var testShape = testenv.Shape

// tinyModel is the test model (testenv.TinyModel).
func tinyModel() ModelConfig {
	m := DefaultModelConfig()
	m.Widths, m.Depths, m.HeadHidden, m.HeadDropout = testenv.TinyModel()
	return m
}

func tinyTrain() TrainConfig {
	t := DefaultTrainConfig()
	t.Epochs, t.BatchSize, t.LearningRate = 3, 8, 1e-2
	t.MinLearningRate = 1e-4
	return t
}

// synthSplit makes n samples of testenv.SynthXY with ids.
func synthSplit(n int, seed uint64) Split {
	s := Split{}
	s.X, s.Y = testenv.SynthXY(n, seed, testShape)
	for i := range n {
		s.IDs = append(s.IDs, "s"+string(rune('a'+i%26)))
	}
	return s
}

func synthData(nTrain, nVal int) Data {
	d := Data{Train: synthSplit(nTrain, 1), Val: synthSplit(nVal, 2), InputShape: testShape}
	centroid := make([]float32, len(d.Val.Y))
	noisy := make([]float32, len(d.Val.Y))
	for i := range d.Val.Len() {
		centroid[2*i], centroid[2*i+1] = 45.03, 8.16
		noisy[2*i], noisy[2*i+1] = d.Val.Y[2*i]+0.05, d.Val.Y[2*i+1]-0.05
	}
	d.ValBaselines = []Baseline{{Name: "centroid", Positions: centroid}, {Name: "least_squares", Positions: noisy}}
	return d
}
