package baseline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/kernels"
	"github.com/heimdall-sdr/trainer/sim"
	"github.com/heimdall-sdr/trainer/storage/local"
)

var _ PowerModel = (*sim.World)(nil)

// compare simulates n sessions of world and returns the mean/median/p90
// errors of the centroid, least squares and the oracle on the approved ones.
func compare(t *testing.T, world string, n int) (centroid, lsq, oracle Errors) {
	c, l, o, _ := compareCoverage(t, world, n)
	return c, l, o
}

// compareCoverage is compare, plus the fraction of sessions whose truth lies
// inside the oracle's 1-sigma ellipse (a calibrated 2-D Gaussian: 39.3%).
func compareCoverage(t *testing.T, world string, n int) (centroid, lsq, oracle Errors, inside float64) {
	t.Helper()
	o := sim.DefaultOptions()
	o.World = world
	o.Sessions = n
	o.Seed = 5
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := sim.Generate(ctx, st, o, nil); err != nil {
		t.Fatal(err)
	}
	w, err := sim.NewWorld(o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	or := NewOracle(w)
	t.Logf("%s: oracle tables in %s", world, time.Since(start).Round(time.Millisecond))
	res := loadRows(t, st, o.Prefix)
	start = time.Now()
	ce := make([]float64, len(res))
	le := make([]float64, len(res))
	oe := make([]float64, len(res))
	in := make([]bool, len(res))
	parallel(len(res), func(k int) {
		r := res[k]
		est := or.Locate(r.powers, r.present)
		c, l := Locate(r.powers, w.Receivers(), r.present)
		ce[k] = geo.HaversineKm(r.lat, r.lon, c[0], c[1])
		le[k] = geo.HaversineKm(r.lat, r.lon, l[0], l[1])
		oe[k] = geo.HaversineKm(r.lat, r.lon, est.Position[0], est.Position[1])
		kmLat, kmLon := geo.KmPerDegree(r.lat)
		dn, de := (r.lat-est.Position[0])*kmLat, (r.lon-est.Position[1])*kmLon
		c2 := est.CovKm2
		det := c2[0][0]*c2[1][1] - c2[0][1]*c2[1][0]
		in[k] = (dn*dn*c2[1][1]-2*dn*de*c2[0][1]+de*de*c2[0][0])/det <= 1
	})
	for _, v := range in {
		if v {
			inside++
		}
	}
	inside /= float64(max(1, len(in)))
	t.Logf("%s: oracle %.1f ms per session (wall, all CPUs)", world, float64(time.Since(start).Milliseconds())/float64(max(1, len(res))))
	return Summarize(ce), Summarize(le), Summarize(oe), inside
}

func TestOracleBeatsBaselines(t *testing.T) {
	for _, world := range []string{sim.WorldTerrain, sim.WorldLogDistance} {
		c, l, o := compare(t, world, 80)
		t.Logf("%s (%d sessions): centroid %.1f km, least squares %.1f km, oracle %.1f km (mean)", world, o.N, c.MeanKm, l.MeanKm, o.MeanKm)
		if o.MeanKm >= c.MeanKm || o.MeanKm >= l.MeanKm {
			t.Errorf("%s: oracle mean error %.1f km is not below centroid %.1f and least squares %.1f", world, o.MeanKm, c.MeanKm, l.MeanKm)
		}
	}
}

// TestOracleTable prints the comparison table on HEIMDALL_ORACLE_TABLE
// sessions (e.g. 500) of the default world; skipped otherwise.
func TestOracleTable(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HEIMDALL_ORACLE_TABLE"))
	if n <= 0 {
		t.Skip("set HEIMDALL_ORACLE_TABLE=500 to print the table")
	}
	for _, world := range []string{sim.WorldTerrain, sim.WorldLogDistance} {
		c, l, o, in := compareCoverage(t, world, n)
		fmt.Printf("%s world, %d approved sessions, %.1f%% inside the oracle's 1-sigma ellipse\n%-14s %8s %9s %7s\n", world, o.N, in*100, "estimator", "km mean", "km median", "km p90")
		for _, row := range []struct {
			name string
			e    Errors
		}{{"centroid", c}, {"least_squares", l}, {"oracle", o}} {
			fmt.Printf("%-14s %8.2f %9.2f %7.2f\n", row.name, row.e.MeanKm, row.e.MedianKm, row.e.P90Km)
		}
	}
}

// exactModel is a noise-free log-distance world with two offset receivers,
// for the oracle's own arithmetic.
type exactModel struct{}

func (exactModel) Receivers() []geo.Receiver { return geo.Receivers }
func (exactModel) Box() [4]float64           { return [4]float64{44.2, 45.7, 7.0, 9.4} }
func (exactModel) Hypotheses() ([]float64, []float64) {
	return []float64{0}, []float64{1}
}
func (exactModel) MeasuredGainDB(i int, lat, lon, _ float64) float64 {
	r := geo.Receivers[i]
	return -60 - 30*math.Log10(max(geo.HaversineKm(lat, lon, r.Lat, r.Lon), 0.01)) + float64(i)
}
func (exactModel) ResidualSigmaDB(int, float64, float64) float64 { return 1 }
func (exactModel) NoiseDB(int) (float64, float64)                { return -120, 1 }
func (exactModel) EIRPPrior() ([]float64, []float64) {
	return []float64{20, 25, 30, 35, 40}, []float64{0.2, 0.2, 0.2, 0.2, 0.2}
}

func TestOracleExact(t *testing.T) {
	or := NewOracle(exactModel{})
	var m exactModel
	for _, tx := range [][2]float64{{45.0, 8.0}, {44.5, 7.5}, {45.6, 8.5}, {44.8, 9.3}} {
		p := make([]float64, len(geo.Receivers))
		for i := range p {
			// What PowerDB measures: signal plus noise.
			p[i] = 10 * math.Log10(math.Pow(10, (30+m.MeasuredGainDB(i, tx[0], tx[1], 0))/10)+math.Pow(10, -12))
		}
		est := or.Locate(p, nil)
		if e := geo.HaversineKm(tx[0], tx[1], est.Position[0], est.Position[1]); e > 2 {
			t.Errorf("tx %v: oracle %v is %.2f km off", tx, est.Position, e)
		}
		if est.Sigma[0] <= 0 || est.Sigma[0] > 0.15 || est.Sigma[1] <= 0 || est.Sigma[1] > 0.15 {
			t.Errorf("tx %v: sigma %v degrees", tx, est.Sigma)
		}
	}
	// With every receiver absent the posterior is the prior.
	est := or.Locate(make([]float64, 7), make([]bool, 7))
	if math.Abs(est.Position[0]-44.95) > 0.01 || math.Abs(est.Position[1]-8.2) > 0.01 {
		t.Errorf("no receivers: %v, want the box centre", est.Position)
	}
}

// BenchmarkOracleLocate times one Locate on the default terrain world (a
// transmitter near Asti, noise-free mean powers plus the noise floor).
func BenchmarkOracleLocate(b *testing.B) {
	w, err := sim.NewWorld(sim.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	or := NewOracle(w)
	p := make([]float64, len(geo.Receivers))
	for i := range p {
		n, _ := w.NoiseDB(i)
		s := 27 + w.MeasuredGainDB(i, 44.9, 8.2, 0.5)
		p[i] = 10 * math.Log10(math.Pow(10, s/10)+math.Pow(10, n/10))
	}
	b.ResetTimer()
	for range b.N {
		or.Locate(p, nil)
	}
}

// row is one approved session as the estimators see it.
type row struct {
	powers   []float64
	present  []bool
	lat, lon float64
}

// loadRows loads every approved session under prefix through dataset (the
// one session loader), train and validation splits together.
func loadRows(t *testing.T, st *local.Store, prefix string) []row {
	t.Helper()
	dso := dataset.DefaultOptions()
	dso.Prefix, dso.CacheDir = prefix, filepath.Join(t.TempDir(), "cache")
	ds, err := dataset.Load(context.Background(), st, kernels.DefaultMelConfig(), dso, nil)
	if err != nil {
		t.Fatal(err)
	}
	R := len(ds.Receivers)
	var out []row
	for _, s := range []*dataset.Split{ds.Train, ds.Val} {
		for i := 0; i < s.Len(); i++ {
			out = append(out, row{s.PowerDB[i*R : (i+1)*R], s.Present[i*R : (i+1)*R], float64(s.Y[2*i]), float64(s.Y[2*i+1])})
		}
	}
	return out
}
