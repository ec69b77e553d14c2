package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heimdall-sdr/trainer/config"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/tracking"
	"github.com/heimdall-sdr/trainer/trainer"
)

// trackedRun records one training job with a tracking.Tracker: MLflow
// when a tracking URI is configured, else RUN_DIR/tracking only. Tracking
// never stops training: failures are logged and reported.
type trackedRun struct {
	tr     tracking.Tracker
	cfg    config.Config
	runDir string
	logw   io.Writer
	warned bool
}

// TrackingURI resolves the MLflow tracking URI for cfg (tracking.uri, else
// HEIMDALL_MLFLOW_TRACKING_URI, else MLFLOW_TRACKING_URI); "" means local.
func TrackingURI(cfg config.Config) (uri, source string, err error) {
	return tracking.ResolveURI(cfg.Tracking.URI, os.Getenv)
}

// startTracking starts (or, on resume, reopens) the run's tracking and logs
// its tags and params.
func startTracking(ctx context.Context, cfg config.Config, runDir string, ds *dataset.Dataset, backend string, logw io.Writer) (*trackedRun, error) {
	uri, source, err := TrackingURI(cfg)
	if err != nil {
		fmt.Fprintf(logw, "WARNING: tracking: %v; tracking locally in %s\n", err, filepath.Join(runDir, tracking.Dir))
		uri = ""
	}
	tags := map[string]string{
		"phase": "training", "service": "training", "model": "LocalizationNet",
		"backend": backend, "run_dir": runDir,
		"mlflow.source.name": "heimdall train", "mlflow.source.type": "LOCAL",
	}
	if commit := gitCommit(ctx); commit != "" {
		tags["git_commit"], tags["mlflow.source.git.commit"] = commit, commit
	}
	spec := tracking.RunSpec{Experiment: cfg.Tracking.Experiment, Name: filepath.Base(runDir), Tags: tags}
	tr, err := tracking.Start(ctx, uri, runDir, spec, cfg.Tracking.ClientOptions())
	if err != nil {
		return nil, fmt.Errorf("tracking: %w", err)
	}
	t := &trackedRun{tr: tr, cfg: cfg, runDir: runDir, logw: logw}
	t.check(tr.LogParams(ctx, runParams(cfg, ds)))
	shown := config.RedactURL(uri) // Credentials in the URI never reach a log.
	if uri == "" {
		fmt.Fprintf(logw, "tracking: local, in %s (set HEIMDALL_MLFLOW_TRACKING_URI or --tracking-uri for MLflow)\n", filepath.Join(runDir, tracking.Dir))
	} else if r := tr.Report(); r.Failed {
		fmt.Fprintf(logw, "WARNING: tracking: MLflow at %s (from %s) is not answering; training goes on and the run is buffered in %s: %s\n",
			shown, source, r.Dir, r.Error)
	} else {
		fmt.Fprintf(logw, "tracking: MLflow %s (from %s), experiment %s, run %s\n", shown, source, cfg.Tracking.Experiment, r.RunID)
	}
	return t, nil
}

// check logs a local tracking failure once; training goes on.
func (t *trackedRun) check(err error) {
	if err != nil && !t.warned {
		t.warned = true
		fmt.Fprintf(t.logw, "WARNING: tracking: %v (training goes on)\n", err)
	}
}

// onEpoch is the trainer.RunOptions.OnEpoch hook: every metric of the
// epoch at its global step, plus the epoch and the system metrics.
func (t *trackedRun) onEpoch(em trainer.EpochMetrics) error {
	now := tracking.NowMillis()
	var ms []tracking.Metric
	add := func(k string, v float64) {
		ms = append(ms, tracking.Metric{Key: k, Value: tracking.Float(v), Timestamp: tracking.Int64(now), Step: tracking.Int64(em.Step)})
	}
	for k, v := range em.Flat() {
		switch k {
		case "step", "best":
		case "samples_per_s", "epoch_seconds":
			add("system/"+k, asFloat(v))
		default:
			add(k, asFloat(v))
		}
	}
	sort.Slice(ms, func(a, b int) bool { return ms[a].Key < ms[b].Key })
	t.check(t.tr.LogMetrics(context.Background(), ms))
	return nil
}

func asFloat(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case bool:
		if v {
			return 1
		}
		return 0
	}
	return math.NaN() // nil: a NaN/Inf the metrics line could not hold.
}

// finish logs the run's artifacts, registers the exported model (when
// RUN_DIR/model.onnx exists), ends the run with the status trainErr implies
// and reports where everything went (log and the run summary).
func (t *trackedRun) finish(ctx context.Context, res *TrainResult, trainErr error) *tracking.Report {
	status := tracking.StatusFinished
	switch {
	case errors.Is(trainErr, context.Canceled) || ctx.Err() != nil:
		status = tracking.StatusKilled
	case trainErr != nil:
		status = tracking.StatusFailed
	}
	// Even after Ctrl-C the run is recorded and ended, but the server gets
	// only a short while (the rest stays buffered for replay).
	if status == tracking.StatusKilled {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	for _, a := range runArtifacts(t.runDir, res) {
		t.check(t.tr.LogArtifact(ctx, a.src, a.path))
	}
	if status == tracking.StatusFinished && t.cfg.Tracking.Register {
		t.registerModel(ctx, res)
	}
	if res != nil && res.Summary != nil {
		s := res.Summary
		t.check(t.tr.LogMetrics(ctx, []tracking.Metric{
			{Key: "best/val_loss", Value: tracking.Float(s.Val.Loss), Step: tracking.Int64(s.BestStep)},
			{Key: "best/km_median", Value: tracking.Float(s.Val.KmMedian), Step: tracking.Int64(s.BestStep)},
			{Key: "best/km_mean", Value: tracking.Float(s.Val.KmMean), Step: tracking.Int64(s.BestStep)},
			{Key: "system/train_seconds", Value: tracking.Float(s.TrainSeconds), Step: tracking.Int64(s.Steps)},
			{Key: "system/median_samples_per_s", Value: tracking.Float(s.SamplesPerS), Step: tracking.Int64(s.Steps)},
		}))
		t.check(t.tr.SetTags(ctx, map[string]string{"stop_reason": s.StopReason, "best_checkpoint": s.BestCheckpoint}))
	}
	t.check(t.tr.End(ctx, status))
	r := t.tr.Report()
	if r.Failed {
		fmt.Fprintf(t.logw, "WARNING: tracking %s\n", r)
	} else {
		fmt.Fprintf(t.logw, "tracking: %s, status %s\n", r, status)
	}
	for _, m := range r.Models {
		if m.Version != "" {
			fmt.Fprintf(t.logw, "tracking: registered %s version %s (stage %s, alias %s)\n", m.Name, m.Version, m.Stage, m.Alias)
		}
	}
	t.check(addTrackingToSummary(t.runDir, r, status))
	return &r
}

// registerModel registers RUN_DIR/model.onnx (logged as model/model.onnx)
// as a new version of tracking.registered_model.
func (t *trackedRun) registerModel(ctx context.Context, res *TrainResult) {
	onnxPath := rundir.Path(t.runDir, rundir.ModelFile)
	st, err := os.Stat(onnxPath)
	if err != nil {
		return
	}
	tags := map[string]string{"framework": "gomlx", "format": "onnx", "output_count": "2"}
	if mc, err := rundir.ReadModelCard(t.runDir); err == nil {
		if mc.InputShape != nil {
			b, _ := json.Marshal(mc.InputShape)
			tags["input_shape"] = string(b)
		}
		tags["opset"] = strconv.Itoa(mc.Opset)
		if mc.SHA256 != "" {
			tags["sha256"] = mc.SHA256
		}
	}
	if _, ok := tags["input_shape"]; !ok {
		if b, err := os.ReadFile(rundir.Path(t.runDir, rundir.RunConfigFile)); err == nil {
			var rc trainer.RunConfig
			if json.Unmarshal(b, &rc) == nil {
				tags["input_shape"] = fmt.Sprintf("[-1, %d, %d, %d]", rc.InputShape[0], rc.InputShape[1], rc.InputShape[2])
			}
		}
	}
	t.check(t.tr.LogParams(ctx, map[string]string{
		"onnx_model_name":   t.cfg.Tracking.RegisteredModel,
		"onnx_file_size_mb": strconv.FormatFloat(float64(st.Size())/(1<<20), 'f', 3, 64),
	}))
	if src := publishedSource(t.cfg, res); src != "" {
		tags["published_uri"], tags["published_key"] = src, res.Published.Key
	}
	// The source is the MLflow Model directory logged as the run artifact
	// model/ (what MLflow's loaders resolve models:/ to); a run without one
	// (exported before) registers the bare model.onnx as before.
	artifactPath := tracking.MLflowModelArtifactPath
	if _, err := os.Stat(filepath.Join(t.runDir, rundir.MLflowModelDir, tracking.MLmodelFile)); err != nil {
		artifactPath = "model/model.onnx"
	}
	reg, err := t.tr.RegisterModel(ctx, tracking.ModelSpec{
		Name:         t.cfg.Tracking.RegisteredModel,
		ArtifactPath: artifactPath,
		Description:  "LocalizationNet exported to ONNX by heimdall train, run " + filepath.Base(t.runDir),
		Tags:         tags,
		ModelTags:    map[string]string{"framework": "gomlx", "format": "onnx", "model": "LocalizationNet"},
		Stage:        t.cfg.Tracking.Stage,
		Alias:        t.cfg.Tracking.Alias,
		Revision:     tags["sha256"], // a re-export (heimdall export) is a new version
	})
	t.check(err)
	if reg.Version != "" {
		t.check(t.tr.SetTags(ctx, map[string]string{"onnx_model_version": reg.Version}))
	}
}

type artifact struct{ src, path string }

// runArtifacts lists what a finished (or failed) run uploads: the resolved
// config, metrics, summary, plots, the checkpoint index and the best
// checkpoint's files, the ONNX model and its metadata, and bench reports.
func runArtifacts(runDir string, res *TrainResult) []artifact {
	var out []artifact
	add := func(rel, path string) {
		if st, err := os.Stat(filepath.Join(runDir, rel)); err == nil && st.Mode().IsRegular() {
			out = append(out, artifact{filepath.Join(runDir, rel), path})
		}
	}
	for _, f := range []string{rundir.ConfigFile, rundir.RunConfigFile, rundir.DatasetFile, rundir.MetricsFile, rundir.SummaryFile} {
		add(f, f)
	}
	plots, _ := filepath.Glob(filepath.Join(runDir, rundir.PlotsDir, "*.png"))
	for _, p := range plots {
		add(filepath.Join(rundir.PlotsDir, filepath.Base(p)), rundir.PlotsDir+"/"+filepath.Base(p))
	}
	add(filepath.Join(rundir.CheckpointsDir, rundir.IndexFile), rundir.CheckpointsDir+"/"+rundir.IndexFile)
	if res != nil && res.Summary != nil && res.Summary.BestCheckpoint != "" {
		files, _ := filepath.Glob(filepath.Join(runDir, rundir.CheckpointsDir, res.Summary.BestCheckpoint+"*"))
		for _, f := range files {
			add(filepath.Join(rundir.CheckpointsDir, filepath.Base(f)), rundir.CheckpointsDir+"/"+filepath.Base(f))
		}
	}
	// The MLflow Model directory is the artifact model/ (registered from
	// there); a run exported before it existed logs the two files alone.
	if files, _ := os.ReadDir(filepath.Join(runDir, rundir.MLflowModelDir)); len(files) > 0 {
		for _, f := range files {
			add(filepath.Join(rundir.MLflowModelDir, f.Name()), tracking.MLflowModelArtifactPath+"/"+f.Name())
		}
	} else {
		add(rundir.ModelFile, "model/"+rundir.ModelFile)
		add(rundir.ModelCardFile, "model/"+rundir.ModelCardFile)
	}
	for _, pat := range []string{"bench*.json", "bench*.md"} {
		files, _ := filepath.Glob(filepath.Join(runDir, pat))
		for _, f := range files {
			add(filepath.Base(f), "bench/"+filepath.Base(f))
		}
	}
	return out
}

// runParams are the resolved config values (section.key) plus the
// headline names the original pipeline logged.
func runParams(cfg config.Config, ds *dataset.Dataset) map[string]string {
	p := cfg.Params() // Secrets are redacted.
	delete(p, "tracking.uri")

	widths, depths, stemStride := cfg.Model.Backbone()
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	p["epochs"] = strconv.Itoa(cfg.Train.Epochs)
	p["batch_size"] = strconv.Itoa(cfg.Train.BatchSize)
	p["learning_rate"] = fmt.Sprint(cfg.Train.LearningRate)
	p["weight_decay"] = fmt.Sprint(cfg.Train.WeightDecay)
	p["validation_split"] = fmt.Sprint(cfg.Dataset.ValidationSplit)
	p["optimizer"] = "AdamW"
	p["lr_schedule"] = "cosine"
	p["loss_function"] = "GaussianNLL"
	p["backbone"] = cfg.Model.Preset
	p["backbone_widths"] = js(widths)
	p["backbone_depths"] = js(depths)
	p["backbone_stem_stride"] = strconv.Itoa(stemStride)
	if ds != nil {
		p["n_receivers"] = strconv.Itoa(len(ds.Receivers))
		p["input_shape"] = js([]int{-1, len(ds.Receivers), ds.NMels, ds.Frames})
		p["param_count"] = strconv.Itoa(trainer.ParamCount(cfg.Model, len(ds.Receivers)))
		p["sample_rate_hz"] = fmt.Sprint(ds.SampleRateHz)
		p["feature_key"] = ds.FeatureKey
		p["dataset_sessions"] = strconv.Itoa(ds.Train.Len() + ds.Val.Len())
		p["train_sessions"] = strconv.Itoa(ds.Train.Len())
		p["val_sessions"] = strconv.Itoa(ds.Val.Len())
		p["dataset_listed"] = strconv.Itoa(ds.Report.Listed)
		p["dataset_approved"] = strconv.Itoa(ds.Report.Approved)
		p["dataset_skipped"] = strconv.Itoa(ds.Report.Skipped)
	}
	return p
}

// gitCommit is the HEAD commit of the working directory's repository, or "".
func gitCommit(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// addTrackingToSummary records the tracking report and the end status in
// the run summary's tracking section, when the summary exists.
func addTrackingToSummary(runDir string, r tracking.Report, status string) error {
	return rundir.UpdateSummary(runDir, func(s *rundir.Summary) error {
		tr := &rundir.Tracking{Backend: r.Backend, Dir: r.Dir, RunID: r.RunID, ExperimentID: r.ExperimentID,
			ArtifactURI: r.ArtifactURI, Failed: r.Failed, Error: r.Error, Replay: r.Replay, Status: status}
		for _, m := range r.Models {
			tr.Models = append(tr.Models, rundir.TrackedModel(m))
		}
		s.Tracking = tr
		return nil
	})
}

// ReplayTracking sends the run buffered in runDir/tracking to MLflow: to
// the configured URI (TrackingURI), else to the server recorded in
// runDir/tracking/replay-state.json.
func ReplayTracking(ctx context.Context, cfg config.Config, runDir string) (tracking.SyncStats, string, error) {
	uri, _, err := TrackingURI(cfg)
	if err != nil {
		return tracking.SyncStats{}, "", err
	}
	if uri == "" {
		if uri, err = tracking.StateURI(runDir); err != nil {
			return tracking.SyncStats{}, "", err
		}
	}
	if uri == "" {
		return tracking.SyncStats{}, "", errors.New("tracking replay: no MLflow server: pass --tracking-uri or set HEIMDALL_MLFLOW_TRACKING_URI")
	}
	c, err := tracking.NewClient(uri, cfg.Tracking.ClientOptions())
	if err != nil {
		return tracking.SyncStats{}, config.RedactURL(uri), err
	}
	s, err := tracking.Replay(ctx, c, runDir)
	if err != nil {
		return s, c.URI(), err
	}
	return s, c.URI(), markReplayedInSummary(runDir, c.URI(), s)
}

// markReplayedInSummary updates the run summary's tracking section after a
// successful replay.
func markReplayedInSummary(runDir, uri string, st tracking.SyncStats) error {
	return rundir.UpdateSummary(runDir, func(s *rundir.Summary) error {
		tr := s.Tracking
		if tr == nil {
			tr = &rundir.Tracking{}
		}
		if tr.Failed {
			tr.FailedBeforeReplay = tr.Error
		}
		tr.Error, tr.Replay = "", ""
		tr.Failed, tr.Backend, tr.RunID, tr.ArtifactURI = false, uri, st.RunID, st.ArtifactURI
		tr.ReplayedAt = time.Now().UTC().Format(time.RFC3339)
		s.Tracking = tr
		return nil
	})
}

// PromoteModel moves version of tracking.registered_model to stage (e.g.
// Production) with the alias of the stage's name, on the configured server.
func PromoteModel(ctx context.Context, cfg config.Config, version, stage string) (*tracking.ModelVersion, string, error) {
	uri, _, err := TrackingURI(cfg)
	if err != nil {
		return nil, "", err
	}
	if uri == "" {
		return nil, "", errors.New("models promote: no MLflow server: pass --tracking-uri or set HEIMDALL_MLFLOW_TRACKING_URI")
	}
	c, err := tracking.NewClient(uri, cfg.Tracking.ClientOptions())
	if err != nil {
		return nil, config.RedactURL(uri), err
	}
	mv, err := tracking.Promote(ctx, c, cfg.Tracking.RegisteredModel, version, stage, "")
	return mv, c.URI(), err
}

// publishedSource is the s3:// URI of the published model (a tag of the
// registered version), "" when it was not published.
func publishedSource(cfg config.Config, res *TrainResult) string {
	if res == nil || res.Published == nil {
		return ""
	}
	return "s3://" + cfg.Store.ModelsBucket + "/" + res.Published.Key
}
