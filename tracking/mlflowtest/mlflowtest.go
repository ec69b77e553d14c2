// Package mlflowtest gives tests the real MLflow server that make test
// starts (scripts/with-services.sh exports HEIMDALL_TEST_MLFLOW_URI).
package mlflowtest

import (
	"os"
	"testing"
)

// URI returns the test server's URI. Without one the test is skipped, unless
// HEIMDALL_REQUIRE_SERVICES=1 (make test), where it fails.
func URI(t testing.TB) string {
	t.Helper()
	uri := os.Getenv("HEIMDALL_TEST_MLFLOW_URI")
	if uri == "" {
		if os.Getenv("HEIMDALL_REQUIRE_SERVICES") == "1" {
			t.Fatal("HEIMDALL_TEST_MLFLOW_URI is not set but HEIMDALL_REQUIRE_SERVICES=1: the MLflow server did not start (make test starts it with scripts/with-services.sh)")
		}
		t.Skip("HEIMDALL_TEST_MLFLOW_URI is not set: run make test, or start a server with `scripts/mlflow.sh start DIR` and `source DIR/env`")
	}
	return uri
}
