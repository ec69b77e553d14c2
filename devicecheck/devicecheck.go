// Package devicecheck is the GPU device check: what `heimdall device-check`
// (scripts/gpu-check.sh run) does on a GPU machine. It trains a preset for a
// fixed number of steps on random data, times the steps and inference at a
// few batch sizes (bench's timing code, stats' percentile), then runs the
// same checkpoint on a CPU backend and compares the outputs. Every stage is
// guarded by a timeout and the JSON report is rewritten after each one, so a
// killed run still leaves a partial report.
package devicecheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/trainer"
)

// Options configure Run. The zero value is the GPU machine's check: the
// base preset on xla:cuda, 30 steps at batch 32, inference at batch 1 and 32
// (50 timed calls each), parity of 2 samples against the pure-Go backend and
// against the GPU with TF32 off.
type Options struct {
	// Backend is the backend under test; "" is "xla:cuda".
	Backend string
	// CPUBackend is the reference of the parity check; "" is "go" (slow:
	// ~10 GFLOP per base-preset sample), "none" skips the check.
	CPUBackend string
	// GPU are the CUDA client options (ignored by CPU backends); nil is
	// backend.DefaultGPUOptions().
	GPU *backend.GPUOptions
	// Preset is the model preset trained and timed; "" is "base".
	Preset string
	// Steps training steps (0: 30) at batch Batch (0: 32); the step time is
	// the median of all steps (the first, which compiles, is one of Steps).
	Steps, Batch int
	// LatencyBatches are the inference batch sizes timed (nil: 1 and 32),
	// LatencyRuns calls each (0: 50) after one warm-up (compile) call.
	LatencyBatches []int
	LatencyRuns    int
	// ParitySamples are run on Backend and CPUBackend and compared (0: 2).
	ParitySamples int
	// NoTF32Parity skips running the parity samples on Backend with TF32
	// off (a CUDA-only stage).
	NoTF32Parity bool
	// InputShape is [receivers, n_mels, frames]; zero is [7, 128, 32].
	InputShape [3]int
	// Seed of the random data; 0 is 1.
	Seed int64
	// StageTimeouts per stage name ("devices", "train", "latency", "parity",
	// "parity_tf32_off"); missing ones use DefaultStageTimeouts.
	StageTimeouts map[string]time.Duration
	// WorkDir holds the training run ("" is a temp dir, removed after).
	WorkDir string
	// Out is the JSON report, rewritten after every stage ("" is none).
	Out string
	// Mode is recorded in the report; "" is "cuda" ("cpu-dry-run" for CPUDryRun).
	Mode string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// DefaultStageTimeouts fit the whole check in ~7 minutes (see docs/GPU.md).
var DefaultStageTimeouts = map[string]time.Duration{
	"devices":         60 * time.Second,
	"train":           210 * time.Second,
	"latency":         60 * time.Second,
	"parity":          120 * time.Second,
	"parity_tf32_off": 30 * time.Second,
}

// Defaults returns o with every zero field set to its default (what Run uses).
func (o Options) Defaults() Options {
	set := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	setInt := func(n *int, def int) {
		if *n <= 0 {
			*n = def
		}
	}
	set(&o.Backend, "xla:cuda")
	set(&o.CPUBackend, "go")
	set(&o.Preset, trainer.PresetBase)
	set(&o.Mode, "cuda")
	setInt(&o.Steps, 30)
	setInt(&o.Batch, 32)
	setInt(&o.LatencyRuns, 50)
	setInt(&o.ParitySamples, 2)
	if len(o.LatencyBatches) == 0 {
		o.LatencyBatches = []int{1, 32}
	}
	if o.GPU == nil {
		g := backend.DefaultGPUOptions()
		o.GPU = &g
	}
	if o.InputShape == ([3]int{}) {
		o.InputShape = [3]int{trainer.DefaultReceivers, trainer.DefaultMels, trainer.DefaultFrames}
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// CPUDryRun are options that exercise the same code on a CPU backend in
// seconds: the cpu preset on a small input, xla:cpu (go when its plugin is
// missing or not compiled in) against go.
func CPUDryRun() Options {
	o := Options{Backend: "xla:cpu", Mode: "cpu-dry-run", Preset: trainer.PresetCPU, Steps: 6, Batch: 8,
		LatencyBatches: []int{1, 8}, LatencyRuns: 5, ParitySamples: 2,
		InputShape: [3]int{trainer.DefaultReceivers, 32, 16}}
	if _, _, err := backend.Config("xla:cpu", backend.DefaultSearchRoots()); err != nil || !backend.Compiled("xla") {
		o.Backend = "go"
	}
	return o
}

// ErrStageTimeout is returned by Run when a stage ran out of time; that
// stage's goroutine may still hold the device, so the caller should exit.
var ErrStageTimeout = errors.New("device check: stage timed out")

// Stage names, in the order they run (the slow CPU reference last).
var stageNames = []string{"devices", "train", "latency", "parity_tf32_off", "parity"}

// Run runs the stages devices, train, latency, parity_tf32_off and parity,
// writing the report to o.Out after each. It returns the report and the
// first error; after a timeout the remaining stages are skipped and the
// error wraps ErrStageTimeout. The report is not written to after Run
// returns, even by a timed-out stage that is still running.
func Run(ctx context.Context, o Options) (*Report, error) {
	c, err := newCheck(o)
	if err != nil {
		return c.rep, err
	}
	defer c.cleanup()
	return c.run(ctx)
}

// check is one run of the device check. The report and the state the
// stages hand to each other are guarded by mu: a stage runs in its own
// goroutine (see runWithTimeout) that may outlive its timeout.
type check struct {
	o       Options
	started time.Time
	runDir  string
	cleanup func()
	stages  sync.WaitGroup // stage goroutines, also the abandoned ones.

	mu      sync.Mutex
	rep     *Report
	current string // the stage whose results are recorded; "" after a timeout.
	opened  *backend.Opened
	model   *trainer.Model
	gpuPos  []float32 // Backend's outputs on the parity inputs.
	gpuSig  []float32
}

func newCheck(o Options) (*check, error) {
	o = o.Defaults()
	c := &check{o: o, started: time.Now(), cleanup: func() {}}
	host, _ := os.Hostname()
	c.rep = &Report{
		Mode: o.Mode, Started: c.started.UTC().Format(time.RFC3339), Host: host, GoVersion: runtime.Version(),
		Backend: o.Backend, CPUBackend: o.CPUBackend, GPUOptions: *o.GPU, Stages: map[string]*StageReport{},
	}
	for _, n := range stageNames {
		c.rep.Stages[n] = &StageReport{Status: "pending"}
	}
	c.save()
	workDir := o.WorkDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "heimdall-device-check-")
		if err != nil {
			return c, fmt.Errorf("device check: %w", err)
		}
		c.cleanup = func() { os.RemoveAll(d) }
		workDir = d
	}
	c.runDir = filepath.Join(workDir, "run-"+c.started.UTC().Format("20060102_150405"))
	return c, nil
}

// stage is one step of the check. run gets rec, which records results in
// the report (and state for later stages) unless the stage has timed out.
type stage struct {
	name string
	run  func(ctx context.Context, rec recorder) error
	skip string // reason, when the stage should not run.
}

// recorder applies fn to the check under its lock, and saves the report,
// when the stage calling it is still the current one; it reports whether it did.
type recorder func(fn func(c *check)) bool

func (c *check) run(ctx context.Context) (*Report, error) {
	var firstErr error
	failed := map[string]bool{}
	for _, st := range c.stageList() {
		if reason := skipReason(st, firstErr, failed); reason != "" {
			c.setStage(st.name, func(sr *StageReport) { sr.Status, sr.Error = "skipped", reason })
			continue
		}
		if err := c.runStage(ctx, st); err != nil {
			failed[st.name] = true
			fmt.Fprintf(c.o.Log, "device-check: stage %s: %v\n", st.name, err)
			if firstErr == nil {
				firstErr = fmt.Errorf("stage %s: %w", st.name, err)
			}
		}
	}
	timedOut := errors.Is(firstErr, ErrStageTimeout)
	c.mu.Lock()
	if c.opened != nil && !timedOut {
		c.opened.Close()
	}
	c.rep.Complete = !timedOut
	c.mu.Unlock()
	c.save()
	return c.rep, firstErr
}

// skipReason says why st does not run: skipped by design, after a timeout,
// or because a stage it needs failed; "" when it runs.
func skipReason(st stage, firstErr error, failed map[string]bool) string {
	switch {
	case st.skip != "":
		return st.skip
	case errors.Is(firstErr, ErrStageTimeout):
		return "an earlier stage timed out"
	case st.name != "devices" && (failed["devices"] || failed["train"]),
		(st.name == "parity_tf32_off" || st.name == "parity") && failed["latency"]:
		return "needs an earlier stage that failed"
	}
	return ""
}

// runStage runs st in its own goroutine under its timeout and records its
// status. After a timeout the goroutine may go on (a compiled XLA call
// cannot be interrupted), but nothing it records reaches the report.
func (c *check) runStage(ctx context.Context, st stage) error {
	timeout := DefaultStageTimeouts[st.name]
	if t, ok := c.o.StageTimeouts[st.name]; ok && t > 0 {
		timeout = t
	}
	c.mu.Lock()
	c.current = st.name
	c.rep.Stages[st.name].Status = "running"
	c.mu.Unlock()
	c.save()
	fmt.Fprintf(c.o.Log, "device-check: stage %s (timeout %s)\n", st.name, timeout)
	rec := func(fn func(c *check)) bool {
		c.mu.Lock()
		live := c.current == st.name
		if live {
			fn(c)
		}
		c.mu.Unlock()
		if live {
			c.save()
		}
		return live
	}
	t0 := time.Now()
	c.stages.Add(1)
	err := runWithTimeout(ctx, timeout, func(ctx context.Context) error {
		defer c.stages.Done()
		return st.run(ctx, rec)
	})
	c.mu.Lock()
	c.current = "" // from now on the stage's goroutine records nothing.
	sr := c.rep.Stages[st.name]
	sr.Seconds = time.Since(t0).Seconds()
	switch {
	case err == nil:
		sr.Status = "ok"
	case errors.Is(err, ErrStageTimeout):
		sr.Status, sr.Error = "timeout", err.Error()
	default:
		sr.Status, sr.Error = "error", err.Error()
	}
	c.mu.Unlock()
	c.save()
	return err
}

// setStage updates one stage's report and saves the report.
func (c *check) setStage(name string, fn func(*StageReport)) {
	c.mu.Lock()
	fn(c.rep.Stages[name])
	c.mu.Unlock()
	c.save()
}

// save rewrites o.Out (when set) with the report.
func (c *check) save() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.TotalSeconds = time.Since(c.started).Seconds()
	if c.o.Out == "" {
		return
	}
	if err := writeReport(c.o.Out, c.rep); err != nil {
		fmt.Fprintf(c.o.Log, "device-check: %v\n", err)
	}
}

// wait waits up to d for every stage goroutine, the abandoned ones
// included, to return; it reports whether they did.
func (c *check) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { c.stages.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
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
