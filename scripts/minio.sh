#!/usr/bin/env bash
# MinIO server for tests and local use, pinned and cached outside the repo.
#
#   scripts/minio.sh build          build (once) and print the server binary's path
#   scripts/minio.sh start STATE    start a server on 127.0.0.1, write STATE/env
#   scripts/minio.sh stop STATE     stop the server started with STATE (by PID)
#
# build: `go install github.com/minio/minio@$MINIO_VERSION` into
#   ${HEIMDALL_CACHE:-$HOME/.cache/heimdall}/minio/$MINIO_VERSION/bin (about 5
#   minutes and 1.5 GB of memory on 2 cores; reused afterwards).
# start: a free port (or MINIO_PORT), data in STATE/data, fresh random
#   credentials, the console off; waits for /minio/health/ready (up to 30 s).
#   STATE/env is a sourceable file:
#     HEIMDALL_TEST_S3_ENDPOINT=127.0.0.1:PORT
#     HEIMDALL_TEST_S3_ACCESS_KEY=... HEIMDALL_TEST_S3_SECRET_KEY=...
#     HEIMDALL_TEST_S3_PID=... HEIMDALL_TEST_S3_STATE=STATE
#     HEIMDALL_TEST_S3_MINIO_BIN=/path/to/minio
#   Starting again with the same STATE after a stop (or a crash) reuses its
#   port, credentials and data: the restart the fault tests need.
#   The log is STATE/minio.log. Credentials are written only to STATE/env
#   (mode 600), never printed.
set -euo pipefail

MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
CACHE=${HEIMDALL_CACHE:-$HOME/.cache/heimdall}
BIN_DIR=$CACHE/minio/$MINIO_VERSION/bin
BIN=$BIN_DIR/minio

die() { echo "minio.sh: $*" >&2; exit 1; }

build() {
	if [[ -x $BIN ]]; then
		echo "$BIN"
		return
	fi
	command -v go >/dev/null || die "go is not on PATH"
	mkdir -p "$BIN_DIR"
	echo "minio.sh: building MinIO $MINIO_VERSION into $BIN_DIR (about 5 minutes, once)" >&2
	local t0=$SECONDS lock=$CACHE/minio/$MINIO_VERSION/.build.lock
	# One build at a time (parallel `make test`s share the cache).
	exec 9>"$lock"
	flock 9
	if [[ ! -x $BIN ]]; then
		# Run outside any module so the repo's go.mod is not involved.
		(cd / && GOFLAGS=-mod=mod GOBIN="$BIN_DIR.tmp.$$" go install "github.com/minio/minio@$MINIO_VERSION") >&2 ||
			{ rm -rf "$BIN_DIR.tmp.$$"; die "go install github.com/minio/minio@$MINIO_VERSION failed"; }
		mv "$BIN_DIR.tmp.$$/minio" "$BIN"
		rm -rf "$BIN_DIR.tmp.$$"
		echo "minio.sh: built in $((SECONDS - t0)) s" >&2
	fi
	exec 9>&-
	echo "$BIN"
}

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

start() {
	local state=${1:?usage: minio.sh start STATE_DIR}
	mkdir -p "$state"
	state=$(cd "$state" && pwd)
	local bin=${MINIO_BIN:-}
	[[ -n $bin ]] || bin=$(build)
	local port user pass
	if [[ -f $state/env ]]; then
		# shellcheck disable=SC1091
		source "$state/env"
		if kill -0 "${HEIMDALL_TEST_S3_PID:-0}" 2>/dev/null; then
			die "already running (pid $HEIMDALL_TEST_S3_PID, $state)"
		fi
		port=${HEIMDALL_TEST_S3_ENDPOINT##*:}
		user=$HEIMDALL_TEST_S3_ACCESS_KEY
		pass=$HEIMDALL_TEST_S3_SECRET_KEY
	else
		port=${MINIO_PORT:-$(free_port)}
		user=heimdall-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
		pass=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	fi
	port_free "$port" || die "port $port is in use"
	local cport
	cport=$(free_port)
	mkdir -p "$state/data"
	MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_BROWSER=off \
		MINIO_UPDATE=off MINIO_CI_CD=1 \
		setsid "$bin" server --quiet --address "127.0.0.1:$port" \
		--console-address "127.0.0.1:$cport" "$state/data" \
		>>"$state/minio.log" 2>&1 </dev/null &
	local pid=$!
	(
		umask 077
		cat >"$state/env.tmp" <<EOF
export HEIMDALL_TEST_S3_ENDPOINT=127.0.0.1:$port
export HEIMDALL_TEST_S3_ACCESS_KEY=$user
export HEIMDALL_TEST_S3_SECRET_KEY=$pass
export HEIMDALL_TEST_S3_PID=$pid
export HEIMDALL_TEST_S3_STATE=$state
export HEIMDALL_TEST_S3_MINIO_BIN=$bin
EOF
		mv "$state/env.tmp" "$state/env"
	)
	local i
	for i in $(seq 300); do
		if curl -fsS -o /dev/null "http://127.0.0.1:$port/minio/health/ready" 2>/dev/null; then
			echo "minio.sh: MinIO ready at 127.0.0.1:$port (pid $pid, $state) after $((i / 10)).$((i % 10)) s" >&2
			echo "$state/env"
			return
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -20 "$state/minio.log" >&2 || true
			die "MinIO exited during start-up (log: $state/minio.log)"
		fi
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	die "MinIO at 127.0.0.1:$port not ready after 30 s (log: $state/minio.log)"
}

stop() {
	local state=${1:?usage: minio.sh stop STATE_DIR}
	[[ -f $state/env ]] || return 0
	local pid
	pid=$(sed -n 's/^export HEIMDALL_TEST_S3_PID=//p' "$state/env")
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || return 0
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
}

case ${1:-} in
build) build ;;
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
*) die "usage: minio.sh build | start STATE_DIR | stop STATE_DIR" ;;
esac
