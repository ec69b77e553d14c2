package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/experiment"
	"github.com/heimdall-sdr/trainer/storage/local"
)

func newEvaluateCmd(g *globals) *cobra.Command {
	var o experiment.EvaluateOptions
	var jsonFile, plotsDir string
	var threads int
	cmd := &cobra.Command{
		Use:   "evaluate --model RUN_DIR|FILE.onnx",
		Short: "Evaluate a trained model on stored sessions, beside the baselines and the oracle",
		Long: `Run a trained LocalizationNet on a set of stored sessions (the configured
store, local or S3; --prefix, --max-sessions) and print the table train prints
at its end: km mean/median/p90 and 1-sigma coverage of the model, the
classical baselines (centroid, least squares, calibrated least squares and
fingerprinting fitted on training sessions) and the oracle (the Bayes
locator of the simulated world the sessions record; n/a for sessions of an
unknown world, e.g. real recordings).

With a run directory the run's config.yaml (store, dataset, features) is the
starting point (--config replaces it, --set overrides it), and the model is
RUN_DIR/model.onnx in ONNX Runtime, or the best checkpoint in GoMLX when
there is no model.onnx or no ONNX Runtime library (--engine). On the run's
own sessions (no --prefix or --max-sessions) it evaluates the run's
validation split and fits the baselines on its training split, reproducing
the run's numbers; on other sessions it evaluates all of them (--split) and
fits on the run's training split or --train-prefix. A bare .onnx file
uses the resolved configuration; its fitted baselines need --train-prefix.`,
		Example: `  heimdall evaluate --model runs/rf-localization_20261201_101500
  heimdall evaluate --model runs/RUN --prefix sessions-new --json eval.json --plots eval-plots
  heimdall evaluate --model model.onnx --prefix sessions-new --train-prefix sessions --set store.root=data`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Model == "" {
				return fmt.Errorf("evaluate: --model is required (a run directory or a .onnx file)")
			}
			var cfg config.Config
			var err error
			if fi, statErr := os.Stat(o.Model); statErr == nil && fi.IsDir() {
				cfg, err = loadRunConfig(g, o.Model)
			} else {
				cfg, err = g.load()
			}
			if err != nil {
				return err
			}
			o.SessionOptions = cfg.Export.SessionOptions()
			if cmd.Flags().Changed("threads") {
				o.SessionOptions.IntraOpThreads = threads
			}
			o.Progress, o.Log = os.Stderr, os.Stderr
			ev, err := experiment.Evaluate(cmd.Context(), cfg, o)
			if err != nil {
				return err
			}
			if err := ev.WriteText(os.Stdout); err != nil {
				return err
			}
			if jsonFile != "" {
				b, err := json.MarshalIndent(ev, "", "  ")
				if err != nil {
					return err
				}
				if err := local.WriteFile(jsonFile, append(b, '\n')); err != nil {
					return fmt.Errorf("evaluate: --json %s: %w", jsonFile, err)
				}
				fmt.Printf("\nreport: %s\n", jsonFile)
			}
			if plotsDir != "" {
				if err := ev.WritePlots(plotsDir); err != nil {
					return fmt.Errorf("evaluate: --plots %s: %w", plotsDir, err)
				}
				fmt.Printf("plots: %s\n", plotsDir)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "run directory (model.onnx or best checkpoint) or .onnx file")
	f.StringVar(&o.Prefix, "prefix", "", "sessions to evaluate (overrides dataset.prefix)")
	f.IntVar(&o.MaxSessions, "max-sessions", 0, "use at most this many approved sessions (overrides dataset.max_sessions)")
	f.StringVar(&o.TrainPrefix, "train-prefix", "", "sessions the fitted baselines learn from (default: the run's training split)")
	f.StringVar(&o.Engine, "engine", experiment.EngineAuto, "auto, onnx (ONNX Runtime) or gomlx (the run's checkpoint)")
	f.StringVar(&o.Set, "split", experiment.SetAuto, "auto (the validation split on a run's own sessions, else all), val or all")
	f.StringVar(&jsonFile, "json", "", "also write the report as JSON to this file")
	f.StringVar(&plotsDir, "plots", "", "also write the error CDF and positions plots into this directory")
	f.IntVar(&threads, "threads", 1, "ONNX Runtime intra-op threads (default: export.intra_op_threads)")
	return cmd
}
