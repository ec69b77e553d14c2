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
// world into the local store and into MinIO side by side: with -count N
// the two alternate, so both see the same load on a shared machine. The
// MinIO run needs a server (HEIMDALL_TEST_S3_ENDPOINT, _ACCESS_KEY,
// _SECRET_KEY, _PID as scripts/minio.sh writes them) and is skipped
// without one. Reported: sessions/s, cpu-ms/session of this process,
// server-cpu-ms/session (MinIO's own CPU, from /proc) and the load average
// at the end:
//
//	HEIMDALL_SERVICES=minio scripts/with-services.sh \
//	  go test -run '^$' -bench GenerateStores -benchtime 400x ./sim/ -args -sim.rounds 3
//
// "local-put" is the local store written one Put after another, each file
// synced on its own (what Generate did before storage.PutAll), for the
// before/after ratio. The local stores write into one directory kept until
// the benchmark ends: on this machine's ext4 (no journal) deleting many
// files makes the next file creations in the same block group slow for a
// minute or more (inode allocation skips recently deleted inodes one by
// one), so a round must not pay for the previous round's clean-up.
func BenchmarkGenerateStores(b *testing.B) {
	root := b.TempDir()
	for r := range *benchRounds {
		for _, kind := range []string{"local-put", "local", "minio"} {
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

func benchmarkGenerateStore(b *testing.B, kind, dir string) {
	{
		{
			o := DefaultOptions()
			o.Sessions = b.N
			o.Prefix = fmt.Sprintf("bench-%d/sessions", time.Now().UnixNano())
			if _, err := NewWorld(o); err != nil {
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
			case "minio":
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
				st = c
				serverPID, _ = strconv.Atoi(os.Getenv("HEIMDALL_TEST_S3_PID"))
			}
			var s0 time.Duration
			if serverPID > 0 {
				s0, _ = procCPU(serverPID)
			}
			c0 := cpuTime(b)
			b.ResetTimer()
			sum, err := Generate(context.Background(), st, o, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			n := float64(sum.Sessions)
			b.ReportMetric(n/b.Elapsed().Seconds(), "sessions/s")
			b.ReportMetric(float64((cpuTime(b)-c0).Microseconds())/1000/n, "cpu-ms/session")
			if serverPID > 0 {
				if s1, err := procCPU(serverPID); err == nil {
					b.ReportMetric(float64((s1-s0).Microseconds())/1000/n, "server-cpu-ms/session")
				}
			}
			b.ReportMetric(loadAvg(), "load1")
		}
	}
}
