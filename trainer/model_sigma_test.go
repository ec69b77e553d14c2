package trainer

import (
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestClampSigmaStraightThrough: the forward pass is exactly
// clamp(s, 0.01, 1.0); the gradient is 1 inside and outside the bounds.
func TestClampSigmaStraightThrough(t *testing.T) {
	backend := testBackend(t)
	in := []float32{0.001, 0.01, 0.3, 1.0, 1.7, 123.456}
	exec, err := graph.NewExec(backend, func(s *graph.Node) (*graph.Node, *graph.Node) {
		out := clampSigma(s)
		grad := graph.Gradient(graph.ReduceAllSum(out), s)[0]
		return out, grad
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := exec.Call(tensors.FromFlatDataAndDimensions(in, len(in)))
	if err != nil {
		t.Fatal(err)
	}
	out, grad := tensors.MustCopyFlatData[float32](res[0]), tensors.MustCopyFlatData[float32](res[1])
	for i, s := range in {
		want := min(max(s, float32(SigmaMinDeg)), float32(SigmaMaxDeg))
		if out[i] != want {
			t.Errorf("clampSigma(%g) = %g, want exactly %g", s, out[i], want)
		}
		if grad[i] != 1 {
			t.Errorf("d clampSigma/ds at %g = %g, want 1", s, grad[i])
		}
	}
}
