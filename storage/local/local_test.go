package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// TestPutAllNoTemporaryFiles checks that PutAll leaves no temporary file
// behind, after success or failure, and that a failed group renames
// nothing when a file cannot be written.
func TestPutAllNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	objs := []storage.Object{{Key: "s/a", Data: []byte("a")}, {Key: "s/b", Data: []byte("b")}}
	if err := st.PutAll(ctx, objs); err != nil {
		t.Fatal(err)
	}
	if err := st.PutAll(ctx, []storage.Object{{Key: "s/c", Data: []byte("c")}, {Key: "s/a", Data: []byte("x"), Opts: storage.PutOptions{NoOverwrite: true}}}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("PutAll: %v, want ErrExists", err)
	}
	// An invalid key fails before anything is renamed.
	if err := st.PutAll(ctx, []storage.Object{{Key: "s/d", Data: []byte("d")}, {Key: "../e", Data: nil}}); err == nil {
		t.Fatal("PutAll with an invalid key: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.PutAll(cctx, []storage.Object{{Key: "s/f", Data: []byte("f")}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutAll on a cancelled context: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "a b" {
		t.Fatalf("files after PutAll = %v, want [a b] (no temporary files, nothing of failed groups)", names)
	}
}
