package trainer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"
)

// Default input shape per sample: 7 receivers, 128 mel bands, 32 frames.
const (
	DefaultReceivers = 7
	DefaultMels      = 128
	DefaultFrames    = 32
)

// Split is one side (train or val) of a dataset: X is [N, receivers, n_mels,
// frames] row-major, Y is [N, 2] (lat, lon degrees), IDs one per sample
// (optional).
type Split struct {
	X   []float32
	Y   []float32
	IDs []string
}

// Len returns the number of samples.
func (s Split) Len() int { return len(s.Y) / 2 }

// holdOut splits s into (kept, held): evenly spaced samples, share of the
// total, go to held (sample i when floor((i+1)*share) > floor(i*share)),
// the rest keep their order in kept.
func holdOut(s Split, shape [3]int, share float64) (kept, held Split) {
	per := sampleSize(shape)
	for i := range s.Len() {
		dst := &kept
		if math.Floor(float64(i+1)*share) > math.Floor(float64(i)*share) {
			dst = &held
		}
		dst.X = append(dst.X, s.X[i*per:(i+1)*per]...)
		dst.Y = append(dst.Y, s.Y[2*i:2*i+2]...)
		if s.IDs != nil {
			dst.IDs = append(dst.IDs, s.IDs[i])
		}
	}
	return kept, held
}

// Baseline holds a classical estimator's positions for the val set, [N, 2]
// (lat, lon degrees) in val order; used for comparison only.
type Baseline struct {
	Name      string
	Positions []float32
	// Sigmas are the estimator's own 1-sigma (degrees, [N, 2] like
	// Positions) when it gives one (the oracle); nil otherwise.
	Sigmas []float32
	// NA says why the estimator has no positions on this set (Positions
	// is then nil); it is reported as n/a.
	NA string
}

// Data is what Train consumes. It mirrors the dataset package's contract
// with plain slices, so this package does not depend on it.
type Data struct {
	Train Split
	Val   Split
	// ValBaselines are optional classical baselines on Val (e.g. "centroid",
	// "least_squares").
	ValBaselines []Baseline
	// InputShape is [receivers, n_mels, frames]; zero means [7, 128, 32].
	InputShape [3]int
}

func (d Data) inputShape() [3]int {
	if d.InputShape == ([3]int{}) {
		return [3]int{DefaultReceivers, DefaultMels, DefaultFrames}
	}
	return d.InputShape
}

func sampleSize(shape [3]int) int { return shape[0] * shape[1] * shape[2] }

// Validate checks that the slices agree with each other and InputShape.
func (d Data) Validate() error {
	shape := d.inputShape()
	for _, v := range shape {
		if v <= 0 {
			return fmt.Errorf("trainer: data: input shape must be positive, got %v", shape)
		}
	}
	per := sampleSize(shape)
	for _, s := range []struct {
		name  string
		split Split
	}{{"train", d.Train}, {"val", d.Val}} {
		n := s.split.Len()
		if n == 0 || len(s.split.Y)%2 != 0 {
			return fmt.Errorf("trainer: data: %s: Y must be [N, 2] with N > 0, got %d values", s.name, len(s.split.Y))
		}
		if len(s.split.X) != n*per {
			return fmt.Errorf("trainer: data: %s: X has %d values, want N*%v = %d", s.name, len(s.split.X), shape, n*per)
		}
		if s.split.IDs != nil && len(s.split.IDs) != n {
			return fmt.Errorf("trainer: data: %s: %d IDs for %d samples", s.name, len(s.split.IDs), n)
		}
		for i, y := range s.split.Y {
			if math.IsNaN(float64(y)) || math.IsInf(float64(y), 0) {
				return fmt.Errorf("trainer: data: %s: label %d is not finite", s.name, i/2)
			}
		}
	}
	for _, b := range d.ValBaselines {
		if b.NA != "" && b.Positions == nil {
			continue
		}
		if len(b.Positions) != len(d.Val.Y) || (b.Sigmas != nil && len(b.Sigmas) != len(d.Val.Y)) {
			return fmt.Errorf("trainer: data: baseline %q has %d values, want %d ([N, 2] of val)", b.Name, len(b.Positions), len(d.Val.Y))
		}
	}
	return nil
}

// trainDataset is an endless train.Dataset of shuffled batches. The batch
// served at global step s is fully determined by (seed, s): epoch s/spe
// uses permutation PCG(seed, epoch) and position s%spe in it. That is what
// makes a resumed run see exactly the batches an uninterrupted run sees.
type trainDataset struct {
	ctx       context.Context
	split     Split
	shape     [3]int
	batch     int
	seed      int64
	startStep int64

	permEpoch int64
	perm      []int
}

var _ train.Dataset = (*trainDataset)(nil)

func (d *trainDataset) Name() string { return "heimdall-train" }

func (d *trainDataset) stepsPerEpoch() int64 { return int64(d.split.Len() / d.batch) }

func (d *trainDataset) permutation(epoch int64) []int {
	if d.perm == nil || d.permEpoch != epoch {
		r := rand.New(rand.NewPCG(uint64(d.seed), uint64(epoch)))
		d.perm = r.Perm(d.split.Len())
		d.permEpoch = epoch
	}
	return d.perm
}

// batchAt builds fresh tensors for the batch of global step index s (0-based):
// train.Trainer.TrainStep takes ownership of (donates) them.
func (d *trainDataset) batchAt(s int64) train.Batch {
	spe := d.stepsPerEpoch()
	perm := d.permutation(s / spe)
	offset := int(s%spe) * d.batch
	idx := perm[offset : offset+d.batch]
	x, y := gather(d.split, d.shape, idx, d.batch)
	return train.Batch{
		Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, d.batch, d.shape[0], d.shape[1], d.shape[2])},
		Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(y, d.batch, 2)},
	}
}

// prefetch is how many batches are built ahead of the training step.
const prefetch = 2

// Iter serves the batches from startStep on. A goroutine builds the next
// batches (gather + tensor creation) while the current step runs, so the
// input pipeline stays off the critical path; the order, and so every
// batch, is the same as without prefetching.
func (d *trainDataset) Iter() iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		ready := make(chan train.Batch, prefetch)
		done := make(chan struct{})
		defer close(done)
		go func() {
			defer close(ready)
			for s := d.startStep; ; s++ {
				if d.ctx.Err() != nil {
					return
				}
				b := d.batchAt(s)
				select {
				case ready <- b:
				case <-done:
					return
				}
			}
		}()
		for {
			b, ok := <-ready
			if err := d.ctx.Err(); err != nil || !ok {
				if err == nil {
					err = errors.New("batch producer stopped")
				}
				yield(train.Batch{}, fmt.Errorf("trainer: data: %w", err))
				return
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

// gather copies the samples idx into new [size, ...] slices; rows past
// len(idx) are left zero (padding).
func gather(s Split, shape [3]int, idx []int, size int) (x, y []float32) {
	per := sampleSize(shape)
	x = make([]float32, size*per)
	y = make([]float32, size*2)
	for i, j := range idx {
		copy(x[i*per:(i+1)*per], s.X[j*per:(j+1)*per])
		copy(y[i*2:i*2+2], s.Y[j*2:j*2+2])
	}
	return x, y
}
