package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heimdall-sdr/trainer/backend"
	"github.com/heimdall-sdr/trainer/rundir"
	"github.com/heimdall-sdr/trainer/storage/s3/s3test"
	"github.com/heimdall-sdr/trainer/tracking"
	"github.com/heimdall-sdr/trainer/tracking/mlflowtest"
	"github.com/heimdall-sdr/trainer/trainer"
)

// mlflowPython is a python with MLflow's client and the ONNX flavor's
// runtime (scripts/requirements-mlflow-client.txt): $HEIMDALL_MLFLOW_PYTHON,
// else the cached venv of scripts/pyvenv.sh. Missing, the test skips, or
// fails under make test (HEIMDALL_REQUIRE_PYTHON=1).
func mlflowPython(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HEIMDALL_MLFLOW_PYTHON"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "scripts", "requirements-mlflow-client.txt")); err == nil {
		sum := sha256.Sum256(b)
		cache := os.Getenv("HEIMDALL_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "heimdall")
		}
		dir := filepath.Join(cache, "venv", "mlflow-client-"+hex.EncodeToString(sum[:])[:12])
		if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
			return filepath.Join(dir, "bin", "python")
		}
	}
	const install = "scripts/pyvenv.sh mlflow-client scripts/requirements-mlflow-client.txt"
	if os.Getenv("HEIMDALL_REQUIRE_PYTHON") != "" {
		t.Fatalf("MLflow's Python client required: set HEIMDALL_MLFLOW_PYTHON or run %s", install)
	}
	t.Skipf("MLflow's Python client not installed (%s; make test installs it)", install)
	return ""
}

// TestRegisteredModelLoadsInMLflowClient is issue 12's check, on one smoke
// training (sessions and models on MinIO, tracked in MLflow whose artifacts
// are on MinIO), with a password planted in the tracking URI and the S3
// endpoint:
//   - the version is registered from the run's MLflow Model directory model/,
//     in Staging with alias staging, tagged with the published MinIO key;
//   - MLflow's own Python client loads models:/NAME@staging with mlflow.onnx
//     and mlflow.pyfunc, whose predict on validation inputs equals the GoMLX
//     model to 1e-5 mean absolute error per output; get_model_info has the
//     signature; download_artifacts gives MLmodel, model.onnx, model.json;
//   - promoting two versions to Production in turn leaves exactly one there,
//     carrying the alias production;
//   - heimdall export registers the re-export as a new version in Staging;
//     heimdall models publish tags the run's versions with the MinIO key;
//   - the password is in no file of the run directory, no run param or tag,
//     no model version tag and no log line.
func TestRegisteredModelLoadsInMLflowClient(t *testing.T) {
	needORT(t)
	py := mlflowPython(t)
	uri := mlflowtest.URI(t)
	srv := s3test.Shared(t)
	ctx := context.Background()

	pw := fmt.Sprintf("planted-pw-%08x", rand.Uint32())
	tu, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	tu.User = url.UserPassword("heimdall", pw) // the test server has no auth: the header is ignored
	model := "heimdall-localization-onnx-test-" + formatHex(rand.Uint32())
	cfg := s3Config(t, srv, s3test.Bucket(t),
		"store.endpoint=http://minio:"+pw+"@"+srv.Endpoint, "store.models_bucket="+s3test.Bucket(t),
		"simulate.sessions=24", "train.epochs=2", "export.max_mae=1e-4",
		"tracking.uri="+tu.String(), "tracking.experiment=heimdall-test-mlmodel-"+formatHex(rand.Uint32()),
		"tracking.registered_model="+model)
	var log strings.Builder
	start := time.Now()
	res, err := Train(ctx, cfg, TrainOptions{SimulateIfEmpty: true, Log: &log, Progress: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("smoke training: %.1fs", time.Since(start).Seconds())
	if res.Published == nil || res.Tracking == nil || res.Tracking.Failed {
		t.Fatalf("published %+v, tracking %+v\n%s", res.Published, res.Tracking, log.String())
	}
	for _, f := range []string{tracking.MLmodelFile, "model.onnx", "model.json", "requirements.txt", "python_env.yaml", "input_example.json"} {
		if _, err := os.Stat(filepath.Join(res.RunDir, rundir.MLflowModelDir, f)); err != nil {
			t.Errorf("MLflow Model directory: %v", err)
		}
	}

	c, err := tracking.NewClient(uri, tracking.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := c.ModelVersionByAlias(ctx, model, "staging")
	if err != nil {
		t.Fatalf("registered model: %v\n%s", err, log.String())
	}
	tags := map[string]string{}
	for _, tg := range v1.Tags {
		tags[tg.Key] = tg.Value
	}
	if v1.CurrentStage != tracking.StageStaging || v1.RunID != res.Tracking.RunID ||
		!strings.HasSuffix(v1.Source, "/"+res.Tracking.RunID+"/artifacts/model") || tags["published_key"] != res.Published.Key {
		t.Errorf("version %+v (want stage Staging, source the run's model/, tag published_key %s)", v1, res.Published.Key)
	}

	// The GoMLX model's answer on validation inputs.
	val, err := ValidationInputs(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := backend.Open(cfg.Run.BackendOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	m, err := trainer.LoadModel(opened.Backend, res.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	n := min(8, val.N)
	shape := m.Config.InputShape
	per := shape[0] * shape[1] * shape[2]
	x := val.X[:n*per]
	pos, sig, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	xFile := filepath.Join(t.TempDir(), "x.f32")
	if err := os.WriteFile(xFile, f32Bytes(x), 0o644); err != nil {
		t.Fatal(err)
	}

	// A second version from the same source, then promote 2 and 1 in turn.
	v2, err := c.CreateModelVersion(ctx, tracking.CreateModelVersionRequest{Name: model, Source: v1.Source, RunID: v1.RunID})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{v2.Version, v1.Version} {
		if _, _, err := PromoteModel(ctx, cfg, v, tracking.StageProduction); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.SearchModelVersions(ctx, model, "")
	if err != nil {
		t.Fatal(err)
	}
	var inProd []string
	for _, v := range all {
		if v.CurrentStage == tracking.StageProduction {
			inProd = append(inProd, v.Version)
		}
	}
	if prod, err := c.ModelVersionByAlias(ctx, model, "production"); err != nil || len(inProd) != 1 || inProd[0] != v1.Version || prod.Version != v1.Version {
		t.Errorf("after promoting %s then %s: in Production %v, alias production %+v (%v)", v2.Version, v1.Version, inProd, prod, err)
	}
	if got, _ := c.GetModelVersion(ctx, model, v2.Version); got == nil || got.CurrentStage != "Archived" {
		t.Errorf("version %s after the next promotion: %+v, want Archived", v2.Version, got)
	}

	// MLflow's own client, as the inference service uses it.
	out := filepath.Join(t.TempDir(), "client.json")
	cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "mlflow_client_check.py"), model, xFile,
		fmt.Sprintf("%d,%d,%d,%d", n, shape[0], shape[1], shape[2]), out)
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+uri)
	start = time.Now()
	pyOut, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("MLflow client: %v\n%s", err, pyOut)
	}
	t.Logf("MLflow Python client checks: %.1fs", time.Since(start).Seconds())
	var got struct {
		MLflowVersion          string   `json:"mlflow_version"`
		ONNXInputs             []string `json:"onnx_inputs"`
		ONNXOutputs            []string `json:"onnx_outputs"`
		Positions              pyArray  `json:"positions"`
		Sigmas                 pyArray  `json:"uncertainties"`
		Signature              struct{ Inputs, Outputs []map[string]any }
		Flavors                []string `json:"flavors"`
		LoaderModule           string   `json:"loader_module"`
		Files                  []string `json:"files"`
		ProductionAliasVersion string   `json:"production_alias_version"`
		ProductionLoads        string   `json:"production_loads"`
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.MLflowVersion != tracking.MLflowVersion || !slices.Equal(got.ONNXInputs, []string{"mel_spectrogram"}) ||
		!slices.Equal(got.ONNXOutputs, []string{"positions", "uncertainties"}) {
		t.Errorf("mlflow.onnx.load_model: mlflow %s, inputs %v, outputs %v", got.MLflowVersion, got.ONNXInputs, got.ONNXOutputs)
	}
	for _, o := range []struct {
		name string
		got  pyArray
		want []float32
	}{{"positions", got.Positions, pos}, {"uncertainties", got.Sigmas, sig}} {
		if o.got.DType != "float32" || !slices.Equal(o.got.Shape, []int{n, 2}) || len(o.got.Values) != len(o.want) {
			t.Errorf("pyfunc predict %s: %s %v with %d values, want float32 [%d 2]", o.name, o.got.DType, o.got.Shape, len(o.got.Values), n)
			continue
		}
		var sum float64
		for i, v := range o.want {
			sum += math.Abs(o.got.Values[i] - float64(v))
		}
		mae := sum / float64(len(o.want))
		t.Logf("pyfunc predict vs GoMLX, %s: mean abs error %.3g on %d validation inputs", o.name, mae, n)
		if mae > 1e-5 {
			t.Errorf("pyfunc predict vs GoMLX, %s: mean abs error %.3g > 1e-5", o.name, mae)
		}
	}
	wantIn := fmt.Sprintf(`[{"name":"mel_spectrogram","tensor-spec":{"dtype":"float32","shape":[-1,%d,%d,%d]},"type":"tensor"}]`, shape[0], shape[1], shape[2])
	wantOut := `[{"name":"positions","tensor-spec":{"dtype":"float32","shape":[-1,2]},"type":"tensor"},{"name":"uncertainties","tensor-spec":{"dtype":"float32","shape":[-1,2]},"type":"tensor"}]`
	if gi, _ := json.Marshal(got.Signature.Inputs); string(gi) != wantIn {
		t.Errorf("get_model_info signature inputs %s, want %s", gi, wantIn)
	}
	if goo, _ := json.Marshal(got.Signature.Outputs); string(goo) != wantOut {
		t.Errorf("get_model_info signature outputs %s, want %s", goo, wantOut)
	}
	if !slices.Equal(got.Flavors, []string{"onnx", "python_function"}) || got.LoaderModule != "mlflow.onnx" {
		t.Errorf("flavors %v, loader %s", got.Flavors, got.LoaderModule)
	}
	for _, f := range []string{"MLmodel", "model.onnx", "model.json"} {
		if !slices.Contains(got.Files, f) {
			t.Errorf("download_artifacts(%s) lacks %s: %v", "models:/"+model+"@staging", f, got.Files)
		}
	}
	if got.ProductionAliasVersion != v1.Version || got.ProductionLoads != "mlflow.onnx" {
		t.Errorf("production alias %s (want %s), loads %q", got.ProductionAliasVersion, v1.Version, got.ProductionLoads)
	}

	// heimdall export: the re-export is logged to the run's model/ and is a
	// new version in Staging; heimdall models publish tags the run's versions.
	start = time.Now()
	if _, err := Export(ctx, res.RunDir, cfg, ExportOptions{Log: &log}); err != nil {
		t.Fatalf("re-export: %v\n%s", err, log.String())
	}
	v3, err := c.ModelVersionByAlias(ctx, model, "staging")
	if err != nil || v3.Version == v1.Version || v3.Version == v2.Version || v3.CurrentStage != tracking.StageStaging || v3.Source != v1.Source {
		t.Errorf("after heimdall export: staging %+v (%v), want a new version from %s", v3, err, v1.Source)
	}
	pub, err := PublishRun(ctx, cfg, res.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.GetModelVersion(ctx, model, v3.Version); err != nil || !hasTagValue(v.Tags, "published_key", pub.Key) {
		t.Errorf("after heimdall models publish: version %+v (%v), want tag published_key %s", v, err, pub.Key)
	}
	t.Logf("heimdall export + models publish: %.1fs", time.Since(start).Seconds())
	if v1, err = c.GetModelVersion(ctx, model, v1.Version); err != nil {
		t.Fatal(err)
	}

	// The planted password: nowhere in the run directory, params, tags or log.
	err = filepath.WalkDir(res.RunDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), pw) {
			t.Errorf("the planted password is in %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), pw) {
		t.Errorf("the planted password is in the log:\n%s", log.String())
	}
	run, err := c.GetRun(ctx, res.Tracking.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(append(append(run.Data.Params, run.Data.Tags...), v1.Tags...), v3.Tags...) {
		if strings.Contains(p.Value, pw) || strings.Contains(p.Key, pw) {
			t.Errorf("the planted password is in MLflow param/tag %s=%s", p.Key, p.Value)
		}
	}
	if params := fmt.Sprint(run.Data.Params); !strings.Contains(params, "REDACTED@") {
		t.Errorf("params do not show the redacted store endpoint: %s", params)
	}
}

func hasTagValue(tags []tracking.Tag, key, value string) bool {
	for _, t := range tags {
		if t.Key == key && t.Value == value {
			return true
		}
	}
	return false
}

type pyArray struct {
	DType  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

func f32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}
