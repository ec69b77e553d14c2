package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/experiment"
)

func newPredictCmd(g *globals) *cobra.Command {
	var modelPath, sessionRef, store string
	var asJSON bool
	var threads int
	cmd := &cobra.Command{
		Use:   "predict --model RUN_DIR|FILE.onnx --session DIR|ID",
		Short: "Locate the transmitter of one session with the ONNX model",
		Long: `Read one session's IQ recordings (a session directory, or a session id in
the configured store), compute the model input with the same feature code as
training (using the feature parameters recorded in the model), run the ONNX
model with ONNX Runtime and print the position (lat, lon) and the 1-sigma
ellipse semi-axes in km; with the ground-truth error when the session has one.`,
		Example: `  heimdall predict --model runs/RUN --session data/sessions/sess-000123
  heimdall predict --model runs/RUN/model.onnx --session sess-000123 --store data --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" || sessionRef == "" {
				return fmt.Errorf("predict: --model and --session are required")
			}
			if store != "" {
				g.set = append(g.set, "store.root="+store)
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			so := cfg.Export.SessionOptions()
			if cmd.Flags().Changed("threads") {
				so.IntraOpThreads = threads
			}
			p, err := experiment.Predict(cmd.Context(), cfg, experiment.PredictOptions{Model: modelPath, Session: sessionRef, SessionOptions: so})
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.MarshalIndent(p, "", "  ")
				if err != nil {
					return err
				}
				fmt.Println(string(b))
				return nil
			}
			fmt.Printf("session %s (%d receivers, %g Hz), model %s %s\n", p.SessionID, p.Receivers, p.SampleRateHz, p.Model, p.ModelVersion)
			fmt.Printf("position: %.5f, %.5f (lat, lon degrees)\n", p.Latitude, p.Longitude)
			fmt.Printf("1-sigma ellipse: %.2f km north-south x %.2f km east-west (sigma %.4f, %.4f deg)\n",
				p.SemiAxisNSKm, p.SemiAxisEWKm, p.SigmaLatDeg, p.SigmaLonDeg)
			if p.ErrorKm != nil {
				fmt.Printf("ground truth: %.5f, %.5f; error %.2f km\n", p.Truth[0], p.Truth[1], *p.ErrorKm)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", "ONNX model file or run directory (RUN_DIR/model.onnx)")
	cmd.Flags().StringVar(&sessionRef, "session", "", "session directory, or session id in the store")
	cmd.Flags().StringVar(&store, "store", "", "local store root (overrides store.root)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&threads, "threads", 1, "ONNX Runtime intra-op threads (default: export.intra_op_threads)")
	return cmd
}
