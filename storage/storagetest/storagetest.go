// Package storagetest is the one test suite every storage.Store backend
// passes: storage/local runs it on a temporary directory, storage/s3 on a
// real MinIO server.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/storage"
)

// Config says what the backend under test supports.
type Config struct {
	// Metadata: the store keeps PutOptions.Metadata and returns it from Stat.
	Metadata bool
	// LargeSize is the size of the large-object test (default 8 MiB; make it
	// exceed the backend's multipart part size to exercise multipart).
	LargeSize int
}

// Run runs the suite. newStore returns an empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store, cfg Config) {
	if cfg.LargeSize == 0 {
		cfg.LargeSize = 8 << 20
	}
	ctx := context.Background()

	t.Run("PutGet", func(t *testing.T) {
		st := newStore(t)
		put(t, st, "a/b/c.txt", "hello")
		if got := get(t, st, "a/b/c.txt"); got != "hello" {
			t.Fatalf("get = %q, want hello", got)
		}
		put(t, st, "a/b/c.txt", "world") // overwrite is allowed by default
		if got := get(t, st, "a/b/c.txt"); got != "world" {
			t.Fatalf("get after overwrite = %q, want world", got)
		}
		put(t, st, "empty", "")
		if got := get(t, st, "empty"); got != "" {
			t.Fatalf("get empty = %q", got)
		}
	})

	t.Run("PutAll", func(t *testing.T) {
		st := newStore(t)
		objs := []storage.Object{
			{Key: "g/1/a.bin", Data: bytes.Repeat([]byte{1}, 70_000)},
			{Key: "g/1/b.json", Data: []byte(`{"b":1}`), Opts: storage.PutOptions{ContentType: "application/json"}},
			{Key: "g/1/done.json", Data: []byte("{}")},
		}
		if err := storage.PutAll(ctx, st, objs); err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if got := get(t, st, o.Key); got != string(o.Data) {
				t.Fatalf("%s: got %d bytes, want %d", o.Key, len(got), len(o.Data))
			}
		}
		if list, err := st.List(ctx, "g/1/"); err != nil || len(list) != 3 {
			t.Fatalf("list after PutAll = %v, %v; want the 3 objects only", list, err)
		}
		// A group failing in the middle never shows its last object.
		put(t, st, "g/2/b", "taken")
		err := storage.PutAll(ctx, st, []storage.Object{
			{Key: "g/2/a", Data: []byte("a")},
			{Key: "g/2/b", Data: []byte("b"), Opts: storage.PutOptions{NoOverwrite: true}},
			{Key: "g/2/done", Data: []byte("done")},
		})
		if !errors.Is(err, storage.ErrExists) || !strings.Contains(err.Error(), "g/2/b") {
			t.Fatalf("PutAll over an existing NoOverwrite key: %v, want ErrExists naming g/2/b", err)
		}
		if _, err := st.Stat(ctx, "g/2/done"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("last object of a failed PutAll: stat err %v, want ErrNotFound", err)
		}
		if got := get(t, st, "g/2/b"); got != "taken" {
			t.Fatalf("NoOverwrite key overwritten: %q", got)
		}
		list, err := st.List(ctx, "g/2/")
		if err != nil {
			t.Fatal(err)
		}
		for _, oi := range list {
			if oi.Key != "g/2/a" && oi.Key != "g/2/b" {
				t.Fatalf("failed PutAll left %s visible", oi.Key)
			}
		}
	})

	t.Run("PutUnknownSize", func(t *testing.T) {
		st := newStore(t)
		data := strings.Repeat("x", 100_000)
		// io.MultiReader hides Len/Seek: a plain stream of unknown length.
		if err := st.Put(ctx, "stream", io.MultiReader(strings.NewReader(data)), -1, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := get(t, st, "stream"); got != data {
			t.Fatalf("got %d bytes, want %d", len(got), len(data))
		}
	})

	t.Run("Stat", func(t *testing.T) {
		st := newStore(t)
		put(t, st, "dir/obj.bin", "12345")
		oi, err := st.Stat(ctx, "dir/obj.bin")
		if err != nil {
			t.Fatal(err)
		}
		if oi.Key != "dir/obj.bin" || oi.Size != 5 || oi.ETag == "" || oi.ModTime.IsZero() {
			t.Fatalf("stat = %+v", oi)
		}
		put(t, st, "dir/obj.bin", "123456")
		oi2, err := st.Stat(ctx, "dir/obj.bin")
		if err != nil {
			t.Fatal(err)
		}
		if oi2.Size != 6 || oi2.ETag == oi.ETag {
			t.Fatalf("stat after rewrite = %+v (before %+v): size or ETag did not change", oi2, oi)
		}
	})

	t.Run("List", func(t *testing.T) {
		st := newStore(t)
		keys := []string{"s/b/2.npy", "s/a/1.json", "s/a/0.npy", "s/c", "t/x", "s2/y", "top"}
		for _, k := range keys {
			put(t, st, k, k)
		}
		check := func(prefix string, want []string) {
			t.Helper()
			objs, err := st.List(ctx, prefix)
			if err != nil {
				t.Fatalf("list %q: %v", prefix, err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.Key)
				if o.Size != int64(len(o.Key)) {
					t.Errorf("list %q: %s size %d, want %d", prefix, o.Key, o.Size, len(o.Key))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("list %q = %v, want %v", prefix, got, want)
			}
		}
		all := append([]string(nil), keys...)
		sort.Strings(all)
		check("", all)
		check("s/", []string{"s/a/0.npy", "s/a/1.json", "s/b/2.npy", "s/c"})
		check("s", []string{"s/a/0.npy", "s/a/1.json", "s/b/2.npy", "s/c", "s2/y"})
		check("s/a/", []string{"s/a/0.npy", "s/a/1.json"})
		check("s/a/1", []string{"s/a/1.json"})
		check("nothing/", nil)
	})

	t.Run("NotFound", func(t *testing.T) {
		st := newStore(t)
		put(t, st, "present", "x")
		if _, err := st.Get(ctx, "missing/key"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get missing: %v, want ErrNotFound", err)
		}
		if _, err := st.Stat(ctx, "missing/key"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat missing: %v, want ErrNotFound", err)
		}
		if _, err := st.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat missing: %v, want ErrNotFound", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		st := newStore(t)
		put(t, st, "d/x", "1")
		put(t, st, "d/y", "2")
		if err := st.Delete(ctx, "d/x"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Stat(ctx, "d/x"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat deleted: %v, want ErrNotFound", err)
		}
		if err := st.Delete(ctx, "d/x"); err != nil {
			t.Fatalf("delete missing: %v, want nil", err)
		}
		objs, err := st.List(ctx, "d/")
		if err != nil || len(objs) != 1 || objs[0].Key != "d/y" {
			t.Fatalf("list after delete = %v, %v", objs, err)
		}
	})

	t.Run("NoOverwrite", func(t *testing.T) {
		st := newStore(t)
		no := storage.PutOptions{NoOverwrite: true}
		if err := st.Put(ctx, "v/1", strings.NewReader("first"), 5, no); err != nil {
			t.Fatalf("first put: %v", err)
		}
		err := st.Put(ctx, "v/1", strings.NewReader("second"), 6, no)
		if !errors.Is(err, storage.ErrExists) {
			t.Fatalf("second put: %v, want ErrExists", err)
		}
		if got := get(t, st, "v/1"); got != "first" {
			t.Fatalf("object was overwritten: %q", got)
		}
	})

	t.Run("Metadata", func(t *testing.T) {
		if !cfg.Metadata {
			t.Skip("this store keeps no user metadata")
		}
		st := newStore(t)
		meta := map[string]string{"sha256": "abc123", "model-type": "localization-net", "export-date": "2026-01-02T03:04:05Z"}
		err := st.Put(ctx, "m/model.onnx", strings.NewReader("onnx"), 4, storage.PutOptions{ContentType: "application/octet-stream", Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		oi, err := st.Stat(ctx, "m/model.onnx")
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range meta {
			if oi.Metadata[k] != v {
				t.Errorf("metadata %s = %q, want %q (all: %v)", k, oi.Metadata[k], v, oi.Metadata)
			}
		}
	})

	t.Run("Large", func(t *testing.T) {
		st := newStore(t)
		data := make([]byte, cfg.LargeSize+12345)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, "big/known", bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
			t.Fatalf("put known size: %v", err)
		}
		if err := st.Put(ctx, "big/unknown", io.MultiReader(bytes.NewReader(data)), -1, storage.PutOptions{}); err != nil {
			t.Fatalf("put unknown size: %v", err)
		}
		for _, k := range []string{"big/known", "big/unknown"} {
			got, err := storage.ReadAll(ctx, st, k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: read back %d bytes, differ from the %d written", k, len(got), len(data))
			}
			oi, err := st.Stat(ctx, k)
			if err != nil || oi.Size != int64(len(data)) {
				t.Fatalf("stat %s = %+v, %v", k, oi, err)
			}
		}
	})

	t.Run("ShortPut", func(t *testing.T) {
		st := newStore(t)
		// A reader that ends before the declared size must not leave an object.
		err := st.Put(ctx, "short", strings.NewReader("abc"), 10, storage.PutOptions{})
		if err == nil {
			t.Fatal("put of 3 bytes declared as 10 succeeded")
		}
		if _, err := st.Stat(ctx, "short"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat after failed put: %v, want ErrNotFound", err)
		}
	})

	t.Run("FailingReader", func(t *testing.T) {
		st := newStore(t)
		boom := errors.New("source broke")
		r := io.MultiReader(bytes.NewReader(make([]byte, cfg.LargeSize)), errReader{boom})
		err := st.Put(ctx, "broken", r, -1, storage.PutOptions{})
		if err == nil {
			t.Fatal("put from a failing reader succeeded")
		}
		if _, err := st.Stat(ctx, "broken"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat after failed put: %v, want ErrNotFound (no partial object)", err)
		}
	})

	t.Run("ContextCanceled", func(t *testing.T) {
		st := newStore(t)
		put(t, st, "c/x", "x")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := st.Put(cctx, "c/y", strings.NewReader("y"), 1, storage.PutOptions{}); err == nil {
			t.Error("put with a canceled context succeeded")
		}
		if _, err := st.List(cctx, "c/"); err == nil {
			t.Error("list with a canceled context succeeded")
		}
		if _, err := st.Stat(ctx, "c/y"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("canceled put left an object: %v", err)
		}
	})

	t.Run("String", func(t *testing.T) {
		st := newStore(t)
		if st.String() == "" {
			t.Fatal("String() is empty")
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func put(t *testing.T, st storage.Store, key, val string) {
	t.Helper()
	if err := st.Put(context.Background(), key, strings.NewReader(val), int64(len(val)), storage.PutOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, st storage.Store, key string) string {
	t.Helper()
	b, err := storage.ReadAll(context.Background(), st, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(b)
}
