package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/bench"
	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/experiment"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/rundir"
)

func newBenchCmd(g *globals) *cobra.Command {
	var (
		onnxPath, ckpt, jsonOut, mdOut string
		batches                        []int
		warmup, iters, threads         int
		maxTime                        time.Duration
		maxMAE, minSpeedup             float64
		noVal                          bool
	)
	cmd := &cobra.Command{
		Use:   "bench [RUN_DIR]",
		Short: "Benchmark inference: native GoMLX backend vs ONNX Runtime (latency, throughput, parity)",
		Long: `Benchmark LocalizationNet inference on the same random inputs with the native
GoMLX backend (the run's best checkpoint) and with ONNX Runtime
(RUN_DIR/model.onnx): warm-up runs, then latency p50/p95/p99 and throughput
per batch size, the speedup native/ORT (p50), parity (mean and max abs error
per output on 5x8 random and 5x8 validation inputs) and machine info.

Give a run directory, or --onnx FILE with --checkpoint DIR (a run or
checkpoints directory). Output: a table on stdout, --json FILE, --markdown
FILE; progress on stderr. Gates: --max-mae and --min-speedup make the
command exit non-zero when violated.`,
		Example: `  heimdall bench runs/rf-localization_20261125_210514
  heimdall bench runs/RUN --batch 1,8,32 --json bench.json --markdown bench.md
  heimdall bench --onnx model.onnx --checkpoint runs/RUN --max-mae 1e-5 --min-speedup 1.0`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			runDir := ""
			if len(args) == 1 {
				runDir = args[0]
			}
			if runDir == "" && (onnxPath == "" || ckpt == "") {
				return errors.New("bench: give RUN_DIR, or --onnx FILE and --checkpoint DIR")
			}
			if onnxPath == "" {
				onnxPath = filepath.Join(runDir, rundir.ModelFile)
			}
			if ckpt == "" {
				ckpt = runDir
			}
			var cfg config.Config
			var err error
			if runDir != "" && g.configFile == "" {
				cfg, err = experiment.RunConfig(runDir, g.set)
			} else {
				cfg, err = g.load()
			}
			if err != nil {
				return err
			}
			so := cfg.Export.SessionOptions()
			if cmd.Flags().Changed("threads") {
				so.IntraOpThreads = threads
			}
			if !cmd.Flags().Changed("max-mae") {
				maxMAE = cfg.Export.MaxMAE
			}
			rep, err := experiment.Bench(cmd.Context(), cfg, experiment.BenchOptions{
				ONNX: onnxPath, Checkpoint: ckpt, Session: so, Validation: !noVal && runDir != "",
				Bench: bench.Options{BatchSizes: batches, Warmup: warmup, Iterations: iters, MaxTime: maxTime, MaxMAE: maxMAE,
					Progress: os.Stderr},
				Command: "heimdall " + strings.Join(os.Args[1:], " "),
				JSON:    jsonOut, Markdown: mdOut, Log: os.Stderr,
			})
			if err != nil {
				return err
			}
			if err := rep.WriteTable(os.Stdout); err != nil {
				return err
			}
			gateMAE := 0.0
			if cmd.Flags().Changed("max-mae") {
				gateMAE = maxMAE
			}
			return rep.Gate(gateMAE, minSpeedup)
		},
	}
	f := cmd.Flags()
	f.StringVar(&onnxPath, "onnx", "", "ONNX model (default RUN_DIR/model.onnx)")
	f.StringVar(&ckpt, "checkpoint", "", "run or checkpoints directory of the native model (default RUN_DIR)")
	f.IntSliceVar(&batches, "batch", []int{1, 8, 32}, "batch sizes")
	f.IntVar(&warmup, "warmup", 3, "warm-up runs per path and batch size")
	f.IntVar(&iters, "iterations", 30, "timed runs per path and batch size")
	f.DurationVar(&maxTime, "max-time", 30*time.Second, "time cap per path and batch size (at least 5 runs)")
	f.IntVar(&threads, "threads", 1, "ONNX Runtime intra-op threads (default: export.intra_op_threads)")
	f.Float64Var(&maxMAE, "max-mae", onnx.DefaultMaxMAE, "gate: fail when a parity mean abs error exceeds this")
	f.Float64Var(&minSpeedup, "min-speedup", 0, "gate: fail when a speedup native/ORT is below this (0: off)")
	f.BoolVar(&noVal, "no-validation", false, "parity on random inputs only (do not load the dataset)")
	f.StringVar(&jsonOut, "json", "", "write the report as JSON to FILE")
	f.StringVar(&mdOut, "markdown", "", "write the report as Markdown to FILE")
	return cmd
}
