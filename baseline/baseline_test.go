package baseline

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/kernels"
	"github.com/heimdall-sdr/trainer/sim"
	"github.com/heimdall-sdr/trainer/storage/local"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Errors
	}{
		{"empty", nil, Errors{}},
		{"one", []float64{4}, Errors{4, 4, 4, 1}},
		// numpy: mean 5.5, median 5.5, percentile(…, 90) = 9.1
		{"one to ten", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, Errors{5.5, 5.5, 9.1, 10}},
		// numpy: mean 26.5, median 3.5, percentile(…, 90) = 74.5
		{"skewed", []float64{1, 2, 3, 4, 5, 144}, Errors{26.5, 3.5, 74.5, 6}},
		{"NaN skipped", []float64{2, math.NaN(), 4}, Errors{3, 3, 3.8, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Summarize(tc.in)
			if got.N != tc.want.N || math.Abs(got.MeanKm-tc.want.MeanKm) > 1e-9 ||
				math.Abs(got.MedianKm-tc.want.MedianKm) > 1e-9 || math.Abs(got.P90Km-tc.want.P90Km) > 1e-9 {
				t.Fatalf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// modelPowers returns noise-free log-distance powers for a transmitter at
// (lat, lon), with an arbitrary offset.
func modelPowers(lat, lon, p0, n float64) []float64 {
	p := make([]float64, len(geo.Receivers))
	for i, r := range geo.Receivers {
		p[i] = p0 - 10*n*math.Log10(geo.HaversineKm(lat, lon, r.Lat, r.Lon))
	}
	return p
}

func TestLocateNoiseFree(t *testing.T) {
	for _, tx := range [][2]float64{{45.0, 8.0}, {44.5, 7.5}, {45.6, 8.5}, {44.8, 9.3}, {45.3, 7.1}} {
		p := modelPowers(tx[0], tx[1], -40, 3)
		c, l := Locate(p, geo.Receivers, nil)
		if e := geo.HaversineKm(tx[0], tx[1], l[0], l[1]); e > 1 {
			t.Errorf("tx %v: least squares %v is %.2f km off, want < 1 km", tx, l, e)
		}
		// The centroid lies in the receivers' hull: only sanity-check it.
		if c[0] < 44.3 || c[0] > 45.5 || c[1] < 7.2 || c[1] > 9.2 {
			t.Errorf("tx %v: centroid %v outside the receivers", tx, c)
		}
	}
}

func TestLocateMissingReceivers(t *testing.T) {
	tx := [2]float64{45.1, 8.3}
	p := modelPowers(tx[0], tx[1], -50, 3)
	present := []bool{true, false, true, true, true, false, true}
	p[1] = math.Inf(-1) // ignored because absent
	_, l := Locate(p, geo.Receivers, present)
	if e := geo.HaversineKm(tx[0], tx[1], l[0], l[1]); e > 1 {
		t.Errorf("with receivers 2 and 6 missing, least squares is %.2f km off", e)
	}
	// Fewer than three receivers: least squares falls back to the centroid.
	c, l := Locate(p, geo.Receivers, []bool{true, false, true, false, false, false, false})
	if c != l {
		t.Errorf("two receivers: lsq %v != centroid %v", l, c)
	}
	// None: the receivers' mean, no panic.
	c, _ = Locate(nil, geo.Receivers, nil)
	if lat, lon := geo.Centroid(geo.Receivers); c != [2]float64{lat, lon} {
		t.Errorf("no powers: %v", c)
	}
}

// TestLocateSimulated locates every approved simulated session, loaded by
// dataset (the one session loader), with both methods.
func TestLocateSimulated(t *testing.T) {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := sim.DefaultOptions()
	o.World = sim.WorldLogDistance // the world Locate's tuning and these bounds are for
	o.Sessions = 100
	sum, err := sim.Generate(context.Background(), st, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	dso := dataset.DefaultOptions()
	dso.Prefix, dso.CacheDir = o.Prefix, filepath.Join(t.TempDir(), "cache")
	ds, err := dataset.Load(context.Background(), st, kernels.DefaultMelConfig(), dso, nil)
	if err != nil {
		t.Fatal(err)
	}
	R := len(ds.Receivers)
	var ce, le []float64
	for _, s := range []*dataset.Split{ds.Train, ds.Val} {
		for i := 0; i < s.Len(); i++ {
			c, l := Locate(s.PowerDB[i*R:(i+1)*R], ds.Receivers, s.Present[i*R:(i+1)*R])
			lat, lon := float64(s.Y[2*i]), float64(s.Y[2*i+1])
			ce = append(ce, geo.HaversineKm(lat, lon, c[0], c[1]))
			le = append(le, geo.HaversineKm(lat, lon, l[0], l[1]))
		}
	}
	centroid, lsq := Summarize(ce), Summarize(le)
	t.Logf("%d approved sessions: centroid %+v; least squares %+v", sum.Approved, centroid, lsq)
	if centroid.N != sum.Approved || lsq.N != sum.Approved {
		t.Fatalf("evaluated %d/%d sessions, want the %d approved", centroid.N, lsq.N, sum.Approved)
	}
	if lsq.MedianKm <= 0 || lsq.MedianKm > 30 {
		t.Errorf("least-squares median error %.1f km, want (0, 30]", lsq.MedianKm)
	}
	if centroid.MedianKm <= 0 || centroid.MedianKm > 45 {
		t.Errorf("centroid median error %.1f km, want (0, 45]", centroid.MedianKm)
	}
	if lsq.MedianKm >= centroid.MedianKm {
		t.Errorf("least squares (median %.1f km) does not beat the centroid (%.1f km)", lsq.MedianKm, centroid.MedianKm)
	}
}

func BenchmarkLocate(b *testing.B) {
	p := modelPowers(45.0, 8.0, -40, 3)
	for i := range p {
		p[i] += float64(i%3) - 1
	}
	for b.Loop() {
		Locate(p, geo.Receivers, nil)
	}
}
