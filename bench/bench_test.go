package bench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/compute"

	"github.com/heimdall-sdr/trainer/internal/testenv"
	"github.com/heimdall-sdr/trainer/internal/trainertest"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/stats"
	"github.com/heimdall-sdr/trainer/trainer"
)

func TestPercentileAndGate(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5}
	if p := stats.Percentile(s, 50); p != 3 {
		t.Errorf("p50 = %g", p)
	}
	if p := stats.Percentile(s, 95); math.Abs(p-4.8) > 1e-9 {
		t.Errorf("p95 = %g", p)
	}
	l := Summarize([]float64{10, 10, 10, 10}, 8)
	if l.Throughput != 800 || l.P99ms != 10 {
		t.Errorf("summarize: %+v", l)
	}
	r := &Report{
		Parity: &onnx.ParityReport{MaxMAE: 1e-5, Pass: true, Sets: []onnx.ParitySet{{Name: "random", Positions: onnx.ErrStats{Mean: 2e-5}}}},
		Rows:   []Row{{Batch: 1, Speedup: 2}, {Batch: 8, Speedup: 0.9}},
	}
	if err := r.Gate(0, 0); err != nil {
		t.Errorf("no gates: %v", err)
	}
	err := r.Gate(1e-5, 1.0)
	if err == nil || !strings.Contains(err.Error(), "--max-mae") || !strings.Contains(err.Error(), "batch 8: speedup") || strings.Contains(err.Error(), "batch 1:") {
		t.Errorf("gates: %v", err)
	}
}

// Fixture: a tiny trained model and its ONNX export.
var (
	fixOnce  sync.Once
	fixModel *trainer.Model
	fixSess  *onnx.Session
	fixErr   error
)

func fixture(tb testing.TB) (*trainer.Model, *onnx.Session) {
	tb.Helper()
	testenv.RequireORT(tb, onnx.InitRuntime())
	fixOnce.Do(func() {
		backend, err := compute.NewWithConfig("go")
		if err != nil {
			fixErr = err
			return
		}
		tc := trainer.DefaultTrainConfig()
		tc.Epochs, tc.BatchSize = 1, 8
		dir, err := os.MkdirTemp("", "heimdall-bench-*")
		if err != nil {
			fixErr = err
			return
		}
		run := filepath.Join(dir, "run")
		if _, err := trainertest.Train(backend, run, trainertest.TinyModel(), tc, 16, 8); err != nil {
			fixErr = err
			return
		}
		if fixModel, fixErr = trainer.LoadModel(backend, run); fixErr != nil {
			return
		}
		if _, fixErr = onnx.ExportRun(fixModel, run, onnx.ExportOptions{}); fixErr != nil {
			return
		}
		fixSess, fixErr = onnx.NewSession(filepath.Join(run, rundir.ModelFile), onnx.SessionOptions{})
	})
	if fixErr != nil {
		tb.Fatal(fixErr)
	}
	return fixModel, fixSess
}

func TestRunReport(t *testing.T) {
	m, s := fixture(t)
	var progress bytes.Buffer
	rep, err := Run(m, "go", s, Options{BatchSizes: []int{1, 3}, Warmup: 1, Iterations: 5, MaxTime: time.Second, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[1].Batch != 3 || !(rep.Rows[0].Speedup > 0) || !rep.Parity.Pass {
		t.Fatalf("report: %+v", rep)
	}
	if err := rep.Gate(1e-5, 0); err != nil {
		t.Error(err)
	}
	var tab, md, js bytes.Buffer
	for _, f := range []func() error{func() error { return rep.WriteTable(&tab) }, func() error { return rep.WriteMarkdown(&md) }, func() error { return rep.WriteJSON(&js) }} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	t.Log("\n" + tab.String())
	for _, want := range []string{"p50", "onnxruntime", "speedup"} {
		if !strings.Contains(tab.String(), want) || !strings.Contains(md.String(), want) {
			t.Errorf("table/markdown lacks %q", want)
		}
	}
	if !strings.Contains(js.String(), `"speedup_native_over_ort"`) || !strings.Contains(progress.String(), "bench") {
		t.Errorf("json or progress output incomplete")
	}
}

func benchPath(b *testing.B, native bool) {
	m, s := fixture(b)
	for _, n := range []int{1, 8} {
		x := onnx.RandomInputs(s.InputShape, n, 3).X
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			var r Runner = ortRunner{s}
			if native {
				r = m
			}
			if _, _, err := r.Predict(x, n); err != nil { // warm-up / compile.
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := r.Predict(x, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkNative is the GoMLX path (pure Go backend on the tiny model here;
// `heimdall bench` measures the configured backend on a real run).
func BenchmarkNative(b *testing.B) { benchPath(b, true) }

// BenchmarkORT is the ONNX Runtime path on the same model.
func BenchmarkORT(b *testing.B) { benchPath(b, false) }
