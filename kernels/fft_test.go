package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/dsp/fourier"
)

// TestRFFTPower checks the half-size complex FFT against gonum's FFTPACK
// (every power of two 2..4096) and a direct O(n^2) DFT (up to 256), relative
// to the frame's peak power.
func TestRFFTPower(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for n := 2; n <= 4096; n *= 2 {
		win := HannPeriodic(n)
		if n == 2 {
			win = []float64{0.7, 1.3} // Hann of 2 is [0, 1]: exercise both samples
		}
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64() + 0.5
		}
		const scale = 0.37
		got := make([]float64, n/2+1)
		newRFFTPower(win, scale).power(x, got)

		y := make([]float64, n)
		for i := range y {
			y[i] = x[i] * win[i]
		}
		coef := fourier.NewFFT(n).Coefficients(nil, y)
		var peak float64
		for _, z := range coef {
			peak = math.Max(peak, real(z)*real(z)+imag(z)*imag(z))
		}
		for k, z := range coef {
			want := (real(z)*real(z) + imag(z)*imag(z)) * scale
			if d := math.Abs(got[k] - want); d > 1e-12*peak*scale {
				t.Fatalf("n=%d bin %d: %v, gonum %v (diff %g)", n, k, got[k], want, d)
			}
		}
		if n > 256 {
			continue
		}
		for k := 0; k <= n/2; k++ {
			var re, im float64
			for j, v := range y {
				s, c := math.Sincos(-2 * math.Pi * float64(j*k%n) / float64(n))
				re += v * c
				im += v * s
			}
			want := (re*re + im*im) * scale
			if d := math.Abs(got[k] - want); d > 1e-12*peak*scale {
				t.Fatalf("n=%d bin %d: %v, DFT %v (diff %g)", n, k, got[k], want, d)
			}
		}
	}
}

// BenchmarkRFFTPower times one 2048-point frame (window, FFT, power).
func BenchmarkRFFTPower(b *testing.B) {
	win := HannPeriodic(2048)
	p := newRFFTPower(win, 1)
	x := make([]float64, 2048)
	for i := range x {
		x[i] = float64(i % 17)
	}
	out := make([]float64, 1025)
	for b.Loop() {
		p.power(x, out)
	}
}

// BenchmarkGonumFFTPower is BenchmarkRFFTPower with gonum's FFTPACK, the
// previous implementation.
func BenchmarkGonumFFTPower(b *testing.B) {
	win := HannPeriodic(2048)
	f := fourier.NewFFT(2048)
	x := make([]float64, 2048)
	for i := range x {
		x[i] = float64(i % 17)
	}
	y := make([]float64, 2048)
	coef := make([]complex128, 1025)
	out := make([]float64, 1025)
	for b.Loop() {
		for i, w := range win {
			y[i] = x[i] * w
		}
		f.Coefficients(coef, y)
		for k, z := range coef {
			out[k] = real(z)*real(z) + imag(z)*imag(z)
		}
	}
}
