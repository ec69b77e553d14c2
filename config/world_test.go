package config

import (
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/sim"
)

func TestWorldKeys(t *testing.T) {
	cfg, err := Load(Options{Env: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Simulate.World != sim.WorldTerrain || cfg.Simulate.WorldSeed != 1 {
		t.Fatalf("default world %q seed %d, want terrain, 1", cfg.Simulate.World, cfg.Simulate.WorldSeed)
	}
	env := map[string]string{"HEIMDALL_SIMULATE_WORLD_SEED": "7"}
	cfg, err = Load(Options{
		Set: []string{"simulate.world=log_distance", "simulate.directional_receivers=3", "simulate.tx_power_max_dbm=44"},
		Env: func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Simulate; s.World != sim.WorldLogDistance || s.WorldSeed != 7 || s.DirectionalReceivers != 3 || s.TxPowerMaxDBm != 44 {
		t.Fatalf("overrides not applied: %+v", s)
	}
	for _, tc := range []struct{ set, want string }{
		{"simulate.world=flat", "simulate.world"},
		{"simulate.dem_resolution_m=1000", "simulate.dem_resolution_m"},
		{"simulate.tx_power_min_dbm=50", "simulate.tx_power_max_dbm"},
		{"simulate.earth_k_factor=0", "simulate.earth_k_factor"},
		{"simulate.world_sed=2", `unknown key "simulate.world_sed"`},
	} {
		_, err := Load(Options{Set: []string{tc.set}, Env: func(string) string { return "" }})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: %v, want an error naming %s", tc.set, err, tc.want)
		}
	}
}
