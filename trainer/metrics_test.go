package trainer

import (
	"math"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/stats"
)

func TestPercentile(t *testing.T) {
	v := []float64{4, 1, 3, 2, 5}
	for _, tc := range []struct{ p, want float64 }{{0, 1}, {50, 3}, {90, 4.6}, {100, 5}, {25, 2}} {
		if got := stats.Percentile(v, tc.p); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("p%g = %g, want %g", tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(stats.Percentile(nil, 50)) {
		t.Error("empty percentile should be NaN")
	}
}

func TestCalibrationTable(t *testing.T) {
	// Truth at (0, 0); sigma (1, 2) degrees; predictions placed at known
	// normalised radii r = sqrt((dlat/1)^2 + (dlon/2)^2).
	y := []float32{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	pos := []float32{
		0.5, 0, // r 0.5: in 1σ and 2σ.
		0, 2, // r 1: on the 1σ boundary, inside.
		1, 2, // r sqrt2: 2σ only.
		0, 4, // r 2: on the 2σ boundary, inside.
		2, 2, // r sqrt5: outside both.
	}
	sigma := []float32{1, 2, 1, 2, 1, 2, 1, 2, 1, 2}
	in1, in2 := Calibration(y, pos, sigma)
	if in1 != 0.4 || in2 != 0.8 {
		t.Errorf("within 1σ %g, 2σ %g; want 0.4, 0.8", in1, in2)
	}
	if math.Abs(GaussianWithin1Sigma-0.3935) > 1e-4 || math.Abs(GaussianWithin2Sigma-0.8647) > 1e-4 {
		t.Errorf("Gaussian shares %g %g", GaussianWithin1Sigma, GaussianWithin2Sigma)
	}
}

func TestEvaluateKmTable(t *testing.T) {
	kmLat, _ := geo.KmPerDegree(45)
	// Errors of 0.1, 0.2, 0.3, 0.4 degrees of latitude at lon 8.
	y := []float32{45, 8, 45, 8, 45, 8, 45, 8}
	pos := []float32{45.1, 8, 44.8, 8, 45.3, 8, 44.6, 8}
	// Sigma a hair above 0.1 keeps r = 1 and 2 inside despite float32 rounding.
	sigma := []float32{0.1001, 0.1001, 0.1001, 0.1001, 0.1001, 0.1001, 0.1001, 0.1001}
	base := []float32{46, 8, 46, 8, 46, 8, 46, 8}
	m := Evaluate(y, pos, sigma, []Baseline{{Name: "far", Positions: base}})
	want := []float64{0.1 * kmLat, 0.2 * kmLat, 0.3 * kmLat, 0.4 * kmLat}
	approx := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-3*want+1e-6 {
			t.Errorf("%s = %g, want %g", name, got, want)
		}
	}
	approx("km mean", m.KmMean, 0.25*kmLat)
	approx("km median", m.KmMedian, (want[1]+want[2])/2)
	approx("km p90", m.KmP90, want[2]+0.7*(want[3]-want[2]))
	approx("mae", m.MAE, (0.1+0.2+0.3+0.4)/8)
	approx("sigma mean", m.SigmaMean, 0.1001)
	if m.Within1Sigma != 0.25 || m.Within2Sigma != 0.5 {
		t.Errorf("calibration %g %g, want 0.25 0.5", m.Within1Sigma, m.Within2Sigma)
	}
	if len(m.Baselines) != 1 {
		t.Fatalf("baselines %+v", m.Baselines)
	}
	approx("baseline km mean", m.Baselines[0].KmMean, kmLat)
	s := (&Summary{Preset: "cpu", Val: m}).String()
	for _, want := range []string{"LocalizationNet", "far", "inside 2-sigma", "86.5%"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary table lacks %q:\n%s", want, s)
		}
	}
}
