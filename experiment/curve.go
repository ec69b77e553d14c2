package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/trainer"
)

// Learning-curve output files, in CurveOptions.OutDir.
const (
	CurveJSON  = "curve.json"
	CurveTable = "curve.md"
	CurvePlot  = "curve.png"
)

// CurveOptions control LearningCurve.
type CurveOptions struct {
	// Sizes are the numbers of training sessions, each a prefix (in
	// session-id order) of the configured training split, so every size
	// holds the smaller ones. Empty: 1000, 2000, 4000, ... below the
	// training split's size, then the whole split.
	Sizes []int
	// OutDir receives one run directory per size (n01000, ...), curve.json,
	// curve.md and curve.png. Required.
	OutDir   string
	Progress io.Writer
	Log      io.Writer
}

// CurvePoint is one size of the learning curve: the validation errors of
// the network trained on TrainSessions sessions and of every estimator
// fitted on the same sessions, on the one fixed validation split.
type CurvePoint struct {
	TrainSessions int                      `json:"train_sessions"`
	RunDir        string                   `json:"run_dir"`
	Network       rundir.BaselineMetrics   `json:"network"`
	Estimators    []rundir.BaselineMetrics `json:"estimators"`
	Within1Sigma  float64                  `json:"network_within_1sigma"`
	BestEpoch     int                      `json:"best_epoch"`
	TrainSeconds  float64                  `json:"train_seconds"`
}

// Curve is the learning curve: one point per size, on ValSessions.
type Curve struct {
	ValSessions int          `json:"val_sessions"`
	Points      []CurvePoint `json:"points"`
}

// DefaultCurveSizes returns 1000, 2000, 4000, ... below n, then n.
func DefaultCurveSizes(n int) []int {
	var s []int
	for k := 1000; k < n; k *= 2 {
		s = append(s, k)
	}
	return append(s, n)
}

// LearningCurve trains the configured network on growing prefixes of the
// training split and fits the estimators on the same prefixes, all judged
// on the same validation split (the oracle, which needs no training data,
// once). It answers how much data the network needs against fingerprinting
// and the oracle.
func LearningCurve(ctx context.Context, cfg config.Config, o CurveOptions) (*Curve, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	if o.OutDir == "" {
		return nil, errors.New("curve: an output directory is required")
	}
	opened, err := backend.Open(cfg.Run.BackendOptions())
	if err != nil {
		return nil, err
	}
	defer opened.Close()
	fmt.Fprint(logw, opened.Header())
	st, err := OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	ds, err := dataset.Load(ctx, st, cfg.Features, cfg.Dataset, o.Progress)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "dataset: %s\nsplit: %d train / %d val sessions (the val split is every point's)\n", ds.Report, ds.Train.Len(), ds.Val.Len())
	sizes := o.Sizes
	if len(sizes) == 0 {
		sizes = DefaultCurveSizes(ds.Train.Len())
	}
	sizes = slices.Clone(sizes)
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	for _, n := range sizes {
		if n < 2*cfg.Train.BatchSize || n > ds.Train.Len() {
			return nil, fmt.Errorf("curve: size %d: must be in [%d, %d] (2 batches .. the training split of %s)", n, 2*cfg.Train.BatchSize, ds.Train.Len(), st)
		}
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("curve: %w", err)
	}
	curve := &Curve{ValSessions: ds.Val.Len()}
	var oracle *trainer.Baseline
	for _, n := range sizes {
		sub := prefixSplit(ds.Train, n, len(ds.Receivers))
		bases, _ := estimatorsOn(ds.Val, ds.Receivers, fitSet{split: sub, source: fmt.Sprintf("first %d training sessions", n), oracle: oracle}, ds.Origin, logw)
		for i := range bases {
			if bases[i].Name == EstimatorOracle {
				b := bases[i]
				oracle = &b
			}
		}
		runDir := filepath.Join(o.OutDir, fmt.Sprintf("n%05d", n))
		if err := os.RemoveAll(runDir); err != nil {
			return nil, fmt.Errorf("curve: %w", err)
		}
		fmt.Fprintf(logw, "curve: %d training sessions -> %s\n", n, runDir)
		sum, err := trainer.Train(ctx, opened.Backend, trainerData(ds, sub, bases), cfg.Model, cfg.Train, trainer.RunOptions{RunDir: runDir, Progress: o.Progress, Log: logw, NoPlots: true, Devices: cfg.Run.Devices})
		if err != nil {
			return curve, fmt.Errorf("curve: %d training sessions: %w", n, err)
		}
		p := CurvePoint{TrainSessions: n, RunDir: runDir, Estimators: estimatorErrors(ds.Val.Y, bases),
			Network:      rundir.BaselineMetrics{Name: "LocalizationNet", KmMean: sum.Val.KmMean, KmMedian: sum.Val.KmMedian, KmP90: sum.Val.KmP90},
			Within1Sigma: sum.Val.Within1Sigma, BestEpoch: sum.BestEpoch, TrainSeconds: sum.TrainSeconds}
		curve.Points = append(curve.Points, p)
		fmt.Fprintf(logw, "curve: %d sessions: network median %.2f km; %s\n", n, p.Network.KmMedian, estimatorLine(p.Estimators))
		if err := curve.write(o.OutDir); err != nil { // after every point: a long run keeps what it has
			return curve, err
		}
	}
	return curve, nil
}

// prefixSplit is the first n sessions of s.
func prefixSplit(s *dataset.Split, n, receivers int) *dataset.Split {
	per := len(s.X) / s.Len()
	return &dataset.Split{IDs: s.IDs[:n], X: s.X[:n*per], Y: s.Y[:2*n], PowerDB: s.PowerDB[:n*receivers], Present: s.Present[:n*receivers]}
}

// curveColumns are the table's and plot's estimators, in order.
var curveColumns = []string{EstimatorFingerprint, EstimatorCalibrated, EstimatorOracle}

func (p CurvePoint) median(name string) (float64, bool) {
	for _, e := range p.Estimators {
		if e.Name == name && e.NA == "" {
			return e.KmMedian, true
		}
	}
	return 0, false
}

// WriteTable writes the curve as a Markdown table (validation km median).
func (c *Curve) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "| train sessions | LocalizationNet | %s | network / fingerprint | network / oracle | network in 1 sigma |\n", strings.Join(curveColumns, " | "))
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, p := range c.Points {
		fmt.Fprintf(&b, "| %d | %.2f |", p.TrainSessions, p.Network.KmMedian)
		for _, name := range curveColumns {
			if m, ok := p.median(name); ok {
				fmt.Fprintf(&b, " %.2f |", m)
			} else {
				b.WriteString(" n/a |")
			}
		}
		for _, name := range []string{EstimatorFingerprint, EstimatorOracle} {
			if m, ok := p.median(name); ok && m > 0 {
				fmt.Fprintf(&b, " %.2f |", p.Network.KmMedian/m)
			} else {
				b.WriteString(" n/a |")
			}
		}
		fmt.Fprintf(&b, " %.1f%% |\n", 100*p.Within1Sigma)
	}
	fmt.Fprintf(&b, "\nValidation km median on the same %d validation sessions for every row.\n", c.ValSessions)
	_, err := io.WriteString(w, b.String())
	return err
}

func (c *Curve) write(dir string) error {
	j, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := rundir.WriteFile(dir, CurveJSON, append(j, '\n')); err != nil {
		return err
	}
	var t strings.Builder
	if err := c.WriteTable(&t); err != nil {
		return err
	}
	if err := rundir.WriteFile(dir, CurveTable, []byte(t.String())); err != nil {
		return err
	}
	return c.plot(filepath.Join(dir, CurvePlot))
}

// plot draws validation km median against training sessions (log x).
func (c *Curve) plot(path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Learning curve (%d validation sessions)", c.ValSessions)
	p.X.Label.Text = "training sessions"
	p.Y.Label.Text = "validation km median"
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, pt := range c.Points {
		ticks = append(ticks, plot.Tick{Value: float64(pt.TrainSessions), Label: fmt.Sprint(pt.TrainSessions)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	top := 0.0
	lines := []struct {
		name string
		c    color.Color
		get  func(CurvePoint) (float64, bool)
	}{
		{"LocalizationNet", color.RGBA{R: 200, A: 255}, func(p CurvePoint) (float64, bool) { return p.Network.KmMedian, true }},
		{EstimatorFingerprint, color.RGBA{B: 200, A: 255}, func(p CurvePoint) (float64, bool) { return p.median(EstimatorFingerprint) }},
		{EstimatorCalibrated, color.RGBA{G: 150, A: 255}, func(p CurvePoint) (float64, bool) { return p.median(EstimatorCalibrated) }},
		{EstimatorOracle, color.Gray{Y: 60}, func(p CurvePoint) (float64, bool) { return p.median(EstimatorOracle) }},
	}
	for _, l := range lines {
		var pts plotter.XYs
		for _, pt := range c.Points {
			if v, ok := l.get(pt); ok {
				pts = append(pts, plotter.XY{X: float64(pt.TrainSessions), Y: v})
			}
		}
		if len(pts) == 0 {
			continue
		}
		for _, q := range pts {
			top = max(top, q.Y)
		}
		ln, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("curve: plot: %w", err)
		}
		ln.Color, sc.Color = l.c, l.c
		ln.Width = vg.Points(1.5)
		p.Add(ln, sc)
		p.Legend.Add(l.name, ln, sc)
	}
	// From 0, with room above the highest line for the legend.
	p.Y.Min, p.Y.Max = 0, 1.35*top
	if err := p.Save(7*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("curve: plot %s: %w", path, err)
	}
	return nil
}
