package sim

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
	"github.com/heimdall-sdr/trainer/storage/s3"
)

// procCPU is the user + system CPU time of process pid so far (Linux,
// /proc/PID/stat, clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// loadAvg is the 1-minute load average.
func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// BenchmarkGenerateStores measures sessions/s of the default (terrain)
// world into the local store and into MinIO side by side: with -sim.rounds
// N the kinds alternate, so all see the same load on a shared machine. The
// MinIO runs need a server (HEIMDALL_TEST_S3_ENDPOINT, _ACCESS_KEY,
// _SECRET_KEY, _PID as scripts/minio.sh writes them) and are skipped
// without one. Reported: sessions/s, cpu-ms/session of this process,
// server-cpu-ms/session (MinIO's own CPU, from /proc) and the load average
// at the end:
//
//	HEIMDALL_SERVICES=minio scripts/with-services.sh \
//	  go test -run '^$' -bench GenerateStores -benchtime 400x ./sim/ -args -sim.rounds 3
//
// "local-put" is the local store written one Put after another, each file
// synced on its own (what Generate did before storage.PutAll), for the
// before/after ratio. "minio-upload" is the server's ceiling for this
// layout: the same sessions synthesised before the timer, then only
// uploaded, as many at once as Generate stores; Generate into "minio"
// cannot beat it, and the ratio of the two says how much of the rate the
// simulator's own work costs. The local stores write into one directory
// kept until the benchmark ends: on this machine's ext4 (no journal)
// deleting many files makes the next file creations in the same block
// group slow for a minute or more (inode allocation skips recently deleted
// inodes one by one), so a round must not pay for the previous round's
// clean-up.
func BenchmarkGenerateStores(b *testing.B) {
	root := b.TempDir()
	for r := range *benchRounds {
		for _, kind := range []string{"local-put", "local", "minio", "minio-upload"} {
			dir := filepath.Join(root, fmt.Sprintf("%s-%d", kind, r))
			b.Run(kind, func(b *testing.B) { benchmarkGenerateStore(b, kind, dir) })
		}
	}
}

// putOnly hides a store's PutAll: storage.PutAll then puts one by one.
type putOnly struct{ storage.Store }

// benchRounds is how many times BenchmarkGenerateStores alternates the
// stores (go test's -count repeats each store in a row instead).
var benchRounds = flag.Int("sim.rounds", 2, "rounds of BenchmarkGenerateStores, alternating the stores")

// benchMinIO is the test MinIO as an s3 store with its bucket made, and
// the server's pid (0 when unknown); it skips b without a server.
func benchMinIO(b *testing.B) (*s3.Client, int) {
	ep := os.Getenv("HEIMDALL_TEST_S3_ENDPOINT")
	if ep == "" {
		b.Skip("no MinIO: HEIMDALL_TEST_S3_ENDPOINT unset (scripts/with-services.sh)")
	}
	c, err := s3.New(s3.Options{
		Endpoint:     ep,
		Bucket:       "heimdall-sim-bench",
		AccessKey:    os.Getenv("HEIMDALL_TEST_S3_ACCESS_KEY"),
		SecretKey:    os.Getenv("HEIMDALL_TEST_S3_SECRET_KEY"),
		CreateBucket: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	// Create the bucket before the timer.
	if err := c.Put(context.Background(), "warm-up", strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	pid, _ := strconv.Atoi(os.Getenv("HEIMDALL_TEST_S3_PID"))
	return c, pid
}

// uploadOnly synthesises o.Sessions sessions, then resets the timer and
// stores them as many at once as Generate does. It returns the sessions
// stored and this process's CPU time when the timer was reset.
func uploadOnly(b *testing.B, st storage.Store, o Options, w *World) (int, time.Duration) {
	g := newGenerator(o, w)
	ss := make([]*synthesized, o.Sessions)
	for i := range ss {
		var err error
		if ss[i], err = g.synth(i); err != nil {
			b.Fatal(err)
		}
	}
	var eg errgroup.Group
	eg.SetLimit(writersPerWorker * o.workers())
	c0 := cpuTime(b)
	b.ResetTimer()
	for _, s := range ss {
		eg.Go(func() error { return s.store(context.Background(), st) })
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}
	return len(ss), c0
}

func benchmarkGenerateStore(b *testing.B, kind, dir string) {
	o := DefaultOptions()
	o.Sessions = b.N
	o.Prefix = fmt.Sprintf("bench-%d/sessions", time.Now().UnixNano())
	w, err := NewWorld(o) // builds the world's caches before the timer
	if err != nil {
		b.Fatal(err)
	}
	var st storage.Store
	serverPID := 0
	switch kind {
	case "local", "local-put":
		l, err := local.New(filepath.Join(dir, strconv.Itoa(b.N)))
		if err != nil {
			b.Fatal(err)
		}
		st = l
		if kind == "local-put" {
			st = putOnly{l}
		}
	case "minio", "minio-upload":
		st, serverPID = benchMinIO(b)
	}
	var s0 time.Duration
	if serverPID > 0 {
		// The server idles while uploadOnly synthesises.
		s0, _ = procCPU(serverPID)
	}
	var n int
	var c0 time.Duration
	if kind == "minio-upload" {
		n, c0 = uploadOnly(b, st, o, w)
	} else {
		b.ResetTimer()
		c0 = cpuTime(b)
		sum, err := Generate(context.Background(), st, o, nil)
		if err != nil {
			b.Fatal(err)
		}
		n = sum.Sessions
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "sessions/s")
	b.ReportMetric(float64((cpuTime(b)-c0).Microseconds())/1000/float64(n), "cpu-ms/session")
	if serverPID > 0 {
		if s1, err := procCPU(serverPID); err == nil {
			b.ReportMetric(float64((s1-s0).Microseconds())/1000/float64(n), "server-cpu-ms/session")
		}
	}
	b.ReportMetric(loadAvg(), "load1")
}
