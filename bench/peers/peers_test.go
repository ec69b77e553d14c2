// Package peers holds the framework comparison of `make bench-peers`
// (scripts/bench-peers.sh): the PyTorch reference of LocalizationNet
// (pytorch/), the Go driver (peerbench/) and this test, which keeps the
// PyTorch weight-loading path honest.
package peers

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPyTorchLoadsOurCheckpoint trains a seconds-long smoke run, dumps our
// native outputs on 4 validation + 4 random inputs (peerbench dump) and checks
// that the PyTorch LocalizationNet built from the checkpoint's config with
// our checkpoint's weights reproduces them (max abs difference < 1e-5).
// It needs the Python side: HEIMDALL_PEERS_PYTHON=$(scripts/pyvenv.sh peers
// bench/peers/requirements.txt)/bin/python; skipped otherwise (PyTorch is a
// 5.5 GB install, not part of `make test`).
func TestPyTorchLoadsOurCheckpoint(t *testing.T) {
	py := os.Getenv("HEIMDALL_PEERS_PYTHON")
	if py == "" {
		t.Skip("HEIMDALL_PEERS_PYTHON not set: the PyTorch side of bench/peers is not installed " +
			"(HEIMDALL_PEERS_PYTHON=$(scripts/pyvenv.sh peers bench/peers/requirements.txt)/bin/python)")
	}
	if testing.Short() {
		t.Skip("trains a smoke run")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for _, b := range [][2]string{{"heimdall", "./cmd/heimdall"}, {"peerbench", "./bench/peers/peerbench"}} {
		run(t, root, "go", "build", "-o", filepath.Join(bin, b[0]), b[1])
	}
	// The smoke run (tiny model, 3 epochs), with each receiver encoder, with
	// the mel profile fed to the heads, and with the level encoder.
	for _, v := range []struct{ name, enc, melProfile, levels string }{
		{"joint", "joint", "false", "0"}, {"shared", "shared", "false", "0"},
		{"joint_mel_profile", "joint", "true", "0"}, {"joint_levels", "joint", "false", "2"},
	} {
		enc := v.enc
		t.Run(v.name, func(t *testing.T) {
			runDir := filepath.Join(dir, "smoke-"+v.name)
			run(t, root, filepath.Join(bin, "heimdall"), "train", "--config", "configs/smoke.yaml", "--simulate",
				"--set", "run.dir="+dir, "--set", "run.name=smoke-"+v.name, "--set", "model.receiver_encoder="+enc,
				"--set", "model.mel_profile="+v.melProfile, "--set", "model.levels="+v.levels,
				"--set", "store.root="+filepath.Join(dir, "data"),
				"--set", "dataset.cache_dir="+filepath.Join(dir, "cache"), "--set", "export.enabled=false")
			dump := filepath.Join(dir, "dump-"+v.name)
			run(t, root, filepath.Join(bin, "peerbench"), "dump", "-run", runDir, "-out", dump)
			out := run(t, root, py, "bench/peers/pytorch/peers.py", "parity", "--run", runDir, "--dump", dump)
			var res struct {
				N            int     `json:"n"`
				MaxAbs       float64 `json:"max_abs"`
				TorchParams  int     `json:"torch_params"`
				PositionsMax float64 `json:"positions_max_abs"`
				SigmaMax     float64 `json:"sigma_max_abs"`
				Model        struct {
					ReceiverEncoder string `json:"receiver_encoder"`
				} `json:"model_config"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("parity output %q: %v", out, err)
			}
			t.Logf("%s encoder, parity on %d inputs: positions max abs %.3g, sigma max abs %.3g, %d params",
				res.Model.ReceiverEncoder, res.N, res.PositionsMax, res.SigmaMax, res.TorchParams)
			if res.Model.ReceiverEncoder != enc {
				t.Errorf("checkpoint config says receiver_encoder %q, want %q", res.Model.ReceiverEncoder, enc)
			}
			if res.N < 4 || res.MaxAbs >= 1e-5 {
				t.Errorf("PyTorch vs ours: max abs %.3g on %d inputs, want < 1e-5 on >= 4", res.MaxAbs, res.N)
			}
		})
	}
}

func run(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOMLX_NO_AUTO_INSTALL=1")
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr)
	}
	return out
}
