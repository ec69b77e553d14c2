package sim

import (
	"math"
	"testing"

	"github.com/heimdall-sdr/trainer/geo"
)

func TestKnifeEdgeLossDB(t *testing.T) {
	// ITU-R P.526 J(v); reference values of its Figure (knife-edge loss).
	for _, tc := range []struct{ v, want, tol float64 }{
		{-1, 0, 0},
		{-0.78, 0, 0},
		{-0.5, 1.96, 0.02},
		{0, 6.03, 0.02}, // 6 dB at grazing incidence
		{0.5, 10.29, 0.02},
		{1, 13.93, 0.02},
		{2.4, 20.54, 0.02},
		{5, 26.81, 0.02},
	} {
		if got := KnifeEdgeLossDB(tc.v); math.Abs(got-tc.want) > tc.tol {
			t.Errorf("J(%g) = %.3f dB, want %.2f ± %.2f", tc.v, got, tc.want, tc.tol)
		}
	}
	// Lee's approximation for 0 <= v < 1 (the original simulator's) agrees
	// within 0.5 dB.
	for v := 0.0; v < 1; v += 0.1 {
		approx := 6.02 + 9.11*v - 1.27*v*v
		if d := math.Abs(KnifeEdgeLossDB(v) - approx); d > 0.5 {
			t.Errorf("J(%.1f) = %.2f, approximation %.2f", v, KnifeEdgeLossDB(v), approx)
		}
	}
}

func TestBullingtonSingleEdge(t *testing.T) {
	// A 20 km flat path at sea level with one knife edge of 100 m at 8 km;
	// antennas at 10 m; flat earth. The Bullington point is the edge, so
	// the uncorrected loss is J(v) of that edge.
	const step = 0.5
	h := make([]float64, 41)
	h[16] = 100
	lambda := SpeedOfLight / 145e6
	p := profile{heights: h, stepKm: step, txM: 10, rxM: 10, lambdaM: lambda, kFactor: math.Inf(1), totalKm: 20}
	loss, luc := p.bullingtonLossDB()
	d1, d2 := 8000.0, 12000.0
	v := 90 * math.Sqrt(2*(d1+d2)/(lambda*d1*d2))
	if want := KnifeEdgeLossDB(v); math.Abs(luc-want) > 1e-9 || loss != luc {
		t.Fatalf("single edge: loss %.3f, Luc %.3f; want J(%.3f) = %.3f", loss, luc, v, want)
	}
	p.correction = true
	if loss, _ := p.bullingtonLossDB(); loss <= luc {
		t.Fatalf("corrected loss %.2f not above Luc %.2f", loss, luc)
	}
}

// flatWorld is a terrain world on a flat DEM at sea level.
func flatWorld(t *testing.T, k, antennaM float64) *World {
	t.Helper()
	o := DefaultOptions()
	o.LossGridM = 8000
	o.EarthKFactor = k
	o.RxAntennaHeightM = antennaM
	o.TxHeightMinM, o.TxHeightMaxM = antennaM, antennaM
	o = terrainKey(o)
	w := &World{o: o, Kind: WorldTerrain}
	w.proj = newGnomonic((o.LatMin+o.LatMax)/2, (o.LonMin+o.LonMax)/2)
	w.buildDEM()
	clear(w.dem.v)
	w.drawSites()
	w.buildLossGrids()
	w.o = worldKey(o)
	w.fade = newFadingTable(w.o)
	return w
}

func TestFlatTerrainIsFreeSpace(t *testing.T) {
	// Antennas 1500 m up over a flat, flat-earth plain clear every first
	// Fresnel zone: no diffraction anywhere, the power is free space.
	w := flatWorld(t, 1e12, 1500)
	for i, s := range w.Sites {
		for _, tx := range [][2]float64{{44.3, 7.1}, {45.0, 8.0}, {45.6, 9.3}, {44.25, 9.35}} {
			p, d := w.MeanPowerDBm(i, tx[0], tx[1], 30, 0.5)
			want := 30 + s.Antenna.GainDB(bearingDeg(s.Receiver.Lat, s.Receiver.Lon, tx[0], tx[1])) + s.GainOffsetDB - FreeSpaceLossDB(d, 145)
			if math.Abs(p-want) > 1e-9 {
				t.Fatalf("receiver %d, tx %v: %.3f dBm, free space gives %.3f", s.Receiver.ID, tx, p, want)
			}
		}
	}
	// The 4/3 earth's bulge blocks long paths between 10 m antennas.
	w = flatWorld(t, 4.0/3, 10)
	if l := w.DiffractionLossDB(6, 44.3, 7.1, 0.5); l < 20 {
		t.Fatalf("Milano to the SW corner over a 4/3 earth: diffraction %.1f dB, want > 20", l)
	}
}

// coarse are fast terrain-world options for tests.
func coarse(worldSeed int64) Options {
	o := DefaultOptions()
	o.WorldSeed = worldSeed
	o.LossGridM = 5000
	return o
}

func TestWorldSeeds(t *testing.T) {
	a := buildWorld(coarse(1))
	o := coarse(1)
	o.Seed = 99 // a session seed: not part of the world
	b := buildWorld(o)
	c := buildWorld(coarse(2))
	same := func(x, y *World) bool {
		for k := range x.dem.v {
			if x.dem.v[k] != y.dem.v[k] {
				return false
			}
		}
		for i := range x.Sites {
			if x.Sites[i] != y.Sites[i] {
				return false
			}
			for h := range x.loss {
				for k := range x.loss[h][i].v {
					if x.loss[h][i].v[k] != y.loss[h][i].v[k] {
						return false
					}
				}
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("the world differs between session seeds")
	}
	if same(a, c) {
		t.Fatal("world seeds 1 and 2 gave the same world")
	}
	diff := 0
	for i := range a.Sites {
		if a.Sites[i].GainOffsetDB != c.Sites[i].GainOffsetDB {
			diff++
		}
	}
	if diff != len(a.Sites) {
		t.Fatalf("%d of %d receiver offsets differ between world seeds", diff, len(a.Sites))
	}
	w, err := NewWorld(o)
	if err != nil {
		t.Fatal(err)
	}
	o.Seed = 1
	if w2, _ := NewWorld(o); w2 != w {
		t.Fatal("NewWorld does not share the world across session seeds")
	}
}

func TestRegionCharacter(t *testing.T) {
	w := buildWorld(coarse(1))
	// Highest point within ~6 km of a place.
	peak := func(lat, lon float64) float64 {
		h := 0.0
		for dy := -0.05; dy <= 0.05; dy += 0.01 {
			for dx := -0.07; dx <= 0.07; dx += 0.01 {
				h = max(h, w.ElevationM(lat+dy, lon+dx))
			}
		}
		return h
	}
	for _, tc := range []struct {
		name     string
		lat, lon float64
		lo, hi   float64
	}{
		{"Po plain at Torino", 45.07, 7.69, 150, 350},
		{"Po plain at Vercelli", 45.32, 8.42, 80, 300},
		{"Po plain at Milano", 45.46, 9.19, 50, 250},
		{"Po plain at Alessandria", 44.91, 8.61, 50, 300},
	} {
		if h := w.ElevationM(tc.lat, tc.lon); h < tc.lo || h > tc.hi {
			t.Errorf("%s: %.0f m, want %g-%g", tc.name, h, tc.lo, tc.hi)
		}
	}
	for _, tc := range []struct {
		name     string
		lat, lon float64
		lo, hi   float64
	}{
		{"Alps W of Torino (Val Sangone, Rocciamelone)", 45.15, 7.05, 2000, 4000},
		{"Alps NW (Canavese, Gran Paradiso side)", 45.55, 7.45, 1500, 4000},
		{"Ligurian Apennines (Antola)", 44.60, 9.15, 900, 2200},
		{"Langhe", 44.58, 8.05, 400, 1600},
	} {
		if h := peak(tc.lat, tc.lon); h < tc.lo || h > tc.hi {
			t.Errorf("%s: peak %.0f m, want %g-%g", tc.name, h, tc.lo, tc.hi)
		}
	}
	if h := w.ElevationM(44.25, 8.9); h != 0 {
		t.Errorf("Ligurian sea off Genova: %.0f m, want 0", h)
	}
	if h := w.ElevationM(44.43, 8.9); h <= 0 {
		t.Errorf("Genova's hills above the port: %.0f m, want land", h)
	}
	// Receivers sit on the terrain, most omni, some directional.
	dir := 0
	for _, s := range w.Sites {
		if s.GroundM < 0 || s.GroundM > 3000 {
			t.Errorf("receiver %d ground %.0f m", s.Receiver.ID, s.GroundM)
		}
		if s.Antenna.Directional() {
			dir++
		}
	}
	if dir != DefaultOptions().DirectionalReceivers {
		t.Errorf("%d directional receivers, want %d", dir, DefaultOptions().DirectionalReceivers)
	}
}

func TestAntennaPattern(t *testing.T) {
	a := Antenna{Kind: "yagi", GainDBi: 12, AzimuthDeg: 350, BeamwidthDeg: 40, FrontToBackDB: 20}
	for _, tc := range []struct{ bearing, want float64 }{
		{350, 12}, {10, 12 - 3}, {330, 12 - 3}, {170, 12 - 20}, {80, 12 - 20},
	} {
		if got := a.GainDB(tc.bearing); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("gain toward %g° = %.2f, want %.2f", tc.bearing, got, tc.want)
		}
	}
	if g := (Antenna{GainDBi: 2}).GainDB(123); g != 2 {
		t.Errorf("omni gain %g", g)
	}
	if b := bearingDeg(45, 8, 46, 8); math.Abs(b) > 1e-9 {
		t.Errorf("bearing north = %g", b)
	}
	if b := bearingDeg(45, 8, 45, 9); math.Abs(b-89.65) > 0.05 {
		t.Errorf("bearing east = %g", b)
	}
}

func TestGnomonicRoundTrip(t *testing.T) {
	g := newGnomonic(44.95, 8.2)
	for _, p := range [][2]float64{{44.2, 7.0}, {45.7, 9.4}, {45.02, 7.29}} {
		x, y := g.forward(p[0], p[1])
		lat, lon := g.inverse(x, y)
		if math.Abs(lat-p[0]) > 1e-9 || math.Abs(lon-p[1]) > 1e-9 {
			t.Fatalf("round trip %v -> %v", p, [2]float64{lat, lon})
		}
		// Plane distance from the centre matches the great circle within 0.1%.
		d := geo.HaversineKm(44.95, 8.2, p[0], p[1])
		if r := math.Hypot(x, y); math.Abs(r-d) > 1e-3*d {
			t.Fatalf("plane distance %.3f km vs great circle %.3f", r, d)
		}
	}
}
