package tracking

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MLflow is the Tracker that writes the local journal (Local) and sends
// every record to an MLflow server. After the first failure it stops
// sending for the rest of the run (training must not wait on a dead
// server) and tries once more at End; whatever was not sent stays in the
// journal for Replay.
type MLflow struct {
	local *Local
	c     *Client

	mu     sync.Mutex
	st     *replayState
	failed error // the latest send failure, nil once a send succeeds
	first  error // the first send failure of this run
}

var _ Tracker = (*MLflow)(nil)

// StartMLflow starts (or, for a resumed run directory, reopens) a run on the
// MLflow server c. Only a failure to write the local journal is an error;
// an unreachable server is reported by Report.
func StartMLflow(ctx context.Context, c *Client, runDir string, spec RunSpec) (*MLflow, error) {
	l, err := OpenLocal(runDir, spec)
	if err != nil {
		return nil, err
	}
	st, err := loadState(l.dir, c.URI())
	if err != nil {
		return nil, err
	}
	m := &MLflow{local: l, c: c, st: st}
	if err := st.save(); err != nil {
		return nil, err
	}
	m.trySync(ctx)
	return m, nil
}

// trySync sends what the journal holds and the server lacks, unless an
// earlier send failed.
func (m *MLflow) trySync(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed != nil {
		return
	}
	m.syncLocked(ctx)
}

func (m *MLflow) syncLocked(ctx context.Context) {
	m.local.mu.Lock()
	j, err := readJournal(m.local.runDir)
	m.local.mu.Unlock()
	if err == nil {
		_, err = syncJournal(ctx, m.c, j, m.st, false)
	}
	if err != nil {
		m.failed = err
		if m.first == nil {
			m.first = err
		}
		m.st.LastError = err.Error()
		_ = m.st.save() // Best effort: the journal itself is intact.
	}
}

// LogParams implements Tracker.
func (m *MLflow) LogParams(ctx context.Context, p map[string]string) error {
	if err := m.local.LogParams(ctx, p); err != nil {
		return err
	}
	m.trySync(ctx)
	return nil
}

// SetTags implements Tracker.
func (m *MLflow) SetTags(ctx context.Context, t map[string]string) error {
	if err := m.local.SetTags(ctx, t); err != nil {
		return err
	}
	m.trySync(ctx)
	return nil
}

// LogMetrics implements Tracker.
func (m *MLflow) LogMetrics(ctx context.Context, ms []Metric) error {
	if err := m.local.LogMetrics(ctx, ms); err != nil {
		return err
	}
	m.trySync(ctx)
	return nil
}

// LogArtifact implements Tracker.
func (m *MLflow) LogArtifact(ctx context.Context, src, path string) error {
	if err := m.local.LogArtifact(ctx, src, path); err != nil {
		return err
	}
	m.trySync(ctx)
	return nil
}

// RegisterModel implements Tracker; Version is "" when the server could
// not be reached (the request stays in the journal for Replay).
func (m *MLflow) RegisterModel(ctx context.Context, spec ModelSpec) (Registration, error) {
	r, err := m.local.RegisterModel(ctx, spec)
	if err != nil {
		return r, err
	}
	if spec.Name == "" {
		spec.Name = DefaultRegisteredModel
	}
	m.trySync(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if ms, ok := m.st.Models[spec.key()]; ok {
		r.Version, r.Source = ms.Version, ms.Source
	}
	return r, nil
}

// End implements Tracker. It retries sending once if an earlier send
// failed, so a server that came back gets the whole run.
func (m *MLflow) End(ctx context.Context, status string) error {
	if err := m.local.End(ctx, status); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ctx.Err() != nil {
		// Ctrl-C: still tell the server, briefly; the rest waits for Replay.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
	}
	m.failed = nil
	m.syncLocked(ctx)
	return nil
}

// Report implements Tracker.
func (m *MLflow) Report() Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := Report{Backend: m.c.URI(), Dir: m.local.dir, RunID: m.st.RunID, ExperimentID: m.st.ExperimentID, ArtifactURI: m.st.ArtifactURI}
	if m.failed != nil {
		r.Failed, r.Error = true, m.first.Error()
		if m.failed.Error() != m.first.Error() {
			r.Error += "; retried at the end: " + m.failed.Error()
		}
		r.Replay = ReplayCommand(m.local.runDir, m.c.URI())
	}
	for _, ms := range m.st.Models {
		r.Models = append(r.Models, Registration{Name: ms.Name, Version: ms.Version, Source: ms.Source, Stage: ms.Stage, Alias: ms.Alias})
	}
	return r
}

// ReplayCommand is the command line that sends a buffered run.
func ReplayCommand(runDir, uri string) string {
	return fmt.Sprintf("heimdall tracking replay --tracking-uri %s %s", uri, runDir)
}

// SyncStats counts what one sync sent.
type SyncStats struct {
	RunCreated  bool
	Params      int
	Tags        int
	Metrics     int
	Duplicates  int // metric values the server already had (not sent again).
	Artifacts   int
	Models      int
	StatusSent  string
	RunID       string
	ArtifactURI string
}

// syncJournal sends what st says the server lacks: the run, params, tags,
// metrics, artifacts, model versions and the status, in that order,
// updating and saving st after each step. With dedupe, metric values the
// server already has are dropped first (always done after an interrupted
// metrics send).
func syncJournal(ctx context.Context, c *Client, j *journal, st *replayState, dedupe bool) (SyncStats, error) {
	var s SyncStats
	if j.run.RunName == "" {
		return s, fmt.Errorf("tracking: %s: no run recorded", filepath.Join(j.runDir, Dir, RunFile))
	}
	if st.RunID == "" {
		expID, err := c.EnsureExperiment(ctx, j.run.Experiment)
		if err != nil {
			return s, err
		}
		tags := sortedPairs(j.tags)
		run, err := c.CreateRun(ctx, CreateRunRequest{ExperimentID: expID, RunName: j.run.RunName, StartTime: j.run.StartTime, Tags: tags})
		if err != nil {
			return s, err
		}
		st.ExperimentID, st.RunID, st.ArtifactURI, st.Status = expID, run.Info.RunID, run.Info.ArtifactURI, StatusRunning
		for _, t := range tags {
			st.Tags[t.Key] = t.Value
		}
		s.RunCreated, s.Tags = true, len(tags)
		if err := st.save(); err != nil {
			return s, err
		}
	}
	s.RunID, s.ArtifactURI = st.RunID, st.ArtifactURI

	var params, tags []Param
	for _, p := range sortedPairs(j.params) {
		if _, sent := st.Params[p.Key]; !sent {
			params = append(params, p)
		}
	}
	for _, t := range sortedPairs(j.tags) {
		if v, sent := st.Tags[t.Key]; !sent || v != t.Value {
			tags = append(tags, t)
		}
	}
	if len(params)+len(tags) > 0 {
		if err := c.LogBatch(ctx, st.RunID, nil, params, tags); err != nil {
			return s, err
		}
		for _, p := range params {
			st.Params[p.Key] = p.Value
		}
		for _, t := range tags {
			st.Tags[t.Key] = t.Value
		}
		s.Params, s.Tags = len(params), s.Tags+len(tags)
		if err := st.save(); err != nil {
			return s, err
		}
	}

	if st.MetricsSent > len(j.metrics) {
		st.MetricsSent = 0 // The journal was replaced: dedupe against the server.
		dedupe = true
	}
	if pending := j.metrics[st.MetricsSent:]; len(pending) > 0 {
		if (dedupe || st.MetricsInFlight) && !s.RunCreated {
			var err error
			before := len(pending)
			if pending, err = dropKnownMetrics(ctx, c, st.RunID, pending); err != nil {
				return s, err
			}
			s.Duplicates = before - len(pending)
		}
		st.MetricsInFlight = true
		if err := st.save(); err != nil {
			return s, err
		}
		if err := c.LogBatch(ctx, st.RunID, pending, nil, nil); err != nil {
			return s, err
		}
		st.MetricsSent, st.MetricsInFlight = len(j.metrics), false
		s.Metrics = len(pending)
		if err := st.save(); err != nil {
			return s, err
		}
	}

	for _, a := range j.artifacts {
		if st.Artifacts[a.Path] == a.SHA256 {
			continue
		}
		if err := c.UploadArtifact(ctx, st.ArtifactURI, a.Path, j.srcPath(a)); err != nil {
			return s, err
		}
		st.Artifacts[a.Path] = a.SHA256
		s.Artifacts++
		if err := st.save(); err != nil {
			return s, err
		}
	}

	for _, spec := range j.models {
		if spec.Name == "" {
			spec.Name = DefaultRegisteredModel
		}
		done, err := registerModel(ctx, c, st, spec)
		if err != nil {
			return s, err
		}
		if done {
			s.Models++
		}
	}

	if j.run.Status != "" && j.run.Status != st.Status {
		end := int64(0)
		if IsTerminal(j.run.Status) {
			end = j.run.EndTime
		}
		if err := c.UpdateRun(ctx, st.RunID, j.run.Status, end); err != nil {
			return s, err
		}
		st.Status, s.StatusSent = j.run.Status, j.run.Status
		if err := st.save(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// dropKnownMetrics removes the values the run already has on the server,
// matched by (key, step, timestamp, value).
func dropKnownMetrics(ctx context.Context, c *Client, runID string, ms []Metric) ([]Metric, error) {
	type id struct {
		key       string
		step, ts  int64
		valueBits string
	}
	known := map[id]bool{}
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Key] {
			continue
		}
		seen[m.Key] = true
		hist, err := c.MetricHistory(ctx, runID, m.Key)
		if err != nil {
			return nil, err
		}
		for _, h := range hist {
			known[id{h.Key, int64(h.Step), int64(h.Timestamp), fmt.Sprint(float64(h.Value))}] = true
		}
	}
	out := ms[:0:0]
	for _, m := range ms {
		if !known[id{m.Key, int64(m.Step), int64(m.Timestamp), fmt.Sprint(float64(m.Value))}] {
			out = append(out, m)
		}
	}
	return out, nil
}

// registerModel creates (or finds) the model version spec asks for, moves
// it to its stage and points its alias at it; progress is kept in st.
func registerModel(ctx context.Context, c *Client, st *replayState, spec ModelSpec) (bool, error) {
	ms := st.Models[spec.key()]
	if ms != nil && ms.Version != "" && (spec.Stage == "" || ms.StageDone) && (spec.Alias == "" || ms.AliasDone) {
		return false, nil
	}
	if ms == nil {
		ms = &modelState{Name: spec.Name, Stage: spec.Stage, Alias: spec.Alias}
		st.Models[spec.key()] = ms
	}
	if ms.Version == "" {
		source := spec.Source
		if source == "" {
			source = strings.TrimRight(st.ArtifactURI, "/") + "/" + strings.Trim(spec.ArtifactPath, "/")
		}
		if err := c.EnsureRegisteredModel(ctx, spec.Name, "", sortedPairs(spec.ModelTags)); err != nil {
			return false, err
		}
		// A version this run created whose state update was lost: reuse it.
		existing, err := c.SearchModelVersions(ctx, spec.Name, st.RunID)
		if err != nil {
			return false, err
		}
		for _, v := range existing {
			if v.Source == source && (spec.Revision == "" || hasTag(v.Tags, "revision", spec.Revision)) {
				ms.Version = v.Version
			}
		}
		if ms.Version == "" {
			tags := spec.Tags
			if spec.Revision != "" {
				tags = map[string]string{"revision": spec.Revision}
				for k, v := range spec.Tags {
					tags[k] = v
				}
			}
			mv, err := c.CreateModelVersion(ctx, CreateModelVersionRequest{
				Name: spec.Name, Source: source, RunID: st.RunID, Description: spec.Description, Tags: sortedPairs(tags),
			})
			if err != nil {
				return false, err
			}
			ms.Version = mv.Version
		}
		ms.Source = source
		if err := st.save(); err != nil {
			return false, err
		}
	}
	if spec.Stage != "" && !ms.StageDone {
		if _, err := c.TransitionStage(ctx, spec.Name, ms.Version, spec.Stage, false); err != nil {
			return false, err
		}
		ms.StageDone = true
		if err := st.save(); err != nil {
			return false, err
		}
	}
	if spec.Alias != "" && !ms.AliasDone {
		if err := c.SetAlias(ctx, spec.Name, spec.Alias, ms.Version); err != nil {
			return false, err
		}
		ms.AliasDone = true
		if err := st.save(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// replayState is replay-state.json: what was sent to which server.
type replayState struct {
	path string

	URI             string                 `json:"uri"`
	ExperimentID    string                 `json:"experiment_id,omitempty"`
	RunID           string                 `json:"run_id,omitempty"`
	ArtifactURI     string                 `json:"artifact_uri,omitempty"`
	Params          map[string]string      `json:"params_sent"`
	Tags            map[string]string      `json:"tags_sent"`
	MetricsSent     int                    `json:"metric_lines_sent"`
	MetricsInFlight bool                   `json:"metrics_in_flight,omitempty"`
	Artifacts       map[string]string      `json:"artifacts_sent"` // path -> sha256
	Models          map[string]*modelState `json:"models"`         // ModelSpec key -> progress
	Status          string                 `json:"status_sent,omitempty"`
	LastError       string                 `json:"last_error,omitempty"`
	Previous        []string               `json:"previous_servers,omitempty"`
}

type modelState struct {
	Name      string `json:"name"`
	Version   string `json:"version,omitempty"`
	Source    string `json:"source,omitempty"`
	Stage     string `json:"stage,omitempty"`
	Alias     string `json:"alias,omitempty"`
	StageDone bool   `json:"stage_done,omitempty"`
	AliasDone bool   `json:"alias_done,omitempty"`
}

// loadState reads dir/replay-state.json for the server uri; a state kept
// for another server is set aside (the run is sent afresh to the new one).
func loadState(dir, uri string) (*replayState, error) {
	st := &replayState{}
	if err := readJSON(filepath.Join(dir, ReplayStateFile), st); err != nil {
		return nil, err
	}
	if st.URI != "" && st.URI != uri {
		prev := append(st.Previous, st.URI+" run "+st.RunID)
		st = &replayState{Previous: prev}
	}
	st.path, st.URI = filepath.Join(dir, ReplayStateFile), uri
	if st.Params == nil {
		st.Params = map[string]string{}
	}
	if st.Tags == nil {
		st.Tags = map[string]string{}
	}
	if st.Artifacts == nil {
		st.Artifacts = map[string]string{}
	}
	if st.Models == nil {
		st.Models = map[string]*modelState{}
	}
	return st, nil
}

func (st *replayState) save() error { return writeJSONAtomic(st.path, st) }

// StateURI returns the server URI recorded in RUN_DIR/tracking/replay-state.json
// ("" if none): where a buffered run was meant to go.
func StateURI(runDir string) (string, error) {
	var st replayState
	if err := readJSON(filepath.Join(runDir, Dir, ReplayStateFile), &st); err != nil {
		return "", err
	}
	return st.URI, nil
}

// Replay sends the run buffered in runDir/tracking to the MLflow server c:
// everything replay-state.json does not list as sent, skipping metric
// values the server already has. Replaying again sends nothing new.
func Replay(ctx context.Context, c *Client, runDir string) (SyncStats, error) {
	dir := filepath.Join(runDir, Dir)
	j, err := readJournal(runDir)
	if err != nil {
		return SyncStats{}, err
	}
	if j.run.RunName == "" {
		return SyncStats{}, fmt.Errorf("tracking: replay: %s has no %s (not a tracked run directory)", dir, RunFile)
	}
	st, err := loadState(dir, c.URI())
	if err != nil {
		return SyncStats{}, err
	}
	s, err := syncJournal(ctx, c, j, st, true)
	st.LastError = ""
	if err != nil {
		st.LastError = err.Error()
	}
	return s, errors.Join(err, st.save())
}

func hasTag(tags []Tag, key, value string) bool {
	for _, t := range tags {
		if t.Key == key && t.Value == value {
			return true
		}
	}
	return false
}
