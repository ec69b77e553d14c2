package baseline

import (
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/geo"
)

// fieldWorld is the quick check: a smooth static loss field of 6 dB
// (standard deviation) per receiver on top of the log-distance law, planted
// offsets, 3 dB residual shadowing.
func fieldWorld() world {
	return world{
		offsetsDB:  plantedOffsetsDB,
		exponent:   3,
		shadowDB:   3,
		txJitterDB: 5,
		missing:    0.02,
		field:      smoothField(rand.New(rand.NewPCG(7, 7)), len(geo.Receivers), 4, 6),
	}
}

func TestFingerprintBeatsCalibratedLeastSquares(t *testing.T) {
	w := fieldWorld()
	rng := rand.New(rand.NewPCG(8, 9))
	train, val := w.samples(rng, 4000), w.samples(rng, 300)

	start := time.Now()
	fp, err := FitFingerprint(train, geo.Receivers, FingerprintOptions{})
	fitTime := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	knn := Score(fp, val)
	queryTime := time.Since(start) / time.Duration(len(val))
	c, err := FitCalibration(train, geo.Receivers)
	if err != nil {
		t.Fatal(err)
	}
	cal := Score(c, val)
	uncal := Score(LeastSquares{geo.Receivers}, val)
	for _, s := range fp.CV {
		t.Logf("CV k=%2d weighted=%-5v median %.2f km mean %.2f km", s.K, s.Weighted, s.Errors.MedianKm, s.Errors.MeanKm)
	}
	t.Logf("FitFingerprint (4000 sessions, 5-fold CV over %d candidates) %v; query %v", len(fp.CV), fitTime, queryTime)
	t.Logf("%d validation sessions: least squares %+v; calibrated (n %.2f) %+v; %d-NN (weighted %v) %+v",
		len(val), uncal, c.Exponent, cal, fp.K, fp.Weighted, knn)

	if !slices.Contains(DefaultFingerprintKs, fp.K) || len(fp.CV) != 2*len(DefaultFingerprintKs) {
		t.Errorf("chosen k %d, %d CV scores; want k from %v and two scores per k", fp.K, len(fp.CV), DefaultFingerprintKs)
	}
	if knn.N != len(val) {
		t.Errorf("fingerprint located %d of %d sessions", knn.N, len(val))
	}
	if knn.MedianKm > 0.6*cal.MedianKm || knn.MeanKm > 0.7*cal.MeanKm {
		t.Errorf("fingerprinting (median %.1f, mean %.1f km) does not clearly beat calibrated least squares (%.1f, %.1f km)",
			knn.MedianKm, knn.MeanKm, cal.MedianKm, cal.MeanKm)
	}
	if queryTime > 5*time.Millisecond {
		t.Errorf("fingerprint query takes %v, want at most a few ms", queryTime)
	}

	// Deterministic, whatever the number of goroutines.
	prev := runtime.GOMAXPROCS(1)
	fp1, err := FitFingerprint(train, geo.Receivers, FingerprintOptions{})
	runtime.GOMAXPROCS(prev)
	if err != nil {
		t.Fatal(err)
	}
	if fp1.K != fp.K || fp1.Weighted != fp.Weighted || !reflect.DeepEqual(fp1.CV, fp.CV) {
		t.Fatalf("second fit chose k=%d weighted=%v, first k=%d weighted=%v (or CV differs)", fp1.K, fp1.Weighted, fp.K, fp.Weighted)
	}
	if e := Score(fp1, val); e != knn {
		t.Errorf("second fit scores %+v, first %+v", e, knn)
	}
}

func TestFingerprintNeighbours(t *testing.T) {
	train := world{offsetsDB: plantedOffsetsDB, exponent: 3, shadowDB: 3, txJitterDB: 5, missing: 0.1}.
		samples(rand.New(rand.NewPCG(10, 11)), 200)
	fp, err := FitFingerprint(train, geo.Receivers, FingerprintOptions{Ks: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if fp.K != 1 || len(fp.CV) != 2 {
		t.Fatalf("k %d, CV %+v", fp.K, fp.CV)
	}
	// A training session's powers, shifted by any common offset and with
	// receivers missing, have that session as their nearest neighbour.
	for _, j := range []int{0, 17, 199} {
		q := slices.Clone(train[j].PowersDB)
		for i := range q {
			q[i] += 12.5
		}
		q[j%7] = math.NaN()
		q = q[:6] // receiver 7 absent by length
		lat, lon := fp.Locate(q)
		if lat != train[j].Lat || lon != train[j].Lon {
			t.Errorf("session %d: located at (%.4f, %.4f), want its own position (%.4f, %.4f)", j, lat, lon, train[j].Lat, train[j].Lon)
		}
	}
	// Fewer common receivers than MinCommon: the training mean.
	lat, lon := fp.Locate([]float64{-70, -80})
	if math.Abs(lat-fp.meanLat) > 1e-12 || math.Abs(lon-fp.meanLon) > 1e-12 {
		t.Errorf("two receivers: (%v, %v), want the training mean (%v, %v)", lat, lon, fp.meanLat, fp.meanLon)
	}

	for _, tc := range []struct {
		name  string
		train []Sample
		o     FingerprintOptions
	}{
		{"too few sessions", train[:9], FingerprintOptions{}},
		{"one fold", train, FingerprintOptions{Folds: 1}},
		{"bad k", train, FingerprintOptions{Ks: []int{0, 3}}},
		{"no k", train, FingerprintOptions{Ks: []int{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FitFingerprint(tc.train, geo.Receivers, tc.o); err == nil {
				t.Error("no error")
			}
		})
	}
}

func BenchmarkFingerprintLocate(b *testing.B) {
	w := fieldWorld()
	rng := rand.New(rand.NewPCG(8, 9))
	train, val := w.samples(rng, 4000), w.samples(rng, 100)
	fp, err := FitFingerprint(train, geo.Receivers, FingerprintOptions{Ks: []int{15}})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		fp.Locate(val[i%len(val)].PowersDB)
		i++
	}
}
