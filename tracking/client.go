package tracking

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/heimdall-sdr/trainer/redact"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClientOptions configure an MLflow REST client; the zero value is usable.
type ClientOptions struct {
	// HTTP is the client used for requests. Default: a new http.Client
	// without an overall timeout (each call has its own, below).
	HTTP *http.Client
	// Timeout bounds each metadata call (runs/create, runs/log-batch, ...).
	// Default 30s.
	Timeout time.Duration
	// UploadBytesPerSecond is the slowest artifact transfer rate tolerated:
	// an artifact call times out after Timeout + size/UploadBytesPerSecond.
	// Default 1 MiB/s.
	UploadBytesPerSecond float64
	// Header is added to every request (e.g. Authorization). Default none.
	Header http.Header
}

// Client is a small client for the MLflow tracking server's REST API 2.0
// (tracking, model registry and the mlflow-artifacts proxy). Every call
// takes ctx first and returns an error naming the endpoint; server-side
// errors are *APIError.
type Client struct {
	base string
	opts ClientOptions
}

// NewClient returns a client for the MLflow server at uri
// (http://host:port[/prefix]).
func NewClient(uri string, o ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(uri, "/"))
	if err != nil {
		return nil, fmt.Errorf("mlflow: tracking uri %q: does not parse", redact.URL(uri))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mlflow: tracking uri %q: only http:// and https:// MLflow servers are supported", redact.URL(uri))
	}
	// Credentials in the URI become basic auth (unless the options carry an
	// Authorization header); the base URI, which reports, logs and the
	// replay state show, never has them.
	// A URI read back from a saved config (user-info REDACTED) has none.
	if u.User != nil {
		if o.Header.Get("Authorization") == "" && u.User.Username() != "REDACTED" {
			pw, _ := u.User.Password()
			h := o.Header.Clone()
			if h == nil {
				h = http.Header{}
			}
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)))
			o.Header = h
		}
		u.User = nil
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.UploadBytesPerSecond <= 0 {
		o.UploadBytesPerSecond = 1 << 20
	}
	return &Client{base: u.String(), opts: o}, nil
}

// URI is the server's base URI, without user-info.
func (c *Client) URI() string { return c.base }

// APIError is an error answer of the MLflow server.
type APIError struct {
	Endpoint   string // e.g. "POST /api/2.0/mlflow/runs/create"
	StatusCode int
	Code       string // MLflow error_code, e.g. RESOURCE_DOES_NOT_EXIST
	Message    string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("mlflow: %s: HTTP %d: %s", e.Endpoint, e.StatusCode, e.Message)
	}
	return fmt.Sprintf("mlflow: %s: HTTP %d %s: %s", e.Endpoint, e.StatusCode, e.Code, e.Message)
}

// IsCode reports whether err is an *APIError with the given MLflow error code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// MLflow error codes used here.
const (
	CodeNotFound      = "RESOURCE_DOES_NOT_EXIST"
	CodeAlreadyExists = "RESOURCE_ALREADY_EXISTS"
)

// call sends a JSON request to /api/2.0/mlflow/<path> and decodes the answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	endpoint := method + " /api/2.0/mlflow/" + path
	u := c.base + "/api/2.0/mlflow/" + path
	var body io.Reader
	if in != nil && method == http.MethodGet {
		q, err := query(in)
		if err != nil {
			return fmt.Errorf("mlflow: %s: %w", endpoint, err)
		}
		u += "?" + q
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("mlflow: %s: encode request: %w", endpoint, err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("mlflow: %s: %w", endpoint, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req, endpoint, out)
}

func (c *Client) do(req *http.Request, endpoint string, out any) error {
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("mlflow: %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("mlflow: %s: read answer: %w", endpoint, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Endpoint: endpoint, StatusCode: resp.StatusCode}
		var e struct {
			Code    string `json:"error_code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil && (e.Code != "" || e.Message != "") {
			ae.Code, ae.Message = e.Code, e.Message
		} else {
			ae.Message = strings.TrimSpace(string(b))
			if len(ae.Message) > 500 {
				ae.Message = ae.Message[:500] + "..."
			}
		}
		return ae
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("mlflow: %s: decode answer: %w", endpoint, err)
	}
	return nil
}

// query encodes a flat struct or map as URL query parameters via JSON.
func query(in any) (string, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	v := url.Values{}
	for k, x := range m {
		switch x := x.(type) {
		case string:
			v.Set(k, x)
		case float64:
			v.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
		case bool:
			v.Set(k, strconv.FormatBool(x))
		case []any:
			for _, e := range x {
				v.Add(k, fmt.Sprint(e))
			}
		default:
			v.Set(k, fmt.Sprint(x))
		}
	}
	return v.Encode(), nil
}

// Float is a metric value; NaN and ±Inf travel as the strings protobuf's
// JSON mapping uses ("NaN", "Infinity", "-Infinity").
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "NaN":
			*f = Float(math.NaN())
		case "Infinity":
			*f = Float(math.Inf(1))
		case "-Infinity":
			*f = Float(math.Inf(-1))
		default:
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("metric value %q: %w", s, err)
			}
			*f = Float(v)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Int64 is an int64 that protobuf's JSON mapping may send as a string.
type Int64 int64

// UnmarshalJSON implements json.Unmarshaler.
func (i *Int64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*i = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return err
	}
	*i = Int64(v)
	return nil
}

// Metric is one metric value at a step.
type Metric struct {
	Key       string `json:"key"`
	Value     Float  `json:"value"`
	Timestamp Int64  `json:"timestamp"` // Unix milliseconds.
	Step      Int64  `json:"step"`
}

// MarshalJSON writes the int64 fields as numbers.
func (m Metric) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Key       string `json:"key"`
		Value     Float  `json:"value"`
		Timestamp int64  `json:"timestamp"`
		Step      int64  `json:"step"`
	}{m.Key, m.Value, int64(m.Timestamp), int64(m.Step)})
}

// Param is a run parameter.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Tag is a run, registered-model or model-version tag.
type Tag = Param

// Experiment is an MLflow experiment.
type Experiment struct {
	ID               string `json:"experiment_id"`
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location"`
	LifecycleStage   string `json:"lifecycle_stage"`
}

// RunInfo is the info part of an MLflow run.
type RunInfo struct {
	RunID        string `json:"run_id"`
	RunName      string `json:"run_name"`
	ExperimentID string `json:"experiment_id"`
	Status       string `json:"status"`
	StartTime    Int64  `json:"start_time"`
	EndTime      Int64  `json:"end_time"`
	ArtifactURI  string `json:"artifact_uri"`
}

// Run is an MLflow run.
type Run struct {
	Info RunInfo `json:"info"`
	Data struct {
		Metrics []Metric `json:"metrics"` // latest value per key.
		Params  []Param  `json:"params"`
		Tags    []Tag    `json:"tags"`
	} `json:"data"`
}

// ExperimentByName returns the experiment named name; a missing one is an
// *APIError with Code CodeNotFound.
func (c *Client) ExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	if err := c.call(ctx, http.MethodGet, "experiments/get-by-name", map[string]string{"experiment_name": name}, &out); err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// CreateExperiment creates an experiment and returns its id.
func (c *Client) CreateExperiment(ctx context.Context, name string) (string, error) {
	var out struct {
		ID string `json:"experiment_id"`
	}
	if err := c.call(ctx, http.MethodPost, "experiments/create", map[string]string{"name": name}, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// EnsureExperiment returns the id of the experiment named name, creating it
// if needed (also when another client creates it concurrently).
func (c *Client) EnsureExperiment(ctx context.Context, name string) (string, error) {
	e, err := c.ExperimentByName(ctx, name)
	if err == nil {
		if e.LifecycleStage == "deleted" {
			return "", fmt.Errorf("mlflow: experiment %q is deleted: restore it or choose another tracking.experiment", name)
		}
		return e.ID, nil
	}
	if !IsCode(err, CodeNotFound) {
		return "", err
	}
	id, err := c.CreateExperiment(ctx, name)
	if IsCode(err, CodeAlreadyExists) {
		if e, err2 := c.ExperimentByName(ctx, name); err2 == nil {
			return e.ID, nil
		}
	}
	return id, err
}

// CreateRunRequest is the body of runs/create.
type CreateRunRequest struct {
	ExperimentID string `json:"experiment_id"`
	RunName      string `json:"run_name,omitempty"`
	StartTime    int64  `json:"start_time,omitempty"` // Unix ms.
	Tags         []Tag  `json:"tags,omitempty"`
}

// CreateRun creates a run.
func (c *Client) CreateRun(ctx context.Context, r CreateRunRequest) (*Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.call(ctx, http.MethodPost, "runs/create", r, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// GetRun returns a run.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.call(ctx, http.MethodGet, "runs/get", map[string]string{"run_id": runID}, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// Run statuses.
const (
	StatusRunning  = "RUNNING"
	StatusFinished = "FINISHED"
	StatusFailed   = "FAILED"
	StatusKilled   = "KILLED"
)

// UpdateRun sets a run's status and end time (Unix ms; 0 leaves it unset).
func (c *Client) UpdateRun(ctx context.Context, runID, status string, endTime int64) error {
	in := map[string]any{"run_id": runID, "status": status}
	if endTime > 0 {
		in["end_time"] = endTime
	}
	return c.call(ctx, http.MethodPost, "runs/update", in, nil)
}

// SetTag sets one run tag.
func (c *Client) SetTag(ctx context.Context, runID, key, value string) error {
	return c.call(ctx, http.MethodPost, "runs/set-tag", map[string]string{"run_id": runID, "key": key, "value": value}, nil)
}

// Limits of runs/log-batch (MLflow's documented request limits).
const (
	MaxBatchMetrics = 1000
	MaxBatchParams  = 100
	MaxBatchTags    = 100
	MaxBatchItems   = 1000
)

// LogBatch logs metrics, params and tags in as many runs/log-batch calls as
// MLflow's per-request limits need.
func (c *Client) LogBatch(ctx context.Context, runID string, metrics []Metric, params []Param, tags []Tag) error {
	for len(metrics)+len(params)+len(tags) > 0 {
		np := min(len(params), MaxBatchParams)
		nt := min(len(tags), MaxBatchTags, MaxBatchItems-np)
		nm := min(len(metrics), MaxBatchMetrics, MaxBatchItems-np-nt)
		in := struct {
			RunID   string   `json:"run_id"`
			Metrics []Metric `json:"metrics,omitempty"`
			Params  []Param  `json:"params,omitempty"`
			Tags    []Tag    `json:"tags,omitempty"`
		}{runID, metrics[:nm], params[:np], tags[:nt]}
		if err := c.call(ctx, http.MethodPost, "runs/log-batch", in, nil); err != nil {
			return err
		}
		metrics, params, tags = metrics[nm:], params[np:], tags[nt:]
	}
	return nil
}

// MetricHistory returns every logged value of one metric of a run.
func (c *Client) MetricHistory(ctx context.Context, runID, key string) ([]Metric, error) {
	var all []Metric
	token := ""
	for {
		in := map[string]any{"run_id": runID, "metric_key": key, "max_results": 25000}
		if token != "" {
			in["page_token"] = token
		}
		var out struct {
			Metrics []Metric `json:"metrics"`
			Next    string   `json:"next_page_token"`
		}
		if err := c.call(ctx, http.MethodGet, "metrics/get-history", in, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Metrics...)
		if out.Next == "" {
			return all, nil
		}
		token = out.Next
	}
}

// FileInfo is an entry of an artifact listing.
type FileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize Int64  `json:"file_size"`
}

// ListArtifacts lists a run's artifacts under path ("" = the root).
func (c *Client) ListArtifacts(ctx context.Context, runID, path string) ([]FileInfo, error) {
	in := map[string]string{"run_id": runID}
	if path != "" {
		in["path"] = path
	}
	var out struct {
		Files []FileInfo `json:"files"`
	}
	if err := c.call(ctx, http.MethodGet, "artifacts/list", in, &out); err != nil {
		return nil, err
	}
	return out.Files, nil
}

// proxyPath turns a run's artifact URI (mlflow-artifacts:/<exp>/<run>/artifacts,
// also with a //host:port authority) plus a relative path into the path
// under the server's /api/2.0/mlflow-artifacts/artifacts/ proxy.
func proxyPath(artifactURI, rel string) (string, error) {
	u, err := url.Parse(artifactURI)
	if err != nil {
		return "", fmt.Errorf("artifact uri %q: %w", artifactURI, err)
	}
	if u.Scheme != "mlflow-artifacts" {
		return "", fmt.Errorf("artifact uri %q: the server does not proxy artifacts (start it with --serve-artifacts, the default of `mlflow server`); only mlflow-artifacts: locations are supported", artifactURI)
	}
	p := strings.Trim(u.Path, "/")
	rel = strings.Trim(rel, "/")
	if rel != "" {
		p += "/" + rel
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("artifact path %q: empty, . or .. segment", rel)
		}
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/"), nil
}

func (c *Client) artifactTimeout(size int64) time.Duration {
	return c.opts.Timeout + time.Duration(float64(size)/c.opts.UploadBytesPerSecond*float64(time.Second))
}

// UploadArtifact uploads the local file src as rel (e.g. "model/model.onnx")
// under the run artifact URI artifactURI, through the server's artifact proxy.
func (c *Client) UploadArtifact(ctx context.Context, artifactURI, rel, src string) error {
	p, err := proxyPath(artifactURI, rel)
	if err != nil {
		return fmt.Errorf("mlflow: upload %s: %w", rel, err)
	}
	endpoint := "PUT /api/2.0/mlflow-artifacts/artifacts/" + p
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("mlflow: %s: %w", endpoint, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mlflow: %s: %w", endpoint, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.artifactTimeout(st.Size()))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+"/api/2.0/mlflow-artifacts/artifacts/"+p, f)
	if err != nil {
		return fmt.Errorf("mlflow: %s: %w", endpoint, err)
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	return c.do(req, endpoint, nil)
}

// DownloadArtifact writes the artifact rel of the run artifact URI to w.
func (c *Client) DownloadArtifact(ctx context.Context, artifactURI, rel string, w io.Writer) error {
	p, err := proxyPath(artifactURI, rel)
	if err != nil {
		return fmt.Errorf("mlflow: download %s: %w", rel, err)
	}
	endpoint := "GET /api/2.0/mlflow-artifacts/artifacts/" + p
	ctx, cancel := context.WithTimeout(ctx, c.artifactTimeout(1<<30))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/2.0/mlflow-artifacts/artifacts/"+p, nil)
	if err != nil {
		return fmt.Errorf("mlflow: %s: %w", endpoint, err)
	}
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("mlflow: %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		ae := &APIError{Endpoint: endpoint, StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(b))}
		var e struct {
			Code    string `json:"error_code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			ae.Code, ae.Message = e.Code, e.Message
		}
		return ae
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("mlflow: %s: %w", endpoint, err)
	}
	return nil
}
