package trainer

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/heimdall-sdr/trainer/geo"
)

// Plot file names in RUN_DIR/plots.
const (
	PlotLoss      = "loss.png"
	PlotErrorCDF  = "error_cdf.png"
	PlotPositions = "positions.png"
)

var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255},
	color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255},
	color.RGBA{R: 148, G: 103, B: 189, A: 255},
	color.RGBA{R: 255, G: 127, B: 14, A: 255},
	color.RGBA{R: 140, G: 86, B: 75, A: 255},
	color.RGBA{R: 0, G: 0, B: 0, A: 255},
}

// WriteEvalPlots writes PlotErrorCDF and PlotPositions into dir, for a
// set evaluated outside training (heimdall evaluate).
func WriteEvalPlots(dir string, y, pos []float32, baselines []Baseline) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("trainer: plots: %w", err)
	}
	return errors.Join(
		savePlot(cdfPlot(y, pos, baselines), filepath.Join(dir, PlotErrorCDF)),
		savePlot(positionsPlot(y, pos), filepath.Join(dir, PlotPositions)),
	)
}

// WritePlots writes PlotLoss (train/val loss per evaluation), PlotErrorCDF
// (km error CDF of the model and each baseline) and PlotPositions
// (predicted vs true positions with the receivers) into dir, each
// atomically. y and pos are [N, 2] degrees.
func WritePlots(dir string, history []EpochMetrics, y, pos []float32, baselines []Baseline) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("trainer: plots: %w", err)
	}
	return errors.Join(
		savePlot(lossPlot(history), filepath.Join(dir, PlotLoss)),
		savePlot(cdfPlot(y, pos, baselines), filepath.Join(dir, PlotErrorCDF)),
		savePlot(positionsPlot(y, pos), filepath.Join(dir, PlotPositions)),
	)
}

func lossPlot(history []EpochMetrics) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Gaussian NLL per evaluation"
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "loss"
	p.Add(plotter.NewGrid())
	for i, series := range []struct {
		name string
		get  func(EpochMetrics) float64
	}{{"train", func(e EpochMetrics) float64 { return e.Train.Loss }}, {"val", func(e EpochMetrics) float64 { return e.Val.Loss }}} {
		var pts plotter.XYs
		for _, e := range history {
			if v := series.get(e); finite(v) {
				pts = append(pts, plotter.XY{X: float64(e.Epoch), Y: v})
			}
		}
		addLine(p, series.name, pts, palette[i], true)
	}
	return p
}

func cdfPlot(y, pos []float32, baselines []Baseline) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Position error CDF (val)"
	p.X.Label.Text = "error (km)"
	p.Y.Label.Text = "share of sessions"
	p.Add(plotter.NewGrid())
	addLine(p, "LocalizationNet", cdf(KmErrors(y, pos)), palette[0], false)
	for i, b := range baselines {
		if b.Positions == nil { // n/a on this set
			continue
		}
		addLine(p, b.Name, cdf(KmErrors(y, b.Positions)), palette[(i+1)%len(palette)], false)
	}
	p.Legend.Top, p.Legend.Left = false, false // Bottom right: the CDFs rise to the top left.
	return p
}

func cdf(errs []float64) plotter.XYs {
	s := slices.Clone(errs)
	slices.Sort(s)
	pts := make(plotter.XYs, 0, len(s))
	for i, v := range s {
		if finite(v) {
			pts = append(pts, plotter.XY{X: v, Y: float64(i+1) / float64(len(s))})
		}
	}
	return pts
}

func positionsPlot(y, pos []float32) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Predicted vs true positions (val)"
	p.X.Label.Text = "longitude (°)"
	p.Y.Label.Text = "latitude (°)"
	p.Add(plotter.NewGrid())
	n := len(y) / 2
	var truth, pred plotter.XYs
	for i := range n {
		truth = append(truth, plotter.XY{X: float64(y[2*i+1]), Y: float64(y[2*i])})
		pred = append(pred, plotter.XY{X: float64(pos[2*i+1]), Y: float64(pos[2*i])})
		// Error segment truth -> prediction.
		if seg, err := plotter.NewLine(plotter.XYs{truth[i], pred[i]}); err == nil {
			seg.Color = color.Gray{Y: 180}
			p.Add(seg)
		}
	}
	addScatter(p, "true", truth, palette[2], draw.CircleGlyph{}, 2)
	addScatter(p, "predicted", pred, palette[0], draw.CrossGlyph{}, 2)
	var rx plotter.XYs
	for _, r := range geo.Receivers {
		rx = append(rx, plotter.XY{X: r.Lon, Y: r.Lat})
	}
	addScatter(p, "receivers", rx, palette[1], draw.TriangleGlyph{}, 5)
	return p
}

func addLine(p *plot.Plot, name string, pts plotter.XYs, c color.Color, points bool) {
	if len(pts) == 0 {
		return
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	if points {
		if s, err := plotter.NewScatter(pts); err == nil {
			s.Color = c
			p.Add(s)
		}
	}
}

func addScatter(p *plot.Plot, name string, pts plotter.XYs, c color.Color, g draw.GlyphDrawer, radius float64) {
	var clean plotter.XYs
	for _, pt := range pts {
		if finite(pt.X) && finite(pt.Y) && math.Abs(pt.X) < 1e6 && math.Abs(pt.Y) < 1e6 {
			clean = append(clean, pt)
		}
	}
	if len(clean) == 0 {
		return
	}
	s, err := plotter.NewScatter(clean)
	if err != nil {
		return
	}
	s.GlyphStyle.Color = c
	s.GlyphStyle.Shape = g
	s.GlyphStyle.Radius = vg.Points(radius)
	p.Add(s)
	p.Legend.Add(name, s)
}

// savePlot renders p as a 7x5 inch PNG and writes it atomically.
func savePlot(p *plot.Plot, path string) error {
	w, err := p.WriterTo(7*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("trainer: plot %s: %w", filepath.Base(path), err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return fmt.Errorf("trainer: render %s: %w", filepath.Base(path), err)
	}
	return writeFileAtomic(path, buf.Bytes())
}
