// Command peerbench is the Go side of the framework comparison
// (bench/peers, `make bench-peers`; benchmark-only, not part of the product):
//
//	peerbench dump  -run RUN_DIR -out DIR
//	    writes the tensors both frameworks use: train_x.npy / train_y.npy
//	    (the first batch_size training samples from the feature cache),
//	    parity_x.npy (4 validation + 4 random inputs) and our native model's
//	    outputs on them (parity_pos.npy, parity_sigma.npy), meta.json.
//	peerbench train -run RUN_DIR -x train_x.npy -y train_y.npy [-backend SPEC]
//	    [-steps N] [-warmup W] [-widths 24,48] [-depths 1,1] [-mode train|eval]
//	    times our training step (forward, backward, AdamW + cosine schedule:
//	    the same graph as trainer.Train builds) or the eval step (forward in
//	    inference mode + loss) on the same batch; prints one JSON object.
//	peerbench onnx -files A.onnx,B.onnx [-batch 1] [-rounds 40] [-per 25]
//	    times .onnx files in ONNX Runtime from Go, interleaved (rounds of
//	    -per runs of each file in turn): our export through onnx.Session,
//	    others (PyTorch's export) through a plain session with the same
//	    options; prints one JSON object (p50, p10, min, mean ms per file).
//
// The model and training configuration come from RUN_DIR/config.json (the
// run's saved config); -widths/-depths override the backbone (sub-graph
// timing: the backbone truncated after a stage).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/gomlx/gomlx/ml/train/optimizer/cosineschedule"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/dataset"
	"github.com/heimdall-sdr/trainer/experiment"
	"github.com/heimdall-sdr/trainer/geo"
	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/trainer"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peerbench dump|train|onnx [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "dump":
		err = dump(os.Args[2:])
	case "train":
		err = trainBench(os.Args[2:])
	case "onnx":
		err = onnxBench(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (dump, train, onnx)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

func readRunConfig(runDir string) (trainer.RunConfig, error) {
	var rc trainer.RunConfig
	b, err := os.ReadFile(filepath.Join(runDir, trainer.ConfigFile))
	if err != nil {
		return rc, err
	}
	return rc, json.Unmarshal(b, &rc)
}

// writeNpy writes a little-endian float32 .npy (format 1.0) of any rank
// (the npy package writes rank 1-2 only).
func writeNpy(path string, data []float32, shape ...int) error {
	dims := make([]string, len(shape))
	n := 1
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy %s: %d values for shape %v", path, len(data), shape)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	buf := make([]byte, 0, 10+len(header)+4*len(data))
	buf = append(buf, "\x93NUMPY\x01\x00"...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
	buf = append(buf, header...)
	for _, v := range data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	return os.WriteFile(path, buf, 0o644)
}

// readNpy reads a little-endian float32 .npy of any rank.
func readNpy(path string) ([]float32, []int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" || b[6] != 1 {
		return nil, nil, fmt.Errorf("npy %s: not a version 1 .npy file", path)
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	header := string(b[10 : 10+hl])
	if !strings.Contains(header, "'<f4'") || strings.Contains(header, "True") {
		return nil, nil, fmt.Errorf("npy %s: want little-endian float32 C order, got %s", path, header)
	}
	i, j := strings.Index(header, "("), strings.Index(header, ")")
	var shape []int
	n := 1
	for _, f := range strings.Split(header[i+1:j], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil {
			return nil, nil, fmt.Errorf("npy %s: shape %s", path, header)
		}
		shape = append(shape, d)
		n *= d
	}
	raw := b[10+hl:]
	if len(raw) != 4*n {
		return nil, nil, fmt.Errorf("npy %s: %d bytes for shape %v", path, len(raw), shape)
	}
	data := make([]float32, n)
	for k := range data {
		data[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
	}
	return data, shape, nil
}

func newBackend(spec string) (compute.Backend, string, error) {
	b, err := backend.Open(backend.Options{Spec: spec}) // "" resolves as training does.
	if err != nil {
		return nil, "", err
	}
	return b.Backend, b.Spec, nil
}

func dump(args []string) error {
	fs := flag.NewFlagSet("dump", flag.ExitOnError)
	runDir := fs.String("run", "", "run directory")
	out := fs.String("out", "", "output directory")
	backendSpec := fs.String("backend", "", "GoMLX backend for the parity outputs (default: as training resolves it)")
	_ = fs.Parse(args)
	if *runDir == "" || *out == "" {
		return fmt.Errorf("dump: -run and -out are required")
	}
	rc, err := readRunConfig(*runDir)
	if err != nil {
		return err
	}
	cfg, err := experiment.RunConfig(*runDir, nil)
	if err != nil {
		return err
	}
	st, err := experiment.OpenStore(cfg)
	if err != nil {
		return err
	}
	ds, err := dataset.Load(context.Background(), st, cfg.Features, cfg.Dataset, os.Stderr)
	if err != nil {
		return err
	}
	shape := rc.InputShape
	per := shape[0] * shape[1] * shape[2]
	bs := rc.Train.BatchSize
	if ds.Train.Len() < bs {
		return fmt.Errorf("dump: %d training samples, need a batch of %d", ds.Train.Len(), bs)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := writeNpy(filepath.Join(*out, "train_x.npy"), ds.Train.X[:bs*per], bs, shape[0], shape[1], shape[2]); err != nil {
		return err
	}
	if err := writeNpy(filepath.Join(*out, "train_y.npy"), ds.Train.Y[:bs*2], bs, 2); err != nil {
		return err
	}
	// Parity inputs: 4 real validation samples + 4 standard-normal ones.
	nVal := min(4, ds.Val.Len())
	px := append([]float32(nil), ds.Val.X[:nVal*per]...)
	px = append(px, onnx.RandomInputs(shape, 4, 1).X...)
	n := nVal + 4
	if err := writeNpy(filepath.Join(*out, "parity_x.npy"), px, n, shape[0], shape[1], shape[2]); err != nil {
		return err
	}
	backend, spec, err := newBackend(*backendSpec)
	if err != nil {
		return err
	}
	defer backend.Finalize()
	m, err := trainer.LoadModel(backend, *runDir)
	if err != nil {
		return err
	}
	pos, sigma, err := m.Predict(px, n)
	if err != nil {
		return err
	}
	if err := writeNpy(filepath.Join(*out, "parity_pos.npy"), pos, n, 2); err != nil {
		return err
	}
	if err := writeNpy(filepath.Join(*out, "parity_sigma.npy"), sigma, n, 2); err != nil {
		return err
	}
	lat, lon := geo.Centroid(geo.Receivers)
	meta := map[string]any{
		"centroid":       []float64{lat, lon},
		"run_dir":        *runDir,
		"checkpoint":     m.Checkpoint,
		"backend":        spec,
		"run_config":     rc,
		"parity_inputs":  fmt.Sprintf("%d validation + 4 random (seed 1)", nVal),
		"train_samples":  ds.Train.Len(),
		"train_batch_of": bs,
	}
	b, _ := json.MarshalIndent(meta, "", "  ")
	return os.WriteFile(filepath.Join(*out, "meta.json"), append(b, '\n'), 0o644)
}

func parseInts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func trainBench(args []string) error {
	fs := flag.NewFlagSet("train", flag.ExitOnError)
	runDir := fs.String("run", "", "run directory (its config.json gives model and train config)")
	xPath := fs.String("x", "", "batch inputs .npy [batch, receivers, n_mels, frames]")
	yPath := fs.String("y", "", "batch labels .npy [batch, 2]")
	backendSpec := fs.String("backend", "", "GoMLX backend spec (default: as training resolves it)")
	steps := fs.Int("steps", 20, "timed steps")
	warmup := fs.Int("warmup", 3, "warm-up steps (the first compiles)")
	widths := fs.String("widths", "", "override model widths (comma-separated)")
	depths := fs.String("depths", "", "override model depths")
	mode := fs.String("mode", "train", "train: full training step; eval: forward in inference mode + loss")
	maxTime := fs.Duration("max-time", 5*time.Minute, "stop timing after this long (at least 2 timed steps)")
	_ = fs.Parse(args)
	rc, err := readRunConfig(*runDir)
	if err != nil {
		return err
	}
	mcfg, tcfg := rc.Model, rc.Train
	if w, err := parseInts(*widths); err != nil {
		return err
	} else if w != nil {
		mcfg.Widths = w
	}
	if d, err := parseInts(*depths); err != nil {
		return err
	} else if d != nil {
		mcfg.Depths = d
	}
	if err := mcfg.Validate(); err != nil {
		return err
	}
	x, xs, err := readNpy(*xPath)
	if err != nil {
		return err
	}
	y, _, err := readNpy(*yPath)
	if err != nil {
		return err
	}
	batch := xs[0]
	backend, spec, err := newBackend(*backendSpec)
	if err != nil {
		return err
	}
	defer backend.Finalize()

	store := model.NewStore()
	store.SetParam(model.JoinPath(model.RootScopePath, model.ParamInitialSeed), tcfg.Seed)
	// The same graph as trainer.newTrainer: cosine schedule, LocalizationNet,
	// Gaussian NLL, AdamW, the four training metrics.
	modelFn := func(scope *model.Scope, inputs []*graph.Node) []*graph.Node {
		g := inputs[0].Graph()
		if scope.IsTraining(g) {
			cosineschedule.New(scope, g, dtypes.Float32).LearningRate(tcfg.LearningRate).
				MinLearningRate(tcfg.MinLearningRate).PeriodSteps(1_000_000).Done()
		}
		pos, sigma := trainer.LocalizationNet(scope.In(trainer.ModelScope), mcfg, inputs[0])
		return []*graph.Node{pos, sigma}
	}
	lossFn := func(labels, p []*graph.Node) *graph.Node { return trainer.GaussianNLL(labels[0], p[0], p[1]) }
	opt := optimizer.Adam().LearningRate(tcfg.LearningRate).WeightDecay(tcfg.WeightDecay).Done()
	tr := train.NewTrainer(backend, store, modelFn, lossFn, opt, nil, nil)

	var loss float64
	step := func() error {
		in := tensors.FromFlatDataAndDimensions(append([]float32(nil), x...), xs...)
		lab := tensors.FromFlatDataAndDimensions(append([]float32(nil), y...), batch, 2)
		b := train.Batch{Inputs: []*tensors.Tensor{in}, Labels: []*tensors.Tensor{lab}}
		var ms []*tensors.Tensor
		var err error
		if *mode == "eval" {
			ms, err = tr.EvalStep(b)
		} else {
			ms, err = tr.TrainStep(b)
		}
		if err != nil {
			return err
		}
		for i, m := range ms {
			if i == 0 {
				if v, ok := m.Value().(float32); ok {
					loss = float64(v)
				}
			}
			_ = m.FinalizeAll()
		}
		return nil
	}
	t0 := time.Now()
	if err := step(); err != nil {
		return err
	}
	first := time.Since(t0).Seconds()
	for range max(0, *warmup-1) {
		if err := step(); err != nil {
			return err
		}
	}
	var times []float64
	start := time.Now()
	for i := 0; i < *steps; i++ {
		t := time.Now()
		if err := step(); err != nil {
			return err
		}
		times = append(times, time.Since(t).Seconds())
		if i >= 1 && time.Since(start) > *maxTime {
			break
		}
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	w, d, _ := mcfg.Backbone()
	res := map[string]any{
		"framework":           "gomlx",
		"backend":             spec,
		"backend_description": backend.Description(),
		"mode":                *mode,
		"batch":               batch,
		"widths":              w,
		"depths":              d,
		"receiver_encoder":    mcfg.ReceiverEncoder,
		"params":              trainer.ParamCount(mcfg, xs[1]),
		"first_step_s":        first,
		"steps":               len(times),
		"step_times_s":        times,
		"median_step_s":       med,
		"samples_per_s":       float64(batch) / med,
		"last_loss":           loss,
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return nil
}
