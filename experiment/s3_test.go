package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/s3"
	"github.com/heimdall-sdr/trainer/storage/s3/s3test"
)

// s3Config is the smoke config pointed at bucket on srv, with 10 sessions.
func s3Config(t *testing.T, srv *s3test.Server, bucket string, set ...string) config.Config {
	t.Helper()
	return smokeConfig(t, append([]string{
		"store.kind=s3",
		"store.endpoint=http://" + srv.Endpoint,
		"store.bucket=" + bucket,
		"store.access_key=" + srv.AccessKey,
		"store.secret_key=" + srv.SecretKey,
		"simulate.sessions=10",
		"dataset.workers=2",
	}, set...)...)
}

// countingStore counts the objects downloaded through Get, by kind, and
// can run a hook before the n-th IQ download.
type countingStore struct {
	storage.Store
	iq, meta, info atomic.Int32
	hookAt         int32
	hook           func()
	once           sync.Once
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	switch {
	case strings.HasSuffix(key, ".npy"):
		if n := c.iq.Add(1); c.hook != nil && n == c.hookAt {
			c.once.Do(c.hook)
		}
	case strings.HasSuffix(key, "_metadata.json"):
		c.meta.Add(1)
	default:
		c.info.Add(1)
	}
	return c.Store.Get(ctx, key)
}

// TestS3Dataset simulates sessions into MinIO through the config, loads
// them twice through the same dataset code as the local store, and checks
// that the second load downloads no recording (feature cache hits) and that
// the features equal those of the same sessions in a local store.
func TestS3Dataset(t *testing.T) {
	srv := s3test.Shared(t)
	cfg := s3Config(t, srv, s3test.Bucket(t))
	ctx := context.Background()

	y, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), srv.SecretKey) || strings.Contains(string(y), srv.AccessKey) {
		t.Fatal("the saved config contains the S3 credentials")
	}

	sum, err := Simulate(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.String(), "s3://"+cfg.Store.Bucket+" (127.0.0.1:") {
		t.Fatalf("OpenStore gave %s", st)
	}
	cs := &countingStore{Store: st}
	var bar strings.Builder
	first, err := dataset.Load(ctx, cs, cfg.Features, cfg.Dataset, &bar)
	if err != nil {
		t.Fatal(err)
	}
	rep := first.Report
	if rep.Listed != sum.Sessions || rep.Skipped != 0 || rep.CacheMisses != rep.Loaded || rep.CacheHits != 0 {
		t.Fatalf("first load: %s (simulated %d)", rep, sum.Sessions)
	}
	if cs.iq.Load() == 0 || !strings.Contains(bar.String(), "features") {
		t.Fatalf("first load downloaded %d recordings; progress %q", cs.iq.Load(), bar.String())
	}
	t.Logf("first load: %s; downloaded %d IQ, %d receiver metadata, %d session.json", rep, cs.iq.Load(), cs.meta.Load(), cs.info.Load())

	cs2 := &countingStore{Store: st}
	second, err := dataset.Load(ctx, cs2, cfg.Features, cfg.Dataset, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Report.CacheHits != rep.Loaded || second.Report.CacheMisses != 0 {
		t.Fatalf("second load: %s", second.Report)
	}
	if n := cs2.iq.Load() + cs2.meta.Load(); n != 0 {
		t.Fatalf("second load downloaded %d recording objects, want 0", n)
	}
	t.Logf("second load: %s; downloaded 0 recordings, %d session.json (approval status is re-read)", second.Report, cs2.info.Load())
	if !slices.Equal(first.Train.X, second.Train.X) || !slices.Equal(first.Val.Y, second.Val.Y) {
		t.Fatal("cached features differ from the downloaded ones")
	}

	// The same sessions in a local store featurise identically.
	lcfg := smokeConfig(t, "simulate.sessions=10")
	if _, err := Simulate(ctx, lcfg, nil); err != nil {
		t.Fatal(err)
	}
	lst, err := OpenStore(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := dataset.Load(ctx, lst, lcfg.Features, lcfg.Dataset, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loc.Train.X, first.Train.X) || !slices.Equal(loc.Train.IDs, first.Train.IDs) {
		t.Fatal("features from S3 differ from the same sessions in a local store")
	}
}

// TestS3DatasetServerKilled kills a private MinIO in the middle of a
// dataset download: loading fails or skips sessions with a message naming
// the endpoint, the feature cache holds only complete entries, and after a
// restart a rerun loads every session, reusing the entries cached before
// the crash.
func TestS3DatasetServerKilled(t *testing.T) {
	srv := s3test.Start(t)
	bucket := "fault-dataset"
	cfg := s3Config(t, srv, bucket)
	ctx := context.Background()
	if _, err := Simulate(ctx, cfg, nil); err != nil {
		t.Fatal(err)
	}
	c, err := s3.New(srv.Options(bucket)) // fast retries
	if err != nil {
		t.Fatal(err)
	}
	nocache := cfg.Dataset
	nocache.CacheDir = "off"
	ref, err := dataset.Load(ctx, c, cfg.Features, nocache, nil)
	if err != nil {
		t.Fatal(err)
	}

	var killErr error
	cs := &countingStore{Store: c, hookAt: 7*3 + 2, hook: func() { killErr = srv.Kill() }}
	ds, err := dataset.Load(ctx, cs, cfg.Features, cfg.Dataset, nil)
	if killErr != nil {
		t.Fatal(killErr)
	}
	if err == nil {
		t.Fatalf("load with the server killed must fail, not train on what loaded: %s", ds.Report)
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("error does not say the store is unavailable: %v", err)
	}
	msg := err.Error()
	t.Logf("load with the server killed failed: %.600s", msg)
	if !strings.Contains(msg, "at "+srv.Endpoint) {
		t.Errorf("message does not name the endpoint %s", srv.Endpoint)
	}

	dir := filepath.Join(cfg.Dataset.CacheDir, cfg.Features.Key())
	tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(tmp) > 0 {
		t.Fatalf("temporary cache files left: %v", tmp)
	}
	feats, _ := filepath.Glob(filepath.Join(dir, "*.feat"))
	t.Logf("%d feature cache entries written before the crash", len(feats))

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	again, err := dataset.Load(ctx, c, cfg.Features, cfg.Dataset, nil)
	if err != nil {
		t.Fatalf("rerun after restart: %v", err)
	}
	r := again.Report
	if r.Skipped != 0 || r.Loaded != ref.Report.Loaded || r.CacheHits != len(feats) {
		t.Fatalf("rerun: %s; want %d loaded, %d cache hits", r, ref.Report.Loaded, len(feats))
	}
	if !slices.Equal(again.Train.X, ref.Train.X) || !slices.Equal(again.Val.X, ref.Val.X) {
		t.Fatal("rerun features differ from a clean load: the cache was corrupted")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// TestTrainFromS3Publishes is the deployment path: sessions in MinIO, a
// smoke training through the same code, then the exported model published
// to the models bucket and verified.
func TestTrainFromS3Publishes(t *testing.T) {
	needORT(t)
	srv := s3test.Shared(t)
	models := s3test.Bucket(t)
	cfg := s3Config(t, srv, s3test.Bucket(t), "store.models_bucket="+models, "simulate.sessions=24",
		"run.name=s3run", "train.epochs=2", "export.max_mae=1e-4")
	ctx := context.Background()
	res, err := Train(ctx, cfg, TrainOptions{SimulateIfEmpty: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published == nil {
		t.Fatal("model not published at the end of training with store.kind=s3")
	}
	st, err := OpenModelStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	oi, err := st.Stat(ctx, res.Published.Key)
	if err != nil {
		t.Fatalf("published object: %v", err)
	}
	local, err := os.Stat(filepath.Join(res.RunDir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if oi.Size != local.Size() || oi.Metadata["Sha256"]+oi.Metadata["sha256"] == "" {
		t.Errorf("published object: size %d (local %d), metadata %v", oi.Size, local.Size(), oi.Metadata)
	}
	mb, err := storage.ReadAll(ctx, st, res.Published.MetadataKey)
	if err != nil {
		t.Fatalf("metadata object: %v", err)
	}
	var meta map[string]any
	if err := json.Unmarshal(mb, &meta); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"parity", "inference_metrics", "sha256", "receivers", "export_date"} {
		if meta[k] == nil {
			t.Errorf("published metadata lacks %q", k)
		}
	}
	if _, err := os.Stat(filepath.Join(res.RunDir, rundir.BenchFile)); err != nil {
		t.Errorf("no %s after export: %v", rundir.BenchFile, err)
	}
}
