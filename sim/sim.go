// Package sim generates synthetic recording sessions in the stored session
// layout (package session), standing in for real WebSDR recordings.
//
// Sessions are drawn from a World (world.go), the static part that stays put
// from session to session, seeded by world_seed alone:
//
//   - "terrain" (the default): a synthetic elevation model of NW Italy
//     (terrain.go: the Alps, the Po plain, the Apennines, the Ligurian sea),
//     each receiver on it at its ground height plus an antenna height, with
//     its own uncalibrated gain offset, noise floor (ITU-R P.372 by site) and
//     antenna pattern (antenna.go; most omni, some directional). The mean
//     received power of receiver i from a transmitter of EIRP E is
//
//     P_i = E + G_i(bearing) + offset_i - FSPL(d_i) - L_diff,i(position, height)
//
//     with L_diff the Bullington diffraction loss over the great-circle
//     terrain profile with 4/3-earth curvature (diffraction.go), tabulated
//     per receiver on a grid over the transmitter box (world_power.go). Per
//     session the transmitter draws its power (handheld to mobile), antenna,
//     environment loss and antenna height, and each path a residual
//     log-normal shadowing;
//
//   - "log_distance": the earlier world, one log-distance law with
//     independent log-normal shadowing, identical receivers,
//
//     P_i = Ptx + J - PL0 - 10 n log10(d_i/d0) + N(0, σ_shadow²)   [dBm]
//
// where J is a per-session transmitter-power offset. The transmitted signal
// is narrowband FM by a single audio tone (random tone frequency, random
// deviation scaling, random carrier offset within ±carrier_offset_hz_max),
// the same waveform at every receiver. Each receiver sees it through its own
// Rician fading channel (K-factor falling with distance, Doppler spread from a
// per-session speed, random carrier phase) and adds complex white Gaussian
// noise at the noise floor (with a small per-receiver jitter).
//
// Amplitude mapping: a power of full_scale_dbm is amplitude 1.0, i.e.
// amplitude = 10^((P - full_scale_dbm)/20), like the WebSDR stream's int16
// samples divided by 32767. I and Q are clipped to [-1, 1] and, with
// quantize, rounded to the int16 grid. Received power (the mean of |iq|²) is
// therefore the main location cue; SNR shapes the |iq| envelope and so the
// mel spectrogram, and the fading depth (distance-dependent K-factor) adds a
// weaker cue the classical power baseline cannot use.
//
// Output is deterministic: session k is synthesised from a random stream
// seeded by (seed, k) alone, so the bytes of every object depend only on the
// options, never on the worker count, the clock or the scheduling. Session
// ids are sim-{seed}-{index:06d}.
package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/npy"
	"github.com/heimdall-sdr/trainer/progress"
	"github.com/heimdall-sdr/trainer/session"
	"github.com/heimdall-sdr/trainer/storage"
)

// Source is session.Info.Source of simulated sessions.
const Source = "simulated"

// minReceivers is the fewest receivers a session keeps when receivers go
// missing.
const minReceivers = 3

// writersPerWorker is how many sessions are being stored per synthesising
// worker: stores are latency-bound (the local store waits for syncs, S3
// for one round trip per object). 16 measured 1.12x the session rate of 4
// into MinIO on a shared 2-core machine (two rounds side by side) and no
// change into the local store; a session is about 1 MB in memory, so
// with 2 workers at most 34 MB are held.
const writersPerWorker = 16

// fadingPaths is the number of scattered paths of the sum-of-sinusoids
// fading model.
const fadingPaths = 8

// maxFadingStep is the most samples apart the fading channel is evaluated
// (linear interpolation in between); fewer when the Doppler shift would
// turn a path's phase by more than 1.8 degrees (1/200 turn) in a step:
// 16 samples (1.3 ms at 12.5 kHz) up to a Doppler of 3.9 Hz, 10 at 6 Hz.
const maxFadingStep = 16

// epoch is the start of the window session timestamps are drawn from.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Summary counts what Generate wrote.
type Summary struct {
	Sessions int // sessions written
	Approved int
	Pending  int
	Rejected int
	// Recordings is the number of receiver recordings written.
	Recordings int
	// MissingReceivers is the number of receiver recordings left out
	// (receivers that "did not record").
	MissingReceivers int
	// SessionsWithMissing is the number of sessions with a receiver missing.
	SessionsWithMissing int
	// Elapsed is the wall time Generate took (not part of the output).
	Elapsed time.Duration
}

// SessionsPerSecond is the generation rate.
func (s Summary) SessionsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sessions) / s.Elapsed.Seconds()
}

// SessionID is the id of session index of a run with the given seed.
func SessionID(seed int64, index int) string {
	return fmt.Sprintf("sim-%d-%06d", seed, index)
}

// Generate writes o.Sessions sessions to st under o.Prefix using a bounded
// pool of workers, drawing a progress bar on progressOut (nil: none). Each
// session's recordings and metadata are written before its session.json, so
// a session.json marks a complete session. It stops at the first error or
// when ctx is cancelled; the Summary then counts the sessions completed.
func Generate(ctx context.Context, st storage.Store, o Options, progressOut io.Writer) (Summary, error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return Summary{}, fmt.Errorf("sim: invalid options: %w", err)
	}
	workers := o.workers()
	w, err := NewWorld(o)
	if err != nil {
		return Summary{}, err
	}

	bar := progress.New(progressOut, int64(o.Sessions), "simulate", "sessions")

	// Pipeline of two bounded pools: up to `workers` sessions are
	// synthesised at once (CPU-bound, one generator's buffers each), and
	// each synthesised session is handed to a pool of up to
	// writersPerWorker*workers sessions being stored (I/O-bound: the local
	// store waits for syncs, S3 for round trips). A synthesising goroutine
	// waits for a free writer, so at most workers*(1+writersPerWorker)
	// sessions are in memory. The first error cancels the rest.
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	gens := make(chan *generator, workers)
	for range workers {
		gens <- newGenerator(o, w)
	}
	var synthPool, writePool errgroup.Group
	synthPool.SetLimit(workers)
	writePool.SetLimit(writersPerWorker * workers)
	var mu sync.Mutex
	var sum Summary
	record := func(s sessionStats) {
		mu.Lock()
		defer mu.Unlock()
		sum.add(s)
		if bar != nil {
			_ = bar.Add(1) // a failing progress writer must not fail the run
		}
	}
	for idx := range o.Sessions {
		if ctx.Err() != nil {
			break
		}
		synthPool.Go(func() error {
			if ctx.Err() != nil {
				return nil
			}
			g := <-gens
			s, err := g.synth(idx)
			gens <- g
			if err != nil {
				cancel(err)
				return nil
			}
			writePool.Go(func() error {
				if ctx.Err() != nil {
					return nil
				}
				if err := s.store(ctx, st); err != nil {
					cancel(err)
					return nil
				}
				record(s.stats)
				return nil
			})
			return nil
		})
	}
	_ = synthPool.Wait() // errors go to cancel, so that the first one is kept
	_ = writePool.Wait()
	sum.Elapsed = time.Since(start)
	if err := context.Cause(parent); err != nil {
		return sum, fmt.Errorf("sim: generate %d sessions into %s: %w", o.Sessions, st, err)
	}
	// A worker's error already names what failed ("sim: write DIR: ...").
	return sum, context.Cause(ctx)
}

// workers is how many sessions Generate synthesises at once: o.Workers,
// or one per CPU when 0, and no more than o.Sessions. Generate stores up
// to writersPerWorker times as many at once.
func (o Options) workers() int {
	w := o.Workers
	if w == 0 {
		w = runtime.NumCPU()
	}
	return min(w, o.Sessions)
}

// sessionStats is what one worker reports about one written session.
type sessionStats struct {
	status     string
	recordings int
	missing    int
}

// add counts one written session.
func (sum *Summary) add(s sessionStats) {
	sum.Sessions++
	switch s.status {
	case session.Approved:
		sum.Approved++
	case session.Pending:
		sum.Pending++
	case session.Rejected:
		sum.Rejected++
	}
	sum.Recordings += s.recordings
	sum.MissingReceivers += s.missing
	if s.missing > 0 {
		sum.SessionsWithMissing++
	}
}

// generator holds one worker's reusable buffers.
type generator struct {
	o       Options
	w       *World
	n       int
	carrier []complex128 // unit-amplitude FM waveform shared by receivers
	iq      []complex64
	record  json.RawMessage // session.Info.Simulation
}

func newGenerator(o Options, w *World) *generator {
	n := o.NumSamples()
	// Options hold numbers, strings and bools; only a non-finite number
	// (which Validate rejects) fails, and leaves the record out.
	rec, _ := json.Marshal(o.Record())
	return &generator{o: o, w: w, n: n, carrier: make([]complex128, n), iq: make([]complex64, n), record: rec}
}

// rngFor returns the random stream of session index: seeded by a SplitMix64
// hash of (seed, index), so neighbouring seeds and indices are unrelated.
func rngFor(seed int64, index int) *rand.Rand {
	a := splitmix64(uint64(seed) ^ 0x9e3779b97f4a7c15)
	b := splitmix64(a ^ splitmix64(uint64(index)+0x632be59bd9b4e019))
	return rand.New(rand.NewPCG(a, b))
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// receiverDraw holds the random parameters of one receiver in one session.
type receiverDraw struct {
	missing   bool
	shadowDB  float64
	noiseDB   float64 // noise floor jitter
	phase     float64
	pathAngle [fadingPaths]float64
	pathPhase [fadingPaths]float64
}

// object is one encoded object of a session.
type object struct {
	key         string
	data        []byte
	contentType string
}

// synthesized is one session ready to be stored: its objects in write order
// (recordings and metadata first, session.json last).
type synthesized struct {
	dir     string // the session's key prefix, for messages
	objects []object
	stats   sessionStats
}

// store writes the session's objects in order (storage.PutAll: a store
// that can syncs them together), so its session.json appears last.
func (s *synthesized) store(ctx context.Context, st storage.Store) error {
	objs := make([]storage.Object, len(s.objects))
	for i, obj := range s.objects {
		objs[i] = storage.Object{Key: obj.key, Data: obj.data, Opts: storage.PutOptions{ContentType: obj.contentType}}
	}
	if err := storage.PutAll(ctx, st, objs); err != nil {
		return fmt.Errorf("sim: write %s: %w", s.dir, err)
	}
	return nil
}

// synth synthesises and encodes session idx.
func (g *generator) synth(idx int) (*synthesized, error) {
	o := g.o
	rng := rngFor(o.Seed, idx)
	id := SessionID(o.Seed, idx)

	// Session-level draws, in a fixed order.
	lat := o.LatMin + rng.Float64()*(o.LatMax-o.LatMin)
	lon := o.LonMin + rng.Float64()*(o.LonMax-o.LonMin)
	status := session.Rejected
	switch u := rng.Float64(); {
	case u < o.ApprovedFraction:
		status = session.Approved
	case u < o.ApprovedFraction+(1-o.ApprovedFraction)/2:
		status = session.Pending
	}
	ts := epoch.Add(time.Duration(rng.Int64N(366*24*3600*1000)) * time.Millisecond)
	txDBm := o.TxPowerDBm + o.TxPowerJitterDB*rng.NormFloat64()
	offsetHz := (2*rng.Float64() - 1) * o.CarrierOffsetHzMax
	toneHz := o.AudioToneMinHz + rng.Float64()*(o.AudioToneMaxHz-o.AudioToneMinHz)
	devHz := o.FMDeviationHz * (0.5 + 0.5*rng.Float64())
	tonePhase := 2 * math.Pi * rng.Float64()
	dopplerHz := o.DopplerMaxHz * rng.Float64()

	rx := make([]receiverDraw, len(geo.Receivers))
	present := 0
	for i := range rx {
		r := &rx[i]
		r.missing = rng.Float64() < o.MissingReceiverProb
		r.shadowDB = g.w.shadowingSigmaDB() * rng.NormFloat64()
		r.noiseDB = o.NoiseFloorJitterDB * rng.NormFloat64()
		r.phase = 2 * math.Pi * rng.Float64()
		for k := range fadingPaths {
			r.pathAngle[k] = 2 * math.Pi * (float64(k) + rng.Float64()) / fadingPaths
			r.pathPhase[k] = 2 * math.Pi * rng.Float64()
		}
		if !r.missing {
			present++
		}
	}
	if present < minReceivers {
		for i := range rx {
			rx[i].missing = false
		}
	}

	// The terrain world's transmitter: drawn after everything the
	// log-distance world draws, so that world's draws are unchanged.
	eirpDBm, hFrac := txDBm, 0.0
	if g.w.Kind == WorldTerrain {
		tx := g.w.drawTx(rng)
		eirpDBm, hFrac = tx.eirpDBm(), tx.hFrac
	}

	g.synthCarrier(offsetHz, toneHz, devHz, tonePhase)

	out := &synthesized{dir: path.Dir(session.InfoKey(o.Prefix, id)), stats: sessionStats{status: status}}
	stats := &out.stats
	var ids []int
	for i, rcv := range geo.Receivers {
		r := &rx[i]
		if r.missing {
			stats.missing++
			continue
		}
		pDBm, d := g.w.MeanPowerDBm(i, lat, lon, eirpDBm, hFrac)
		g.synthReceiver(rng, r, pDBm+r.shadowDB, g.w.ricianKDB(d), g.w.Sites[i].NoiseFloorDBm, dopplerHz)

		iqKey := session.IQKey(o.Prefix, id, rcv.ID)
		buf := bytes.NewBuffer(make([]byte, 0, 128+8*len(g.iq)))
		if err := npy.WriteComplex64(buf, g.iq, len(g.iq)); err != nil {
			return nil, fmt.Errorf("sim: encode %s: %w", iqKey, err)
		}
		out.objects = append(out.objects, object{iqKey, buf.Bytes(), "application/octet-stream"})
		meta := session.ReceiverMeta{
			ReceiverID:      rcv.ID,
			ReceiverName:    rcv.Name,
			Latitude:        rcv.Lat,
			Longitude:       rcv.Lon,
			SampleRateHz:    o.SampleRateHz,
			CenterFrequency: o.CenterFrequencyHz,
			Timestamp:       ts,
			NumSamples:      g.n,
			DType:           "complex64",
		}
		if err := out.addJSON(session.MetaKey(o.Prefix, id, rcv.ID), meta); err != nil {
			return nil, err
		}
		ids = append(ids, rcv.ID)
		stats.recordings++
	}
	info := session.Info{
		SessionID:      id,
		Latitude:       lat,
		Longitude:      lon,
		FrequencyHz:    o.CenterFrequencyHz + offsetHz,
		ApprovalStatus: status,
		Timestamp:      ts,
		ReceiverIDs:    ids,
		Source:         Source,
		Simulation:     g.record,
	}
	if err := out.addJSON(session.InfoKey(o.Prefix, id), info); err != nil {
		return nil, err
	}
	return out, nil
}

// synthCarrier fills g.carrier with the unit-amplitude FM waveform: a float64
// phase accumulator driven by the carrier offset plus the tone's deviation.
func (g *generator) synthCarrier(offsetHz, toneHz, devHz, tonePhase float64) {
	fs := g.o.SampleRateHz
	w := 2 * math.Pi / fs
	toneStep := w * toneHz
	var phi float64
	for n := range g.carrier {
		inst := offsetHz + devHz*math.Cos(tonePhase+toneStep*float64(n))
		phi += w * inst
		if phi > math.Pi {
			phi -= 2 * math.Pi
		} else if phi < -math.Pi {
			phi += 2 * math.Pi
		}
		s, c := math.Sincos(phi)
		g.carrier[n] = complex(c, s)
	}
}

// synthReceiver fills g.iq with what one receiver records: the carrier at
// power pDBm through a Rician channel of K-factor kDB, plus noise at
// noiseDBm (with the session's jitter).
func (g *generator) synthReceiver(rng *rand.Rand, r *receiverDraw, pDBm, kDB, noiseDBm, dopplerHz float64) {
	o := g.o
	amp := math.Pow(10, (pDBm-o.FullScaleDBm)/20)
	noiseStd := math.Sqrt(math.Pow(10, (noiseDBm+r.noiseDB-o.FullScaleDBm)/10) / 2)
	k := math.Pow(10, kDB/10)
	losAmp := amp * math.Sqrt(k/(k+1))
	scatAmp := amp * math.Sqrt(1/(k+1)/fadingPaths)

	// Rotating phasors of the line of sight and the scattered paths; the
	// random carrier phase of the receiver rides on all of them.
	sinP, cosP := math.Sincos(r.phase)
	los := complex(losAmp*cosP, losAmp*sinP)
	step := maxFadingStep
	if dopplerHz > 0 {
		step = max(1, min(maxFadingStep, int(o.SampleRateHz/(200*dopplerHz))))
	}
	var paths, rot [fadingPaths]complex128
	for k := range fadingPaths {
		s, c := math.Sincos(r.pathPhase[k] + r.phase)
		paths[k] = complex(scatAmp*c, scatAmp*s)
		s, c = math.Sincos(2 * math.Pi * dopplerHz * math.Cos(r.pathAngle[k]) * float64(step) / o.SampleRateHz)
		rot[k] = complex(c, s)
	}
	// The channel moves at most doppler_max_hz (a few Hz): it is evaluated
	// every step samples and interpolated linearly in between.
	channel := func() complex128 {
		h := los
		for k := range fadingPaths {
			h += paths[k]
			paths[k] *= rot[k]
		}
		return h
	}
	h0 := channel()
	for n0 := 0; n0 < len(g.iq); n0 += step {
		h1 := channel()
		dh := (h1 - h0) / complex(float64(step), 0)
		h := h0
		for n := n0; n < min(n0+step, len(g.iq)); n++ {
			v := h * g.carrier[n]
			re := real(v) + noiseStd*rng.NormFloat64()
			im := imag(v) + noiseStd*rng.NormFloat64()
			g.iq[n] = complex(float32(g.sample(re)), float32(g.sample(im)))
			h += dh
		}
		h0 = h1
	}
}

// sample clips one component to the int16 full scale and, with Quantize,
// rounds it to the int16 grid.
func (g *generator) sample(v float64) float64 {
	v = max(-1, min(1, v))
	if g.o.Quantize {
		return math.Floor(v*32767+0.5) / 32767
	}
	return v
}

// addJSON appends v encoded as indented JSON.
func (s *synthesized) addJSON(key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("sim: encode %s: %w", key, err)
	}
	s.objects = append(s.objects, object{key, append(data, '\n'), "application/json"})
	return nil
}
