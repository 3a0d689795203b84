# Strict shell, a help target, tools pinned by version into .tmp/bin.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

TMP := $(abspath .tmp)
BIN := $(TMP)/bin
export PATH := $(BIN):$(PATH)
export GOBIN := $(BIN)

BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.4

# Arguments for `make run`, e.g. make run ARGS='--brokers localhost:9092'.
ARGS ?=
# Extra `go test` flags, e.g. make test TESTFLAGS='-run Publish -v'.
TESTFLAGS ?=

.PHONY: help
help: ## Describe the useful make targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "%-16s %s\n", $$1, $$2}'

.PHONY: run
run: build ## Build and run the gateway (embedded in-memory Kafka unless --brokers/KGATE_BROKERS is set)
	exec $(BIN)/gateway $(ARGS)

.PHONY: build
build: ## Build the gateway binary into .tmp/bin/gateway
	go build -o $(BIN)/gateway ./cmd/gateway

.PHONY: test
test: ## Run the test suite with the race detector (KGATE_TEST_BROKERS=host:port uses an external cluster)
	go test -race -count=1 -timeout 9m $(TESTFLAGS) ./...

.PHONY: generate
generate: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## Regenerate gen/ from proto/ with buf
	buf generate

.PHONY: checkgenerate
checkgenerate: generate ## Fail when gen/ differs from what buf generates
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		git status --porcelain -- gen; git diff -- gen | head -50; \
		echo "gen/ is stale: run 'make generate' and commit the result" >&2; exit 1; fi

.PHONY: lint
lint: $(BIN)/buf ## Run go vet, gofmt and buf lint/format checks
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); if [ -n "$$out" ]; then echo "gofmt needed: $$out" >&2; exit 1; fi
	buf lint
	buf format -d --exit-code

.PHONY: tools
tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/grpcurl ## Install the pinned tools into .tmp/bin

$(BIN)/buf:
	go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/grpcurl:
	go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

.PHONY: clean
clean: ## Remove built binaries and installed tools
	rm -rf $(TMP)
