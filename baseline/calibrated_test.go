package baseline

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/geo"
)

// world is a synthetic propagation world for the learned baselines' tests:
// the log-distance law of the simulator's defaults with planted receiver
// gain offsets, an optional smooth static loss field per receiver, residual
// shadowing and a transmitter power that varies per session.
type world struct {
	offsetsDB  []float64 // per receiver
	exponent   float64
	shadowDB   float64
	txJitterDB float64
	missing    float64  // probability a receiver misses a session (≥ 3 kept)
	field      [][]wave // per receiver, summed; nil: none
}

// wave is one 2-D sinusoid of a loss field, in km from the box centre.
type wave struct{ amp, kx, ky, phase float64 }

// Transmitter box and geometry: the simulator's defaults.
const (
	boxLatMin, boxLatMax = 44.2, 45.7
	boxLonMin, boxLonMax = 7.0, 9.4
	boxLat0, boxLon0     = (boxLatMin + boxLatMax) / 2, (boxLonMin + boxLonMax) / 2
)

// smoothField draws per receiver `waves` sinusoids with wavelengths of
// 40-150 km in random directions, whose sum has standard deviation stdDB.
func smoothField(rng *rand.Rand, receivers, waves int, stdDB float64) [][]wave {
	amp := stdDB * math.Sqrt(2/float64(waves))
	f := make([][]wave, receivers)
	for i := range f {
		for range waves {
			lambda := 40 + 110*rng.Float64()
			dir := 2 * math.Pi * rng.Float64()
			k := 2 * math.Pi / lambda
			f[i] = append(f[i], wave{amp, k * math.Cos(dir), k * math.Sin(dir), 2 * math.Pi * rng.Float64()})
		}
	}
	return f
}

func (w world) fieldDB(i int, lat, lon float64) float64 {
	if w.field == nil {
		return 0
	}
	kmLat, kmLon := geo.KmPerDegree(boxLat0)
	x, y := (lon-boxLon0)*kmLon, (lat-boxLat0)*kmLat
	s := 0.0
	for _, v := range w.field[i] {
		s += v.amp * math.Sin(v.kx*x+v.ky*y+v.phase)
	}
	return s
}

// samples draws n sessions with transmitters uniform in the box.
func (w world) samples(rng *rand.Rand, n int) []Sample {
	out := make([]Sample, n)
	R := len(geo.Receivers)
	for s := range out {
		lat := boxLatMin + (boxLatMax-boxLatMin)*rng.Float64()
		lon := boxLonMin + (boxLonMax-boxLonMin)*rng.Float64()
		tx := 37 + w.txJitterDB*rng.NormFloat64()
		p := make([]float64, R)
		for i, r := range geo.Receivers {
			d := max(geo.HaversineKm(lat, lon, r.Lat, r.Lon), minDistanceKm)
			p[i] = tx + w.offsetsDB[i] - 75.7 - 10*w.exponent*math.Log10(d) +
				w.fieldDB(i, lat, lon) + w.shadowDB*rng.NormFloat64()
		}
		for i, kept := range rng.Perm(R) {
			if i < R-3 && rng.Float64() < w.missing {
				p[kept] = math.NaN()
			}
		}
		out[s] = Sample{PowersDB: p, Lat: lat, Lon: lon}
	}
	return out
}

// planted offsets: a spread of several dB, not mean zero (only differences
// are identifiable).
var plantedOffsetsDB = []float64{6, -1, 4, -3, 2, 7, -4}

func centred(v []float64) []float64 {
	m := 0.0
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x - m
	}
	return out
}

func TestFitCalibrationNoiseFree(t *testing.T) {
	w := world{offsetsDB: plantedOffsetsDB, exponent: 3.4, txJitterDB: 5, missing: 0.1}
	train := w.samples(rand.New(rand.NewPCG(1, 1)), 200)
	c, err := FitCalibration(train, geo.Receivers)
	if err != nil {
		t.Fatal(err)
	}
	want := centred(plantedOffsetsDB)
	for i := range want {
		if math.Abs(c.OffsetsDB[i]-want[i]) > 1e-6 {
			t.Errorf("offset %d = %.9f, want %.9f", i, c.OffsetsDB[i], want[i])
		}
	}
	if math.Abs(c.Exponent-3.4) > 1e-8 || c.ResidualDB > 1e-6 || c.Sessions != 200 {
		t.Errorf("exponent %.9f residual %.2g sessions %d, want 3.4, 0, 200", c.Exponent, c.ResidualDB, c.Sessions)
	}
	// Calibrated least squares is then exact.
	for _, s := range w.samples(rand.New(rand.NewPCG(2, 2)), 10) {
		lat, lon := c.Locate(s.PowersDB)
		if e := geo.HaversineKm(s.Lat, s.Lon, lat, lon); e > 1 {
			t.Errorf("noise-free calibrated least squares %.2f km off", e)
		}
	}
}

func TestFitCalibrationRecoversOffsets(t *testing.T) {
	w := world{offsetsDB: plantedOffsetsDB, exponent: 3.3, shadowDB: 4, txJitterDB: 5, missing: 0.02}
	rng := rand.New(rand.NewPCG(3, 4))
	train, val := w.samples(rng, 2000), w.samples(rng, 300)
	start := time.Now()
	c, err := FitCalibration(train, geo.Receivers)
	fitTime := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	want := centred(plantedOffsetsDB)
	for i := range want {
		if math.Abs(c.OffsetsDB[i]-want[i]) > 1 {
			t.Errorf("receiver %d: fitted offset %.2f dB, planted %.2f dB", i, c.OffsetsDB[i], want[i])
		}
	}
	if math.Abs(c.Exponent-3.3) > 0.05 {
		t.Errorf("fitted exponent %.3f, planted 3.3", c.Exponent)
	}
	if math.Abs(c.ResidualDB-4) > 0.3 {
		t.Errorf("residual %.2f dB, shadowing 4 dB", c.ResidualDB)
	}
	start = time.Now()
	cal := Score(c, val)
	calTime := time.Since(start)
	uncal := Score(LeastSquares{geo.Receivers}, val)
	t.Logf("fit on %d sessions in %v: offsets %.2f (planted %.2f), exponent %.3f, residual %.2f dB",
		c.Sessions, fitTime, c.OffsetsDB, want, c.Exponent, c.ResidualDB)
	t.Logf("%d validation sessions: least squares %+v; calibrated %+v (%v per query)",
		len(val), uncal, cal, calTime/time.Duration(len(val)))
	// The median gains most; the mean is dominated by transmitters outside
	// the receivers' hull, where geometry rather than calibration limits.
	if cal.MedianKm > 0.8*uncal.MedianKm || cal.MeanKm > 0.9*uncal.MeanKm {
		t.Errorf("calibrated least squares (median %.1f, mean %.1f km) not clearly better than uncalibrated (%.1f, %.1f km)",
			cal.MedianKm, cal.MeanKm, uncal.MedianKm, uncal.MeanKm)
	}
}

func TestFitCalibrationErrors(t *testing.T) {
	good := world{offsetsDB: plantedOffsetsDB, exponent: 3}.samples(rand.New(rand.NewPCG(5, 6)), 10)
	one := []Sample{{PowersDB: []float64{-60, math.NaN(), math.NaN()}, Lat: 45, Lon: 8}}
	for _, tc := range []struct {
		name      string
		train     []Sample
		receivers []geo.Receiver
		want      string
	}{
		{"no sessions", nil, geo.Receivers, "none of 0 sessions"},
		{"one receiver heard", one, geo.Receivers, "none of 1 sessions"},
		{"one receiver", good, geo.Receivers[:1], "1 receivers"},
		{"one session", good[:1], geo.Receivers, "singular"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FitCalibration(tc.train, tc.receivers)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
	// A receiver never heard gets offset 0; the others still fit.
	for _, s := range good {
		s.PowersDB[6] = math.NaN()
	}
	c, err := FitCalibration(good, geo.Receivers)
	if err != nil || c.OffsetsDB[6] != 0 {
		t.Errorf("receiver 7 never heard: %+v, %v", c.OffsetsDB, err)
	}
}

func BenchmarkFitCalibration(b *testing.B) {
	w := world{offsetsDB: plantedOffsetsDB, exponent: 3.3, shadowDB: 4, txJitterDB: 5, missing: 0.02}
	train := w.samples(rand.New(rand.NewPCG(3, 4)), 4000)
	for b.Loop() {
		if _, err := FitCalibration(train, geo.Receivers); err != nil {
			b.Fatal(err)
		}
	}
}
