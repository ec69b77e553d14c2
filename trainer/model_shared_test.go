package trainer

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestSharedEncoderTrains: the shared receiver encoder builds, trains on the
// synthetic data (which needs receiver identity: lat depends on receiver 0,
// lon on receiver 1), and ParamCount matches the store.
func TestSharedEncoderTrains(t *testing.T) {
	backend := testBackend(t)
	data := synthData(64, 16)
	mcfg := tinyModel()
	mcfg.ReceiverEncoder = EncoderShared
	tcfg := tinyTrain()
	tcfg.BetaNLL = 0.5
	dir := filepath.Join(t.TempDir(), "run")
	s, err := Train(context.Background(), backend, data, mcfg, tcfg, RunOptions{RunDir: dir, NoPlots: true})
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
	// Predict builds the graph, which marks the loaded variables trainable.
	if _, _, err := m.Predict(data.Val.X, data.Val.Len()); err != nil {
		t.Fatal(err)
	}
	if n, want := TrainableParams(m.Store()), ParamCountShape(mcfg, testShape); n != want {
		t.Errorf("trainable params in store %d, ParamCount %d", n, want)
	}
	// Stem: one input channel; heads: receivers x last width inputs.
	joint := tinyModel()
	w := joint.Widths
	want := ParamCount(joint, testShape[0]) - 3*3*(testShape[0]-1)*w[0] +
		2*(testShape[0]-1)*w[len(w)-1]*joint.HeadHidden[0]
	if got := ParamCount(mcfg, testShape[0]); got != want {
		t.Errorf("shared ParamCount %d, want %d", got, want)
	}
}

// TestBetaNLL: beta 0 is the Gaussian NLL; with beta 1 the gradient with
// respect to mu is -(y - mu) / n whatever sigma is.
func TestBetaNLL(t *testing.T) {
	backend := testBackend(t)
	y := []float32{1, 2, 3, 4}
	mu := []float32{1.5, 1, 3.2, 3}
	sigma := []float32{0.1, 0.5, 1, 0.2}
	for _, beta := range []float64{0, 0.5, 1} {
		exec, err := graph.NewExec(backend, func(y, mu, sigma *graph.Node) (*graph.Node, *graph.Node, *graph.Node) {
			l := BetaNLL(y, mu, sigma, beta)
			return l, GaussianNLL(y, mu, sigma), graph.Gradient(l, mu)[0]
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := exec.Call(tensors.FromFlatDataAndDimensions(y, 2, 2), tensors.FromFlatDataAndDimensions(mu, 2, 2),
			tensors.FromFlatDataAndDimensions(sigma, 2, 2))
		if err != nil {
			t.Fatal(err)
		}
		l, nll := float64(tensors.ToScalar[float32](res[0])), float64(tensors.ToScalar[float32](res[1]))
		grad := tensors.MustCopyFlatData[float32](res[2])
		var want float64
		for i := range y {
			s := float64(sigma[i])
			d := float64(y[i] - mu[i])
			want += math.Pow(s, 2*beta) * (d*d/(2*s*s) + math.Log(s)) / 4
			if beta == 1 {
				if g := float64(grad[i]); math.Abs(g-(-d/4)) > 1e-5 {
					t.Errorf("beta 1: dL/dmu[%d] = %g, want %g", i, g, -d/4)
				}
			}
		}
		if math.Abs(l-want) > 1e-4*math.Max(1, math.Abs(want)) {
			t.Errorf("beta %g: loss %g, want %g", beta, l, want)
		}
		if beta == 0 && l != nll {
			t.Errorf("beta 0: loss %g != GaussianNLL %g", l, nll)
		}
	}
}
