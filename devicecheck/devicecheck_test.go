package devicecheck

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/stats"
)

func TestCompareOutputs(t *testing.T) {
	p := CompareOutputs([]float32{1, 2, 3, 4}, []float32{0.1, 0.1, 0.2, 0.2}, []float32{1, 2.5, 3, 4}, []float32{0.1, 0.1, 0.2, 0.3})
	if math.Abs(p.PosMaxAbsDiff-0.5) > 1e-6 || math.Abs(p.PosMeanAbsDiff-0.125) > 1e-6 ||
		math.Abs(p.SigMaxAbsDiff-0.1) > 1e-6 || math.Abs(p.MaxAbsDiff-0.5) > 1e-6 || math.Abs(p.MeanAbsDiff-0.075) > 1e-6 {
		t.Errorf("CompareOutputs = %+v", p)
	}
	if p := CompareOutputs([]float32{float32(math.NaN())}, nil, []float32{0}, nil); !math.IsInf(p.MaxAbsDiff, 1) {
		t.Errorf("NaN output: max diff %v, want +Inf", p.MaxAbsDiff)
	}
}

// TestLatencyPercentile: the device check's p50/p95 are stats.Percentile
// (NumPy linear), the same as the bench report's, not nearest rank.
func TestLatencyPercentile(t *testing.T) {
	d := []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	lr := latencyReport(4, 123, d)
	if lr.P50Ms != 5.5 || math.Abs(lr.P95Ms-9.55) > 1e-9 || lr.MeanMs != 5.5 || lr.Runs != 10 || lr.CompileMs != 123 {
		t.Errorf("latencyReport = %+v, want p50 5.5, p95 9.55, mean 5.5", lr)
	}
	if want := stats.Percentile(d, 95); lr.P95Ms != want {
		t.Errorf("p95 %v != stats.Percentile %v", lr.P95Ms, want)
	}
	if math.Abs(lr.SamplesPS-1000*4/5.5) > 1e-9 {
		t.Errorf("samples/s = %v, want batch/p50", lr.SamplesPS)
	}
}

func TestRunWithTimeout(t *testing.T) {
	err := runWithTimeout(context.Background(), 20*time.Millisecond, func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if err := runWithTimeout(context.Background(), time.Second, func(context.Context) error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic: err = %v", err)
	}
}

// TestDeviceCheckDryRun runs the whole device check (the program that
// scripts/gpu-check.sh runs on the GPU machine) on CPU backends with a small
// preset and input, and checks the JSON report.
func TestDeviceCheckDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	o := CPUDryRun()
	o.Steps, o.LatencyRuns = 4, 3
	o.Out = filepath.Join(t.TempDir(), "out", "gpu-check.json")
	o.WorkDir = t.TempDir()
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, b)
	}
	if !got.Complete || got.Train == nil || got.Train.Steps != 4 || got.Train.MedianStepMs <= 0 || got.Devices == nil || len(got.Devices.Devices) == 0 {
		t.Errorf("report: %s", b)
	}
	if len(got.Latency) != 2 || got.Latency[0].Batch != 1 || got.Latency[1].Batch != 8 || got.Latency[0].P50Ms <= 0 || got.Latency[1].P95Ms < got.Latency[1].P50Ms {
		t.Errorf("latency: %+v", got.Latency)
	}
	if got.Parity == nil || got.Parity.Reference != "go" || got.Parity.Samples != 2 {
		t.Fatalf("parity: %+v", got.Parity)
	}
	// Same checkpoint on two CPU backends: float32 rounding only (a go-vs-go run is exact).
	if got.Parity.MaxAbsDiff > 1e-3 {
		t.Errorf("parity max abs diff %g > 1e-3 (%s vs go)", got.Parity.MaxAbsDiff, o.Backend)
	}
	for name, st := range got.Stages {
		want := "ok"
		if name == "parity_tf32_off" {
			want = "skipped"
		}
		if st.Status != want {
			t.Errorf("stage %s: %+v, want %s", name, st, want)
		}
	}
	t.Logf("%s: train %.1f ms/step, latency b1 p50 %.2f ms, parity max %.2g (%s)", rep.Backend, rep.Train.MedianStepMs, rep.Latency[0].P50Ms, rep.Parity.MaxAbsDiff, time.Duration(rep.TotalSeconds*float64(time.Second)))
}

// TestDeviceCheckTimeout: a stage that runs out of time leaves a partial
// report with that stage marked "timeout" and the rest skipped; the
// abandoned stage's goroutine ends (its context is cancelled) and records
// nothing afterwards. Run it with -race (make test-race).
func TestDeviceCheckTimeout(t *testing.T) {
	o := CPUDryRun()
	o.Backend = "go"
	o.StageTimeouts = map[string]time.Duration{"train": time.Millisecond}
	o.Out = filepath.Join(t.TempDir(), "gpu-check.json")
	c, err := newCheck(o)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	b, _ := os.ReadFile(o.Out)
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("partial report is not JSON: %v", err)
	}
	if got.Complete || got.Stages["devices"].Status != "ok" || got.Stages["train"].Status != "timeout" || got.Stages["latency"].Status != "skipped" {
		t.Errorf("partial report: %s", b)
	}
	// The timed-out training stops at its next step: wait for it, then the
	// report (file and value) must be what Run returned.
	if !c.wait(2 * time.Minute) {
		t.Fatal("the timed-out train stage did not return within 2 minutes")
	}
	c.cleanup()
	if after, _ := os.ReadFile(o.Out); string(after) != string(b) {
		t.Errorf("report rewritten after Run returned:\n%s", after)
	}
	if rep.Train != nil {
		t.Errorf("timed-out train stage recorded %+v", rep.Train)
	}
}

// TestAbandonedStageRecordsNothing: a stage that ignores its context and
// keeps recording after its timeout, while the check saves the report, is
// neither a data race (go test -race) nor visible in the report.
func TestAbandonedStageRecordsNothing(t *testing.T) {
	o := CPUDryRun()
	o.Out = filepath.Join(t.TempDir(), "gpu-check.json")
	o.StageTimeouts = map[string]time.Duration{"latency": 100 * time.Millisecond}
	c, err := newCheck(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.cleanup()
	recorded := make(chan bool, 1)
	st := stage{name: "latency", run: func(_ context.Context, rec recorder) error {
		ok := rec(func(c *check) { c.rep.Latency = append(c.rep.Latency, LatencyReport{Batch: 1}) })
		time.Sleep(300 * time.Millisecond) // past the timeout, ctx ignored.
		late := false
		for i := range 200 {
			late = rec(func(c *check) { c.rep.Latency = append(c.rep.Latency, LatencyReport{Batch: 100 + i}) }) || late
		}
		recorded <- ok && !late
		return nil
	}}
	savers := make(chan struct{})
	go func() {
		defer close(savers)
		for range 200 {
			c.save()
		}
	}()
	if err := c.runStage(context.Background(), st); !errors.Is(err, ErrStageTimeout) {
		t.Fatalf("runStage = %v, want ErrStageTimeout", err)
	}
	for range 200 {
		c.save()
	}
	<-savers
	if !c.wait(10 * time.Second) {
		t.Fatal("stage goroutine did not return")
	}
	if !<-recorded {
		t.Error("rec: want true before the timeout and false after it")
	}
	c.save()
	b, _ := os.ReadFile(o.Out)
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Latency) != 1 || got.Latency[0].Batch != 1 || got.Stages["latency"].Status != "timeout" {
		t.Errorf("report after an abandoned stage: latency %+v, stage %+v", got.Latency, got.Stages["latency"])
	}
}
