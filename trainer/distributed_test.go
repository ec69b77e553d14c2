package trainer

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/backend"
)

func TestValidateDevices(t *testing.T) {
	for _, v := range []string{"", "1", "all", " all "} {
		if err := ValidateDevices(v); err != nil {
			t.Errorf("ValidateDevices(%q) = %v, want nil", v, err)
		}
	}
	for _, v := range []string{"2", "ALL", "gpu", "0"} {
		if err := ValidateDevices(v); err == nil || !strings.Contains(err.Error(), "run.devices") {
			t.Errorf("ValidateDevices(%q) = %v, want an error naming run.devices", v, err)
		}
	}
}

// xlaCPUBackendOrSkip opens the XLA CPU plugin (several devices on one
// host) or skips.
func xlaCPUBackendOrSkip(t *testing.T) (spec string) {
	t.Helper()
	roots := backend.DefaultSearchRoots()
	plugin, looked := backend.FindCPUPlugin(roots)
	if plugin == "" {
		t.Skipf("XLA CPU PJRT plugin not installed (run %s); looked in %v", backend.InstallPJRTCPU, looked)
	}
	return "xla:" + plugin
}

// TestTrainAllDevicesMatchesOne trains the tiny model with the same seed
// and batches on device 0 and data parallel over all devices of the XLA
// CPU plugin, and compares the losses.
func TestTrainAllDevicesMatchesOne(t *testing.T) {
	spec := xlaCPUBackendOrSkip(t)
	backend, err := backend.New(spec)
	if err != nil {
		t.Skipf("XLA CPU backend %s unavailable: %v", spec, err)
	}
	defer backend.Finalize()
	n := backend.NumDevices()
	if n < 2 {
		t.Skipf("backend %s reports %d device(s); need 2 or more", backend.Description(), n)
	}
	data := synthData(64, 32)
	m := tinyModel()
	m.HeadDropout = []float64{0, 0} // Dropout masks depend on the sharding; compare without.
	tc := tinyTrain()
	tc.Epochs, tc.BatchSize = 2, 4*n

	run := func(devices string) []EpochMetrics {
		var epochs []EpochMetrics
		var log bytes.Buffer
		_, err := Train(context.Background(), backend, data, m, tc, RunOptions{
			RunDir: t.TempDir(), Devices: devices, NoPlots: true, Log: &log,
			OnEpoch: func(e EpochMetrics) error { epochs = append(epochs, e); return nil },
		})
		if err != nil {
			t.Fatalf("devices %q: %v", devices, err)
		}
		parallel := fmt.Sprintf("data parallel over %d devices", n)
		if got := strings.Contains(log.String(), parallel); got != (devices == "all") {
			t.Errorf("devices %q: log mentions %q: %v\n%s", devices, parallel, got, log.String())
		}
		return epochs
	}
	one, all := run(""), run("all")
	if len(one) != len(all) || len(one) == 0 {
		t.Fatalf("epochs: %d vs %d", len(one), len(all))
	}
	rel := func(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(a), 1e-12) }
	const relTol = 1e-6
	for i := range one {
		t.Logf("epoch %d step %d: train loss %.7f vs %.7f (rel %.2g), val loss %.7f vs %.7f (rel %.2g)",
			one[i].Epoch, one[i].Step, one[i].Train.Loss, all[i].Train.Loss, rel(one[i].Train.Loss, all[i].Train.Loss),
			one[i].Val.Loss, all[i].Val.Loss, rel(one[i].Val.Loss, all[i].Val.Loss))
		if one[i].Step != all[i].Step {
			t.Errorf("epoch %d: step %d vs %d", i, one[i].Step, all[i].Step)
		}
		// Measured on the 4 devices of the XLA CPU plugin: train 1.3e-8,
		// val 1.8e-7 (float32 sums in another order); README quotes this.
		if r := rel(one[i].Train.Loss, all[i].Train.Loss); !(r < relTol) {
			t.Errorf("epoch %d: train loss %v (1 device) vs %v (%d devices): rel diff %.3g > %g", i, one[i].Train.Loss, all[i].Train.Loss, n, r, relTol)
		}
		if r := rel(one[i].Val.Loss, all[i].Val.Loss); !(r < relTol) {
			t.Errorf("epoch %d: val loss %v (1 device) vs %v (%d devices): rel diff %.3g > %g", i, one[i].Val.Loss, all[i].Val.Loss, n, r, relTol)
		}
	}

	// A batch that does not split evenly is refused, naming the key.
	tc.BatchSize = 4*n + 1
	_, err = Train(context.Background(), backend, data, m, tc, RunOptions{RunDir: t.TempDir(), Devices: "all", NoPlots: true})
	if err == nil || !strings.Contains(err.Error(), "train.batch_size") {
		t.Errorf("batch %d over %d devices: err = %v, want one naming train.batch_size", tc.BatchSize, n, err)
	}
}
