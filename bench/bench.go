// Package bench measures LocalizationNet inference: the native GoMLX
// backend (trainer.Model.Predict) against ONNX Runtime (onnx.Session) on the
// same inputs, per batch size: warm-up, then latency percentiles and
// throughput, the speedup native/ORT, parity numbers and machine info; as a
// terminal table, JSON and Markdown, with gates for CI. Used by
// `heimdall bench` and by the go test benchmarks of this package.
package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/progress"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/stats"
)

// Runner runs a model on a batch: x is [n, receivers, n_mels, frames] flat.
type Runner interface {
	Predict(x []float32, n int) (pos, sigma []float32, err error)
}

// ortRunner adapts an onnx.Session to Runner.
type ortRunner struct{ s *onnx.Session }

func (r ortRunner) Predict(x []float32, n int) ([]float32, []float32, error) { return r.s.Run(x, n) }

// Options control a benchmark.
type Options struct {
	// BatchSizes to measure. Default 1, 8, 32.
	BatchSizes []int
	// Warmup runs per path and batch size before timing. Default 3.
	Warmup int
	// Iterations are the timed runs per path and batch size. Default 30.
	Iterations int
	// MaxTime caps the timed runs per path and batch size (at least 5 runs
	// are made). Default 30s.
	MaxTime time.Duration
	// Seed of the random inputs. Default 1.
	Seed uint64
	// Parity inputs: the random 5x8 set is always used; Val adds real
	// validation inputs.
	Val *onnx.Inputs
	// MaxMAE is the parity limit recorded in the report. Default 1e-5.
	MaxMAE float64
	// Progress receives a progress bar; nil for none.
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	if len(o.BatchSizes) == 0 {
		o.BatchSizes = []int{1, 8, 32}
	}
	if o.Warmup <= 0 {
		o.Warmup = 3
	}
	if o.Iterations <= 0 {
		o.Iterations = 30
	}
	if o.MaxTime <= 0 {
		o.MaxTime = 30 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.MaxMAE <= 0 {
		o.MaxMAE = onnx.DefaultMaxMAE
	}
	return o
}

// The report's parts are the run directory's bench record (rundir).
type (
	Latency = rundir.Latency
	Row     = rundir.BenchRow
	Machine = rundir.BenchMachine
)

// Report is a benchmark's result: the rundir.BenchReport record with its
// gate and its table, JSON and Markdown forms.
type Report rundir.BenchReport

// CPUModel reads the CPU model name from /proc/cpuinfo.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// Run benchmarks native against sess on inputs of sess's shape. backend
// describes the native backend.
func Run(native Runner, backend string, sess *onnx.Session, o Options) (*Report, error) {
	o = o.withDefaults()
	shape := sess.InputShape
	rep := &Report{
		InputShape: shape,
		Date:       time.Now().UTC().Format(time.RFC3339),
		Warmup:     o.Warmup,
		Machine: Machine{
			CPU: CPUModel(), Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version(),
			Backend: backend, ORTVersion: onnx.RuntimeVersion(), IntraOpThreads: max(sess.Options.IntraOpThreads, 1),
			GraphOpt: cmp(sess.Options.GraphOptimization, "all"),
		},
	}
	sets := []onnx.Inputs{onnx.RandomInputs(shape, onnx.ParityBatches*onnx.ParityBatchSize, 42)}
	if o.Val != nil && o.Val.N > 0 {
		n := min(o.Val.N, onnx.ParityBatches*onnx.ParityBatchSize)
		sets = append(sets, onnx.Inputs{Name: "validation", X: o.Val.X[:n*sess.SampleSize()], N: n})
	}
	par, err := onnx.Parity(native, sess, sets, onnx.ParityBatchSize, o.MaxMAE)
	if err != nil {
		return nil, err
	}
	par.Backend = backend
	rep.Parity = par

	maxB := slices.Max(o.BatchSizes)
	in := onnx.RandomInputs(shape, maxB, o.Seed)
	bar := progress.New(o.Progress, int64(2*len(o.BatchSizes)*(o.Warmup+o.Iterations)), "bench", "")
	ort := ortRunner{sess}
	for _, b := range o.BatchSizes {
		if b <= 0 {
			return nil, fmt.Errorf("bench: batch size must be > 0, got %d", b)
		}
		x := in.X[:b*sess.SampleSize()]
		row := Row{Batch: b}
		for i, r := range []Runner{native, ort} {
			name := []string{"native", "onnxruntime"}[i]
			if bar != nil {
				bar.Describe(fmt.Sprintf("bench %s batch %d", name, b))
			}
			lat, err := measure(r, x, b, o, bar)
			if err != nil {
				return nil, fmt.Errorf("bench: %s batch %d: %w", name, b, err)
			}
			if i == 0 {
				row.Native = lat
			} else {
				row.ORT = lat
			}
		}
		row.Speedup = row.Native.P50ms / row.ORT.P50ms
		rep.Rows = append(rep.Rows, row)
	}
	if bar != nil {
		_ = bar.Finish()
	}
	return rep, nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func measure(r Runner, x []float32, n int, o Options, bar *progressbar.ProgressBar) (Latency, error) {
	for range o.Warmup {
		if _, _, err := r.Predict(x, n); err != nil {
			return Latency{}, err
		}
		if bar != nil {
			_ = bar.Add(1)
		}
	}
	tick := func() {}
	if bar != nil {
		tick = func() { _ = bar.Add(1) }
	}
	ms, err := Time(r, x, n, o.Iterations, o.MaxTime, tick)
	if err != nil {
		return Latency{}, err
	}
	if bar != nil {
		_ = bar.Add(o.Iterations - len(ms))
	}
	return Summarize(ms, n), nil
}

// Time calls r.Predict(x, n) up to runs times and returns each call's
// duration in milliseconds. With maxTime > 0 it stops once maxTime has
// passed, after at least 5 calls. tick (may be nil) is called after each call.
// Used by the benchmark and by the GPU device check (devicecheck).
func Time(r Runner, x []float32, n, runs int, maxTime time.Duration, tick func()) ([]float64, error) {
	ms := make([]float64, 0, runs)
	start := time.Now()
	for i := range runs {
		t0 := time.Now()
		if _, _, err := r.Predict(x, n); err != nil {
			return ms, err
		}
		ms = append(ms, float64(time.Since(t0).Nanoseconds())/1e6)
		if tick != nil {
			tick()
		}
		if maxTime > 0 && i >= 4 && time.Since(start) > maxTime {
			break
		}
	}
	return ms, nil
}

// Summarize turns call durations (ms) at batch size batch into a Latency:
// p50/p95/p99 (stats.Percentile), mean, and throughput batch / mean.
func Summarize(ms []float64, batch int) Latency {
	mean, _ := stats.MeanStd(ms)
	return Latency{Iterations: len(ms), P50ms: stats.Percentile(ms, 50), P95ms: stats.Percentile(ms, 95), P99ms: stats.Percentile(ms, 99),
		Meanms: mean, Throughput: float64(batch) / (mean / 1e3)}
}

// Gate checks the report: every parity mean within maxMAE (0: skip) and
// every speedup at least minSpeedup (0: skip). The error lists every
// violation.
func (r *Report) Gate(maxMAE, minSpeedup float64) error {
	var errs []error
	if maxMAE > 0 && r.Parity != nil {
		for _, s := range r.Parity.Sets {
			if !(s.Positions.Mean <= maxMAE) || !(s.Uncertainties.Mean <= maxMAE) {
				errs = append(errs, fmt.Errorf("parity %s: mean abs error positions %.3g, uncertainties %.3g > --max-mae %.3g",
					s.Name, s.Positions.Mean, s.Uncertainties.Mean, maxMAE))
			}
		}
	}
	if minSpeedup > 0 {
		for _, row := range r.Rows {
			if !(row.Speedup >= minSpeedup) {
				errs = append(errs, fmt.Errorf("batch %d: speedup native/ORT %.2fx < --min-speedup %.2fx", row.Batch, row.Speedup, minSpeedup))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bench: gate failed: %w", errors.Join(errs...))
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes the terminal table.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "model: %s  input [batch, %d, %d, %d]\n", r.Model, r.InputShape[0], r.InputShape[1], r.InputShape[2])
	fmt.Fprintf(&b, "machine: %s, %d cores, %s | native: %s | ONNX Runtime %s, %d intra-op thread(s), graph optimisation %s\n",
		m.CPU, m.Cores, m.OS, m.Backend, m.ORTVersion, m.IntraOpThreads, m.GraphOpt)
	if r.Parity != nil {
		fmt.Fprintln(&b, r.Parity.String())
	}
	fmt.Fprintf(&b, "\n%5s | %-11s | %8s %8s %8s | %10s | %s\n", "batch", "path", "p50 ms", "p95 ms", "p99 ms", "samples/s", "speedup native/ORT")
	fmt.Fprintln(&b, strings.Repeat("-", 78))
	for _, row := range r.Rows {
		for i, l := range []Latency{row.Native, row.ORT} {
			sp := ""
			if i == 1 {
				sp = fmt.Sprintf("%.2fx", row.Speedup)
			}
			fmt.Fprintf(&b, "%5d | %-11s | %8.2f %8.2f %8.2f | %10.1f | %s\n", row.Batch, []string{"native", "onnxruntime"}[i],
				l.P50ms, l.P95ms, l.P99ms, l.Throughput, sp)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes a Markdown report.
func (r *Report) WriteMarkdown(w io.Writer) error {
	m := r.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "## Inference benchmark: native GoMLX vs ONNX Runtime\n\n")
	fmt.Fprintf(&b, "- model: `%s` (checkpoint `%s`), input `[batch, %d, %d, %d]`\n", r.Model, r.Checkpoint, r.InputShape[0], r.InputShape[1], r.InputShape[2])
	fmt.Fprintf(&b, "- date: %s\n", r.Date)
	fmt.Fprintf(&b, "- machine: %s, %d cores, %s, %s\n", m.CPU, m.Cores, m.OS, m.GoVersion)
	fmt.Fprintf(&b, "- native: GoMLX backend `%s`; ONNX Runtime %s, %d intra-op thread(s), graph optimisation `%s`\n", m.Backend, m.ORTVersion, m.IntraOpThreads, m.GraphOpt)
	if len(r.Rows) > 0 {
		fmt.Fprintf(&b, "- %d warm-up runs, then %d timed runs per path and batch size\n", r.Warmup, r.Rows[0].Native.Iterations)
	}
	if r.Command != "" {
		fmt.Fprintf(&b, "- command: `%s`\n", r.Command)
	}
	if r.Parity != nil {
		fmt.Fprintf(&b, "\n### Parity (GoMLX vs ONNX Runtime, absolute error)\n\n| inputs | batches x size | positions max | positions mean | uncertainties max | uncertainties mean |\n|---|---|---|---|---|---|\n")
		for _, s := range r.Parity.Sets {
			fmt.Fprintf(&b, "| %s | %dx%d | %.2e | %.2e | %.2e | %.2e |\n", s.Name, s.Batches, s.BatchSize, s.Positions.Max, s.Positions.Mean, s.Uncertainties.Max, s.Uncertainties.Mean)
		}
		verdict := "pass"
		if !r.Parity.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "\nLimit: mean absolute error <= %.0e per output: **%s**.\n", r.Parity.MaxMAE, verdict)
	}
	fmt.Fprintf(&b, "\n### Latency\n\n| batch | path | p50 ms | p95 ms | p99 ms | samples/s | speedup native/ORT (p50) |\n|---:|---|---:|---:|---:|---:|---:|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %d | native (%s) | %.2f | %.2f | %.2f | %.1f | |\n", row.Batch, m.Backend, row.Native.P50ms, row.Native.P95ms, row.Native.P99ms, row.Native.Throughput)
		fmt.Fprintf(&b, "| %d | onnxruntime | %.2f | %.2f | %.2f | %.1f | %.2fx |\n", row.Batch, row.ORT.P50ms, row.ORT.P95ms, row.ORT.P99ms, row.ORT.Throughput, row.Speedup)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
