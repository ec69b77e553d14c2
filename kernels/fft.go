package kernels

import (
	"math"
	"math/bits"
)

// rfftPower is the power spectrum |DFT(x·win)|^2 · scale of one real frame
// of n = 2m samples (n a power of two >= 2), computed in float64 through a
// complex FFT of half size: z[j] = y[2j] + i y[2j+1] (y = x·win), Z = FFT_m(z),
// and for k = 0..m
//
//	X[k] = (Z[k] + conj(Z[m-k]))/2 - i/2 · W_n^k · (Z[k] - conj(Z[m-k])),
//	W_n = exp(-2 pi i / n), Z[m] = Z[0].
//
// The complex FFT is iterative decimation in time on split real/imaginary
// arrays: the input is gathered in bit-reversed order (windowing fused into
// the gather), then pairs of radix-2 stages run fused as radix-4 butterflies
// (3 complex multiplications per 4 points), with one plain radix-2 stage
// first when log2(m) is odd. Every twiddle factor is precomputed with
// math.Sincos, not by recurrence. On amd64 with AVX2 and FMA the radix-4
// stages of span >= 4 run in fft_amd64.s, four butterflies per instruction
// (1.4x the sessions per CPU-second of the portable loops on the default
// configuration; docs/PERFORMANCE.md); -tags purego keeps the portable loops.
// The plan holds work buffers: one per goroutine. TestRFFTPower checks both
// paths against gonum's FFTPACK and a direct DFT.
type rfftPower struct {
	n, m int
	idx  []int32   // idx[i] = 2·bitrev(i): where z[i] of the gathered input comes from
	wr   []float64 // win[idx[i]]
	wi   []float64 // win[idx[i]+1]
	oddR bool      // log2(m) odd: one radix-2 stage before the radix-4 ones
	tw   []twiddle4
	// tv are the twiddles of the stages of span >= 4 for radix4AVX2, stage
	// after stage, in blocks of 4 butterflies: w1r[4] w1i[4] w2r[4] w2i[4].
	tv   []float64
	post []complex128 // W_n^k, k = 0..m/2
	re   []float64
	im   []float64
	// scale4 is scale/4: the post-processing computes 2·X[k].
	scale4 float64
}

// twiddle4 are the two factors of one radix-4 butterfly of span s at offset
// k: W_{4s}^k and W_{4s}^{2k} = W_{2s}^k.
type twiddle4 struct{ w1r, w1i, w2r, w2i float64 }

func newRFFTPower(win []float64, scale float64) *rfftPower {
	n := len(win)
	if n < 2 || !isPow2(n) {
		panic("kernels: rfftPower needs a power-of-two length >= 2")
	}
	m := n / 2
	logm := bits.TrailingZeros(uint(m))
	p := &rfftPower{
		n: n, m: m,
		idx:    make([]int32, m),
		wr:     make([]float64, m),
		wi:     make([]float64, m),
		oddR:   logm%2 == 1,
		post:   make([]complex128, m/2+1),
		re:     make([]float64, m),
		im:     make([]float64, m),
		scale4: scale / 4,
	}
	for i := 0; i < m; i++ {
		r := 0
		if logm > 0 {
			r = int(bits.Reverse(uint(i)) >> (bits.UintSize - logm))
		}
		p.idx[i] = int32(2 * r)
		p.wr[i] = win[2*r]
		p.wi[i] = win[2*r+1]
	}
	s := 1
	if p.oddR {
		s = 2
	}
	for ; 4*s <= m; s *= 4 {
		start := len(p.tw)
		for k := 0; k < s; k++ {
			s1, c1 := math.Sincos(-2 * math.Pi * float64(k) / float64(4*s))
			s2, c2 := math.Sincos(-2 * math.Pi * float64(k) / float64(2*s))
			p.tw = append(p.tw, twiddle4{c1, s1, c2, s2})
		}
		if s >= 4 { // s is 4^j or 2·4^j: a multiple of 4 from 4 on
			for kb := start; kb < len(p.tw); kb += 4 {
				b := p.tw[kb : kb+4]
				p.tv = append(p.tv, b[0].w1r, b[1].w1r, b[2].w1r, b[3].w1r,
					b[0].w1i, b[1].w1i, b[2].w1i, b[3].w1i,
					b[0].w2r, b[1].w2r, b[2].w2r, b[3].w2r,
					b[0].w2i, b[1].w2i, b[2].w2i, b[3].w2i)
			}
		}
	}
	for k := range p.post {
		sn, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		p.post[k] = complex(c, sn)
	}
	return p
}

// power writes |X[k]|^2 · scale for k = 0..m into out (length m+1), X the DFT
// of seg·win (seg of length n).
func (p *rfftPower) power(seg []float64, out []float64) {
	m := p.m
	re, im := p.re[:m], p.im[:m]
	idx, wr, wi := p.idx[:m], p.wr[:m], p.wi[:m]
	seg = seg[:p.n]
	// Gather (bit-reversed order, windowed) fused with the first stage,
	// whose twiddles are all 1: radix-2 on pairs when log2(m) is odd, else
	// radix-4 on quadruples.
	s := 1
	switch {
	case m == 1:
		re[0], im[0] = seg[0]*wr[0], seg[1]*wi[0]
	case p.oddR:
		for i := 0; i+1 < m; i += 2 {
			j0, j1 := idx[i], idx[i+1]
			ar, ai := seg[j0]*wr[i], seg[j0+1]*wi[i]
			br, bi := seg[j1]*wr[i+1], seg[j1+1]*wi[i+1]
			re[i], im[i] = ar+br, ai+bi
			re[i+1], im[i+1] = ar-br, ai-bi
		}
		s = 2
	default:
		for i := 0; i+3 < m; i += 4 {
			j0, j1, j2, j3 := idx[i], idx[i+1], idx[i+2], idx[i+3]
			x0r, x0i := seg[j0]*wr[i], seg[j0+1]*wi[i]
			x1r, x1i := seg[j1]*wr[i+1], seg[j1+1]*wi[i+1]
			x2r, x2i := seg[j2]*wr[i+2], seg[j2+1]*wi[i+2]
			x3r, x3i := seg[j3]*wr[i+3], seg[j3+1]*wi[i+3]
			a0r, a0i := x0r+x1r, x0i+x1i
			a1r, a1i := x0r-x1r, x0i-x1i
			a2r, a2i := x2r+x3r, x2i+x3i
			a3r, a3i := x2r-x3r, x2i-x3i
			re[i], im[i] = a0r+a2r, a0i+a2i
			re[i+2], im[i+2] = a0r-a2r, a0i-a2i
			re[i+1], im[i+1] = a1r+a3i, a1i-a3r
			re[i+3], im[i+3] = a1r-a3i, a1i+a3r
		}
		s = 4 // m >= 4 here: m == 2 has odd log2 and m == 1 is above
	}
	tw := p.tw
	if !p.oddR && m >= 4 {
		tw = tw[1:] // the s = 1 stage ran in the gather
	}
	vo := 0 // offset of this stage's twiddles in p.tv
	for ; 4*s <= m; s *= 4 {
		t := tw[:s]
		tw = tw[s:]
		if s >= 4 && haveAVX2 {
			radix4AVX2(&re[0], &im[0], &p.tv[vo], m/(4*s), s)
			vo += 4 * s
			continue
		}
		if s < 16 {
			// Few butterflies per group: twiddle outside, groups inside,
			// instead of re-slicing 8 arrays for every group of s.
			for k, w := range t {
				for a := k; a+3*s < m; a += 4 * s {
					b, c, d := a+s, a+2*s, a+3*s
					x1r, x1i := re[b], im[b]
					t1r := w.w2r*x1r - w.w2i*x1i
					t1i := w.w2r*x1i + w.w2i*x1r
					x3r, x3i := re[d], im[d]
					t3r := w.w2r*x3r - w.w2i*x3i
					t3i := w.w2r*x3i + w.w2i*x3r
					x0r, x0i := re[a], im[a]
					x2r, x2i := re[c], im[c]
					a0r, a0i := x0r+t1r, x0i+t1i
					a1r, a1i := x0r-t1r, x0i-t1i
					a2r, a2i := x2r+t3r, x2i+t3i
					a3r, a3i := x2r-t3r, x2i-t3i
					u2r := w.w1r*a2r - w.w1i*a2i
					u2i := w.w1r*a2i + w.w1i*a2r
					vr := w.w1r*a3r - w.w1i*a3i
					vi := w.w1r*a3i + w.w1i*a3r
					re[a], im[a] = a0r+u2r, a0i+u2i
					re[c], im[c] = a0r-u2r, a0i-u2i
					re[b], im[b] = a1r+vi, a1i-vr
					re[d], im[d] = a1r-vi, a1i+vr
				}
			}
			continue
		}
		for base := 0; base < m; base += 4 * s {
			r0, r1, r2, r3 := re[base:base+s], re[base+s:base+2*s], re[base+2*s:base+3*s], re[base+3*s:base+4*s]
			i0, i1, i2, i3 := im[base:base+s], im[base+s:base+2*s], im[base+2*s:base+3*s], im[base+3*s:base+4*s]
			r0, r1, r2, r3 = r0[:len(t)], r1[:len(t)], r2[:len(t)], r3[:len(t)]
			i0, i1, i2, i3 = i0[:len(t)], i1[:len(t)], i2[:len(t)], i3[:len(t)]
			for k, w := range t {
				// Radix-2 stage of size 2s on (0,1) and (2,3), twiddle W_{2s}^k.
				x1r, x1i := r1[k], i1[k]
				t1r := w.w2r*x1r - w.w2i*x1i
				t1i := w.w2r*x1i + w.w2i*x1r
				x3r, x3i := r3[k], i3[k]
				t3r := w.w2r*x3r - w.w2i*x3i
				t3i := w.w2r*x3i + w.w2i*x3r
				x0r, x0i := r0[k], i0[k]
				x2r, x2i := r2[k], i2[k]
				a0r, a0i := x0r+t1r, x0i+t1i
				a1r, a1i := x0r-t1r, x0i-t1i
				a2r, a2i := x2r+t3r, x2i+t3i
				a3r, a3i := x2r-t3r, x2i-t3i
				// Radix-2 stage of size 4s on (0,2) with W_{4s}^k and on
				// (1,3) with W_{4s}^{k+s} = -i W_{4s}^k.
				u2r := w.w1r*a2r - w.w1i*a2i
				u2i := w.w1r*a2i + w.w1i*a2r
				vr := w.w1r*a3r - w.w1i*a3i
				vi := w.w1r*a3i + w.w1i*a3r
				// -i (vr + i vi) = vi - i vr
				r0[k], i0[k] = a0r+u2r, a0i+u2i
				r2[k], i2[k] = a0r-u2r, a0i-u2i
				r1[k], i1[k] = a1r+vi, a1i-vr
				r3[k], i3[k] = a1r-vi, a1i+vr
			}
		}
	}
	out = out[:m+1]
	sc := p.scale4
	// k = 0 and k = m: X[0] = Re Z0 + Im Z0, X[m] = Re Z0 - Im Z0 (2X squared
	// is 4X^2, hence scale/4).
	d0, dm := 2*(re[0]+im[0]), 2*(re[0]-im[0])
	out[0], out[m] = d0*d0*sc, dm*dm*sc
	// k and m-k together: with E = Z[k] + conj(Z[m-k]), O = -i (Z[k] -
	// conj(Z[m-k])) and u = W_n^k O, 2X[k] = E + u and, as W_n^(m-k) =
	// -conj(W_n^k), 2X[m-k] = conj(E - u): one complex multiplication and
	// one pair of loads for two bins.
	post := p.post[:m/2+1]
	for k := 1; k < len(post); k++ {
		j := m - k
		zr, zi := re[k], im[k]
		yr, yi := re[j], im[j]
		er, ei := zr+yr, zi-yi
		or, oi := zi+yi, yr-zr
		w := post[k]
		wre, wim := real(w), imag(w)
		ur := wre*or - wim*oi
		ui := wre*oi + wim*or
		ar, ai := er+ur, ei+ui
		br, bi := er-ur, ei-ui
		out[k] = (ar*ar + ai*ai) * sc
		out[j] = (br*br + bi*bi) * sc
	}
}
