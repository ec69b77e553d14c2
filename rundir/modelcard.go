package rundir

import (
	"fmt"
	"math"

	"github.com/heimdall-sdr/trainer/geo"
)

// ModelCard is the export's metadata record (ModelCardFile; HEIMDALL.md
// "metadata record"): written by the onnx export, extended by the benchmark
// after export, published beside the model.
type ModelCard struct {
	ModelType        string            `json:"model_type"`
	Format           string            `json:"format"`
	Backbone         string            `json:"backbone"`
	ModelVersion     string            `json:"model_version"`
	RunID            string            `json:"training_run_id"`
	MLflowRunID      string            `json:"mlflow_run_id"`
	Checkpoint       string            `json:"checkpoint"`
	Input            IOSpec            `json:"input"`
	InputShape       []any             `json:"input_shape"`
	Outputs          []IOSpec          `json:"outputs"`
	Opset            int               `json:"opset"`
	IRVersion        int               `json:"ir_version"`
	ExportDate       string            `json:"export_date"`
	SizeBytes        int64             `json:"size_bytes"`
	SHA256           string            `json:"sha256"`
	WeightsSHA256    string            `json:"weights_sha256"`
	Params           int               `json:"parameter_count"`
	TrainableParams  int               `json:"trainable_parameter_count"`
	Receivers        []geo.Receiver    `json:"receivers"`
	Features         FeatureParams     `json:"features"`
	PositionNorm     PositionNorm      `json:"position_normalisation"`
	InferenceMetrics *InferenceMetrics `json:"inference_metrics,omitempty"`
	Parity           *Parity           `json:"parity"`
}

// InferenceMetrics are the model card's inference figures: the exported
// checkpoint's (ValLoss, Epoch, Step) until the short benchmark after export
// replaces them with its latency rows.
type InferenceMetrics struct {
	ValLoss *float64 `json:"val_loss,omitempty"`
	Epoch   *float64 `json:"epoch,omitempty"`
	Step    *float64 `json:"step,omitempty"`

	Date    string        `json:"date,omitempty"`
	Machine *BenchMachine `json:"machine,omitempty"`
	Rows    []BenchRow    `json:"rows,omitempty"`
	Note    string        `json:"note,omitempty"`
}

// FeatureParams are the feature settings the model was trained with.
type FeatureParams struct {
	SampleRateHz float64 `json:"sample_rate_hz"`
	NFFT         int     `json:"n_fft"`
	Hop          int     `json:"hop"`
	NMels        int     `json:"n_mels"`
	Frames       int     `json:"frames"`
	FMin         float64 `json:"f_min"`
	FMax         float64 `json:"f_max"` // 0 = Nyquist.
	// Normalize is the feature normalisation the model was trained on
	// (dataset.normalize: "channel" or "global"); "" in cards written
	// before it was recorded, which were all "channel".
	Normalize string `json:"normalize,omitempty"`
}

// PositionNorm says how the position head maps to degrees.
type PositionNorm struct {
	Normalize   bool    `json:"normalize_positions"`
	Scale       float64 `json:"scale_deg"`
	CentroidLat float64 `json:"centre_lat"`
	CentroidLon float64 `json:"centre_lon"`
}

// IOSpec is one model input or output.
type IOSpec struct {
	Name  string `json:"name"`
	Shape []any  `json:"shape"`
}

// WriteModelCard writes m as RUN_DIR/model.json, replacing it.
func WriteModelCard(dir string, m *ModelCard) error {
	mu.Lock()
	defer mu.Unlock()
	return writeJSON(Path(dir, ModelCardFile), m)
}

// ReadModelCard reads RUN_DIR/model.json.
func ReadModelCard(dir string) (*ModelCard, error) {
	m := &ModelCard{}
	if err := readJSON(Path(dir, ModelCardFile), m); err != nil {
		return nil, err
	}
	return m, nil
}

// UpdateModelCard applies edit to RUN_DIR/model.json and writes it back
// atomically; a missing model card is an error (export first).
func UpdateModelCard(dir string, edit func(*ModelCard) error) error {
	ok, err := update(Path(dir, ModelCardFile), edit)
	if err == nil && !ok {
		return fmt.Errorf("rundir: update %s: no model card (export the run first)", Path(dir, ModelCardFile))
	}
	return err
}

// ErrStats are absolute differences between the GoMLX and ONNX outputs.
type ErrStats struct {
	Max  float64 `json:"max_abs_error"`
	Mean float64 `json:"mean_abs_error"`
}

// ParitySet is the comparison on one set of inputs.
type ParitySet struct {
	Name          string   `json:"name"` // "random" or "validation".
	Batches       int      `json:"batches"`
	BatchSize     int      `json:"batch_size"`
	Positions     ErrStats `json:"positions"`
	Uncertainties ErrStats `json:"uncertainties"`
	// PositionsMeanAbs is the mean |position| of the GoMLX outputs: float32
	// resolution near it (about 6e-8 of it) bounds how close two correct
	// implementations summing in different orders can agree.
	PositionsMeanAbs float64 `json:"positions_mean_abs"`
}

// Parity is what every export records (ParityFile, the model card and the
// summary's onnx_parity).
type Parity struct {
	MaxMAE     float64     `json:"max_mae"`
	Pass       bool        `json:"pass"`
	Sets       []ParitySet `json:"sets"`
	Backend    string      `json:"gomlx_backend,omitempty"`
	ORTVersion string      `json:"onnxruntime_version,omitempty"`
}

// Worst returns the largest mean and max errors over sets and outputs.
func (r *Parity) Worst() (mean, max float64) {
	for _, s := range r.Sets {
		for _, e := range []ErrStats{s.Positions, s.Uncertainties} {
			mean, max = math.Max(mean, e.Mean), math.Max(max, e.Max)
		}
	}
	return mean, max
}

// String is a one-line summary per set.
func (r *Parity) String() string {
	s := ""
	for _, p := range r.Sets {
		s += fmt.Sprintf("parity %-10s (%dx%d): positions max %.2e mean %.2e | uncertainties max %.2e mean %.2e\n",
			p.Name, p.Batches, p.BatchSize, p.Positions.Max, p.Positions.Mean, p.Uncertainties.Max, p.Uncertainties.Mean)
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	return s + fmt.Sprintf("parity %s (mean abs error limit %.0e per output)", verdict, r.MaxMAE)
}

// WriteParity writes p as RUN_DIR/parity.json, replacing it.
func WriteParity(dir string, p *Parity) error {
	mu.Lock()
	defer mu.Unlock()
	return writeJSON(Path(dir, ParityFile), p)
}

// ReadParity reads RUN_DIR/parity.json.
func ReadParity(dir string) (*Parity, error) {
	p := &Parity{}
	if err := readJSON(Path(dir, ParityFile), p); err != nil {
		return nil, err
	}
	return p, nil
}
