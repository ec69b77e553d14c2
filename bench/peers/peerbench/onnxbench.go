package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/heimdall-sdr/trainer/onnx"
	"github.com/heimdall-sdr/trainer/stats"
)

// onnxRunner runs one .onnx file at one batch size.
type onnxRunner struct {
	file string
	how  string
	run  func() error
	done func()
}

// openONNX opens file: our export (input onnx.InputName) through
// onnx.Session, the product's call path; any other model (PyTorch's export,
// input "x") through a plain onnxruntime_go session with the same options
// (1 intra-op thread, 1 inter-op thread, graph optimisation all), input
// wrapped, outputs allocated by ONNX Runtime, as Python's InferenceSession.run.
func openONNX(file string, x []float32, shape []int64) (*onnxRunner, error) {
	n := int(shape[0])
	mp, data, err := onnx.ReadModel(file)
	if err != nil {
		return nil, err
	}
	g := mp.GetGraph()
	in := g.GetInput()[0].GetName()
	if in == onnx.InputName {
		s, err := onnx.NewSessionFromBytes(data, onnx.SessionOptions{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return &onnxRunner{file: file, how: "onnx.Session (ours)", run: func() error {
			_, _, err := s.Run(x, n)
			return err
		}, done: func() { _ = s.Close() }}, nil
	}
	var outs []string
	for _, o := range g.GetOutput() {
		outs = append(outs, o.GetName())
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, err
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		return nil, err
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{in}, outs, so)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &onnxRunner{file: file, how: "onnxruntime_go DynamicAdvancedSession", run: func() error {
		t, err := ort.NewTensor(ort.NewShape(shape...), x)
		if err != nil {
			return err
		}
		defer t.Destroy()
		vals := make([]ort.Value, len(outs))
		if err := s.Run([]ort.Value{t}, vals); err != nil {
			return err
		}
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
		return nil
	}, done: func() { _ = s.Destroy() }}, nil
}

// onnxBench times several .onnx files from Go at one batch size,
// interleaved: rounds x (per runs of each file in turn), after warm-up.
func onnxBench(args []string) error {
	fs := flag.NewFlagSet("onnx", flag.ExitOnError)
	files := fs.String("files", "", "comma-separated .onnx files")
	batch := fs.Int("batch", 1, "batch size")
	rounds := fs.Int("rounds", 40, "interleaved rounds")
	per := fs.Int("per", 25, "runs of each file per round")
	dims := fs.String("shape", "7,128,32", "input shape after the batch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := onnx.InitRuntime(); err != nil {
		return err
	}
	d, err := parseInts(*dims)
	if err != nil {
		return err
	}
	shape := []int64{int64(*batch)}
	size := *batch
	for _, v := range d {
		shape = append(shape, int64(v))
		size *= v
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, size)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	var rs []*onnxRunner
	for _, f := range strings.Split(*files, ",") {
		r, err := openONNX(f, x, shape)
		if err != nil {
			return err
		}
		defer r.done()
		rs = append(rs, r)
	}
	ms := make([][]float64, len(rs))
	for _, r := range rs {
		for range 20 {
			if err := r.run(); err != nil {
				return fmt.Errorf("%s: %w", r.file, err)
			}
		}
	}
	for range *rounds {
		for i, r := range rs {
			for range *per {
				t0 := time.Now()
				if err := r.run(); err != nil {
					return fmt.Errorf("%s: %w", r.file, err)
				}
				ms[i] = append(ms[i], float64(time.Since(t0).Nanoseconds())/1e6)
			}
		}
	}
	type row struct {
		File  string  `json:"file"`
		How   string  `json:"how"`
		N     int     `json:"n"`
		P50   float64 `json:"p50_ms"`
		P10   float64 `json:"p10_ms"`
		Min   float64 `json:"min_ms"`
		Mean  float64 `json:"mean_ms"`
		Batch int     `json:"batch"`
	}
	var out []row
	for i, r := range rs {
		s := slices.Clone(ms[i])
		slices.Sort(s)
		mean, _ := stats.MeanStd(s)
		out = append(out, row{File: r.file, How: r.how, N: len(s), P50: stats.Percentile(s, 50), P10: stats.Percentile(s, 10), Min: s[0], Mean: mean, Batch: *batch})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(map[string]any{"runtime": "onnxruntime " + onnx.RuntimeVersion() + " from Go", "rows": out})
}
