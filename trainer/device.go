package trainer

// Devices and the device check.
//
// DescribeDevices prints what a backend runs on (PJRT's device descriptions
// and, for CUDA, the GPU name and memory from nvidia-smi). RunDeviceCheck is
// what `heimdall device-check` (scripts/gpu-check.sh run) does on a GPU
// machine: train a preset for a fixed number of steps on random data, time
// the steps and inference at a few batch sizes, then run the same
// checkpoint on a CPU backend and compare the outputs; every stage is
// guarded by a timeout and the JSON report is rewritten after each one.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"

	"github.com/heimdall-sdr/trainer/geo"
)

// GPUInfo is one GPU as nvidia-smi reports it.
type GPUInfo struct {
	Index          int    `json:"index"`
	Name           string `json:"name"`
	MemoryTotalMiB int    `json:"memory_total_mib"`
	MemoryUsedMiB  int    `json:"memory_used_mib"`
	Driver         string `json:"driver"`
}

// nvidiaSMIQuery is the nvidia-smi query QueryGPUs runs (CSV, no header, no units).
var nvidiaSMIQuery = []string{"--query-gpu=index,name,memory.total,memory.used,driver_version", "--format=csv,noheader,nounits"}

// QueryGPUs lists the GPUs with nvidia-smi (nil and an error without it).
func QueryGPUs() ([]GPUInfo, error) {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		return nil, fmt.Errorf("nvidia-smi not found: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nvidia-smi", nvidiaSMIQuery...).Output()
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	return parseNvidiaSMI(string(out))
}

// parseNvidiaSMI parses the CSV of nvidiaSMIQuery.
func parseNvidiaSMI(out string) ([]GPUInfo, error) {
	var gpus []GPUInfo
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 5 {
			return gpus, fmt.Errorf("nvidia-smi: unexpected line %q", line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		g := GPUInfo{Name: f[1], Driver: f[4]}
		var errs [3]error
		g.Index, errs[0] = strconv.Atoi(f[0])
		g.MemoryTotalMiB, errs[1] = strconv.Atoi(f[2])
		g.MemoryUsedMiB, errs[2] = strconv.Atoi(f[3])
		if err := errors.Join(errs[:]...); err != nil {
			return gpus, fmt.Errorf("nvidia-smi: line %q: %w", line, err)
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

// DeviceInfo is what a backend runs on.
type DeviceInfo struct {
	Backend string   `json:"backend"` // backend.Description()
	Devices []string `json:"devices"` // PJRT device descriptions, one per addressable device.
	// GPUs (CUDA backends only) come from nvidia-smi; GPUError says why they are missing.
	GPUs     []GPUInfo `json:"gpus,omitempty"`
	GPUError string    `json:"gpu_error,omitempty"`
}

// DescribeBackend collects the DeviceInfo of backend; cuda says whether to ask nvidia-smi.
func DescribeBackend(backend compute.Backend, cuda bool) DeviceInfo {
	info := DeviceInfo{Backend: backend.Description()}
	for i := range backend.NumDevices() {
		info.Devices = append(info.Devices, backend.DeviceDescription(compute.DeviceNum(i)))
	}
	if cuda {
		gpus, err := QueryGPUs()
		info.GPUs = gpus
		if err != nil {
			info.GPUError = err.Error()
		}
	}
	return info
}

// String prints one line per device and GPU.
func (d DeviceInfo) String() string {
	var b strings.Builder
	for i, dev := range d.Devices {
		fmt.Fprintf(&b, "device %d: %s\n", i, dev)
	}
	for _, g := range d.GPUs {
		fmt.Fprintf(&b, "GPU %d: %s, %d MiB memory (%d MiB in use), driver %s\n", g.Index, g.Name, g.MemoryTotalMiB, g.MemoryUsedMiB, g.Driver)
	}
	if d.GPUError != "" {
		fmt.Fprintf(&b, "GPU memory unknown: %s\n", d.GPUError)
	}
	return b.String()
}

// DescribeDevices is DescribeBackend(backend, IsCUDASpec(spec)).String().
func DescribeDevices(backend compute.Backend, spec string) string {
	return DescribeBackend(backend, IsCUDASpec(spec) || strings.Contains(strings.ToLower(backend.Description()), "cuda")).String()
}

// DeviceCheckOptions configure RunDeviceCheck. Zero fields take the
// defaults of DefaultDeviceCheckOptions.
type DeviceCheckOptions struct {
	// Backend is the backend under test ("xla:cuda"); CPUBackend is the
	// reference for the parity check ("go", "xla:cpu"; "none" skips it).
	Backend, CPUBackend string
	// GPU are the CUDA client options (ignored by CPU backends).
	GPU GPUOptions
	// Preset is the model preset trained and timed.
	Preset string
	// Steps training steps at batch Batch; the step time is the median of all
	// steps (the first, which compiles, is one of Steps).
	Steps, Batch int
	// LatencyBatches are the inference batch sizes timed, LatencyRuns calls each
	// after one warm-up (compile) call.
	LatencyBatches []int
	LatencyRuns    int
	// ParitySamples are run on Backend and CPUBackend and compared.
	ParitySamples int
	// TF32Parity also runs the parity samples on Backend with tf32=false (CUDA only).
	TF32Parity bool
	// InputShape is [receivers, n_mels, frames]; zero means [7, 128, 32].
	InputShape [3]int
	Seed       int64
	// StageTimeouts per stage name ("devices", "train", "latency", "parity",
	// "parity_tf32_off"); missing ones use DefaultStageTimeouts.
	StageTimeouts map[string]time.Duration
	// WorkDir holds the training run (a temp dir when empty, removed after).
	WorkDir string
	// Out is the JSON report, rewritten after every stage ("" = none).
	Out string
	// Mode is recorded in the report ("cuda", "cpu-dry-run").
	Mode string
	Log  io.Writer
}

// DefaultStageTimeouts fit the whole check in ~7 minutes (see docs/GPU.md).
var DefaultStageTimeouts = map[string]time.Duration{
	"devices":         60 * time.Second,
	"train":           210 * time.Second,
	"latency":         60 * time.Second,
	"parity":          120 * time.Second,
	"parity_tf32_off": 30 * time.Second,
}

// DefaultDeviceCheckOptions is the GPU machine's check: base preset, 30
// steps at batch 32, inference at batch 1 and 32, 2 parity samples on the
// pure-Go backend (slow: ~10 GFLOP per base-preset sample).
func DefaultDeviceCheckOptions() DeviceCheckOptions {
	return DeviceCheckOptions{
		Backend: "xla:cuda", CPUBackend: "go", GPU: DefaultGPUOptions(),
		Preset: PresetBase, Steps: 30, Batch: 32,
		LatencyBatches: []int{1, 32}, LatencyRuns: 50, ParitySamples: 2, TF32Parity: true,
		InputShape: [3]int{DefaultReceivers, DefaultMels, DefaultFrames}, Seed: 1, Mode: "cuda",
	}
}

// CPUDryRunOptions exercise the same code on a CPU backend in seconds: the
// cpu preset on a small input, xla:cpu (or go when its plugin is missing) vs go.
func CPUDryRunOptions() DeviceCheckOptions {
	o := DefaultDeviceCheckOptions()
	o.Backend, o.Mode = "xla:cpu", "cpu-dry-run"
	if p, _ := FindCPUPlugin(DefaultSearchRoots()); p == "" || !DefaultSearchRoots().isCompiled("xla") {
		o.Backend = "go"
	}
	o.Preset, o.Steps, o.Batch = PresetCPU, 6, 8
	o.LatencyBatches, o.LatencyRuns, o.ParitySamples = []int{1, 8}, 5, 2
	o.InputShape = [3]int{DefaultReceivers, 32, 16}
	return o
}

// StageReport is one stage's outcome.
type StageReport struct {
	Status  string  `json:"status"` // "ok", "error", "timeout", "skipped", "running".
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// LatencyReport is the inference latency at one batch size (Model.Predict:
// host->device copy, run, device->host copy).
type LatencyReport struct {
	Batch     int     `json:"batch"`
	Runs      int     `json:"runs"`
	CompileMs float64 `json:"first_call_ms"` // includes JIT compilation.
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	MeanMs    float64 `json:"mean_ms"`
	SamplesPS float64 `json:"samples_per_s"` // batch / p50.
}

// ParityReport compares two backends' outputs on the same checkpoint and inputs.
type ParityReport struct {
	Reference       string  `json:"reference"`
	Samples         int     `json:"samples"`
	MaxAbsDiff      float64 `json:"max_abs_diff"` // over positions and sigmas (degrees).
	MeanAbsDiff     float64 `json:"mean_abs_diff"`
	PosMaxAbsDiff   float64 `json:"position_max_abs_diff_deg"`
	PosMeanAbsDiff  float64 `json:"position_mean_abs_diff_deg"`
	SigMaxAbsDiff   float64 `json:"sigma_max_abs_diff_deg"`
	SigMeanAbsDiff  float64 `json:"sigma_mean_abs_diff_deg"`
	ReferenceSecond float64 `json:"reference_seconds"` // load + run on the reference.
}

// TrainReport is the timed training run.
type TrainReport struct {
	Preset       string  `json:"preset"`
	Params       int     `json:"params"`
	InputShape   [3]int  `json:"input_shape"`
	Batch        int     `json:"batch"`
	Steps        int64   `json:"steps"`
	MedianStepMs float64 `json:"median_step_ms"`
	SamplesPerS  float64 `json:"samples_per_s"`
	WallSeconds  float64 `json:"wall_seconds"` // compile + steps + final evaluation + checkpoint.
	ValLoss      float64 `json:"val_loss"`
}

// DeviceCheckReport is the JSON report of RunDeviceCheck.
type DeviceCheckReport struct {
	Mode         string                  `json:"mode"`
	Started      string                  `json:"started"`
	Host         string                  `json:"host"`
	GoVersion    string                  `json:"go_version"`
	Backend      string                  `json:"backend"`
	CPUBackend   string                  `json:"cpu_backend"`
	GPUOptions   GPUOptions              `json:"gpu_options"`
	Devices      *DeviceInfo             `json:"devices,omitempty"`
	Train        *TrainReport            `json:"train,omitempty"`
	Latency      []LatencyReport         `json:"latency,omitempty"`
	Parity       *ParityReport           `json:"parity,omitempty"`
	ParityTF32   *ParityReport           `json:"parity_tf32_off,omitempty"`
	Stages       map[string]*StageReport `json:"stages"`
	TotalSeconds float64                 `json:"total_seconds"`
	Complete     bool                    `json:"complete"` // every stage ran (ok, error or skipped by design).
}

// ErrStageTimeout is returned by RunDeviceCheck when a stage ran out of time;
// that stage's goroutine may still hold the device, so the caller should exit.
var ErrStageTimeout = errors.New("device check: stage timed out")

// RunDeviceCheck runs the stages devices, train, latency, parity_tf32_off
// and parity (the slow CPU reference last), writing the report to o.Out after each. It returns the
// report and the first error; after a timeout the remaining stages are skipped
// and the error wraps ErrStageTimeout.
func RunDeviceCheck(ctx context.Context, o DeviceCheckOptions) (*DeviceCheckReport, error) {
	def := DefaultDeviceCheckOptions()
	if o.Backend == "" {
		o.Backend = def.Backend
	}
	if o.CPUBackend == "" {
		o.CPUBackend = def.CPUBackend
	}
	if o.Preset == "" {
		o.Preset = def.Preset
	}
	if o.Steps <= 0 {
		o.Steps = def.Steps
	}
	if o.Batch <= 0 {
		o.Batch = def.Batch
	}
	if len(o.LatencyBatches) == 0 {
		o.LatencyBatches = def.LatencyBatches
	}
	if o.LatencyRuns <= 0 {
		o.LatencyRuns = def.LatencyRuns
	}
	if o.ParitySamples <= 0 {
		o.ParitySamples = def.ParitySamples
	}
	if o.InputShape == ([3]int{}) {
		o.InputShape = def.InputShape
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	started := time.Now()
	host, _ := os.Hostname()
	rep := &DeviceCheckReport{
		Mode: o.Mode, Started: started.UTC().Format(time.RFC3339), Host: host, GoVersion: runtime.Version(),
		Backend: o.Backend, CPUBackend: o.CPUBackend, GPUOptions: o.GPU, Stages: map[string]*StageReport{},
	}
	names := []string{"devices", "train", "latency", "parity_tf32_off", "parity"}
	for _, n := range names {
		rep.Stages[n] = &StageReport{Status: "pending"}
	}
	var mu sync.Mutex // a timed-out stage's goroutine may still call save.
	save := func() {
		mu.Lock()
		defer mu.Unlock()
		rep.TotalSeconds = time.Since(started).Seconds()
		if o.Out != "" {
			if err := writeReport(o.Out, rep); err != nil {
				fmt.Fprintf(o.Log, "device-check: %v\n", err)
			}
		}
	}
	save()

	workDir := o.WorkDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "heimdall-device-check-")
		if err != nil {
			return rep, err
		}
		defer os.RemoveAll(d)
		workDir = d
	}
	runDir := filepath.Join(workDir, "run-"+started.UTC().Format("20060102_150405"))

	spec := WithGPUOptions(o.Backend, o.GPU)
	var backend compute.Backend
	var model *Model
	var gpuPos, gpuSig []float32
	parityX := randomInputs(o.Seed+1000, o.ParitySamples, o.InputShape)

	stages := []struct {
		name string
		run  func(context.Context) error
		skip string // reason, when the stage should not run.
	}{
		{name: "devices", run: func(context.Context) error {
			b, err := NewBackend(spec)
			if err != nil {
				return err
			}
			backend = b
			info := DescribeBackend(b, IsCUDASpec(o.Backend))
			rep.Devices = &info
			fmt.Fprint(o.Log, info.String())
			return nil
		}},
		{name: "train", run: func(ctx context.Context) error {
			tr, err := deviceCheckTrain(ctx, backend, o, runDir)
			rep.Train = tr
			return err
		}},
		{name: "latency", run: func(context.Context) error {
			m, err := LoadModel(backend, runDir)
			if err != nil {
				return err
			}
			model = m
			for _, bs := range o.LatencyBatches {
				lr, err := measureLatency(m, bs, o.LatencyRuns, o.InputShape, o.Seed+int64(bs))
				if err != nil {
					return fmt.Errorf("batch %d: %w", bs, err)
				}
				rep.Latency = append(rep.Latency, lr)
				fmt.Fprintf(o.Log, "device-check: latency batch %d: p50 %.2f ms p95 %.2f ms (first call %.0f ms)\n", bs, lr.P50Ms, lr.P95Ms, lr.CompileMs)
				save()
			}
			return nil
		}},
		{name: "parity_tf32_off", skip: skipIf(!o.TF32Parity || !IsCUDASpec(o.Backend), "not a CUDA backend or not asked for"), run: func(context.Context) error {
			if gpuPos == nil {
				var err error
				if gpuPos, gpuSig, err = model.Predict(parityX, o.ParitySamples); err != nil {
					return err
				}
			}
			noTF32 := o.GPU
			noTF32.TF32 = false
			p, err := parityAgainst(WithGPUOptions(o.Backend, noTF32), runDir, parityX, o.ParitySamples, gpuPos, gpuSig)
			rep.ParityTF32 = p
			return err
		}},
		{name: "parity", skip: skipIf(o.CPUBackend == "none", "cpu_backend none"), run: func(context.Context) error {
			var err error
			if gpuPos, gpuSig, err = model.Predict(parityX, o.ParitySamples); err != nil {
				return fmt.Errorf("%s: %w", o.Backend, err)
			}
			p, err := parityAgainst(o.CPUBackend, runDir, parityX, o.ParitySamples, gpuPos, gpuSig)
			rep.Parity = p
			return err
		}},
	}
	var firstErr error
	failed := map[string]bool{}
	for _, st := range stages {
		sr := rep.Stages[st.name]
		switch {
		case st.skip != "":
			sr.Status, sr.Error = "skipped", st.skip
			continue
		case errors.Is(firstErr, ErrStageTimeout):
			sr.Status, sr.Error = "skipped", "an earlier stage timed out"
			continue
		case st.name != "devices" && (failed["devices"] || failed["train"]),
			st.name == "parity_tf32_off" && failed["latency"],
			st.name == "parity" && failed["latency"]:
			sr.Status, sr.Error = "skipped", "needs an earlier stage that failed"
			continue
		}
		timeout := DefaultStageTimeouts[st.name]
		if t, ok := o.StageTimeouts[st.name]; ok && t > 0 {
			timeout = t
		}
		sr.Status = "running"
		save()
		fmt.Fprintf(o.Log, "device-check: stage %s (timeout %s)\n", st.name, timeout)
		t0 := time.Now()
		err := runWithTimeout(ctx, timeout, st.run)
		sr.Seconds = time.Since(t0).Seconds()
		switch {
		case err == nil:
			sr.Status = "ok"
		case errors.Is(err, ErrStageTimeout):
			sr.Status, sr.Error = "timeout", err.Error()
		default:
			sr.Status, sr.Error = "error", err.Error()
		}
		if err != nil {
			failed[st.name] = true
			fmt.Fprintf(o.Log, "device-check: stage %s: %v\n", st.name, err)
			if firstErr == nil {
				firstErr = fmt.Errorf("stage %s: %w", st.name, err)
			}
		}
		save()
	}
	if backend != nil && !errors.Is(firstErr, ErrStageTimeout) {
		backend.Finalize()
	}
	rep.Complete = !errors.Is(firstErr, ErrStageTimeout)
	save()
	return rep, firstErr
}

func skipIf(cond bool, reason string) string {
	if cond {
		return reason
	}
	return ""
}

// runWithTimeout runs fn in a goroutine and waits at most timeout. On a
// timeout fn's context is cancelled (training stops at the next step), but
// fn may keep running: a compiled XLA call cannot be interrupted.
func runWithTimeout(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- fn(ctx)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("%w after %s", ErrStageTimeout, timeout)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrStageTimeout, ctx.Err())
	}
}

// deviceCheckTrain trains o.Preset for o.Steps steps on random data in runDir.
func deviceCheckTrain(ctx context.Context, backend compute.Backend, o DeviceCheckOptions, runDir string) (*TrainReport, error) {
	const stepsPerEpoch = 4
	nTrain, nVal := stepsPerEpoch*o.Batch, o.Batch
	data := Data{
		Train:      Split{X: randomInputs(o.Seed, nTrain, o.InputShape), Y: randomLabels(o.Seed, nTrain)},
		Val:        Split{X: randomInputs(o.Seed+1, nVal, o.InputShape), Y: randomLabels(o.Seed+1, nVal)},
		InputShape: o.InputShape,
	}
	mcfg := DefaultModelConfig()
	mcfg.Preset = o.Preset
	tcfg := DefaultTrainConfig()
	tcfg.BatchSize = o.Batch
	tcfg.Epochs = (o.Steps + stepsPerEpoch - 1) / stepsPerEpoch
	tcfg.MaxSteps = o.Steps
	tcfg.EvalEvery = tcfg.Epochs // evaluate (and checkpoint) once, at the end.
	tcfg.Patience = 0
	tcfg.KeepBest = 1
	tcfg.Seed = o.Seed
	rep := &TrainReport{Preset: o.Preset, Params: ParamCountShape(mcfg, o.InputShape), InputShape: o.InputShape, Batch: o.Batch}
	t0 := time.Now()
	sum, err := Train(ctx, backend, data, mcfg, tcfg, RunOptions{RunDir: runDir, Log: o.Log, NoPlots: true})
	rep.WallSeconds = time.Since(t0).Seconds()
	if err != nil {
		return rep, err
	}
	rep.Steps, rep.SamplesPerS, rep.ValLoss = sum.Steps, sum.SamplesPerS, sum.Val.Loss
	if sum.SamplesPerS > 0 {
		rep.MedianStepMs = 1000 * float64(o.Batch) / sum.SamplesPerS
	}
	fmt.Fprintf(o.Log, "device-check: trained %d steps: median step %.1f ms, %.0f samples/s, %.1f s wall\n",
		rep.Steps, rep.MedianStepMs, rep.SamplesPerS, rep.WallSeconds)
	return rep, nil
}

// measureLatency times m.Predict at batch size bs: one warm-up call, then runs calls.
func measureLatency(m *Model, bs, runs int, shape [3]int, seed int64) (LatencyReport, error) {
	x := randomInputs(seed, bs, shape)
	lr := LatencyReport{Batch: bs, Runs: runs}
	t0 := time.Now()
	if _, _, err := m.Predict(x, bs); err != nil {
		return lr, err
	}
	lr.CompileMs = ms(time.Since(t0))
	d := make([]float64, 0, runs)
	for range runs {
		t := time.Now()
		if _, _, err := m.Predict(x, bs); err != nil {
			return lr, err
		}
		d = append(d, ms(time.Since(t)))
	}
	slices.Sort(d)
	lr.P50Ms, lr.P95Ms = percentile(d, 50), percentile(d, 95)
	sum := 0.0
	for _, v := range d {
		sum += v
	}
	lr.MeanMs = sum / float64(len(d))
	if lr.P50Ms > 0 {
		lr.SamplesPS = 1000 * float64(bs) / lr.P50Ms
	}
	return lr, nil
}

// parityAgainst loads the run's checkpoint on spec, predicts x and compares with (pos, sig).
func parityAgainst(spec, runDir string, x []float32, n int, pos, sig []float32) (*ParityReport, error) {
	t0 := time.Now()
	b, err := NewBackend(spec)
	if err != nil {
		return nil, err
	}
	defer b.Finalize()
	m, err := LoadModel(b, runDir)
	if err != nil {
		return nil, err
	}
	rp, rs, err := m.Predict(x, n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	p := CompareOutputs(pos, sig, rp, rs)
	p.Reference, p.Samples, p.ReferenceSecond = spec, n, time.Since(t0).Seconds()
	return &p, nil
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
	x := make([]float32, n*sampleSize(shape))
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

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeReport writes rep as indented JSON atomically; non-finite numbers
// (which JSON cannot hold) are written as -1, as in summary.json.
func writeReport(path string, rep *DeviceCheckReport) error {
	fixFloats(reflect.ValueOf(rep))
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// fixFloats replaces NaN and Inf float64s reachable from v by -1, in place.
func fixFloats(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			fixFloats(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fixFloats(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			fixFloats(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			fixFloats(v.MapIndex(k))
		}
	case reflect.Float64:
		if f := v.Float(); (math.IsNaN(f) || math.IsInf(f, 0)) && v.CanSet() {
			v.SetFloat(-1)
		}
	}
}
