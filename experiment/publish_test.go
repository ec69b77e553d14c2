package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/s3/s3test"
)

// fakeRun writes a run directory with an exported model.
func fakeRun(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	model := make([]byte, 300_000)
	for i := range model {
		model[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	meta := `{"model_type": "localization-net", "format": "onnx", "export_date": "2026-02-03T04:05:06Z", "parity": {"mean_abs_diff": 1e-7}}`
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, model
}

func testPublish(t *testing.T, cfg config.Config) {
	ctx := context.Background()
	run, model := fakeRun(t)
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	p, err := publishAt(ctx, cfg, run, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Key != "models/localization/v20260203_040506.onnx" || p.MetadataKey != "models/localization/v20260203_040506.json" || p.Size != int64(len(model)) {
		t.Fatalf("published %+v", p)
	}
	// Never overwrite a version.
	if _, err := publishAt(ctx, cfg, run, now); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second publish at the same second: %v, want ErrExists", err)
	}
	st, err := OpenModelStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := storage.ReadAll(ctx, st, p.MetadataKey)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	if meta["sha256"] != p.SHA256 || meta["object_key"] != p.Key || meta["parity"] == nil {
		t.Fatalf("metadata object %s", b)
	}
	if _, err := publishAt(ctx, cfg, run, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	vs, err := ListModels(ctx, cfg)
	if err != nil || len(vs) != 2 || vs[1].Version != "v20260203_050506" {
		t.Fatalf("list = %+v, %v", vs, err)
	}
	out := t.TempDir()
	path, err := DownloadModel(ctx, cfg, "latest", out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(model) || filepath.Base(path) != "v20260203_050506.onnx" {
		t.Fatalf("downloaded %s: %d bytes, %v", path, len(got), err)
	}
	if _, err := os.Stat(filepath.Join(out, "v20260203_050506.json")); err != nil {
		t.Fatal(err)
	}
}

func TestPublishLocal(t *testing.T) {
	testPublish(t, smokeConfig(t))
}

// TestPublishS3 publishes into a fresh models bucket on MinIO (created on
// the first write) and checks the object metadata.
func TestPublishS3(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := s3test.Bucket(t)
	cfg := s3Config(t, srv, s3test.Bucket(t), "store.models_bucket="+bucket)
	testPublish(t, cfg)
	st, err := OpenModelStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	oi, err := st.Stat(context.Background(), "models/localization/v20260203_040506.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"export-date": "2026-02-03T04:05:06Z", "model-type": "localization-net", "format": "onnx", "file-size": "300000"} {
		if oi.Metadata[k] != v {
			t.Errorf("object metadata %s = %q, want %q (%v)", k, oi.Metadata[k], v, oi.Metadata)
		}
	}
	if len(oi.Metadata["sha256"]) != 64 {
		t.Errorf("object metadata sha256 = %q", oi.Metadata["sha256"])
	}
}
