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
		Long: `Evaluate the classical baseline that LocalizationNet must beat, on the same
validation split the trainer uses: each receiver's received power is
estimated from its IQ, and the transmitter is located by (1) the
power-weighted centroid of the receivers and (2) a log-distance path-loss
least-squares fit. Errors are great-circle (haversine) distances in km.`,
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
			fmt.Printf("%-15s %9s %11s %8s\n", "method", "mean km", "median km", "p90 km")
			for _, r := range []struct {
				name string
				e    [3]float64
			}{
				{"centroid", [3]float64{rep.Centroid.MeanKm, rep.Centroid.MedianKm, rep.Centroid.P90Km}},
				{"least squares", [3]float64{rep.LeastSquares.MeanKm, rep.LeastSquares.MedianKm, rep.LeastSquares.P90Km}},
			} {
				fmt.Printf("%-15s %9.1f %11.1f %8.1f\n", r.name, r.e[0], r.e[1], r.e[2])
			}
			return nil
		},
	}
}
