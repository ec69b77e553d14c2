package dataset_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/kernels"
	"github.com/heimdall-sdr/trainer/sim"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/s3"
	"github.com/heimdall-sdr/trainer/storage/s3/s3test"
)

// killAt runs kill before the n-th IQ download.
type killAt struct {
	storage.Store
	n    atomic.Int32
	at   int32
	kill func()
	once sync.Once
}

func (k *killAt) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if strings.HasSuffix(key, ".npy") && k.n.Add(1) == k.at {
		k.once.Do(k.kill)
	}
	return k.Store.Get(ctx, key)
}

// TestLoadFailsFastWhenStoreDies stops MinIO in the middle of the feature
// download, with the S3 client's default retry policy (what `train` uses):
// the load fails within 15 s of the server's death with one error naming
// the endpoint, the feature cache keeps its complete entries, and after a
// restart the rerun reuses them.
func TestLoadFailsFastWhenStoreDies(t *testing.T) {
	srv := s3test.Start(t)
	c, err := s3.New(s3.Options{Endpoint: "http://" + srv.Endpoint, Bucket: "heimdall-raw-iq",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	so := sim.DefaultOptions()
	so.Sessions = 40
	if _, err := sim.Generate(ctx, c, so, nil); err != nil {
		t.Fatal(err)
	}
	o := dataset.DefaultOptions()
	o.CacheDir = t.TempDir()
	o.Workers = 4
	feat := kernels.DefaultMelConfig()

	var killed time.Time
	var killErr error
	ks := &killAt{Store: c, at: 7 * 6, kill: func() { killed = time.Now(); killErr = srv.Kill() }}
	_, err = dataset.Load(ctx, ks, feat, o, nil)
	took := time.Since(killed)
	if killErr != nil {
		t.Fatal(killErr)
	}
	if err == nil {
		t.Fatal("load succeeded with the server killed")
	}
	t.Logf("load failed %s after the server was killed: %v", took.Round(time.Millisecond), err)
	if took > 15*time.Second {
		t.Errorf("load gave up %s after the server died, want within 15 s", took.Round(time.Millisecond))
	}
	if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), srv.Endpoint) {
		t.Errorf("error does not say the store at %s is unavailable: %v", srv.Endpoint, err)
	}
	if n := strings.Count(err.Error(), "s3: "); n != 1 {
		t.Errorf("want one error, got %d s3 errors in: %v", n, err)
	}
	dir := filepath.Join(o.CacheDir, feat.Key())
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) > 0 {
		t.Fatalf("temporary cache files left: %v", tmp)
	}
	feats, _ := filepath.Glob(filepath.Join(dir, "*.feat"))
	if len(feats) == 0 {
		t.Fatal("no feature cache entry survived")
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	c2, err := s3.New(s3.Options{Endpoint: "http://" + srv.Endpoint, Bucket: "heimdall-raw-iq",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dataset.Load(ctx, c2, feat, o, nil)
	if err != nil {
		t.Fatalf("rerun after restart: %v", err)
	}
	if r := ds.Report; r.CacheHits != len(feats) || r.Skipped != 0 {
		t.Fatalf("rerun: %s; want %d cache hits", r, len(feats))
	}
	t.Logf("rerun after restart: %s", ds.Report)
}
