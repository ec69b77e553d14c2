package trainer

import (
	"fmt"
	"strings"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/layers/norm"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"

	"github.com/heimdall-sdr/trainer/geo"
)

// Output sigma bounds in degrees (HEIMDALL.md: softplus, clamp [0.01, 1.0]).
const (
	SigmaMinDeg = 0.01
	SigmaMaxDeg = 1.0
)

// outputInitStd is the standard deviation of the heads' output-layer weights.
const outputInitStd = 0.01

// ModelScope is the scope holding LocalizationNet's variables in a model.Store.
const ModelScope = "localization_net"

// positionOffset returns the (lat, lon) centre and the scale in degrees the
// position head is expressed in: out_deg = head * scale + centre.
func (c ModelConfig) positionOffset() (lat, lon, scale float64) {
	if !c.NormalizePositions {
		return 0, 0, 1
	}
	lat, lon = geo.Centroid(geo.Receivers)
	return lat, lon, c.PositionScale
}

// LocalizationNet builds the network on x shaped [batch, receivers, n_mels,
// frames] and returns positions [batch, 2] (lat, lon degrees) and
// uncertainties [batch, 2] (sigma degrees in [SigmaMinDeg, SigmaMaxDeg]).
//
// With cfg.ReceiverEncoder "shared" the backbone runs on each receiver's
// [n_mels, frames] map as a separate batch element (shared weights, one
// input channel) and the heads see the receivers' pooled features
// concatenated in receiver order, [batch, receivers*D]; with "joint" the
// receivers are the stem's input channels.
//
// Backbone (channels-last internally): stem conv (stride StemStride) + BN +
// ReLU; per stage a stride-2 3x3 conv + BN + ReLU downsampling (except the
// first stage) followed by `depth` residual blocks of two dense 3x3 convs
// with BN; global average pooling. Two heads of the same shape
// (Dense -> BN -> ReLU -> Dropout per hidden size, then Dense(2)): the first
// gives positions (denormalised to degrees), the second sigma =
// clamp(softplus(h), 0.01, 1.0) in degrees.
//
// It panics on an invalid configuration or input shape (graph building).
func LocalizationNet(scope *model.Scope, cfg ModelConfig, x *graph.Node) (positions, uncertainties *graph.Node) {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Errorf("trainer: LocalizationNet: %w", err))
	}
	if x.Rank() != 4 {
		panic(fmt.Errorf("trainer: LocalizationNet: input must be [batch, receivers, n_mels, frames], got %s", x.Shape()))
	}
	dims := x.Shape().Dimensions
	batch, receivers, mels, frames := dims[0], dims[1], dims[2], dims[3]
	widths, depths, stemStride := cfg.Backbone()

	// Channels-last: [batch, n_mels, frames, receivers] (joint), or one
	// single-channel map per receiver, [batch*receivers, n_mels, frames, 1]
	// (shared: the receivers become batch elements of one shared backbone).
	var h *graph.Node
	encBatch := batch
	if cfg.SharedEncoder() {
		encBatch = batch * receivers
		h = graph.Reshape(x, encBatch, mels, frames, 1)
	} else {
		h = graph.TransposeAllAxes(x, 0, 2, 3, 1)
		h.AssertDims(batch, mels, frames, receivers)
	}

	h = convBNReLU(scope.In("stem"), h, widths[0], cfg.StemKernel, stemStride)
	hh, ww := ceilDiv(mels, stemStride), ceilDiv(frames, stemStride)
	h.AssertDims(encBatch, hh, ww, widths[0])

	for s, width := range widths {
		stage := scope.In("stage%d", s)
		if s > 0 {
			h = convBNReLU(stage.In("down"), h, width, 3, 2)
			hh, ww = ceilDiv(hh, 2), ceilDiv(ww, 2)
		}
		for b := range depths[s] {
			h = residualBlock(stage.In("block%d", b), h)
		}
		h.AssertDims(encBatch, hh, ww, width)
	}

	features := graph.ReduceMean(h, 1, 2) // Global average pooling.
	features.AssertDims(encBatch, widths[len(widths)-1])
	if cfg.SharedEncoder() {
		// [batch*receivers, D] -> [batch, receivers*D]: receiver r's
		// features at r*D..r*D+D-1, so the heads know which receiver is which.
		features = graph.Reshape(features, batch, receivers*widths[len(widths)-1])
	}

	if cfg.MelProfile {
		// [batch, receivers, n_mels] time-averaged spectra, receiver-major.
		profile := graph.ReduceMean(x, 3)
		profileDim := mels
		if cfg.MelProfileDim > 0 {
			// One Dense shared by the receivers: [batch*receivers, n_mels]
			// -> [batch*receivers, MelProfileDim].
			profileDim = cfg.MelProfileDim
			profile = layers.Dense(scope.In("mel_profile"), graph.Reshape(profile, batch*receivers, mels), true, profileDim)
		}
		profile = graph.Reshape(profile, batch, receivers*profileDim)
		features = graph.Concatenate([]*graph.Node{features, profile}, 1)
	}
	if cfg.Levels > 0 {
		if cfg.Levels > mels {
			panic(fmt.Errorf("trainer: LocalizationNet: model.levels %d exceeds the input's %d mel bands", cfg.Levels, mels))
		}
		lv := LevelFeatures(x, cfg.Levels)
		enc := scope.In("level_encoder")
		for i, hidden := range cfg.LevelHidden {
			lv = activation.Relu(layers.Dense(enc.In("hidden%d", i), lv, true, hidden))
		}
		features = graph.Concatenate([]*graph.Node{features, lv}, 1)
	}
	sigmaDropout := cfg.HeadDropout
	if len(cfg.UncertaintyHeadDropout) > 0 {
		sigmaDropout = cfg.UncertaintyHeadDropout
	}
	posHead := head(scope.In("position_head"), cfg.HeadHidden, cfg.HeadDropout, features)
	sigmaHead := head(scope.In("uncertainty_head"), cfg.HeadHidden, sigmaDropout, features)
	posHead.AssertDims(batch, 2)
	sigmaHead.AssertDims(batch, 2)

	lat, lon, scale := cfg.positionOffset()
	offset := graph.Const(x.Graph(), []float32{float32(lat), float32(lon)})
	positions = graph.Add(graph.MulScalar(posHead, scale), graph.ExpandAxes(offset, 0))
	sigma := graph.Softplus(sigmaHead)
	if !scope.IsTraining(x.Graph()) {
		// Inference only: the sigma calibration factor (1 until the
		// trainer fits it, see calibrateSigma); training graphs never see it.
		k := SigmaScaleVariable(scope)
		sigma = graph.Mul(sigma, k.ValueGraph(x.Graph()))
	}
	uncertainties = clampSigma(sigma)
	positions.AssertDims(batch, 2)
	uncertainties.AssertDims(batch, 2)
	return positions, uncertainties
}

// LevelFeatures returns, for x [batch, receivers, n_mels, frames], each
// receiver's time mean and time standard deviation of the lowest `bands`
// mel bands: [batch, receivers*bands*2], receiver-major, per receiver the
// bands' means then their standard deviations (population, sqrt(max(E[x²]
// - E[x]², 0))). No variable; the ONNX export computes the same.
func LevelFeatures(x *graph.Node, bands int) *graph.Node {
	dims := x.Shape().Dimensions
	batch, receivers := dims[0], dims[1]
	low := graph.Slice(x, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(0, bands), graph.AxisRange())
	mean := graph.ReduceMean(low, 3)
	meanSq := graph.ReduceMean(graph.Square(low), 3)
	std := graph.Sqrt(graph.MaxScalar(graph.Sub(meanSq, graph.Square(mean)), 0))
	lv := graph.Concatenate([]*graph.Node{mean, std}, 2) // [batch, receivers, 2*bands]
	return graph.Reshape(lv, batch, receivers*2*bands)
}

// SigmaScaleScope / SigmaScaleName name the non-trainable scalar (under
// ModelScope) that multiplies softplus(head) before the clamp in inference
// graphs: the sigma calibration factor fitted on the training split.
const (
	SigmaScaleScope = "sigma_calibration"
	SigmaScaleName  = "scale"
)

// SigmaScaleVariable returns the sigma calibration variable (created as 1.0,
// non-trainable) of the LocalizationNet scope.
func SigmaScaleVariable(scope *model.Scope) *model.Variable {
	return scope.In(SigmaScaleScope).VariableWithValue(SigmaScaleName, float32(1)).SetTrainable(false)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// clampSigma is clamp(s, SigmaMinDeg, SigmaMaxDeg) in the forward pass
// (bit-exact: s - s is 0) with a straight-through gradient (d/ds = 1
// everywhere). ClipScalar alone has a zero gradient outside the bounds, so
// a sigma pushed past a bound could never come back.
func clampSigma(s *graph.Node) *graph.Node {
	c := graph.ClipScalar(s, SigmaMinDeg, SigmaMaxDeg)
	return graph.Add(graph.StopGradient(c), graph.Sub(s, graph.StopGradient(s)))
}

// batchNorm is BatchNorm over the last (feature) axis. The Go backend lacks
// BatchNormForTraining, so the plain-graph version is used everywhere
// (UseBackendInference(false)); it is also what exports to ONNX cleanly.
//
// In training graphs the normalisation uses the batch mean and variance
// *with* their gradients, as in PyTorch and the BatchNorm paper. GoMLX
// v0.28.2's BatchNorm stops the gradient at the batch statistics; trained
// that way, the network underfit and collapsed late in training. GoMLX's
// layer still owns the variables and the running-average updates (so
// inference, precise-BN updates, checkpoints and the ONNX export are
// unchanged); only the training-mode output is recomputed here.
func batchNorm(scope *model.Scope, x *graph.Node) *graph.Node {
	g := x.Graph()
	out := norm.BatchNorm(scope, x, -1).UseBackendInference(false).Done()
	if !scope.IsTraining(g) || model.GetGraphParamOr(scope, g, train.BatchNormalizationUpdatePhase, -1) >= 0 {
		return out
	}
	bn := scope.Shared(norm.BatchNormalizationScopeName)
	scale := bn.GetVariable("scale").NodeValue(g)
	offset := bn.GetVariable("offset").NodeValue(g)
	axes := make([]int, x.Rank()-1)
	for i := range axes {
		axes[i] = i
	}
	mean := graph.ReduceAndKeep(x, graph.ReduceMean, axes...)
	centered := graph.Sub(x, mean)
	variance := graph.ReduceAndKeep(graph.Square(centered), graph.ReduceMean, axes...)
	normalized := graph.Div(centered, graph.Sqrt(graph.AddScalar(variance, bnEpsilon)))
	dims := make([]int, x.Rank())
	for i := range dims {
		dims[i] = 1
	}
	dims[x.Rank()-1] = x.Shape().Dimensions[x.Rank()-1]
	return graph.Add(graph.Mul(normalized, graph.Reshape(scale, dims...)), graph.Reshape(offset, dims...))
}

// bnEpsilon is GoMLX BatchNorm's default epsilon, which the layer uses for
// inference (and onnx.BatchNormEpsilon for the export).
const bnEpsilon = 1e-3

// convBNReLU is conv(kernel, stride, same padding, no bias) + BN + ReLU.
func convBNReLU(scope *model.Scope, x *graph.Node, channels, kernel, stride int) *graph.Node {
	h := layers.Convolution(scope, x).Channels(channels).KernelSize(kernel).
		Strides(stride).PadSame().UseBias(false).Done()
	return activation.Relu(batchNorm(scope, h))
}

// residualBlock is a ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN, plus
// the identity, then ReLU.
func residualBlock(scope *model.Scope, x *graph.Node) *graph.Node {
	channels := x.Shape().Dimensions[x.Rank()-1]
	h := convBNReLU(scope.In("a"), x, channels, 3, 1)
	b := scope.In("b")
	h = layers.Convolution(b, h).Channels(channels).KernelSize(3).PadSame().UseBias(false).Done()
	h = batchNorm(b, h)
	h.AssertDims(x.Shape().Dimensions...)
	return activation.Relu(graph.Add(h, x))
}

// head is Dense -> BN -> ReLU -> Dropout per hidden size, then Dense(2).
func head(scope *model.Scope, hiddens []int, dropout []float64, x *graph.Node) *graph.Node {
	h := x
	for i, hidden := range hiddens {
		layer := scope.In("hidden%d", i)
		h = layers.Dense(layer, h, true, hidden)
		h = activation.Relu(batchNorm(layer, h))
		h = layers.DropoutStatic(layer, h, dropout[i])
	}
	// Output layer: weights N(0, outputInitStd), zero biases, so both heads
	// start near 0 (positions at the receivers' centroid, sigma ~ softplus(0)
	// = 0.69 degrees) instead of He-initialised outputs ~1 degree apart.
	out := scope.In("out")
	out = out.WithInitializer(func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		if shape.Rank() <= 1 {
			return graph.Zeros(g, shape)
		}
		return graph.MulScalar(out.Store().RandomNormal(g, shape), outputInitStd)
	})
	return layers.Dense(out, h, true, 2)
}

// ParamCount returns the number of trainable parameters of LocalizationNet
// for cfg and the given number of receivers (input channels): conv kernels,
// BN scale/offset, Dense weights and biases (BN running statistics are not
// counted, as in PyTorch). Tests check it against a built model.Store.
//
// With model.mel_profile the count depends on the number of mel bands too;
// ParamCount assumes DefaultMels, ParamCountShape takes the input shape.
func ParamCount(cfg ModelConfig, receivers int) int {
	return ParamCountShape(cfg, [3]int{receivers, DefaultMels, DefaultFrames})
}

// ParamCountShape is ParamCount for the input shape [receivers, n_mels,
// frames].
func ParamCountShape(cfg ModelConfig, shape [3]int) int {
	receivers, mels := shape[0], shape[1]
	widths, depths, _ := cfg.Backbone()
	conv := func(k, in, out int) int { return k*k*in*out + 2*out } // + BN.
	inChannels, headIn := receivers, widths[len(widths)-1]
	if cfg.SharedEncoder() {
		inChannels, headIn = 1, receivers*headIn
	}
	n := conv(cfg.StemKernel, inChannels, widths[0])
	for s, w := range widths {
		if s > 0 {
			n += conv(3, widths[s-1], w)
		}
		n += depths[s] * 2 * conv(3, w, w)
	}
	if cfg.MelProfile {
		if d := cfg.MelProfileDim; d > 0 {
			n += mels*d + d
			headIn += receivers * d
		} else {
			headIn += receivers * mels
		}
	}
	if cfg.Levels > 0 {
		in := receivers * 2 * cfg.Levels
		for _, hidden := range cfg.LevelHidden {
			n += in*hidden + hidden
			in = hidden
		}
		headIn += in
	}
	headN := 0
	in := headIn
	for _, hidden := range cfg.HeadHidden {
		headN += in*hidden + hidden + 2*hidden
		in = hidden
	}
	headN += in*2 + 2
	return n + 2*headN
}

// TrainableParams counts the trainable parameters stored under ModelScope.
func TrainableParams(store *model.Store) int {
	n := 0
	prefix := model.ScopeSeparator + ModelScope + model.ScopeSeparator
	for v := range store.IterVariables() {
		if v.Trainable && strings.HasPrefix(v.Scope()+model.ScopeSeparator, prefix) {
			n += v.Shape().Size()
		}
	}
	return n
}
