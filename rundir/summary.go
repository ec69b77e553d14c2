package rundir

// Summary is the outcome of a run (SummaryFile): written by the trainer at
// the end of training, then extended by the export (OnnxParity) and by
// experiment tracking (Tracking) through UpdateSummary.
type Summary struct {
	RunDir         string `json:"run_dir"`
	Backend        string `json:"backend"`
	Preset         string `json:"preset"`
	Params         int    `json:"params"`
	Epochs         int    `json:"epochs"` // epochs evaluated (last evaluation's epoch).
	Steps          int64  `json:"steps"`  // global steps done.
	StepsPerEpoch  int    `json:"steps_per_epoch"`
	StopReason     string `json:"stop_reason"` // "completed", "early_stopping", "max_steps".
	BestEpoch      int    `json:"best_epoch"`
	BestStep       int64  `json:"best_step"`
	BestCheckpoint string `json:"best_checkpoint"`
	// SelectedBy is the criterion that chose the best checkpoint
	// (train.select_by: val_loss, val_km_median, holdout_km_median).
	SelectedBy   string  `json:"selected_by,omitempty"`
	SamplesPerS  float64 `json:"samples_per_s"` // batch / median step time.
	TrainSeconds float64 `json:"train_seconds"` // wall time of this invocation.
	// Val are the best checkpoint's metrics on the val set.
	Val EvalMetrics `json:"val"`
	// OnnxParity is the export's parity (set by the export).
	OnnxParity *Parity `json:"onnx_parity,omitempty"`
	// Tracking says where the run was tracked (set by experiment tracking).
	Tracking *Tracking `json:"tracking,omitempty"`
	// Estimators says how the estimators in Val.Baselines were set up (set
	// by experiment after training).
	Estimators *Estimators `json:"estimators,omitempty"`
}

// BaselineMetrics are a classical estimator's (or the oracle's) errors on
// the val set.
type BaselineMetrics struct {
	Name     string  `json:"name"`
	KmMean   float64 `json:"km_mean"`
	KmMedian float64 `json:"km_median"`
	KmP90    float64 `json:"km_p90"`
	// Within1Sigma is the share of sessions inside the estimator's own
	// axis-aligned 1-sigma ellipse, for estimators that give one (the
	// oracle).
	Within1Sigma *float64 `json:"within_1sigma,omitempty"`
	// NA says why the estimator has no numbers on this set (e.g. the
	// oracle on sessions of an unknown world); the km fields are then -1.
	NA string `json:"na,omitempty"`
}

// Estimators says how the estimators beside the model were set up.
type Estimators struct {
	// FitSessions is how many sessions the fitted baselines (calibrated
	// least squares, fingerprinting) learnt from, and FitSource which
	// ("training split", "sessions2/ of local:data").
	FitSessions int    `json:"fit_sessions"`
	FitSource   string `json:"fit_source,omitempty"`
	// Calibration is what calibrated least squares fitted.
	Calibration *CalibrationFit `json:"calibration,omitempty"`
	// Fingerprint is the neighbour count and weighting chosen by
	// cross-validation.
	Fingerprint *FingerprintFit `json:"fingerprint,omitempty"`
	// OracleWorld names the world the oracle knows and where it came from.
	OracleWorld string `json:"oracle_world,omitempty"`
	// Seconds is each estimator's wall time (fit and locate), by name.
	Seconds map[string]float64 `json:"seconds"`
}

// CalibrationFit is calibrated least squares' fit on the training sessions.
type CalibrationFit struct {
	OffsetsDB  []float64 `json:"offsets_db"`
	Exponent   float64   `json:"exponent"`
	ResidualDB float64   `json:"residual_db"`
	Sessions   int       `json:"sessions"`
}

// FingerprintFit is fingerprinting's cross-validated choice.
type FingerprintFit struct {
	K        int  `json:"k"`
	Weighted bool `json:"weighted"`
}

// EvalMetrics are the model's metrics on a set of samples.
type EvalMetrics struct {
	N         int     `json:"n"`
	Loss      float64 `json:"loss"`       // Gaussian NLL (degrees).
	MSETerm   float64 `json:"mse_term"`   // mean (y-mu)^2/(2 sigma^2).
	LogTerm   float64 `json:"log_term"`   // mean ln sigma.
	MAE       float64 `json:"mae"`        // mean |y - mu| over lat and lon, degrees.
	SigmaMean float64 `json:"sigma_mean"` // degrees.
	SigmaMin  float64 `json:"sigma_min"`
	SigmaMax  float64 `json:"sigma_max"`
	KmMean    float64 `json:"km_mean"` // haversine error.
	KmStd     float64 `json:"km_std"`
	KmMedian  float64 `json:"km_median"`
	KmP90     float64 `json:"km_p90"`
	// Within1Sigma and Within2Sigma are the shares of samples whose truth is
	// inside the predicted axis-aligned k-sigma ellipse
	// ((dlat/σlat)^2 + (dlon/σlon)^2 <= k^2); a calibrated Gaussian gives
	// 39.3% and 86.5%.
	Within1Sigma float64           `json:"within_1sigma"`
	Within2Sigma float64           `json:"within_2sigma"`
	Baselines    []BaselineMetrics `json:"baselines,omitempty"`
}

// Tracking is the summary's tracking section: the tracker's report, the
// run's end status and, after a replay, what failed before it and when it
// was replayed.
type Tracking struct {
	// Backend is "local" or the MLflow server URI.
	Backend string `json:"backend"`
	// Dir is the local tracking directory (RUN_DIR/tracking).
	Dir          string `json:"dir"`
	RunID        string `json:"run_id,omitempty"`
	ExperimentID string `json:"experiment_id,omitempty"`
	ArtifactURI  string `json:"artifact_uri,omitempty"`
	// Failed is set when records could not be sent; Error is the first
	// failure; Replay is the command that sends the buffered run.
	Failed bool           `json:"failed"`
	Error  string         `json:"error,omitempty"`
	Replay string         `json:"replay,omitempty"`
	Models []TrackedModel `json:"models,omitempty"`
	// Status is the run's end status (FINISHED, FAILED, KILLED).
	Status             string `json:"status,omitempty"`
	FailedBeforeReplay string `json:"failed_before_replay,omitempty"`
	ReplayedAt         string `json:"replayed_at,omitempty"`
}

// TrackedModel is a model version registered (or recorded) by tracking.
type TrackedModel struct {
	Name    string `json:"name"`
	Version string `json:"version"` // "" while only recorded locally.
	Source  string `json:"source,omitempty"`
	Stage   string `json:"stage,omitempty"`
	Alias   string `json:"alias,omitempty"`
}

// WriteSummary writes s as RUN_DIR/summary.json, replacing it.
func WriteSummary(dir string, s *Summary) error {
	mu.Lock()
	defer mu.Unlock()
	return writeJSON(Path(dir, SummaryFile), s)
}

// ReadSummary reads RUN_DIR/summary.json.
func ReadSummary(dir string) (*Summary, error) {
	s := &Summary{}
	if err := readJSON(Path(dir, SummaryFile), s); err != nil {
		return nil, err
	}
	return s, nil
}

// UpdateSummary applies edit to RUN_DIR/summary.json and writes it back
// atomically; a run without a summary (training failed) is left alone.
func UpdateSummary(dir string, edit func(*Summary) error) error {
	_, err := update(Path(dir, SummaryFile), edit)
	return err
}
