package kernels

import (
	"fmt"
	"math"
	"strconv"
)

// MelConfig are the feature parameters. The mapstructure tags are the YAML
// keys of the project's config ("features:" section).
type MelConfig struct {
	// NFFT is the STFT window and FFT length in samples. Default 2048; must be
	// a power of two >= 2.
	NFFT int `mapstructure:"n_fft"`
	// Hop is the STFT hop in samples (noverlap = n_fft - hop). Default 512;
	// must satisfy 0 < hop <= n_fft.
	Hop int `mapstructure:"hop"`
	// NMels is the number of HTK mel filters (rows of the spectrogram).
	// Default 128.
	NMels int `mapstructure:"n_mels"`
	// FMin is the lower edge of the mel filterbank in Hz. Default 0.
	FMin float64 `mapstructure:"f_min"`
	// FMax is the upper edge of the mel filterbank in Hz. Default 0, which
	// means sample_rate/2 (Nyquist).
	FMax float64 `mapstructure:"f_max"`
	// Frames is the number of time frames of the model input: the spectrogram
	// is centre-cropped to it, or reflect-padded when shorter. Default 32.
	Frames int `mapstructure:"frames"`
	// NMFCC is the number of DCT-II coefficients kept by MFCC. Default 13;
	// must be <= n_mels.
	NMFCC int `mapstructure:"n_mfcc"`
}

// DefaultMelConfig returns the defaults of the original pipeline:
// n_fft 2048, hop 512, 128 mels, f_min 0, f_max Nyquist, 32 frames, 13 MFCCs.
func DefaultMelConfig() MelConfig {
	return MelConfig{
		NFFT:   2048,
		Hop:    512,
		NMels:  128,
		FMin:   0,
		FMax:   0,
		Frames: 32,
		NMFCC:  13,
	}
}

func isPow2(n int) bool { return n > 0 && n&(n-1) == 0 }

func fmtF(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Validate checks the parameters that do not depend on the sample rate. The
// error names the offending YAML key, e.g.
// "features.n_fft: 1000 is not a power of two".
func (c MelConfig) Validate() error {
	switch {
	case c.NFFT <= 0:
		return fmt.Errorf("features.n_fft: %d must be positive", c.NFFT)
	case c.NFFT < 2:
		return fmt.Errorf("features.n_fft: %d must be >= 2", c.NFFT)
	case !isPow2(c.NFFT):
		return fmt.Errorf("features.n_fft: %d is not a power of two", c.NFFT)
	case c.Hop <= 0:
		return fmt.Errorf("features.hop: %d must be positive", c.Hop)
	case c.Hop > c.NFFT:
		return fmt.Errorf("features.hop: %d > n_fft %d", c.Hop, c.NFFT)
	case c.NMels <= 0:
		return fmt.Errorf("features.n_mels: %d must be positive", c.NMels)
	case math.IsNaN(c.FMin) || math.IsInf(c.FMin, 0) || c.FMin < 0:
		return fmt.Errorf("features.f_min: %s must be a finite value >= 0", fmtF(c.FMin))
	case math.IsNaN(c.FMax) || math.IsInf(c.FMax, 0) || c.FMax < 0:
		return fmt.Errorf("features.f_max: %s must be a finite value >= 0 (0 means sample_rate/2)", fmtF(c.FMax))
	case c.FMax != 0 && c.FMax <= c.FMin:
		return fmt.Errorf("features.f_max: %s must be > f_min %s", fmtF(c.FMax), fmtF(c.FMin))
	case c.Frames <= 0:
		return fmt.Errorf("features.frames: %d must be positive", c.Frames)
	case c.NMFCC <= 0:
		return fmt.Errorf("features.n_mfcc: %d must be positive", c.NMFCC)
	case c.NMFCC > c.NMels:
		return fmt.Errorf("features.n_mfcc: %d > n_mels %d", c.NMFCC, c.NMels)
	}
	return nil
}

// ValidateFor runs Validate and then the checks that need the sample rate:
// f_max (and f_min) must not exceed the Nyquist frequency sampleRate/2.
func (c MelConfig) ValidateFor(sampleRate float64) error {
	if math.IsNaN(sampleRate) || math.IsInf(sampleRate, 0) || sampleRate <= 0 {
		return fmt.Errorf("sample_rate: %s must be a finite value > 0", fmtF(sampleRate))
	}
	if err := c.Validate(); err != nil {
		return err
	}
	nyq := sampleRate / 2
	if c.FMax > nyq {
		return fmt.Errorf("features.f_max: %s > Nyquist %s (sample_rate %s)", fmtF(c.FMax), fmtF(nyq), fmtF(sampleRate))
	}
	if c.FMin >= c.fMaxFor(sampleRate) {
		return fmt.Errorf("features.f_min: %s >= f_max %s (sample_rate %s)", fmtF(c.FMin), fmtF(c.fMaxFor(sampleRate)), fmtF(sampleRate))
	}
	return nil
}

// fMaxFor resolves f_max 0 to Nyquist.
func (c MelConfig) fMaxFor(sampleRate float64) float64 {
	if c.FMax == 0 {
		return sampleRate / 2
	}
	return c.FMax
}

// Key returns a short stable string identifying the parameters that shape the
// feature tensor, for feature caches, e.g.
// "nfft2048-hop512-mels128-fmin0-fmax0-fr32". f_max is written as configured
// (0 = Nyquist), so include the sample rate in the cache key separately.
// n_mfcc is not part of the key: MFCCs are derived from the mel dB on demand.
func (c MelConfig) Key() string {
	return "nfft" + strconv.Itoa(c.NFFT) +
		"-hop" + strconv.Itoa(c.Hop) +
		"-mels" + strconv.Itoa(c.NMels) +
		"-fmin" + fmtF(c.FMin) +
		"-fmax" + fmtF(c.FMax) +
		"-fr" + strconv.Itoa(c.Frames)
}
