package trainer

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// nllTable: y, mu, sigma ([2, 2]) and the hand-computed loss terms:
// elements (d, s): (0.1, 0.1) -> 0.5 + ln 0.1; (-0.2, 0.5) -> 0.08 + ln 0.5;
// (0, 1) -> 0 + 0; (0.3, 1e-9 floored to 1e-6) -> 0.045e12 + ln 1e-6.
var nllTable = struct {
	y, mu, sigma []float32
	mse, logTerm float64
}{
	y:       []float32{45.1, 8.0, 44.5, 9.3},
	mu:      []float32{45.0, 8.2, 44.5, 9.0},
	sigma:   []float32{0.1, 0.5, 1, 1e-9},
	mse:     (0.5 + 0.08 + 0 + 0.09/(2*1e-12)) / 4,
	logTerm: (math.Log(0.1) + math.Log(0.5) + 0 + math.Log(1e-6)) / 4,
}

func TestGaussianNLLGo(t *testing.T) {
	loss, mse, logTerm := GaussianNLLGo(nllTable.y, nllTable.mu, nllTable.sigma)
	if rel(mse, nllTable.mse) > 1e-4 || math.Abs(logTerm-nllTable.logTerm) > 1e-6 || rel(loss, mse+logTerm) > 1e-12 {
		t.Errorf("got loss %g mse %g log %g, want mse %g log %g", loss, mse, logTerm, nllTable.mse, nllTable.logTerm)
	}
}

func TestGaussianNLLGraph(t *testing.T) {
	backend := testBackend(t)
	// Drop the floored element: float32 (y-mu) near 45 is only good to ~4e-6.
	y, mu, sigma := nllTable.y[:3], nllTable.mu[:3], nllTable.sigma[:3]
	wantLoss, wantMSE, wantLog := GaussianNLLGo(y, mu, sigma)
	hand := (0.5 + 0.08 + 0 + math.Log(0.1) + math.Log(0.5)) / 3
	if math.Abs(wantLoss-hand) > 1e-4 {
		t.Fatalf("reference %g, hand %g", wantLoss, hand)
	}
	exec, err := graph.NewExec(backend, func(y, mu, sigma *graph.Node) (*graph.Node, *graph.Node, *graph.Node) {
		mse, lt := GaussianNLLTerms(y, mu, sigma)
		return GaussianNLL(y, mu, sigma), mse, lt
	})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(v []float32) *tensors.Tensor { return tensors.FromFlatDataAndDimensions(v, 1, 3) }
	out, err := exec.Call(mk(y), mk(mu), mk(sigma))
	if err != nil {
		t.Fatal(err)
	}
	got := []float64{scalar(out[0]), scalar(out[1]), scalar(out[2])}
	for i, want := range []float64{wantLoss, wantMSE, wantLog} {
		if math.Abs(got[i]-want) > 2e-4*(1+math.Abs(want)) {
			t.Errorf("output %d: graph %g, reference %g", i, got[i], want)
		}
	}
	// The floor: sigma 1e-9 counts as 1e-6.
	out, err = exec.Call(tensors.FromFlatDataAndDimensions([]float32{0}, 1, 1),
		tensors.FromFlatDataAndDimensions([]float32{0}, 1, 1), tensors.FromFlatDataAndDimensions([]float32{1e-9}, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := scalar(out[0]); math.Abs(got-math.Log(1e-6)) > 1e-4 {
		t.Errorf("floored loss %g, want ln(1e-6) = %g", got, math.Log(1e-6))
	}
}

func rel(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1e-300) }
