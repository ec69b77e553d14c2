package kernels

import (
	"math"

	"gonum.org/v1/gonum/dsp/fourier"
)

// dbFloor is added to the mel power before the logarithm (step 4).
const dbFloor = 1e-9

// stdFloor is the lower bound of the standard deviation in Normalize (step 5).
const stdFloor = 1e-8

// HannPeriodic returns the periodic ("DFT-even") Hann window of length n,
// w[i] = 0.5 - 0.5 cos(2 pi i / n), as scipy.signal.get_window('hann', n).
// n == 1 gives [1] (scipy's length guard); n <= 0 gives nil.
func HannPeriodic(n int) []float64 {
	if n <= 0 {
		return nil
	}
	w := make([]float64, n)
	if n == 1 {
		w[0] = 1
		return w
	}
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	return w
}

// stftLayout returns, for a signal of n samples, the length of the signal
// after scipy.signal.stft's boundary='zeros' extension (nfft/2 zeros on each
// side) and padded=True end padding, and the resulting number of frames T.
//
// The end padding is scipy's
//
//	nadd = (-(len_ext - nperseg) % nstep) % nperseg
//
// with Python's non-negative modulo. The window length is always nfft, also
// for a signal shorter than one window: scipy.signal.stft itself would shrink
// nperseg to the input length there (and then fail, as noverlap >= nperseg),
// so this is the natural continuation of its framing, not a scipy call. The
// golden vectors check it against scipy.signal.stft run on the explicitly
// padded signal and against scipy.signal.ShortTimeFFT. For n >= 1,
// T = 1 + ceil(n/hop).
func stftLayout(n, nfft, hop int) (padded, frames int) {
	ext := n + 2*(nfft/2)
	r := -(ext - nfft) % hop
	if r < 0 {
		r += hop
	}
	nadd := r % nfft
	padded = ext + nadd
	if padded < nfft {
		// Only reachable for n == 0 with odd nfft; keep one all-zero frame.
		padded = nfft
	}
	return padded, 1 + (padded-nfft)/hop
}

// stftCore holds the per-goroutine state of one STFT: the FFT plan (both
// plans keep work buffers, so a core is not safe for concurrent use) and
// scratch. A power-of-two nfft (every MelConfig) uses rfftPower; any other
// length (STFTPower accepts them) gonum's FFTPACK.
type stftCore struct {
	nfft, hop int
	win       []float64
	scale     float64 // 1 / sum(win)^2: scaling='spectrum', squared for power
	rfft      *rfftPower
	fft       *fourier.FFT
	frame     []float64
	coef      []complex128
	power     []float64 // one frame's |Z|^2, nfft/2+1 bins
	xp        []float64 // padded signal
}

func newSTFTCore(nfft, hop int, win []float64) *stftCore {
	var sum float64
	for _, v := range win {
		sum += v
	}
	s := &stftCore{
		nfft:  nfft,
		hop:   hop,
		win:   win,
		scale: 1 / (sum * sum),
		power: make([]float64, nfft/2+1),
	}
	if nfft >= 2 && isPow2(nfft) {
		s.rfft = newRFFTPower(win, s.scale)
	} else {
		s.fft = fourier.NewFFT(nfft)
		s.frame = make([]float64, nfft)
		s.coef = make([]complex128, nfft/2+1)
	}
	return s
}

// pad lays x out in the core's padded buffer and returns the frame count.
func (s *stftCore) pad(x []float64) int {
	n, T := stftLayout(len(x), s.nfft, s.hop)
	if cap(s.xp) < n {
		s.xp = make([]float64, n)
	}
	s.xp = s.xp[:n]
	left := s.nfft / 2
	clear(s.xp[:left])
	copy(s.xp[left:], x)
	clear(s.xp[left+len(x):])
	return T
}

// padIQ is pad for x = |iq| computed in float64: sqrt(re^2 + im^2), exact
// products of the float32 parts and one rounding each for the sum and the
// root (math.Hypot's overflow guard is not needed for float32 inputs).
func (s *stftCore) padIQ(iq []complex64) int {
	n, T := stftLayout(len(iq), s.nfft, s.hop)
	if cap(s.xp) < n {
		s.xp = make([]float64, n)
	}
	s.xp = s.xp[:n]
	left := s.nfft / 2
	clear(s.xp[:left])
	for i, v := range iq {
		re, im := float64(real(v)), float64(imag(v))
		s.xp[left+i] = math.Sqrt(re*re + im*im)
	}
	clear(s.xp[left+len(iq):])
	return T
}

// framePower computes |Z|^2 of frame t of the padded signal into s.power.
func (s *stftCore) framePower(t int) {
	seg := s.xp[t*s.hop : t*s.hop+s.nfft]
	if s.rfft != nil {
		s.rfft.power(seg, s.power)
		return
	}
	for i, w := range s.win {
		s.frame[i] = seg[i] * w
	}
	s.fft.Coefficients(s.coef, s.frame)
	for k, z := range s.coef {
		re, im := real(z), imag(z)
		s.power[k] = (re*re + im*im) * s.scale
	}
}

// STFTPower returns the power spectrogram |Z|^2 of the real signal x, with Z
// exactly as scipy.signal.stft(x, window='hann', nperseg=nfft,
// noverlap=nfft-hop) with its defaults boundary='zeros', padded=True,
// detrend=False, return_onesided=True, scaling='spectrum'. The result is
// [T × (nfft/2+1)] row-major (frame-major). See stftLayout for the padding
// rule, including signals shorter than one window. It panics when nfft < 1 or
// hop is not in [1, nfft].
func STFTPower(x []float64, nfft, hop int) ([]float64, int) {
	if nfft < 1 || hop < 1 || hop > nfft {
		panic("kernels: STFTPower needs nfft >= 1 and 0 < hop <= nfft")
	}
	s := newSTFTCore(nfft, hop, HannPeriodic(nfft))
	T := s.pad(x)
	bins := nfft/2 + 1
	out := make([]float64, T*bins)
	for t := 0; t < T; t++ {
		s.framePower(t)
		copy(out[t*bins:], s.power)
	}
	return out, T
}

// hzToMel is the HTK mel scale.
func hzToMel(f float64) float64 { return 2595 * math.Log10(1+f/700) }

// melToHz inverts hzToMel.
func melToHz(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }

// MelFilterbank returns the HTK triangular mel filterbank as a dense
// [nMels × (nfft/2+1)] row-major matrix. fMax == 0 means sampleRate/2.
//
// nMels+2 points are spaced linearly in mel = 2595 log10(1 + f/700) between
// mel(fMin) and mel(fMax) (the end points are fMin and fMax exactly); filter m
// has edges left, center, right = points m, m+1, m+2 and is evaluated at the
// rfft bin frequencies f_k = k sampleRate / nfft:
//
//	left <= f <= center:  (f - left) / (center - left)
//	center < f <= right:  (right - f) / (right - center)
//	otherwise 0
//
// with no area normalisation. Zero-width sides are guarded: if center ==
// left the rising side is the single point f == center with weight 1, and if
// right == center the falling side is empty.
func MelFilterbank(nMels, nfft int, sampleRate, fMin, fMax float64) []float64 {
	if fMax == 0 {
		fMax = sampleRate / 2
	}
	bins := nfft/2 + 1
	pts := make([]float64, nMels+2)
	mMin, mMax := hzToMel(fMin), hzToMel(fMax)
	step := (mMax - mMin) / float64(nMels+1)
	for i := range pts {
		pts[i] = melToHz(mMin + step*float64(i))
	}
	pts[0], pts[nMels+1] = fMin, fMax
	fb := make([]float64, nMels*bins)
	for m := 0; m < nMels; m++ {
		left, center, right := pts[m], pts[m+1], pts[m+2]
		row := fb[m*bins : (m+1)*bins]
		for k := range row {
			f := float64(k) * sampleRate / float64(nfft)
			switch {
			case f >= left && f <= center:
				if center > left {
					row[k] = (f - left) / (center - left)
				} else {
					row[k] = 1 // f == left == center
				}
			case f > center && f <= right:
				row[k] = (right - f) / (right - center) // right > center here
			}
		}
	}
	return fb
}

// sparseFilter is one filterbank row restricted to its non-zero bins.
type sparseFilter struct {
	start int
	w     []float64
}

func sparsify(fb []float64, nMels, bins int) []sparseFilter {
	out := make([]sparseFilter, nMels)
	for m := range out {
		row := fb[m*bins : (m+1)*bins]
		lo, hi := 0, len(row)
		for lo < hi && row[lo] == 0 {
			lo++
		}
		for hi > lo && row[hi-1] == 0 {
			hi--
		}
		out[m] = sparseFilter{start: lo, w: row[lo:hi]}
	}
	return out
}

// Normalize standardises db in place over all its elements:
// (db - mean) / max(std, 1e-8) with the population standard deviation
// (numpy's db.std(), ddof=0).
func Normalize(db []float64) {
	if len(db) == 0 {
		return
	}
	var sum float64
	for _, v := range db {
		sum += v
	}
	mean := sum / float64(len(db))
	var ss float64
	for _, v := range db {
		d := v - mean
		ss += d * d
	}
	std := math.Sqrt(ss / float64(len(db)))
	inv := 1 / math.Max(std, stdFloor)
	for i, v := range db {
		db[i] = (v - mean) * inv
	}
}

// reflectIndex maps a possibly out-of-range time index p to [0, T) as
// numpy's np.pad(mode='reflect') does (reflection without repeating the edge,
// repeated as often as needed: period 2(T-1)). For T == 1 reflection is
// impossible and the single frame is repeated (numpy does the same).
func reflectIndex(p, T int) int {
	if T == 1 {
		return 0
	}
	period := 2 * (T - 1)
	q := p % period
	if q < 0 {
		q += period
	}
	if q >= T {
		q = period - q
	}
	return q
}

// CropOrPad returns the [nMels × frames] centre part of the [nMels × T]
// row-major spectrogram db (a new slice). When T >= frames it crops from
// start = (T-frames)/2 (integer division). When T < frames it pads like
// np.pad(db, ((0,0), (left, right)), mode='reflect') with
// left = (frames-T)/2 and right = frames-T-left (the extra frame, if odd, goes
// to the end); pads longer than T-1 reflect repeatedly, exactly as numpy, and
// T == 1 repeats the single frame.
func CropOrPad(db []float64, nMels, T, frames int) []float64 {
	out := make([]float64, nMels*frames)
	cropOrPadInto(out, db, nMels, T, frames, func(v float64) float64 { return v })
	return out
}

func cropOrPadInto[E float32 | float64](dst []E, db []float64, nMels, T, frames int, conv func(float64) E) {
	if T >= frames {
		start := (T - frames) / 2
		for m := 0; m < nMels; m++ {
			src := db[m*T+start : m*T+start+frames]
			d := dst[m*frames : (m+1)*frames]
			for i, v := range src {
				d[i] = conv(v)
			}
		}
		return
	}
	left := (frames - T) / 2
	for m := 0; m < nMels; m++ {
		src := db[m*T : (m+1)*T]
		d := dst[m*frames : (m+1)*frames]
		for i := range d {
			d[i] = conv(src[reflectIndex(i-left, T)])
		}
	}
}

// MFCC returns scipy.fft.dct(melDB, type=2, norm='ortho', axis=0)[:nMFCC] for
// the [nMels × frames] row-major melDB, i.e. [nMFCC × frames] row-major:
//
//	c[k,t] = s_k sum_m melDB[m,t] cos(pi k (2m+1) / (2 nMels)),
//	s_0 = sqrt(1/nMels), s_k = sqrt(2/nMels).
//
// As the original compute_mfcc(mel_db), it is meant for the un-normalised
// mel dB of MelDB (step 4), not the normalised features. nMFCC is capped at
// nMels.
func MFCC(melDB []float64, nMels, frames, nMFCC int) []float64 {
	if nMFCC > nMels {
		nMFCC = nMels
	}
	if nMFCC <= 0 || frames <= 0 {
		return nil
	}
	out := make([]float64, nMFCC*frames)
	basis := make([]float64, nMels)
	for k := 0; k < nMFCC; k++ {
		s := math.Sqrt(2 / float64(nMels))
		if k == 0 {
			s = math.Sqrt(1 / float64(nMels))
		}
		for m := range basis {
			basis[m] = s * math.Cos(math.Pi*float64(k*(2*m+1))/float64(2*nMels))
		}
		row := out[k*frames : (k+1)*frames]
		for m, b := range basis {
			src := melDB[m*frames : (m+1)*frames]
			for t, v := range src {
				row[t] += b * v
			}
		}
	}
	return out
}
