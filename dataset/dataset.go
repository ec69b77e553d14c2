// Package dataset turns stored recording sessions into model inputs.
//
// It lists the sessions under a prefix of a storage.Store, keeps the approved
// ones, reads each receiver's IQ recording, computes the mel-spectrogram
// features with package kernels (the same code inference uses) and splits the
// sessions 80/20 by session — never by receiver — into training and
// validation sets. Features are cached on local disk keyed by session,
// recording identity and feature parameters, so a second epoch or run does not
// recompute them. Sessions that fail to load are skipped and counted, with the
// reasons kept in the Report.
package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/kernels"
	"github.com/heimdall-sdr/trainer/progress"
	"github.com/heimdall-sdr/trainer/session"
	"github.com/heimdall-sdr/trainer/storage"
)

// Missing-receiver policies.
const (
	MissingZero = "zero" // zero-fill the channel and flag it
	MissingSkip = "skip" // skip the whole session
)

// Feature normalisations (Options.Normalize).
const (
	// NormalizeChannel is HEIMDALL's step 5: each receiver's [n_mels x T]
	// dB map z-scored on its own. It removes the receiver's absolute level,
	// and for a constant-envelope signal over noise (a two-level map) the
	// z-score hardly depends on the signal-to-noise contrast either.
	NormalizeChannel = "channel"
	// NormalizeGlobal maps dB with one fixed affine law for every receiver
	// and session, (db - GlobalRefDB) / GlobalScaleDB, so the input keeps
	// each receiver's received level and noise floor (what a power
	// fingerprint uses); docs/TRAINING.md, fourth round.
	NormalizeGlobal = "global"
)

// The fixed affine law of NormalizeGlobal: dB above the kernels' floor
// (10 log10(1e-9) = -90 dB, step 4), in units of 10 dB. On simulated
// sessions most mel cells sit at the floor (they map to 0, like a
// zero-filled missing receiver) and the low bands that carry the envelope's
// power reach -40 to -90 dB, i.e. 0 to 5.
const (
	GlobalRefDB   = -90.0
	GlobalScaleDB = 10.0
)

// Options configure loading; the zero value of each field means its default.
type Options struct {
	// Prefix is the key prefix of the sessions in the store. Default "sessions".
	Prefix string `mapstructure:"prefix"`
	// ValidationSplit is the share of sessions held out for validation. Default 0.2.
	ValidationSplit float64 `mapstructure:"validation_split"`
	// SplitSeed seeds the session shuffle of the split. Default 42.
	SplitSeed uint64 `mapstructure:"split_seed"`
	// MissingReceiver says what to do when a receiver did not record a
	// session: "zero" (zero-fill its channel and flag it, default) or "skip".
	MissingReceiver string `mapstructure:"missing_receiver"`
	// CacheDir holds the feature cache. Default ".cache/features"; "" after
	// defaults are applied never happens; "off" disables the cache.
	CacheDir string `mapstructure:"cache_dir"`
	// MaxSessions caps how many approved sessions are used (0 = all).
	MaxSessions int `mapstructure:"max_sessions"`
	// Workers is the number of sessions loaded concurrently (0 = number of CPUs).
	Workers int `mapstructure:"workers"`
	// Normalize is the feature normalisation: "channel" (HEIMDALL's
	// per-receiver z-score, default) or "global" (one fixed affine law for
	// all receivers, keeping the received levels; see NormalizeGlobal). A
	// model trained on one must be fed the other's features never.
	Normalize string `mapstructure:"normalize"`
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		Prefix:          "sessions",
		ValidationSplit: 0.2,
		SplitSeed:       42,
		MissingReceiver: MissingZero,
		CacheDir:        ".cache/features",
		Normalize:       NormalizeChannel,
	}
}

// Validate checks the options, naming the offending key.
func (o Options) Validate() error {
	if o.Prefix == "" {
		return errors.New("dataset.prefix: must not be empty")
	}
	if !(o.ValidationSplit > 0 && o.ValidationSplit < 1) {
		return fmt.Errorf("dataset.validation_split: must be in (0, 1), got %g", o.ValidationSplit)
	}
	if o.MissingReceiver != MissingZero && o.MissingReceiver != MissingSkip {
		return fmt.Errorf("dataset.missing_receiver: must be %q or %q, got %q", MissingZero, MissingSkip, o.MissingReceiver)
	}
	if o.CacheDir == "" {
		return errors.New(`dataset.cache_dir: must not be empty (use "off" to disable the cache)`)
	}
	if o.Normalize != NormalizeChannel && o.Normalize != NormalizeGlobal {
		return fmt.Errorf("dataset.normalize: must be %q or %q, got %q", NormalizeChannel, NormalizeGlobal, o.Normalize)
	}
	if o.MaxSessions < 0 {
		return fmt.Errorf("dataset.max_sessions: must be >= 0, got %d", o.MaxSessions)
	}
	if o.Workers < 0 {
		return fmt.Errorf("dataset.workers: must be >= 0, got %d", o.Workers)
	}
	return nil
}

// Split is one half of the dataset, held in memory.
type Split struct {
	IDs []string
	// X holds the features, float32 [N, Receivers, NMels, Frames] row-major.
	X []float32
	// Y holds the labels, float32 [N, 2]: latitude, longitude in degrees.
	Y []float32
	// PowerDB holds each receiver's received power estimate in dB, [N, Receivers]
	// (for the classical baseline); Present flags which receivers recorded.
	PowerDB []float64
	Present []bool
}

// Len is the number of sessions in the split.
func (s *Split) Len() int { return len(s.IDs) }

// Dataset is the loaded, split data plus how loading went.
type Dataset struct {
	Receivers    []geo.Receiver
	NMels        int
	Frames       int
	Train, Val   *Split
	Report       Report
	FeatureKey   string
	SampleRateHz float64 // of the first session (informational)
	// Origin says where the loaded sessions came from: the simulation
	// records they carry (what rebuilds the world for the oracle).
	Origin Origin
}

// Origin counts the loaded sessions (both splits) by the simulation
// record in their session.json.
type Origin struct {
	// Simulations are the distinct records, most sessions first.
	Simulations []Simulation
	// Unrecorded is how many loaded sessions carry none (recordings, or
	// sessions simulated before the record existed).
	Unrecorded int
}

// Simulation is one distinct simulation record and how many loaded
// sessions carry it.
type Simulation struct {
	Record   json.RawMessage
	Sessions int
}

// origin collects the simulation records of items.
func origin(items []*loaded) Origin {
	var o Origin
	at := map[string]int{}
	for _, it := range items {
		if it.sim == "" {
			o.Unrecorded++
			continue
		}
		i, ok := at[it.sim]
		if !ok {
			i = len(o.Simulations)
			at[it.sim] = i
			o.Simulations = append(o.Simulations, Simulation{Record: json.RawMessage(it.sim)})
		}
		o.Simulations[i].Sessions++
	}
	sort.SliceStable(o.Simulations, func(a, b int) bool { return o.Simulations[a].Sessions > o.Simulations[b].Sessions })
	return o
}

// Report says what happened to every listed session.
type Report struct {
	Listed          int            // sessions found under the prefix
	Approved        int            // of which approved
	NotApproved     map[string]int // status -> count of those left out
	Loaded          int            // approved sessions that loaded
	Skipped         int            // approved sessions that failed to load
	SkipReasons     map[string]int // reason -> count (reason has no session id)
	Examples        []string       // up to 10 "session: error" lines
	ZeroFilled      int            // receiver channels zero-filled
	CacheHits       int
	CacheMisses     int
	CacheWriteFails int
}

// String formats the report for people.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sessions listed %d, approved %d, loaded %d, skipped %d", r.Listed, r.Approved, r.Loaded, r.Skipped)
	if len(r.NotApproved) > 0 {
		fmt.Fprintf(&b, "; not approved: %s", formatCounts(r.NotApproved))
	}
	if r.ZeroFilled > 0 {
		fmt.Fprintf(&b, "; zero-filled receiver channels %d", r.ZeroFilled)
	}
	fmt.Fprintf(&b, "; feature cache hits %d, misses %d", r.CacheHits, r.CacheMisses)
	if r.CacheWriteFails > 0 {
		fmt.Fprintf(&b, " (cache writes failed: %d)", r.CacheWriteFails)
	}
	if r.Skipped > 0 {
		fmt.Fprintf(&b, "\nskip reasons: %s", formatCounts(r.SkipReasons))
		for _, e := range r.Examples {
			fmt.Fprintf(&b, "\n  %s", e)
		}
	}
	return b.String()
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// sessionError is a load failure with a reason class for the report.
type sessionError struct {
	reason string // short class, e.g. "corrupt IQ"
	err    error
}

func (e *sessionError) Error() string { return e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

func fail(reason string, format string, args ...any) error {
	return &sessionError{reason: reason, err: fmt.Errorf(format, args...)}
}

// rawInfo mirrors session.Info with pointers, so a missing label is visible.
type rawInfo struct {
	SessionID      string   `json:"session_id"`
	Latitude       *float64 `json:"latitude"`
	Longitude      *float64 `json:"longitude"`
	ApprovalStatus string   `json:"approval_status"`
	ReceiverIDs    []int    `json:"receiver_ids"`
	// Simulation is the simulator's record of a simulated session
	// (session.Info.Simulation), nil for recordings.
	Simulation json.RawMessage `json:"simulation"`
}

// ListSessions returns the ids of every session under prefix, sorted.
func ListSessions(ctx context.Context, st storage.Store, prefix string) ([]string, error) {
	objs, err := st.List(ctx, strings.TrimSuffix(prefix, "/")+"/")
	if err != nil {
		return nil, fmt.Errorf("dataset: list sessions in %s: %w", st, err)
	}
	var ids []string
	for _, o := range objs {
		if id := session.IDFromInfoKey(prefix, o.Key); id != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// loaded is one session's model input.
type loaded struct {
	id      string
	x       []float32 // [R * NMels * Frames]
	lat     float64
	lon     float64
	power   []float64
	present []bool
	filled  int
	cached  bool
	sr      float64
	cacheWE bool
	sim     string // compacted simulation record, "" when none
}

// Load reads, featurises and splits the approved sessions of st.
// progressOut receives a progress bar (nil for none).
func Load(ctx context.Context, st storage.Store, feat kernels.MelConfig, o Options, progressOut io.Writer) (*Dataset, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := feat.Validate(); err != nil {
		return nil, err
	}
	ids, err := ListSessions(ctx, st, o.Prefix)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("dataset: no sessions under %q in %s (run `heimdall simulate` or point store/dataset.prefix at your recordings)", o.Prefix, st)
	}
	rep := Report{Listed: len(ids), NotApproved: map[string]int{}, SkipReasons: map[string]int{}}
	approved, infos, err := readApproved(ctx, st, o.Prefix, ids, &rep)
	if err != nil {
		return nil, err
	}
	if o.MaxSessions > 0 && len(approved) > o.MaxSessions {
		approved = approved[:o.MaxSessions]
	}
	cache, err := newCache(o.CacheDir, featureKey(feat, o))
	if err != nil {
		return nil, err
	}
	results, errs := loadSessions(ctx, st, o, feat, cache, approved, infos, progress.New(progressOut, int64(len(approved)), "features", "sessions"))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dataset: loading interrupted: %w", err)
	}

	var good []*loaded
	for i, r := range results {
		if errors.Is(errs[i], storage.ErrUnavailable) {
			return nil, fmt.Errorf("dataset: session %s: %w (nothing was trained; rerun when the store is reachable — the feature cache keeps what loaded)", approved[i], errs[i])
		}
		if errs[i] != nil {
			rep.skip(approved[i], errs[i], "error")
			continue
		}
		good = append(good, r)
		rep.ZeroFilled += r.filled
		if r.cached {
			rep.CacheHits++
		} else {
			rep.CacheMisses++
		}
		if r.cacheWE {
			rep.CacheWriteFails++
		}
	}
	rep.Loaded = len(good)
	if len(good) < 2 {
		return nil, fmt.Errorf("dataset: only %d usable sessions in %s under %q; need at least 2 to split\n%s", len(good), st, o.Prefix, rep)
	}

	train, val := split(good, o.ValidationSplit, o.SplitSeed)
	return &Dataset{
		Receivers:    geo.Receivers,
		NMels:        feat.NMels,
		Frames:       feat.Frames,
		Report:       rep,
		FeatureKey:   featureKey(feat, o),
		SampleRateHz: good[0].sr,
		Origin:       origin(good),
		Train:        assemble(train, len(geo.Receivers)),
		Val:          assemble(val, len(geo.Receivers)),
	}, nil
}

// readApproved reads every session.json (approval status and labels) and
// returns the approved ids with their info, counting the others in rep.
func readApproved(ctx context.Context, st storage.Store, prefix string, ids []string, rep *Report) ([]string, map[string]rawInfo, error) {
	infos := make(map[string]rawInfo, len(ids))
	var approved []string
	for _, id := range ids {
		info, err := readInfo(ctx, st, prefix, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if errors.Is(err, storage.ErrUnavailable) {
				return nil, nil, fmt.Errorf("dataset: %w", err)
			}
			rep.Approved++ // cannot tell; count as a failed candidate
			rep.skip(id, err, "unreadable session.json")
			continue
		}
		if info.ApprovalStatus != session.Approved {
			status := info.ApprovalStatus
			if status == "" {
				status = "(none)"
			}
			rep.NotApproved[status]++
			continue
		}
		rep.Approved++
		infos[id] = info
		approved = append(approved, id)
	}
	return approved, infos, nil
}

// loadSessions featurises the approved sessions with o.Workers workers
// (0: one per CPU); results[i] or errs[i] is set for every session loaded
// before ctx ended.
func loadSessions(ctx context.Context, st storage.Store, o Options, feat kernels.MelConfig, c *cache, approved []string, infos map[string]rawInfo, bar *progressbar.ProgressBar) ([]*loaded, []error) {
	workers := o.Workers
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	ex := newExtractors(feat)
	results := make([]*loaded, len(approved))
	errs := make([]error, len(approved))
	var g errgroup.Group
	g.SetLimit(workers)
	for i, id := range approved {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			results[i], errs[i] = loadSession(ctx, st, o, feat, ex, c, id, infos[id])
			if bar != nil {
				_ = bar.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait() // Per-session errors are in errs.
	return results, errs
}

// skip counts session id as skipped for err's reason (a *sessionError's,
// else fallback) and keeps it as an example.
func (rep *Report) skip(id string, err error, fallback string) {
	reason := fallback
	var se *sessionError
	if errors.As(err, &se) {
		reason = se.reason
	}
	rep.Skipped++
	rep.SkipReasons[reason]++
	addExample(rep, id, err)
}

func addExample(rep *Report, id string, err error) {
	if len(rep.Examples) < 10 {
		rep.Examples = append(rep.Examples, fmt.Sprintf("%s: %v", id, err))
	}
}

// split shuffles sessions with the seed and holds out the validation share.
// Sorting first makes the split independent of load order.
func split(items []*loaded, valShare float64, seed uint64) (train, val []*loaded) {
	sort.Slice(items, func(i, j int) bool { return items[i].id < items[j].id })
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	perm := rng.Perm(len(items))
	nVal := int(math.Round(valShare * float64(len(items))))
	if nVal < 1 {
		nVal = 1
	}
	if nVal >= len(items) {
		nVal = len(items) - 1
	}
	for k, p := range perm {
		if k < nVal {
			val = append(val, items[p])
		} else {
			train = append(train, items[p])
		}
	}
	sort.Slice(val, func(i, j int) bool { return val[i].id < val[j].id })
	sort.Slice(train, func(i, j int) bool { return train[i].id < train[j].id })
	return train, val
}

func assemble(items []*loaded, receivers int) *Split {
	s := &Split{}
	if len(items) == 0 {
		return s
	}
	per := len(items[0].x)
	s.X = make([]float32, 0, per*len(items))
	for _, it := range items {
		s.IDs = append(s.IDs, it.id)
		s.X = append(s.X, it.x...)
		s.Y = append(s.Y, float32(it.lat), float32(it.lon))
		s.PowerDB = append(s.PowerDB, it.power...)
		s.Present = append(s.Present, it.present...)
	}
	return s
}

func readInfo(ctx context.Context, st storage.Store, prefix, id string) (rawInfo, error) {
	key := session.InfoKey(prefix, id)
	b, err := storage.ReadAll(ctx, st, key)
	if err != nil {
		return rawInfo{}, fail("unreadable session.json", "read %s: %w", key, err)
	}
	var info rawInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return rawInfo{}, fail("corrupt session.json", "parse %s: %w", key, err)
	}
	return info, nil
}

func loadSession(ctx context.Context, st storage.Store, o Options, feat kernels.MelConfig, ex *extractors, c *cache, id string, info rawInfo) (*loaded, error) {
	if info.Latitude == nil || info.Longitude == nil {
		return nil, fail("missing label", "%s: latitude/longitude missing", session.InfoKey(o.Prefix, id))
	}
	lat, lon := *info.Latitude, *info.Longitude
	if math.IsNaN(lat) || math.IsNaN(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return nil, fail("invalid label", "%s: latitude/longitude out of range (%g, %g)", session.InfoKey(o.Prefix, id), lat, lon)
	}
	R := len(geo.Receivers)
	perCh := feat.NMels * feat.Frames
	res := &loaded{id: id, lat: lat, lon: lon, x: make([]float32, R*perCh), power: make([]float64, R), present: make([]bool, R)}
	if len(info.Simulation) > 0 && string(info.Simulation) != "null" {
		var b bytes.Buffer
		if err := json.Compact(&b, info.Simulation); err == nil {
			res.sim = b.String()
		}
	}

	// Stat every recording: its identity keys the cache.
	infos := make([]*storage.ObjectInfo, R)
	for r, rc := range geo.Receivers {
		oi, err := st.Stat(ctx, session.IQKey(o.Prefix, id, rc.ID))
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fail("unreadable IQ", "%w", err)
		}
		infos[r] = &oi
	}
	ck := c.key(id, infos)
	if ent, ok := c.get(ck, R, perCh); ok {
		copy(res.x, ent.x)
		copy(res.power, ent.power)
		copy(res.present, ent.present)
		res.sr = ent.sampleRate
		res.cached = true
		for _, p := range res.present {
			if !p {
				res.filled++
			}
		}
		if res.filled > 0 && o.MissingReceiver == MissingSkip {
			return nil, fail("missing receiver", "%d of %d receivers missing", res.filled, R)
		}
		return res, nil
	}

	for r, rc := range geo.Receivers {
		if infos[r] == nil {
			if o.MissingReceiver == MissingSkip {
				return nil, fail("missing receiver", "receiver %d (%s) did not record", rc.ID, rc.Name)
			}
			res.filled++
			res.power[r] = math.NaN()
			continue
		}
		sr, err := readSampleRate(ctx, st, o.Prefix, id, rc.ID)
		if err != nil {
			return nil, err
		}
		iq, err := readIQ(ctx, st, session.IQKey(o.Prefix, id, rc.ID))
		if err != nil {
			return nil, err
		}
		e, err := ex.get(sr)
		if err != nil {
			return nil, fail("bad feature config", "%s: %w", session.MetaKey(o.Prefix, id, rc.ID), err)
		}
		if err := features(e, o, iq, res.x[r*perCh:(r+1)*perCh]); err != nil {
			return nil, fail("feature error", "%s: %w", session.IQKey(o.Prefix, id, rc.ID), err)
		}
		res.power[r] = PowerDB(iq)
		res.present[r] = true
		res.sr = sr
	}
	if res.filled == R {
		return nil, fail("no recordings", "no receiver recorded this session")
	}
	if err := c.put(ck, cacheEntry{x: res.x, power: res.power, present: res.present, sampleRate: res.sr}); err != nil {
		res.cacheWE = true
	}
	return res, nil
}

// featureKey names the features (and their cache directory): the kernels'
// key, plus the normalisation when it is not HEIMDALL's.
func featureKey(feat kernels.MelConfig, o Options) string {
	if o.Normalize == NormalizeGlobal {
		return feat.Key() + "-norm" + NormalizeGlobal
	}
	return feat.Key()
}

// features writes one receiver's [n_mels x Frames] model input into dst:
// the kernels' Features (per-channel z-score), or for NormalizeGlobal the
// mel dB mapped by the fixed affine law, then cropped or padded alike.
func features(e *kernels.Extractor, o Options, iq []complex64, dst []float32) error {
	if o.Normalize != NormalizeGlobal {
		return e.Features(iq, dst)
	}
	db, T, err := e.MelDB(iq)
	if err != nil {
		return err
	}
	cfg := e.Config()
	for i, v := range kernels.CropOrPad(db, cfg.NMels, T, cfg.Frames) {
		dst[i] = float32((v - GlobalRefDB) / GlobalScaleDB)
	}
	return nil
}

func readSampleRate(ctx context.Context, st storage.Store, prefix, id string, rid int) (float64, error) {
	key := session.MetaKey(prefix, id, rid)
	b, err := storage.ReadAll(ctx, st, key)
	if err != nil {
		return 0, fail("missing receiver metadata", "read %s: %w", key, err)
	}
	var m session.ReceiverMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, fail("corrupt receiver metadata", "parse %s: %w", key, err)
	}
	if !(m.SampleRateHz > 0) || math.IsInf(m.SampleRateHz, 0) {
		return 0, fail("corrupt receiver metadata", "%s: sample_rate_hz must be > 0, got %g", key, m.SampleRateHz)
	}
	return m.SampleRateHz, nil
}

// extractors keeps one feature extractor per sample rate.
type extractors struct {
	cfg kernels.MelConfig
	mu  sync.Mutex
	m   map[float64]*kernels.Extractor
}

func newExtractors(cfg kernels.MelConfig) *extractors {
	return &extractors{cfg: cfg, m: map[float64]*kernels.Extractor{}}
}

func (e *extractors) get(sr float64) (*kernels.Extractor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[sr]; ok {
		return x, nil
	}
	x, err := kernels.NewExtractor(e.cfg, sr)
	if err != nil {
		return nil, err
	}
	e.m[sr] = x
	return x, nil
}
