package trainer

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/stats"
)

// Expected shares of a 2-D Gaussian inside its 1-sigma and 2-sigma ellipse:
// 1 - exp(-k^2/2).
var (
	GaussianWithin1Sigma = 1 - math.Exp(-0.5)
	GaussianWithin2Sigma = 1 - math.Exp(-2)
)

// The metrics records are the run directory's (rundir): the summary holds
// them.
type (
	BaselineMetrics = rundir.BaselineMetrics
	EvalMetrics     = rundir.EvalMetrics
)

// Evaluate computes EvalMetrics from flat [N, 2] truth y, predicted
// positions pos and sigmas (degrees), plus the baselines' km errors.
func Evaluate(y, pos, sigma []float32, baselines []Baseline) EvalMetrics {
	m := EvalMetrics{N: len(y) / 2}
	if m.N == 0 {
		return m
	}
	m.Loss, m.MSETerm, m.LogTerm = GaussianNLLGo(y, pos, sigma)
	m.SigmaMin, m.SigmaMax = math.Inf(1), math.Inf(-1)
	for i := range y {
		m.MAE += math.Abs(float64(y[i]) - float64(pos[i]))
		s := float64(sigma[i])
		m.SigmaMean += s
		m.SigmaMin = math.Min(m.SigmaMin, s)
		m.SigmaMax = math.Max(m.SigmaMax, s)
	}
	m.MAE /= float64(len(y))
	m.SigmaMean /= float64(len(y))
	km := KmErrors(y, pos)
	m.KmMean, m.KmStd = stats.MeanStd(km)
	m.KmMedian, m.KmP90 = stats.Percentile(km, 50), stats.Percentile(km, 90)
	m.Within1Sigma, m.Within2Sigma = Calibration(y, pos, sigma)
	m.Baselines = EvaluateBaselines(y, baselines)
	return m
}

// EvaluateBaselines summarises each baseline's km errors against the truth
// y ([N, 2] degrees), with its 1-sigma coverage when it has sigmas; an n/a
// baseline gives an entry with km -1 and its reason.
func EvaluateBaselines(y []float32, baselines []Baseline) []BaselineMetrics {
	var out []BaselineMetrics
	for _, b := range baselines {
		if b.NA != "" && b.Positions == nil {
			out = append(out, BaselineMetrics{Name: b.Name, KmMean: -1, KmMedian: -1, KmP90: -1, NA: b.NA})
			continue
		}
		bkm := KmErrors(y, b.Positions)
		mean, _ := stats.MeanStd(bkm)
		bm := BaselineMetrics{
			Name: b.Name, KmMean: mean, KmMedian: stats.Percentile(bkm, 50), KmP90: stats.Percentile(bkm, 90),
		}
		if b.Sigmas != nil {
			w1, _ := Calibration(y, b.Positions, b.Sigmas)
			bm.Within1Sigma = &w1
		}
		out = append(out, bm)
	}
	return out
}

// KmErrors returns the haversine distance in km between each truth and
// prediction ([N, 2] lat, lon degrees).
func KmErrors(y, pos []float32) []float64 {
	out := make([]float64, len(y)/2)
	for i := range out {
		out[i] = geo.HaversineKm(float64(y[2*i]), float64(y[2*i+1]), float64(pos[2*i]), float64(pos[2*i+1]))
	}
	return out
}

// Calibration returns the shares of samples whose truth lies inside the
// predicted axis-aligned 1-sigma and 2-sigma ellipses.
func Calibration(y, pos, sigma []float32) (within1, within2 float64) {
	n := len(y) / 2
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	for i := range n {
		r2 := ellipseDist2(y, pos, sigma, i)
		if r2 <= 1 {
			within1++
		}
		if r2 <= 4 {
			within2++
		}
	}
	return within1 / float64(n), within2 / float64(n)
}

// ellipseDist2 is sample i's squared distance from its predicted position
// in units of its axis-aligned sigmas (floored at SigmaFloor): <= 1 inside
// the 1-sigma ellipse.
func ellipseDist2(y, pos, sigma []float32, i int) float64 {
	dLat := (float64(y[2*i]) - float64(pos[2*i])) / math.Max(float64(sigma[2*i]), SigmaFloor)
	dLon := (float64(y[2*i+1]) - float64(pos[2*i+1])) / math.Max(float64(sigma[2*i+1]), SigmaFloor)
	return dLat*dLat + dLon*dLon
}

// TrainMetrics are training-batch metrics averaged over the steps since the
// previous evaluation (batch statistics: dropout on, BatchNorm in training
// mode).
type TrainMetrics struct {
	Loss      float64 `json:"loss"`
	MSETerm   float64 `json:"mse_term"`
	LogTerm   float64 `json:"log_term"`
	MAE       float64 `json:"mae"`
	SigmaMean float64 `json:"sigma_mean"`
}

// EpochMetrics is one evaluation point: one line of rundir.MetricsFile.
type EpochMetrics struct {
	Epoch        int          `json:"epoch"`
	Step         int64        `json:"step"`
	Train        TrainMetrics `json:"-"`
	Val          EvalMetrics  `json:"-"`
	LR           float64      `json:"lr"`
	SamplesPerS  float64      `json:"samples_per_s"`
	EpochSeconds float64      `json:"epoch_seconds"`
	Best         bool         `json:"best"`
	// HoldoutKmMedian is the median km error on the calibration holdout
	// (0 without one).
	HoldoutKmMedian float64 `json:"-"`
}

// Flat returns the metrics as the flat keys of a metrics line:
// epoch, step, lr, samples_per_s, epoch_seconds, best, train/*, val/*
// (val/baseline_<name>_km_* for baselines).
func (e EpochMetrics) Flat() map[string]any {
	m := map[string]any{
		"epoch": e.Epoch, "step": e.Step, "lr": e.LR,
		"samples_per_s": e.SamplesPerS, "epoch_seconds": e.EpochSeconds, "best": e.Best,
		"train/loss": e.Train.Loss, "train/mse_term": e.Train.MSETerm, "train/log_term": e.Train.LogTerm,
		"train/mae": e.Train.MAE, "train/sigma_mean": e.Train.SigmaMean,
		"val/loss": e.Val.Loss, "val/mse_term": e.Val.MSETerm, "val/log_term": e.Val.LogTerm,
		"val/mae": e.Val.MAE, "val/sigma_mean": e.Val.SigmaMean, "val/sigma_min": e.Val.SigmaMin,
		"val/sigma_max": e.Val.SigmaMax, "val/position_error_mean": e.Val.KmMean,
		"val/position_error_std": e.Val.KmStd, "val/km_median": e.Val.KmMedian, "val/km_p90": e.Val.KmP90,
		"val/within_1sigma": e.Val.Within1Sigma, "val/within_2sigma": e.Val.Within2Sigma,
	}
	if e.HoldoutKmMedian > 0 {
		m["holdout/km_median"] = e.HoldoutKmMedian
	}
	for _, b := range e.Val.Baselines {
		if b.NA != "" {
			continue
		}
		p := "val/baseline_" + b.Name
		m[p+"_km_mean"], m[p+"_km_median"], m[p+"_km_p90"] = b.KmMean, b.KmMedian, b.KmP90
		if b.Within1Sigma != nil {
			m[p+"_within_1sigma"] = *b.Within1Sigma
		}
	}
	for k, v := range m { // JSON has no NaN/Inf.
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			m[k] = nil
		}
	}
	return m
}

// Summary is the outcome of a run: the run directory's summary record
// (rundir.Summary, written by Train) with its text form.
type Summary rundir.Summary

// WriteText prints the summary as a text table.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("run dir", "%s", s.RunDir)
	row("backend", "%s", s.Backend)
	row("model", "%s, %d parameters", s.Preset, s.Params)
	row("stopped", "%s after epoch %d (step %d, %d steps/epoch)", s.StopReason, s.Epochs, s.Steps, s.StepsPerEpoch)
	by := TrainConfig{SelectBy: s.SelectedBy}.selectBy() // older summaries have none
	row("best", "epoch %d (step %d, by %s), val loss %.4f, median %.2f km", s.BestEpoch, s.BestStep, by, s.Val.Loss, s.Val.KmMedian)
	row("throughput", "%.1f samples/s", s.SamplesPerS)
	row("val samples", "%d", s.Val.N)
	if e := s.Estimators; e != nil {
		fit := fmt.Sprintf("fitted on %d sessions (%s)", e.FitSessions, e.FitSource)
		if e.Fingerprint != nil {
			fit += fmt.Sprintf(", fingerprint k=%d", e.Fingerprint.K)
		}
		row("baselines", "%s", fit)
		if e.OracleWorld != "" {
			row("oracle world", "%s", e.OracleWorld)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return WriteEvalTable(w, s.Val)
}

// WriteEstimatorTable prints the estimator table: km mean, median, p90 and
// the share inside the estimator's own 1-sigma ellipse, for LocalizationNet
// (when net is not nil) and every row, then the n/a rows' reasons.
func WriteEstimatorTable(w io.Writer, net *EvalMetrics, rows []rundir.BaselineMetrics) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "estimator\tkm mean\tkm median\tkm p90\tinside 1-sigma\n")
	if net != nil {
		fmt.Fprintf(tw, "LocalizationNet\t%.2f\t%.2f\t%.2f\t%.1f%%\n", net.KmMean, net.KmMedian, net.KmP90, 100*net.Within1Sigma)
	}
	var na []string
	for _, b := range rows {
		if b.NA != "" {
			fmt.Fprintf(tw, "%s\tn/a\tn/a\tn/a\t\n", b.Name)
			na = append(na, fmt.Sprintf("%s n/a: %s", b.Name, b.NA))
			continue
		}
		in := "-"
		if b.Within1Sigma != nil {
			in = fmt.Sprintf("%.1f%%", 100**b.Within1Sigma)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%s\n", b.Name, b.KmMean, b.KmMedian, b.KmP90, in)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range na {
		fmt.Fprintln(w, l)
	}
	return nil
}

// WriteEvalTable prints the estimator table (km mean, median, p90 and
// the share inside the estimator's own 1-sigma ellipse, for
// LocalizationNet and every baseline; n/a rows with their reason) and the
// model's calibration: what train prints at the end and evaluate prints.
func WriteEvalTable(w io.Writer, v EvalMetrics) error {
	if err := WriteEstimatorTable(w, &v, v.Baselines); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\ncalibration\tobserved\tGaussian\n")
	fmt.Fprintf(tw, "inside 1-sigma\t%.1f%%\t%.1f%%\n", 100*v.Within1Sigma, 100*GaussianWithin1Sigma)
	fmt.Fprintf(tw, "inside 2-sigma\t%.1f%%\t%.1f%%\n", 100*v.Within2Sigma, 100*GaussianWithin2Sigma)
	fmt.Fprintf(tw, "sigma (deg)\tmean %.4f\tmin %.4f, max %.4f\n", v.SigmaMean, v.SigmaMin, v.SigmaMax)
	return tw.Flush()
}

// String returns WriteText's table.
func (s *Summary) String() string {
	var b strings.Builder
	_ = s.WriteText(&b)
	return b.String()
}
