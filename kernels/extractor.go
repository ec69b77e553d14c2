// Package kernels holds the IQ → mel-spectrogram / MFCC feature kernels
// shared by training and inference, following HEIMDALL.md "Features"
// (iq_to_mel_spectrogram and compute_mfcc) exactly; golden vectors produced by
// scripts/gen-golden.py with scipy check them.
//
// Per receiver channel:
//  1. x = |iq| in float64;
//  2. STFT as scipy.signal.stft defaults (periodic Hann of n_fft, n_fft/2 zeros
//     each side, end zero-padded to whole hops, one-sided, divided by the
//     window sum);
//  3. power |Z|^2 through an HTK mel filterbank;
//  4. db = 10 log10(mel + 1e-9);
//  5. normalise over the whole [n_mels × T] channel;
//  6. centre-crop or reflect-pad the time axis to Frames.
//
// Choices the spec leaves open: the window stays n_fft also for a signal
// shorter than one window (scipy.signal.stft would shrink it; see
// STFTPower), T = 1 + ceil(len(iq)/hop); reflect padding puts
// (frames-T)/2 frames before and the rest after, reflecting repeatedly as
// numpy does, and repeats the frame when T == 1; MFCC takes the
// un-normalised mel dB, like the original compute_mfcc(mel_db).
//
// Layouts are row-major: spectrograms are [n_mels × T] (mel-major), STFT
// power is [T × bins] (frame-major).
package kernels

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// Extractor precomputes the window, FFT plan and mel filterbank for one
// configuration and sample rate. It is safe for concurrent use by multiple
// goroutines: per-call scratch (FFT plan, frame and signal buffers) comes from
// a sync.Pool, so steady-state calls of Features do not allocate.
type Extractor struct {
	cfg        MelConfig
	sampleRate float64
	win        []float64
	filters    []sparseFilter
	pool       sync.Pool // *scratch
}

type scratch struct {
	core *stftCore
	db   []float64
}

// NewExtractor validates cfg for sampleRate (see MelConfig.ValidateFor) and
// precomputes the window and filterbank.
func NewExtractor(cfg MelConfig, sampleRate float64) (*Extractor, error) {
	if err := cfg.ValidateFor(sampleRate); err != nil {
		return nil, err
	}
	bins := cfg.NFFT/2 + 1
	fb := MelFilterbank(cfg.NMels, cfg.NFFT, sampleRate, cfg.FMin, cfg.FMax)
	e := &Extractor{
		cfg:        cfg,
		sampleRate: sampleRate,
		win:        HannPeriodic(cfg.NFFT),
		filters:    sparsify(fb, cfg.NMels, bins),
	}
	e.pool.New = func() any {
		return &scratch{core: newSTFTCore(cfg.NFFT, cfg.Hop, e.win)}
	}
	return e, nil
}

// Config returns the extractor's configuration.
func (e *Extractor) Config() MelConfig { return e.cfg }

// SampleRate returns the sample rate the filterbank was built for.
func (e *Extractor) SampleRate() float64 { return e.sampleRate }

// Frames returns the number of STFT frames T that an IQ block of n samples
// gives: 1 + ceil(n/hop) for n >= 1.
func (e *Extractor) Frames(n int) int {
	_, T := stftLayout(n, e.cfg.NFFT, e.cfg.Hop)
	return T
}

// ErrEmptyIQ is returned for an IQ block without samples.
var ErrEmptyIQ = errors.New("kernels: empty IQ block")

// melDBInto runs steps 1–4 into s.db and returns T.
func (e *Extractor) melDBInto(s *scratch, iq []complex64) int {
	c := s.core
	T := c.padIQ(iq)
	n := e.cfg.NMels * T
	if cap(s.db) < n {
		s.db = make([]float64, n)
	}
	db := s.db[:n]
	for t := 0; t < T; t++ {
		c.framePower(t)
		for m, f := range e.filters {
			p := c.power[f.start : f.start+len(f.w)]
			var acc float64
			for i, w := range f.w {
				acc += w * p[i]
			}
			db[m*T+t] = acc
		}
	}
	for i, v := range db {
		db[i] = 10 * math.Log10(v+dbFloor)
	}
	s.db = db
	return T
}

// MelDB returns the mel spectrogram in dB, db = 10 log10(fb @ |Z|^2 + 1e-9),
// steps 1–4 of the spec (before normalisation), as a new [n_mels × T]
// row-major slice, and T.
func (e *Extractor) MelDB(iq []complex64) (db []float64, frames int, err error) {
	if len(iq) == 0 {
		return nil, 0, ErrEmptyIQ
	}
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	T := e.melDBInto(s, iq)
	return append([]float64(nil), s.db...), T, nil
}

// Features runs steps 1–6: the mel dB normalised over the whole channel, then
// centre-cropped or reflect-padded (see CropOrPad) to [n_mels × Frames],
// written row-major into dst, which must have length n_mels*Frames.
func (e *Extractor) Features(iq []complex64, dst []float32) error {
	if want := e.cfg.NMels * e.cfg.Frames; len(dst) != want {
		return fmt.Errorf("kernels: Features dst has length %d, want n_mels*frames = %d", len(dst), want)
	}
	if len(iq) == 0 {
		return ErrEmptyIQ
	}
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	T := e.melDBInto(s, iq)
	Normalize(s.db)
	cropOrPadInto(dst, s.db, e.cfg.NMels, T, e.cfg.Frames, func(v float64) float32 { return float32(v) })
	return nil
}
