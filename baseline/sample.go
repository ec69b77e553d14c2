package baseline

import (
	"math"

	"github.com/heimdall-sdr/trainer/geo"
)

// Sample is one session as the learned baselines see it: the measured power
// per receiver and, for training and scoring, the true transmitter position.
type Sample struct {
	// PowersDB[i] is the power measured by receivers[i] in dB (any common
	// reference: dBFS, dBm). NaN or infinite entries, and entries past the
	// end of the slice, are receivers that did not hear the session.
	PowersDB []float64
	// Lat, Lon are the true transmitter position in degrees.
	Lat, Lon float64
}

// Locator estimates a transmitter position (degrees) from the powers of one
// session, in the layout of Sample.PowersDB.
type Locator interface {
	Locate(powersDB []float64) (lat, lon float64)
}

var (
	_ Locator = LeastSquares{}
	_ Locator = Calibration{}
	_ Locator = (*Fingerprint)(nil)
)

// LeastSquares is the uncalibrated least-squares baseline (Locate's lsq) as
// a Locator.
type LeastSquares struct {
	Receivers []geo.Receiver
}

// Locate returns Locate's least-squares estimate.
func (l LeastSquares) Locate(powersDB []float64) (lat, lon float64) {
	_, p := Locate(powersDB, l.Receivers, nil)
	return p[0], p[1]
}

// ErrorsKm returns the great-circle error in km of loc on every sample.
func ErrorsKm(loc Locator, samples []Sample) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		lat, lon := loc.Locate(s.PowersDB)
		out[i] = geo.HaversineKm(s.Lat, s.Lon, lat, lon)
	}
	return out
}

// Score summarises the errors of loc on samples (see Summarize).
func Score(loc Locator, samples []Sample) Errors {
	return Summarize(ErrorsKm(loc, samples))
}

// heard reports whether receiver i heard a session with powers p.
func heard(p []float64, i int) bool {
	return i < len(p) && !math.IsNaN(p[i]) && !math.IsInf(p[i], 0)
}
