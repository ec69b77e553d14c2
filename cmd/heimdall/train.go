package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/experiment"
	"github.com/heimdall-sdr/trainer/rundir"
)

func newTrainCmd(g *globals) *cobra.Command {
	var resume string
	var simulate bool
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train LocalizationNet on the approved sessions of the store",
		Long: `Train LocalizationNet: load the approved sessions, compute (or reuse cached)
mel-spectrogram features, split 80/20 by session, evaluate the classical
baseline on the validation split, then train with AdamW + cosine schedule,
early stopping and checkpoints. Everything goes into a new run directory
under run.dir: ` + rundir.ConfigFile + ` (resolved), ` + rundir.DatasetFile + `, ` + rundir.MetricsFile + `,
` + rundir.CheckpointsDir + `/, ` + rundir.PlotsDir + `/*.png and ` + rundir.SummaryFile + `.

The GoMLX backend is chosen automatically (CUDA if a GPU and plugin are
present, else the fastest installed CPU backend) unless run.backend or
GOMLX_BACKEND says otherwise; it is printed at start.

With --resume RUN_DIR the run continues from its last checkpoint with the
configuration saved in RUN_DIR/` + rundir.ConfigFile + `, and ends as if never stopped.`,
		Example: `  heimdall train --simulate                     # what 'make train' runs
  heimdall train --config configs/smoke.yaml --simulate
  heimdall train --set train.epochs=10 --set model.preset=tiny
  heimdall train --resume runs/rf-localization_20261125_210000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if resume != "" && g.configFile == "" {
				g.configFile = rundir.Path(resume, rundir.ConfigFile)
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			res, err := experiment.Train(cmd.Context(), cfg, experiment.TrainOptions{
				ResumeDir:       resume,
				SimulateIfEmpty: simulate,
				Progress:        os.Stderr,
				Log:             os.Stderr,
			})
			if err != nil {
				return err
			}
			fmt.Println()
			if err := res.Summary.WriteText(os.Stdout); err != nil {
				return err
			}
			fmt.Printf("\nrun directory: %s\n", res.RunDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&resume, "resume", "", "continue the run in this directory from its last checkpoint")
	cmd.Flags().BoolVar(&simulate, "simulate", false, "simulate the configured dataset first if the store holds no session")
	return cmd
}
