package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/s3"
	"github.com/heimdall-sdr/trainer/storage/s3/s3test"
	"github.com/heimdall-sdr/trainer/storage/storagetest"
)

// TestStore runs the shared storage suite against the MinIO server of
// scripts/with-services.sh, one fresh bucket per subtest.
func TestStore(t *testing.T) {
	srv := s3test.Shared(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		o := srv.Options(s3test.Bucket(t))
		o.PartSize = 5 << 20 // the 8 MiB object becomes a 2-part multipart upload
		c, err := s3.New(o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, storagetest.Config{Metadata: true, LargeSize: 8 << 20})
}

func TestPutVerified(t *testing.T) {
	srv := s3test.Shared(t)
	c, err := s3.New(srv.Options(s3test.Bucket(t)))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(path, bytes.Repeat([]byte("onnx"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sum, err := storage.PutVerified(ctx, c, "models/localization/v1.onnx", path, map[string]string{"format": "onnx"})
	if err != nil {
		t.Fatal(err)
	}
	oi, err := c.Stat(ctx, "models/localization/v1.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if oi.Metadata["sha256"] != sum || oi.Metadata["file-size"] != "4000" || oi.Metadata["format"] != "onnx" {
		t.Fatalf("metadata %v (sha256 %s)", oi.Metadata, sum)
	}
	if _, err := storage.PutVerified(ctx, c, "models/localization/v1.onnx", path, nil); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second PutVerified: %v, want ErrExists", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	for _, tc := range []struct {
		o    s3.Options
		want string
	}{
		{s3.Options{Bucket: "b", AccessKey: "a", SecretKey: "s"}, "endpoint is empty"},
		{s3.Options{Endpoint: "h:1", AccessKey: "a", SecretKey: "s"}, "bucket is empty"},
		{s3.Options{Endpoint: "h:1", Bucket: "b"}, "no credentials for h:1"},
		{s3.Options{Endpoint: "ftp://h:1", Bucket: "b", AccessKey: "a", SecretKey: "s"}, "want host:port"},
		{s3.Options{Endpoint: "h:1", Bucket: "b", AccessKey: "a", SecretKey: "s", PartSize: 1 << 20}, "below the S3 minimum"},
	} {
		_, err := s3.New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want error containing %q", tc.o, err, tc.want)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "from-env")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	c, err := s3.New(s3.Options{Endpoint: "http://127.0.0.1:1", Bucket: "b"})
	if err != nil {
		t.Fatalf("AWS_* credentials not used: %v", err)
	}
	if got := c.String(); got != "s3://b (127.0.0.1:1)" {
		t.Fatalf("String() = %q", got)
	}
}

// failingTransport answers every request with an error status or a broken
// connection, counting the attempts.
type failingTransport struct {
	status int
	calls  atomic.Int32
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	if f.status == 0 {
		return nil, fmt.Errorf("dial tcp %s: connect: connection refused", r.URL.Host)
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>m</Message></Error>`, http.StatusText(f.status))
	if f.status == http.StatusNotFound {
		body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`
	}
	return &http.Response{StatusCode: f.status, Status: http.StatusText(f.status), Header: http.Header{"Content-Type": {"application/xml"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// TestRetry checks the retry policy without a server: transient failures
// are retried MaxAttempts times and named in the error; NoSuchKey is not
// retried and maps to storage.ErrNotFound; credentials never appear.
func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		wantCalls int32
		notFound  bool
	}{
		{"refused", 0, 3, false},
		{"503", http.StatusServiceUnavailable, 3, false},
		{"404", http.StatusNotFound, 1, true},
		{"403", http.StatusForbidden, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &failingTransport{status: tc.status}
			c, err := s3.New(s3.Options{Endpoint: "http://127.0.0.1:9", Bucket: "bkt", Region: "us-east-1",
				AccessKey: "AKIDSECRETLESS", SecretKey: "very-secret-key", MaxAttempts: 3, RetryBase: time.Millisecond, Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Stat(context.Background(), "sessions/x/session.json")
			if err == nil {
				t.Fatal("stat succeeded")
			}
			if got := tr.calls.Load(); got != tc.wantCalls {
				t.Errorf("%d attempts, want %d (%v)", got, tc.wantCalls, err)
			}
			if errors.Is(err, storage.ErrNotFound) != tc.notFound {
				t.Errorf("ErrNotFound = %v, want %v: %v", !tc.notFound, tc.notFound, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "s3: stat s3://bkt/sessions/x/session.json at 127.0.0.1:9") {
				t.Errorf("error does not name operation, object and endpoint: %s", msg)
			}
			if tc.wantCalls > 1 && !strings.Contains(msg, "gave up after 3 attempts") {
				t.Errorf("error does not say it retried: %s", msg)
			}
			if strings.Contains(msg, "very-secret-key") {
				t.Errorf("error leaks the secret key: %s", msg)
			}
		})
	}
	t.Run("ContextCanceled", func(t *testing.T) {
		c, err := s3.New(s3.Options{Endpoint: "http://127.0.0.1:9", Bucket: "bkt", Region: "us-east-1",
			AccessKey: "a", SecretKey: "s", MaxAttempts: 1000, RetryBase: 10 * time.Millisecond, Transport: &failingTransport{}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = c.List(ctx, "sessions/")
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("list = %v, want the deadline", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("retries ignored the context: %s", d)
		}
	})
}

// killingReader streams data and calls kill once after `at` bytes. It hides
// io.ReaderAt so minio-go reads it sequentially.
type killingReader struct {
	r     *bytes.Reader
	at    int64
	kill  func()
	fired bool
}

func (k *killingReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	if pos := k.r.Size() - int64(k.r.Len()); !k.fired && pos >= k.at {
		k.fired = true
		k.kill()
	}
	return n, err
}

func (k *killingReader) Seek(off int64, whence int) (int64, error) { return k.r.Seek(off, whence) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestUploadServerKilled kills a private MinIO in the middle of a
// multipart upload: the put fails naming the object and the endpoint, no
// object becomes visible, and after a restart the upload completes.
func TestUploadServerKilled(t *testing.T) {
	srv := s3test.Start(t)
	o := srv.Options("fault-upload")
	o.PartSize = 5 << 20
	c, err := s3.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Put(ctx, "models/other.txt", strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(24 << 20)
	key := "models/localization/v20260101_000000.onnx"
	var killErr error
	// Not a Seeker: one attempt, like any stream.
	r := io.MultiReader(&killingReader{r: bytes.NewReader(data), at: 12 << 20, kill: func() { killErr = srv.Kill() }})
	start := time.Now()
	err = c.Put(ctx, key, r, -1, storage.PutOptions{NoOverwrite: true})
	if killErr != nil {
		t.Fatal(killErr)
	}
	if err == nil {
		t.Fatal("put succeeded although the server was killed mid-upload")
	}
	t.Logf("put failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if !strings.Contains(err.Error(), "s3: put s3://fault-upload/"+key+" at "+srv.Endpoint) {
		t.Errorf("error does not name the object and endpoint: %v", err)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after the failed upload, stat = %v; want ErrNotFound (no partial object)", err)
	}
	objs, err := c.List(ctx, "models/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "models/other.txt" {
		t.Fatalf("list after failed upload = %+v", objs)
	}
	inc, err := c.IncompleteUploads(ctx, "models/")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incomplete uploads left by the killed server: %v", inc)
	if err := c.RemoveIncomplete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if inc, err := c.IncompleteUploads(ctx, "models/"); err != nil || len(inc) != 0 {
		t.Fatalf("incomplete uploads after RemoveIncomplete: %v, %v", inc, err)
	}

	// The rerun completes, and no-overwrite still holds afterwards.
	if err := c.Put(ctx, key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{NoOverwrite: true}); err != nil {
		t.Fatalf("rerun after restart: %v", err)
	}
	got, err := storage.ReadAll(ctx, c, key)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (want %d), %v", len(got), len(data), err)
	}
	if err := c.Put(ctx, key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{NoOverwrite: true}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("overwrite of a published version: %v, want ErrExists", err)
	}
}

// TestUploadRetriesAcrossRestart kills the server mid-upload of a seekable
// reader and brings it back: the put retries and completes by itself.
func TestUploadRetriesAcrossRestart(t *testing.T) {
	srv := s3test.Start(t)
	o := srv.Options("fault-retry")
	o.PartSize = 5 << 20
	o.MaxAttempts = 10
	o.RetryBase = 100 * time.Millisecond
	o.RetryMax = time.Second
	c, err := s3.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := randomBytes(16 << 20)
	restarted := make(chan error, 1)
	kr := &killingReader{r: bytes.NewReader(data), at: 8 << 20, kill: func() {
		if err := srv.Kill(); err != nil {
			restarted <- err
			return
		}
		go func() {
			time.Sleep(300 * time.Millisecond)
			restarted <- srv.Restart()
		}()
	}}
	start := time.Now()
	if err := c.Put(ctx, "big.bin", kr, int64(len(data)), storage.PutOptions{}); err != nil {
		t.Fatalf("put across a restart: %v", err)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	t.Logf("put completed across a server restart in %s", time.Since(start).Round(time.Millisecond))
	got, err := storage.ReadAll(ctx, c, "big.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (want %d), %v", len(got), len(data), err)
	}
}

// TestDownloadResumesAcrossRestart kills the server in the middle of a
// download and restarts it: the reader resumes with a ranged GET and
// returns exactly the object's bytes.
func TestDownloadResumesAcrossRestart(t *testing.T) {
	srv := s3test.Start(t)
	o := srv.Options("fault-get")
	ranged := &rangeCounter{rt: http.DefaultTransport}
	o.Transport = ranged
	o.MaxAttempts = 10
	o.RetryBase = 100 * time.Millisecond
	o.RetryMax = time.Second
	c, err := s3.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := randomBytes(32 << 20)
	if err := c.Put(ctx, "big.npy", bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := c.Get(ctx, "big.npy")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		restarted <- srv.Restart()
	}()
	rest, err := io.ReadAll(rc)
	if rerr := <-restarted; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("read across a restart: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes across a restart, want the %d written", len(got), len(data))
	}
	if ranged.n.Load() == 0 {
		t.Fatal("no ranged GET: the download did not resume")
	}
}

// rangeCounter counts the requests that carry a Range header.
type rangeCounter struct {
	rt http.RoundTripper
	n  atomic.Int32
}

func (r *rangeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Range") != "" {
		r.n.Add(1)
	}
	return r.rt.RoundTrip(req)
}
