// Command backendprobe measures GoMLX backends on the probe network of
// docs/BACKENDS.md: training-step time at batch 32, inference latency at
// batch 1, and the losses of the first steps from a backend-independent
// initialisation (so that backends can be compared for correctness).
//
// Backends are compiled in by build constraints: "go" always, "xla" when cgo
// is enabled (and the noxla tag is not set), "onnx" with the onnx tag.
//
//	go run -tags onnx ./backend/internal/backendprobe -backend xla:/abs/plugin.so
//
// It prints one line "RESULT key=value ..." that scripts can collect.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // registers "go"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/core/tensors/images"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/layers/norm"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

var (
	flagBackend    = flag.String("backend", "", "GoMLX backend config, e.g. xla:/abs/pjrt_c_api_cpu_plugin.so, onnx:cpu, go (default: $GOMLX_BACKEND)")
	flagBatch      = flag.Int("batch", 32, "training batch size")
	flagSteps      = flag.Int("steps", 10, "timed training steps (after the warm-up steps)")
	flagCheck      = flag.Int("check", 4, "warm-up steps on one fixed batch whose losses are printed (the first includes JIT compilation)")
	flagInferIters = flag.Int("infer", 50, "timed inference calls at batch 1 (after one warm-up call)")
	flagReceivers  = flag.Int("receivers", 7, "input channels (receivers)")
	flagMels       = flag.Int("mels", 128, "mel bins")
	flagFrames     = flag.Int("frames", 32, "time frames")
	flagNoTrain    = flag.Bool("notrain", false, "only measure inference")
)

// probeNet is the probe network: 3 conv 3x3 (32/64/128, PadSame) + BatchNorm +
// ReLU, global mean pool, Dense 128 + ReLU, two Dense(2) heads (mean and log sigma).
func probeNet(scope *model.Scope, _ any, inputs []*Node) []*Node {
	x := inputs[0] // [batch, receivers, mels, frames], channels first.
	for i, filters := range []int{32, 64, 128} {
		s := scope.In("block%d", i).WithInitializer(detInit(uint64(i)))
		x = layers.Convolution(s, x).ChannelsAxis(images.ChannelsFirst).
			Filters(filters).KernelSize(3).PadSame().Done()
		x = norm.BatchNorm(s, x, 1).UseBackendInference(false).Done()
		x = activation.Relu(x)
	}
	x = ReduceMean(x, 2, 3) // [batch, 128]
	x = activation.Relu(layers.DenseWithBias(scope.In("hidden").WithInitializer(detInit(10)), x, 128))
	mu := layers.DenseWithBias(scope.In("mu").WithInitializer(detInit(11)), x, 2)
	logSigma := layers.DenseWithBias(scope.In("log_sigma").WithInitializer(detInit(12)), x, 2)
	return []*Node{mu, logSigma}
}

// gaussianNLL is the mean Gaussian negative log-likelihood (without the constant).
func gaussianNLL(labels, predictions []*Node) *Node {
	mu, logSigma := predictions[0], predictions[1]
	z := Div(Sub(labels[0], mu), Exp(logSigma))
	return ReduceAllMean(Add(MulScalar(Square(z), 0.5), logSigma))
}

// detInit returns a backend-independent initialiser: values drawn in Go from
// a generator seeded by the layer (a backend's own RNG would differ between
// backends), scaled like He-uniform, embedded as constants. Biases
// (rank <= 1) are zero. Used so that backends can be compared step by step.
func detInit(seed uint64) model.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		if shape.Rank() <= 1 || !shape.DType.IsFloat() {
			return Zeros(g, shape)
		}
		fanIn := shape.Size() / shape.Dimensions[shape.Rank()-1]
		if shape.Rank() > 2 { // conv kernel: fan-in excludes the output channels axis.
			fanIn = shape.Size() / max(shape.Dimensions[0], shape.Dimensions[shape.Rank()-1])
		}
		limit := math.Sqrt(6.0 / float64(fanIn))
		rng := rand.New(rand.NewPCG(42, seed))
		vals := make([]float32, shape.Size())
		for i := range vals {
			vals[i] = float32((rng.Float64()*2 - 1) * limit)
		}
		return ConvertDType(Const(g, tensors.FromFlatDataAndDimensions(vals, shape.Dimensions...)), shape.DType)
	}
}

func makeBatch(rng *rand.Rand, batch int) (x, y *tensors.Tensor) {
	n := batch * *flagReceivers * *flagMels * *flagFrames
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	ys := make([]float32, batch*2)
	for i := range ys {
		ys[i] = float32(rng.Float64()*2 - 1)
	}
	return tensors.FromFlatDataAndDimensions(xs, batch, *flagReceivers, *flagMels, *flagFrames),
		tensors.FromFlatDataAndDimensions(ys, batch, 2)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "backendprobe:", err)
		os.Exit(1)
	}
}

func run() error {
	config := *flagBackend
	if config == "" {
		config = os.Getenv(compute.ConfigEnvVar)
	}
	name, _, _ := strings.Cut(config, ":")
	if !contains(compute.List(), name) {
		return fmt.Errorf("backend %q not compiled in (have %v)", name, compute.List())
	}
	t0 := time.Now()
	backend, err := compute.NewWithConfig(config)
	if err != nil {
		return fmt.Errorf("create backend %q: %w", config, err)
	}
	fmt.Printf("backend %q: %s (created in %s)\n", config, backend.Description(), time.Since(t0).Round(time.Millisecond))

	store := model.NewStore()
	res := []string{"backend=" + config}

	if !*flagNoTrain {
		opt := optimizer.Adam().LearningRate(1e-3).WeightDecay(1e-4).Done()
		trainer := train.NewTrainer(backend, store, train.ModelFn(probeNet), gaussianNLL, opt, nil, nil)
		rng := rand.New(rand.NewPCG(1, 2))
		fx, fy := makeBatch(rng, *flagBatch)
		xs, ys := tensors.MustCopyFlatData[float32](fx), tensors.MustCopyFlatData[float32](fy)
		var losses []string
		var compile time.Duration
		for step := range *flagCheck {
			// TrainStep takes ownership of the tensors: a fresh copy each step.
			x := tensors.FromFlatDataAndDimensions(append([]float32(nil), xs...), fx.Shape().Dimensions...)
			y := tensors.FromFlatDataAndDimensions(append([]float32(nil), ys...), fy.Shape().Dimensions...)
			start := time.Now()
			metrics, err := trainer.TrainStep(train.Batch{Inputs: []*tensors.Tensor{x}, Labels: []*tensors.Tensor{y}})
			if err != nil {
				return fmt.Errorf("train step %d: %w", step, err)
			}
			loss := tensors.MustCopyFlatData[float32](metrics[0])[0]
			if step == 0 {
				compile = time.Since(start)
			}
			losses = append(losses, fmt.Sprintf("%.7g", loss))
			fmt.Printf("check step %d: loss=%.7g (%s)\n", step, loss, time.Since(start).Round(time.Millisecond))
		}
		fmt.Printf("parameters: %d\n", store.NumParameters())
		var times []time.Duration
		cpu0 := cpuTime()
		for step := range *flagSteps {
			x, y := makeBatch(rng, *flagBatch)
			start := time.Now()
			metrics, err := trainer.TrainStep(train.Batch{Inputs: []*tensors.Tensor{x}, Labels: []*tensors.Tensor{y}})
			if err != nil {
				return fmt.Errorf("train step %d: %w", step, err)
			}
			_ = tensors.MustCopyFlatData[float32](metrics[0]) // wait for the result.
			times = append(times, time.Since(start))
		}
		res = append(res, "first_step_ms="+ms(compile), "losses="+strings.Join(losses, ","))
		if len(times) > 0 {
			res = append(res, "train_step_ms_median="+ms(median(times)), "train_step_ms_min="+ms(slices.Min(times)),
				"train_step_cpu_ms="+ms((cpuTime()-cpu0)/time.Duration(len(times))), fmt.Sprintf("train_steps=%d", len(times)))
		}
	}

	// Inference at batch 1 (BatchNorm uses the stored averages).
	infer, err := model.NewExec(backend, store, func(scope *model.Scope, x *Node) []*Node {
		return probeNet(scope, nil, []*Node{x})
	})
	if err != nil {
		return fmt.Errorf("inference exec: %w", err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var itimes []time.Duration
	var firstInfer time.Duration
	for i := range *flagInferIters + 1 {
		x, _ := makeBatch(rng, 1)
		start := time.Now()
		out, err := infer.Exec(x)
		if err != nil {
			return fmt.Errorf("inference: %w", err)
		}
		_ = tensors.MustCopyFlatData[float32](out[0])
		if i == 0 {
			firstInfer = time.Since(start)
		} else {
			itimes = append(itimes, time.Since(start))
		}
	}
	res = append(res, "infer_first_ms="+ms(firstInfer))
	if len(itimes) > 0 {
		res = append(res, "infer_b1_ms_median="+ms(median(itimes)), "infer_b1_ms_min="+ms(slices.Min(itimes)))
	}
	fmt.Println("RESULT " + strings.Join(res, " "))
	return nil
}

// cpuTime is the user+system CPU time of this process so far: less sensitive
// than wall time to other processes sharing the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
