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
# The version of github.com/planetscale/vtprotobuf in go.mod (grpc-go
# requires this one), so that its generator and the helpers its code imports
# match. Its last tag, v0.6.0, drops an empty message set in a oneof (such as
# SubscribeResponse.drained) when marshalling.
PROTOC_GEN_GO_VTPROTO_VERSION := v0.6.1-0.20240319094008-0393e58bdf10
GRPCURL_VERSION := v1.9.4

# Debian packages the Python example needs (installed by `make examples` only
# when missing): grpcio and protobuf for Debian's /usr/bin/python3, protoc,
# google/protobuf/*.proto (libprotobuf-dev) and grpc_python_plugin to generate
# its stubs (examples/python/gen.sh).
EXAMPLES_APT := python3-grpcio python3-protobuf protobuf-compiler libprotobuf-dev protobuf-compiler-grpc
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

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

.PHONY: examples
examples: build $(BIN)/grpcurl $(BIN)/buf examples/node/node_modules/.package-lock.json examples-python-deps ## Run the Node.js and Python examples and the README's grpcurl recipes against real gateways
	KGATE_GATEWAY=$(BIN)/gateway examples/run.sh
	KGATE_GATEWAY=$(BIN)/gateway examples/readme_recipes.sh

examples/node/node_modules/.package-lock.json: examples/node/package.json examples/node/package-lock.json
	cd examples/node && npm ci --no-audit --no-fund
	touch $@

.PHONY: examples-python-deps
examples-python-deps:
	@if ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null \
		|| ! command -v protoc >/dev/null || ! command -v grpc_python_plugin >/dev/null \
		|| [ ! -f /usr/include/google/protobuf/timestamp.proto ]; then \
		echo "installing Debian packages for the Python example: $(EXAMPLES_APT)"; \
		$(SUDO) apt-get update -qq; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(EXAMPLES_APT); \
	fi

# The descriptors of proto/ with their source info (comments), embedded in
# the binary for server reflection (server/reflection.go): grpcurl describe
# then shows the proto's documentation. The generated Go code keeps none.
REFLECTION_DESCRIPTORS := server/reflection.binpb
GENERATED := gen $(REFLECTION_DESCRIPTORS)

.PHONY: generate
generate: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-go-vtproto ## Regenerate gen/ (protobuf, gRPC and vtprotobuf code) and server/reflection.binpb from proto/ with buf
	buf generate --exclude-path proto/google
	buf build --as-file-descriptor-set --exclude-imports --exclude-path proto/google -o $(REFLECTION_DESCRIPTORS)

.PHONY: checkgenerate
checkgenerate: generate ## Fail when gen/ or server/reflection.binpb differs from what buf generates
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		git status --porcelain -- $(GENERATED); git diff --stat -- $(GENERATED); git diff -- gen | head -50; \
		echo "generated files are stale: run 'make generate' and commit the result" >&2; exit 1; fi

.PHONY: lint
lint: $(BIN)/buf ## Run go vet, gofmt and buf lint/format checks
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); if [ -n "$$out" ]; then echo "gofmt needed: $$out" >&2; exit 1; fi
	buf lint
	buf format -d --exit-code

.PHONY: tools
tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-go-vtproto $(BIN)/grpcurl ## Install the pinned tools into .tmp/bin

$(BIN)/buf:
	go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/protoc-gen-go-vtproto:
	go install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(PROTOC_GEN_GO_VTPROTO_VERSION)
$(BIN)/grpcurl:
	go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

.PHONY: clean
clean: ## Remove built binaries and installed tools
	rm -rf $(TMP)

# Extra flags for cmd/bench, e.g. make bench BENCHFLAGS='--json new.json --compare old.json'
# (see .tmp/bin/bench --help).
BENCHFLAGS ?=

.PHONY: bench
bench: ## Benchmark the gateway against direct librdkafka and a no-op gRPC server in one run (BENCHFLAGS=...)
	go build -o $(BIN)/bench ./cmd/bench
	go build -o $(BIN)/brokerd ./internal/kafkatest/brokerd
	go build -o $(BIN)/gateway ./cmd/gateway
	$(BIN)/bench $(BENCHFLAGS)

.PHONY: bench-profile
bench-profile: ## CPU-profile the gateway under kgate Publish at concurrency 64 for 10 s (BENCHFLAGS='--profile-phase stream', 'subscribe' or 'overload' for the others, '--profile-conc 512') and print pprof -top
	go build -o $(BIN)/bench ./cmd/bench
	go build -o $(BIN)/brokerd ./internal/kafkatest/brokerd
	$(BIN)/bench --cpuprofile $(TMP)/cpu.pprof $(BENCHFLAGS)
	go tool pprof -top -nodecount=30 $(BIN)/bench $(TMP)/cpu.pprof

.PHONY: bench-go
bench-go: ## Run the Go micro-benchmarks (testing.B with -benchmem), no Kafka needed
	go test -run '^$$' -bench . -benchmem ./server ./flowcontrol

# Length of `make soak`, e.g. SOAK_DURATION=2m make soak.
SOAK_DURATION ?= 10m
# Time per fuzz target in `make fuzz`.
FUZZTIME ?= 30s

.PHONY: test-faults
test-faults: ## Run the reliability suite's long cases (bigger loads, RSS bound; no -race) and print the verifier's figures
	go test -tags faults -count=1 -timeout 20m -v ./internal/faulttest ./internal/verify 2>&1 | grep -v '^=== '

.PHONY: soak
soak: ## Publish and subscribe under random faults for SOAK_DURATION (default 10m) and print the verifier's totals
	KGATE_SOAK_DURATION=$(SOAK_DURATION) go test -tags faults -count=1 -timeout $$(( $$(echo $(SOAK_DURATION) | sed -E 's/m$$/*60/; s/s$$//; s/h$$/*3600/') + 600 ))s -v -run '^TestSoak$$' ./internal/faulttest

.PHONY: fuzz
fuzz: ## Fuzz every request validator for FUZZTIME each (default 30s)
	go test -run '^$$' -fuzz '^FuzzValidateTopic$$' -fuzztime $(FUZZTIME) ./kafkaio
	go test -run '^$$' -fuzz '^FuzzFromKafka$$' -fuzztime $(FUZZTIME) ./kafkaio
	go test -run '^$$' -fuzz '^FuzzSubscriptionConfig$$' -fuzztime $(FUZZTIME) ./server
	go test -run '^$$' -fuzz '^FuzzToKafkaMessage$$' -fuzztime $(FUZZTIME) ./server
	go test -run '^$$' -fuzz '^FuzzRequestDuration$$' -fuzztime $(FUZZTIME) ./server
	go test -run '^$$' -fuzz '^FuzzKeepMessages$$' -fuzztime $(FUZZTIME) ./server
	go test -run '^$$' -fuzz '^FuzzHTTPPublishBody$$' -fuzztime $(FUZZTIME) ./server
	go test -run '^$$' -fuzz '^FuzzRedriveProgress$$' -fuzztime $(FUZZTIME) ./kafkaio
	go test -run '^$$' -fuzz '^FuzzCodecAgreesWithProto$$' -fuzztime $(FUZZTIME) ./server
	go test -run '^$$' -fuzz '^FuzzParseAckID$$' -fuzztime $(FUZZTIME) ./flowcontrol
	go test -run '^$$' -fuzz '^FuzzDispatcher$$' -fuzztime $(FUZZTIME) ./flowcontrol
	go test -run '^$$' -fuzz '^FuzzDecodeCommitMetadata$$' -fuzztime $(FUZZTIME) ./flowcontrol
	go test -run '^$$' -fuzz '^FuzzBudget$$' -fuzztime $(FUZZTIME) ./flowcontrol

# The console's browser test: Debian's chromium (installed when missing,
# like the examples' packages) and playwright-core (npm ci in console/e2e),
# against a gateway process and a broker process; screenshots in .tmp/console.
CONSOLE_APT := chromium

.PHONY: console-test
console-test: build $(BIN)/brokerd console/e2e/node_modules/.package-lock.json ## Test the browser console in headless Chromium (Playwright) against a gateway process; screenshots in .tmp/console
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the console test"; \
		$(SUDO) apt-get update -qq; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CONSOLE_APT); \
	fi
	cd console/e2e && KGATE_GATEWAY=$(BIN)/gateway KGATE_BROKERD=$(BIN)/brokerd KGATE_SHOTS=$(TMP)/console \
		timeout 300 node --test --test-concurrency=1 --test-reporter=spec console.test.mjs

console/e2e/node_modules/.package-lock.json: console/e2e/package.json console/e2e/package-lock.json
	cd console/e2e && npm ci --no-audit --no-fund
	touch $@

.PHONY: $(BIN)/brokerd
$(BIN)/brokerd:
	go build -o $@ ./internal/kafkatest/brokerd

.PHONY: bench-console
bench-console: build $(BIN)/brokerd ## Measure what 20 open console pages cost the gateway (CPU, requests/s, bytes/s) under a light load (BENCHFLAGS=--console-pages=N ...)
	go build -o $(BIN)/bench ./cmd/bench
	$(BIN)/bench --only console $(BENCHFLAGS)
