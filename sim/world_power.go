package sim

import (
	"math"
	"math/rand/v2"

	"github.com/heimdall-sdr/trainer/geo"
)

// buildLossGrids computes, for every receiver and both transmitter antenna
// heights, the diffraction loss from each node of a grid over the
// transmitter box (spacing loss_grid_m): the terrain profile along the great
// circle (a straight line in the gnomonic plane) sampled at the DEM's
// resolution, then Bullington's construction. A session's loss is the
// bilinear interpolation of these grids (linear in the antenna height
// between the two), so the simulator and the oracle see the same world.
func (w *World) buildLossGrids() {
	o := w.o
	x0, y0, x1, y1 := w.txBoxXY()
	step := o.LossGridM / 1000
	nx := int(math.Ceil((x1-x0)/step)) + 1
	ny := int(math.Ceil((y1-y0)/step)) + 1
	lambda := SpeedOfLight / o.CenterFrequencyHz
	demStep := w.dem.step
	for h := range w.loss {
		w.loss[h] = make([]*grid, len(w.Sites))
		for i := range w.Sites {
			w.loss[h][i] = newGrid(x0, y0, step, nx, ny)
		}
	}
	txH := [2]float64{o.TxHeightMinM, o.TxHeightMaxM}
	parallelRows(ny*len(w.Sites), func(row int) {
		i, r := row/ny, row%ny
		s := w.Sites[i]
		xr, yr := w.proj.forward(s.Receiver.Lat, s.Receiver.Lon)
		rxM := s.GroundM + s.AntennaM
		var heights []float64
		y := y0 + float64(r)*step
		for j := range nx {
			x := x0 + float64(j)*step
			d := math.Hypot(xr-x, yr-y)
			n := max(2, int(math.Ceil(d/demStep)))
			heights = w.dem.line(heights[:0], x, y, xr, yr, n)
			p := profile{heights: heights, stepKm: d / float64(n), rxM: rxM, lambdaM: lambda,
				kFactor: o.EarthKFactor, totalKm: d, correction: true}
			for h := range txH {
				p.txM = heights[0] + txH[h]
				l, _ := p.bullingtonLossDB()
				w.loss[h][i].v[r*nx+j] = float32(l)
			}
		}
	})
}

// DiffractionLossDB is the terrain's diffraction loss (dB) from a
// transmitter at (lat, lon) with its antenna at fraction hFrac of the way
// from tx_height_min_m to tx_height_max_m, to receiver i. It is 0 in the
// log-distance world.
func (w *World) DiffractionLossDB(i int, lat, lon, hFrac float64) float64 {
	if w.Kind == WorldLogDistance {
		return 0
	}
	x, y := w.proj.forward(lat, lon)
	return (1-hFrac)*w.loss[0][i].at(x, y) + hFrac*w.loss[1][i].at(x, y)
}

// ElevationM is the terrain height (m) at (lat, lon); 0 in the log-distance
// world.
func (w *World) ElevationM(lat, lon float64) float64 {
	if w.dem == nil {
		return 0
	}
	x, y := w.proj.forward(lat, lon)
	return w.dem.at(x, y)
}

// MeanPowerDBm is the mean received signal power (dBm) at receiver i from a
// transmitter at (lat, lon) of EIRP eirpDBm (its power plus antenna gain
// minus its environment loss) with its antenna at height fraction hFrac:
// before shadowing, fading and noise. It also returns the distance (km).
//
// Terrain world: EIRP + receiver antenna gain toward the transmitter +
// receiver gain offset - free-space loss - diffraction loss. Log-distance
// world: EIRP - reference_loss_db - 10 n log10(d/d0).
func (w *World) MeanPowerDBm(i int, lat, lon, eirpDBm, hFrac float64) (pDBm, dKm float64) {
	o := w.o
	s := w.Sites[i]
	dKm = max(geo.HaversineKm(lat, lon, s.Receiver.Lat, s.Receiver.Lon), 0.01)
	if w.Kind == WorldLogDistance {
		return eirpDBm - o.ReferenceLossDB - 10*o.PathLossExponent*math.Log10(dKm/o.ReferenceDistanceKm), dKm
	}
	g := s.Antenna.GainDB(bearingDeg(s.Receiver.Lat, s.Receiver.Lon, lat, lon))
	return eirpDBm + g + s.GainOffsetDB - FreeSpaceLossDB(dKm, o.CenterFrequencyHz/1e6) - w.DiffractionLossDB(i, lat, lon, hFrac), dKm
}

// ricianKDB is the fading's K-factor at distance d (the same law in both
// worlds).
func (w *World) ricianKDB(dKm float64) float64 {
	return w.o.RicianKDB - w.o.RicianKSlopeDB*math.Log10(dKm/w.o.ReferenceDistanceKm)
}

// shadowingSigmaDB is the per-path residual shadowing of the world.
func (w *World) shadowingSigmaDB() float64 {
	if w.Kind == WorldLogDistance {
		return w.o.ShadowingSigmaDB
	}
	return w.o.ResidualShadowingDB
}

// Hypotheses are the oracle's quadrature of the unknown transmitter antenna
// height: height fractions and their weights (uniform height: the midpoint
// rule on three points; one point in the log-distance world, where height
// plays no part).
func (w *World) Hypotheses() (hFrac, weights []float64) {
	if w.Kind == WorldLogDistance {
		return []float64{0}, []float64{1}
	}
	return []float64{1.0 / 6, 0.5, 5.0 / 6}, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}
}

// NumReceivers is the number of receivers (geo.Receivers order).
func (w *World) NumReceivers() int { return len(w.Sites) }

// Receivers are the receiver positions, in geo.Receivers order.
func (w *World) Receivers() []geo.Receiver {
	out := make([]geo.Receiver, len(w.Sites))
	for i, s := range w.Sites {
		out[i] = s.Receiver
	}
	return out
}

// Box is the transmitter box (lat_min, lat_max, lon_min, lon_max): the
// support of the transmitter position.
func (w *World) Box() [4]float64 {
	return [4]float64{w.o.LatMin, w.o.LatMax, w.o.LonMin, w.o.LonMax}
}

// MeasuredGainDB is the mean of the measured signal power in dB relative to
// full scale (what baseline.PowerDB reports, less the noise) for a
// transmitter of 0 dBm EIRP at (lat, lon) and height fraction hFrac:
// MeanPowerDBm - full_scale_dbm + the mean of the fading's dB gain over one
// recording.
func (w *World) MeasuredGainDB(i int, lat, lon, hFrac float64) float64 {
	p, d := w.MeanPowerDBm(i, lat, lon, 0, hFrac)
	m, _ := w.fade.stats(w.ricianKDB(d))
	return p - w.o.FullScaleDBm + m
}

// ResidualSigmaDB is the standard deviation (dB) of the measured signal
// power about MeasuredGainDB + EIRP for a transmitter at (lat, lon):
// shadowing and the spread of the fading's mean power over one recording.
func (w *World) ResidualSigmaDB(i int, lat, lon float64) float64 {
	d := max(geo.HaversineKm(lat, lon, w.Sites[i].Receiver.Lat, w.Sites[i].Receiver.Lon), 0.01)
	_, sd := w.fade.stats(w.ricianKDB(d))
	s := w.shadowingSigmaDB()
	return math.Sqrt(s*s + sd*sd)
}

// NoiseDB is the measured noise power of receiver i in dB relative to full
// scale (its noise floor plus, with quantize, the int16 rounding noise) and
// the standard deviation of its per-session jitter.
func (w *World) NoiseDB(i int) (meanDB, sigmaDB float64) {
	n := math.Pow(10, (w.Sites[i].NoiseFloorDBm-w.o.FullScaleDBm)/10)
	if w.o.Quantize {
		n += 2.0 / (12 * 32767 * 32767)
	}
	return 10 * math.Log10(n), w.o.NoiseFloorJitterDB
}

// EIRPPrior is the distribution of a session's EIRP (dBm), discretised:
// levels 0.5 dB apart and their probabilities.
func (w *World) EIRPPrior() (levelsDBm, weights []float64) {
	return w.eirpLevels, w.eirpWeights
}

// eirpBinDB is the spacing of the discretised EIRP prior.
const eirpBinDB = 0.5

// gaussianPrior discretises N(mean, sd²) over ±4 sd.
func gaussianPrior(mean, sd float64) (levels, weights []float64) {
	if sd <= 0 {
		return []float64{mean}, []float64{1}
	}
	sum := 0.0
	for x := mean - 4*sd; x <= mean+4*sd+1e-9; x += eirpBinDB {
		z := (x - mean) / sd
		levels = append(levels, x)
		weights = append(weights, math.Exp(-z*z/2))
		sum += math.Exp(-z * z / 2)
	}
	for k := range weights {
		weights[k] /= sum
	}
	return levels, weights
}

// txDraw is a transmitter's per-session draw in the terrain world.
type txDraw struct {
	powerDBm, antennaDBi, envLossDB, hFrac float64
}

func (t txDraw) eirpDBm() float64 { return t.powerDBm + t.antennaDBi - t.envLossDB }

// drawTx draws a terrain-world transmitter: power uniform in
// [tx_power_min_dbm, tx_power_max_dbm], antenna a whip 0-2 dBi (90%) or a
// rubber duck -3-0 dBi (10%; the original simulator's 90/8% whip/duck with
// its 2% portable directional folded into the whips), environment loss
// uniform in [environment_loss_min_db, environment_loss_max_db], antenna
// height uniform in [tx_height_min_m, tx_height_max_m].
func (w *World) drawTx(rng *rand.Rand) txDraw {
	o := w.o
	t := txDraw{powerDBm: o.TxPowerMinDBm + (o.TxPowerMaxDBm-o.TxPowerMinDBm)*rng.Float64()}
	if rng.Float64() < 0.9 {
		t.antennaDBi = 2 * rng.Float64()
	} else {
		t.antennaDBi = -3 * rng.Float64()
	}
	t.envLossDB = o.EnvironmentLossMinDB + (o.EnvironmentLossMaxDB-o.EnvironmentLossMinDB)*rng.Float64()
	t.hFrac = rng.Float64()
	return t
}

// eirpPrior tabulates the EIRP distribution of drawTx by Monte Carlo
// (fixed seed: part of the world, not of the session).
func (w *World) eirpPrior() (levels, weights []float64) {
	o := w.o
	lo := o.TxPowerMinDBm - 3 - o.EnvironmentLossMaxDB
	hi := o.TxPowerMaxDBm + 2 - o.EnvironmentLossMinDB
	nb := int(math.Ceil((hi-lo)/eirpBinDB)) + 1
	weights = make([]float64, nb)
	rng := rand.New(rand.NewPCG(1, 2))
	const draws = 200000
	for range draws {
		e := w.drawTx(rng).eirpDBm()
		k := int(math.Round((e - lo) / eirpBinDB))
		weights[max(0, min(nb-1, k))] += 1.0 / draws
	}
	for k := range nb {
		levels = append(levels, lo+float64(k)*eirpBinDB)
	}
	return levels, weights
}

// fadingTable holds the mean and standard deviation of the dB power gain
// of the simulator's Rician fading averaged over one recording, by K-factor
// (Monte Carlo of the same sum-of-sinusoids channel, Doppler uniform in
// [0, doppler_max_hz]).
type fadingTable struct {
	k0, dk   float64
	mean, sd []float64
}

func newFadingTable(o Options) fadingTable {
	t := fadingTable{k0: -20, dk: 1}
	rng := rand.New(rand.NewPCG(3, 4))
	const draws, times = 400, 256
	dur := float64(o.NumSamples()) / o.SampleRateHz
	for kdb := t.k0; kdb <= 30+1e-9; kdb += t.dk {
		k := math.Pow(10, kdb/10)
		los := math.Sqrt(k / (k + 1))
		scat := math.Sqrt(1 / (k + 1) / fadingPaths)
		var s1, s2 float64
		for range draws {
			dop := o.DopplerMaxHz * rng.Float64()
			var f, ph [fadingPaths]float64
			for p := range fadingPaths {
				f[p] = dop * math.Cos(2*math.Pi*(float64(p)+rng.Float64())/fadingPaths)
				ph[p] = 2 * math.Pi * rng.Float64()
			}
			// Phasors of the scattered paths, rotated step by step.
			var path, rot [fadingPaths]complex128
			dt := dur / times
			for p := range fadingPaths {
				s, c := math.Sincos(ph[p] + math.Pi*f[p]*dt)
				path[p] = complex(scat*c, scat*s)
				s, c = math.Sincos(2 * math.Pi * f[p] * dt)
				rot[p] = complex(c, s)
			}
			m := 0.0
			for range times {
				h := complex(los, 0)
				for p := range fadingPaths {
					h += path[p]
					path[p] *= rot[p]
				}
				m += real(h)*real(h) + imag(h)*imag(h)
			}
			db := 10 * math.Log10(m/times)
			s1 += db
			s2 += db * db
		}
		mean := s1 / draws
		t.mean = append(t.mean, mean)
		t.sd = append(t.sd, math.Sqrt(max(0, s2/draws-mean*mean)))
	}
	return t
}

// stats interpolates the table at K-factor kDB.
func (t fadingTable) stats(kDB float64) (mean, sd float64) {
	f := (kDB - t.k0) / t.dk
	f = max(0, min(float64(len(t.mean)-1)-1e-9, f))
	i := int(f)
	u := f - float64(i)
	return t.mean[i]*(1-u) + t.mean[i+1]*u, t.sd[i]*(1-u) + t.sd[i+1]*u
}
