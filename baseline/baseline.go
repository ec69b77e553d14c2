// Package baseline is the classical localisation baseline the neural network
// must beat, pure localisation maths: given every receiver's received power
// (estimated from its IQ by dataset.PowerDB when sessions are loaded) it
// locates the transmitter from those powers alone, in two ways:
//
//   - a power-weighted centroid of the receiver positions, and
//   - a log-distance least-squares fit, P_i = P0 - 10 n log10(d_i), over the
//     transmitter position with P0 solved in closed form and n fitted
//     (shrunk towards a prior and bounded), found by a grid search over a
//     box around the receivers and refined with Nelder-Mead.
//
// Two more baselines learn from a training split of sessions with known
// positions (Sample): calibrated least squares (FitCalibration: per-receiver
// gain offsets and the exponent fitted, then the same search with them
// applied) and fingerprinting (FitFingerprint: k nearest neighbours on the
// power vectors with the common offset removed, k by cross-validation).
//
// Errors are great-circle distances (geo.HaversineKm) summarised by
// Summarize, which the trainer uses for its own metrics as well.
package baseline

import (
	"math"
	"slices"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/stats"
)

// Errors summarises localisation errors in kilometres.
type Errors struct {
	MeanKm   float64 `json:"mean_km"`
	MedianKm float64 `json:"median_km"`
	P90Km    float64 `json:"p90_km"`
	N        int     `json:"n"`
}

// Summarize returns the mean, median and 90th percentile of errKm (linear
// interpolation between order statistics, as numpy.percentile's default) and
// their count. NaN entries are skipped and not counted; an empty input gives
// the zero Errors.
func Summarize(errKm []float64) Errors {
	v := make([]float64, 0, len(errKm))
	sum := 0.0
	for _, e := range errKm {
		if math.IsNaN(e) {
			continue
		}
		v = append(v, e)
		sum += e
	}
	if len(v) == 0 {
		return Errors{}
	}
	slices.Sort(v)
	return Errors{
		MeanKm:   sum / float64(len(v)),
		MedianKm: stats.Percentile(v, 50),
		P90Km:    stats.Percentile(v, 90),
		N:        len(v),
	}
}

// Tuning of Locate, chosen on 1344 approved simulated sessions (default
// simulator options, seed 1, sessions 500-1999).
const (
	// CentroidTemperatureDB is the temperature of the centroid weights
	// w_i = exp((P_i - Pmax)/T), a softmax over dB. T = 10/ln 10 ≈ 4.34 dB
	// is exactly linear-power weighting, w_i ∝ 10^(P_i/10); on simulated
	// sessions it beat both sharper (2-3 dB) and softer (8-15 dB) weights.
	CentroidTemperatureDB = 10 / math.Ln10
	// PriorExponent is the path-loss exponent the fit is shrunk towards.
	PriorExponent = 3.0
	// PriorWeight is the weight of (n - PriorExponent)² in the least-squares
	// cost, in dB² per unit of exponent²; 0 fits n freely. On simulated
	// sessions a free n (median error 29 km) did clearly worse than a shrunk
	// one (20: 22.4 km; a fixed n: 22.0 km): with seven receivers, two of
	// them almost co-located, n and the range trade off too easily.
	PriorWeight = 20.0
	// MinExponent and MaxExponent bound the fitted path-loss exponent.
	MinExponent, MaxExponent = 1.5, 6.0
	// SearchMarginDeg widens the receivers' bounding box into the search box.
	SearchMarginDeg = 0.5
	// minDistanceKm floors distances so log10(d) stays finite.
	minDistanceKm = 0.5
	// gridSteps is the number of grid points per axis of the search.
	gridSteps = 41
	// starts is how many of the best grid points Nelder-Mead refines.
	starts = 3
)

// Locate estimates the transmitter position (latitude, longitude in degrees)
// from the received powers powersDB[i] of receivers[i] where present[i] is
// true (a nil present means all; NaN or infinite powers count as absent).
// The dB reference is arbitrary (dBFS, dBm): only differences matter.
//
// centroid is the softmax-over-dB weighted mean of the receiver positions
// (temperature CentroidTemperatureDB). lsq minimises over the position
//
//	Σ_i (P_i - P0 - n x_i)² + PriorWeight (n - PriorExponent)²,  x_i = -10 log10(d_i)
//
// with P0 and n solved in closed form for each position (n clamped to
// [MinExponent, MaxExponent]); the search covers the receivers' bounding box
// widened by SearchMarginDeg on a 41×41 grid, and the three best grid
// points are refined by Nelder-Mead. With fewer than three receivers present
// lsq falls back to the centroid; with none both are the receivers' mean
// position. Locate is deterministic and takes about a millisecond.
func Locate(powersDB []float64, receivers []geo.Receiver, present []bool) (centroid, lsq [2]float64) {
	return locate(powersDB, receivers, present, exponentPrior{PriorExponent, PriorWeight})
}

// exponentPrior is what the least-squares cost shrinks the path-loss
// exponent towards: the term weight·(n - n0)². An infinite weight fixes n
// at n0 (calibrated least squares, whose n was fitted on the training split).
type exponentPrior struct {
	n0, weight float64
}

// locate is Locate with the exponent prior as a parameter.
func locate(powersDB []float64, receivers []geo.Receiver, present []bool, prior exponentPrior) (centroid, lsq [2]float64) {
	var idx []int
	for i := range receivers {
		if i >= len(powersDB) || (present != nil && (i >= len(present) || !present[i])) {
			continue
		}
		if p := powersDB[i]; math.IsNaN(p) || math.IsInf(p, 0) {
			continue
		}
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		if len(receivers) == 0 {
			return [2]float64{}, [2]float64{}
		}
		lat, lon := geo.Centroid(receivers)
		return [2]float64{lat, lon}, [2]float64{lat, lon}
	}

	pmax := math.Inf(-1)
	for _, i := range idx {
		pmax = max(pmax, powersDB[i])
	}
	var wsum, lat, lon float64
	for _, i := range idx {
		w := math.Exp((powersDB[i] - pmax) / CentroidTemperatureDB)
		wsum += w
		lat += w * receivers[i].Lat
		lon += w * receivers[i].Lon
	}
	centroid = [2]float64{lat / wsum, lon / wsum}
	if len(idx) < 3 {
		return centroid, centroid
	}

	f := newFit(powersDB, receivers, idx)
	f.prior = prior
	// Search box: all receivers' bounding box plus the margin.
	latMin, latMax := math.Inf(1), math.Inf(-1)
	lonMin, lonMax := math.Inf(1), math.Inf(-1)
	for _, r := range receivers {
		latMin, latMax = min(latMin, r.Lat), max(latMax, r.Lat)
		lonMin, lonMax = min(lonMin, r.Lon), max(lonMax, r.Lon)
	}
	latMin, latMax = latMin-SearchMarginDeg, latMax+SearchMarginDeg
	lonMin, lonMax = lonMin-SearchMarginDeg, lonMax+SearchMarginDeg
	f.box = [4]float64{latMin, latMax, lonMin, lonMax}

	type cand struct {
		lat, lon, cost float64
	}
	grid := make([]cand, 0, gridSteps*gridSteps)
	for a := range gridSteps {
		la := latMin + (latMax-latMin)*float64(a)/(gridSteps-1)
		for b := range gridSteps {
			lo := lonMin + (lonMax-lonMin)*float64(b)/(gridSteps-1)
			grid = append(grid, cand{la, lo, f.cost(la, lo)})
		}
	}
	// Keep the best grid points that are local minima of the grid (distinct
	// basins), falling back to the best points overall.
	isLocalMin := func(a, b int) bool {
		c := grid[a*gridSteps+b].cost
		for da := -1; da <= 1; da++ {
			for db := -1; db <= 1; db++ {
				x, y := a+da, b+db
				if (da == 0 && db == 0) || x < 0 || y < 0 || x >= gridSteps || y >= gridSteps {
					continue
				}
				if grid[x*gridSteps+y].cost < c {
					return false
				}
			}
		}
		return true
	}
	var seeds []cand
	for a := range gridSteps {
		for b := range gridSteps {
			if isLocalMin(a, b) {
				seeds = append(seeds, grid[a*gridSteps+b])
			}
		}
	}
	slices.SortStableFunc(seeds, func(x, y cand) int { return cmpFloat(x.cost, y.cost) })
	seeds = seeds[:min(starts, len(seeds))]

	kmLat, kmLon := geo.KmPerDegree((latMin + latMax) / 2)
	stepLat := (latMax - latMin) / (gridSteps - 1)
	stepLon := (lonMax - lonMin) / (gridSteps - 1)
	best := cand{cost: math.Inf(1)}
	for _, s := range seeds {
		la, lo, c := nelderMead(f.cost, s.lat, s.lon, stepLat/2, stepLon/2, 0.01/kmLat, 0.01/kmLon)
		if c < best.cost {
			best = cand{la, lo, c}
		}
	}
	if math.IsInf(best.cost, 1) {
		return centroid, centroid
	}
	return centroid, [2]float64{max(latMin, min(latMax, best.lat)), max(lonMin, min(lonMax, best.lon))}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fit evaluates the log-distance least-squares cost at a position.
type fit struct {
	p        []float64 // powers of the present receivers, dB
	lat, lon []float64 // receiver positions, radians
	cosLat   []float64
	x        []float64 // scratch: -10 log10(d)
	box      [4]float64
	prior    exponentPrior
}

const rad = math.Pi / 180

func newFit(powersDB []float64, receivers []geo.Receiver, idx []int) *fit {
	f := &fit{x: make([]float64, len(idx))}
	for _, i := range idx {
		f.p = append(f.p, powersDB[i])
		f.lat = append(f.lat, receivers[i].Lat*rad)
		f.lon = append(f.lon, receivers[i].Lon*rad)
		f.cosLat = append(f.cosLat, math.Cos(receivers[i].Lat*rad))
	}
	return f
}

// cost is the minimum over (P0, n) of the regularised squared residuals at
// (lat, lon); outside the search box it grows with the distance to the box
// so the refinement stays inside.
func (f *fit) cost(lat, lon float64) float64 {
	penalty := 0.0
	cl := max(f.box[0], min(f.box[1], lat))
	co := max(f.box[2], min(f.box[3], lon))
	if cl != lat || co != lon {
		penalty = 1e3 * (math.Abs(cl-lat) + math.Abs(co-lon))
		lat, lon = cl, co
	}
	m := float64(len(f.p))
	var xm, pm float64
	la, lo := lat*rad, lon*rad
	cosLa := math.Cos(la)
	for i := range f.p {
		// Haversine as geo.HaversineKm, with the receiver's trigonometry
		// precomputed.
		sLat := math.Sin((f.lat[i] - la) / 2)
		sLon := math.Sin((f.lon[i] - lo) / 2)
		a := sLat*sLat + cosLa*f.cosLat[i]*sLon*sLon
		d := max(2*geo.EarthRadiusKm*math.Asin(math.Min(1, math.Sqrt(a))), minDistanceKm)
		f.x[i] = -10 * math.Log10(d)
		xm += f.x[i]
		pm += f.p[i]
	}
	xm /= m
	pm /= m
	var sxx, sxp float64
	for i := range f.p {
		dx := f.x[i] - xm
		sxx += dx * dx
		sxp += dx * (f.p[i] - pm)
	}
	var n, c float64
	if w, n0 := f.prior.weight, f.prior.n0; math.IsInf(w, 1) {
		n = max(MinExponent, min(MaxExponent, n0))
	} else {
		n = (sxp + w*n0) / (sxx + w)
		n = max(MinExponent, min(MaxExponent, n))
		c = w * (n - n0) * (n - n0)
	}
	for i := range f.p {
		r := (f.p[i] - pm) - n*(f.x[i]-xm)
		c += r * r
	}
	return c + penalty
}

// nelderMead minimises f over (lat, lon) from start with initial steps
// (sLat, sLon) until the simplex is smaller than (tolLat, tolLon) or 300
// iterations pass. It returns the best point and its value.
func nelderMead(f func(lat, lon float64) float64, lat, lon, sLat, sLon, tolLat, tolLon float64) (float64, float64, float64) {
	type pt struct{ x, y, v float64 }
	s := [3]pt{
		{lat, lon, f(lat, lon)},
		{lat + sLat, lon, f(lat+sLat, lon)},
		{lat, lon + sLon, f(lat, lon+sLon)},
	}
	order := func() {
		// Sort three points by value (stable for determinism).
		if s[1].v < s[0].v {
			s[0], s[1] = s[1], s[0]
		}
		if s[2].v < s[1].v {
			s[1], s[2] = s[2], s[1]
		}
		if s[1].v < s[0].v {
			s[0], s[1] = s[1], s[0]
		}
	}
	for range 300 {
		order()
		if math.Abs(s[2].x-s[0].x) < tolLat && math.Abs(s[1].x-s[0].x) < tolLat &&
			math.Abs(s[2].y-s[0].y) < tolLon && math.Abs(s[1].y-s[0].y) < tolLon {
			break
		}
		cx, cy := (s[0].x+s[1].x)/2, (s[0].y+s[1].y)/2
		rx, ry := cx+(cx-s[2].x), cy+(cy-s[2].y)
		rv := f(rx, ry)
		switch {
		case rv < s[0].v:
			ex, ey := cx+2*(cx-s[2].x), cy+2*(cy-s[2].y)
			if ev := f(ex, ey); ev < rv {
				s[2] = pt{ex, ey, ev}
			} else {
				s[2] = pt{rx, ry, rv}
			}
		case rv < s[1].v:
			s[2] = pt{rx, ry, rv}
		default:
			var kx, ky float64
			if rv < s[2].v { // outside contraction
				kx, ky = cx+0.5*(rx-cx), cy+0.5*(ry-cy)
			} else { // inside contraction
				kx, ky = cx+0.5*(s[2].x-cx), cy+0.5*(s[2].y-cy)
			}
			if kv := f(kx, ky); kv < min(rv, s[2].v) {
				s[2] = pt{kx, ky, kv}
				continue
			}
			// Shrink towards the best point.
			for i := 1; i < 3; i++ {
				s[i].x = s[0].x + 0.5*(s[i].x-s[0].x)
				s[i].y = s[0].y + 0.5*(s[i].y-s[0].y)
				s[i].v = f(s[i].x, s[i].y)
			}
		}
	}
	order()
	return s[0].x, s[0].y, s[0].v
}
