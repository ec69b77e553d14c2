package devicecheck

// The stages: devices, train, latency, parity_tf32_off and parity. Each
// records its results through rec (see check.runStage), never directly.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/bench"
	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/trainer"
)

// stageList is the check's stages in order, with the reasons to skip some.
func (c *check) stageList() []stage {
	cuda := backend.IsCUDASpec(c.o.Backend)
	return []stage{
		{name: "devices", run: c.devices},
		{name: "train", run: c.train},
		{name: "latency", run: c.latency},
		{name: "parity_tf32_off", run: c.parityTF32Off,
			skip: skipIf(c.o.NoTF32Parity || !cuda, "not a CUDA backend or not asked for")},
		{name: "parity", run: c.parity, skip: skipIf(c.o.CPUBackend == "none", "cpu_backend none")},
	}
}

func skipIf(cond bool, reason string) string {
	if cond {
		return reason
	}
	return ""
}

// state returns what earlier stages handed on.
func (c *check) state() (*backend.Opened, *trainer.Model) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.model
}

// devices opens the backend under test and lists its devices.
func (c *check) devices(_ context.Context, rec recorder) error {
	b, err := backend.Open(backend.Options{Spec: c.o.Backend, GPU: c.o.GPU})
	if err != nil {
		return err
	}
	info := b.Devices()
	if !rec(func(c *check) { c.opened, c.rep.Devices = b, &info }) {
		return nil // timed out: the report no longer wants it.
	}
	fmt.Fprint(c.o.Log, info.String())
	return nil
}

// train trains o.Preset for o.Steps steps on random data in the run directory.
func (c *check) train(ctx context.Context, rec recorder) error {
	b, _ := c.state()
	o := c.o
	const stepsPerEpoch = 4
	nTrain, nVal := stepsPerEpoch*o.Batch, o.Batch
	data := trainer.Data{
		Train:      trainer.Split{X: randomInputs(o.Seed, nTrain, o.InputShape), Y: randomLabels(o.Seed, nTrain)},
		Val:        trainer.Split{X: randomInputs(o.Seed+1, nVal, o.InputShape), Y: randomLabels(o.Seed+1, nVal)},
		InputShape: o.InputShape,
	}
	mcfg := trainer.DefaultModelConfig()
	mcfg.Preset = o.Preset
	tcfg := trainer.DefaultTrainConfig()
	tcfg.BatchSize = o.Batch
	tcfg.Epochs = (o.Steps + stepsPerEpoch - 1) / stepsPerEpoch
	tcfg.MaxSteps = o.Steps
	tcfg.EvalEvery = tcfg.Epochs // evaluate (and checkpoint) once, at the end.
	tcfg.Patience = 0
	tcfg.KeepBest = 1
	tcfg.Seed = o.Seed
	tr := &TrainReport{Preset: o.Preset, Params: trainer.ParamCountShape(mcfg, o.InputShape), InputShape: o.InputShape, Batch: o.Batch}
	t0 := time.Now()
	sum, err := trainer.Train(ctx, b.Backend, data, mcfg, tcfg, trainer.RunOptions{RunDir: c.runDir, Log: o.Log, NoPlots: true})
	tr.WallSeconds = time.Since(t0).Seconds()
	if err == nil {
		tr.Steps, tr.SamplesPerS, tr.ValLoss = sum.Steps, sum.SamplesPerS, sum.Val.Loss
		if sum.SamplesPerS > 0 {
			tr.MedianStepMs = 1000 * float64(o.Batch) / sum.SamplesPerS
		}
	}
	if !rec(func(c *check) { c.rep.Train = tr }) || err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "device-check: trained %d steps: median step %.1f ms, %.0f samples/s, %.1f s wall\n",
		tr.Steps, tr.MedianStepMs, tr.SamplesPerS, tr.WallSeconds)
	return nil
}

// latency loads the trained checkpoint and times inference at each batch size.
func (c *check) latency(_ context.Context, rec recorder) error {
	b, _ := c.state()
	m, err := trainer.LoadModel(b.Backend, c.runDir)
	if err != nil {
		return err
	}
	if !rec(func(c *check) { c.model = m }) {
		return nil
	}
	for _, bs := range c.o.LatencyBatches {
		lr, err := measureLatency(m, bs, c.o.LatencyRuns, c.o.InputShape, c.o.Seed+int64(bs))
		if err != nil {
			return fmt.Errorf("batch %d: %w", bs, err)
		}
		if !rec(func(c *check) { c.rep.Latency = append(c.rep.Latency, lr) }) {
			return nil
		}
		fmt.Fprintf(c.o.Log, "device-check: latency batch %d: p50 %.2f ms p95 %.2f ms (first call %.0f ms)\n", bs, lr.P50Ms, lr.P95Ms, lr.CompileMs)
	}
	return nil
}

// parityInputs are the samples both parity stages compare.
func (c *check) parityInputs() []float32 {
	return randomInputs(c.o.Seed+1000, c.o.ParitySamples, c.o.InputShape)
}

// gpuOutputs returns Backend's outputs on the parity inputs, computing them once.
func (c *check) gpuOutputs(rec recorder) (pos, sig []float32, err error) {
	c.mu.Lock()
	pos, sig, m := c.gpuPos, c.gpuSig, c.model
	c.mu.Unlock()
	if pos != nil {
		return pos, sig, nil
	}
	if pos, sig, err = m.Predict(c.parityInputs(), c.o.ParitySamples); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.o.Backend, err)
	}
	rec(func(c *check) { c.gpuPos, c.gpuSig = pos, sig })
	return pos, sig, nil
}

// parityTF32Off compares with the same GPU backend with TF32 off.
func (c *check) parityTF32Off(_ context.Context, rec recorder) error {
	pos, sig, err := c.gpuOutputs(rec)
	if err != nil {
		return err
	}
	noTF32 := *c.o.GPU
	noTF32.TF32 = false
	p, err := c.parityAgainst(backend.Options{Spec: c.o.Backend, GPU: &noTF32}, pos, sig)
	rec(func(c *check) { c.rep.ParityTF32 = p })
	return err
}

// parity compares with the CPU reference backend.
func (c *check) parity(_ context.Context, rec recorder) error {
	pos, sig, err := c.gpuOutputs(rec)
	if err != nil {
		return err
	}
	p, err := c.parityAgainst(backend.Options{Spec: c.o.CPUBackend}, pos, sig)
	rec(func(c *check) { c.rep.Parity = p })
	return err
}

// parityAgainst loads the run's checkpoint on another backend, predicts the
// parity inputs and compares with (pos, sig).
func (c *check) parityAgainst(bo backend.Options, pos, sig []float32) (*ParityReport, error) {
	t0 := time.Now()
	b, err := backend.Open(bo)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	m, err := trainer.LoadModel(b.Backend, c.runDir)
	if err != nil {
		return nil, err
	}
	n := c.o.ParitySamples
	rp, rs, err := m.Predict(c.parityInputs(), n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Spec, err)
	}
	p := CompareOutputs(pos, sig, rp, rs)
	p.Reference, p.Samples, p.ReferenceSecond = b.Spec, n, time.Since(t0).Seconds()
	return &p, nil
}

// measureLatency times m.Predict at batch size bs: one timed warm-up
// (compile) call, then runs calls timed with bench.Time.
func measureLatency(m *trainer.Model, bs, runs int, shape [3]int, seed int64) (LatencyReport, error) {
	x := randomInputs(seed, bs, shape)
	t0 := time.Now()
	if _, _, err := m.Predict(x, bs); err != nil {
		return LatencyReport{Batch: bs, Runs: runs}, err
	}
	first := ms(time.Since(t0))
	times, err := bench.Time(m, x, bs, runs, 0, nil)
	if err != nil {
		return LatencyReport{Batch: bs, Runs: runs, CompileMs: first}, err
	}
	return latencyReport(bs, first, times), nil
}

// latencyReport summarises call times (ms) with bench.Summarize: p50 and
// p95 are stats.Percentile, the same as the bench report's; samples/s is
// batch / p50.
func latencyReport(bs int, firstMs float64, times []float64) LatencyReport {
	l := bench.Summarize(times, bs)
	lr := LatencyReport{Batch: bs, Runs: len(times), CompileMs: firstMs, P50Ms: l.P50ms, P95Ms: l.P95ms, MeanMs: l.Meanms}
	if lr.P50Ms > 0 {
		lr.SamplesPS = 1000 * float64(bs) / lr.P50Ms
	}
	return lr
}

// CompareOutputs returns the max/mean absolute differences of two models'
// positions and sigmas (each [n, 2] flat, degrees).
func CompareOutputs(pos, sig, refPos, refSig []float32) ParityReport {
	var p ParityReport
	diff := func(a, b []float32) (maxD, sum float64, n int) {
		for i := range min(len(a), len(b)) {
			d := math.Abs(float64(a[i]) - float64(b[i]))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			maxD = max(maxD, d)
			sum += d
		}
		return maxD, sum, min(len(a), len(b))
	}
	pm, ps, pn := diff(pos, refPos)
	sm, ss, sn := diff(sig, refSig)
	p.PosMaxAbsDiff, p.SigMaxAbsDiff, p.MaxAbsDiff = pm, sm, max(pm, sm)
	if pn > 0 {
		p.PosMeanAbsDiff = ps / float64(pn)
	}
	if sn > 0 {
		p.SigMeanAbsDiff = ss / float64(sn)
	}
	if pn+sn > 0 {
		p.MeanAbsDiff = (ps + ss) / float64(pn+sn)
	}
	return p
}

// randomInputs returns n standard-normal samples of shape (features are
// normalised log-mel values, so N(0, 1) has their scale).
func randomInputs(seed int64, n int, shape [3]int) []float32 {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	x := make([]float32, n*shape[0]*shape[1]*shape[2])
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// randomLabels returns n positions within ~0.5 degrees of the receivers' centroid.
func randomLabels(seed int64, n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	lat, lon := geo.Centroid(geo.Receivers)
	y := make([]float32, 2*n)
	for i := range n {
		y[2*i] = float32(lat + 0.5*r.NormFloat64())
		y[2*i+1] = float32(lon + 0.5*r.NormFloat64())
	}
	return y
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
