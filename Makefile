# Heimdall trainer. Two commands set up and run everything on a fresh machine:
#   make train   simulate the default dataset if missing, then train on CPU
#   make test    install what the tests need, check formatting/vet, run the tests
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
BIN := bin/heimdall
export GOMLX_NO_AUTO_INSTALL := 1

.PHONY: all build deps ort pyonnx services mlflow train train-gpu cuda-plugin cuda-pins gpu-check simulate baseline test test-race test-postgres lint bench bench-peers clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/heimdall
	$(GO) build -o $(BIN) ./cmd/heimdall

deps: ort ## install the XLA CPU PJRT plugin and ONNX Runtime (cached in ~/.cache/heimdall)
	@scripts/install-pjrt-cpu.sh >/dev/null

ort: ## install the ONNX Runtime library (npm onnxruntime-node, cached in ~/.cache/heimdall)
	@scripts/install-ort.sh >/dev/null

pyonnx: ## python venv with the pinned reference onnx checker (cached in ~/.cache/heimdall)
	@scripts/pyvenv.sh onnx scripts/requirements-onnx.txt >/dev/null

simulate: build ## write the default synthetic dataset into ./data
	$(BIN) simulate

baseline: build ## classical baseline errors on the validation split
	$(BIN) baseline

train: deps build ## the main job: simulate if ./data is empty, then train (configs/default.yaml, CPU)
	time $(BIN) train --simulate

train-gpu: deps build ## train configs/gpu.yaml on CUDA: installs the CUDA PJRT plugin if a GPU is present and none is found; fails fast without a GPU
	@if scripts/install-pjrt-cuda.sh --need; then scripts/install-pjrt-cuda.sh >/dev/null; fi
	time $(BIN) train --config configs/gpu.yaml --simulate

cuda-plugin: build ## install the CUDA PJRT plugin + NVIDIA wheels (~3 GB, cached) and prove it loads (no-GPU answer on a CPU machine)
	@scripts/install-pjrt-cuda.sh >/dev/null
	scripts/install-pjrt-cuda.sh --check

cuda-pins: ## check that every pinned CUDA wheel still resolves on the package index (simple pages only, no download)
	scripts/install-pjrt-cuda.sh --check-pins

gpu-check: ## build .device/heimdall for the GPU device check (docs/GPU.md), then dry-run it on CPU
	scripts/gpu-check.sh build
	scripts/gpu-check.sh run --cpu-dry-run

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

services: ## build the test services: the pinned MinIO server (once, ~5 min), the MLflow server venv and MLflow's client venv (once, ~2 min each); cached in ~/.cache/heimdall
	@scripts/minio.sh build >/dev/null
	@scripts/mlflow.sh venv >/dev/null
	@scripts/pyvenv.sh mlflow-client scripts/requirements-mlflow-client.txt >/dev/null

mlflow: ## run a throwaway local MLflow server in the foreground (prints the URI for HEIMDALL_MLFLOW_TRACKING_URI; Ctrl-C stops it)
	scripts/mlflow.sh run

test: deps pyonnx services lint cuda-pins ## everything the tests need, then all tests with MinIO and MLflow running (stopped afterwards)
	HEIMDALL_REQUIRE_ORT=1 HEIMDALL_REQUIRE_PYTHON=1 \
	HEIMDALL_ONNX_PYTHON=$$(scripts/pyvenv.sh onnx scripts/requirements-onnx.txt)/bin/python \
	HEIMDALL_MLFLOW_PYTHON=$$(scripts/pyvenv.sh mlflow-client scripts/requirements-mlflow-client.txt)/bin/python \
	scripts/with-services.sh bash -c '$(GO) test -count=1 -timeout 30m ./... && $(GO) test -race -count=1 -timeout 10m $(RACE_FAST_PKGS)'

# The race detector's share of make test: the concurrent packages that do not
# pull in GoMLX (whose race build alone takes minutes on 2 cores); make
# test-race covers the rest.
RACE_FAST_PKGS := ./backend/ ./storage/... ./tracking/...

# Packages with concurrency (stage goroutines, prefetch, worker pools, uploads, tracking buffers).
RACE_PKGS := ./backend/ ./devicecheck/ ./trainer/ ./dataset/ ./storage/... ./tracking/... ./experiment/
# -race turns on checkptr, which aborts in GoMLX's pure-Go matmul (github.com/gomlx/compute
# gobackend: pointer arithmetic past an allocation, not a data race); it stays off there only.
RACE_FLAGS := -race -gcflags='github.com/gomlx/compute/...=-d=checkptr=0'

test-race: deps pyonnx services ## the race detector over the packages with concurrency, with MinIO and MLflow running
	HEIMDALL_REQUIRE_ORT=1 HEIMDALL_REQUIRE_PYTHON=1 \
	HEIMDALL_ONNX_PYTHON=$$(scripts/pyvenv.sh onnx scripts/requirements-onnx.txt)/bin/python \
	HEIMDALL_MLFLOW_PYTHON=$$(scripts/pyvenv.sh mlflow-client scripts/requirements-mlflow-client.txt)/bin/python \
	scripts/with-services.sh $(GO) test $(RACE_FLAGS) -count=1 -timeout 30m $(RACE_PKGS)

test-postgres: ## the MLflow tracking tests against MLflow on a throwaway PostgreSQL 15 backend store (like the deployment)
	@scripts/mlflow.sh venv >/dev/null
	HEIMDALL_SERVICES=mlflow HEIMDALL_MLFLOW_BACKEND=postgres \
	scripts/with-services.sh $(GO) test -count=1 -timeout 10m ./tracking/

bench: deps ## go test benchmarks (features, training step, native vs ONNX Runtime inference)
	$(GO) test -run '^$$' -bench . -benchtime 5x ./kernels/ ./trainer/ ./bench/

bench-peers: ## GoMLX vs PyTorch on this machine: parity, training samples/s, inference latency (bench/peers; RUN_DIR=... or a quick run; installs PyTorch, ~5.5 GB venv)
	scripts/bench-peers.sh $(RUN_DIR)

clean: ## remove build outputs, runs and caches in the repo (not ./data)
	rm -rf bin runs .cache
