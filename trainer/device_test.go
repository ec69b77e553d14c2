package trainer

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseNvidiaSMI(t *testing.T) {
	out := "0, NVIDIA H100 80GB HBM3, 81559, 4, 580.159.04\n1, NVIDIA H100 80GB HBM3, 81559, 1200, 580.159.04\n\n"
	gpus, err := parseNvidiaSMI(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 2 || gpus[0].Name != "NVIDIA H100 80GB HBM3" || gpus[0].MemoryTotalMiB != 81559 || gpus[1].MemoryUsedMiB != 1200 || gpus[1].Driver != "580.159.04" {
		t.Errorf("parsed %+v", gpus)
	}
	if _, err := parseNvidiaSMI("0, x, [N/A], 1, d\n"); err == nil {
		t.Error("bad memory field: no error")
	}
	s := DeviceInfo{Devices: []string{"cuda:0"}, GPUs: gpus[:1]}.String()
	if !strings.Contains(s, "GPU 0: NVIDIA H100 80GB HBM3, 81559 MiB memory") {
		t.Errorf("String() = %q", s)
	}
}

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

func TestDeviceCheckPercentile(t *testing.T) {
	d := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(d, 50); p != 5 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(d, 95); p != 10 {
		t.Errorf("p95 = %v", p)
	}
	if p := percentile(d[:1], 95); p != 1 {
		t.Errorf("p95 of one = %v", p)
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
	o := CPUDryRunOptions()
	o.Steps, o.LatencyRuns = 4, 3
	o.Out = filepath.Join(t.TempDir(), "out", "gpu-check.json")
	o.WorkDir = t.TempDir()
	rep, err := RunDeviceCheck(context.Background(), o)
	if err != nil {
		t.Fatalf("RunDeviceCheck: %v", err)
	}
	b, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	var got DeviceCheckReport
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
// report with that stage marked "timeout" and the rest skipped.
func TestDeviceCheckTimeout(t *testing.T) {
	o := CPUDryRunOptions()
	o.Backend = "go"
	o.StageTimeouts = map[string]time.Duration{"train": time.Millisecond}
	o.Out = filepath.Join(t.TempDir(), "gpu-check.json")
	_, err := RunDeviceCheck(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	b, _ := os.ReadFile(o.Out)
	var got DeviceCheckReport
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("partial report is not JSON: %v", err)
	}
	if got.Complete || got.Stages["devices"].Status != "ok" || got.Stages["train"].Status != "timeout" || got.Stages["latency"].Status != "skipped" {
		t.Errorf("partial report: %s", b)
	}
}
