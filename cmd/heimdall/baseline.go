package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/experiment"
)

func newBaselineCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "baseline",
		Short: "Locate the validation sessions with the classical received-power methods",
		Long: `Evaluate the classical baselines that LocalizationNet must beat, on the same
validation split the trainer uses: each receiver's received power is
estimated from its IQ, and the transmitter is located by (1) the
power-weighted centroid of the receivers, (2) a log-distance path-loss
least-squares fit, (3) least squares calibrated on the training split
(receiver gain offsets and exponent) and (4) k-nearest-neighbour
fingerprinting on the training split (k by cross-validation); beside them
the oracle, the Bayes locator of the simulated world the sessions record
(n/a for sessions of an unknown world). Errors are great-circle
(haversine) distances in km.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			rep, ds, err := experiment.Baseline(cmd.Context(), cfg, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, ds.Report)
			fmt.Printf("validation sessions: %d\n", ds.Val.Len())
			return experiment.WriteBaselineTable(os.Stdout, rep)
		},
	}
}
