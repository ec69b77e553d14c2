package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/dsp/fourier"
)

// TestRFFTPower checks the half-size complex FFT against gonum's FFTPACK
// (every power of two 2..4096) and a direct O(n^2) DFT (up to 256), relative
// to the frame's peak power: the portable loops and, where the CPU has them,
// the AVX2 stages (fft_amd64.s).
func TestRFFTPower(t *testing.T) {
	paths := []bool{false}
	if haveAVX2 {
		paths = append(paths, true)
	} else {
		t.Log("no AVX2/FMA (or -tags purego / not amd64): the portable loops only")
	}
	defer func(v bool) { haveAVX2 = v }(haveAVX2)
	for _, avx := range paths {
		haveAVX2 = avx
		name := "portable"
		if avx {
			name = "avx2"
		}
		t.Run(name, testRFFTPower)
	}
}

// TestRFFTPowerPaths checks that the AVX2 stages and the portable loops
// agree to rounding on a whole spectrogram frame by frame (n = 2048, the
// default, and the odd-log2 size 512, whose spans are 2·4^j).
func TestRFFTPowerPaths(t *testing.T) {
	if !haveAVX2 {
		t.Skip("no AVX2/FMA here (or -tags purego / not amd64): only the portable loops exist")
	}
	defer func(v bool) { haveAVX2 = v }(haveAVX2)
	rng := rand.New(rand.NewPCG(3, 5))
	for _, n := range []int{512, 2048} {
		p := newRFFTPower(HannPeriodic(n), 1)
		x := make([]float64, n)
		a, b := make([]float64, n/2+1), make([]float64, n/2+1)
		for range 20 {
			for i := range x {
				x[i] = rng.NormFloat64() * math.Exp(3*rng.NormFloat64())
			}
			haveAVX2 = false
			p.power(x, a)
			haveAVX2 = true
			p.power(x, b)
			var peak float64
			for _, v := range a {
				peak = math.Max(peak, v)
			}
			for k := range a {
				if d := math.Abs(a[k] - b[k]); d > 1e-13*peak || math.IsNaN(b[k]) {
					t.Fatalf("n=%d bin %d: avx2 %v, portable %v", n, k, b[k], a[k])
				}
			}
		}
	}
}

func testRFFTPower(t *testing.T) {
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
