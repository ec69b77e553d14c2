// Package onnx exports a trained LocalizationNet to ONNX, checks the result
// structurally, runs it with ONNX Runtime (github.com/yalue/onnxruntime_go)
// and measures its parity with the GoMLX model.
//
// The exporter does not trace a GoMLX graph (GoMLX's own ONNX exporter only
// handles fixed batch sizes, see docs); it rebuilds LocalizationNet's
// inference graph from the architecture saved in the checkpoint
// (trainer.RunConfig.Model) and the variables of its model.Store, read by
// scope name. A missing, misshapen or unused variable is an error naming it,
// so a change of trainer/model.go that the exporter does not follow fails
// the export instead of producing a wrong model; parity then checks the
// numbers.
//
// Graph (NCHW, which is the model input's layout [batch, receivers, n_mels,
// frames], so no transpose is needed; with the shared receiver encoder a
// Reshape to [batch*receivers, 1, n_mels, frames] first and a Reshape of
// the pooled features to [batch, receivers*D] before the heads; with the
// mel profile a ReduceMean over frames, optionally a Gemm shared by the
// receivers, Reshape and Concat to the pooled features; with model.levels
// a Slice of the lowest bands, ReduceMean of x and x*x over frames, the
// standard deviation as Sqrt(Max(E[x*x] - E[x]^2, 0)), Concat, Reshape and
// the level encoder's Gemm + Relu layers, Concat after them): per
// conv+BatchNorm a Conv whose
// weights and bias have the BatchNorm (inference statistics) folded in,
// Relu, residual Add; GlobalAveragePool and Flatten (or the Reshape); per head Gemm (Dense with the
// following BatchNorm folded) + Relu (dropout removed), Gemm to 2 outputs;
// positions = head * scale + centroid (Mul, Add); uncertainties =
// Clip(Softplus(head) * sigma_scale, 0.01, 1.0) (the calibration factor). Opset 14 (Clip takes min/max as inputs,
// ReduceMean still takes axes as an attribute).
package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"google.golang.org/protobuf/proto"

	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/onnx/onnxpb"
	"github.com/heimdall-sdr/trainer/trainer"
)

// Model I/O names (DESIGN.md contracts).
const (
	InputName       = "mel_spectrogram"
	OutputPositions = "positions"
	OutputSigmas    = "uncertainties"
	BatchDim        = "batch"

	// Opset is the ai.onnx opset the graph uses; IRVersion the ONNX IR
	// version written (IR 8 is what onnx.proto of ONNX 1.12 defines).
	Opset     = 14
	IRVersion = 8

	// BatchNormEpsilon is GoMLX's norm.BatchNorm default epsilon, which
	// trainer/model.go uses (it does not call Epsilon()).
	BatchNormEpsilon = 1e-3

	ProducerName = "heimdall-trainer"
)

// weights reads LocalizationNet's variables from a model.Store by scope and
// records which were used.
type weights struct {
	store *model.Store
	used  map[string]bool
}

func varPath(scope []string, name string) string {
	return model.ScopeSeparator + strings.Join(append(append([]string{trainer.ModelScope}, scope...), name), model.ScopeSeparator)
}

// get returns the float32 value of variable scope/name with the given dims.
func (w *weights) get(scope []string, name string, dims ...int) ([]float32, error) {
	p := varPath(scope, name)
	v := w.store.GetVariable(p)
	if v == nil {
		return nil, fmt.Errorf("onnx: export: variable %s missing from the checkpoint (did trainer/model.go change?)", p)
	}
	w.used[p] = true
	t, err := v.Value()
	if err != nil || t == nil {
		return nil, fmt.Errorf("onnx: export: variable %s has no value: %v", p, err)
	}
	sh := t.Shape()
	if sh.DType != dtypes.Float32 {
		return nil, fmt.Errorf("onnx: export: variable %s is %s, want float32", p, sh.DType)
	}
	if len(sh.Dimensions) != len(dims) {
		return nil, fmt.Errorf("onnx: export: variable %s has shape %v, want %v", p, sh.Dimensions, dims)
	}
	for i := range dims {
		if sh.Dimensions[i] != dims[i] {
			return nil, fmt.Errorf("onnx: export: variable %s has shape %v, want %v", p, sh.Dimensions, dims)
		}
	}
	data, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, fmt.Errorf("onnx: export: variable %s: %w", p, err)
	}
	return data, nil
}

// batchNorm returns the folded per-channel multiplier s = scale/sqrt(var+eps)
// and shift = offset - mean*s of the BatchNorm in scope.
func (w *weights) batchNorm(scope []string, c int) (mul, shift []float64, err error) {
	bn := append(append([]string{}, scope...), "batch_normalization")
	var vals [4][]float32
	for i, n := range []string{"scale", "offset", "mean", "variance"} {
		if vals[i], err = w.get(bn, n, c); err != nil {
			return nil, nil, err
		}
	}
	w.used[varPath(bn, "avg_weight")] = true
	mul, shift = make([]float64, c), make([]float64, c)
	for i := range c {
		mul[i] = float64(vals[0][i]) / math.Sqrt(float64(vals[3][i])+BatchNormEpsilon)
		shift[i] = float64(vals[1][i]) - float64(vals[2][i])*mul[i]
	}
	return mul, shift, nil
}

// unused lists variables under the model scope the exporter did not read.
func (w *weights) unused() []string {
	prefix := model.ScopeSeparator + trainer.ModelScope + model.ScopeSeparator
	var out []string
	for v := range w.store.IterVariables() {
		p := v.Path()
		if strings.HasPrefix(p, prefix) && !w.used[p] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// exporter builds the graph.
type exporter struct {
	b *graphBuilder
	w *weights
}

// convBN adds Conv(kernel, stride, GoMLX PadSame) with the BatchNorm of the
// same scope folded in, optionally followed by Relu.
func (e *exporter) convBN(x string, scope []string, in, out, k, stride int, relu bool) (string, error) {
	kern, err := e.w.get(append(append([]string{}, scope...), "conv"), "weights", k, k, in, out)
	if err != nil {
		return "", err
	}
	mul, shift, err := e.w.batchNorm(scope, out)
	if err != nil {
		return "", err
	}
	// GoMLX channels-last kernel [kH, kW, in, out] -> ONNX [out, in, kH, kW].
	wt := make([]float32, len(kern))
	bias := make([]float32, out)
	for o := range out {
		for i := range in {
			for kh := range k {
				for kw := range k {
					wt[((o*in+i)*k+kh)*k+kw] = float32(float64(kern[((kh*k+kw)*in+i)*out+o]) * mul[o])
				}
			}
		}
		bias[o] = float32(shift[o])
	}
	name := strings.Join(scope, "/")
	wn := e.b.initializer(name+"/W", []int64{int64(out), int64(in), int64(k), int64(k)}, wt)
	bn := e.b.initializer(name+"/B", []int64{int64(out)}, bias)
	lo, hi := int64((k-1)/2), int64(k/2) // GoMLX PadSame: (k-1)/2 before, k/2 after, for any stride.
	h := e.b.node("Conv", name+"/conv", []string{x, wn, bn},
		attrInts("kernel_shape", int64(k), int64(k)),
		attrInts("strides", int64(stride), int64(stride)),
		attrInts("pads", lo, lo, hi, hi),
		attrInts("dilations", 1, 1),
		attrInt("group", 1))
	if relu {
		h = e.b.node("Relu", name+"/relu", []string{h})
	}
	return h, nil
}

// denseBN adds Gemm for a Dense layer, with the BatchNorm of scope folded
// in when bn is set.
func (e *exporter) denseBN(x string, scope []string, in, out int, bn bool) (string, error) {
	dense := append(append([]string{}, scope...), "dense")
	wts, err := e.w.get(dense, "weights", in, out)
	if err != nil {
		return "", err
	}
	bias, err := e.w.get(dense, "biases", out)
	if err != nil {
		return "", err
	}
	wt, bt := make([]float32, len(wts)), make([]float32, out)
	mul, shift := make([]float64, out), make([]float64, out)
	for o := range out {
		mul[o] = 1
	}
	if bn {
		if mul, shift, err = e.w.batchNorm(scope, out); err != nil {
			return "", err
		}
	}
	for o := range out {
		for i := range in {
			wt[i*out+o] = float32(float64(wts[i*out+o]) * mul[o])
		}
		bt[o] = float32(float64(bias[o])*mul[o] + shift[o])
	}
	name := strings.Join(scope, "/")
	wn := e.b.initializer(name+"/W", []int64{int64(in), int64(out)}, wt)
	bnm := e.b.initializer(name+"/B", []int64{int64(out)}, bt)
	return e.b.node("Gemm", name+"/gemm", []string{x, wn, bnm}), nil
}

func (e *exporter) head(x string, scope string, cfg trainer.ModelConfig, in int) (string, error) {
	h := x
	for i, hidden := range cfg.HeadHidden {
		var err error
		if h, err = e.denseBN(h, []string{scope, fmt.Sprintf("hidden%d", i)}, in, hidden, true); err != nil {
			return "", err
		}
		h = e.b.node("Relu", fmt.Sprintf("%s/hidden%d/relu", scope, i), []string{h})
		in = hidden // Dropout: identity at inference.
	}
	return e.denseBN(h, []string{scope, "out"}, in, 2, false)
}

// levels adds trainer.LevelFeatures and the level encoder; it returns the
// encoded features [batch, dim] and dim.
func (e *exporter) levels(cfg trainer.ModelConfig, shape [3]int) (string, int, error) {
	bands := int64(cfg.Levels)
	if cfg.Levels > shape[1] {
		return "", 0, fmt.Errorf("onnx: export: model.levels %d exceeds the input's %d mel bands", cfg.Levels, shape[1])
	}
	starts := e.b.int64Initializer("levels_starts", 0)
	ends := e.b.int64Initializer("levels_ends", bands)
	axes := e.b.int64Initializer("levels_axes", 2)
	low := e.b.node("Slice", "levels_bands", []string{InputName, starts, ends, axes})
	mean := e.b.node("ReduceMean", "levels_mean", []string{low}, attrInts("axes", 3), attrInt("keepdims", 0))
	sq := e.b.node("Mul", "levels_square", []string{low, low})
	meanSq := e.b.node("ReduceMean", "levels_mean_square", []string{sq}, attrInts("axes", 3), attrInt("keepdims", 0))
	mean2 := e.b.node("Mul", "levels_mean_squared", []string{mean, mean})
	variance := e.b.node("Sub", "levels_variance", []string{meanSq, mean2})
	zero := e.b.initializer("levels_zero", nil, []float32{0})
	variance = e.b.node("Max", "levels_variance_clamped", []string{variance, zero})
	std := e.b.node("Sqrt", "levels_std", []string{variance})
	lv := e.b.node("Concat", "levels_mean_std", []string{mean, std}, attrInt("axis", 2))
	in := shape[0] * 2 * cfg.Levels
	target := e.b.int64Initializer("levels_shape", -1, int64(in))
	lv = e.b.node("Reshape", "levels", []string{lv, target})
	for i, hidden := range cfg.LevelHidden {
		scope := []string{"level_encoder", fmt.Sprintf("hidden%d", i)}
		var err error
		if lv, err = e.denseBN(lv, scope, in, hidden, false); err != nil {
			return "", 0, err
		}
		lv = e.b.node("Relu", strings.Join(scope, "/")+"/relu", []string{lv})
		in = hidden
	}
	return lv, in, nil
}

// BuildGraph builds the ONNX inference graph of m (no metadata). It reads
// the architecture from m.Config.Model and the weights from m.Store().
func BuildGraph(m *trainer.Model) (*onnxpb.ModelProto, error) {
	cfg := m.Config.Model
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("onnx: export: checkpoint model config: %w", err)
	}
	shape := m.Config.InputShape
	if shape[0] <= 0 || shape[1] <= 0 || shape[2] <= 0 {
		return nil, fmt.Errorf("onnx: export: checkpoint input_shape %v is invalid", shape)
	}
	e := &exporter{b: newGraphBuilder("LocalizationNet"), w: &weights{store: m.Store(), used: map[string]bool{}}}
	e.b.names[InputName] = true
	widths, depths, stemStride := cfg.Backbone()

	// Shared receiver encoder: each receiver's [n_mels, frames] map is one
	// single-channel image, [batch*receivers, 1, n_mels, frames] (-1 keeps
	// the batch dynamic); the same Reshape as trainer/model.go's.
	in, inChannels := InputName, shape[0]
	if cfg.SharedEncoder() {
		target := e.b.int64Initializer("receiver_maps_shape", -1, 1, int64(shape[1]), int64(shape[2]))
		in = e.b.node("Reshape", "receiver_maps", []string{InputName, target})
		inChannels = 1
	}
	h, err := e.convBN(in, []string{"stem"}, inChannels, widths[0], cfg.StemKernel, stemStride, true)
	if err != nil {
		return nil, err
	}
	for s, width := range widths {
		stage := fmt.Sprintf("stage%d", s)
		if s > 0 {
			if h, err = e.convBN(h, []string{stage, "down"}, widths[s-1], width, 3, 2, true); err != nil {
				return nil, err
			}
		}
		for blk := range depths[s] {
			block := fmt.Sprintf("block%d", blk)
			a, err := e.convBN(h, []string{stage, block, "a"}, width, width, 3, 1, true)
			if err != nil {
				return nil, err
			}
			bb, err := e.convBN(a, []string{stage, block, "b"}, width, width, 3, 1, false)
			if err != nil {
				return nil, err
			}
			sum := e.b.node("Add", stage+"/"+block+"/add", []string{bb, h})
			h = e.b.node("Relu", stage+"/"+block+"/relu", []string{sum})
		}
	}
	// GlobalAveragePool rather than ReduceMean over (H, W): ONNX Runtime's
	// NCHWc layout pass runs it in the blocked layout of the convolutions,
	// so only the pooled [N, D, 1, 1] is reordered back to NCHW, not the
	// whole last feature map (docs/PERFORMANCE.md, ONNX batch 1).
	feat := e.b.node("GlobalAveragePool", "global_mean_pool", []string{h})
	last := widths[len(widths)-1]
	if cfg.SharedEncoder() {
		// [batch*receivers, D, 1, 1] -> [batch, receivers*D], receiver-major.
		last *= shape[0]
		target := e.b.int64Initializer("receiver_features_shape", -1, int64(last))
		feat = e.b.node("Reshape", "receiver_features", []string{feat, target})
	} else {
		feat = e.b.node("Flatten", "pooled_features", []string{feat}, attrInt("axis", 1))
	}
	if cfg.MelProfile {
		// Time-averaged spectra [batch, receivers*n_mels], appended to the
		// pooled features (trainer/model.go: Concatenate on axis 1).
		prof := e.b.node("ReduceMean", "mel_profile_mean", []string{InputName}, attrInts("axes", 3), attrInt("keepdims", 0))
		dim := shape[1]
		if d := cfg.MelProfileDim; d > 0 {
			// Shared per-receiver Dense: [batch*receivers, n_mels] -> [.., d].
			target := e.b.int64Initializer("mel_profile_rows_shape", -1, int64(shape[1]))
			prof = e.b.node("Reshape", "mel_profile_rows", []string{prof, target})
			if prof, err = e.denseBN(prof, []string{"mel_profile"}, shape[1], d, false); err != nil {
				return nil, err
			}
			dim = d
		}
		target := e.b.int64Initializer("mel_profile_shape", -1, int64(shape[0]*dim))
		prof = e.b.node("Reshape", "mel_profile", []string{prof, target})
		feat = e.b.node("Concat", "head_features", []string{feat, prof}, attrInt("axis", 1))
		last += shape[0] * dim
	}
	if cfg.Levels > 0 {
		// Level features (trainer.LevelFeatures): time mean and standard
		// deviation of the lowest Levels bands, [batch, receivers*2*Levels],
		// through the level encoder, appended to the head features.
		lvFeat, dim, err := e.levels(cfg, shape)
		if err != nil {
			return nil, err
		}
		feat = e.b.node("Concat", "head_level_features", []string{feat, lvFeat}, attrInt("axis", 1))
		last += dim
	}
	pos, err := e.head(feat, "position_head", cfg, last)
	if err != nil {
		return nil, err
	}
	sig, err := e.head(feat, "uncertainty_head", cfg, last)
	if err != nil {
		return nil, err
	}
	// Inference-only sigma calibration factor (trainer.SigmaScaleVariable);
	// absent in checkpoints from before it existed, i.e. 1.
	var sigmaScale []float32
	if e.w.store.GetVariable(varPath([]string{trainer.SigmaScaleScope}, trainer.SigmaScaleName)) != nil {
		if sigmaScale, err = e.w.get([]string{trainer.SigmaScaleScope}, trainer.SigmaScaleName); err != nil {
			return nil, err
		}
	}
	if un := e.w.unused(); len(un) > 0 {
		return nil, fmt.Errorf("onnx: export: checkpoint variables not used by the exporter (did trainer/model.go change?): %s", strings.Join(un, ", "))
	}

	lat, lon, scale := PositionTransform(cfg)
	scaleN := e.b.initializer("position_scale", nil, []float32{float32(scale)})
	offN := e.b.initializer("position_offset", []int64{2}, []float32{float32(lat), float32(lon)})
	pos = e.b.node("Mul", "positions_scaled", []string{pos, scaleN})
	e.b.names[OutputPositions] = true
	e.b.g.Node = append(e.b.g.Node, &onnxpb.NodeProto{Name: proto.String("positions_offset"), OpType: proto.String("Add"),
		Input: []string{pos, offN}, Output: []string{OutputPositions}})

	sp := e.b.node("Softplus", "sigma_softplus", []string{sig})
	if sigmaScale != nil {
		kN := e.b.initializer("sigma_scale", nil, sigmaScale)
		sp = e.b.node("Mul", "sigma_scaled", []string{sp, kN})
	}
	minN := e.b.initializer("sigma_min", nil, []float32{float32(trainer.SigmaMinDeg)})
	maxN := e.b.initializer("sigma_max", nil, []float32{float32(trainer.SigmaMaxDeg)})
	e.b.names[OutputSigmas] = true
	e.b.g.Node = append(e.b.g.Node, &onnxpb.NodeProto{Name: proto.String("sigma_clip"), OpType: proto.String("Clip"),
		Input: []string{sp, minN, maxN}, Output: []string{OutputSigmas}})

	e.b.g.Input = []*onnxpb.ValueInfoProto{tensorValueInfo(InputName, BatchDim, -1, int64(shape[0]), int64(shape[1]), int64(shape[2]))}
	e.b.g.Output = []*onnxpb.ValueInfoProto{
		tensorValueInfo(OutputPositions, BatchDim, -1, 2),
		tensorValueInfo(OutputSigmas, BatchDim, -1, 2),
	}
	e.b.g.DocString = proto.String("LocalizationNet inference graph: mel_spectrogram [batch, receivers, n_mels, frames] -> positions [batch, 2] (lat, lon degrees), uncertainties [batch, 2] (1-sigma degrees in [0.01, 1.0]).")
	return &onnxpb.ModelProto{
		IrVersion:       proto.Int64(IRVersion),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		ProducerName:    proto.String(ProducerName),
		ProducerVersion: proto.String("1"),
		Domain:          proto.String("org.heimdall-sdr"),
		DocString:       proto.String("Heimdall LocalizationNet (RF transmitter localisation from WebSDR mel spectrograms)"),
		Graph:           e.b.g,
	}, nil
}

// PositionTransform is the (lat, lon) offset and scale LocalizationNet
// applies to its position head: out_deg = head*scale + (lat, lon); the
// receivers' centroid when positions are normalised (trainer/model.go).
func PositionTransform(cfg trainer.ModelConfig) (lat, lon, scale float64) {
	if !cfg.NormalizePositions {
		return 0, 0, 1
	}
	lat, lon = geo.Centroid(geo.Receivers)
	return lat, lon, cfg.PositionScale
}

// WeightsSHA256 is the SHA-256 of the initializers' raw data, in graph
// order (names and dims excluded).
func WeightsSHA256(mp *onnxpb.ModelProto) string {
	h := sha256.New()
	for _, t := range mp.GetGraph().GetInitializer() {
		h.Write(t.GetRawData())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ParamCount counts the float values of the initializers (int64 shape
// constants excluded).
func ParamCount(mp *onnxpb.ModelProto) int {
	n := 0
	for _, t := range mp.GetGraph().GetInitializer() {
		if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
			continue
		}
		c := 1
		for _, d := range t.GetDims() {
			c *= int(d)
		}
		n += c
	}
	return n
}

// SetMetadata replaces the model's metadata_props with kv (sorted by key).
func SetMetadata(mp *onnxpb.ModelProto, kv map[string]string) {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mp.MetadataProps = nil
	for _, k := range keys {
		mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(kv[k])})
	}
}

// MetadataMap returns the model's metadata_props.
func MetadataMap(mp *onnxpb.ModelProto) map[string]string {
	m := map[string]string{}
	for _, p := range mp.GetMetadataProps() {
		m[p.GetKey()] = p.GetValue()
	}
	return m
}

var errNotModel = errors.New("not an ONNX model")
