package sim

import (
	"context"
	"testing"

	"github.com/heimdall-sdr/trainer/storage/local"
)

// BenchmarkGenerate measures sessions/s into the local store for both
// worlds with the default options (the world is built before the timer:
// it is built once per process and shared):
//
//	go test -run '^$' -bench Generate -benchtime 400x ./sim/
func BenchmarkGenerate(b *testing.B) {
	for _, world := range []string{WorldLogDistance, WorldTerrain} {
		b.Run(world, func(b *testing.B) {
			o := DefaultOptions()
			o.World = world
			o.Sessions = b.N
			if _, err := NewWorld(o); err != nil {
				b.Fatal(err)
			}
			st, err := local.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			sum, err := Generate(context.Background(), st, o, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(sum.Sessions)/b.Elapsed().Seconds(), "sessions/s")
		})
	}
}

// BenchmarkSynth measures the synthesis alone (no store), per session.
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
			b.ResetTimer()
			for i := range b.N {
				if _, err := g.synth(i); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
		})
	}
}
