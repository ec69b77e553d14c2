package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/onnx/onnxpb"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/trainer"
)

// Metadata-property keys written into model.onnx.
const (
	KeyModelVersion  = "model_version"
	KeyRunID         = "training_run_id"
	KeyReceivers     = "receivers"
	KeyFeatures      = "features"
	KeyPositionNorm  = "position_normalisation"
	KeyWeightsSHA256 = "weights_sha256"
	KeyExportDate    = "export_date"
	KeyParity        = "parity"
	KeyModelType     = "model_type"
	KeyBackbone      = "backbone"
	KeyCheckpoint    = "checkpoint"
)

// The export's metadata record and its parts are the run directory's
// model card (rundir.ModelCard).
type (
	Metadata      = rundir.ModelCard
	FeatureParams = rundir.FeatureParams
	PositionNorm  = rundir.PositionNorm
	IOSpec        = rundir.IOSpec
)

// ExportOptions control ExportRun.
type ExportOptions struct {
	// Session configures the ONNX Runtime session used for parity.
	Session SessionOptions
	// MaxMAE is the parity limit per output; 0 means DefaultMaxMAE.
	MaxMAE float64
	// Val are real validation inputs (the first 5 batches are used); nil
	// skips the validation parity set.
	Val *Inputs
	// Features are the feature settings recorded in the metadata.
	Features FeatureParams
	// Backend names the GoMLX backend of the model (recorded in parity).
	Backend string
	// Now is the export time; nil means time.Now.
	Now func() time.Time
	// Log receives progress lines; nil for none.
	Log io.Writer
}

// Parity batches (HEIMDALL.md: 5 batches x 8).
const (
	ParityBatches   = 5
	ParityBatchSize = 8
)

// Result is what ExportRun wrote.
type Result struct {
	ModelPath  string
	MetaPath   string
	ParityPath string
	Meta       *Metadata
	Parity     *ParityReport
}

// ExportRun exports m into runDir: build the graph, Check it, run it with
// ONNX Runtime against the GoMLX model (parity: 5x8 random and 5x8
// validation inputs), and write the model (metadata inside), the model card
// and the parity record atomically (rundir). A failed check or parity fails
// the export; the parity record is still written for inspection, model.onnx is not.
func ExportRun(m *trainer.Model, runDir string, o ExportOptions) (*Result, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	t := now().UTC()
	mp, err := BuildGraph(m)
	if err != nil {
		return nil, err
	}
	if err := Check(mp); err != nil {
		return nil, fmt.Errorf("onnx: export: generated graph fails the structural check: %w", err)
	}
	data, err := Marshal(mp)
	if err != nil {
		return nil, err
	}
	sess, err := NewSessionFromBytes(data, o.Session)
	if err != nil {
		return nil, fmt.Errorf("onnx: export: %w", err)
	}
	defer sess.Close()

	sets := []Inputs{RandomInputs(m.Config.InputShape, ParityBatches*ParityBatchSize, 42)}
	if o.Val != nil && o.Val.N > 0 {
		n := min(o.Val.N, ParityBatches*ParityBatchSize)
		per := sess.SampleSize()
		if len(o.Val.X) < n*per {
			return nil, fmt.Errorf("onnx: export: validation inputs have %d values, want %d", len(o.Val.X), n*per)
		}
		sets = append(sets, Inputs{Name: "validation", X: o.Val.X[:n*per], N: n})
	}
	fmt.Fprintf(logw, "onnx: parity: GoMLX vs ONNX Runtime %s on %d set(s) of %dx%d\n", RuntimeVersion(), len(sets), ParityBatches, ParityBatchSize)
	par, err := Parity(m, sess, sets, ParityBatchSize, o.MaxMAE)
	if err != nil {
		return nil, fmt.Errorf("onnx: export: %w", err)
	}
	par.Backend = o.Backend
	res := &Result{ParityPath: rundir.Path(runDir, rundir.ParityFile), Parity: par}
	if err := rundir.WriteParity(runDir, par); err != nil {
		return nil, err
	}
	fmt.Fprintln(logw, par.String())
	if !par.Pass {
		mean, _ := par.Worst()
		scale := 0.0
		for _, s := range par.Sets {
			scale = math.Max(scale, s.PositionsMeanAbs)
		}
		return res, fmt.Errorf("onnx: export: parity failed: mean abs error %.3g exceeds export.max_mae %.3g (see %s; "+
			"mean |position| %.3g deg, where float32 spacing is %.2g: an under-trained model far out of range on these inputs "+
			"magnifies rounding; retrain longer, or re-export with `heimdall export RUN_DIR --set export.max_mae=...`)",
			mean, par.MaxMAE, res.ParityPath, scale, float32ULP(scale))
	}

	meta := newMetadata(m, mp, runDir, t, o.Features)
	meta.Parity = par
	props, err := metadataProps(meta, m)
	if err != nil {
		return nil, err
	}
	SetMetadata(mp, props)
	if data, err = Marshal(mp); err != nil {
		return nil, err
	}
	if _, err := ParseModel(data); err != nil {
		return nil, fmt.Errorf("onnx: export: final model: %w", err)
	}
	sum := sha256.Sum256(data)
	meta.SHA256 = hex.EncodeToString(sum[:])
	meta.SizeBytes = int64(len(data))
	res.ModelPath = rundir.Path(runDir, rundir.ModelFile)
	res.MetaPath = rundir.Path(runDir, rundir.ModelCardFile)
	if err := writeFileAtomic(res.ModelPath, data); err != nil {
		return nil, err
	}
	if err := rundir.WriteModelCard(runDir, meta); err != nil {
		return nil, err
	}
	res.Meta = meta
	fmt.Fprintf(logw, "onnx: wrote %s (%.1f MB, sha256 %s)\n", res.ModelPath, float64(len(data))/1e6, meta.SHA256[:16])
	return res, nil
}

func backboneName(cfg trainer.ModelConfig) string {
	w, d, s := cfg.Backbone()
	return fmt.Sprintf("resnet-%s(widths=%v,depths=%v,stem_stride=%d,stem_kernel=%d,head=%v)", cfg.Preset, w, d, s, cfg.StemKernel, cfg.HeadHidden)
}

func newMetadata(m *trainer.Model, mp *onnxpb.ModelProto, runDir string, t time.Time, feat FeatureParams) *Metadata {
	shape := m.Config.InputShape
	lat, lon, scale := PositionTransform(m.Config.Model)
	meta := &Metadata{
		ModelType:       "localization-net",
		Format:          "onnx",
		Backbone:        backboneName(m.Config.Model),
		ModelVersion:    "v" + t.Format("20060102_150405"),
		RunID:           filepath.Base(filepath.Clean(runDir)),
		Checkpoint:      m.Checkpoint,
		Input:           IOSpec{Name: InputName, Shape: []any{BatchDim, shape[0], shape[1], shape[2]}},
		InputShape:      []any{BatchDim, shape[0], shape[1], shape[2]},
		Outputs:         []IOSpec{{Name: OutputPositions, Shape: []any{BatchDim, 2}}, {Name: OutputSigmas, Shape: []any{BatchDim, 2}}},
		Opset:           Opset,
		IRVersion:       IRVersion,
		ExportDate:      t.Format(time.RFC3339),
		WeightsSHA256:   WeightsSHA256(mp),
		Params:          ParamCount(mp),
		TrainableParams: m.Params(),
		Receivers:       geo.Receivers,
		Features:        feat,
		PositionNorm:    PositionNorm{Normalize: m.Config.Model.NormalizePositions, Scale: scale, CentroidLat: lat, CentroidLon: lon},
	}
	if e := m.Entry; e != nil {
		loss, epoch, step := e.ValLoss, float64(e.Epoch), float64(e.Step)
		meta.InferenceMetrics = &rundir.InferenceMetrics{ValLoss: &loss, Epoch: &epoch, Step: &step}
	}
	return meta
}

func metadataProps(meta *Metadata, m *trainer.Model) (map[string]string, error) {
	js := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	return map[string]string{
		KeyModelVersion:  meta.ModelVersion,
		KeyRunID:         meta.RunID,
		KeyReceivers:     js(meta.Receivers),
		KeyFeatures:      js(meta.Features),
		KeyPositionNorm:  js(meta.PositionNorm),
		KeyWeightsSHA256: meta.WeightsSHA256,
		KeyExportDate:    meta.ExportDate,
		KeyParity:        js(meta.Parity),
		KeyModelType:     meta.ModelType,
		KeyBackbone:      meta.Backbone,
		KeyCheckpoint:    strings.TrimSpace(m.Checkpoint),
	}, nil
}

// ReadMetadata decodes the metadata properties of an exported model.
func ReadMetadata(mp *onnxpb.ModelProto) (*Metadata, error) {
	kv := MetadataMap(mp)
	meta := &Metadata{
		ModelType: kv[KeyModelType], Backbone: kv[KeyBackbone], ModelVersion: kv[KeyModelVersion],
		RunID: kv[KeyRunID], Checkpoint: kv[KeyCheckpoint], ExportDate: kv[KeyExportDate],
		WeightsSHA256: kv[KeyWeightsSHA256], Opset: Opset, IRVersion: int(mp.GetIrVersion()),
	}
	for key, dst := range map[string]any{KeyReceivers: &meta.Receivers, KeyFeatures: &meta.Features, KeyPositionNorm: &meta.PositionNorm, KeyParity: &meta.Parity} {
		v, ok := kv[key]
		if !ok {
			return nil, fmt.Errorf("onnx: model metadata lacks %q (not exported by heimdall?)", key)
		}
		if err := json.Unmarshal([]byte(v), dst); err != nil {
			return nil, fmt.Errorf("onnx: model metadata %q: %w", key, err)
		}
	}
	return meta, nil
}

// float32ULP is the spacing of float32 values near v.
func float32ULP(v float64) float64 {
	f := float32(math.Abs(v))
	return float64(math.Nextafter32(f, float32(math.Inf(1))) - f)
}
