package tracking

// Integration tests against a real MLflow server: scripts/mlflow.sh starts
// one and make test (scripts/with-services.sh) exports its URI as
// HEIMDALL_TEST_MLFLOW_URI. Without it the tests skip, unless
// HEIMDALL_REQUIRE_SERVICES=1 (make test), where they fail.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/heimdall-sdr/trainer/tracking/mlflowtest"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/storage/s3"
)

func testClient(t *testing.T, uri string) *Client {
	t.Helper()
	c, err := NewClient(uri, ClientOptions{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// epochMetrics returns the metrics of `epochs` epochs with 40 keys each.
func epochMetrics(from, epochs int) []Metric {
	var ms []Metric
	for e := from; e < from+epochs; e++ {
		for k := range 40 {
			ms = append(ms, Metric{Key: fmt.Sprintf("m/%02d", k), Value: Float(float64(e) + float64(k)/100), Step: Int64(e * 10)})
		}
	}
	return ms
}

// assertMetricsOnce checks that the run has every (key, step) of want
// exactly once with its value.
func assertMetricsOnce(t *testing.T, c *Client, runID string, want []Metric) {
	t.Helper()
	ctx := context.Background()
	wantBy := map[string]map[int64]float64{}
	for _, m := range want {
		if wantBy[m.Key] == nil {
			wantBy[m.Key] = map[int64]float64{}
		}
		wantBy[m.Key][int64(m.Step)] = float64(m.Value)
	}
	for key, steps := range wantBy {
		hist, err := c.MetricHistory(ctx, runID, key)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]int{}
		for _, h := range hist {
			seen[int64(h.Step)]++
			if v, ok := steps[int64(h.Step)]; !ok || v != float64(h.Value) {
				t.Errorf("%s step %d: value %v, want %v (known %v)", key, h.Step, h.Value, v, ok)
			}
		}
		for step := range steps {
			if seen[step] != 1 {
				t.Errorf("%s step %d: %d values on the server, want 1", key, step, seen[step])
			}
		}
		if len(hist) != len(steps) {
			t.Errorf("%s: %d values on the server, want %d", key, len(hist), len(steps))
		}
	}
}

// TestMLflowRoundTrip logs a complete run, registers and stages a model,
// and reads everything back through the REST API.
func TestMLflowRoundTrip(t *testing.T) {
	uri := mlflowtest.URI(t)
	c := testClient(t, uri)
	ctx := context.Background()
	runDir := t.TempDir()
	exp, model := randName("heimdall-test"), randName("heimdall-localization-onnx-test")

	blob := make([]byte, 3<<20+17) // Bigger than any single buffer, odd size.
	_, _ = rand.Read(blob)
	writeFile(t, filepath.Join(runDir, "checkpoints", "ckpt-000010.bin"), blob)
	writeFile(t, filepath.Join(runDir, "config.yaml"), []byte("train:\n  epochs: 2\n"))
	onnx := append([]byte("\x08\x07fake onnx "), blob[:1000]...)
	writeFile(t, filepath.Join(runDir, "model.onnx"), onnx)

	start := time.Now().Add(-time.Minute)
	tr, err := StartMLflow(ctx, c, runDir, RunSpec{Experiment: exp, StartTime: start,
		Tags: map[string]string{"phase": "training", "service": "training", "model": "LocalizationNet"}})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("w", 7000)
	must(tr.LogParams(ctx, map[string]string{"epochs": "2", "optimizer": "AdamW", "backbone.widths": long}))
	must(tr.SetTags(ctx, map[string]string{"backend": "xla:cpu", "git_commit": "abc123"}))
	metrics := epochMetrics(1, 30) // 1200 values: two log-batch requests.
	must(tr.LogMetrics(ctx, metrics[:600]))
	must(tr.LogMetrics(ctx, metrics[600:]))
	must(tr.LogArtifact(ctx, filepath.Join(runDir, "config.yaml"), "config.yaml"))
	must(tr.LogArtifact(ctx, filepath.Join(runDir, "checkpoints", "ckpt-000010.bin"), "checkpoints/ckpt-000010.bin"))
	must(tr.LogArtifact(ctx, filepath.Join(runDir, "model.onnx"), "model/model.onnx"))
	reg, err := tr.RegisterModel(ctx, ModelSpec{Name: model, ArtifactPath: "model/model.onnx", Stage: StageStaging, Alias: "staging",
		Tags: map[string]string{"framework": "gomlx", "format": "onnx", "input_shape": "[-1, 7, 128, 32]", "output_count": "2"}})
	must(err)
	must(tr.End(ctx, StatusFinished))
	rep := tr.Report()
	if rep.Failed || rep.RunID == "" || reg.Version == "" {
		t.Fatalf("report %+v, registration %+v", rep, reg)
	}

	run, err := c.GetRun(ctx, rep.RunID)
	must(err)
	if run.Info.Status != StatusFinished || !strings.HasPrefix(run.Info.RunName, "rf-localization_") || run.Info.EndTime == 0 ||
		int64(run.Info.StartTime) != start.UnixMilli() || run.Info.ExperimentID != rep.ExperimentID {
		t.Errorf("run info: %+v", run.Info)
	}
	params := map[string]string{}
	for _, p := range run.Data.Params {
		params[p.Key] = p.Value
	}
	if params["epochs"] != "2" || params["optimizer"] != "AdamW" || len(params["backbone.widths"]) != MaxParamValLength {
		t.Errorf("params: %v", params)
	}
	tags := map[string]string{}
	for _, tg := range run.Data.Tags {
		tags[tg.Key] = tg.Value
	}
	for k, v := range map[string]string{"phase": "training", "service": "training", "model": "LocalizationNet", "backend": "xla:cpu", "git_commit": "abc123"} {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}
	assertMetricsOnce(t, c, rep.RunID, metrics)

	files, err := c.ListArtifacts(ctx, rep.RunID, "checkpoints")
	must(err)
	if len(files) != 1 || files[0].Path != "checkpoints/ckpt-000010.bin" || int64(files[0].FileSize) != int64(len(blob)) {
		t.Errorf("artifacts/list checkpoints: %+v", files)
	}
	for rel, want := range map[string][]byte{"checkpoints/ckpt-000010.bin": blob, "model/model.onnx": onnx} {
		var got bytes.Buffer
		must(c.DownloadArtifact(ctx, run.Info.ArtifactURI, rel, &got))
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: downloaded %d bytes, not identical to the %d uploaded", rel, got.Len(), len(want))
		}
	}

	checkArtifactsInS3(t, rep.RunID, "model/model.onnx", len(onnx))

	mv, err := c.GetModelVersion(ctx, model, reg.Version)
	must(err)
	if mv.CurrentStage != StageStaging || mv.RunID != rep.RunID || mv.Source != run.Info.ArtifactURI+"/model/model.onnx" {
		t.Errorf("model version: %+v", mv)
	}
	mvTags := map[string]string{}
	for _, tg := range mv.Tags {
		mvTags[tg.Key] = tg.Value
	}
	if mvTags["framework"] != "gomlx" || mvTags["format"] != "onnx" || mvTags["output_count"] != "2" || mvTags["input_shape"] == "" {
		t.Errorf("model version tags: %v", mvTags)
	}
	byAlias, err := c.ModelVersionByAlias(ctx, model, "staging")
	must(err)
	if byAlias.Version != reg.Version {
		t.Errorf("alias staging -> version %s, want %s", byAlias.Version, reg.Version)
	}

	// Promotion to production.
	p, err := Promote(ctx, c, model, reg.Version, StageProduction, "")
	must(err)
	if p.CurrentStage != StageProduction {
		t.Errorf("promoted: stage %s", p.CurrentStage)
	}
	if byAlias, err = c.ModelVersionByAlias(ctx, model, "production"); err != nil || byAlias.Version != reg.Version {
		t.Errorf("alias production: %+v %v", byAlias, err)
	}

	// The errors name the endpoint and carry the server's code.
	_, err = c.GetRun(ctx, "0123456789abcdef0123456789abcdef")
	if !IsCode(err, CodeNotFound) || !strings.Contains(err.Error(), "GET /api/2.0/mlflow/runs/get") {
		t.Errorf("missing run: %v", err)
	}

	// A second sync of the finished run sends nothing.
	s, err := Replay(ctx, c, runDir)
	must(err)
	if s.Metrics+s.Params+s.Tags+s.Artifacts+s.Models != 0 || s.RunCreated || s.StatusSent != "" {
		t.Errorf("replay of a complete run sent %+v", s)
	}
}

func closedPortURI(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// TestMLflowServerDown: with no server, training-side calls succeed, the
// report says how to replay, and replaying to a running server sends the
// whole run once, however often it is replayed.
func TestMLflowServerDown(t *testing.T) {
	uri := mlflowtest.URI(t)
	ctx := context.Background()
	runDir := t.TempDir()
	exp := randName("heimdall-test-down")
	writeFile(t, filepath.Join(runDir, "metrics.jsonl"), []byte(`{"epoch":1}`+"\n"))
	writeFile(t, filepath.Join(runDir, "model.onnx"), []byte("onnx bytes"))

	down := closedPortURI(t)
	cDown := testClient(t, down)
	tr, err := StartMLflow(ctx, cDown, runDir, RunSpec{Experiment: exp, Tags: map[string]string{"phase": "training"}})
	if err != nil {
		t.Fatal(err)
	}
	metrics := epochMetrics(1, 3)
	for _, err := range []error{
		tr.LogParams(ctx, map[string]string{"epochs": "3"}),
		tr.LogMetrics(ctx, metrics),
		tr.LogArtifact(ctx, filepath.Join(runDir, "metrics.jsonl"), "metrics.jsonl"),
		tr.LogArtifact(ctx, filepath.Join(runDir, "model.onnx"), "model/model.onnx"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	model := randName("heimdall-localization-onnx-test")
	if _, err := tr.RegisterModel(ctx, ModelSpec{Name: model, ArtifactPath: "model/model.onnx", Stage: StageStaging, Alias: "staging"}); err != nil {
		t.Fatal(err)
	}
	if err := tr.End(ctx, StatusFinished); err != nil {
		t.Fatal(err)
	}
	rep := tr.Report()
	if !rep.Failed || rep.RunID != "" || !strings.Contains(rep.Error, "connection refused") ||
		!strings.Contains(rep.Replay, "heimdall tracking replay") || !strings.Contains(rep.Replay, runDir) {
		t.Fatalf("report: %+v", rep)
	}
	if got, _ := StateURI(runDir); got != down {
		t.Errorf("StateURI = %q, want %q", got, down)
	}
	t.Logf("report: %s", rep)

	// The server is up now (a different URI: the run is sent afresh).
	c := testClient(t, uri)
	s, err := Replay(ctx, c, runDir)
	if err != nil {
		t.Fatal(err)
	}
	if !s.RunCreated || s.Metrics != len(metrics) || s.Artifacts != 2 || s.Models != 1 || s.StatusSent != StatusFinished {
		t.Errorf("first replay: %+v", s)
	}
	s2, err := Replay(ctx, c, runDir)
	if err != nil {
		t.Fatal(err)
	}
	if s2.RunCreated || s2.Metrics+s2.Artifacts+s2.Models+s2.Params+s2.Tags != 0 || s2.RunID != s.RunID {
		t.Errorf("second replay sent %+v", s2)
	}
	run, err := c.GetRun(ctx, s.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.Status != StatusFinished || len(run.Data.Params) != 1 {
		t.Errorf("replayed run: %+v", run)
	}
	assertMetricsOnce(t, c, s.RunID, metrics)
	mv, err := c.ModelVersionByAlias(ctx, model, "staging")
	if err != nil || mv.CurrentStage != StageStaging || mv.RunID != s.RunID {
		t.Errorf("replayed model version: %+v %v", mv, err)
	}
}

// flakyProxy sits between the tracker and the real server. mode 0 passes
// requests through, 1 refuses them (server down), 2 forwards them and then
// answers 502 as if the answer was lost (the server did commit).
type flakyProxy struct {
	mode atomic.Int32
	srv  *httptest.Server
}

func newFlakyProxy(t *testing.T, target string) *flakyProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p.mode.Load() {
		case 1:
			http.Error(w, "proxy: server down", http.StatusServiceUnavailable)
		case 2:
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			http.Error(w, "proxy: answer lost", http.StatusBadGateway)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// TestMLflowFailsMidRun: the server fails after some epochs were sent,
// one batch was even committed without the client hearing back; training
// goes on, and replaying (twice) completes the same run without
// duplicating a metric.
func TestMLflowFailsMidRun(t *testing.T) {
	uri := mlflowtest.URI(t)
	ctx := context.Background()
	runDir := t.TempDir()
	proxy := newFlakyProxy(t, uri)
	c := testClient(t, proxy.srv.URL)
	tr, err := StartMLflow(ctx, c, runDir, RunSpec{Experiment: randName("heimdall-test-midrun")})
	if err != nil {
		t.Fatal(err)
	}
	var all []Metric
	logEpochs := func(from, n int) {
		ms := epochMetrics(from, n)
		all = append(all, ms...)
		if err := tr.LogMetrics(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}
	logEpochs(1, 2) // Sent.
	if r := tr.Report(); r.Failed || r.RunID == "" {
		t.Fatalf("before the failure: %+v", r)
	}
	proxy.mode.Store(2)
	logEpochs(3, 1) // Committed by the server, answer lost.
	proxy.mode.Store(1)
	logEpochs(4, 2) // Buffered only.
	proxy.mode.Store(0)
	logEpochs(6, 1) // Buffered: the tracker stopped sending after the failure.
	proxy.mode.Store(1)
	if err := tr.End(ctx, StatusFailed); err != nil { // The retry at End fails too.
		t.Fatal(err)
	}
	rep := tr.Report()
	if !rep.Failed || !strings.Contains(rep.Error, "runs/log-batch") || !strings.Contains(rep.Error, "502") {
		t.Fatalf("report: %+v", rep)
	}

	proxy.mode.Store(0) // The server is back.
	for i := range 2 {
		s, err := Replay(ctx, c, runDir)
		if err != nil {
			t.Fatalf("replay %d: %v", i+1, err)
		}
		if s.RunID != rep.RunID || s.RunCreated {
			t.Errorf("replay %d went to run %s (created %v), want %s", i+1, s.RunID, s.RunCreated, rep.RunID)
		}
		want := SyncStats{Metrics: 3 * 40, Duplicates: 40, StatusSent: StatusFailed}
		if i == 1 {
			want = SyncStats{}
		}
		if s.Metrics != want.Metrics || s.Duplicates != want.Duplicates || s.StatusSent != want.StatusSent {
			t.Errorf("replay %d: %+v, want metrics %d duplicates %d status %q", i+1, s, want.Metrics, want.Duplicates, want.StatusSent)
		}
	}
	assertMetricsOnce(t, c, rep.RunID, all)
	run, err := c.GetRun(ctx, rep.RunID)
	if err != nil || run.Info.Status != StatusFailed {
		t.Errorf("run after replay: %+v %v", run, err)
	}
}

// TestMLflowReplayTwiceNoDuplicates: a crash right after a metrics batch
// reached the server but before replay-state.json recorded it; replaying
// twice leaves each value once.
func TestMLflowReplayTwiceNoDuplicates(t *testing.T) {
	uri := mlflowtest.URI(t)
	ctx := context.Background()
	runDir := t.TempDir()
	c := testClient(t, uri)
	tr, err := StartMLflow(ctx, c, runDir, RunSpec{Experiment: randName("heimdall-test-replay")})
	if err != nil {
		t.Fatal(err)
	}
	ms := epochMetrics(1, 5)
	if err := tr.LogMetrics(ctx, ms); err != nil {
		t.Fatal(err)
	}
	if err := tr.End(ctx, StatusKilled); err != nil {
		t.Fatal(err)
	}
	runID := tr.Report().RunID
	// Forget that the metrics were sent, as after a crash mid-send.
	st, err := loadState(filepath.Join(runDir, Dir), c.URI())
	if err != nil {
		t.Fatal(err)
	}
	st.MetricsSent, st.MetricsInFlight = 0, true
	if err := st.save(); err != nil {
		t.Fatal(err)
	}
	var dup []int
	for range 2 {
		s, err := Replay(ctx, c, runDir)
		if err != nil {
			t.Fatal(err)
		}
		dup = append(dup, s.Duplicates, s.Metrics)
	}
	if want := []int{len(ms), 0, 0, 0}; fmt.Sprint(dup) != fmt.Sprint(want) {
		t.Errorf("replays (duplicates, sent): %v, want %v", dup, want)
	}
	assertMetricsOnce(t, c, runID, ms)
	run, err := c.GetRun(ctx, runID)
	if err != nil || run.Info.Status != StatusKilled {
		t.Errorf("run: %+v %v", run, err)
	}
	keys := map[string]bool{}
	for _, m := range run.Data.Metrics {
		keys[m.Key] = true
	}
	if len(keys) != 40 {
		t.Errorf("run has %d metric keys, want 40: %v", len(keys), sortedKeys(keys))
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkArtifactsInS3 checks, when the server stores its artifacts in MinIO
// (HEIMDALL_TEST_MLFLOW_ARTIFACTS=s3://bucket, set by with-services.sh), that
// the artifact went through the proxy into that bucket.
func checkArtifactsInS3(t *testing.T, runID, rel string, size int) {
	t.Helper()
	dest := os.Getenv("HEIMDALL_TEST_MLFLOW_ARTIFACTS")
	bucket, ok := strings.CutPrefix(dest, "s3://")
	if !ok {
		t.Logf("MLflow artifacts on local disk (HEIMDALL_TEST_MLFLOW_ARTIFACTS=%q)", dest)
		return
	}
	st, err := s3.New(s3.Options{
		Endpoint:  os.Getenv("HEIMDALL_TEST_S3_ENDPOINT"),
		Bucket:    bucket,
		AccessKey: os.Getenv("HEIMDALL_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("HEIMDALL_TEST_S3_SECRET_KEY"),
	})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(context.Background(), "")
	if err != nil {
		t.Fatalf("list s3://%s: %v", bucket, err)
	}
	suffix := runID + "/artifacts/" + rel
	for _, o := range objs {
		if strings.HasSuffix(o.Key, suffix) {
			if o.Size != int64(size) {
				t.Errorf("s3://%s/%s: %d bytes, uploaded %d", bucket, o.Key, o.Size, size)
			}
			return
		}
	}
	t.Errorf("artifact %s of run %s not found in s3://%s (%d objects)", rel, runID, bucket, len(objs))
}
