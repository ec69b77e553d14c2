package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/devicecheck"
)

// newDevicesCmd prints the backend that would be used and its devices.
func newDevicesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "devices",
		Short: "Show the GoMLX backend the config selects and its devices (GPU name and memory)",
		Long: `Resolve the backend as 'heimdall train' does (run.backend, GOMLX_BACKEND, else
automatic), create it, and print its devices; for CUDA also the GPU name and
memory from nvidia-smi. With run.backend xla:cuda on a machine without a GPU
or CUDA PJRT plugin it fails with "no GPU/plugin found: looked in ...".`,
		Example: `  heimdall devices
  heimdall devices --config configs/gpu.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			b, err := backend.Open(cfg.Run.BackendOptions())
			if err != nil {
				return err
			}
			defer b.Close()
			fmt.Printf("%s%s", b.Header(), b.Devices())
			return nil
		},
	}
}

// newDeviceCheckCmd is the GPU machine's check (scripts/gpu-check.sh run).
func newDeviceCheckCmd(_ *globals) *cobra.Command {
	o := devicecheck.Options{}.Defaults()
	tf32Parity := !o.NoTF32Parity
	var dryRun bool
	var out string
	var timeouts map[string]string
	var preallocate bool
	var memFraction float64
	var noTF32 bool
	cmd := &cobra.Command{
		Use:   "device-check",
		Short: "Train, time and cross-check LocalizationNet on a GPU; write a JSON report",
		Long: `The device check that scripts/gpu-check.sh runs on a GPU machine (docs/GPU.md):

  devices          create the backend (default xla:cuda), list its devices and GPUs
  train            train --preset for --steps steps at --batch on random data
                   (median step time, samples/s)
  latency          inference latency of the trained checkpoint at each
                   --latency-batch (p50/p95 over --latency-runs calls, after one warm-up)
  parity           the same checkpoint and --parity-samples inputs on --cpu-backend:
                   max/mean absolute difference of positions and sigmas
  parity_tf32_off  the same on the GPU with TF32 off (CUDA only)

Each stage has a timeout (--stage-timeout name=duration); the JSON report
(--out) is rewritten after every stage, so a killed run leaves a partial
report. --cpu-dry-run runs the same code on CPU backends with the cpu preset on a
small input (xla:cpu, or go without its plugin) for testing without a GPU.`,
		Example: `  heimdall device-check --out gpu-check.json
  heimdall device-check --cpu-dry-run --out /tmp/gpu-check.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dryRun {
				d := devicecheck.CPUDryRun()
				for _, f := range []struct {
					name string
					set  func()
				}{
					{"backend", func() { d.Backend = o.Backend }}, {"cpu-backend", func() { d.CPUBackend = o.CPUBackend }},
					{"preset", func() { d.Preset = o.Preset }}, {"steps", func() { d.Steps = o.Steps }},
					{"batch", func() { d.Batch = o.Batch }}, {"latency-batch", func() { d.LatencyBatches = o.LatencyBatches }},
					{"latency-runs", func() { d.LatencyRuns = o.LatencyRuns }}, {"parity-samples", func() { d.ParitySamples = o.ParitySamples }},
					{"mels", func() { d.InputShape[1] = o.InputShape[1] }}, {"frames", func() { d.InputShape[2] = o.InputShape[2] }},
				} {
					if cmd.Flags().Changed(f.name) {
						f.set()
					}
				}
				d.WorkDir = o.WorkDir
				o = d
			}
			o.GPU = &backend.GPUOptions{Preallocate: preallocate, MemoryFraction: memFraction, TF32: !noTF32}
			o.NoTF32Parity = !tf32Parity
			o.Out, o.Log = out, os.Stderr
			o.StageTimeouts = map[string]time.Duration{}
			for name, v := range timeouts {
				d, err := time.ParseDuration(v)
				if err != nil {
					return fmt.Errorf("--stage-timeout %s=%s: %w", name, v, err)
				}
				o.StageTimeouts[name] = d
			}
			rep, err := devicecheck.Run(cmd.Context(), o)
			if b, jerr := json.MarshalIndent(rep, "", "  "); jerr == nil && out == "" {
				fmt.Println(string(b))
			}
			if errors.Is(err, devicecheck.ErrStageTimeout) {
				// A stage's goroutine may still hold the device: leave now, the report is written.
				fmt.Fprintln(os.Stderr, "heimdall: device-check:", err)
				os.Exit(2)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Backend, "backend", o.Backend, "backend under test")
	f.StringVar(&o.CPUBackend, "cpu-backend", o.CPUBackend, `reference backend for the parity check ("none" skips it)`)
	f.StringVar(&o.Preset, "preset", o.Preset, "model preset")
	f.IntVar(&o.Steps, "steps", o.Steps, "training steps")
	f.IntVar(&o.Batch, "batch", o.Batch, "training batch size")
	f.IntSliceVar(&o.LatencyBatches, "latency-batch", o.LatencyBatches, "inference batch sizes to time")
	f.IntVar(&o.LatencyRuns, "latency-runs", o.LatencyRuns, "timed inference calls per batch size")
	f.IntVar(&o.ParitySamples, "parity-samples", o.ParitySamples, "samples compared between the backend and --cpu-backend")
	f.BoolVar(&tf32Parity, "tf32-parity", tf32Parity, "also compare with TF32 off on the GPU")
	f.IntVar(&o.InputShape[1], "mels", o.InputShape[1], "mel bands of the random input")
	f.IntVar(&o.InputShape[2], "frames", o.InputShape[2], "frames of the random input")
	f.StringVar(&o.WorkDir, "work", "", "directory for the training run (default: a temp dir, removed)")
	f.StringVar(&out, "out", "", "JSON report (default: print to stdout at the end)")
	f.StringToStringVar(&timeouts, "stage-timeout", nil, "per-stage timeouts, e.g. train=240s,parity=120s")
	f.BoolVar(&dryRun, "cpu-dry-run", false, "run on CPU backends with the cpu preset on a small input (no GPU needed)")
	f.BoolVar(&preallocate, "gpu-preallocate", false, "let XLA preallocate GPU memory")
	f.Float64Var(&memFraction, "gpu-memory-fraction", 0, "fraction preallocated with --gpu-preallocate (0: XLA's 0.75)")
	f.BoolVar(&noTF32, "no-tf32", false, "disable TF32 for float32 matrix multiplications")
	return cmd
}
