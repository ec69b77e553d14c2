package experiment

import (
	"strings"
	"testing"

	"github.com/heimdall-sdr/trainer/config"
)

// TestS3StoreConfig resolves an s3 store from HEIMDALL_STORE_* variables,
// checks that the saved config redacts the credentials and that a missing
// endpoint is an error naming the key. No server is contacted.
func TestS3StoreConfig(t *testing.T) {
	env := map[string]string{
		"HEIMDALL_STORE_KIND":       "s3",
		"HEIMDALL_STORE_ENDPOINT":   "minio.example:9000",
		"HEIMDALL_STORE_USE_TLS":    "false",
		"HEIMDALL_STORE_ACCESS_KEY": "AKIAEXAMPLEKEY",
		"HEIMDALL_STORE_SECRET_KEY": "super/secret+key",
	}
	cfg, err := config.Load(config.Options{Env: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.UseTLS || cfg.Store.Bucket != "heimdall-raw-iq" || cfg.Store.ModelsBucket != "heimdall-models" || cfg.Store.SecretKey != "super/secret+key" {
		t.Fatalf("store = %+v", cfg.Store)
	}
	y, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), "super/secret+key") || strings.Contains(string(y), "AKIAEXAMPLEKEY") {
		t.Fatalf("saved config leaks credentials:\n%s", y)
	}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.String() != "s3://heimdall-raw-iq (minio.example:9000)" {
		t.Fatalf("store %s", st)
	}
	ms, err := OpenModelStore(cfg)
	if err != nil || ms.String() != "s3://heimdall-models (minio.example:9000)" {
		t.Fatalf("model store %v, %v", ms, err)
	}

	delete(env, "HEIMDALL_STORE_ENDPOINT")
	if _, err := config.Load(config.Options{Env: func(k string) string { return env[k] }}); err == nil || !strings.Contains(err.Error(), "store.endpoint") {
		t.Fatalf("missing endpoint: %v", err)
	}
}
