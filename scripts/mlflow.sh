#!/usr/bin/env bash
# MLflow tracking server for tests and local use, pinned (scripts/requirements-mlflow.txt)
# in a virtualenv cached outside the repo (scripts/pyvenv.sh).
#
#   scripts/mlflow.sh venv                     install (once) and print the venv's path
#   scripts/mlflow.sh start STATE [--postgres] start a server on 127.0.0.1, write STATE/env
#   scripts/mlflow.sh stop STATE               stop what start STATE started (by PID)
#   scripts/mlflow.sh run [--postgres]         start in a temp STATE, print the URI, stay in
#                                              the foreground until Ctrl-C, then stop and clean up
#
# start: a free port (or MLFLOW_PORT); backend store SQLite in STATE/mlflow.db, or,
#   with --postgres (or HEIMDALL_MLFLOW_BACKEND=postgres), a throwaway PostgreSQL 15
#   cluster (initdb as the postgres user when run as root, trust auth, loopback only,
#   a free port) like the Heimdall deployment; artifacts served by the server
#   (--serve-artifacts) from STATE/artifacts, or from HEIMDALL_MLFLOW_ARTIFACTS_DESTINATION
#   (e.g. s3://heimdall-mlflow with MLFLOW_S3_ENDPOINT_URL and AWS_* set).
#   Waits for /health (up to 180 s; the first start creates the schema).
#   STATE/env is a sourceable file:
#     HEIMDALL_TEST_MLFLOW_URI=http://127.0.0.1:PORT
#     HEIMDALL_TEST_MLFLOW_PID=...  (server process group leader)
#     HEIMDALL_TEST_MLFLOW_BACKEND=sqlite|postgres
#     HEIMDALL_TEST_MLFLOW_STATE=STATE
#   start prints the env file's path on stdout. Starting again with the same STATE
#   after a stop reuses its port, store and artifacts.
#   Logs: STATE/mlflow.log (server), STATE/postgres.log.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "mlflow.sh: $*" >&2; exit 1; }

venv() { "$HERE/pyvenv.sh" mlflow "$HERE/requirements-mlflow.txt"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 40000))
		if port_free "$p"; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# as_pg runs a PostgreSQL tool as the postgres user when we are root (initdb
# refuses root), else as ourselves.
as_pg() {
	if [[ $(id -u) == 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# start_postgres STATE: a fresh cluster in its own directory (the postgres user
# must own it and reach it, so it is not under STATE), recorded in STATE/pg.env.
start_postgres() {
	local state=$1 pgdir pgport
	[[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 not found in $PG_BIN (apt-get install postgresql-15, or set PG_BIN)"
	if [[ -f $state/pg.env ]]; then
		# shellcheck disable=SC1091
		source "$state/pg.env"
		pgdir=$PGDIR pgport=$PGPORT
	else
		pgdir=$(mktemp -d "${TMPDIR:-/tmp}/heimdall-pg.XXXXXX")
		pgport=$(free_port)
		[[ $(id -u) == 0 ]] && chown postgres: "$pgdir"
		as_pg "$PG_BIN/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 >"$state/postgres.log" 2>&1 ||
			{ tail -20 "$state/postgres.log" >&2; die "initdb failed (log: $state/postgres.log)"; }
		printf 'PGDIR=%q\nPGPORT=%q\n' "$pgdir" "$pgport" >"$state/pg.env"
	fi
	port_free "$pgport" || die "postgres port $pgport is in use"
	as_pg "$PG_BIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $pgport -k $pgdir -c fsync=off -c full_page_writes=off" start >/dev/null ||
		{ tail -20 "$pgdir/postgres.log" >&2; die "postgres did not start (log: $pgdir/postgres.log)"; }
	if ! as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$pgport" -U postgres -tAc "select 1 from pg_database where datname='mlflow'" | grep -q 1; then
		as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$pgport" -U postgres mlflow
	fi
	echo "postgresql+psycopg2://postgres@127.0.0.1:$pgport/mlflow"
}

stop_postgres() {
	local state=$1
	[[ -f $state/pg.env ]] || return 0
	# shellcheck disable=SC1091
	source "$state/pg.env"
	if [[ -f $PGDIR/data/postmaster.pid ]]; then
		as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
	fi
}

start() {
	local state=${1:?usage: mlflow.sh start STATE_DIR [--postgres]}
	local backend=${HEIMDALL_MLFLOW_BACKEND:-sqlite}
	[[ ${2:-} == --postgres ]] && backend=postgres
	mkdir -p "$state"
	state=$(cd "$state" && pwd)
	local py port store dest
	py=$(venv)/bin
	if [[ -f $state/env ]]; then
		# shellcheck disable=SC1091
		source "$state/env"
		kill -0 "${HEIMDALL_TEST_MLFLOW_PID:-0}" 2>/dev/null && die "already running (pid $HEIMDALL_TEST_MLFLOW_PID, $state)"
		port=${HEIMDALL_TEST_MLFLOW_URI##*:}
		backend=$HEIMDALL_TEST_MLFLOW_BACKEND
	else
		port=${MLFLOW_PORT:-$(free_port)}
	fi
	port_free "$port" || die "port $port is in use"
	case $backend in
	sqlite) store="sqlite:///$state/mlflow.db" ;;
	postgres) store=$(start_postgres "$state") ;;
	*) die "unknown backend $backend (sqlite or postgres)" ;;
	esac
	dest=${HEIMDALL_MLFLOW_ARTIFACTS_DESTINATION:-$state/artifacts}
	mkdir -p "$state/artifacts"
	local t0=$SECONDS
	# setsid: the server and its workers form one process group, stopped together.
	MLFLOW_HOME=$state setsid "$py/mlflow" server --host 127.0.0.1 --port "$port" \
		--backend-store-uri "$store" --serve-artifacts --artifacts-destination "$dest" \
		--workers 1 >>"$state/mlflow.log" 2>&1 </dev/null &
	local pid=$!
	cat >"$state/env.tmp" <<EOF
export HEIMDALL_TEST_MLFLOW_URI=http://127.0.0.1:$port
export HEIMDALL_TEST_MLFLOW_PID=$pid
export HEIMDALL_TEST_MLFLOW_BACKEND=$backend
export HEIMDALL_TEST_MLFLOW_STATE=$state
EOF
	mv "$state/env.tmp" "$state/env"
	local i
	for i in $(seq 1800); do
		if curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then
			echo "mlflow.sh: MLflow ($backend) ready at http://127.0.0.1:$port (pid $pid, $state) after $((SECONDS - t0)) s" >&2
			echo "$state/env"
			return
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -30 "$state/mlflow.log" >&2 || true
			stop_postgres "$state"
			die "mlflow server exited during start-up (log: $state/mlflow.log)"
		fi
		sleep 0.1
	done
	stop "$state"
	die "mlflow server at 127.0.0.1:$port not ready after 180 s (log: $state/mlflow.log)"
}

stop() {
	local state=${1:?usage: mlflow.sh stop STATE_DIR}
	[[ -f $state/env ]] || return 0
	local pid
	pid=$(sed -n 's/^export HEIMDALL_TEST_MLFLOW_PID=//p' "$state/env")
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	stop_postgres "$state"
}

# cleanup STATE: stop and remove STATE and the postgres cluster.
cleanup() {
	local state=$1
	stop "$state"
	if [[ -f $state/pg.env ]]; then
		# shellcheck disable=SC1091
		source "$state/pg.env"
		rm -rf "$PGDIR"
	fi
	rm -rf "$state"
}

run() {
	local state env
	state=$(mktemp -d "${TMPDIR:-/tmp}/heimdall-mlflow.XXXXXX")
	trap 'cleanup "$state"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	env=$(start "$state" "$@")
	# shellcheck disable=SC1090
	source "$env"
	echo "MLflow is running; in another shell:"
	echo "  export HEIMDALL_MLFLOW_TRACKING_URI=$HEIMDALL_TEST_MLFLOW_URI"
	echo "Ctrl-C stops it and deletes its store ($state)."
	while kill -0 "$HEIMDALL_TEST_MLFLOW_PID" 2>/dev/null; do sleep 1; done
}

case ${1:-} in
venv) venv ;;
start) start "${2:-}" "${3:-}" ;;
stop) stop "${2:-}" ;;
cleanup) cleanup "${2:?usage: mlflow.sh cleanup STATE_DIR}" ;;
run) run "${2:-}" ;;
*) die "usage: mlflow.sh venv | start STATE_DIR [--postgres] | stop STATE_DIR | cleanup STATE_DIR | run [--postgres]" ;;
esac
