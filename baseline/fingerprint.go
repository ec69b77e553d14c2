package baseline

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/heimdall-sdr/trainer/geo"
)

// DefaultFingerprintKs is the grid of neighbour counts FitFingerprint
// chooses k from by cross-validation.
var DefaultFingerprintKs = []int{1, 3, 5, 7, 10, 15, 20, 30}

// FingerprintOptions configure FitFingerprint. The zero value gives the
// defaults.
type FingerprintOptions struct {
	// Ks are the candidate neighbour counts. Default DefaultFingerprintKs.
	Ks []int
	// Folds is the number of cross-validation folds; training sample j is
	// in fold j mod Folds. Default 5.
	Folds int
	// MinCommon is how many receivers a query and a training sample must
	// both have heard for the sample to count as a neighbour. Default 3.
	MinCommon int
}

// FingerprintScore is the cross-validated error of one candidate.
type FingerprintScore struct {
	K        int    `json:"k"`
	Weighted bool   `json:"weighted"`
	Errors   Errors `json:"errors"`
}

// Fingerprint is the k-nearest-neighbour locator on the training sessions'
// power vectors ("RF fingerprinting"). The distance between two sessions
// compares their powers on the receivers both heard with the common offset
// removed (transmitter power, and the receivers' static gains, cancel):
// with δ_i = P_i - P'_i over the m common receivers,
//
//	D² = Σ_i (δ_i - mean δ)² / (m - 1),
//
// the sample variance of δ, whose expectation does not depend on m. The
// estimate is the mean of the k nearest training positions (degrees),
// plain or weighted by 1/D, both k and the weighting chosen by
// cross-validation on the training split: the lowest mean error, ties to the
// smaller k, then plain. (The median would pick k = 1 on a smooth loss
// field: a median a few per cent lower than k = 10's bought with a mean and
// a p90 far higher.)
type Fingerprint struct {
	// K is the chosen number of neighbours.
	K int `json:"k"`
	// Weighted is true when the neighbours are weighted by 1/D.
	Weighted bool `json:"weighted"`
	// CV holds the cross-validated error of every candidate, in the order
	// (k, plain), (k, weighted) for k in the grid.
	CV []FingerprintScore `json:"cv"`

	r         int       // receivers
	minCommon int       // see FingerprintOptions
	powers    []float64 // r per sample, 0 where not heard
	mask      []uint64  // bit i: receiver i heard
	lat, lon  []float64
	meanLat   float64 // fallback estimate: the training positions' mean
	meanLon   float64
}

// neighbour is a training sample and its squared distance to a query.
type neighbour struct {
	j  int
	d2 float64
}

// FitFingerprint stores the training samples (those with a finite position
// and at least MinCommon receivers) and chooses k and the weighting by
// Folds-fold cross-validation over Ks. Cross-validation costs one query per
// training sample against the other folds: O(n² · receivers), under a
// second for 4000 samples on the 2-core development VM; it runs on
// GOMAXPROCS goroutines and its result does not depend on how many.
func FitFingerprint(train []Sample, receivers []geo.Receiver, o FingerprintOptions) (*Fingerprint, error) {
	if o.Ks == nil {
		o.Ks = DefaultFingerprintKs
	}
	if o.Folds == 0 {
		o.Folds = 5
	}
	if o.MinCommon == 0 {
		o.MinCommon = 3
	}
	R := len(receivers)
	switch {
	case R < 2 || R > 64:
		return nil, fmt.Errorf("baseline: fit fingerprint: %d receivers, want 2 to 64", R)
	case o.Folds < 2:
		return nil, fmt.Errorf("baseline: fit fingerprint: %d folds, want at least 2", o.Folds)
	case o.MinCommon < 2:
		return nil, fmt.Errorf("baseline: fit fingerprint: min common receivers %d, want at least 2", o.MinCommon)
	case len(o.Ks) == 0:
		return nil, fmt.Errorf("baseline: fit fingerprint: no candidate k")
	}
	kmax := 0
	for _, k := range o.Ks {
		if k < 1 {
			return nil, fmt.Errorf("baseline: fit fingerprint: candidate k %d, want at least 1", k)
		}
		kmax = max(kmax, k)
	}

	f := &Fingerprint{r: R, minCommon: o.MinCommon}
	for _, s := range train {
		if math.IsNaN(s.Lat) || math.IsNaN(s.Lon) || math.IsInf(s.Lat, 0) || math.IsInf(s.Lon, 0) {
			continue
		}
		v, m := f.vector(s.PowersDB, nil)
		if bits.OnesCount64(m) < o.MinCommon {
			continue
		}
		f.powers = append(f.powers, v...)
		f.mask = append(f.mask, m)
		f.lat = append(f.lat, s.Lat)
		f.lon = append(f.lon, s.Lon)
		f.meanLat += s.Lat
		f.meanLon += s.Lon
	}
	n := len(f.lat)
	if n < 2*o.Folds {
		return nil, fmt.Errorf("baseline: fit fingerprint: %d usable training sessions of %d, need at least %d", n, len(train), 2*o.Folds)
	}
	f.meanLat /= float64(n)
	f.meanLon /= float64(n)

	// Cross-validation: the kmax nearest out-of-fold neighbours of every
	// training sample, then every candidate's estimate from them.
	type cand struct {
		k        int
		weighted bool
	}
	var cands []cand
	for _, k := range o.Ks {
		cands = append(cands, cand{k, false}, cand{k, true})
	}
	errs := make([][]float64, len(cands))
	for c := range errs {
		errs[c] = make([]float64, n)
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), n/256))
	var g errgroup.Group
	g.SetLimit(workers)
	for w := range workers {
		g.Go(func() error {
			nb := make([]neighbour, 0, kmax)
			for i := w; i < n; i += workers {
				nb = f.nearest(f.powers[i*R:(i+1)*R], f.mask[i], kmax, i%o.Folds, o.Folds, nb[:0])
				for c, cd := range cands {
					if len(nb) == 0 {
						errs[c][i] = math.NaN()
						continue
					}
					lat, lon := f.estimate(nb[:min(cd.k, len(nb))], cd.weighted)
					errs[c][i] = geo.HaversineKm(f.lat[i], f.lon[i], lat, lon)
				}
			}
			return nil
		})
	}
	_ = g.Wait() // The workers return no error.
	best := -1
	for c, cd := range cands {
		e := Summarize(errs[c])
		f.CV = append(f.CV, FingerprintScore{K: cd.k, Weighted: cd.weighted, Errors: e})
		if e.N == 0 {
			continue
		}
		if best < 0 || e.MeanKm < f.CV[best].Errors.MeanKm ||
			(e.MeanKm == f.CV[best].Errors.MeanKm && cd.k < f.CV[best].K) {
			best = c
		}
	}
	if best < 0 {
		return nil, fmt.Errorf("baseline: fit fingerprint: no training session has a neighbour with %d common receivers", o.MinCommon)
	}
	f.K, f.Weighted = f.CV[best].K, f.CV[best].Weighted
	return f, nil
}

// Locate returns the mean position of the K nearest training sessions
// (weighted by 1/D when Weighted). A query that shares fewer than
// MinCommon receivers with every training session gets the training
// positions' mean. It takes O(training sessions · receivers) time: with
// 4000 training sessions about a twentieth of a least-squares Locate
// (BenchmarkFingerprintLocate).
func (f *Fingerprint) Locate(powersDB []float64) (lat, lon float64) {
	v, m := f.vector(powersDB, make([]float64, f.r))
	nb := f.nearest(v, m, f.K, -1, 1, make([]neighbour, 0, f.K))
	if len(nb) == 0 {
		return f.meanLat, f.meanLon
	}
	return f.estimate(nb, f.Weighted)
}

// vector returns the powers of the f.r receivers (0 where not heard) in v
// (allocated when nil) and the mask of those heard.
func (f *Fingerprint) vector(powersDB, v []float64) ([]float64, uint64) {
	if v == nil {
		v = make([]float64, f.r)
	}
	var m uint64
	for i := range f.r {
		v[i] = 0
		if heard(powersDB, i) {
			v[i] = powersDB[i]
			m |= 1 << i
		}
	}
	return v, m
}

// nearest appends to nb (empty, capacity ≥ k) the k nearest training
// samples to the query (q, qm), nearest first, ties to the lower index,
// skipping samples j with j mod folds == skip (skip -1: none).
func (f *Fingerprint) nearest(q []float64, qm uint64, k, skip, folds int, nb []neighbour) []neighbour {
	R := f.r
	full := uint64(1)<<R - 1
	for j, tm := range f.mask {
		if skip >= 0 && j%folds == skip {
			continue
		}
		t := f.powers[j*R : (j+1)*R]
		var s1, s2 float64
		var m int
		if cm := qm & tm; cm == full {
			for i := range R {
				d := q[i] - t[i]
				s1 += d
				s2 += d * d
			}
			m = R
		} else {
			m = bits.OnesCount64(cm)
			if m < f.minCommon {
				continue
			}
			for ; cm != 0; cm &= cm - 1 {
				i := bits.TrailingZeros64(cm)
				d := q[i] - t[i]
				s1 += d
				s2 += d * d
			}
		}
		mf := float64(m)
		d2 := max(s2-s1*s1/mf, 0) / (mf - 1)
		if len(nb) == k && d2 >= nb[k-1].d2 {
			continue
		}
		if len(nb) < k {
			nb = append(nb, neighbour{})
		}
		a := len(nb) - 1
		for a > 0 && nb[a-1].d2 > d2 {
			nb[a] = nb[a-1]
			a--
		}
		nb[a] = neighbour{j, d2}
	}
	return nb
}

// minFingerprintDistanceDB floors D in the 1/D weights so an exact match
// does not take all the weight by an infinite margin.
const minFingerprintDistanceDB = 0.01

// estimate is the plain or 1/D-weighted mean of the neighbours' positions.
func (f *Fingerprint) estimate(nb []neighbour, weighted bool) (lat, lon float64) {
	var wsum float64
	for _, n := range nb {
		w := 1.0
		if weighted {
			w = 1 / max(math.Sqrt(n.d2), minFingerprintDistanceDB)
		}
		wsum += w
		lat += w * f.lat[n.j]
		lon += w * f.lon[n.j]
	}
	return lat / wsum, lon / wsum
}
