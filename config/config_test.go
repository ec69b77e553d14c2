package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/configs"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) string { return "" }

func TestShippedConfigsLoad(t *testing.T) {
	entries, err := configs.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		n++
		b, _ := configs.FS.ReadFile(e.Name())
		if _, err := Load(Options{File: writeFile(t, string(b)), Env: noEnv}); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
	if n < 3 {
		t.Fatalf("want default, smoke and gpu configs, found %d", n)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "train:\n  epochs: 7\n  batch_size: 16\n")
	env := map[string]string{"HEIMDALL_TRAIN_BATCH_SIZE": "24", "HEIMDALL_MODEL_PRESET": "tiny"}
	cfg, err := Load(Options{
		File: file,
		Env:  func(k string) string { return env[k] },
		Set:  []string{"model.preset=small", "model.widths=[8, 16]", "model.depths=[1,1]"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.Epochs != 7 {
		t.Errorf("file value lost: epochs %d", cfg.Train.Epochs)
	}
	if cfg.Train.BatchSize != 24 {
		t.Errorf("env must override file: batch_size %d", cfg.Train.BatchSize)
	}
	if cfg.Model.Preset != "small" {
		t.Errorf("--set must override env: preset %q", cfg.Model.Preset)
	}
	if len(cfg.Model.Widths) != 2 || cfg.Model.Widths[1] != 16 {
		t.Errorf("--set list value: widths %v", cfg.Model.Widths)
	}
	if cfg.Train.LearningRate != Default().Train.LearningRate {
		t.Errorf("default lost: learning_rate %g", cfg.Train.LearningRate)
	}
}

func TestEmbeddedDefault(t *testing.T) {
	cfg, err := Load(Options{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Kind != "local" || cfg.Model.Preset != "cpu" {
		t.Fatalf("embedded default: store %q preset %q", cfg.Store.Kind, cfg.Model.Preset)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		set  []string
		want string
	}{
		{"unknown file key", "train:\n  epochz: 3\n", nil, `unknown key "train.epochz" (did you mean "train.epochs"?)`},
		{"unknown section", "trainer:\n  epochs: 3\n", nil, `unknown key "trainer"`},
		{"unknown --set key", "", []string{"train.bach_size=3"}, `unknown key "train.bach_size"`},
		{"malformed --set", "", []string{"train.epochs"}, "want key=value"},
		{"negative batch", "", []string{"train.batch_size=-1"}, "train.batch_size"},
		{"n_fft not power of two", "", []string{"features.n_fft=1000"}, "features.n_fft"},
		{"hop larger than n_fft", "", []string{"features.hop=4096"}, "features.hop"},
		{"bad preset", "", []string{"model.preset=huge"}, "model.preset"},
		{"bad store kind", "", []string{"store.kind=ftp"}, "store.kind"},
		{"wrong type", "train:\n  epochs: many\n", nil, "epochs"},
		{"f_max above Nyquist", "", []string{"features.f_max=9000"}, "features.f_max"},
		{"bad split", "", []string{"dataset.validation_split=1.5"}, "dataset.validation_split"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Env: noEnv, Set: tc.set}
			if tc.file != "" {
				o.File = writeFile(t, tc.file)
			}
			_, err := Load(o)
			if err == nil {
				t.Fatalf("want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	cfg, err := Load(Options{Env: noEnv, Set: []string{"train.epochs=3", "run.name=x"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(Options{File: writeFile(t, string(b)), Env: noEnv})
	if err != nil {
		t.Fatalf("resolved YAML does not load back: %v\n%s", err, b)
	}
	if again.Train.Epochs != 3 || again.Run.Name != "x" {
		t.Fatalf("round trip lost values: %+v", again.Train)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("train.batch_size"); got != "HEIMDALL_TRAIN_BATCH_SIZE" {
		t.Fatal(got)
	}
}

func TestS3EnvAliases(t *testing.T) {
	env := map[string]string{
		"HEIMDALL_S3_ENDPOINT":      "127.0.0.1:9000",
		"HEIMDALL_S3_SECRET_KEY":    "s3cret-value",
		"HEIMDALL_STORE_BUCKET":     "raw",
		"HEIMDALL_S3_BUCKET":        "ignored-when-store-spelling-set",
		"HEIMDALL_S3_ACCESS_KEY":    "AKIA-TEST",
		"HEIMDALL_STORE_USE_TLS":    "false",
		"HEIMDALL_S3_MODELS_BUCKET": "models",
	}
	cfg, err := Load(Options{Env: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Store
	if s.Endpoint != "127.0.0.1:9000" || s.SecretKey != "s3cret-value" || s.AccessKey != "AKIA-TEST" || s.Bucket != "raw" || s.UseTLS || s.ModelsBucket != "models" {
		t.Fatalf("store from env: %+v", s)
	}
	b, _ := cfg.YAML()
	if strings.Contains(string(b), "s3cret-value") || strings.Contains(string(b), "AKIA-TEST") {
		t.Fatalf("credentials not redacted in the saved config:\n%s", b)
	}
}

func TestRunDevices(t *testing.T) {
	for _, v := range []string{"", "1", "all"} {
		c, err := Load(Options{Env: noEnv, Set: []string{"run.devices=" + v}})
		if err != nil {
			t.Fatalf("run.devices=%q: %v", v, err)
		}
		if c.Run.Devices != v {
			t.Errorf("run.devices=%q loaded as %q", v, c.Run.Devices)
		}
	}
	if c, err := Load(Options{Env: noEnv}); err != nil || c.Run.Devices != "" {
		t.Errorf("default run.devices = %q, %v; want \"\" (one device)", c.Run.Devices, err)
	}
	for _, v := range []string{"2", "gpu", "ALL"} {
		_, err := Load(Options{Env: noEnv, Set: []string{"run.devices=" + v}})
		if err == nil || !strings.Contains(err.Error(), "run.devices") {
			t.Errorf("run.devices=%q: err = %v, want one naming run.devices", v, err)
		}
	}
}

func TestParams(t *testing.T) {
	c := Default()
	c.Store.SecretKey = "s3cret"
	p := c.Params()
	if len(p) != len(Keys()) {
		t.Errorf("Params has %d keys, Keys %d", len(p), len(Keys()))
	}
	if p["store.secret_key"] != "REDACTED" || p["store.access_key"] != "" {
		t.Errorf("secrets: secret_key %q access_key %q, want REDACTED and \"\"", p["store.secret_key"], p["store.access_key"])
	}
	if want := strconv.Itoa(c.Train.BatchSize); p["train.batch_size"] != want {
		t.Errorf("train.batch_size = %q, want %q", p["train.batch_size"], want)
	}
}

// TestBenchPeersQuickModel: the quick run `make bench-peers` trains has the
// architecture `make train` trains (bench/peers/quick.yaml copies
// configs/default.yaml's model: section), so the framework comparison is
// about the network users get.
func TestBenchPeersQuickModel(t *testing.T) {
	quick, err := Load(Options{File: filepath.Join("..", "bench", "peers", "quick.yaml"), Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	def, err := Load(Options{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	q, d := flatten(quick), flatten(def)
	for k, v := range d {
		if strings.HasPrefix(k, "model.") && fmt.Sprint(v) != fmt.Sprint(q[k]) {
			t.Errorf("%s: bench/peers/quick.yaml %v, configs/default.yaml %v", k, q[k], v)
		}
	}
}
