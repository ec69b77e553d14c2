package experiment

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/bench"
	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/storage/local"
	"github.com/heimdall-sdr/trainer/trainer"
)

// BenchOptions say what Bench measures and where its report goes.
type BenchOptions struct {
	// ONNX is the ONNX model; Checkpoint the run or checkpoints directory
	// of the native model. Both required.
	ONNX, Checkpoint string
	// Session configures ONNX Runtime.
	Session onnx.SessionOptions
	// Bench are the measurement settings (batch sizes, runs, parity limit).
	Bench bench.Options
	// Validation adds the configured dataset's validation split to the
	// parity inputs (random inputs only when it cannot be loaded).
	Validation bool
	// Command is recorded in the report (how it was made).
	Command string
	// JSON and Markdown are files the report is written to ("": none).
	JSON, Markdown string
	// Log receives the backend line and warnings; nil: discarded.
	Log io.Writer
}

// Bench measures the checkpoint's native GoMLX model against the ONNX model
// with ONNX Runtime on the backend cfg names (bench.Run) and writes the
// report files asked for.
func Bench(ctx context.Context, cfg config.Config, o BenchOptions) (*bench.Report, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	sess, err := onnx.NewSession(o.ONNX, o.Session)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	opened, err := backend.Open(cfg.Run.BackendOptions()) // as Train: run.backend and run.gpu_*.
	if err != nil {
		return nil, err
	}
	defer opened.Close()
	fmt.Fprint(logw, opened.Header())
	m, err := trainer.LoadModel(opened.Backend, o.Checkpoint)
	if err != nil {
		return nil, err
	}
	if m.Config.InputShape != sess.InputShape {
		return nil, fmt.Errorf("bench: checkpoint input %v differs from the ONNX model's %v", m.Config.InputShape, sess.InputShape)
	}
	bo := o.Bench
	if o.Validation {
		if val, err := ValidationInputs(ctx, cfg, bo.Progress); err != nil {
			fmt.Fprintf(logw, "bench: parity on random inputs only: %v\n", err)
		} else {
			bo.Val = val
		}
	}
	rep, err := bench.Run(m, opened.Spec, sess, bo)
	if err != nil {
		return nil, err
	}
	rep.Model, rep.Checkpoint, rep.Command = o.ONNX, m.Checkpoint, o.Command
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{o.JSON, rep.WriteJSON}, {o.Markdown, rep.WriteMarkdown}} {
		if out.path == "" {
			continue
		}
		var b bytes.Buffer
		if err := out.write(&b); err != nil {
			return nil, err
		}
		if err := local.WriteFile(out.path, b.Bytes()); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		fmt.Fprintf(logw, "wrote %s\n", out.path)
	}
	return rep, nil
}
