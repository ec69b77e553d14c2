package sim

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
)

// cpuTime is the process's user + system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGenerate measures sessions/s into the local store (and into a
// store that discards, to see the synthesis alone) for both worlds with
// the default options, side by side. The world is built before
// the timer (once per process, shared by every Generate). On a shared
// machine wall time follows the load; cpu-ms/session (user + system CPU of
// the whole process per session) does not, and 2000/cpu-ms is the rate two
// idle cores would reach when CPU-bound:
//
//	go test -run '^$' -bench Generate -benchtime 300x -count 3 ./sim/
func BenchmarkGenerate(b *testing.B) {
	for _, world := range []string{WorldLogDistance, WorldTerrain} {
		for _, store := range []string{"local", "discard"} {
			b.Run(world+"/"+store, func(b *testing.B) {
				o := DefaultOptions()
				o.World = world
				o.Sessions = b.N
				if _, err := NewWorld(o); err != nil {
					b.Fatal(err)
				}
				var st storage.Store = &countingStore{}
				if store == "local" {
					l, err := local.New(b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					st = l
				}
				c0 := cpuTime(b)
				b.ResetTimer()
				sum, err := Generate(context.Background(), st, o, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64(sum.Sessions)/b.Elapsed().Seconds(), "sessions/s")
				b.ReportMetric(float64((cpuTime(b)-c0).Microseconds())/1000/float64(sum.Sessions), "cpu-ms/session")
			})
		}
	}
}

// BenchmarkSynth measures the synthesis alone (one goroutine, no store).
func BenchmarkSynth(b *testing.B) {
	for _, world := range []string{WorldLogDistance, WorldTerrain} {
		b.Run(world, func(b *testing.B) {
			o := DefaultOptions()
			o.World = world
			w, err := NewWorld(o)
			if err != nil {
				b.Fatal(err)
			}
			g := newGenerator(o, w)
			c0 := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				if _, err := g.synth(i); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-c0).Microseconds())/1000/float64(b.N), "cpu-ms/session")
		})
	}
}
