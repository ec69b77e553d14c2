package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/s3"
	"github.com/heimdall-sdr/trainer/storage/s3/s3test"
)

// faultClient returns a client on a fresh bucket of the shared MinIO,
// through a fault proxy.
func faultClient(t *testing.T) (*s3.Client, *s3test.Proxy) {
	t.Helper()
	srv := s3test.Shared(t)
	px := s3test.StartProxy(t, srv.Endpoint)
	o := srv.Options(s3test.Bucket(t))
	o.Endpoint = "http://" + px.Endpoint
	o.MaxAttempts = 6
	o.RetryBase = 5 * time.Millisecond
	o.RetryMax = 50 * time.Millisecond
	o.PartSize = 5 << 20
	c, err := s3.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c, px
}

// TestPutConcurrentFaults is the reproduction of issue 13 (1): many small
// puts from bytes.Readers, 16 at a time like `simulate`, while the proxy
// answers 503 SlowDown early (after reading part of the body) or resets the
// connection mid-body on a share of the PUTs. Every put must succeed within
// the retry budget and every object hold exactly its bytes.
func TestPutConcurrentFaults(t *testing.T) {
	c, px := faultClient(t)
	ctx := context.Background()
	if err := c.Put(ctx, "warm", bytes.NewReader([]byte("x")), 1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	px.Rules(13,
		s3test.Rule{Ops: []s3test.Op{s3test.OpPut}, Fault: s3test.SlowDown, Rate: 0.15},
		s3test.Rule{Ops: []s3test.Op{s3test.OpPut}, Fault: s3test.Reset, Rate: 0.1},
		s3test.Rule{Ops: []s3test.Op{s3test.OpPut}, Fault: s3test.ShortBody, Rate: 0.05},
		s3test.Rule{Ops: []s3test.Op{s3test.OpPut}, Fault: s3test.Incomplete, Rate: 0.05},
	)
	const n = 400
	objs := make([][]byte, n)
	for i := range objs {
		size := 200 + i%5*1000
		if i%3 == 0 {
			size = 136_000
		}
		objs[i] = randomBytes(size)
		objs[i][0] = byte(i)
		objs[i][len(objs[i])-1] = byte(i >> 8)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	for i := range objs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = c.Put(ctx, fmt.Sprintf("sessions/s%04d/obj", i), bytes.NewReader(objs[i]), int64(len(objs[i])), storage.PutOptions{})
		}()
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("put %d (%d bytes): %v", i, len(objs[i]), err)
			}
		}
	}
	t.Logf("faults injected: %v; %d of %d puts failed", px.Counts(), failed, n)
	px.Rules(0)
	for i := range objs {
		if errs[i] != nil {
			continue
		}
		got, err := storage.ReadAll(ctx, c, fmt.Sprintf("sessions/s%04d/obj", i))
		if err != nil || sha256.Sum256(got) != sha256.Sum256(objs[i]) {
			t.Errorf("object %d: read %d bytes (want %d), %v", i, len(got), len(objs[i]), err)
		}
	}
}
