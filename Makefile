# Heimdall trainer. Two commands set up and run everything on a fresh machine:
#   make train   simulate the default dataset if missing, then train on CPU
#   make test    install what the tests need, check formatting/vet, run the tests
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
BIN := bin/heimdall
export GOMLX_NO_AUTO_INSTALL := 1

.PHONY: all build deps train train-gpu simulate baseline test lint bench clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/heimdall
	$(GO) build -o $(BIN) ./cmd/heimdall

deps: ## install the XLA CPU PJRT plugin (cached in ~/.cache/heimdall)
	@scripts/install-pjrt-cpu.sh >/dev/null

simulate: build ## write the default synthetic dataset into ./data
	$(BIN) simulate

baseline: build ## classical baseline errors on the validation split
	$(BIN) baseline

train: deps build ## the main job: simulate if ./data is empty, then train (configs/default.yaml, CPU)
	time $(BIN) train --simulate

train-gpu: build ## train configs/gpu.yaml on CUDA (fails clearly without a GPU/plugin)
	$(BIN) train --config configs/gpu.yaml --simulate

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: deps lint ## everything the tests need, then all tests
	$(GO) test -count=1 -timeout 30m ./...

bench: deps ## go test benchmarks (features, training step)
	$(GO) test -run '^$$' -bench . -benchtime 5x ./kernels/ ./trainer/

clean: ## remove build outputs, runs and caches in the repo (not ./data)
	rm -rf bin runs .cache
