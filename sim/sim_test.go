package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/npy"
	"github.com/heimdall-sdr/trainer/session"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
)

func generate(t *testing.T, o Options) (*local.Store, Summary) {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Generate(context.Background(), st, o, nil)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return st, sum
}

// snapshot reads every object of the store.
func snapshot(t *testing.T, st storage.Store) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, o := range objs {
		b, err := storage.ReadAll(ctx, st, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = b
	}
	return out
}

func smallOptions(n int) Options {
	o := DefaultOptions()
	o.Sessions = n
	o.MissingReceiverProb = 0.2 // exercise missing receivers in few sessions
	return o
}

func TestDeterminism(t *testing.T) {
	for _, world := range []string{WorldTerrain, WorldLogDistance} {
		t.Run(world, func(t *testing.T) { determinism(t, world) })
	}
}

func determinism(t *testing.T, world string) {
	o := smallOptions(6)
	o.World = world
	o.Workers = 1
	st1, sum1 := generate(t, o)
	o.Workers = 4
	st2, sum2 := generate(t, o)
	a, b := snapshot(t, st1), snapshot(t, st2)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("object counts differ: %d vs %d", len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Fatalf("%s differs between runs with the same seed", k)
		}
	}
	sum1.Elapsed, sum2.Elapsed = 0, 0
	if sum1 != sum2 {
		t.Fatalf("summaries differ: %+v vs %+v", sum1, sum2)
	}

	o.Seed = 2
	st3, _ := generate(t, o)
	c := snapshot(t, st3)
	if _, ok := c[session.InfoKey(o.Prefix, SessionID(2, 0))]; !ok {
		t.Fatalf("seed 2 did not write %s", session.InfoKey(o.Prefix, SessionID(2, 0)))
	}
	a0 := a[session.IQKey(o.Prefix, SessionID(1, 0), 3)]
	c0 := c[session.IQKey(o.Prefix, SessionID(2, 0), 3)]
	if a0 != nil && c0 != nil && bytes.Equal(a0, c0) {
		t.Fatal("seeds 1 and 2 produced the same recording")
	}
	var i1, i2 session.Info
	mustJSON(t, a[session.InfoKey(o.Prefix, SessionID(1, 0))], &i1)
	mustJSON(t, c[session.InfoKey(o.Prefix, SessionID(2, 0))], &i2)
	if i1.Latitude == i2.Latitude || i1.Timestamp.Equal(i2.Timestamp) {
		t.Fatalf("seeds 1 and 2 gave the same session 0: %+v", i1)
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
}

func TestLayout(t *testing.T) {
	o := smallOptions(8)
	st, sum := generate(t, o)
	if sum.Sessions != 8 || sum.Approved+sum.Pending+sum.Rejected != 8 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.Recordings+sum.MissingReceivers != 8*len(geo.Receivers) {
		t.Fatalf("recordings %d + missing %d != %d", sum.Recordings, sum.MissingReceivers, 8*len(geo.Receivers))
	}
	objs := snapshot(t, st)
	if want := 8 + 2*sum.Recordings; len(objs) != want {
		t.Fatalf("%d objects, want %d", len(objs), want)
	}
	n := o.NumSamples()
	if n != 17000 {
		t.Fatalf("default NumSamples = %d, want 17000", n)
	}
	missing := 0
	for i := range 8 {
		id := SessionID(o.Seed, i)
		var info session.Info
		mustJSON(t, objs[session.InfoKey(o.Prefix, id)], &info)
		if info.SessionID != id || info.Source != Source {
			t.Fatalf("info %+v", info)
		}
		if info.Latitude < o.LatMin || info.Latitude > o.LatMax || info.Longitude < o.LonMin || info.Longitude > o.LonMax {
			t.Fatalf("transmitter %v,%v outside the box", info.Latitude, info.Longitude)
		}
		if math.Abs(info.FrequencyHz-o.CenterFrequencyHz) > o.CarrierOffsetHzMax {
			t.Fatalf("frequency %v", info.FrequencyHz)
		}
		if len(info.ReceiverIDs) < minReceivers {
			t.Fatalf("session %s keeps %d receivers", id, len(info.ReceiverIDs))
		}
		listed := map[int]bool{}
		for _, rid := range info.ReceiverIDs {
			listed[rid] = true
		}
		for _, r := range geo.Receivers {
			iqb, hasIQ := objs[session.IQKey(o.Prefix, id, r.ID)]
			mb, hasMeta := objs[session.MetaKey(o.Prefix, id, r.ID)]
			if hasIQ != listed[r.ID] || hasMeta != listed[r.ID] {
				t.Fatalf("session %s receiver %d: listed %v, iq %v, meta %v", id, r.ID, listed[r.ID], hasIQ, hasMeta)
			}
			if !listed[r.ID] {
				missing++
				continue
			}
			var meta session.ReceiverMeta
			mustJSON(t, mb, &meta)
			if meta.ReceiverID != r.ID || meta.SampleRateHz != o.SampleRateHz || meta.NumSamples != n ||
				meta.DType != "complex64" || !meta.Timestamp.Equal(info.Timestamp) || meta.Latitude != r.Lat {
				t.Fatalf("meta %+v", meta)
			}
			iq, shape, err := npy.ReadComplex64(bytes.NewReader(iqb))
			if err != nil {
				t.Fatalf("read %s: %v", session.IQKey(o.Prefix, id, r.ID), err)
			}
			if len(shape) != 1 || shape[0] != n || len(iq) != n {
				t.Fatalf("shape %v, len %d, want [%d]", shape, len(iq), n)
			}
			for _, v := range iq {
				if math.Abs(float64(real(v))) > 1 || math.Abs(float64(imag(v))) > 1 {
					t.Fatalf("sample %v beyond full scale", v)
				}
			}
		}
	}
	if missing != sum.MissingReceivers {
		t.Fatalf("missing %d, summary says %d", missing, sum.MissingReceivers)
	}
}

// countingStore counts puts and drops the data: a fast stand-in where only
// the random draws matter.
type countingStore struct {
	storage.Store // nil: only Put and String are used
	mu            sync.Mutex
	puts          int
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	return nil
}

func (c *countingStore) String() string { return "counting" }

func TestApprovalFractions(t *testing.T) {
	// Only the draws matter here: short recordings keep it fast.
	o := DefaultOptions()
	o.Sessions = 1000
	o.DurationS = 0.01
	o.ApprovedFraction = 0.7
	st := &countingStore{}
	sum, err := Generate(context.Background(), st, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := o.Sessions + 2*sum.Recordings; st.puts != want {
		t.Errorf("%d puts, want %d", st.puts, want)
	}
	frac := func(k int) float64 { return float64(k) / float64(sum.Sessions) }
	if f := frac(sum.Approved); math.Abs(f-0.7) > 0.05 {
		t.Errorf("approved fraction %.3f, want ≈ 0.7", f)
	}
	for name, k := range map[string]int{"pending": sum.Pending, "rejected": sum.Rejected} {
		if f := frac(k); math.Abs(f-0.15) > 0.04 {
			t.Errorf("%s fraction %.3f, want ≈ 0.15", name, f)
		}
	}
	if f := float64(sum.MissingReceivers) / 7000; f < 0.01 || f > 0.03 {
		t.Errorf("%d missing receivers of 7000, want about 2%%", sum.MissingReceivers)
	}
}

func TestPowerFallsWithDistance(t *testing.T) {
	// The log-distance world is that law plus noise; terrain diffraction,
	// antennas and receiver offsets loosen the terrain world's correlation.
	for _, tc := range []struct {
		world string
		max   float64
	}{{WorldLogDistance, -0.6}, {WorldTerrain, -0.4}} {
		t.Run(tc.world, func(t *testing.T) { powerFallsWithDistance(t, tc.world, tc.max) })
	}
}

func powerFallsWithDistance(t *testing.T, world string, maxCorr float64) {
	o := smallOptions(30)
	o.World = world
	o.MissingReceiverProb = 0
	o.DurationS = 0.1
	st, _ := generate(t, o)
	ctx := context.Background()
	var xs, ys []float64
	for i := range o.Sessions {
		id := SessionID(o.Seed, i)
		b, err := storage.ReadAll(ctx, st, session.InfoKey(o.Prefix, id))
		if err != nil {
			t.Fatal(err)
		}
		var info session.Info
		mustJSON(t, b, &info)
		for _, r := range geo.Receivers {
			b, err := storage.ReadAll(ctx, st, session.IQKey(o.Prefix, id, r.ID))
			if err != nil {
				t.Fatal(err)
			}
			iq, _, err := npy.ReadComplex64(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			var p float64
			for _, v := range iq {
				p += float64(real(v))*float64(real(v)) + float64(imag(v))*float64(imag(v))
			}
			xs = append(xs, math.Log10(geo.HaversineKm(info.Latitude, info.Longitude, r.Lat, r.Lon)))
			ys = append(ys, 10*math.Log10(p/float64(len(iq))))
		}
	}
	r := correlation(xs, ys)
	t.Logf("corr(log10 distance, power dB) = %.3f over %d recordings", r, len(xs))
	if r > maxCorr {
		t.Fatalf("correlation %.3f: power does not fall clearly with distance", r)
	}
}

func correlation(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(len(x))
	my /= float64(len(y))
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

func TestValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		mutate func(*Options)
		want   string
	}{
		{func(o *Options) { o.Sessions = 0 }, "simulate.sessions: must be > 0"},
		{func(o *Options) { o.SampleRateHz = -1 }, "simulate.sample_rate_hz"},
		{func(o *Options) { o.DurationS = 0 }, "simulate.duration_s"},
		{func(o *Options) { o.LatMin = 46 }, "simulate.lat_min"},
		{func(o *Options) { o.LonMax = 6 }, "simulate.lon_min"},
		{func(o *Options) { o.ApprovedFraction = 1.5 }, "simulate.approved_fraction"},
		{func(o *Options) { o.MissingReceiverProb = -0.1 }, "simulate.missing_receiver_prob"},
		{func(o *Options) { o.ShadowingSigmaDB = math.NaN() }, "simulate.shadowing_sigma_db"},
		{func(o *Options) { o.AudioToneMaxHz = 7000 }, "simulate.audio_tone_max_hz"},
		{func(o *Options) { o.Prefix = "" }, "simulate.prefix"},
		{func(o *Options) { o.PathLossExponent = 0 }, "simulate.path_loss_exponent"},
		{func(o *Options) { o.Workers = -1 }, "simulate.workers"},
	}
	for _, tc := range tests {
		o := DefaultOptions()
		tc.mutate(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
		}
	}
}

func TestGenerateCancelled(t *testing.T) {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Generate(ctx, st, smallOptions(50), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate on a cancelled context: %v, want context.Canceled", err)
	}
}

func TestGenerateProgress(t *testing.T) {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := smallOptions(3)
	o.DurationS = 0.05
	var buf bytes.Buffer
	if _, err := Generate(context.Background(), st, o, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "3/3") {
		t.Fatalf("progress output %q lacks 3/3", buf.String())
	}
}

type failingStore struct{ countingStore }

var errDiskFull = errors.New("disk full")

func (f *failingStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts storage.PutOptions) error {
	return errDiskFull
}

func TestGenerateStoreError(t *testing.T) {
	o := smallOptions(20)
	o.DurationS = 0.01
	_, err := Generate(context.Background(), &failingStore{}, o, nil)
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "sim: write sessions/sim-1-") {
		t.Fatalf("Generate on a failing store: %v", err)
	}
}
