package trainer

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/gomlx/backends/default" // Go backend; XLA unless built with -tags noxla.
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

// testShape is a reduced input: 7 receivers, 16 mel bands, 8 frames.
var testShape = [3]int{7, 16, 8}

// tinyModel is the test model: two stages of 4 and 8 channels.
func tinyModel() ModelConfig {
	m := DefaultModelConfig()
	m.Widths, m.Depths = []int{4, 8}, []int{1, 1}
	m.HeadHidden = []int{16, 8}
	m.HeadDropout = []float64{0.1, 0.1}
	return m
}

func tinyTrain() TrainConfig {
	t := DefaultTrainConfig()
	t.Epochs, t.BatchSize, t.LearningRate = 3, 8, 1e-2
	t.MinLearningRate = 1e-4
	return t
}

// synthSplit makes n samples whose channel r carries a constant offset
// c_r ~ U(-1, 1) on top of noise; lat = 45 + 0.4 c_0, lon = 8 + 0.6 c_1.
func synthSplit(n int, seed uint64) Split {
	r := rand.New(rand.NewPCG(seed, 7))
	per := sampleSize(testShape)
	pix := testShape[1] * testShape[2]
	s := Split{X: make([]float32, n*per), Y: make([]float32, 2*n)}
	for i := range n {
		for c := range testShape[0] {
			off := float32(2*r.Float64() - 1)
			if c == 0 {
				s.Y[2*i] = 45 + 0.4*off
			}
			if c == 1 {
				s.Y[2*i+1] = 8 + 0.6*off
			}
			base := i*per + c*pix
			for p := range pix {
				s.X[base+p] = off + 0.3*float32(r.NormFloat64())
			}
		}
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
