package onnx

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/trainer"
)

func TestExportCheckRuntimeParity(t *testing.T) {
	needORT(t)
	dir, val := tinyRun(t)
	exportAndCheck(t, dir, val)
}

// TestExportSharedEncoderParity: the shared receiver encoder (Reshape to
// per-receiver maps and back) exports with a dynamic batch and reproduces
// the GoMLX model.
func TestExportSharedEncoderParity(t *testing.T) {
	needORT(t)
	mc := tinyModelConfig()
	mc.ReceiverEncoder = trainer.EncoderShared
	dir, val := trainTiny(t, mc)
	exportAndCheck(t, dir, val)
}

// TestExportMelProfileParity: the mel-profile input to the heads
// (ReduceMean over frames, Reshape, Concat) reproduces the GoMLX model, with
// the joint and the shared receiver encoder.
func TestExportMelProfileParity(t *testing.T) {
	needORT(t)
	for _, enc := range []string{trainer.EncoderJoint, trainer.EncoderShared} {
		t.Run(enc, func(t *testing.T) {
			mc := tinyModelConfig()
			mc.ReceiverEncoder, mc.MelProfile = enc, true
			if enc == trainer.EncoderJoint {
				mc.MelProfileDim = 3 // The shared profile projection.
			}
			dir, val := trainTiny(t, mc)
			exportAndCheck(t, dir, val)
		})
	}
}

// exportAndCheck exports the run in dir and checks the files, metadata,
// the reference checker and ORT-vs-GoMLX parity at batch 1, 3 and 32.
func exportAndCheck(t *testing.T, dir string, val trainer.Split) {
	t.Helper()
	m, err := trainer.LoadModel(testBackend(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	res, err := ExportRun(m, dir, ExportOptions{
		Val:      &Inputs{Name: "validation", X: val.X, N: val.Len()},
		Features: FeatureParams{SampleRateHz: 12500, NFFT: 2048, Hop: 512, NMels: testShape[1], Frames: testShape[2]},
		Backend:  "go",
		Log:      &log,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{rundir.ModelFile, rundir.ModelCardFile, rundir.ParityFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if len(res.Parity.Sets) != 2 || !res.Parity.Pass {
		t.Fatalf("parity: %+v", res.Parity)
	}

	// Go structural check of the written file, then the reference checker.
	mp, _, err := ReadModel(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := ReadMetadata(mp)
	if err != nil {
		t.Fatal(err)
	}
	if meta.RunID != "rf-localization_test" || len(meta.Receivers) != 7 || meta.Features.NMels != testShape[1] ||
		meta.WeightsSHA256 != WeightsSHA256(mp) || meta.Parity == nil || !strings.HasPrefix(meta.ModelVersion, "v") {
		t.Errorf("metadata properties: %+v", meta)
	}
	var rec Metadata
	b, _ := os.ReadFile(res.MetaPath)
	if err := json.Unmarshal(b, &rec); err != nil || rec.SHA256 == "" || rec.SizeBytes == 0 || rec.Opset != Opset {
		t.Errorf("model.json: %v %+v", err, rec)
	}
	out, err := pythonFullCheck(t, res.ModelPath)
	t.Log(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("onnx.checker.check_model(full_check=True): %v\n%s", err, out)
	}

	// ORT from the file; dynamic batch 1, 3, 32 against the GoMLX model.
	s, err := NewSession(res.ModelPath, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	per := s.SampleSize()
	in := RandomInputs(testShape, 32, 7)
	for _, n := range []int{1, 3, 32} {
		x := in.X[:n*per]
		op, os, err := s.Run(x, n)
		if err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		gp, gs, err := m.Predict(x, n)
		if err != nil {
			t.Fatal(err)
		}
		var sumP, sumS, maxP, maxS float64
		for i := range op {
			dp, ds := math.Abs(float64(op[i]-gp[i])), math.Abs(float64(os[i]-gs[i]))
			sumP, sumS = sumP+dp, sumS+ds
			maxP, maxS = math.Max(maxP, dp), math.Max(maxS, ds)
		}
		meanP, meanS := sumP/float64(len(op)), sumS/float64(len(os))
		t.Logf("batch %2d: positions max %.2e mean %.2e, uncertainties max %.2e mean %.2e", n, maxP, meanP, maxS, meanS)
		if meanP > DefaultMaxMAE || meanS > DefaultMaxMAE {
			t.Errorf("batch %d: parity above %g", n, DefaultMaxMAE)
		}
		for i := range os {
			if os[i] < float32(trainer.SigmaMinDeg) || os[i] > float32(trainer.SigmaMaxDeg) {
				t.Errorf("batch %d: sigma %g outside [0.01, 1]", n, os[i])
			}
		}
	}
	// Wrong input shape: one clear error.
	if _, _, err := s.Run(in.X[:per-5], 1); err == nil || !strings.Contains(err.Error(), "wrong input shape") {
		t.Errorf("wrong input shape: got %v", err)
	}
}

func TestExportFailsOnMissingVariable(t *testing.T) {
	dir, _ := tinyRun(t)
	m, err := trainer.LoadModel(testBackend(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	p := "/" + trainer.ModelScope + "/stage1/block0/b/batch_normalization/variance"
	if err := m.Store().DeleteVariable(p); err != nil {
		t.Fatal(err)
	}
	_, err = BuildGraph(m)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("want an error naming %s, got %v", p, err)
	}
}

func TestBadModelFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.onnx")
	if _, err := NewSession(missing, SessionOptions{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	corrupt := filepath.Join(dir, "corrupt.onnx")
	if err := os.WriteFile(corrupt, []byte("this is not a protobuf \xff\xff\xff"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSession(corrupt, SessionOptions{}); err == nil || !strings.Contains(err.Error(), "not an ONNX model") {
		t.Errorf("corrupt file: %v", err)
	}
	empty := filepath.Join(dir, "empty.onnx")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSession(empty, SessionOptions{}); err == nil {
		t.Error("empty file accepted")
	}
}

func TestMissingLibraryError(t *testing.T) {
	t.Setenv(backend.EnvORTLibrary, filepath.Join(t.TempDir(), "libonnxruntime.so"))
	_, err := LibraryPath()
	if err == nil || !strings.Contains(err.Error(), backend.InstallORT) {
		t.Fatalf("want an error naming %s, got %v", backend.InstallORT, err)
	}
}

// TestExportLevelsParity: the level features (Slice, ReduceMean, the
// standard deviation, Reshape) and the level encoder reproduce the GoMLX
// model, with and without encoder layers and with the shared encoder.
func TestExportLevelsParity(t *testing.T) {
	needORT(t)
	for _, tc := range []struct {
		name   string
		enc    string
		levels int
		hidden []int
	}{
		{"joint_encoder", trainer.EncoderJoint, 2, []int{6, 5}},
		{"shared_raw", trainer.EncoderShared, 1, []int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := tinyModelConfig()
			mc.ReceiverEncoder, mc.Levels, mc.LevelHidden = tc.enc, tc.levels, tc.hidden
			dir, val := trainTiny(t, mc)
			exportAndCheck(t, dir, val)
		})
	}
}
