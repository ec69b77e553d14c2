package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/experiment"
)

func newSimulateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "simulate",
		Short: "Write synthetic recording sessions of the seven receivers into the store",
		Long: `Generate simulate.sessions synthetic sessions (seed simulate.seed) in the real
storage layout, under dataset.prefix of the configured store:

  sessions/{session_id}/session.json                  ground truth, approval_status
  sessions/{session_id}/websdr_{receiver_id}.npy      complex64 IQ, 1-D
  sessions/{session_id}/websdr_{receiver_id}_metadata.json

A transmitter is placed uniformly in the simulate.lat/lon box. In the default
world (simulate.world: terrain, seeded by simulate.world_seed) each receiver
gets free-space loss plus diffraction over a synthetic terrain of the region,
its own gain offset, noise floor and antenna pattern; simulate.world:
log_distance is the plain log-distance law. Then shadowing, fading, noise, a
carrier offset and an FM signal. The output is byte-identical for a given
seed and world. 'heimdall world' draws the terrain and coverage maps.`,
		Example: `  heimdall simulate                                  # simulate.sessions (16000 by default) into ./data
  heimdall simulate --config configs/smoke.yaml
  heimdall simulate --set simulate.sessions=500 --set store.root=/tmp/heimdall`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			sum, err := experiment.Simulate(cmd.Context(), cfg, os.Stderr)
			if err != nil {
				return err
			}
			// Where the sessions went: s3://bucket/prefix or root/prefix.
			dest := filepath.Join(cfg.Store.Root, cfg.Simulate.Prefix)
			if cfg.Store.Kind == "s3" {
				dest = "s3://" + path.Join(cfg.Store.Bucket, cfg.Simulate.Prefix)
			}
			fmt.Printf("simulated %d sessions into %s (approved %d, pending %d, rejected %d; %d missing recordings) in %s, %.0f sessions/s\n",
				sum.Sessions, dest, sum.Approved, sum.Pending, sum.Rejected,
				sum.MissingReceivers, sum.Elapsed.Round(1e7), sum.SessionsPerSecond())
			return nil
		},
	}
}
