package sim

import (
	"math"

	"github.com/heimdall-sdr/trainer/geo"
)

// This file holds the synthetic digital elevation model (DEM) of the
// terrain world. No real elevation data can be fetched here, so the terrain
// is synthetic with the region's character, built from a few hand-placed
// macro features (their coordinates read off a map of NW Italy) and seeded
// fractal detail:
//
//   - the Western Alps and the Alpine arc north of the Po plain, rising from
//     their foot (Cuneo, Pinerolo, Giaveno, Lanzo, Ivrea, Biella, Varese) to
//     about 3000 m within 30-40 km;
//   - the Ligurian Alps and Apennines, a ridge 10-20 km inland of the coast
//     of about 600-1700 m (low near Passo del Giovi, high at Monte Antola and
//     east of it), with a wide northern slope (Oltrepò) and a steep fall to
//     the sea;
//   - the Ligurian sea south of the coast from Albenga through Savona and
//     Genova to Sestri Levante (elevation 0);
//   - the Po plain, falling from about 250 m at Torino to about 100 m east of
//     Milano, with the Torino hills, Monferrato, Roero and Langhe on it.
//
// The macro features are fixed (they are the region); world_seed moves the
// detail: valleys, ridges and peaks at 1-32 km wavelengths.

// gnomonic is the gnomonic projection about (lat0, lon0): great circles are
// straight lines in its plane, so a terrain profile along the great circle
// between two points is a straight line through the DEM grid. x is east, y
// north, in km; the scale error is below 0.1% within 250 km of the centre.
type gnomonic struct {
	lat0, lon0     float64 // radians
	sinLat0, cosL0 float64
}

func newGnomonic(latDeg, lonDeg float64) gnomonic {
	la, lo := latDeg*rad, lonDeg*rad
	return gnomonic{lat0: la, lon0: lo, sinLat0: math.Sin(la), cosL0: math.Cos(la)}
}

const rad = math.Pi / 180

// forward maps degrees to km in the plane.
func (g gnomonic) forward(latDeg, lonDeg float64) (x, y float64) {
	la, dl := latDeg*rad, lonDeg*rad-g.lon0
	sinLa, cosLa := math.Sincos(la)
	sinDl, cosDl := math.Sincos(dl)
	cosC := g.sinLat0*sinLa + g.cosL0*cosLa*cosDl
	x = geo.EarthRadiusKm * cosLa * sinDl / cosC
	y = geo.EarthRadiusKm * (g.cosL0*sinLa - g.sinLat0*cosLa*cosDl) / cosC
	return x, y
}

// inverse maps km in the plane to degrees.
func (g gnomonic) inverse(x, y float64) (latDeg, lonDeg float64) {
	rho := math.Hypot(x, y)
	if rho == 0 {
		return g.lat0 / rad, g.lon0 / rad
	}
	c := math.Atan(rho / geo.EarthRadiusKm)
	sinC, cosC := math.Sincos(c)
	la := math.Asin(cosC*g.sinLat0 + y*sinC*g.cosL0/rho)
	lo := g.lon0 + math.Atan2(x*sinC, rho*g.cosL0*cosC-y*g.sinLat0*sinC)
	return la / rad, lo / rad
}

// grid is a regular raster in the projection plane: value (i, j) sits at
// x = x0 + j*step, y = y0 + i*step (km).
type grid struct {
	x0, y0, step float64
	nx, ny       int
	v            []float32
}

func newGrid(x0, y0, step float64, nx, ny int) *grid {
	return &grid{x0: x0, y0: y0, step: step, nx: nx, ny: ny, v: make([]float32, nx*ny)}
}

// at interpolates bilinearly at (x, y), clamping to the grid's edge.
func (g *grid) at(x, y float64) float64 {
	fx := (x - g.x0) / g.step
	fy := (y - g.y0) / g.step
	fx = max(0, min(float64(g.nx-1)-1e-9, fx))
	fy = max(0, min(float64(g.ny-1)-1e-9, fy))
	j, i := int(fx), int(fy)
	tx, ty := fx-float64(j), fy-float64(i)
	k := i*g.nx + j
	a, b := float64(g.v[k]), float64(g.v[k+1])
	c, d := float64(g.v[k+g.nx]), float64(g.v[k+g.nx+1])
	return (a*(1-tx)+b*tx)*(1-ty) + (c*(1-tx)+d*tx)*ty
}

// line appends the n+1 bilinear samples from (xa, ya) to (xb, yb), both
// ends included, to dst: at() along a straight line, stepping in grid units.
func (g *grid) line(dst []float64, xa, ya, xb, yb float64, n int) []float64 {
	fx, fy := (xa-g.x0)/g.step, (ya-g.y0)/g.step
	dx, dy := (xb-xa)/g.step/float64(n), (yb-ya)/g.step/float64(n)
	hx, hy := float64(g.nx-1)-1e-9, float64(g.ny-1)-1e-9
	for k := 0; k <= n; k++ {
		cx := max(0, min(hx, fx+float64(k)*dx))
		cy := max(0, min(hy, fy+float64(k)*dy))
		j, i := int(cx), int(cy)
		tx, ty := cx-float64(j), cy-float64(i)
		q := i*g.nx + j
		a, b := float64(g.v[q]), float64(g.v[q+1])
		c, d := float64(g.v[q+g.nx]), float64(g.v[q+g.nx+1])
		dst = append(dst, (a+(b-a)*tx)*(1-ty)+(c+(d-c)*tx)*ty)
	}
	return dst
}

// latLon is a map point, degrees.
type latLon struct{ lat, lon float64 }

// Macro features, (lat, lon) read off a map of the region.
var (
	// alpineFront runs along the foot of the Alps with the mountains on its
	// left: from the Ligurian Alps near Finale north-west past Mondovì and
	// Cuneo, north past Saluzzo, Pinerolo, Giaveno and Lanzo, then east past
	// Cuorgnè, Ivrea, Biella, Borgosesia, Lago Maggiore, Varese, Como and
	// Lecco.
	alpineFront = []latLon{
		{43.90, 8.70}, {44.05, 8.45}, {44.22, 8.12}, {44.32, 7.85}, {44.36, 7.55},
		{44.48, 7.40}, {44.66, 7.40}, {44.88, 7.32}, {45.04, 7.34}, {45.13, 7.42},
		{45.28, 7.52}, {45.40, 7.62}, {45.50, 7.85}, {45.60, 8.05}, {45.70, 8.35},
		{45.78, 8.60}, {45.83, 8.85}, {45.85, 9.10}, {45.83, 9.40}, {45.82, 10.5},
	}
	// apennineRidge is the main ridge of the Ligurian Alps and Apennines,
	// west to east (north on its left), with its height in m: Monte
	// Marguareis area ~2000, Colle di Cadibona low, Monte Beigua ~1200,
	// Passo dei Giovi ~500, Monte Antola ~1600, Monte Maggiorasca ~1800
	// (the seeded detail scales these by 0.15-1.35).
	apennineRidge = []latLon{
		{43.95, 7.20}, {44.08, 7.70}, {44.15, 8.05}, {44.30, 8.30}, {44.42, 8.55},
		{44.50, 8.78}, {44.56, 8.95}, {44.60, 9.15}, {44.63, 9.45}, {44.62, 10.5},
	}
	apennineHeightM = []float64{2000, 1900, 1300, 900, 1100, 900, 600, 1300, 1400, 1300}
	// apennineNorthKm is the e-folding width of the ridge's northern slope
	// at each ridge point: the Oltrepò hills make it wider in the east.
	apennineNorthKm = []float64{20, 20, 20, 18, 20, 24, 28, 34, 38, 38}
	// coast runs west to east along the Ligurian coast, the sea on its
	// right: Imperia, Albenga, Finale, Savona, Varazze, Arenzano, Voltri,
	// Genova, Nervi, Camogli, Chiavari, Sestri Levante, Levanto.
	coast = []latLon{
		{43.80, 7.60}, {43.88, 8.03}, {44.05, 8.22}, {44.17, 8.34}, {44.31, 8.48},
		{44.36, 8.58}, {44.40, 8.68}, {44.42, 8.75}, {44.39, 8.93}, {44.37, 9.04},
		{44.34, 9.15}, {44.31, 9.33}, {44.26, 9.40}, {44.17, 9.61}, {44.00, 10.2},
	}
	// hills are the hill country on the plain: centre, east-west and
	// north-south radii (km), height (m).
	hills = []struct {
		at     latLon
		rx, ry float64
		h      float64
	}{
		{latLon{45.07, 7.84}, 6, 5, 420},   // Collina di Torino (Superga 670 m)
		{latLon{45.05, 8.25}, 22, 10, 330}, // Monferrato
		{latLon{44.80, 7.95}, 10, 8, 230},  // Roero
		{latLon{44.58, 8.05}, 18, 20, 600}, // Langhe
		{latLon{44.88, 9.20}, 14, 10, 250}, // Oltrepò Pavese foothills
		{latLon{45.72, 9.05}, 16, 6, 250},  // Brianza / Varesotto moraines
		{latLon{45.45, 7.95}, 8, 6, 300},   // Serra d'Ivrea moraine
		{latLon{44.40, 7.95}, 12, 8, 500},  // Monregalese, toward the Ligurian Alps
		{latLon{44.75, 8.70}, 14, 10, 180}, // Alessandrino / Tortonese hills
		{latLon{45.30, 8.15}, 20, 8, 40},   // Vercelli rice plain: a faint rise
		{latLon{44.95, 8.85}, 18, 6, -40},  // the Po and Tanaro valley: a faint low
		{latLon{45.10, 9.40}, 40, 10, -50}, // lower Po valley toward Piacenza
		{latLon{44.60, 7.60}, 12, 14, 60},  // Cuneo terrace
		{latLon{45.18, 7.70}, 12, 10, 30},  // Stura di Lanzo fan
		{latLon{45.60, 8.75}, 14, 10, 60},  // Ticino terraces
		{latLon{44.48, 9.40}, 14, 10, 200}, // Val Trebbia / Val d'Aveto shoulder
		{latLon{44.92, 8.40}, 10, 8, 120},  // Monferrato's southern spur
		{latLon{45.55, 8.45}, 12, 8, 70},   // Novarese
		{latLon{45.00, 7.50}, 10, 10, 40},  // the Sangone / Chisola fan
		{latLon{44.70, 7.85}, 10, 10, -20}, // the Tanaro at Bra
		{latLon{45.35, 9.20}, 20, 14, -30}, // south of Milano
		{latLon{44.55, 8.40}, 12, 10, 250}, // Alta Langa toward Acqui
		{latLon{44.65, 9.05}, 10, 8, 150},  // Val Borbera / Scrivia shoulder
		{latLon{45.77, 8.95}, 10, 6, 300},  // Varese hills
		{latLon{44.15, 7.95}, 14, 10, 400}, // Alta Val Tanaro
		{latLon{45.22, 7.95}, 8, 6, -15},   // the Dora Baltea at Verolengo
		{latLon{45.10, 8.65}, 12, 8, 20},   // Lomellina
		{latLon{44.45, 9.70}, 20, 12, 300}, // Val di Vara toward La Spezia
	}
)

// kmXY maps degrees to an equirectangular km frame about (45, 8.2), used to
// lay out the macro features (not for propagation).
func kmXY(p latLon) (float64, float64) {
	return (p.lon - 8.2) * 78.7, (p.lat - 45) * 111.2
}

// polyline is a macro feature in the km frame.
type polyline struct{ x, y []float64 }

func newPolyline(ps []latLon) polyline {
	var pl polyline
	for _, p := range ps {
		x, y := kmXY(p)
		pl.x = append(pl.x, x)
		pl.y = append(pl.y, y)
	}
	return pl
}

// signedDistance returns the distance (km) from (x, y) to the polyline,
// positive on its left, and the index and fraction along the nearest segment.
func (pl polyline) signedDistance(x, y float64) (d float64, seg int, t float64) {
	best := math.Inf(1)
	sign := 1.0
	for k := 0; k+1 < len(pl.x); k++ {
		ax, ay := pl.x[k], pl.y[k]
		dx, dy := pl.x[k+1]-ax, pl.y[k+1]-ay
		u := ((x-ax)*dx + (y-ay)*dy) / (dx*dx + dy*dy)
		u = max(0, min(1, u))
		px, py := ax+u*dx-x, ay+u*dy-y
		if dd := px*px + py*py; dd < best {
			best, seg, t = dd, k, u
			if dx*(y-ay)-dy*(x-ax) >= 0 {
				sign = 1
			} else {
				sign = -1
			}
		}
	}
	return sign * math.Sqrt(best), seg, t
}

// terrainModel evaluates the elevation of the synthetic region.
type terrainModel struct {
	seed                   uint64
	alps, apennines, coast polyline
}

func newTerrainModel(worldSeed int64) *terrainModel {
	return &terrainModel{
		seed:      splitmix64(uint64(worldSeed) ^ 0x7e11a1d5eed),
		alps:      newPolyline(alpineFront),
		apennines: newPolyline(apennineRidge),
		coast:     newPolyline(coast),
	}
}

// elevation returns the ground height (m above sea level) at (lat, lon);
// (px, py) is the point in the projection plane (km), where the seeded
// detail lives.
func (m *terrainModel) elevation(lat, lon, px, py float64) float64 {
	x, y := kmXY(latLon{lat, lon})
	// The Po plain: 250 m at Torino falling east, 80-300 m.
	plain := max(80, min(300, 250-85*(lon-7.7)))
	plain += 15 * fbm(m.seed+1, px, py, 8, 3)

	// The Alps: rising from the front to ~2900 m.
	relief := 0.0
	if s, _, _ := m.alps.signedDistance(x, y); s > 0 {
		relief = 2900 * math.Pow(1-math.Exp(-s/10), 1.5)
	}
	// The Apennine ridge: Gaussian cross-section, wide to the north.
	s, seg, t := m.apennines.signedDistance(x, y)
	hr := apennineHeightM[seg]*(1-t) + apennineHeightM[seg+1]*t
	w := 9.0
	if s > 0 {
		w = apennineNorthKm[seg]*(1-t) + apennineNorthKm[seg+1]*t
	}
	relief = max(relief, hr*math.Exp(-(s/w)*(s/w)))
	for _, h := range hills {
		hx, hy := kmXY(h.at)
		r2 := ((x-hx)/h.rx)*((x-hx)/h.rx) + ((y-hy)/h.ry)*((y-hy)/h.ry)
		if r2 < 9 {
			relief += h.h * math.Exp(-r2)
		}
	}
	relief = max(relief, -plain+1)
	// Seeded detail: ridged noise carves valleys and ridges in proportion
	// to the relief (mountains keep 15-135% of their macro height).
	z := plain
	if relief > 0 {
		z += relief * (0.75 + 0.6*ridged(m.seed+2, px, py))
	} else {
		z += relief
	}
	// The sea south of the coast; land tapers to the shore over 4 km.
	if c, _, _ := m.coast.signedDistance(x, y); c < 0 {
		return 0
	} else if c < 4 {
		z *= smoothstep(c / 4)
	}
	return max(z, 0)
}

func smoothstep(t float64) float64 {
	t = max(0, min(1, t))
	return t * t * (3 - 2*t)
}

// valueNoise is smooth lattice noise in [-1, 1] at (x, y) (lattice units).
func valueNoise(seed uint64, x, y float64) float64 {
	fx, fy := math.Floor(x), math.Floor(y)
	ix, iy := int64(fx), int64(fy)
	tx, ty := x-fx, y-fy
	// Quintic fade: continuous slope and curvature.
	tx = tx * tx * tx * (tx*(tx*6-15) + 10)
	ty = ty * ty * ty * (ty*(ty*6-15) + 10)
	a := latticeValue(seed, ix, iy)
	b := latticeValue(seed, ix+1, iy)
	c := latticeValue(seed, ix, iy+1)
	d := latticeValue(seed, ix+1, iy+1)
	return (a*(1-tx)+b*tx)*(1-ty) + (c*(1-tx)+d*tx)*ty
}

func latticeValue(seed uint64, ix, iy int64) float64 {
	h := splitmix64(seed ^ splitmix64(uint64(ix)*0x9e3779b97f4a7c15^uint64(iy)*0xc2b2ae3d27d4eb4f))
	return float64(h>>11)/float64(1<<52) - 1
}

// fbm sums octaves of value noise from wavelength maxKm down by halves,
// amplitude halving, normalised to about [-1, 1].
func fbm(seed uint64, x, y, maxKm float64, octaves int) float64 {
	sum, norm, amp, wl := 0.0, 0.0, 1.0, maxKm
	for o := range octaves {
		sum += amp * valueNoise(seed+uint64(o)*0x51ed27, x/wl+float64(o)*17.3, y/wl-float64(o)*9.1)
		norm += amp
		amp /= 2
		wl /= 2
	}
	return sum / norm
}

// ridged is mountain detail in [-1, 1]: ridged octaves (1 - 2|n|, sharp
// crests and wide valleys) from 32 km down to 1 km.
func ridged(seed uint64, x, y float64) float64 {
	sum, norm, amp, wl := 0.0, 0.0, 1.0, 32.0
	for o := range 6 {
		n := valueNoise(seed+uint64(o)*0x2545f491, x/wl+float64(o)*5.7, y/wl+float64(o)*11.9)
		sum += amp * (1 - 2*math.Abs(n))
		norm += amp
		amp *= 0.55
		wl /= 2
	}
	return max(-1, min(1, sum/norm))
}
