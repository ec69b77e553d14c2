package experiment

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/heimdall-sdr/trainer/baseline"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/sim"
	"github.com/heimdall-sdr/trainer/trainer"
)

// Estimator names, in report order: how they appear in the summary, the
// tables, the plots and the metrics (val/baseline_<name>_km_*).
const (
	EstimatorCentroid     = "centroid"
	EstimatorLeastSquares = "least_squares"
	EstimatorCalibrated   = "calibrated_least_squares"
	EstimatorFingerprint  = "fingerprint"
	EstimatorOracle       = "oracle"
)

// fitSet is the set the fitted baselines learn from: a split with known
// positions, or nil with the reason there is none.
type fitSet struct {
	split  *dataset.Split
	source string // "training split", ...
	na     string // why there is none
	// oracle, when set, is the oracle's result on the same eval set from
	// an earlier call (it does not depend on the fit set): reused as is.
	oracle *trainer.Baseline
}

// estimatorsOn locates every session of eval with every estimator beside
// the model: centroid and least squares (from the powers alone),
// calibrated least squares and fingerprinting (fitted on fit) and the
// oracle (the world of the sessions' simulation records, origin). Each one
// that cannot run on this set is an n/a entry with its reason. logw gets
// one line per estimator with its cost.
func estimatorsOn(eval *dataset.Split, receivers []geo.Receiver, fit fitSet, origin dataset.Origin, logw io.Writer) ([]trainer.Baseline, rundir.Estimators) {
	if logw == nil {
		logw = io.Discard
	}
	R := len(receivers)
	n := eval.Len()
	setup := rundir.Estimators{FitSource: fit.source, Seconds: map[string]float64{}}
	powers := func(s *dataset.Split, i int) ([]float64, []bool) {
		return s.PowerDB[i*R : (i+1)*R], s.Present[i*R : (i+1)*R]
	}
	timed := func(name string, f func()) {
		start := time.Now()
		f()
		setup.Seconds[name] = time.Since(start).Seconds()
	}

	cen := make([]float32, 2*n)
	lsq := make([]float32, 2*n)
	timed(EstimatorLeastSquares, func() {
		parallel(n, func(i int) {
			p, pr := powers(eval, i)
			c, l := baseline.Locate(p, receivers, pr)
			cen[2*i], cen[2*i+1] = float32(c[0]), float32(c[1])
			lsq[2*i], lsq[2*i+1] = float32(l[0]), float32(l[1])
		})
	})
	out := []trainer.Baseline{{Name: EstimatorCentroid, Positions: cen}, {Name: EstimatorLeastSquares, Positions: lsq}}

	// The learned baselines.
	if fit.split == nil || fit.split.Len() == 0 {
		why := fit.na
		if why == "" {
			why = "no training sessions to fit on"
		}
		out = append(out, trainer.Baseline{Name: EstimatorCalibrated, NA: why}, trainer.Baseline{Name: EstimatorFingerprint, NA: why})
	} else {
		train := samples(fit.split, R)
		setup.FitSessions = len(train)
		locateAll := func(loc baseline.Locator) []float32 {
			pos := make([]float32, 2*n)
			parallel(n, func(i int) {
				lat, lon := loc.Locate(sampleOf(eval, R, i).PowersDB)
				pos[2*i], pos[2*i+1] = float32(lat), float32(lon)
			})
			return pos
		}
		var b trainer.Baseline
		timed(EstimatorCalibrated, func() {
			cal, err := baseline.FitCalibration(train, receivers)
			if err != nil {
				b = trainer.Baseline{Name: EstimatorCalibrated, NA: err.Error()}
				return
			}
			setup.Calibration = &rundir.CalibrationFit{OffsetsDB: cal.OffsetsDB, Exponent: cal.Exponent, ResidualDB: cal.ResidualDB, Sessions: cal.Sessions}
			b = trainer.Baseline{Name: EstimatorCalibrated, Positions: locateAll(cal)}
		})
		out = append(out, b)
		timed(EstimatorFingerprint, func() {
			fp, err := baseline.FitFingerprint(train, receivers, baseline.FingerprintOptions{})
			if err != nil {
				b = trainer.Baseline{Name: EstimatorFingerprint, NA: err.Error()}
				return
			}
			setup.Fingerprint = &rundir.FingerprintFit{K: fp.K, Weighted: fp.Weighted}
			b = trainer.Baseline{Name: EstimatorFingerprint, Positions: locateAll(fp)}
		})
		out = append(out, b)
	}

	// The oracle.
	if fit.oracle != nil {
		out = append(out, *fit.oracle)
		fmt.Fprintf(logw, "estimators on %d sessions (oracle reused): centroid + least squares %.1fs\n", n, setup.Seconds[EstimatorLeastSquares])
		return out, setup
	}
	var ob trainer.Baseline
	timed(EstimatorOracle, func() {
		w, desc, why := oracleWorld(origin, receivers)
		if w == nil {
			ob = trainer.Baseline{Name: EstimatorOracle, NA: why}
			return
		}
		setup.OracleWorld = desc
		or := baseline.NewOracle(w)
		pos := make([]float32, 2*n)
		sig := make([]float32, 2*n)
		parallel(n, func(i int) {
			p, pr := powers(eval, i)
			e := or.Locate(p, pr)
			pos[2*i], pos[2*i+1] = float32(e.Position[0]), float32(e.Position[1])
			sig[2*i], sig[2*i+1] = float32(e.Sigma[0]), float32(e.Sigma[1])
		})
		ob = trainer.Baseline{Name: EstimatorOracle, Positions: pos, Sigmas: sig}
	})
	out = append(out, ob)

	fmt.Fprintf(logw, "estimators on %d sessions: centroid + least squares %.1fs", n, setup.Seconds[EstimatorLeastSquares])
	for _, name := range []string{EstimatorCalibrated, EstimatorFingerprint, EstimatorOracle} {
		if s, ok := setup.Seconds[name]; ok {
			fmt.Fprintf(logw, ", %s %.1fs", name, s)
		}
	}
	fmt.Fprintln(logw)
	return out, setup
}

// oracleWorld rebuilds the world the sessions were drawn from out of their
// simulation records; nil with the reason when it is not known: sessions
// without a record (recordings, or simulated before records existed),
// sessions of different worlds, or receivers the world does not have.
func oracleWorld(o dataset.Origin, receivers []geo.Receiver) (*sim.World, string, string) {
	total := o.Unrecorded
	for _, s := range o.Simulations {
		total += s.Sessions
	}
	if len(o.Simulations) == 0 {
		return nil, "", "the sessions carry no simulation record (not from this simulator, or simulated before session.json recorded its world): the world is unknown"
	}
	if o.Unrecorded > 0 {
		return nil, "", fmt.Sprintf("%d of %d sessions carry no simulation record: their world is unknown", o.Unrecorded, total)
	}
	first, err := sim.OptionsFromRecord(o.Simulations[0].Record)
	if err != nil {
		return nil, "", err.Error()
	}
	for _, s := range o.Simulations[1:] {
		other, err := sim.OptionsFromRecord(s.Record)
		if err != nil {
			return nil, "", err.Error()
		}
		if !sim.SameWorld(first, other) {
			return nil, "", fmt.Sprintf("the sessions come from different worlds (%s and %s)", sim.DescribeWorld(first), sim.DescribeWorld(other))
		}
	}
	w, err := sim.NewWorld(first)
	if err != nil {
		return nil, "", err.Error()
	}
	wr := w.Receivers()
	if len(wr) != len(receivers) {
		return nil, "", fmt.Sprintf("the world has %d receivers, the sessions %d", len(wr), len(receivers))
	}
	for i := range wr {
		if wr[i].ID != receivers[i].ID {
			return nil, "", fmt.Sprintf("receiver %d is websdr_%d in the world, websdr_%d in the sessions", i, wr[i].ID, receivers[i].ID)
		}
	}
	return w, sim.DescribeWorld(first) + ", from the sessions' simulation records", ""
}

// samples returns the split's sessions as the learned baselines see them
// (absent receivers NaN).
func samples(s *dataset.Split, R int) []baseline.Sample {
	out := make([]baseline.Sample, s.Len())
	for i := range out {
		out[i] = sampleOf(s, R, i)
	}
	return out
}

func sampleOf(s *dataset.Split, R, i int) baseline.Sample {
	p := make([]float64, R)
	for r := range R {
		p[r] = s.PowerDB[i*R+r]
		if !s.Present[i*R+r] {
			p[r] = math.NaN()
		}
	}
	return baseline.Sample{PowersDB: p, Lat: float64(s.Y[2*i]), Lon: float64(s.Y[2*i+1])}
}

// parallel runs f(0..n-1) on GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// estimatorErrors summarises the estimators' km errors on a set with
// truth y ([N, 2]).
func estimatorErrors(y []float32, bases []trainer.Baseline) []rundir.BaselineMetrics {
	return trainer.EvaluateBaselines(y, bases)
}

// writeEstimatorSetup prints how the estimators were set up (fit set,
// calibration, fingerprint k, oracle world, cost), one "key: value" a line.
func writeEstimatorSetup(w io.Writer, s rundir.Estimators) {
	fmt.Fprintf(w, "estimators_fit: %d sessions (%s)\n", s.FitSessions, s.FitSource)
	if c := s.Calibration; c != nil {
		fmt.Fprintf(w, "calibration: exponent %.3f, residual %.2f dB, offsets dB %.2f\n", c.Exponent, c.ResidualDB, c.OffsetsDB)
	}
	if f := s.Fingerprint; f != nil {
		fmt.Fprintf(w, "fingerprint: k %d, weighted %t (cross-validated)\n", f.K, f.Weighted)
	}
	if s.OracleWorld != "" {
		fmt.Fprintf(w, "oracle_world: %s\n", s.OracleWorld)
	}
	names := make([]string, 0, len(s.Seconds))
	for k := range s.Seconds {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprint(w, "estimator_seconds:")
	for _, k := range names {
		fmt.Fprintf(w, " %s %.2f", k, s.Seconds[k])
	}
	fmt.Fprintln(w)
}

// WriteBaselineTable prints the estimators of rep as a table (km mean,
// median, p90; inside the estimator's own 1-sigma where it has one), with
// how they were set up below it.
func WriteBaselineTable(w io.Writer, rep BaselineReport) error {
	if err := trainer.WriteEstimatorTable(w, nil, rep.Estimators); err != nil {
		return err
	}
	fmt.Fprintln(w)
	writeEstimatorSetup(w, rep.Setup)
	return nil
}
