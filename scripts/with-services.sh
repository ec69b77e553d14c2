#!/usr/bin/env bash
# Run a command with the test services up, and take them down afterwards,
# also when the command fails or is interrupted:
#
#   scripts/with-services.sh go test ./...
#
# Each service is a pair of functions start_NAME / stop_NAME below, listed in
# SERVICES (or the HEIMDALL_SERVICES environment variable, space-separated).
# start_NAME starts the service under $STATE/NAME and exports the variables
# the tests read; stop_NAME stops it. To add a service (e.g. mlflow), write
# its two functions and add its name to SERVICES.
#
# The command sees HEIMDALL_REQUIRE_SERVICES=1: tests that need a service
# then fail, rather than skip, when its variables are missing.
set -euo pipefail

SERVICES=${HEIMDALL_SERVICES:-minio mlflow}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=$(mktemp -d "${TMPDIR:-/tmp}/heimdall-services.XXXXXX")
started=()

# --- minio: scripts/minio.sh; exports HEIMDALL_TEST_S3_* ---
start_minio() {
	"$HERE/minio.sh" build >/dev/null
	local env
	env=$("$HERE/minio.sh" start "$STATE/minio")
	# shellcheck disable=SC1090
	source "$env"
}
stop_minio() { "$HERE/minio.sh" stop "$STATE/minio"; }

# --- mlflow: scripts/mlflow.sh; exports HEIMDALL_TEST_MLFLOW_* ---
# SQLite backend store; HEIMDALL_MLFLOW_BACKEND=postgres uses a throwaway
# PostgreSQL 15 cluster instead (make test-postgres).
# When MinIO runs (it starts first), MLflow stores its artifacts in the
# bucket heimdall-mlflow on it, as in the Heimdall deployment; the
# credentials reach the server only, not the tests' environment.
start_mlflow() {
	local env
	if [[ -n ${HEIMDALL_TEST_S3_ENDPOINT:-} ]]; then
		local py
		py=$("$HERE/mlflow.sh" venv)/bin/python
		AWS_ENDPOINT_URL=http://$HEIMDALL_TEST_S3_ENDPOINT AWS_DEFAULT_REGION=us-east-1 \
			AWS_ACCESS_KEY_ID=$HEIMDALL_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$HEIMDALL_TEST_S3_SECRET_KEY \
			"$py" -c 'import boto3; boto3.client("s3").create_bucket(Bucket="heimdall-mlflow")'
		env=$(MLFLOW_S3_ENDPOINT_URL=http://$HEIMDALL_TEST_S3_ENDPOINT AWS_DEFAULT_REGION=us-east-1 \
			AWS_ACCESS_KEY_ID=$HEIMDALL_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$HEIMDALL_TEST_S3_SECRET_KEY \
			HEIMDALL_MLFLOW_ARTIFACTS_DESTINATION=s3://heimdall-mlflow \
			"$HERE/mlflow.sh" start "$STATE/mlflow")
		export HEIMDALL_TEST_MLFLOW_ARTIFACTS=s3://heimdall-mlflow
	else
		env=$("$HERE/mlflow.sh" start "$STATE/mlflow")
	fi
	# shellcheck disable=SC1090
	source "$env"
}
stop_mlflow() { "$HERE/mlflow.sh" cleanup "$STATE/mlflow"; }

# --- add further services here (start_NAME / stop_NAME) ---

cleanup() {
	local rc=$?
	local i
	for ((i = ${#started[@]} - 1; i >= 0; i--)); do
		"stop_${started[i]}" || echo "with-services.sh: stopping ${started[i]} failed" >&2
	done
	rm -rf "$STATE"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for s in $SERVICES; do
	declare -F "start_$s" >/dev/null || { echo "with-services.sh: unknown service $s" >&2; exit 2; }
	started+=("$s")
	"start_$s"
done

export HEIMDALL_REQUIRE_SERVICES=1
"$@"
