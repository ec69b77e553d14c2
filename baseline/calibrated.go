package baseline

import (
	"errors"
	"fmt"
	"math"

	"github.com/heimdall-sdr/trainer/geo"
)

// Calibration is the log-distance law fitted on training sessions: each
// receiver's gain offset and one path-loss exponent. Calibrated least
// squares (Locate) subtracts the offsets from a session's powers and runs
// the least-squares locator with the exponent fixed at the fitted value.
type Calibration struct {
	// Receivers are the receivers the powers refer to, in Sample order.
	Receivers []geo.Receiver `json:"receivers"`
	// OffsetsDB[i] is receiver i's gain offset in dB. Offsets are relative
	// (a common shift is indistinguishable from transmitter power) and are
	// fixed to mean zero over the receivers seen in training; a receiver
	// never seen gets 0.
	OffsetsDB []float64 `json:"offsets_db"`
	// Exponent is the fitted path-loss exponent n of P = P0 - 10 n log10(d).
	Exponent float64 `json:"exponent"`
	// ResidualDB is the root-mean-square residual of the fit per
	// measurement, the per-session reference removed (shadowing, fading and
	// whatever the law does not model), with the degrees of freedom the
	// references and parameters took subtracted.
	ResidualDB float64 `json:"residual_db"`
	// Sessions is how many training sessions entered the fit (those with
	// at least two receivers and a finite position).
	Sessions int `json:"sessions"`
}

// FitCalibration fits the per-receiver gain offsets g_i and the path-loss
// exponent n of
//
//	P_si = P0_s + g_i - 10 n log10(d_si) + noise
//
// on training sessions s with known positions, where P0_s, the session's
// reference power (transmitter power and antenna), is a nuisance. The fit is
// one linear least-squares problem: P0_s is eliminated exactly by centring
// each session over the receivers that heard it, which leaves the normal
// equations of (g, n), R+1 unknowns, with Σ g_i = 0 fixing the offsets'
// common shift. Distances are floored at 0.5 km, as in Locate. Sessions
// with fewer than two receivers or a non-finite position are skipped.
//
// It takes O(sessions · receivers²) time: fitting 4000 sessions costs
// about as much as eight least-squares Locate calls (BenchmarkFitCalibration).
func FitCalibration(train []Sample, receivers []geo.Receiver) (Calibration, error) {
	R := len(receivers)
	if R < 2 {
		return Calibration{}, fmt.Errorf("baseline: fit calibration: %d receivers, need at least 2", R)
	}
	// Receivers seen in a usable session get a column; the exponent is the
	// last column.
	seen := make([]bool, R)
	usable := func(s Sample) bool {
		if math.IsNaN(s.Lat) || math.IsNaN(s.Lon) || math.IsInf(s.Lat, 0) || math.IsInf(s.Lon, 0) {
			return false
		}
		m := 0
		for i := range R {
			if heard(s.PowersDB, i) {
				m++
			}
		}
		return m >= 2
	}
	for _, s := range train {
		if !usable(s) {
			continue
		}
		for i := range R {
			if heard(s.PowersDB, i) {
				seen[i] = true
			}
		}
	}
	col := make([]int, R)
	nc := 0
	for i := range R {
		col[i] = -1
		if seen[i] {
			col[i] = nc
			nc++
		}
	}
	ne := nc // column of the exponent
	K := nc + 1
	ata := make([]float64, K*K)
	atb := make([]float64, K)
	row := make([]float64, K)
	var idx []int
	var x, p []float64
	sessions, meas := 0, 0
	var bb float64 // Σ b², for the residual
	for _, s := range train {
		if !usable(s) {
			continue
		}
		idx, x, p = idx[:0], x[:0], p[:0]
		for i := range R {
			if !heard(s.PowersDB, i) {
				continue
			}
			d := max(geo.HaversineKm(s.Lat, s.Lon, receivers[i].Lat, receivers[i].Lon), minDistanceKm)
			idx = append(idx, i)
			x = append(x, -10*math.Log10(d))
			p = append(p, s.PowersDB[i])
		}
		m := float64(len(idx))
		var xm, pm float64
		for k := range idx {
			xm += x[k]
			pm += p[k]
		}
		xm /= m
		pm /= m
		// Row k: (P_k - P̄) = Σ_j (δ_jk - 1/m) g_j + n (x_k - x̄).
		for k := range idx {
			clear(row)
			for _, j := range idx {
				row[col[j]] = -1 / m
			}
			row[col[idx[k]]] += 1
			row[ne] = x[k] - xm
			b := p[k] - pm
			for a := range K {
				if row[a] == 0 {
					continue
				}
				atb[a] += row[a] * b
				for c := range K {
					ata[a*K+c] += row[a] * row[c]
				}
			}
			bb += b * b
		}
		sessions++
		meas += len(idx)
	}
	if sessions == 0 {
		return Calibration{}, fmt.Errorf("baseline: fit calibration: none of %d sessions has a position and two receivers", len(train))
	}
	// Σ g = 0: the data do not see a common shift of the offsets, so any
	// positive weight on (Σ g)² gives the same solution; the session count
	// keeps it on the scale of the data terms.
	sys := append([]float64(nil), ata...)
	for a := range nc {
		for c := range nc {
			sys[a*K+c] += float64(sessions)
		}
	}
	theta := append([]float64(nil), atb...)
	if err := solve(sys, theta, K); err != nil {
		return Calibration{}, fmt.Errorf("baseline: fit calibration on %d sessions: %w", sessions, err)
	}
	// Residual sum of squares b'b - 2 θ'A'b + θ'A'Aθ.
	rss := bb
	for a := range K {
		rss -= 2 * theta[a] * atb[a]
		for c := range K {
			rss += theta[a] * ata[a*K+c] * theta[c]
		}
	}
	dof := meas - sessions - nc // nc-1 offsets + 1 exponent
	cal := Calibration{
		Receivers: append([]geo.Receiver(nil), receivers...),
		OffsetsDB: make([]float64, R),
		Exponent:  theta[ne],
		Sessions:  sessions,
	}
	if dof > 0 {
		cal.ResidualDB = math.Sqrt(max(rss, 0) / float64(dof))
	}
	for i := range R {
		if col[i] >= 0 {
			cal.OffsetsDB[i] = theta[col[i]]
		}
	}
	return cal, nil
}

// Locate is calibrated least squares: the powers with each receiver's
// offset removed, located by Locate's least-squares search with the
// exponent fixed at c.Exponent (clamped to [MinExponent, MaxExponent]).
// Fewer than three receivers give the (calibrated) centroid, as in Locate.
func (c Calibration) Locate(powersDB []float64) (lat, lon float64) {
	p := make([]float64, len(c.Receivers))
	for i := range p {
		p[i] = math.NaN()
		if heard(powersDB, i) {
			p[i] = powersDB[i] - c.OffsetsDB[i]
		}
	}
	_, l := locate(p, c.Receivers, nil, exponentPrior{c.Exponent, math.Inf(1)})
	return l[0], l[1]
}

// errSingular is returned by solve for a (numerically) singular system.
var errSingular = errors.New("singular normal equations (receivers never heard together, or no spread of distances)")

// solve solves the n×n system a·x = b in place (b becomes x) by Gaussian
// elimination with partial pivoting.
func solve(a, b []float64, n int) error {
	scale := 0.0
	for _, v := range a {
		scale = max(scale, math.Abs(v))
	}
	for c := range n {
		piv := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r*n+c]) > math.Abs(a[piv*n+c]) {
				piv = r
			}
		}
		if math.Abs(a[piv*n+c]) <= 1e-12*scale {
			return errSingular
		}
		if piv != c {
			for k := range n {
				a[c*n+k], a[piv*n+k] = a[piv*n+k], a[c*n+k]
			}
			b[c], b[piv] = b[piv], b[c]
		}
		for r := c + 1; r < n; r++ {
			f := a[r*n+c] / a[c*n+c]
			if f == 0 {
				continue
			}
			for k := c; k < n; k++ {
				a[r*n+k] -= f * a[c*n+k]
			}
			b[r] -= f * b[c]
		}
	}
	for c := n - 1; c >= 0; c-- {
		s := b[c]
		for k := c + 1; k < n; k++ {
			s -= a[c*n+k] * b[k]
		}
		b[c] = s / a[c*n+c]
	}
	return nil
}
