package sim

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/heimdall-sdr/trainer/session"
	"github.com/heimdall-sdr/trainer/storage"
	"github.com/heimdall-sdr/trainer/storage/local"
)

// TestSimulationRecordRoundTrip: session.json carries the options, and
// they rebuild the same world.
func TestSimulationRecordRoundTrip(t *testing.T) {
	o := DefaultOptions()
	o.Sessions, o.Seed, o.WorldSeed, o.World = 2, 9, 4, WorldLogDistance
	o.FMDeviationHz = 2000
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), st, o, nil); err != nil {
		t.Fatal(err)
	}
	b, err := storage.ReadAll(context.Background(), st, session.InfoKey(o.Prefix, SessionID(9, 0)))
	if err != nil {
		t.Fatal(err)
	}
	var info session.Info
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	got, err := OptionsFromRecord(info.Simulation)
	if err != nil {
		t.Fatal(err)
	}
	want := o
	want.Sessions, want.Seed, want.Workers, want.Prefix = DefaultOptions().Sessions, DefaultOptions().Seed, DefaultOptions().Workers, DefaultOptions().Prefix
	if got != want {
		t.Errorf("options from record:\n got %+v\nwant %+v", got, want)
	}
	if !SameWorld(got, o) {
		t.Error("the record's world differs from the simulated one")
	}
	other := o
	other.WorldSeed = 5
	if SameWorld(other, o) {
		t.Error("world seeds 4 and 5 count as one world")
	}
	if _, err := OptionsFromRecord(json.RawMessage(`{"world_sead": 1}`)); err == nil {
		t.Error("an unknown key was accepted")
	}
}
