// Package tracking records training runs: parameters, per-step metrics,
// tags, artifacts and registered model versions.
//
// A Tracker has two implementations:
//
//   - Local (the default, when no tracking URI is configured) writes the
//     run to RUN_DIR/tracking/ in the layout below.
//   - MLflow writes the same local layout first (it is the buffer and the
//     replay journal) and then sends every record to an MLflow tracking
//     server through its REST API 2.0 (Client). If the server is unreachable
//     or fails, the run goes on locally: Report says tracking failed and how
//     to send the run later with Replay (`heimdall tracking replay RUN_DIR`).
//
// Layout of RUN_DIR/tracking/ (all JSON; files are replaced atomically,
// .jsonl files are appended to):
//
//	run.json            experiment, run_name, start_time, end_time (Unix ms), status
//	params.json         {"key": "value", ...}        (MLflow params: set once)
//	tags.json           {"key": "value", ...}        (run tags)
//	metrics.jsonl       {"key","value","timestamp","step"} per line, in logging order
//	artifacts.jsonl     {"src","path","size","sha256"} per line: local file src (relative
//	                    to RUN_DIR when inside it) is the artifact at path
//	models.jsonl        one ModelSpec per line: versions to register
//	replay-state.json   what was sent to which server (MLflow only): server URI,
//	                    experiment and run ids, the run's artifact URI, params and tags
//	                    sent, the number of metric lines sent, artifacts sent (path and
//	                    sha256), model versions created, the final status sent, and the
//	                    last error
//
// Sending is idempotent: Replay sends only what replay-state.json does not
// list, and before sending metrics it drops any (key, step, timestamp) the
// server already has, so replaying twice, or after a crash between a send
// and the state update, does not duplicate metrics.
package tracking

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heimdall-sdr/trainer/rundir"
)

// Tracker records one run. Methods take ctx first; an error means the
// local record could not be written (a remote failure is not an error: see
// Report).
type Tracker interface {
	// LogParams records parameters; a key logged again must keep its value.
	LogParams(ctx context.Context, params map[string]string) error
	// SetTags records run tags (later values win).
	SetTags(ctx context.Context, tags map[string]string) error
	// LogMetrics records metric values (Timestamp 0 = now).
	LogMetrics(ctx context.Context, metrics []Metric) error
	// LogArtifact records the local file src as the artifact path (e.g.
	// "checkpoints/ckpt-1.bin").
	LogArtifact(ctx context.Context, src, path string) error
	// RegisterModel records a new version of a registered model whose files
	// were logged as artifacts.
	RegisterModel(ctx context.Context, m ModelSpec) (Registration, error)
	// End marks the run FINISHED, FAILED or KILLED.
	End(ctx context.Context, status string) error
	// Report says where the run went and whether sending it failed.
	Report() Report
}

// RunSpec describes a run to start.
type RunSpec struct {
	// Experiment is the experiment name (created if missing). Default
	// "heimdall-localization".
	Experiment string
	// Name is the run name. Default "rf-localization_{YYYYMMDD_HHMMSS}" (UTC).
	Name string
	// StartTime defaults to now.
	StartTime time.Time
	// Tags are set when the run is created.
	Tags map[string]string
}

// Defaults.
const (
	DefaultExperiment      = "heimdall-localization"
	DefaultRegisteredModel = "heimdall-localization-onnx"
	// Dir is the tracking directory inside a run directory.
	Dir = rundir.TrackingDir
)

func (s RunSpec) withDefaults() RunSpec {
	if s.StartTime.IsZero() {
		s.StartTime = time.Now()
	}
	if s.Experiment == "" {
		s.Experiment = DefaultExperiment
	}
	if s.Name == "" {
		s.Name = "rf-localization_" + s.StartTime.UTC().Format("20060102_150405")
	}
	return s
}

// ModelSpec asks for a new version of a registered model.
type ModelSpec struct {
	// Name of the registered model. Default "heimdall-localization-onnx".
	Name string `json:"name"`
	// ArtifactPath is the logged artifact that is the model (e.g.
	// "model/model.onnx"); the version's source is the run's artifact URI
	// joined with it.
	ArtifactPath string `json:"artifact_path"`
	// Source overrides the source (e.g. the published s3:// URI). Default "".
	Source      string            `json:"source,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	// ModelTags are set on the registered model when it is created.
	ModelTags map[string]string `json:"model_tags,omitempty"`
	// Stage is the stage the new version moves to ("" = none), e.g. "Staging".
	Stage string `json:"stage,omitempty"`
	// Alias is pointed at the new version ("" = none), e.g. "staging".
	Alias string `json:"alias,omitempty"`
	// Revision tells registrations of the same artifact apart (e.g. the
	// model's SHA-256: a re-export logged to the same model/ directory is a
	// new version). Default "".
	Revision string `json:"revision,omitempty"`
}

func (m ModelSpec) key() string {
	k := m.Name + "\x00" + m.ArtifactPath + "\x00" + m.Source
	if m.Revision != "" {
		k += "\x00" + m.Revision
	}
	return k
}

// Registration is the outcome of RegisterModel.
type Registration struct {
	Name    string `json:"name"`
	Version string `json:"version"` // "" while only recorded locally.
	Source  string `json:"source,omitempty"`
	Stage   string `json:"stage,omitempty"`
	Alias   string `json:"alias,omitempty"`
}

// Report says where a run's records went.
type Report struct {
	// Backend is "local" or the MLflow server URI.
	Backend string `json:"backend"`
	// Dir is the local tracking directory (RUN_DIR/tracking).
	Dir string `json:"dir"`
	// RunID and ExperimentID are MLflow's ids ("" for local or before the
	// run was created on the server).
	RunID        string `json:"run_id,omitempty"`
	ExperimentID string `json:"experiment_id,omitempty"`
	ArtifactURI  string `json:"artifact_uri,omitempty"`
	// Failed is set when records could not be sent; Error is the first
	// failure; Replay is the command that sends the buffered run.
	Failed bool   `json:"failed"`
	Error  string `json:"error,omitempty"`
	Replay string `json:"replay,omitempty"`
	// Models are the model versions registered (or recorded).
	Models []Registration `json:"models,omitempty"`
}

// String is a one-line summary for people.
func (r Report) String() string {
	switch {
	case r.Backend == "local":
		return fmt.Sprintf("local, in %s", r.Dir)
	case r.Failed:
		return fmt.Sprintf("FAILED to send to MLflow at %s (%s); the run is buffered in %s; send it later with: %s",
			r.Backend, r.Error, r.Dir, r.Replay)
	default:
		return fmt.Sprintf("MLflow %s run %s (experiment %s)", r.Backend, r.RunID, r.ExperimentID)
	}
}

// MLflow's limits on names and values.
const (
	MaxKeyLength      = 250
	MaxParamValLength = 6000
	MaxTagValLength   = 8000
)

// SanitizeKey makes k a valid MLflow param/metric/tag key: characters other
// than letters, digits, '_', '-', '.', ' ', ':' and '/' become '_', "." and
// ".." segments and leading or doubled slashes are removed, and the key is
// cut to MaxKeyLength bytes.
func SanitizeKey(k string) string {
	var b strings.Builder
	for _, r := range k {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '_', r == '-', r == '.', r == ' ', r == ':', r == '/':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	segs := strings.Split(b.String(), "/")
	out := segs[:0]
	for _, s := range segs {
		if s != "" && s != "." && s != ".." {
			out = append(out, s)
		}
	}
	k = strings.Join(out, "/")
	if k == "" {
		k = "_"
	}
	if len(k) > MaxKeyLength {
		k = k[:MaxKeyLength]
	}
	return k
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// NowMillis is the current time in Unix milliseconds.
func NowMillis() int64 { return time.Now().UnixMilli() }

// IsTerminal reports whether status ends a run.
func IsTerminal(status string) bool {
	return status == StatusFinished || status == StatusFailed || status == StatusKilled
}

// Start starts a run: on the MLflow server at uri, or, with uri "", in the
// local layout only. Either way the run is recorded in runDir/tracking.
func Start(ctx context.Context, uri, runDir string, spec RunSpec, o ClientOptions) (Tracker, error) {
	if uri == "" {
		return OpenLocal(runDir, spec)
	}
	c, err := NewClient(uri, o)
	if err != nil {
		return nil, err
	}
	return StartMLflow(ctx, c, runDir, spec)
}
