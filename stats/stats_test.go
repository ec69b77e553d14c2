package stats

import (
	"math"
	"testing"
)

func TestPercentileMatchesNumPy(t *testing.T) {
	// numpy.percentile([3, 1, 4, 1, 5, 9, 2, 6], [0, 25, 50, 90, 95, 100])
	v := []float64{3, 1, 4, 1, 5, 9, 2, 6}
	for _, c := range []struct{ p, want float64 }{
		{0, 1}, {25, 1.75}, {50, 3.5}, {90, 6.9}, {95, 7.95}, {100, 9},
	} {
		if got := Percentile(v, c.p); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if v[0] != 3 {
		t.Errorf("Percentile sorted its input: %v", v)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("Percentile of nothing is not NaN")
	}
}

func TestMeanStd(t *testing.T) {
	m, s := MeanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || s != 2 {
		t.Errorf("MeanStd = %v, %v, want 5, 2", m, s)
	}
	if m, s := MeanStd(nil); !math.IsNaN(m) || !math.IsNaN(s) {
		t.Error("MeanStd of nothing is not NaN")
	}
}
