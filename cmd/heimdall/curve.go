package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/experiment"
)

func newCurveCmd(g *globals) *cobra.Command {
	var sizes []int
	var out string
	cmd := &cobra.Command{
		Use:   "curve",
		Short: "Learning curve: validation error against the number of training sessions",
		Long: `Train LocalizationNet (the configured model and schedule) on growing
prefixes of the training split and fit the estimators (calibrated least
squares, fingerprinting, ...) on the same sessions; judge all of them on
the same validation split, beside the oracle (the limit of what the
received powers tell, computed once). Writes one run directory per size
under --out, and curve.json, curve.md (a Markdown table of the validation
km medians and the ratios to fingerprinting and the oracle) and curve.png
(km median against training sessions). Each point is written as soon as
it is done, so an interrupted curve keeps what it has.

The sessions come from the configured store; simulate enough first, e.g.
  heimdall simulate --set simulate.sessions=16000
  heimdall curve --sizes 1000,2000,4000,8000,11462`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(cfg.Run.Dir, "curve")
			}
			c, err := experiment.LearningCurve(cmd.Context(), cfg, experiment.CurveOptions{
				Sizes: sizes, OutDir: out, Progress: os.Stderr, Log: os.Stderr,
			})
			if c != nil && len(c.Points) > 0 {
				if werr := c.WriteTable(os.Stdout); werr != nil && err == nil {
					err = werr
				}
				fmt.Fprintf(os.Stderr, "curve: %s, %s and %s in %s\n", experiment.CurveTable, experiment.CurveJSON, experiment.CurvePlot, out)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&sizes, "sizes", nil, "training-session counts, each a prefix of the training split (default: 1000, 2000, 4000, ... then the whole split)")
	f.StringVar(&out, "out", "", "output directory (default: RUN_DIR/curve, run.dir from the config)")
	return cmd
}
