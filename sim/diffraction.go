package sim

import "math"

// SpeedOfLight in m/s.
const SpeedOfLight = 299792458.0

// FreeSpaceLossDB is the free-space path loss 20 log10(d_km) +
// 20 log10(f_MHz) + 32.44 dB (ITU-R P.525), with d floored at 10 m.
func FreeSpaceLossDB(dKm, fMHz float64) float64 {
	return 20*math.Log10(max(dKm, 0.01)) + 20*math.Log10(fMHz) + 32.44
}

// KnifeEdgeLossDB is the loss of a single knife edge of diffraction
// parameter v, ITU-R P.526 eq. (31):
//
//	J(v) = 6.9 + 20 log10(sqrt((v-0.1)² + 1) + v - 0.1)   for v > -0.78, else 0.
func KnifeEdgeLossDB(v float64) float64 {
	if v <= -0.78 {
		return 0
	}
	w := v - 0.1
	return 6.9 + 20*math.Log10(math.Sqrt(w*w+1)+w)
}

// profile is a terrain profile along a great circle: heights[i] (m above sea
// level) at distance i*stepKm from the transmitter, i = 0..n (both ends
// included); the ends' antenna heights above sea level are txM and rxM.
type profile struct {
	heights    []float64
	stepKm     float64
	txM, rxM   float64
	lambdaM    float64
	kFactor    float64 // effective earth radius factor; 0 or +Inf: flat earth
	totalKm    float64
	correction bool // apply Bullington's multiple-edge correction
}

// bullingtonLossDB returns the diffraction loss of the profile by the
// Bullington construction of ITU-R P.452-16 (the Bullington part of its
// delta-Bullington diffraction model; the same method is in ITU-R P.526): the
// terrain is raised by the earth bulge d1 d2 / (2 k R); the steepest ray
// from each end over the terrain meets at the Bullington point, a single
// equivalent knife edge whose J(v) is the uncorrected loss Luc; when the
// direct ray clears every point the largest v of the line-of-sight path
// (its first-Fresnel-zone clearance) gives Luc instead. The loss is
//
//	L = Luc + (1 - exp(-Luc/6)) (10 + 0.02 d_km)
//
// (the empirical multiple-edge correction; omitted when p.correction is
// false). It also returns Luc.
func (p *profile) bullingtonLossDB() (loss, luc float64) {
	n := len(p.heights) - 1
	d := p.totalKm
	if n < 2 || d <= 0 {
		return 0, 0
	}
	ce := 0.0 // earth curvature, 1/km
	if p.kFactor > 0 && !math.IsInf(p.kFactor, 1) {
		ce = 1 / (p.kFactor * 6371.0)
	}
	hts, hrs := p.txM, p.rxM
	// Slopes in m/km of the steepest rays from each end over the terrain,
	// heights raised by the bulge 500 Ce d1 d2 (m); one pass for both.
	stim, srim := math.Inf(-1), math.Inf(-1)
	for i := 1; i < n; i++ {
		di := float64(i) * p.stepKm
		h := p.heights[i] + 500*ce*di*(d-di)
		stim = max(stim, (h-hts)/di)
		srim = max(srim, (h-hrs)/(d-di))
	}
	str := (hrs - hts) / d
	if stim < str {
		// Line of sight: the largest v over the path (the first Fresnel
		// zone's clearance).
		vmax := math.Inf(-1)
		for i := 1; i < n; i++ {
			di := float64(i) * p.stepKm
			h := p.heights[i] + 500*ce*di*(d-di)
			clear := h - (hts*(d-di)+hrs*di)/d
			v := clear * math.Sqrt(0.002*d/(p.lambdaM*di*(d-di)))
			vmax = max(vmax, v)
		}
		luc = KnifeEdgeLossDB(vmax)
	} else {
		dbp := (hrs - hts + srim*d) / (stim + srim)
		dbp = max(1e-6, min(d-1e-6, dbp))
		vb := (hts + stim*dbp - (hts*(d-dbp)+hrs*dbp)/d) * math.Sqrt(0.002*d/(p.lambdaM*dbp*(d-dbp)))
		luc = KnifeEdgeLossDB(vb)
	}
	loss = luc
	if p.correction {
		loss += (1 - math.Exp(-luc/6)) * (10 + 0.02*d)
	}
	return loss, luc
}
