package baseline

import (
	"golang.org/x/sync/errgroup"
	"math"
	"runtime"

	"github.com/heimdall-sdr/trainer/geo"
)

// PowerModel is what the oracle knows: the world exactly, as the simulator
// draws from it (sim.World implements it). Powers are in dB relative to the
// recordings' full scale, the unit of PowerDB.
type PowerModel interface {
	// Receivers are the receivers, in the order of the power vectors.
	Receivers() []geo.Receiver
	// Box is the support of the transmitter position (lat_min, lat_max,
	// lon_min, lon_max), where the prior is uniform.
	Box() [4]float64
	// Hypotheses quadrature the unknown, static per session, parameter of
	// the path gains (the transmitter antenna height): values and weights.
	Hypotheses() (h, weights []float64)
	// MeasuredGainDB is the mean measured signal power of receiver i for a
	// 0 dBm-EIRP transmitter at (lat, lon) under hypothesis h.
	MeasuredGainDB(i int, lat, lon, h float64) float64
	// ResidualSigmaDB is the standard deviation of the measured signal
	// power about its mean (shadowing, fading), in dB.
	ResidualSigmaDB(i int, lat, lon float64) float64
	// NoiseDB is receiver i's measured noise power and its jitter (dB).
	NoiseDB(i int) (meanDB, sigmaDB float64)
	// EIRPPrior is the distribution of the transmitter's EIRP (dBm): levels
	// and probabilities.
	EIRPPrior() (levelsDBm, weights []float64)
}

// OracleEstimate is the oracle's posterior summary.
type OracleEstimate struct {
	// Position is the posterior mean (latitude, longitude, degrees).
	Position [2]float64
	// Sigma is the posterior standard deviation of latitude and longitude
	// (degrees): the 1-sigma the network's uncertainty head is judged by.
	Sigma [2]float64
	// CovKm2 is the posterior covariance in km² (north, east).
	CovKm2 [2][2]float64
}

// Oracle grid: a coarse pass finds where the posterior lives, a fine pass
// integrates it there.
const (
	// OracleCoarseKm is the coarse grid's spacing.
	OracleCoarseKm = 4.0
	// OracleFineKm is the fine grid's spacing: a tenth of the errors the
	// oracle makes, so the grid adds little to them.
	OracleFineKm = 2.0
	// oracleKeepNats keeps coarse nodes within this log-posterior of the
	// best for the fine pass (e^-12: 6e-6 of the peak density).
	oracleKeepNats = 12.0
	// oracleEIRPStepDB is the spacing of the EIRP marginalisation.
	oracleEIRPStepDB = 1.0
	// oracleEIRPCoarse and oracleEIRPWindow: see Oracle.logPost.
	oracleEIRPCoarse, oracleEIRPWindow = 4, 6
	// oracleFloorSigmaDB is added in quadrature to every measurement's
	// spread (the measurement's own, ~0.03 dB for 17000 samples, and
	// numerical safety).
	oracleFloorSigmaDB = 0.1
)

// Oracle is the Bayes locator of a known world: from the measured powers
// alone (never the truth) it computes the posterior over a fine position
// grid, with a uniform prior over the transmitter box, marginalising the
// transmitter's EIRP (its prior) and the gain hypotheses. A receiver's
// measured power m_i = 10 log10(S_i + N_i) is modelled with the delta
// method: mean 10 log10(S̄ + N̄) with S̄ = EIRP + MeasuredGainDB, N̄ =
// NoiseDB, and standard deviation sqrt((w σ_s)² + ((1-w) σ_n)² + 0.1²),
// w = S̄/(S̄+N̄): a strong signal carries its shadowing and fading, a
// signal under the noise floor says "weak here" with the noise's jitter.
// Locate takes 20-100 ms per session.
type Oracle struct {
	m                PowerModel
	n                int
	hw               []float64
	eirp, eirpW      []float64 // marginalisation levels (dBm), log weights
	logHW            []float64
	noiseDB, noiseSD []float64 // per receiver, mean and jitter (dB)
	coarse, fine     oracleGrid
	kmLat, kmLon     float64
	fineOfCoarseStep int
}

// oracleGrid holds, per node, receiver and hypothesis, the linear gain, and
// per node and receiver the residual spread.
type oracleGrid struct {
	lat0, lon0, dLat, dLon float64
	nLat, nLon             int
	gain                   []float64 // [node][hyp][rx], dB
	sigma                  []float64 // [node][rx], dB
}

// NewOracle tabulates the model on the oracle's grids (about a second for
// the terrain world).
func NewOracle(m PowerModel) *Oracle {
	rs := m.Receivers()
	o := &Oracle{m: m, n: len(rs)}
	hs, hw := m.Hypotheses()
	o.hw = hw
	for i := range rs {
		mean, sd := m.NoiseDB(i)
		o.noiseDB = append(o.noiseDB, mean)
		o.noiseSD = append(o.noiseSD, sd)
	}
	// EIRP prior merged onto oracleEIRPStepDB bins.
	lv, w := m.EIRPPrior()
	acc := map[int]float64{}
	kmin, kmax := math.MaxInt, math.MinInt
	for k := range lv {
		b := int(math.Round(lv[k] / oracleEIRPStepDB))
		acc[b] += w[k]
		kmin, kmax = min(kmin, b), max(kmax, b)
	}
	for b := kmin; b <= kmax; b++ {
		if acc[b] > 0 {
			o.eirp = append(o.eirp, float64(b)*oracleEIRPStepDB)
			o.eirpW = append(o.eirpW, math.Log(acc[b]))
		}
	}
	for _, w := range hw {
		o.logHW = append(o.logHW, math.Log(w))
	}
	box := m.Box()
	o.kmLat, o.kmLon = geo.KmPerDegree((box[0] + box[1]) / 2)
	o.fineOfCoarseStep = int(math.Round(OracleCoarseKm / OracleFineKm))
	o.fine = o.tabulate(box, OracleFineKm, hs)
	// The coarse grid is every fineOfCoarseStep-th fine node.
	o.coarse = o.subsample(o.fine, o.fineOfCoarseStep, len(hs))
	return o
}

func (o *Oracle) tabulate(box [4]float64, stepKm float64, hs []float64) oracleGrid {
	g := oracleGrid{lat0: box[0], lon0: box[2]}
	g.nLat = int(math.Ceil((box[1]-box[0])*o.kmLat/stepKm)) + 1
	g.nLon = int(math.Ceil((box[3]-box[2])*o.kmLon/stepKm)) + 1
	g.dLat = (box[1] - box[0]) / float64(g.nLat-1)
	g.dLon = (box[3] - box[2]) / float64(g.nLon-1)
	nodes := g.nLat * g.nLon
	g.gain = make([]float64, nodes*len(hs)*o.n)
	g.sigma = make([]float64, nodes*o.n)
	parallel(g.nLat, func(a int) {
		lat := g.lat0 + float64(a)*g.dLat
		for b := range g.nLon {
			lon := g.lon0 + float64(b)*g.dLon
			node := a*g.nLon + b
			for i := range o.n {
				g.sigma[node*o.n+i] = math.Hypot(o.m.ResidualSigmaDB(i, lat, lon), oracleFloorSigmaDB)
				for h, hv := range hs {
					g.gain[(node*len(hs)+h)*o.n+i] = o.m.MeasuredGainDB(i, lat, lon, hv)
				}
			}
		}
	})
	return g
}

func (o *Oracle) subsample(f oracleGrid, k, nh int) oracleGrid {
	g := oracleGrid{lat0: f.lat0, lon0: f.lon0, dLat: f.dLat * float64(k), dLon: f.dLon * float64(k)}
	g.nLat = (f.nLat-1)/k + 1
	g.nLon = (f.nLon-1)/k + 1
	for a := range g.nLat {
		for b := range g.nLon {
			fn := (a*k)*f.nLon + b*k
			g.gain = append(g.gain, f.gain[fn*nh*o.n:(fn+1)*nh*o.n]...)
			g.sigma = append(g.sigma, f.sigma[fn*o.n:(fn+1)*o.n]...)
		}
	}
	return g
}

// logPost is the log posterior (up to a constant) at one node. The EIRP is
// marginalised in two steps: every oracleEIRPCoarse-th level first, then
// every level within oracleEIRPWindow levels of the best of those (the
// likelihood in the EIRP is a peak a few dB wide); coarse levels outside
// the window stand for their skipped neighbours.
func (o *Oracle) logPost(g *oracleGrid, node int, m []float64, idx []int, terms []float64) float64 {
	nh := len(o.hw)
	sig := g.sigma[node*o.n : (node+1)*o.n]
	terms = terms[:0]
	ne := len(o.eirp)
	for h := range nh {
		gain := g.gain[(node*nh+h)*o.n : (node*nh+h+1)*o.n]
		ll := func(e int) float64 {
			return o.logHW[h] + o.eirpW[e] + o.logLik(o.eirp[e], gain, sig, m, idx)
		}
		best, kb := math.Inf(-1), 0
		var coarse [64]float64
		nc := 0
		for e := 0; e < ne; e += oracleEIRPCoarse {
			v := ll(e)
			if nc < len(coarse) {
				coarse[nc] = v
			}
			nc++
			if v > best {
				best, kb = v, e
			}
		}
		lo, hi := max(0, kb-oracleEIRPWindow), min(ne-1, kb+oracleEIRPWindow)
		for e := lo; e <= hi; e++ {
			terms = append(terms, ll(e))
		}
		for c := 0; c < min(nc, len(coarse)); c++ {
			if e := c * oracleEIRPCoarse; e < lo || e > hi {
				terms = append(terms, coarse[c]+math.Log(oracleEIRPCoarse))
			}
		}
	}
	return logSumExp(terms)
}

// logLik is the log likelihood of the measured powers m[idx] for an EIRP of
// e dBm and the node's gains and spreads.
func (o *Oracle) logLik(e float64, gain, sig, m []float64, idx []int) float64 {
	const f2 = oracleFloorSigmaDB * oracleFloorSigmaDB
	ll := 0.0
	for _, i := range idx {
		// SNR x (dB): measured mean noise + 10 log10(1 + 10^(x/10)),
		// signal share w.
		x := e + gain[i] - o.noiseDB[i]
		sp, w := softplusDB(x)
		mu := o.noiseDB[i] + sp
		v := w*w*sig[i]*sig[i] + (1-w)*(1-w)*o.noiseSD[i]*o.noiseSD[i] + f2
		d := m[i] - mu
		ll -= 0.5 * (d*d/v + math.Log(v))
	}
	return ll
}

// softplusDB returns 10 log10(1 + 10^(x/10)) and 1/(1 + 10^(-x/10)) from
// a table (0.01 dB steps, linear interpolation; exact beyond ±60 dB).
func softplusDB(x float64) (sp, w float64) {
	switch {
	case x <= -spanDB:
		return 10 * math.Log10(1+math.Pow(10, x/10)), 1 / (1 + math.Pow(10, -x/10))
	case x >= spanDB:
		return x + 10*math.Log10(1+math.Pow(10, -x/10)), 1 / (1 + math.Pow(10, -x/10))
	}
	f := (x + spanDB) / stepDB
	k := int(f)
	u := f - float64(k)
	return spTable[k]*(1-u) + spTable[k+1]*u, wTable[k]*(1-u) + wTable[k+1]*u
}

const spanDB, stepDB = 60.0, 0.01

var spTable, wTable = func() ([]float64, []float64) {
	n := int(2*spanDB/stepDB) + 2
	sp, w := make([]float64, n), make([]float64, n)
	for k := range n {
		x := -spanDB + float64(k)*stepDB
		sp[k] = 10 * math.Log10(1+math.Pow(10, x/10))
		w[k] = 1 / (1 + math.Pow(10, -x/10))
	}
	return sp, w
}()

func logSumExp(v []float64) float64 {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = max(mx, x)
	}
	if math.IsInf(mx, -1) {
		return mx
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - mx)
	}
	return mx + math.Log(s)
}

// Locate returns the posterior mean and spread of the transmitter position
// from the measured powers (PowerDB of each receiver's recording; present
// as in Locate). With no receiver present it returns the box's centre and
// its uniform spread.
func (o *Oracle) Locate(powersDB []float64, present []bool) OracleEstimate {
	var idx []int
	for i := range o.n {
		if i >= len(powersDB) || (present != nil && (i >= len(present) || !present[i])) {
			continue
		}
		if p := powersDB[i]; math.IsNaN(p) || math.IsInf(p, 0) {
			continue
		}
		idx = append(idx, i)
	}
	terms := make([]float64, 0, len(o.hw)*len(o.eirp))
	c := &o.coarse
	lpc := make([]float64, c.nLat*c.nLon)
	best := math.Inf(-1)
	for node := range lpc {
		lpc[node] = o.logPost(c, node, powersDB, idx, terms)
		best = max(best, lpc[node])
	}
	// Fine pass over the fine nodes next to a kept coarse node.
	f := &o.fine
	k := o.fineOfCoarseStep
	type pt struct{ lat, lon, lp float64 }
	var pts []pt
	fbest := math.Inf(-1)
	for a := range f.nLat {
		for b := range f.nLon {
			keep := false
			for _, ca := range []int{a / k, min((a+k-1)/k, c.nLat-1)} {
				for _, cb := range []int{b / k, min((b+k-1)/k, c.nLon-1)} {
					if lpc[ca*c.nLon+cb] > best-oracleKeepNats {
						keep = true
					}
				}
			}
			if !keep {
				continue
			}
			lp := o.logPost(f, a*f.nLon+b, powersDB, idx, terms)
			pts = append(pts, pt{f.lat0 + float64(a)*f.dLat, f.lon0 + float64(b)*f.dLon, lp})
			fbest = max(fbest, lp)
		}
	}
	var sw, mlat, mlon float64
	for _, p := range pts {
		w := math.Exp(p.lp - fbest)
		sw += w
		mlat += w * p.lat
		mlon += w * p.lon
	}
	if sw == 0 || math.IsNaN(sw) {
		box := o.m.Box()
		return OracleEstimate{Position: [2]float64{(box[0] + box[1]) / 2, (box[2] + box[3]) / 2},
			Sigma: [2]float64{(box[1] - box[0]) / math.Sqrt(12), (box[3] - box[2]) / math.Sqrt(12)}}
	}
	mlat /= sw
	mlon /= sw
	var vaa, vbb, vab float64
	for _, p := range pts {
		w := math.Exp(p.lp-fbest) / sw
		da, db := p.lat-mlat, p.lon-mlon
		vaa += w * da * da
		vbb += w * db * db
		vab += w * da * db
	}
	// A posterior inside one fine cell still has the grid's spread.
	cell := 1.0 / 12
	vaa += cell * f.dLat * f.dLat
	vbb += cell * f.dLon * f.dLon
	return OracleEstimate{
		Position: [2]float64{mlat, mlon},
		Sigma:    [2]float64{math.Sqrt(vaa), math.Sqrt(vbb)},
		CovKm2: [2][2]float64{
			{vaa * o.kmLat * o.kmLat, vab * o.kmLat * o.kmLon},
			{vab * o.kmLat * o.kmLon, vbb * o.kmLon * o.kmLon},
		},
	}
}

// parallel runs job(i) for i in [0, n) on every CPU.
func parallel(n int, job func(i int)) {
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for i := range n {
		g.Go(func() error { job(i); return nil })
	}
	_ = g.Wait() // the jobs return no error
}
