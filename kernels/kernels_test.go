package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestDefaultMelConfig(t *testing.T) {
	c := DefaultMelConfig()
	want := MelConfig{NFFT: 2048, Hop: 512, NMels: 128, FMin: 0, FMax: 0, Frames: 32, NMFCC: 13}
	if c != want {
		t.Fatalf("DefaultMelConfig() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateFor(12500); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	mod := func(f func(*MelConfig)) MelConfig {
		c := DefaultMelConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  MelConfig
		want string // substring of the error; "" = valid
	}{
		{"default", DefaultMelConfig(), ""},
		{"hop equals n_fft", mod(func(c *MelConfig) { c.Hop = 2048 }), ""},
		{"n_fft not pow2", mod(func(c *MelConfig) { c.NFFT = 1000 }), "features.n_fft: 1000 is not a power of two"},
		{"n_fft zero", mod(func(c *MelConfig) { c.NFFT = 0 }), "features.n_fft: 0 must be positive"},
		{"n_fft negative", mod(func(c *MelConfig) { c.NFFT = -2048 }), "features.n_fft"},
		{"n_fft one", mod(func(c *MelConfig) { c.NFFT, c.Hop = 1, 1 }), "features.n_fft: 1 must be >= 2"},
		{"hop > n_fft", mod(func(c *MelConfig) { c.Hop = 4096 }), "features.hop: 4096 > n_fft 2048"},
		{"hop zero", mod(func(c *MelConfig) { c.Hop = 0 }), "features.hop: 0 must be positive"},
		{"hop negative", mod(func(c *MelConfig) { c.Hop = -1 }), "features.hop"},
		{"n_mels zero", mod(func(c *MelConfig) { c.NMels = 0 }), "features.n_mels"},
		{"f_min negative", mod(func(c *MelConfig) { c.FMin = -1 }), "features.f_min"},
		{"f_min NaN", mod(func(c *MelConfig) { c.FMin = math.NaN() }), "features.f_min"},
		{"f_max negative", mod(func(c *MelConfig) { c.FMax = -5 }), "features.f_max"},
		{"f_max inf", mod(func(c *MelConfig) { c.FMax = math.Inf(1) }), "features.f_max"},
		{"f_max <= f_min", mod(func(c *MelConfig) { c.FMin, c.FMax = 300, 300 }), "features.f_max: 300 must be > f_min 300"},
		{"frames zero", mod(func(c *MelConfig) { c.Frames = 0 }), "features.frames"},
		{"n_mfcc zero", mod(func(c *MelConfig) { c.NMFCC = 0 }), "features.n_mfcc"},
		{"n_mfcc > n_mels", mod(func(c *MelConfig) { c.NMels, c.NMFCC = 8, 13 }), "features.n_mfcc: 13 > n_mels 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			// ValidateFor reports the same problem.
			if err2 := tt.cfg.ValidateFor(48000); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("ValidateFor: %v, want %v", err2, err)
			}
		})
	}
}

func TestValidateFor(t *testing.T) {
	tests := []struct {
		name string
		fmin float64
		fmax float64
		sr   float64
		want string
	}{
		{"nyquist exactly", 0, 6250, 12500, ""},
		{"f_max 0 is nyquist", 0, 0, 12500, ""},
		{"f_max above nyquist", 0, 20000, 12500, "features.f_max: 20000 > Nyquist 6250 (sample_rate 12500)"},
		{"f_min at nyquist with f_max 0", 6250, 0, 12500, "features.f_min: 6250 >= f_max 6250"},
		{"bad sample rate", 0, 0, 0, "sample_rate"},
		{"NaN sample rate", 0, 0, math.NaN(), "sample_rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultMelConfig()
			c.FMin, c.FMax = tt.fmin, tt.fmax
			err := c.ValidateFor(tt.sr)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if _, err := NewExtractor(c, tt.sr); err == nil {
				t.Fatal("NewExtractor accepted an invalid config")
			}
		})
	}
}

func TestKey(t *testing.T) {
	if got, want := DefaultMelConfig().Key(), "nfft2048-hop512-mels128-fmin0-fmax0-fr32"; got != want {
		t.Fatalf("Key() = %q, want %q", got, want)
	}
	c := MelConfig{NFFT: 1024, Hop: 256, NMels: 64, FMin: 100.5, FMax: 20000, Frames: 16, NMFCC: 13}
	if got, want := c.Key(), "nfft1024-hop256-mels64-fmin100.5-fmax20000-fr16"; got != want {
		t.Fatalf("Key() = %q, want %q", got, want)
	}
}

func TestHannPeriodic(t *testing.T) {
	if HannPeriodic(0) != nil {
		t.Fatal("HannPeriodic(0) != nil")
	}
	if w := HannPeriodic(1); len(w) != 1 || w[0] != 1 {
		t.Fatalf("HannPeriodic(1) = %v", w)
	}
	n := 2048
	w := HannPeriodic(n)
	if w[0] != 0 || w[n/2] != 1 {
		t.Fatalf("w[0]=%v w[n/2]=%v", w[0], w[n/2])
	}
	var sum float64
	for i := 1; i < n; i++ {
		if math.Abs(w[i]-w[n-i]) > 1e-15 {
			t.Fatalf("not periodic-symmetric at %d", i)
		}
		sum += w[i]
	}
	if math.Abs(sum-float64(n)/2) > 1e-9 {
		t.Fatalf("sum %v, want %v", sum, n/2)
	}
}

func TestSTFTLayout(t *testing.T) {
	// scipy: len_ext = n + n_fft; nadd = (-(len_ext-n_fft) % hop) % n_fft;
	// T = 1 + (len_ext+nadd-n_fft)/hop = 1 + ceil(n/hop).
	for _, nfft := range []int{1, 2, 256, 2048} {
		for _, hop := range []int{1, 3, nfft / 4, nfft / 2, nfft} {
			if hop < 1 || hop > nfft {
				continue
			}
			for _, n := range []int{1, 2, hop - 1, hop, hop + 1, nfft - 1, nfft, nfft + 1, 1500, 16896} {
				if n < 1 {
					continue
				}
				padded, T := stftLayout(n, nfft, hop)
				ext := n + 2*(nfft/2) - nfft // = n for even nfft
				if want := 1 + (ext+hop-1)/hop; T != want {
					t.Fatalf("nfft %d hop %d n %d: T = %d, want %d", nfft, hop, n, T, want)
				}
				if (padded-nfft)%hop != 0 || padded < n+2*(nfft/2) {
					t.Fatalf("nfft %d hop %d n %d: padded %d", nfft, hop, n, padded)
				}
			}
		}
	}
	if _, T := stftLayout(16896, 2048, 512); T != 34 {
		t.Fatalf("default session T = %d, want 34", T)
	}
}

func TestSTFTPowerConstant(t *testing.T) {
	// For a constant signal, frames fully inside it see the periodic Hann:
	// its DFT is N/2 at bin 0 and -N/4 at bins ±1, so with the window-sum
	// scaling the power is 1 at DC, 1/4 at bin 1 and 0 elsewhere.
	nfft, hop := 256, 64
	x := make([]float64, 4096)
	for i := range x {
		x[i] = 1
	}
	p, T := STFTPower(x, nfft, hop)
	bins := nfft/2 + 1
	if T != 1+4096/64 || len(p) != T*bins {
		t.Fatalf("T=%d len=%d", T, len(p))
	}
	for tt := 4; tt < T-4; tt++ {
		row := p[tt*bins : (tt+1)*bins]
		for k, v := range row {
			want := 0.0
			switch k {
			case 0:
				want = 1
			case 1:
				want = 0.25
			}
			if math.Abs(v-want) > 1e-12 {
				t.Fatalf("frame %d bin %d: %v, want %v", tt, k, v, want)
			}
		}
	}
	// The first frame is centred on sample 0: half the window sees zeros.
	if p[0] >= 0.3 || p[0] <= 0.2 {
		t.Fatalf("first frame DC %v, want ~0.25", p[0])
	}
}

func TestMelFilterbankProperties(t *testing.T) {
	cases := []struct {
		nMels, nfft    int
		sr, fmin, fmax float64
	}{
		{128, 2048, 12500, 0, 0},
		{64, 1024, 48000, 100, 20000},
		{40, 512, 16000, 0, 8000},
	}
	for _, c := range cases {
		fb := MelFilterbank(c.nMels, c.nfft, c.sr, c.fmin, c.fmax)
		bins := c.nfft/2 + 1
		if len(fb) != c.nMels*bins {
			t.Fatalf("len %d", len(fb))
		}
		fmax := c.fmax
		if fmax == 0 {
			fmax = c.sr / 2
		}
		hz := func(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }
		mel := func(f float64) float64 { return 2595 * math.Log10(1+f/700) }
		step := (mel(fmax) - mel(c.fmin)) / float64(c.nMels+1)
		centers := make([]float64, c.nMels)
		for m := range centers {
			centers[m] = hz(mel(c.fmin) + step*float64(m+1))
		}
		for m := 0; m < c.nMels; m++ {
			row := fb[m*bins : (m+1)*bins]
			left := hz(mel(c.fmin) + step*float64(m))
			right := hz(mel(c.fmin) + step*float64(m+2))
			for k, v := range row {
				f := float64(k) * c.sr / float64(c.nfft)
				if v < 0 || v > 1 {
					t.Fatalf("fb[%d,%d] = %v outside [0,1]", m, k, v)
				}
				if v > 0 && (f < left-1e-9 || f > right+1e-9) {
					t.Fatalf("fb[%d,%d] = %v outside support [%v,%v] at f=%v", m, k, v, left, right, f)
				}
				// Exact triangle values.
				want := 0.0
				if f >= left && f <= centers[m] {
					want = (f - left) / (centers[m] - left)
				} else if f > centers[m] && f <= right {
					want = (right - f) / (right - centers[m])
				}
				if math.Abs(v-want) > 1e-9 {
					t.Fatalf("fb[%d,%d] = %v, want %v", m, k, v, want)
				}
			}
		}
		// HTK triangles are a partition of unity between the first and the
		// last centre; outside them the column sums stay within [0, 1].
		for k := 0; k < bins; k++ {
			f := float64(k) * c.sr / float64(c.nfft)
			var s float64
			for m := 0; m < c.nMels; m++ {
				s += fb[m*bins+k]
			}
			if s > 1+1e-12 {
				t.Fatalf("column %d sums to %v > 1", k, s)
			}
			if f >= centers[0] && f <= centers[c.nMels-1] && math.Abs(s-1) > 1e-9 {
				t.Fatalf("column %d (f=%v) sums to %v, want 1", k, f, s)
			}
			if (f < c.fmin || f > fmax) && s != 0 {
				t.Fatalf("column %d (f=%v) outside [f_min,f_max] sums to %v", k, f, s)
			}
		}
	}
}

func TestMelFilterbankZeroWidth(t *testing.T) {
	// Very many mels on a coarse grid: many triangles fall between bins (all
	// zero) but nothing may be NaN or Inf, nor for a degenerate
	// f_min == f_max (zero-width triangles, guarded).
	fb := MelFilterbank(512, 64, 8000, 0, 0)
	for i, v := range fb {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1 {
			t.Fatalf("fb[%d] = %v", i, v)
		}
	}
	fb = MelFilterbank(3, 8, 8000, 1000, 1000)
	for i, v := range fb {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1 {
			t.Fatalf("degenerate fb[%d] = %v", i, v)
		}
	}
}

func TestNormalize(t *testing.T) {
	x := []float64{1, 2, 3, 4}
	Normalize(x)
	// mean 2.5, population std sqrt(1.25).
	s := math.Sqrt(1.25)
	want := []float64{-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}
	for i := range x {
		if math.Abs(x[i]-want[i]) > 1e-15 {
			t.Fatalf("Normalize = %v, want %v", x, want)
		}
	}
	c := []float64{-90, -90, -90}
	Normalize(c) // std 0 -> divided by 1e-8, all zeros
	for _, v := range c {
		if v != 0 {
			t.Fatalf("constant input normalised to %v", c)
		}
	}
	Normalize(nil)
}

func TestCropOrPad(t *testing.T) {
	row := func(v ...float64) []float64 { return v }
	tests := []struct {
		name         string
		db           []float64
		nMels, T, fr int
		want         []float64
	}{
		{"crop even", row(0, 1, 2, 3, 4, 5), 1, 6, 4, row(1, 2, 3, 4)},
		{"crop odd excess floors start", row(0, 1, 2, 3, 4, 5, 6), 1, 7, 4, row(1, 2, 3, 4)},
		{"exact", row(7, 8, 9), 1, 3, 3, row(7, 8, 9)},
		{"pad odd excess goes right", row(1, 2, 3, 4), 1, 4, 7, row(2, 1, 2, 3, 4, 3, 2)},
		// np.pad([1,2,3,4], (14,14), mode='reflect')[?] with frames 32: left 14, right 14.
		{"pad repeated reflection", row(1, 2, 3, 4), 1, 4, 32, row(
			3, 2, 1, 2, 3, 4, 3, 2, 1, 2, 3, 4, 3, 2,
			1, 2, 3, 4,
			3, 2, 1, 2, 3, 4, 3, 2, 1, 2, 3, 4, 3, 2)},
		// np.pad([1,2,3], (5,5), mode='reflect') -> frames 13.
		{"pad numpy example", row(1, 2, 3), 1, 3, 13, row(2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2)},
		{"T==1 edge repeat", row(5, 6), 2, 1, 3, row(5, 5, 5, 6, 6, 6)},
		{"two mels crop", row(0, 1, 2, 3, 10, 11, 12, 13), 2, 4, 2, row(1, 2, 11, 12)},
		{"two mels pad", row(0, 1, 10, 11), 2, 2, 4, row(1, 0, 1, 0, 11, 10, 11, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CropOrPad(tt.db, tt.nMels, tt.T, tt.fr)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("CropOrPad = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMFCC(t *testing.T) {
	nMels, frames := 16, 3
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, nMels*frames)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	got := MFCC(x, nMels, frames, nMels)
	// Orthonormal: energy is preserved per column.
	for tt := 0; tt < frames; tt++ {
		var ex, ec float64
		for m := 0; m < nMels; m++ {
			ex += x[m*frames+tt] * x[m*frames+tt]
			ec += got[m*frames+tt] * got[m*frames+tt]
		}
		if math.Abs(ex-ec) > 1e-12*ex {
			t.Fatalf("column %d energy %v -> %v", tt, ex, ec)
		}
	}
	// A constant column maps to c0 = sqrt(N) v only.
	c := make([]float64, nMels)
	for i := range c {
		c[i] = 2
	}
	d := MFCC(c, nMels, 1, 13)
	if len(d) != 13 || math.Abs(d[0]-2*math.Sqrt(float64(nMels))) > 1e-12 {
		t.Fatalf("c0 = %v", d)
	}
	for k := 1; k < 13; k++ {
		if math.Abs(d[k]) > 1e-12 {
			t.Fatalf("c%d = %v, want 0", k, d[k])
		}
	}
	if MFCC(c, nMels, 1, 0) != nil {
		t.Fatal("nMFCC 0 should give nil")
	}
}

func testIQ(seed uint64, n int) []complex64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	iq := make([]complex64, n)
	for i := range iq {
		a := 1 + 0.5*math.Cos(2*math.Pi*440*float64(i)/12500)
		iq[i] = complex(float32(a+0.2*rng.NormFloat64()), float32(0.2*rng.NormFloat64()))
	}
	return iq
}

func TestFeaturesErrors(t *testing.T) {
	e, err := NewExtractor(DefaultMelConfig(), 12500)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Features(testIQ(1, 100), make([]float32, 10)); err == nil {
		t.Fatal("wrong dst length accepted")
	}
	if err := e.Features(nil, make([]float32, 128*32)); err != ErrEmptyIQ {
		t.Fatalf("empty IQ: %v", err)
	}
	if _, _, err := e.MelDB(nil); err != ErrEmptyIQ {
		t.Fatalf("empty IQ: %v", err)
	}
}

func TestFeaturesMatchesPieces(t *testing.T) {
	cfg := DefaultMelConfig()
	const sr = 12500.0
	e, err := NewExtractor(cfg, sr)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 700, 16896, 40000} {
		iq := testIQ(uint64(n), n)
		x := make([]float64, n)
		for i, v := range iq {
			x[i] = math.Hypot(float64(real(v)), float64(imag(v)))
		}
		p, T := STFTPower(x, cfg.NFFT, cfg.Hop)
		fb := MelFilterbank(cfg.NMels, cfg.NFFT, sr, cfg.FMin, cfg.FMax)
		bins := cfg.NFFT/2 + 1
		want := make([]float64, cfg.NMels*T)
		for m := 0; m < cfg.NMels; m++ {
			for tt := 0; tt < T; tt++ {
				var s float64
				for k := 0; k < bins; k++ {
					s += fb[m*bins+k] * p[tt*bins+k]
				}
				want[m*T+tt] = 10 * math.Log10(s+1e-9)
			}
		}
		db, T2, err := e.MelDB(iq)
		if err != nil || T2 != T {
			t.Fatalf("n=%d: T %d vs %d, err %v", n, T2, T, err)
		}
		for i := range db {
			if math.Abs(db[i]-want[i]) > 1e-9 {
				t.Fatalf("n=%d: db[%d] %v, want %v", n, i, db[i], want[i])
			}
		}
		Normalize(want)
		wantFeat := CropOrPad(want, cfg.NMels, T, cfg.Frames)
		feat := make([]float32, cfg.NMels*cfg.Frames)
		if err := e.Features(iq, feat); err != nil {
			t.Fatal(err)
		}
		for i := range feat {
			if math.Abs(float64(feat[i])-wantFeat[i]) > 1e-5 {
				t.Fatalf("n=%d: feat[%d] %v, want %v", n, i, feat[i], wantFeat[i])
			}
		}
	}
}

func TestExtractorConcurrent(t *testing.T) {
	cfg := DefaultMelConfig()
	e, err := NewExtractor(cfg, 12500)
	if err != nil {
		t.Fatal(err)
	}
	const ch = 7
	inputs := make([][]complex64, ch)
	want := make([][]float32, ch)
	for i := range inputs {
		inputs[i] = testIQ(uint64(i), 16896+i*300)
		want[i] = make([]float32, cfg.NMels*cfg.Frames)
		if err := e.Features(inputs[i], want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, ch*4)
	for g := 0; g < ch*4; g++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got := make([]float32, cfg.NMels*cfg.Frames)
			for r := 0; r < 3; r++ {
				if err := e.Features(inputs[i], got); err != nil {
					errs <- err.Error()
					return
				}
				if !slices.Equal(got, want[i]) {
					errs <- "concurrent result differs"
					return
				}
			}
		}(g % ch)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestFeaturesAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	e, err := NewExtractor(DefaultMelConfig(), 12500)
	if err != nil {
		t.Fatal(err)
	}
	iq := testIQ(3, 16896)
	dst := make([]float32, 128*32)
	allocs := testing.AllocsPerRun(20, func() {
		if err := e.Features(iq, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.5 {
		t.Fatalf("Features allocates %v times per call in steady state", allocs)
	}
}

// BenchmarkFeaturesSession extracts the features of one 7-receiver session
// (7 channels × 16896 IQ samples at 12.5 kHz, default config) per iteration,
// sequentially on one goroutine. Besides sessions/s (wall clock) it reports
// sessions/cpu-s: sessions per second of this process's CPU time, the
// per-core figure that stays meaningful when other work shares the cores
// (run with -cpu 1; scripts/bench-features.sh compares it with scipy's).
func BenchmarkFeaturesSession(b *testing.B) {
	cfg := DefaultMelConfig()
	e, err := NewExtractor(cfg, 12500)
	if err != nil {
		b.Fatal(err)
	}
	const ch = 7
	inputs := make([][]complex64, ch)
	for i := range inputs {
		inputs[i] = testIQ(uint64(i), 16896)
	}
	dst := make([]float32, ch*cfg.NMels*cfg.Frames)
	per := cfg.NMels * cfg.Frames
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, cpuOK := processCPU()
	for i := 0; i < b.N; i++ {
		for c := 0; c < ch; c++ {
			if err := e.Features(inputs[c], dst[c*per:(c+1)*per]); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu1, _ := processCPU()
	b.ReportMetric(float64(b.N*ch)/b.Elapsed().Seconds(), "channels/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
	if cpuOK && cpu1 > cpu0 {
		b.ReportMetric(float64(b.N)/(cpu1-cpu0).Seconds(), "sessions/cpu-s")
	}
}

// BenchmarkFeaturesSessionParallel is BenchmarkFeaturesSession with the 7
// channels of a session extracted on 7 goroutines sharing one Extractor.
func BenchmarkFeaturesSessionParallel(b *testing.B) {
	cfg := DefaultMelConfig()
	e, err := NewExtractor(cfg, 12500)
	if err != nil {
		b.Fatal(err)
	}
	const ch = 7
	inputs := make([][]complex64, ch)
	for i := range inputs {
		inputs[i] = testIQ(uint64(i), 16896)
	}
	dst := make([]float32, ch*cfg.NMels*cfg.Frames)
	per := cfg.NMels * cfg.Frames
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for c := 0; c < ch; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				if err := e.Features(inputs[c], dst[c*per:(c+1)*per]); err != nil {
					panic(err)
				}
			}(c)
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.N*ch)/b.Elapsed().Seconds(), "channels/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}
