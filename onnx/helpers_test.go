package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/gomlx/compute"

	"github.com/heimdall-sdr/trainer/internal/testenv"
	"github.com/heimdall-sdr/trainer/internal/trainertest"
	"github.com/heimdall-sdr/trainer/trainer"
)

// Environment variables `make test` sets so that missing tools fail the
// tests instead of skipping them.
const (
	envRequirePython = "HEIMDALL_REQUIRE_PYTHON"
	envONNXPython    = "HEIMDALL_ONNX_PYTHON" // python with the pinned `onnx` package.
)

var testShape = testenv.Shape

// needORT skips (or, under make test, fails) when ONNX Runtime is missing.
func needORT(t testing.TB) {
	t.Helper()
	testenv.RequireORT(t, InitRuntime())
}

// onnxPython returns a python interpreter that has the pinned onnx package:
// $HEIMDALL_ONNX_PYTHON, else the cached venv of scripts/pyvenv.sh.
func onnxPython(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(envONNXPython); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	req := filepath.Join(filepath.Dir(file), "..", "scripts", "requirements-onnx.txt")
	b, err := os.ReadFile(req)
	if err == nil {
		sum := sha256.Sum256(b)
		cache := os.Getenv("HEIMDALL_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "heimdall")
		}
		dir := filepath.Join(cache, "venv", "onnx-"+hex.EncodeToString(sum[:])[:12])
		if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
			return filepath.Join(dir, "bin", "python")
		}
	}
	if os.Getenv(envRequirePython) != "" {
		t.Fatalf("python onnx checker required: set %s or run scripts/pyvenv.sh onnx scripts/requirements-onnx.txt", envONNXPython)
	}
	t.Skipf("python onnx checker not installed (scripts/pyvenv.sh onnx scripts/requirements-onnx.txt; make test installs it)")
	return ""
}

// pythonFullCheck runs onnx.checker.check_model(full_check=True) on path.
func pythonFullCheck(t testing.TB, path string) (string, error) {
	py := onnxPython(t)
	code := `import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print("onnx", onnx.__version__, "full_check OK: ir", m.ir_version, "opset", m.opset_import[0].version)`
	out, err := exec.Command(py, "-c", code, path).CombinedOutput()
	return string(out), err
}

func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatalf("go backend: %v", err)
	}
	return b
}

func tinyModelConfig() trainer.ModelConfig { return trainertest.TinyModel() }

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
	tinyVal  trainer.Split
)

// tinyRun trains a tiny model once per test binary (2 epochs, pure Go
// backend, a few seconds) and returns its run directory.
func tinyRun(t testing.TB) (string, trainer.Split) {
	t.Helper()
	tinyOnce.Do(func() {
		tinyDir, tinyVal, tinyErr = trainTinyIn(testBackend(t), tinyModelConfig())
	})
	if tinyErr != nil {
		t.Fatalf("train tiny model: %v", tinyErr)
	}
	return tinyDir, tinyVal
}

// trainTiny trains a tiny model with mc like tinyRun, in its own run
// directory (removed at the end of the test).
func trainTiny(t testing.TB, mc trainer.ModelConfig) (string, trainer.Split) {
	t.Helper()
	dir, val, err := trainTinyIn(testBackend(t), mc)
	if dir != "" {
		t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(dir)) })
	}
	if err != nil {
		t.Fatalf("train tiny model: %v", err)
	}
	return dir, val
}

// trainTinyIn trains mc for 2 epochs on synthetic data in a new temporary
// directory and returns the run directory (inside it) and the val split.
func trainTinyIn(backend compute.Backend, mc trainer.ModelConfig) (string, trainer.Split, error) {
	dir, err := os.MkdirTemp("", "heimdall-onnx-test-*")
	if err != nil {
		return "", trainer.Split{}, err
	}
	runDir := filepath.Join(dir, "rf-localization_test")
	tc := trainer.DefaultTrainConfig()
	tc.Epochs, tc.BatchSize, tc.LearningRate, tc.MinLearningRate = 2, 8, 1e-2, 1e-4
	tc.CalibrateSigma = mc.MelProfile // Exercise the sigma scale's export too.
	val, err := trainertest.Train(backend, runDir, mc, tc, 48, 24)
	return runDir, val, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		_ = os.RemoveAll(filepath.Dir(tinyDir))
	}
	os.Exit(code)
}
