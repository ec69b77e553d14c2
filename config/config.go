// Package config is the one typed configuration of the Heimdall trainer.
//
// Values are resolved in this order, later ones winning:
//
//  1. the documented defaults of each section's Go type (Default());
//  2. a YAML file (--config FILE, or the embedded configs/default.yaml);
//  3. environment variables HEIMDALL_<SECTION>_<KEY>, e.g. HEIMDALL_TRAIN_EPOCHS=5;
//  4. --set section.key=value overrides, e.g. --set train.batch_size=16.
//
// Unknown keys, in the file or in --set, are errors naming the key; invalid
// values are errors naming the key. The resolved configuration is written
// into every run directory (Config.YAML), with secrets redacted.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/configs"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/kernels"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/sim"
	"github.com/heimdall-sdr/trainer/tracking"
	"github.com/heimdall-sdr/trainer/trainer"
)

// EnvPrefix prefixes every environment override.
const EnvPrefix = "HEIMDALL"

// Config is the whole resolved configuration.
type Config struct {
	Run      Run                 `mapstructure:"run"`
	Store    Store               `mapstructure:"store"`
	Simulate sim.Options         `mapstructure:"simulate"`
	Features kernels.MelConfig   `mapstructure:"features"`
	Dataset  dataset.Options     `mapstructure:"dataset"`
	Model    trainer.ModelConfig `mapstructure:"model"`
	Train    trainer.TrainConfig `mapstructure:"train"`
	Export   onnx.Config         `mapstructure:"export"`
	Tracking tracking.Options    `mapstructure:"tracking"`
}

// Run says where runs go and what executes them.
type Run struct {
	// Dir is the parent of run directories. Default "runs".
	Dir string `mapstructure:"dir"`
	// Name names the run directory; "" means rf-localization_{UTC timestamp}.
	Name string `mapstructure:"name"`
	// Backend selects the GoMLX backend: "" (auto: CUDA if present, else the
	// fastest installed CPU backend), "xla:cpu", "xla:cuda", "onnx:cpu", "go",
	// or "xla:/abs/path/to/pjrt_plugin.so". GOMLX_BACKEND also works.
	Backend string `mapstructure:"backend"`
	// GPUPreallocate lets XLA's CUDA client reserve gpu_memory_fraction of
	// the GPU memory at start (XLA's own default). Default false: memory is
	// allocated on demand, so other processes can share the GPU.
	GPUPreallocate bool `mapstructure:"gpu_preallocate"`
	// GPUMemoryFraction is the fraction preallocated when gpu_preallocate is
	// true; 0 keeps XLA's 0.75. Default 0.
	GPUMemoryFraction float64 `mapstructure:"gpu_memory_fraction"`
	// GPUTF32 lets float32 matrix multiplications use TensorFloat-32 on
	// Ampere and newer GPUs (faster, ~1e-3 relative error; docs/GPU.md).
	// Default true.
	GPUTF32 bool `mapstructure:"gpu_tf32"`
	// Devices is "" or "1" (train on device 0, default) or "all" (data
	// parallel over every device the backend reports; train.batch_size is
	// split evenly over them and must be divisible by their number).
	Devices string `mapstructure:"devices"`
}

// BackendOptions are what backend.Open takes from this section: the
// configured backend and the CUDA client options (run.gpu_*).
func (r Run) BackendOptions() backend.Options {
	return backend.Options{Spec: r.Backend, GPU: &backend.GPUOptions{
		Preallocate: r.GPUPreallocate, MemoryFraction: r.GPUMemoryFraction, TF32: r.GPUTF32}}
}

// Store says where recordings live (and, for publish, where models go).
type Store struct {
	// Kind is "local" (a directory, default) or "s3" (S3 or MinIO).
	Kind string `mapstructure:"kind"`
	// Root is the local store's directory. Default "data".
	Root string `mapstructure:"root"`

	// The keys below apply to kind s3.

	// Endpoint is the server: "host:port" (TLS per use_tls), or a URL
	// "http://host:port" / "https://host" whose scheme decides TLS.
	// User-info in the URL (user:password@) is redacted in saved configs.
	Endpoint string `mapstructure:"endpoint" redact:"userinfo"`
	// Bucket holds the recordings. Default "heimdall-raw-iq".
	Bucket string `mapstructure:"bucket"`
	// ModelsBucket receives published models. Default "heimdall-models".
	ModelsBucket string `mapstructure:"models_bucket"`
	// Region of the buckets; "" lets the client discover it.
	Region string `mapstructure:"region"`
	// UseTLS selects https for an endpoint without a scheme. Default true.
	UseTLS bool `mapstructure:"use_tls"`
	// AccessKey and SecretKey sign requests; empty means AWS_ACCESS_KEY_ID
	// and AWS_SECRET_ACCESS_KEY. Redacted in saved configs.
	AccessKey string `mapstructure:"access_key" redact:"true"`
	SecretKey string `mapstructure:"secret_key" redact:"true"`
	// CreateBucket creates a missing bucket on the first write. Default true.
	CreateBucket bool `mapstructure:"create_bucket"`
	// Publish uploads the exported model to ModelsBucket at the end of
	// `train` when Kind is "s3" (models/localization/v{UTC}.onnx + .json).
	// Default true.
	Publish bool `mapstructure:"publish"`
}

// Default returns every section's documented defaults.
func Default() Config {
	return Config{
		Run:      Run{Dir: "runs", GPUTF32: true},
		Store:    Store{Kind: "local", Root: "data", Bucket: "heimdall-raw-iq", ModelsBucket: "heimdall-models", UseTLS: true, CreateBucket: true, Publish: true},
		Simulate: sim.DefaultOptions(),
		Features: kernels.DefaultMelConfig(),
		Dataset:  dataset.DefaultOptions(),
		Model:    trainer.DefaultModelConfig(),
		Train:    trainer.DefaultTrainConfig(),
		Export:   onnx.DefaultConfig(),
		Tracking: tracking.DefaultOptions(),
	}
}

// Validate checks every section; errors name the key.
func (c Config) Validate() error {
	if f := c.Run.GPUMemoryFraction; f < 0 || f > 1 {
		return fmt.Errorf("run.gpu_memory_fraction: must be in [0, 1] (0 = XLA's 0.75), got %g", f)
	}
	if c.Run.Dir == "" {
		return errors.New("run.dir: must not be empty")
	}
	if err := trainer.ValidateDevices(c.Run.Devices); err != nil {
		return err
	}
	if strings.ContainsAny(c.Run.Name, `/\`) {
		return fmt.Errorf("run.name: must not contain a path separator, got %q", c.Run.Name)
	}
	switch c.Store.Kind {
	case "local":
		if c.Store.Root == "" {
			return errors.New("store.root: must not be empty for store.kind local")
		}
	case "s3":
		if c.Store.Endpoint == "" {
			return errors.New("store.endpoint: must be set for store.kind s3 (host:port or http(s)://host:port; env HEIMDALL_STORE_ENDPOINT)")
		}
		if c.Store.Bucket == "" {
			return errors.New("store.bucket: must not be empty for store.kind s3")
		}
		if c.Store.ModelsBucket == "" {
			return errors.New("store.models_bucket: must not be empty for store.kind s3")
		}
	default:
		return fmt.Errorf("store.kind: must be local or s3, got %q", c.Store.Kind)
	}
	for _, v := range []interface{ Validate() error }{c.Simulate, c.Features, c.Dataset, c.Model, c.Train, c.Export, c.Tracking} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	if err := c.Features.ValidateFor(c.Simulate.SampleRateHz); err != nil {
		return fmt.Errorf("%w (with simulate.sample_rate_hz %g)", err, c.Simulate.SampleRateHz)
	}
	return nil
}

// Options say where Load finds its inputs; the zero value reads the embedded
// default file and the process environment.
type Options struct {
	File string              // YAML file; "" = embedded configs/default.yaml
	Set  []string            // "key=value" overrides
	Env  func(string) string // environment lookup; nil = os.Getenv
}

// Load resolves the configuration.
func Load(o Options) (Config, error) {
	cfg := Default()
	keys := Keys()
	v := viper.New()
	for k, val := range flatten(cfg) {
		v.SetDefault(k, val)
	}

	var src []byte
	name := o.File
	if name == "" {
		name = "embedded configs/default.yaml"
		b, err := configs.FS.ReadFile("default.yaml")
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		src = b
	} else {
		b, err := os.ReadFile(o.File)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		src = b
	}
	if err := checkFileKeys(name, src, keys); err != nil {
		return Config{}, err
	}
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(src)); err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", name, err)
	}

	env := o.Env
	if env == nil {
		env = os.Getenv
	}
	for _, k := range sortedKeys(keys) {
		for _, name := range envNames(k) {
			if val := env(name); val != "" {
				v.Set(k, val)
				break
			}
		}
	}

	for _, s := range o.Set {
		k, raw, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return Config{}, fmt.Errorf("config: --set %q: want key=value", s)
		}
		if _, known := keys[k]; !known {
			return Config{}, unknownKey("--set", k, keys)
		}
		var val any
		if err := yaml.Unmarshal([]byte(raw), &val); err != nil || val == nil {
			val = raw
		}
		v.Set(k, val)
	}

	cfg = Config{}
	if err := v.UnmarshalExact(&cfg); err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", name, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// EnvName is the environment variable that overrides key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envNames lists the environment variables that override key, strongest
// first: HEIMDALL_<SECTION>_<KEY>, and for the store section also the
// HEIMDALL_S3_<KEY> spelling (HEIMDALL_S3_ENDPOINT, HEIMDALL_S3_ACCESS_KEY, ...).
func envNames(key string) []string {
	names := []string{EnvName(key)}
	if rest, ok := strings.CutPrefix(key, "store."); ok {
		names = append(names, EnvPrefix+"_S3_"+strings.ToUpper(rest))
	}
	return names
}

// YAML renders the resolved configuration, secrets redacted.
func (c Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(nest(reflect.ValueOf(c))); err != nil {
		return nil, fmt.Errorf("config: render: %w", err)
	}
	return buf.Bytes(), nil
}

// Params returns every key ("section.key") with its value as text, secrets
// redacted: the run parameters experiment tracking logs. Lists are JSON
// ("[1,2]"), empty values "".
func (c Config) Params() map[string]string {
	out := map[string]string{}
	walk(reflect.ValueOf(c), "", func(k string, fv reflect.Value, f reflect.StructField) {
		out[k] = paramText(fv, f)
	})
	return out
}

func paramText(fv reflect.Value, f reflect.StructField) string {
	if f.Tag.Get("redact") == "true" && !fv.IsZero() {
		return "REDACTED"
	}
	switch fv.Kind() {
	case reflect.String:
		if f.Tag.Get("redact") == "userinfo" {
			return RedactURL(fv.String())
		}
		return fv.String()
	case reflect.Pointer, reflect.Interface:
		if fv.IsNil() {
			return ""
		}
		return fmt.Sprint(fv.Elem().Interface())
	case reflect.Slice, reflect.Array, reflect.Map:
		if fv.Kind() != reflect.Array && fv.IsNil() {
			fv = reflect.MakeSlice(reflect.SliceOf(fv.Type().Elem()), 0, 0)
		}
		b, err := json.Marshal(fv.Interface())
		if err != nil {
			return fmt.Sprint(fv.Interface())
		}
		return string(b)
	}
	return fmt.Sprint(fv.Interface())
}

// Keys returns every known key ("section.key") with its Go type.
func Keys() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	walk(reflect.ValueOf(Default()), "", func(k string, v reflect.Value, _ reflect.StructField) {
		out[k] = v.Type()
	})
	return out
}

func sortedKeys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// walk visits every leaf field of a struct tree, keyed by mapstructure tags.
func walk(v reflect.Value, prefix string, fn func(key string, v reflect.Value, f reflect.StructField)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			walk(fv, key, fn)
			continue
		}
		fn(key, fv, f)
	}
}

func flatten(c Config) map[string]any {
	out := map[string]any{}
	walk(reflect.ValueOf(c), "", func(k string, v reflect.Value, _ reflect.StructField) {
		out[k] = v.Interface()
	})
	return out
}

// nest rebuilds a section map for YAML output, redacting `redact:"true"`
// fields and the URL user-info of `redact:"userinfo"` fields (RedactURL).
func nest(v reflect.Value) map[string]any {
	root := map[string]any{}
	walk(v, "", func(k string, fv reflect.Value, f reflect.StructField) {
		parts := strings.Split(k, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		val := fv.Interface()
		switch f.Tag.Get("redact") {
		case "true":
			if !fv.IsZero() {
				val = Redacted
			}
		case "userinfo":
			if s, ok := val.(string); ok {
				val = RedactURL(s)
			}
		}
		m[parts[len(parts)-1]] = val
	})
	return root
}

// checkFileKeys rejects keys in the YAML file that the Config does not have,
// before viper sees them, so the error can name the key and its line.
func checkFileKeys(name string, src []byte, keys map[string]reflect.Type) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	var check func(n *yaml.Node, prefix string) error
	check = func(n *yaml.Node, prefix string) error {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("config: %s line %d: %s must be a mapping", name, n.Line, orRoot(prefix))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			key := kn.Value
			if prefix != "" {
				key = prefix + "." + kn.Value
			}
			if _, leaf := keys[key]; leaf {
				continue
			}
			if isSection(key, keys) {
				if vn.Kind == yaml.ScalarNode && vn.Tag == "!!null" {
					continue
				}
				if err := check(vn, key); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("%w (line %d)", unknownKey(name, key, keys), kn.Line)
		}
		return nil
	}
	return check(doc.Content[0], "")
}

func orRoot(p string) string {
	if p == "" {
		return "the document"
	}
	return p
}

func isSection(key string, keys map[string]reflect.Type) bool {
	for k := range keys {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

func unknownKey(where, key string, keys map[string]reflect.Type) error {
	msg := fmt.Sprintf("config: %s: unknown key %q", where, key)
	if s := suggest(key, keys); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return errors.New(msg)
}

// suggest returns the known key closest to key by edit distance, if close.
func suggest(key string, keys map[string]reflect.Type) string {
	best, bestD := "", 4
	for _, k := range sortedKeys(keys) {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
