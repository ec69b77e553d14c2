package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/sim"
)

func newWorldCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "world",
		Short: "Draw the simulator's world: the terrain with the receivers, and each receiver's coverage",
		Long: `Build the simulator's static world (simulate.world terrain, seeded by
simulate.world_seed; identical for every simulate.seed) and write into --out:

  terrain.png                   the synthetic terrain over the transmitter box, the
                                receivers (squares; a red line along a directional
                                antenna's boresight)
  coverage_websdr_{id}.png      per receiver, the mean received power of a 27 dBm-EIRP
                                transmitter at mid height: from the receiver's noise
                                floor (dark) to 60 dB above it (yellow), grey below it
  world.json                    the receivers as placed: ground and antenna height,
                                gain offset, noise floor, antenna`,
		Example: `  heimdall world                          # -> ./world/
  heimdall world --out /tmp/w --set simulate.world_seed=2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			paths, err := sim.WriteMaps(out, cfg.Simulate)
			if err != nil {
				return err
			}
			for _, p := range paths {
				fmt.Println(p)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "world", "directory the maps are written to")
	return cmd
}
