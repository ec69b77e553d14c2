package tracking

import (
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/heimdall-sdr/trainer/redact"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Options is the `tracking` section of the configuration.
type Options struct {
	// URI is the MLflow tracking server, e.g. http://127.0.0.1:5000. Default
	// "": runs are tracked locally in RUN_DIR/tracking only. Set it with
	// --tracking-uri, HEIMDALL_TRACKING_URI or --set tracking.uri=...; when
	// it is empty, HEIMDALL_MLFLOW_TRACKING_URI and then MLFLOW_TRACKING_URI
	// are used (see ResolveURI). User-info in it (http://user:password@host)
	// is sent as basic auth and redacted wherever the URI is printed, saved
	// or logged.
	URI string `mapstructure:"uri" redact:"userinfo"`
	// Experiment is the MLflow experiment (created if missing). Default
	// "heimdall-localization".
	Experiment string `mapstructure:"experiment"`
	// RegisteredModel receives the exported ONNX model as a new version.
	// Default "heimdall-localization-onnx".
	RegisteredModel string `mapstructure:"registered_model"`
	// Stage is the stage a new model version moves to; "" = none. Default
	// "Staging".
	Stage string `mapstructure:"stage"`
	// Alias is pointed at a new model version (stages are deprecated in
	// recent MLflow); "" = none. Default "staging".
	Alias string `mapstructure:"alias"`
	// Register registers RUN_DIR/model.onnx when the run has one. Default true.
	Register bool `mapstructure:"register"`
	// TimeoutS bounds each metadata request to the server, in seconds
	// (artifact uploads get more time by size). Default 30.
	TimeoutS float64 `mapstructure:"timeout_s"`
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		Experiment:      DefaultExperiment,
		RegisteredModel: DefaultRegisteredModel,
		Stage:           StageStaging,
		Alias:           "staging",
		Register:        true,
		TimeoutS:        30,
	}
}

// Validate checks the options, naming the offending key.
func (o Options) Validate() error {
	if o.URI != "" {
		if err := checkURI(o.URI); err != nil {
			return fmt.Errorf("tracking.uri: %w", err)
		}
	}
	if o.Experiment == "" {
		return errors.New("tracking.experiment: must not be empty")
	}
	if o.RegisteredModel == "" {
		return errors.New("tracking.registered_model: must not be empty")
	}
	switch o.Stage {
	case "", "Staging", "Production", "Archived", "None":
	default:
		return fmt.Errorf("tracking.stage: must be Staging, Production, Archived, None or empty, got %q", o.Stage)
	}
	if o.TimeoutS <= 0 {
		return fmt.Errorf("tracking.timeout_s: must be > 0, got %g", o.TimeoutS)
	}
	return nil
}

// ClientOptions are the client settings the options ask for, with the
// credentials of MLflow's own environment variables: MLFLOW_TRACKING_TOKEN
// (bearer) or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (basic).
func (o Options) ClientOptions() ClientOptions {
	co := ClientOptions{Timeout: time.Duration(o.TimeoutS * float64(time.Second))}
	if tok := os.Getenv("MLFLOW_TRACKING_TOKEN"); tok != "" {
		co.Header = http.Header{"Authorization": {"Bearer " + tok}}
	} else if u := os.Getenv("MLFLOW_TRACKING_USERNAME"); u != "" {
		auth := base64.StdEncoding.EncodeToString([]byte(u + ":" + os.Getenv("MLFLOW_TRACKING_PASSWORD")))
		co.Header = http.Header{"Authorization": {"Basic " + auth}}
	}
	return co
}

func checkURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("%q: does not parse as a URL", redact.URL(uri))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: only an http:// or https:// MLflow tracking server is supported (unset it to track locally in RUN_DIR/tracking)", redact.URL(uri))
	}
	return nil
}

// ResolveURI returns the tracking URI to use: configured (the config's
// tracking.uri, which HEIMDALL_TRACKING_URI and --tracking-uri set), else
// HEIMDALL_MLFLOW_TRACKING_URI, else MLFLOW_TRACKING_URI, else "" (local).
// getenv nil means no environment. The second result names the source.
func ResolveURI(configured string, getenv func(string) string) (uri, source string, err error) {
	if configured != "" {
		return strings.TrimSpace(configured), "tracking.uri", checkURI(configured)
	}
	if getenv != nil {
		for _, k := range []string{"HEIMDALL_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"} {
			if v := strings.TrimSpace(getenv(k)); v != "" {
				if err := checkURI(v); err != nil {
					return "", k, fmt.Errorf("%s: %w", k, err)
				}
				return v, k, nil
			}
		}
	}
	return "", "", nil
}
