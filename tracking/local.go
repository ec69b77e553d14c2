package tracking

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/heimdall-sdr/trainer/storage/local"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Journal file names in the tracking directory.
const (
	RunFile         = "run.json"
	ParamsFile      = "params.json"
	TagsFile        = "tags.json"
	MetricsFile     = "metrics.jsonl"
	ArtifactsFile   = "artifacts.jsonl"
	ModelsFile      = "models.jsonl"
	ReplayStateFile = "replay-state.json"
)

// Local is the Tracker that writes RUN_DIR/tracking/ only; MLflow uses it
// as its buffer and journal.
type Local struct {
	runDir string
	dir    string

	mu     sync.Mutex
	run    runRecord
	params map[string]string
	tags   map[string]string
	models []Registration
}

var _ Tracker = (*Local)(nil)

// runRecord is run.json.
type runRecord struct {
	Experiment string `json:"experiment"`
	RunName    string `json:"run_name"`
	StartTime  int64  `json:"start_time"`         // Unix ms.
	EndTime    int64  `json:"end_time,omitempty"` // Unix ms, once ended.
	Status     string `json:"status"`
}

// ArtifactRecord is a line of artifacts.jsonl.
type ArtifactRecord struct {
	Src    string `json:"src"`  // relative to RUN_DIR when inside it, else absolute.
	Path   string `json:"path"` // artifact path in the run.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// OpenLocal starts a local run in runDir/tracking, or reopens the run
// recorded there (a resumed training run): it is RUNNING again and spec's
// tags are added.
func OpenLocal(runDir string, spec RunSpec) (*Local, error) {
	spec = spec.withDefaults()
	l := &Local{runDir: runDir, dir: filepath.Join(runDir, Dir), params: map[string]string{}, tags: map[string]string{}}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("tracking: create %s: %w", l.dir, err)
	}
	j, err := readJournal(runDir)
	if err != nil {
		return nil, err
	}
	if j.run.RunName != "" {
		l.run, l.params, l.tags = j.run, j.params, j.tags
		l.run.Status, l.run.EndTime = StatusRunning, 0
	} else {
		l.run = runRecord{Experiment: spec.Experiment, RunName: spec.Name, StartTime: spec.StartTime.UnixMilli(), Status: StatusRunning}
	}
	for k, v := range spec.Tags {
		l.tags[SanitizeKey(k)] = truncate(v, MaxTagValLength)
	}
	if err := errors.Join(l.writeRun(), writeJSONAtomic(filepath.Join(l.dir, TagsFile), l.tags)); err != nil {
		return nil, err
	}
	return l, nil
}

// RunDir is the run directory; Dir the tracking directory in it.
func (l *Local) RunDir() string { return l.runDir }

// Dir is RUN_DIR/tracking.
func (l *Local) Dir() string { return l.dir }

func (l *Local) writeRun() error { return writeJSONAtomic(filepath.Join(l.dir, RunFile), l.run) }

// LogParams implements Tracker. Keys are sanitized and values cut to
// MaxParamValLength. A key already logged with another value keeps its
// first value (MLflow params are immutable); the new value is recorded as
// the tag "param_changed.<key>".
func (l *Local) LogParams(_ context.Context, params map[string]string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	changedTags := false
	for k, v := range params {
		k, v = SanitizeKey(k), truncate(v, MaxParamValLength)
		if old, ok := l.params[k]; ok && old != v {
			l.tags[SanitizeKey("param_changed."+k)] = truncate(v, MaxTagValLength)
			changedTags = true
			continue
		}
		l.params[k] = v
	}
	err := writeJSONAtomic(filepath.Join(l.dir, ParamsFile), l.params)
	if changedTags {
		err = errors.Join(err, writeJSONAtomic(filepath.Join(l.dir, TagsFile), l.tags))
	}
	return err
}

// SetTags implements Tracker.
func (l *Local) SetTags(_ context.Context, tags map[string]string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range tags {
		l.tags[SanitizeKey(k)] = truncate(v, MaxTagValLength)
	}
	return writeJSONAtomic(filepath.Join(l.dir, TagsFile), l.tags)
}

// LogMetrics implements Tracker: one line per metric in metrics.jsonl.
func (l *Local) LogMetrics(_ context.Context, metrics []Metric) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := NowMillis()
	var buf bytes.Buffer
	for _, m := range metrics {
		m.Key = SanitizeKey(m.Key)
		if m.Timestamp == 0 {
			m.Timestamp = Int64(now)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("tracking: encode metric %s: %w", m.Key, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return appendFile(filepath.Join(l.dir, MetricsFile), buf.Bytes())
}

// LogArtifact implements Tracker: it records src (not a copy) with its
// size and SHA-256 in artifacts.jsonl.
func (l *Local) LogArtifact(_ context.Context, src, path string) error {
	path = strings.Trim(filepath.ToSlash(path), "/")
	if path == "" || strings.Contains("/"+path+"/", "/../") || strings.Contains("/"+path+"/", "/./") {
		return fmt.Errorf("tracking: artifact path %q: want a relative path without . or ..", path)
	}
	sum, size, err := fileSHA256(src)
	if err != nil {
		return fmt.Errorf("tracking: artifact %s: %w", path, err)
	}
	rec := ArtifactRecord{Src: src, Path: path, Size: size, SHA256: sum}
	if abs, err := filepath.Abs(src); err == nil {
		rec.Src = abs
		if rd, err := filepath.Abs(l.runDir); err == nil {
			if rel, err := filepath.Rel(rd, abs); err == nil && !strings.HasPrefix(rel, "..") {
				rec.Src = filepath.ToSlash(rel)
			}
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("tracking: encode artifact %s: %w", path, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return appendFile(filepath.Join(l.dir, ArtifactsFile), append(b, '\n'))
}

// RegisterModel implements Tracker: the request is recorded in
// models.jsonl (sent by MLflow or Replay); Version stays "".
func (l *Local) RegisterModel(_ context.Context, m ModelSpec) (Registration, error) {
	if m.Name == "" {
		m.Name = DefaultRegisteredModel
	}
	if m.ArtifactPath == "" && m.Source == "" {
		return Registration{}, errors.New("tracking: register model: ArtifactPath or Source is required")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return Registration{}, fmt.Errorf("tracking: encode model %s: %w", m.Name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := appendFile(filepath.Join(l.dir, ModelsFile), append(b, '\n')); err != nil {
		return Registration{}, err
	}
	r := Registration{Name: m.Name, Source: m.Source, Stage: m.Stage, Alias: m.Alias}
	l.models = append(l.models, r)
	return r, nil
}

// End implements Tracker.
func (l *Local) End(_ context.Context, status string) error {
	if !IsTerminal(status) {
		return fmt.Errorf("tracking: end run: status %q is not FINISHED, FAILED or KILLED", status)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.run.Status, l.run.EndTime = status, NowMillis()
	return l.writeRun()
}

// Report implements Tracker.
func (l *Local) Report() Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Report{Backend: "local", Dir: l.dir, Models: append([]Registration(nil), l.models...)}
}

// journal is the content of a tracking directory.
type journal struct {
	runDir    string
	run       runRecord
	params    map[string]string
	tags      map[string]string
	metrics   []Metric
	artifacts []ArtifactRecord // the last record per path, in first-logged order.
	models    []ModelSpec
}

// readJournal reads runDir/tracking; missing files are empty.
func readJournal(runDir string) (*journal, error) {
	dir := filepath.Join(runDir, Dir)
	j := &journal{runDir: runDir, params: map[string]string{}, tags: map[string]string{}}
	for name, v := range map[string]any{RunFile: &j.run, ParamsFile: &j.params, TagsFile: &j.tags} {
		if err := readJSON(filepath.Join(dir, name), v); err != nil {
			return nil, err
		}
	}
	if err := readLines(filepath.Join(dir, MetricsFile), func(b []byte) error {
		var m Metric
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		j.metrics = append(j.metrics, m)
		return nil
	}); err != nil {
		return nil, err
	}
	index := map[string]int{}
	if err := readLines(filepath.Join(dir, ArtifactsFile), func(b []byte) error {
		var a ArtifactRecord
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		if i, ok := index[a.Path]; ok {
			j.artifacts[i] = a
			return nil
		}
		index[a.Path] = len(j.artifacts)
		j.artifacts = append(j.artifacts, a)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := readLines(filepath.Join(dir, ModelsFile), func(b []byte) error {
		var m ModelSpec
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		j.models = append(j.models, m)
		return nil
	}); err != nil {
		return nil, err
	}
	return j, nil
}

// srcPath resolves an artifact record's file.
func (j *journal) srcPath(a ArtifactRecord) string {
	if filepath.IsAbs(a.Src) {
		return a.Src
	}
	return filepath.Join(j.runDir, filepath.FromSlash(a.Src))
}

func sortedPairs(m map[string]string) []Param {
	out := make([]Param, 0, len(m))
	for k, v := range m {
		out = append(out, Param{Key: k, Value: v})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Key < out[b].Key })
	return out
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tracking: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("tracking: parse %s: %w", path, err)
	}
	return nil
}

// readLines calls fn for each non-empty line; a torn last line (a crash
// while appending) is ignored.
func readLines(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tracking: read %s: %w", path, err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // a last line without '\n' was not completely written.
		}
		if err != nil {
			return fmt.Errorf("tracking: read %s: %w", path, err)
		}
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		if !bytes.HasSuffix(line, []byte("}")) {
			continue // A torn line, completed by a later append's newline.
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("tracking: %s line %d: %w", path, n, err)
		}
	}
}

// appendFile appends b to path, first ending a torn last line.
func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("tracking: open %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			b = append([]byte{'\n'}, b...)
		}
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("tracking: append to %s: %w", path, err)
	}
	return nil
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("tracking: encode %s: %w", path, err)
	}
	if err := local.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("tracking: %w", err)
	}
	return nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
