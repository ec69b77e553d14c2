package onnx

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/trainer"
)

// DefaultMaxMAE is the largest mean absolute error per output an export
// accepts (HEIMDALL.md: < 1e-5).
const DefaultMaxMAE = 1e-5

// The parity record and its parts are the run directory's (rundir).
type (
	ErrStats     = rundir.ErrStats
	ParitySet    = rundir.ParitySet
	ParityReport = rundir.Parity
)

// Inputs is a named set of model inputs, X [N, receivers, n_mels, frames] flat.
type Inputs struct {
	Name string
	X    []float32
	N    int
}

// RandomInputs returns n standard-normal samples (the features are z-scored
// per channel, so this is their scale), seeded.
func RandomInputs(shape [3]int, n int, seed uint64) Inputs {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	x := make([]float32, n*shape[0]*shape[1]*shape[2])
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return Inputs{Name: "random", X: x, N: n}
}

// Predictor runs a model on a batch: x is [n, ...] flat.
type Predictor interface {
	Predict(x []float32, n int) (pos, sigma []float32, err error)
}

// Parity runs ref (the GoMLX model) and the ONNX session on every set in
// batches of batchSize and compares the outputs. Pass is set when every
// mean stays within maxMAE (0 means DefaultMaxMAE).
func Parity(ref Predictor, s *Session, sets []Inputs, batchSize int, maxMAE float64) (*ParityReport, error) {
	if maxMAE <= 0 {
		maxMAE = DefaultMaxMAE
	}
	rep := &ParityReport{MaxMAE: maxMAE, Pass: true, ORTVersion: RuntimeVersion()}
	per := s.SampleSize()
	for _, set := range sets {
		if set.N <= 0 {
			continue
		}
		if len(set.X) != set.N*per {
			return nil, fmt.Errorf("onnx: parity %s: %d values for %d samples of %d", set.Name, len(set.X), set.N, per)
		}
		ps := ParitySet{Name: set.Name, BatchSize: batchSize}
		var sumP, sumS, sumAbs float64
		var count int
		for start := 0; start < set.N; start += batchSize {
			end := min(start+batchSize, set.N)
			n := end - start
			x := set.X[start*per : end*per]
			gp, gs, err := ref.Predict(x, n)
			if err != nil {
				return nil, fmt.Errorf("onnx: parity %s: GoMLX model: %w", set.Name, err)
			}
			op, os, err := s.Run(x, n)
			if err != nil {
				return nil, fmt.Errorf("onnx: parity %s: %w", set.Name, err)
			}
			for i := range op {
				dp := math.Abs(float64(gp[i]) - float64(op[i]))
				ds := math.Abs(float64(gs[i]) - float64(os[i]))
				if math.IsNaN(dp) || math.IsNaN(ds) {
					dp, ds = math.Inf(1), math.Inf(1)
				}
				sumP += dp
				sumAbs += math.Abs(float64(gp[i]))
				sumS += ds
				ps.Positions.Max = math.Max(ps.Positions.Max, dp)
				ps.Uncertainties.Max = math.Max(ps.Uncertainties.Max, ds)
			}
			count += len(op)
			ps.Batches++
		}
		ps.Positions.Mean = sumP / float64(count)
		ps.Uncertainties.Mean = sumS / float64(count)
		ps.PositionsMeanAbs = sumAbs / float64(count)
		if !(ps.Positions.Mean <= maxMAE) || !(ps.Uncertainties.Mean <= maxMAE) {
			rep.Pass = false
		}
		rep.Sets = append(rep.Sets, ps)
	}
	return rep, nil
}

var _ Predictor = (*trainer.Model)(nil)
