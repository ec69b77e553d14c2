// Package testenv holds the test fixtures shared by the packages' tests:
// the ONNX Runtime guard, the reduced input shape, the tiny model's
// dimensions and its synthetic data. It imports no package of the
// project, so every package's own tests can use it.
package testenv

import (
	"math/rand/v2"
	"os"
	"testing"
)

// EnvRequireORT is set by `make test`: a missing ONNX Runtime then fails
// the tests instead of skipping them.
const EnvRequireORT = "HEIMDALL_REQUIRE_ORT"

// RequireORT skips tb (or, under make test, fails it) when initErr, the
// result of onnx.InitRuntime, says ONNX Runtime is missing.
func RequireORT(tb testing.TB, initErr error) {
	tb.Helper()
	if initErr == nil {
		return
	}
	if os.Getenv(EnvRequireORT) != "" {
		tb.Fatalf("ONNX Runtime required: %v", initErr)
	}
	tb.Skipf("ONNX Runtime not installed (run scripts/install-ort.sh; make test installs it): %v", initErr)
}

// Shape is the reduced test input: 7 receivers, 16 mel bands, 8 frames.
var Shape = [3]int{7, 16, 8}

// TinyModel returns the tiny test model's dimensions: two stages of 4 and 8
// channels, one block each, a 16-8 head with dropout 0.1.
func TinyModel() (widths, depths, headHidden []int, headDropout []float64) {
	return []int{4, 8}, []int{1, 1}, []int{16, 8}, []float64{0.1, 0.1}
}

// SynthXY makes n samples of shape whose channel r carries a constant
// offset c_r ~ U(-1, 1) on top of noise; lat = 45 + 0.4 c_0,
// lon = 8 + 0.6 c_1. x is [n, shape...] flat, y [n, 2].
func SynthXY(n int, seed uint64, shape [3]int) (x, y []float32) {
	r := rand.New(rand.NewPCG(seed, 7))
	per := shape[0] * shape[1] * shape[2]
	pix := shape[1] * shape[2]
	x, y = make([]float32, n*per), make([]float32, 2*n)
	for i := range n {
		for c := range shape[0] {
			off := float32(2*r.Float64() - 1)
			if c == 0 {
				y[2*i] = 45 + 0.4*off
			}
			if c == 1 {
				y[2*i+1] = 8 + 0.6*off
			}
			base := i*per + c*pix
			for p := range pix {
				x[base+p] = off + 0.3*float32(r.NormFloat64())
			}
		}
	}
	return x, y
}
