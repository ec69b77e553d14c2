package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the CLI in-process and returns its error.
func run(t *testing.T, args ...string) error {
	t.Helper()
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(os.Stderr)
	return root.ExecuteContext(context.Background())
}

// TestBadInputIsOneClearError: bad input is an error (non-zero exit from
// main) whose single line names the thing, never a panic.
func TestBadInputIsOneClearError(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(corrupt, []byte("not a protobuf \x00\xff\x13"), 0o644); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badCfg, []byte("train:\n  epochs: 2\n  batchsize: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown config key in --set", []string{"config", "--set", "train.epoch=3"}, `unknown key "train.epoch"`},
		{"unknown config key in file", []string{"config", "--config", badCfg}, `"train.batchsize"`},
		{"invalid value", []string{"config", "--set", "train.batch_size=-4"}, "train.batch_size"},
		{"missing config file", []string{"config", "--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"missing model", []string{"predict", "--model", filepath.Join(dir, "missing.onnx"), "--session", dir}, "missing.onnx"},
		{"corrupt model", []string{"predict", "--model", corrupt, "--session", dir}, "model.onnx"},
		{"evaluate without a model", []string{"evaluate"}, "--model"},
		{"evaluate a missing model", []string{"evaluate", "--model", filepath.Join(dir, "gone.onnx")}, "gone.onnx"},
		{"evaluate a directory that is no run", []string{"evaluate", "--model", dir}, "no config.yaml"},
		{"evaluate a corrupt model", []string{"evaluate", "--model", corrupt}, "model.onnx"},
		{"resume of a missing run", []string{"train", "--resume", filepath.Join(dir, "norun")}, "norun"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t, tc.args...)
			if err == nil {
				t.Fatalf("heimdall %s: want an error", strings.Join(tc.args, " "))
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name %q", msg, tc.want)
			}
		})
	}
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	root := newRoot()
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if strings.TrimSpace(c.Short) == "" {
			t.Errorf("command %q has no short help", c.Name())
		}
	}
}
