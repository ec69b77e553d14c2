package config

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"127.0.0.1:9000", "127.0.0.1:9000"},
		{"http://127.0.0.1:5000", "http://127.0.0.1:5000"},
		{"http://user:pw@127.0.0.1:5000", "http://REDACTED@127.0.0.1:5000"},
		{"https://token@mlflow.example:443/prefix", "https://REDACTED@mlflow.example:443/prefix"},
		{"http://u:p%zz@h:1/x", "http://REDACTED@h:1/x"}, // does not parse
		{"http://u:p@ss@h:1", "http://REDACTED@h:1"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestYAMLRedactsURLUserinfo: a password in the tracking URI or the S3
// endpoint is not in the printed/saved configuration.
func TestYAMLRedactsURLUserinfo(t *testing.T) {
	const pw = "planted-pw-4711"
	cfg, err := Load(Options{Env: func(k string) string {
		return map[string]string{
			"HEIMDALL_TRACKING_URI":   "http://alice:" + pw + "@127.0.0.1:5000",
			"HEIMDALL_STORE_KIND":     "s3",
			"HEIMDALL_STORE_ENDPOINT": "http://bob:" + pw + "@127.0.0.1:9000",
		}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.Tracking.URI, pw) {
		t.Fatalf("the resolved config must keep the credentials for use: %q", cfg.Tracking.URI)
	}
	y, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), pw) || strings.Contains(string(y), "alice") {
		t.Fatalf("YAML has the credentials:\n%s", y)
	}
	for _, want := range []string{"uri: http://REDACTED@127.0.0.1:5000", "endpoint: http://REDACTED@127.0.0.1:9000"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("YAML lacks %q:\n%s", want, y)
		}
	}
}
