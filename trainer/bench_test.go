package trainer

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/train"

	"github.com/heimdall-sdr/trainer/backend"
)

// BenchmarkTrainStep times one training step (forward, backward, AdamW) of
// the default `cpu` preset at batch 32 on the [7, 128, 32] input, on the
// backend backend.Resolve picks ($GOMLX_BACKEND, else the fastest installed
// CPU backend, else the Go backend, which is slow here).
// It reports samples/s and ms/step.
func BenchmarkTrainStep(b *testing.B) {
	spec, why, err := backend.Resolve("", backend.DefaultSearchRoots())
	if err != nil {
		b.Fatal(err)
	}
	backend, err := backend.New(spec)
	if err != nil {
		b.Skipf("backend %s (%s) unavailable: %v", spec, why, err)
	}
	const batch = 32
	mcfg, tcfg := DefaultModelConfig(), DefaultTrainConfig()
	shape := [3]int{DefaultReceivers, DefaultMels, DefaultFrames}
	store, err := newStore(tcfg.Seed, RunConfig{Model: mcfg, Train: tcfg, InputShape: shape})
	if err != nil {
		b.Fatal(err)
	}
	trainer := newTrainer(backend, store, mcfg, tcfg, 1_000_000)
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*sampleSize(shape))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	y := make([]float32, 2*batch)
	for i := range batch {
		y[2*i], y[2*i+1] = 45+float32(r.Float64()-0.5), 8+float32(r.Float64()-0.5)
	}
	step := func() {
		// TrainStep takes ownership of the batch tensors: new ones each step.
		in := tensors.FromFlatDataAndDimensions(append([]float32(nil), x...), batch, shape[0], shape[1], shape[2])
		lab := tensors.FromFlatDataAndDimensions(append([]float32(nil), y...), batch, 2)
		metrics, err := trainer.TrainStep(train.Batch{Inputs: []*tensors.Tensor{in}, Labels: []*tensors.Tensor{lab}})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range metrics {
			_ = m.FinalizeAll()
		}
	}
	step() // Compile.
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	perStep := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(batch/perStep, "samples/s")
	b.ReportMetric(perStep*1e3, "ms/step")
	b.Logf("backend %s (%s), cpu preset %d params", spec, why, ParamCount(mcfg, shape[0]))
}
