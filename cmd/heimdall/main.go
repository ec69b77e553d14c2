// Command heimdall trains, evaluates and ships LocalizationNet, the neural
// network that locates an RF transmitter from the IQ recordings of the seven
// Heimdall WebSDR receivers.
//
// Each subcommand lives in its own file and is thin: flags -> config -> one
// library call that returns an error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/config"
)

// globals are the flags every subcommand shares.
type globals struct {
	configFile  string
	set         []string
	trackingURI string
}

func (g *globals) load() (config.Config, error) {
	set := g.set
	if g.trackingURI != "" {
		set = append(append([]string(nil), set...), "tracking.uri="+g.trackingURI)
	}
	return config.Load(config.Options{File: g.configFile, Set: set})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "heimdall: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "heimdall:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "heimdall",
		Short: "Train and ship LocalizationNet, the Heimdall RF transmitter locator",
		Long: `heimdall trains LocalizationNet, which predicts where an RF transmitter is
(latitude, longitude) and how sure it is (1-sigma in degrees) from the IQ
recordings of the seven Heimdall WebSDR receivers.

Configuration is resolved from, in order: the defaults, a YAML file (--config,
else the embedded configs/default.yaml), environment variables
HEIMDALL_<SECTION>_<KEY> (e.g. HEIMDALL_TRAIN_EPOCHS=5), and --set key=value
flags (e.g. --set train.batch_size=16). Unknown keys are errors.
Run 'heimdall config' to print the resolved configuration.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.configFile, "config", "c", "", "YAML config file (default: embedded configs/default.yaml)")
	root.PersistentFlags().StringArrayVar(&g.set, "set", nil, "override one config key, e.g. --set train.epochs=5 (repeatable)")
	root.PersistentFlags().StringVar(&g.trackingURI, "tracking-uri", "", "MLflow tracking server, e.g. http://127.0.0.1:5000 (= --set tracking.uri=...; default: HEIMDALL_MLFLOW_TRACKING_URI, MLFLOW_TRACKING_URI, else local RUN_DIR/tracking)")
	root.AddCommand(
		newConfigCmd(g),
		newSimulateCmd(g),
		newWorldCmd(g),
		newBaselineCmd(g),
		newTrainCmd(g),
		newExportCmd(g),
		newBenchCmd(g),
		newPredictCmd(g),
		newEvaluateCmd(g),
		newCurveCmd(g),
		newDevicesCmd(g),
		newDeviceCheckCmd(g),
		newModelsCmd(g),
		newTrackingCmd(g),
	)
	return root
}
