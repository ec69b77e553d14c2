package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/experiment"
	"github.com/heimdall-sdr/trainer/rundir"
)

func newExportCmd(g *globals) *cobra.Command {
	var noVal bool
	cmd := &cobra.Command{
		Use:   "export RUN_DIR",
		Short: "Export a run's best checkpoint to RUN_DIR/model.onnx (check + parity)",
		Long: `Export the best checkpoint of a run to ONNX (opset 14, dynamic batch):
input mel_spectrogram [batch, receivers, n_mels, frames], outputs positions
[batch, 2] and uncertainties [batch, 2]. BatchNorm is folded into the
convolution and dense weights, dropout removed. The model is checked
structurally, then run with ONNX Runtime against the GoMLX model on 5x8
random and 5x8 validation inputs; the export fails when a mean absolute
error exceeds export.max_mae (1e-5). Writes RUN_DIR/model.onnx (metadata
inside), ` + rundir.ModelCardFile + ` (metadata record) and ` + rundir.ParityFile + `.

'train' does this automatically at the end. The run's own ` + rundir.ConfigFile + ` is
used (override with --set, e.g. --set export.max_mae=1e-4). Needs the ONNX
Runtime library: scripts/install-ort.sh.`,
		Example: `  heimdall export runs/rf-localization_20261125_210514
  heimdall export --no-validation runs/rf-localization_20261125_210514`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			runDir := args[0]
			cfg, err := loadRunConfig(g, runDir)
			if err != nil {
				return err
			}
			res, err := experiment.Export(cmd.Context(), runDir, cfg, experiment.ExportOptions{
				NoValidation: noVal, Progress: os.Stderr, Log: os.Stderr,
			})
			if err != nil {
				return err
			}
			fmt.Println(res.Parity.String())
			fmt.Printf("model: %s (%d bytes, sha256 %s)\nmetadata: %s\n", res.ModelPath, res.Meta.SizeBytes, res.Meta.SHA256, res.MetaPath)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noVal, "no-validation", false, "parity on random inputs only (do not load the dataset)")
	return cmd
}

// loadRunConfig is the run's saved config (or --config when given) plus --set.
func loadRunConfig(g *globals, runDir string) (config.Config, error) {
	if g.configFile != "" {
		return g.load()
	}
	return experiment.RunConfig(runDir, g.set)
}
