package devicecheck

// The report: one typed record per stage, written as JSON after each stage.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/storage/local"
)

// StageReport is one stage's outcome.
type StageReport struct {
	Status  string  `json:"status"` // "ok", "error", "timeout", "skipped", "running".
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// LatencyReport is the inference latency at one batch size (Model.Predict:
// host->device copy, run, device->host copy).
type LatencyReport struct {
	Batch     int     `json:"batch"`
	Runs      int     `json:"runs"`
	CompileMs float64 `json:"first_call_ms"` // includes JIT compilation.
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	MeanMs    float64 `json:"mean_ms"`
	SamplesPS float64 `json:"samples_per_s"` // batch / p50.
}

// ParityReport compares two backends' outputs on the same checkpoint and inputs.
type ParityReport struct {
	Reference       string  `json:"reference"`
	Samples         int     `json:"samples"`
	MaxAbsDiff      float64 `json:"max_abs_diff"` // over positions and sigmas (degrees).
	MeanAbsDiff     float64 `json:"mean_abs_diff"`
	PosMaxAbsDiff   float64 `json:"position_max_abs_diff_deg"`
	PosMeanAbsDiff  float64 `json:"position_mean_abs_diff_deg"`
	SigMaxAbsDiff   float64 `json:"sigma_max_abs_diff_deg"`
	SigMeanAbsDiff  float64 `json:"sigma_mean_abs_diff_deg"`
	ReferenceSecond float64 `json:"reference_seconds"` // load + run on the reference.
}

// TrainReport is the timed training run.
type TrainReport struct {
	Preset       string  `json:"preset"`
	Params       int     `json:"params"`
	InputShape   [3]int  `json:"input_shape"`
	Batch        int     `json:"batch"`
	Steps        int64   `json:"steps"`
	MedianStepMs float64 `json:"median_step_ms"`
	SamplesPerS  float64 `json:"samples_per_s"`
	WallSeconds  float64 `json:"wall_seconds"` // compile + steps + final evaluation + checkpoint.
	ValLoss      float64 `json:"val_loss"`
}

// Report is the JSON report of Run.
type Report struct {
	Mode         string                  `json:"mode"`
	Started      string                  `json:"started"`
	Host         string                  `json:"host"`
	GoVersion    string                  `json:"go_version"`
	Backend      string                  `json:"backend"`
	CPUBackend   string                  `json:"cpu_backend"`
	GPUOptions   backend.GPUOptions      `json:"gpu_options"`
	Devices      *backend.DeviceInfo     `json:"devices,omitempty"`
	Train        *TrainReport            `json:"train,omitempty"`
	Latency      []LatencyReport         `json:"latency,omitempty"`
	Parity       *ParityReport           `json:"parity,omitempty"`
	ParityTF32   *ParityReport           `json:"parity_tf32_off,omitempty"`
	Stages       map[string]*StageReport `json:"stages"`
	TotalSeconds float64                 `json:"total_seconds"`
	Complete     bool                    `json:"complete"` // every stage ran (ok, error or skipped by design).
}

// writeReport writes rep as indented JSON atomically; non-finite numbers
// (which JSON cannot hold) are written as -1, as in the run summary.
func writeReport(path string, rep *Report) error {
	fixFloats(reflect.ValueOf(rep))
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return local.WriteFile(path, append(b, '\n'))
}

// fixFloats replaces NaN and Inf float64s reachable from v by -1, in place.
func fixFloats(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			fixFloats(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fixFloats(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			fixFloats(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			fixFloats(v.MapIndex(k))
		}
	case reflect.Float64:
		if f := v.Float(); (math.IsNaN(f) || math.IsInf(f, 0)) && v.CanSet() {
			v.SetFloat(-1)
		}
	}
}
