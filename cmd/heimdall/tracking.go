package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/experiment"
)

func newTrackingCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tracking",
		Short: "Experiment tracking: send buffered runs to MLflow",
		Long: `Every training run is tracked in RUN_DIR/tracking (params.json, tags.json,
metrics.jsonl, artifacts.jsonl, models.jsonl, run.json; see the tracking
package). With an MLflow tracking URI (--tracking-uri, tracking.uri,
HEIMDALL_TRACKING_URI, HEIMDALL_MLFLOW_TRACKING_URI or MLFLOW_TRACKING_URI)
the run is also sent to MLflow as it goes; what could not be sent stays
there for 'heimdall tracking replay'.`,
	}
	cmd.AddCommand(newTrackingReplayCmd(g))
	return cmd
}

func newTrackingReplayCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "replay RUN_DIR",
		Short: "Send the run buffered in RUN_DIR/tracking to MLflow (idempotent)",
		Long: `Send what RUN_DIR/tracking holds and the MLflow server lacks: the run (created
if it never reached the server), params, tags, metrics, artifacts, model
versions (with stage and alias) and the final status. Progress is kept in
RUN_DIR/tracking/replay-state.json and metric values the server already has
are skipped, so replaying again sends nothing twice.

The server is the configured tracking URI, else the one the run was meant
for (recorded in replay-state.json).`,
		Example: `  heimdall tracking replay runs/rf-localization_20261125_210000
  heimdall tracking replay --tracking-uri http://127.0.0.1:5000 runs/rf-localization_20261125_210000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			s, uri, err := experiment.ReplayTracking(cmd.Context(), cfg, args[0])
			if err != nil {
				return err
			}
			verb := "continued"
			if s.RunCreated {
				verb = "created"
			}
			fmt.Printf("replayed %s to MLflow %s: run %s (%s); sent %d params, %d tags, %d metric values (%d already there), %d artifacts, %d model versions",
				args[0], uri, s.RunID, verb, s.Params, s.Tags, s.Metrics, s.Duplicates, s.Artifacts, s.Models)
			if s.StatusSent != "" {
				fmt.Printf(", status %s", s.StatusSent)
			}
			fmt.Println()
			return nil
		},
	}
}

// newModelsPromoteCmd is `heimdall models promote` (registered in models.go).
func newModelsPromoteCmd(g *globals) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "promote VERSION --to production",
		Short: "Move an MLflow model version to a stage and point the stage's alias at it",
		Long: `Move VERSION of the registered model tracking.registered_model (default
heimdall-localization-onnx) on the MLflow server to the stage --to
(Production archives the versions there before), and set the alias of the
stage's name (e.g. "production") to it, since stages are deprecated in
recent MLflow. Training registers each exported model in Staging (alias
"staging").`,
		Example: `  heimdall models promote 3 --to production --tracking-uri http://127.0.0.1:5000`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stage, err := stageName(to)
			if err != nil {
				return err
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			mv, uri, err := experiment.PromoteModel(cmd.Context(), cfg, args[0], stage)
			if err != nil {
				return err
			}
			fmt.Printf("%s version %s is in stage %s (alias %s) on MLflow %s; source %s\n",
				mv.Name, mv.Version, mv.CurrentStage, strings.ToLower(stage), uri, mv.Source)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target stage: production, staging or archived")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func stageName(s string) (string, error) {
	switch strings.ToLower(s) {
	case "production":
		return "Production", nil
	case "staging":
		return "Staging", nil
	case "archived":
		return "Archived", nil
	}
	return "", fmt.Errorf("models promote: --to must be production, staging or archived, got %q", s)
}
