package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/kernels"
	"github.com/heimdall-sdr/trainer/npy"
	"github.com/heimdall-sdr/trainer/session"
	"github.com/heimdall-sdr/trainer/sim"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
)

// simulated returns a local store with n simulated sessions.
func simulated(t *testing.T, n int) *local.Store {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := sim.DefaultOptions()
	o.Sessions = n
	o.Seed = 3
	if _, err := sim.Generate(context.Background(), st, o, nil); err != nil {
		t.Fatal(err)
	}
	return st
}

func opts(t *testing.T) Options {
	o := DefaultOptions()
	o.CacheDir = filepath.Join(t.TempDir(), "cache")
	return o
}

func TestLoadShapesAndSplit(t *testing.T) {
	ctx := context.Background()
	st := simulated(t, 40)
	feat := kernels.DefaultMelConfig()
	ds, err := Load(ctx, st, feat, opts(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := ds.Report
	if rep.Listed != 40 || rep.Approved+sum(rep.NotApproved) != 40 {
		t.Fatalf("report counts: %+v", rep)
	}
	if ds.Train.Len()+ds.Val.Len() != rep.Loaded || rep.Loaded != rep.Approved {
		t.Fatalf("loaded %d approved %d, split %d+%d", rep.Loaded, rep.Approved, ds.Train.Len(), ds.Val.Len())
	}
	per := 7 * feat.NMels * feat.Frames
	for name, s := range map[string]*Split{"train": ds.Train, "val": ds.Val} {
		if len(s.X) != s.Len()*per || len(s.Y) != 2*s.Len() || len(s.PowerDB) != 7*s.Len() || len(s.Present) != 7*s.Len() {
			t.Fatalf("%s: X %d Y %d powers %d for %d sessions", name, len(s.X), len(s.Y), len(s.PowerDB), s.Len())
		}
	}
	want := int(math.Round(0.2 * float64(rep.Loaded)))
	if ds.Val.Len() != want {
		t.Errorf("val size %d, want %d", ds.Val.Len(), want)
	}
	seen := map[string]bool{}
	for _, id := range ds.Train.IDs {
		seen[id] = true
	}
	for _, id := range ds.Val.IDs {
		if seen[id] {
			t.Fatalf("session %s is in both train and val", id)
		}
	}
	// Labels come from session.json.
	b, _ := storage.ReadAll(ctx, st, session.InfoKey("sessions", ds.Val.IDs[0]))
	var info session.Info
	_ = json.Unmarshal(b, &info)
	if float64(ds.Val.Y[0]) != float64(float32(info.Latitude)) || float64(ds.Val.Y[1]) != float64(float32(info.Longitude)) {
		t.Errorf("label %v, session.json says %v,%v", ds.Val.Y[:2], info.Latitude, info.Longitude)
	}

	// The same seed gives the same split; another seed another one.
	o2 := opts(t)
	again, err := Load(ctx, st, feat, o2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(again.Val.IDs, ",") != strings.Join(ds.Val.IDs, ",") {
		t.Error("split is not deterministic")
	}
	o2.SplitSeed = 7
	other, err := Load(ctx, st, feat, o2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(other.Val.IDs, ",") == strings.Join(ds.Val.IDs, ",") {
		t.Error("split seed has no effect")
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestFeatureCache(t *testing.T) {
	ctx := context.Background()
	st := simulated(t, 12)
	o := opts(t)
	feat := kernels.DefaultMelConfig()
	first, err := Load(ctx, st, feat, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Report.CacheHits != 0 || first.Report.CacheMisses != first.Report.Loaded {
		t.Fatalf("first load: %+v", first.Report)
	}
	second, err := Load(ctx, st, feat, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Report.CacheHits != second.Report.Loaded {
		t.Fatalf("second load should hit the cache for every session: %+v", second.Report)
	}
	if !equalF32(first.Train.X, second.Train.X) || !equalF32(first.Val.X, second.Val.X) {
		t.Fatal("cached features differ from computed ones")
	}
	// A corrupt cache file is a miss, not an error, and is rewritten.
	files, _ := filepath.Glob(filepath.Join(o.CacheDir, feat.Key(), "*.feat"))
	if len(files) == 0 {
		t.Fatal("no cache files written")
	}
	if err := os.WriteFile(files[0], []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := Load(ctx, st, feat, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if third.Report.CacheMisses != 1 || !equalF32(first.Train.X, third.Train.X) {
		t.Fatalf("corrupt cache file: misses %d", third.Report.CacheMisses)
	}
	// Other feature parameters use another cache.
	feat.Frames = 16
	fourth, err := Load(ctx, st, feat, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fourth.Report.CacheHits != 0 {
		t.Fatal("feature parameters are not part of the cache key")
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// approvedIDs lists the approved sessions of a store.
func approvedIDs(t *testing.T, st storage.Store) []string {
	t.Helper()
	ids, _ := ListSessions(context.Background(), st, "sessions")
	var out []string
	for _, id := range ids {
		b, _ := storage.ReadAll(context.Background(), st, session.InfoKey("sessions", id))
		var info session.Info
		_ = json.Unmarshal(b, &info)
		if info.ApprovalStatus == session.Approved && len(info.ReceiverIDs) == 7 {
			out = append(out, id)
		}
	}
	return out
}

func put(t *testing.T, st storage.Store, key string, b []byte) {
	t.Helper()
	if err := st.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestBadSessionsAreSkippedAndReported(t *testing.T) {
	ctx := context.Background()
	st := simulated(t, 30)
	ids := approvedIDs(t, st)
	if len(ids) < 6 {
		t.Fatalf("need 6 complete approved sessions, have %d", len(ids))
	}
	// 1: truncated .npy
	iq, _ := storage.ReadAll(ctx, st, session.IQKey("sessions", ids[0], 2))
	put(t, st, session.IQKey("sessions", ids[0], 2), iq[:len(iq)/2])
	// 2: NaN sample
	var buf bytes.Buffer
	bad := make([]complex64, 17000)
	bad[100] = complex(float32(math.NaN()), 0)
	_ = npy.WriteComplex64(&buf, bad)
	put(t, st, session.IQKey("sessions", ids[1], 5), buf.Bytes())
	// 3: missing label
	put(t, st, session.InfoKey("sessions", ids[2]), []byte(`{"session_id":"x","approval_status":"approved"}`))
	// 4: wrong dtype (float32 instead of complex64)
	buf.Reset()
	_ = npy.WriteFloat32(&buf, make([]float32, 100))
	put(t, st, session.IQKey("sessions", ids[3], 1), buf.Bytes())
	// 5: a receiver without recording: zero-filled by default
	_ = st.Delete(ctx, session.IQKey("sessions", ids[4], 7))

	ds, err := Load(ctx, st, kernels.DefaultMelConfig(), opts(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := ds.Report
	if r.Skipped != 4 {
		t.Fatalf("skipped %d, want 4: %s", r.Skipped, r)
	}
	for _, reason := range []string{"corrupt IQ", "non-finite IQ", "missing label"} {
		if r.SkipReasons[reason] == 0 {
			t.Errorf("no %q in skip reasons %v", reason, r.SkipReasons)
		}
	}
	if r.SkipReasons["corrupt IQ"] != 2 {
		t.Errorf("truncated and wrong-dtype files: %v", r.SkipReasons)
	}
	text := r.String()
	for _, want := range []string{ids[0], "websdr_2.npy", "truncated", ids[1], "sample 100"} {
		if !strings.Contains(text, want) {
			t.Errorf("report does not mention %q:\n%s", want, text)
		}
	}
	// The zero-filled receiver's channel is all zeros and flagged absent.
	found := false
	for _, s := range []*Split{ds.Train, ds.Val} {
		for i, id := range s.IDs {
			if id != ids[4] {
				continue
			}
			found = true
			if s.Present[i*7+6] {
				t.Error("receiver 7 flagged present")
			}
			per := 128 * 32
			for _, v := range s.X[(i*7+6)*per : (i*7+7)*per] {
				if v != 0 {
					t.Fatal("missing receiver's channel is not zero")
				}
			}
		}
	}
	if !found {
		t.Fatal("session with a missing receiver was not loaded")
	}

	// Policy skip drops it instead.
	o := opts(t)
	o.MissingReceiver = MissingSkip
	ds2, err := Load(ctx, st, kernels.DefaultMelConfig(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ds2.Report.SkipReasons["missing receiver"] == 0 {
		t.Fatalf("skip policy: %v", ds2.Report.SkipReasons)
	}
}

func TestEmptyStore(t *testing.T) {
	st, _ := local.New(t.TempDir())
	_, err := Load(context.Background(), st, kernels.DefaultMelConfig(), opts(t), nil)
	if err == nil || !strings.Contains(err.Error(), "no sessions") {
		t.Fatalf("want a 'no sessions' error, got %v", err)
	}
}

func TestValidate(t *testing.T) {
	o := DefaultOptions()
	o.MissingReceiver = "drop"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "dataset.missing_receiver") {
		t.Fatalf("got %v", err)
	}
}

// TestNormalizeGlobal: "global" features are the channel's mel dB, cropped,
// mapped by (db - GlobalRefDB) / GlobalScaleDB (the level kept), on the same
// sessions and split as "channel", under their own cache key.
func TestNormalizeGlobal(t *testing.T) {
	ctx := context.Background()
	st := simulated(t, 12)
	feat := kernels.DefaultMelConfig()
	ch, err := Load(ctx, st, feat, opts(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := opts(t)
	o.Normalize = NormalizeGlobal
	gl, err := Load(ctx, st, feat, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gl.FeatureKey == ch.FeatureKey || !strings.HasSuffix(gl.FeatureKey, "-normglobal") {
		t.Fatalf("feature keys %q, %q", ch.FeatureKey, gl.FeatureKey)
	}
	if strings.Join(gl.Train.IDs, ",") != strings.Join(ch.Train.IDs, ",") {
		t.Fatal("global normalisation changed the split")
	}
	id := gl.Train.IDs[0]
	r := 0
	for !gl.Train.Present[r] {
		r++
	}
	rc := geo.Receivers[r]
	f, err := st.Get(ctx, session.IQKey("sessions", id, rc.ID))
	if err != nil {
		t.Fatal(err)
	}
	iq, _, err := npy.ReadComplex64(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	e, err := kernels.NewExtractor(feat, sim.DefaultOptions().SampleRateHz)
	if err != nil {
		t.Fatal(err)
	}
	db, T, err := e.MelDB(iq)
	if err != nil {
		t.Fatal(err)
	}
	want := kernels.CropOrPad(db, feat.NMels, T, feat.Frames)
	per := feat.NMels * feat.Frames
	got := gl.Train.X[r*per : (r+1)*per]
	for i, w := range want {
		if d := math.Abs(float64(got[i]) - (w-GlobalRefDB)/GlobalScaleDB); d > 1e-5 {
			t.Fatalf("cell %d: got %g, want %g", i, got[i], (w-GlobalRefDB)/GlobalScaleDB)
		}
	}
	o.Normalize = "none"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "dataset.normalize") {
		t.Fatalf("got %v", err)
	}
}
