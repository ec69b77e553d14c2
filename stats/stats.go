// Package stats holds the summary statistics the project reports: one
// percentile (NumPy's default, linear interpolation between closest ranks)
// and the mean/population standard deviation. Every latency, error and
// calibration figure (trainer metrics, baselines, bench, device check) is
// computed here so that "p95" means the same thing in every report.
package stats

import (
	"math"
	"slices"
)

// Percentile returns the p-th percentile (0..100) of values with linear
// interpolation between closest ranks (NumPy's default, method="linear");
// NaN when values is empty. values is not modified.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	s := values
	if !slices.IsSorted(s) {
		s = slices.Clone(values)
		slices.Sort(s)
	}
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}

// MeanStd returns the mean and population standard deviation of v; NaN, NaN
// when v is empty.
func MeanStd(v []float64) (mean, std float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}
