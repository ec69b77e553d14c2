package rundir

// BenchReport is a benchmark's result (BenchFile after export; `heimdall
// bench --json` writes the same record anywhere).
type BenchReport struct {
	Model      string       `json:"model"`
	Checkpoint string       `json:"checkpoint"`
	InputShape [3]int       `json:"input_shape"`
	Date       string       `json:"date"`
	Machine    BenchMachine `json:"machine"`
	Warmup     int          `json:"warmup"`
	Parity     *Parity      `json:"parity"`
	Rows       []BenchRow   `json:"rows"`
	Command    string       `json:"command,omitempty"`
}

// Latency is one path's latency at one batch size.
type Latency struct {
	Iterations int     `json:"iterations"`
	P50ms      float64 `json:"p50_ms"`
	P95ms      float64 `json:"p95_ms"`
	P99ms      float64 `json:"p99_ms"`
	Meanms     float64 `json:"mean_ms"`
	// Throughput is samples per second (batch / mean latency).
	Throughput float64 `json:"throughput_samples_per_s"`
}

// BenchRow is one batch size.
type BenchRow struct {
	Batch  int     `json:"batch"`
	Native Latency `json:"native"`
	ORT    Latency `json:"onnxruntime"`
	// Speedup is native p50 / ORT p50 (> 1: ONNX Runtime is faster).
	Speedup float64 `json:"speedup_native_over_ort"`
}

// BenchMachine describes where the benchmark ran.
type BenchMachine struct {
	CPU            string `json:"cpu"`
	Cores          int    `json:"cores"`
	OS             string `json:"os"`
	GoVersion      string `json:"go_version"`
	Backend        string `json:"gomlx_backend"`
	ORTVersion     string `json:"onnxruntime_version"`
	IntraOpThreads int    `json:"ort_intra_op_threads"`
	GraphOpt       string `json:"ort_graph_optimization"`
}

// WriteBench writes r as RUN_DIR/bench.json, replacing it.
func WriteBench(dir string, r *BenchReport) error {
	mu.Lock()
	defer mu.Unlock()
	return writeJSON(Path(dir, BenchFile), r)
}

// ReadBench reads RUN_DIR/bench.json.
func ReadBench(dir string) (*BenchReport, error) {
	r := &BenchReport{}
	if err := readJSON(Path(dir, BenchFile), r); err != nil {
		return nil, err
	}
	return r, nil
}
