package storage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
)

func TestPutVerified(t *testing.T) {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	data := []byte("not really onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sum, err := storage.PutVerified(ctx, st, "models/v1.onnx", path, map[string]string{"format": "onnx"})
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if sum != hex.EncodeToString(want[:]) {
		t.Fatalf("sha256 %s, want %x", sum, want)
	}
	if _, err := storage.PutVerified(ctx, st, "models/v1.onnx", path, nil); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second put: %v, want ErrExists", err)
	}
	if _, err := storage.PutVerified(ctx, st, "models/v2.onnx", filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Fatal("put of a missing file succeeded")
	}
}
