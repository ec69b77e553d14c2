package sim

import (
	"fmt"
	"golang.org/x/sync/errgroup"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/heimdall-sdr/trainer/geo"
)

// The worlds a simulation can draw from (simulate.world).
const (
	// WorldTerrain is the default: a seeded synthetic terrain of the region
	// with free-space loss plus Bullington diffraction over each path,
	// receivers with their own gain offsets, noise floors and antennas.
	WorldTerrain = "terrain"
	// WorldLogDistance is the earlier world: one log-distance law with
	// independent log-normal shadowing, identical receivers.
	WorldLogDistance = "log_distance"
)

// Environment classes of receiver sites, the man-made noise categories of
// ITU-R P.372 (Table 2 of P.372-16: Fam = c - d log10(f_MHz)).
const (
	EnvBusiness    = "business"
	EnvResidential = "residential"
	EnvRural       = "rural"
)

// p372 holds c and d of ITU-R P.372's median man-made noise figure.
var p372 = map[string][2]float64{
	EnvBusiness:    {76.8, 27.7},
	EnvResidential: {72.5, 27.7},
	EnvRural:       {67.2, 27.7},
}

// siteEnvironment is each receiver's surroundings, by receiver id, read off
// the station names: city centres are business, towns and suburbs
// residential, mountain and pass sites rural.
var siteEnvironment = map[int]string{
	1: EnvRural,       // Aquila di Giaveno, a mountain site above Giaveno
	2: EnvResidential, // Montanaro, a small town on the plain
	3: EnvBusiness,    // Torino
	4: EnvRural,       // Coazze, a mountain village
	5: EnvRural,       // Passo del Giovi, an Apennine pass
	6: EnvBusiness,    // Genova
	7: EnvResidential, // Milano-Baggio, a western district of Milano
}

// Site is one receiver as the world places it.
type Site struct {
	Receiver geo.Receiver `json:"receiver"`
	// Environment is the ITU-R P.372 man-made noise category of the site.
	Environment string `json:"environment"`
	// GroundM is the terrain height at the receiver (m above sea level);
	// AntennaM the antenna's height above ground.
	GroundM  float64 `json:"ground_m"`
	AntennaM float64 `json:"antenna_m"`
	// GainOffsetDB is the receiver's uncalibrated gain (cables, front end,
	// the WebSDR's scaling) relative to nominal, applied to the signal.
	GainOffsetDB float64 `json:"gain_offset_db"`
	// NoiseFloorDBm is the receiver's median noise power in the recorded
	// bandwidth.
	NoiseFloorDBm float64 `json:"noise_floor_dbm"`
	Antenna       Antenna `json:"antenna"`
}

// World is the static part of the simulation: everything that stays put
// from session to session. It depends on the options' world keys (and the
// box, frequency and noise keys) and world_seed, never on seed.
type World struct {
	o     Options
	Kind  string
	Sites []Site

	proj gnomonic
	dem  *grid
	// loss[h][i] is the diffraction loss (dB) from a transmitter at each
	// node of the transmitter box to receiver i, for the lowest (h = 0) and
	// highest (h = 1) transmitter antenna.
	loss [2][]*grid
	fade fadingTable
	// eirp is the distribution of a session's common power offset.
	eirpLevels, eirpWeights []float64
}

var worldCache struct {
	sync.Mutex
	worlds  map[Options]*World
	terrain map[Options]*World // DEM, sites and loss grids, by terrainKey
}

// terrainKey keeps only the options the terrain part of a World (DEM,
// sites, loss grids, EIRP prior) depends on.
func terrainKey(o Options) Options {
	k := DefaultOptions()
	k.World, k.WorldSeed = o.World, o.WorldSeed
	k.LatMin, k.LatMax, k.LonMin, k.LonMax = o.LatMin, o.LatMax, o.LonMin, o.LonMax
	k.CenterFrequencyHz, k.SampleRateHz = o.CenterFrequencyHz, o.SampleRateHz
	k.DEMResolutionM, k.LossGridM, k.EarthKFactor = o.DEMResolutionM, o.LossGridM, o.EarthKFactor
	k.RxAntennaHeightM, k.RxGainSigmaDB, k.RxNoiseSigmaDB, k.RxNoiseFigureDB = o.RxAntennaHeightM, o.RxGainSigmaDB, o.RxNoiseSigmaDB, o.RxNoiseFigureDB
	k.DirectionalReceivers = o.DirectionalReceivers
	k.TxPowerMinDBm, k.TxPowerMaxDBm = o.TxPowerMinDBm, o.TxPowerMaxDBm
	k.TxHeightMinM, k.TxHeightMaxM = o.TxHeightMinM, o.TxHeightMaxM
	k.EnvironmentLossMinDB, k.EnvironmentLossMaxDB = o.EnvironmentLossMinDB, o.EnvironmentLossMaxDB
	k.TxPowerDBm, k.TxPowerJitterDB, k.NoiseFloorDBm = o.TxPowerDBm, o.TxPowerJitterDB, o.NoiseFloorDBm
	return k
}

// worldKey keeps only the options a World depends on: the terrain's and
// those of the propagation and measurement models.
func worldKey(o Options) Options {
	k := terrainKey(o)
	k.DurationS = o.DurationS
	k.ResidualShadowingDB = o.ResidualShadowingDB
	k.PathLossExponent, k.ReferenceDistanceKm, k.ReferenceLossDB = o.PathLossExponent, o.ReferenceDistanceKm, o.ReferenceLossDB
	k.ShadowingSigmaDB = o.ShadowingSigmaDB
	k.RicianKDB, k.RicianKSlopeDB, k.DopplerMaxHz = o.RicianKDB, o.RicianKSlopeDB, o.DopplerMaxHz
	k.NoiseFloorJitterDB, k.FullScaleDBm, k.Quantize = o.NoiseFloorJitterDB, o.FullScaleDBm, o.Quantize
	return k
}

// NewWorld returns the world of the options, building it on first use (the
// terrain takes a few seconds) and sharing it afterwards: a World is
// read-only once built. It depends on world_seed and the world's keys,
// never on seed.
func NewWorld(o Options) (*World, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("sim: invalid options: %w", err)
	}
	k := worldKey(o)
	worldCache.Lock()
	defer worldCache.Unlock()
	if w, ok := worldCache.worlds[k]; ok {
		return w, nil
	}
	if worldCache.worlds == nil {
		worldCache.worlds = map[Options]*World{}
		worldCache.terrain = map[Options]*World{}
	}
	tk := terrainKey(o)
	t, ok := worldCache.terrain[tk]
	if !ok {
		t = buildTerrain(tk)
		worldCache.terrain[tk] = t
	}
	w := *t
	w.o = k
	w.fade = newFadingTable(k)
	worldCache.worlds[k] = &w
	return &w, nil
}

// buildWorld builds a World without the cache.
func buildWorld(o Options) *World {
	w := buildTerrain(terrainKey(o))
	w.o = worldKey(o)
	w.fade = newFadingTable(w.o)
	return w
}

// buildTerrain builds the terrain part of a World: DEM, sites, loss grids
// and EIRP prior.
func buildTerrain(o Options) *World {
	w := &World{o: o, Kind: o.World}
	if o.World == WorldLogDistance {
		for _, r := range geo.Receivers {
			w.Sites = append(w.Sites, Site{Receiver: r, NoiseFloorDBm: o.NoiseFloorDBm, Antenna: Antenna{Kind: "isotropic"}})
		}
		w.eirpLevels, w.eirpWeights = gaussianPrior(o.TxPowerDBm, o.TxPowerJitterDB)
		return w
	}
	w.proj = newGnomonic((o.LatMin+o.LatMax)/2, (o.LonMin+o.LonMax)/2)
	w.buildDEM()
	w.drawSites()
	w.buildLossGrids()
	w.eirpLevels, w.eirpWeights = w.eirpPrior()
	return w
}

// txBoxXY returns the transmitter box's bounding box in the plane.
func (w *World) txBoxXY() (x0, y0, x1, y1 float64) {
	o := w.o
	x0, y0, x1, y1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for k := 0; k <= 16; k++ {
		f := float64(k) / 16
		for _, p := range [][2]float64{
			{o.LatMin, o.LonMin + f*(o.LonMax-o.LonMin)}, {o.LatMax, o.LonMin + f*(o.LonMax-o.LonMin)},
			{o.LatMin + f*(o.LatMax-o.LatMin), o.LonMin}, {o.LatMin + f*(o.LatMax-o.LatMin), o.LonMax},
		} {
			x, y := w.proj.forward(p[0], p[1])
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
		}
	}
	return x0, y0, x1, y1
}

// demMarginKm widens the DEM beyond the transmitter box and the receivers.
const demMarginKm = 10

func (w *World) buildDEM() {
	x0, y0, x1, y1 := w.txBoxXY()
	for _, r := range geo.Receivers {
		x, y := w.proj.forward(r.Lat, r.Lon)
		x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
	}
	step := w.o.DEMResolutionM / 1000
	x0, y0 = x0-demMarginKm, y0-demMarginKm
	nx := int(math.Ceil((x1+demMarginKm-x0)/step)) + 1
	ny := int(math.Ceil((y1+demMarginKm-y0)/step)) + 1
	g := newGrid(x0, y0, step, nx, ny)
	m := newTerrainModel(w.o.WorldSeed)
	parallelRows(ny, func(i int) {
		y := y0 + float64(i)*step
		for j := range nx {
			x := x0 + float64(j)*step
			lat, lon := w.proj.inverse(x, y)
			g.v[i*nx+j] = float32(m.elevation(lat, lon, x, y))
		}
	})
	w.dem = g
}

// parallelRows runs row(i) for i in [0, n) on every CPU.
func parallelRows(n int, row func(i int)) {
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for i := range n {
		g.Go(func() error { row(i); return nil })
	}
	_ = g.Wait() // the jobs return no error
}

// worldRNG is the random stream of the world's own draws.
func worldRNG(worldSeed int64, stream uint64) *rand.Rand {
	a := splitmix64(uint64(worldSeed) ^ 0x5851f42d4c957f2d)
	return rand.New(rand.NewPCG(a, splitmix64(a^stream)))
}

// drawSites places the receivers and draws their static properties.
func (w *World) drawSites() {
	o := w.o
	rng := worldRNG(o.WorldSeed, 1)
	fMHz := o.CenterFrequencyHz / 1e6
	// Thermal noise in the recorded bandwidth: kT0 B, -174 dBm/Hz.
	ktb := -174 + 10*math.Log10(o.SampleRateHz)
	clat, clon := (o.LatMin+o.LatMax)/2, (o.LonMin+o.LonMax)/2
	var dirs []Antenna
	for _, r := range geo.Receivers {
		env := siteEnvironment[r.ID]
		if env == "" {
			env = EnvResidential
		}
		x, y := w.proj.forward(r.Lat, r.Lon)
		s := Site{Receiver: r, Environment: env, GroundM: w.dem.at(x, y), AntennaM: o.RxAntennaHeightM}
		s.GainOffsetDB = o.RxGainSigmaDB * rng.NormFloat64()
		// System noise factor: external (man-made) noise plus the
		// receiver's own, f = fa + nf - 1 (ITU-R P.372 §1).
		c := p372[env]
		fa := math.Pow(10, (c[0]-c[1]*math.Log10(fMHz))/10)
		nf := math.Pow(10, o.RxNoiseFigureDB/10)
		s.NoiseFloorDBm = ktb + 10*math.Log10(fa+nf-1) + o.RxNoiseSigmaDB*rng.NormFloat64()
		// Omnidirectional by default, after the original simulator's mix:
		// vertical 0-3 dBi (70 of its 75% omni) or collinear 6-9 dBi.
		if rng.Float64() < 70.0/75 {
			s.Antenna = Antenna{Kind: "vertical", GainDBi: 3 * rng.Float64()}
		} else {
			s.Antenna = Antenna{Kind: "collinear", GainDBi: 6 + 3*rng.Float64()}
		}
		// Directional candidates: Yagi (15 of the original's 25%
		// directional) 10-15 dBi, 30-60°, F/B 15-25 dB; log-periodic
		// 8-12 dBi, 60-80°, F/B 15-20 dB. Pointed toward the middle of
		// the box within ±60° (site constraints, pointing error).
		az := bearingDeg(r.Lat, r.Lon, clat, clon) + 120*(rng.Float64()-0.5)
		var dir Antenna
		if rng.Float64() < 15.0/25 {
			dir = Antenna{Kind: "yagi", GainDBi: 10 + 5*rng.Float64(), BeamwidthDeg: 30 + 30*rng.Float64(), FrontToBackDB: 15 + 10*rng.Float64()}
		} else {
			dir = Antenna{Kind: "lpda", GainDBi: 8 + 4*rng.Float64(), BeamwidthDeg: 60 + 20*rng.Float64(), FrontToBackDB: 15 + 5*rng.Float64()}
		}
		dir.AzimuthDeg = math.Mod(az+360, 360)
		dirs = append(dirs, dir)
		w.Sites = append(w.Sites, s)
	}
	for _, i := range rng.Perm(len(w.Sites))[:min(o.DirectionalReceivers, len(w.Sites))] {
		w.Sites[i].Antenna = dirs[i]
	}
}
