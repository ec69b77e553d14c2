package trainer

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestLevelFeatures checks LevelFeatures against a plain-Go time mean and
// population standard deviation of the lowest bands, in the documented
// order (per receiver: the bands' means, then their standard deviations).
func TestLevelFeatures(t *testing.T) {
	backend := testBackend(t)
	const batch, receivers, mels, frames, bands = 2, 3, 5, 4, 2
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*receivers*mels*frames)
	for i := range x {
		x[i] = float32(rng.NormFloat64()*2 + 3)
	}
	// One constant band: its standard deviation must come out exactly 0,
	// not NaN from a slightly negative E[x²] - E[x]².
	for f := range frames {
		x[((1*receivers+2)*mels+1)*frames+f] = 0.1
	}
	exec, err := graph.NewExec(backend, func(x *graph.Node) *graph.Node { return LevelFeatures(x, bands) })
	if err != nil {
		t.Fatal(err)
	}
	out := exec.MustExec(tensors.FromFlatDataAndDimensions(x, batch, receivers, mels, frames))[0]
	got := tensors.MustCopyFlatData[float32](out)
	if len(got) != batch*receivers*2*bands {
		t.Fatalf("%d values, want %d", len(got), batch*receivers*2*bands)
	}
	for b := range batch {
		for r := range receivers {
			for m := range bands {
				var s, s2 float64
				for f := range frames {
					v := float64(x[((b*receivers+r)*mels+m)*frames+f])
					s += v
					s2 += v * v
				}
				mean := s / frames
				std := math.Sqrt(math.Max(s2/frames-mean*mean, 0))
				base := (b*receivers + r) * 2 * bands
				if g := float64(got[base+m]); math.Abs(g-mean) > 1e-5 {
					t.Errorf("b%d r%d band %d: mean %g, want %g", b, r, m, g, mean)
				}
				if g := float64(got[base+bands+m]); math.IsNaN(g) || math.Abs(g-std) > 1e-3 {
					t.Errorf("b%d r%d band %d: std %g, want %g", b, r, m, g, std)
				}
			}
		}
	}
}

// TestLevelsTrains: the level encoder builds, trains and ParamCount counts
// it; with the backbone's features alone the heads would see no band
// position, so a model with levels must fit the synthetic data at least
// about as well.
func TestLevelsTrains(t *testing.T) {
	backend := testBackend(t)
	data := synthData(64, 16)
	mcfg := tinyModel()
	mcfg.Levels, mcfg.LevelHidden = 2, []int{6, 5}
	dir := filepath.Join(t.TempDir(), "run")
	s, err := Train(context.Background(), backend, data, mcfg, tinyTrain(), RunOptions{RunDir: dir, NoPlots: true})
	if err != nil {
		t.Fatal(err)
	}
	if !finite(s.Val.Loss) {
		t.Fatalf("val loss %v", s.Val.Loss)
	}
	m, err := LoadModel(backend, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Predict(data.Val.X, data.Val.Len()); err != nil {
		t.Fatal(err)
	}
	if n, want := TrainableParams(m.Store()), ParamCountShape(mcfg, testShape); n != want {
		t.Errorf("trainable params in store %d, ParamCount %d", n, want)
	}
	// The encoder: (receivers*2*2)*6+6 + 6*5+5, and 5 more inputs to each head's first layer.
	plain := tinyModel()
	want := ParamCountShape(plain, testShape) + (testShape[0]*4)*6 + 6 + 6*5 + 5 + 2*5*plain.HeadHidden[0]
	if got := ParamCountShape(mcfg, testShape); got != want {
		t.Errorf("ParamCount with levels %d, want %d", got, want)
	}
	bad := DefaultModelConfig()
	bad.Levels, bad.LevelHidden = -1, []int{0}
	if err := bad.Validate(); err == nil {
		t.Error("Validate accepted model.levels -1 and level_hidden [0]")
	}
}
