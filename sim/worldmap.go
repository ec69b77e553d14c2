package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/heimdall-sdr/trainer/storage/local"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// Maps of the world, for a user to look at: the terrain with the receivers,
// and per receiver the received power over the transmitter box.

// mapPixelsPerDeg is the maps' scale: pixels per degree of latitude (the
// longitude axis is scaled by cos(latitude) so the map is not stretched).
const mapPixelsPerDeg = 300

// mapFrame is the pixel frame of the transmitter box.
type mapFrame struct {
	w, h                   int
	latMin, latMax, lonMin float64
	degPerPxLat, degPerPxL float64
}

func (w *World) frame() mapFrame {
	o := w.o
	kx := math.Cos((o.LatMin + o.LatMax) / 2 * rad)
	f := mapFrame{latMin: o.LatMin, latMax: o.LatMax, lonMin: o.LonMin}
	f.h = int(math.Round((o.LatMax - o.LatMin) * mapPixelsPerDeg))
	f.w = int(math.Round((o.LonMax - o.LonMin) * mapPixelsPerDeg * kx))
	f.degPerPxLat = (o.LatMax - o.LatMin) / float64(f.h)
	f.degPerPxL = (o.LonMax - o.LonMin) / float64(f.w)
	return f
}

// latLon of pixel (px, py), its centre.
func (f mapFrame) latLon(px, py int) (float64, float64) {
	return f.latMax - (float64(py)+0.5)*f.degPerPxLat, f.lonMin + (float64(px)+0.5)*f.degPerPxL
}

func (f mapFrame) pixel(lat, lon float64) (int, int) {
	return int((lon - f.lonMin) / f.degPerPxL), int((f.latMax - lat) / f.degPerPxLat)
}

// hypsometric colours terrain height: sea blue, plain green, hills ochre,
// mountains brown to white above 2500 m.
func hypsometric(h float64) color.RGBA {
	if h <= 0 {
		return color.RGBA{70, 120, 190, 255}
	}
	stops := []struct {
		h       float64
		r, g, b float64
	}{
		{0, 90, 160, 90}, {200, 150, 195, 110}, {500, 215, 205, 130},
		{1000, 190, 150, 90}, {1800, 150, 105, 70}, {2500, 200, 190, 185}, {3500, 255, 255, 255},
	}
	for k := 1; k < len(stops); k++ {
		if h <= stops[k].h || k == len(stops)-1 {
			a, b := stops[k-1], stops[k]
			t := max(0, min(1, (h-a.h)/(b.h-a.h)))
			return color.RGBA{uint8(a.r + t*(b.r-a.r)), uint8(a.g + t*(b.g-a.g)), uint8(a.b + t*(b.b-a.b)), 255}
		}
	}
	return color.RGBA{255, 255, 255, 255}
}

// heat maps t in [0, 1] to a dark-blue to yellow ramp (viridis-like).
func heat(t float64) color.RGBA {
	stops := [][3]float64{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}
	t = max(0, min(1, t)) * float64(len(stops)-1)
	k := min(int(t), len(stops)-2)
	u := t - float64(k)
	a, b := stops[k], stops[k+1]
	return color.RGBA{uint8(a[0] + u*(b[0]-a[0])), uint8(a[1] + u*(b[1]-a[1])), uint8(a[2] + u*(b[2]-a[2])), 255}
}

// marker draws a receiver: a white-ringed square, filled with fill; a
// directional antenna also gets a line along its boresight.
func marker(img *image.RGBA, f mapFrame, s Site, fill color.RGBA) {
	x, y := f.pixel(s.Receiver.Lat, s.Receiver.Lon)
	for dy := -5; dy <= 5; dy++ {
		for dx := -5; dx <= 5; dx++ {
			c := fill
			if max(abs(dx), abs(dy)) >= 4 {
				c = color.RGBA{255, 255, 255, 255}
			}
			img.SetRGBA(x+dx, y+dy, c)
		}
	}
	if s.Antenna.Directional() {
		sin, cos := math.Sincos(s.Antenna.AzimuthDeg * rad)
		for r := 6.0; r < 40; r++ {
			img.SetRGBA(x+int(r*sin), y-int(r*cos), color.RGBA{255, 0, 0, 255})
			img.SetRGBA(x+int(r*sin)+1, y-int(r*cos), color.RGBA{255, 0, 0, 255})
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("sim: encode map: %w", err)
	}
	return buf.Bytes(), nil
}

// TerrainPNG renders the terrain over the transmitter box (hill-shaded
// hypsometric colours) with the receivers (squares; a red line along a
// directional antenna's boresight).
func (w *World) TerrainPNG() ([]byte, error) {
	f := w.frame()
	img := image.NewRGBA(image.Rect(0, 0, f.w, f.h))
	for py := range f.h {
		for px := range f.w {
			lat, lon := f.latLon(px, py)
			h := w.ElevationM(lat, lon)
			c := hypsometric(h)
			if h > 0 {
				// Hill shading from the north-west.
				dzx := w.ElevationM(lat, lon+f.degPerPxL) - h
				dzy := w.ElevationM(lat+f.degPerPxLat, lon) - h
				shade := max(0.55, min(1.25, 1+(dzy-dzx)/120))
				c = color.RGBA{uint8(min(255, float64(c.R)*shade)), uint8(min(255, float64(c.G)*shade)), uint8(min(255, float64(c.B)*shade)), 255}
			}
			img.SetRGBA(px, py, c)
		}
	}
	for _, s := range w.Sites {
		marker(img, f, s, color.RGBA{200, 0, 0, 255})
	}
	return encodePNG(img)
}

// CoveragePNG renders receiver i's mean received power over the transmitter
// box for a transmitter of eirpDBm EIRP at mid height: colour from the
// receiver's noise floor (dark) to 60 dB above it (yellow); below the noise
// floor grey, shaded by the terrain.
func (w *World) CoveragePNG(i int, eirpDBm float64) ([]byte, error) {
	f := w.frame()
	img := image.NewRGBA(image.Rect(0, 0, f.w, f.h))
	floor := w.Sites[i].NoiseFloorDBm
	for py := range f.h {
		for px := range f.w {
			lat, lon := f.latLon(px, py)
			p, _ := w.MeanPowerDBm(i, lat, lon, eirpDBm, 0.5)
			if p < floor {
				g := uint8(90 + min(120, w.ElevationM(lat, lon)/25))
				img.SetRGBA(px, py, color.RGBA{g, g, g, 255})
				continue
			}
			img.SetRGBA(px, py, heat((p-floor)/60))
		}
	}
	for k, s := range w.Sites {
		fill := color.RGBA{255, 255, 255, 255}
		if k == i {
			fill = color.RGBA{255, 0, 0, 255}
		}
		marker(img, f, s, fill)
	}
	return encodePNG(img)
}

// MapEIRPDBm is the EIRP of the coverage maps' transmitter: a 5 W radio
// (37 dBm) with a 0 dBi antenna and 10 dB environment loss, the middle of
// the terrain world's draws.
const MapEIRPDBm = 27

// WriteMaps writes the world of o into dir: terrain.png (the terrain and the
// receivers), coverage_websdr_{id}.png per receiver (mean received power of
// a MapEIRPDBm transmitter at mid height, from the receiver's noise floor to
// 60 dB above it; grey below it) and world.json (the receivers as placed:
// ground, antenna, gain offset, noise floor). Each file is written to a
// temporary name and renamed. It returns the paths written.
func WriteMaps(dir string, o Options) ([]string, error) {
	w, err := NewWorld(o)
	if err != nil {
		return nil, err
	}
	if w.Kind != WorldTerrain {
		return nil, fmt.Errorf("sim: maps need simulate.world %q, not %q", WorldTerrain, w.Kind)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim: maps: %w", err)
	}
	var paths []string
	put := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		if err := local.WriteFile(p, data); err != nil {
			return fmt.Errorf("sim: maps: %w", err)
		}
		paths = append(paths, p)
		return nil
	}
	b, err := w.TerrainPNG()
	if err != nil {
		return nil, err
	}
	if err := put("terrain.png", b); err != nil {
		return nil, err
	}
	for i, s := range w.Sites {
		b, err := w.CoveragePNG(i, MapEIRPDBm)
		if err != nil {
			return nil, err
		}
		if err := put(fmt.Sprintf("coverage_websdr_%d.png", s.Receiver.ID), b); err != nil {
			return nil, err
		}
	}
	info := struct {
		World     string `json:"world"`
		WorldSeed int64  `json:"world_seed"`
		Sites     []Site `json:"sites"`
	}{w.Kind, o.WorldSeed, w.Sites}
	js, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sim: encode world.json: %w", err)
	}
	if err := put("world.json", append(js, '\n')); err != nil {
		return nil, err
	}
	return paths, nil
}
