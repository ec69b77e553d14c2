package local_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
	"github.com/heimdall-sdr/trainer/storage/storagetest"
)

func TestStore(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		st, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, storagetest.Config{LargeSize: 1 << 20})
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := local.WriteFile(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := local.WriteFile(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	if err := local.WriteFile(filepath.Join(dir, "missing", "f"), []byte("x")); err == nil {
		t.Fatal("want an error for a missing directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
