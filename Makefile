# Aura: `make help` lists the targets. Go fetches the modules go.mod names
# through the module proxy ($GOPROXY) on the first build into an empty module
# cache (`make deps` does it up front, say before going offline); after that
# every target runs offline except `tidy-check`, whose `go mod tidy` may fetch
# modules that only the tests of dependencies use. `proto`/`proto-check` also
# need protoc (apt-get install protobuf-compiler).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X github.com/aura-p2p/aura/internal/buildinfo.version=$(VERSION)
# Short fuzzing in `make test`, long in `make fuzz`.
FUZZTIME_SHORT ?= 3s
FUZZTIME       ?= 60s
# Packages with fuzz targets; every decoder of network or disk bytes has one.
FUZZ_PKGS := ./internal/account ./internal/journal ./internal/journal/lattice ./internal/crdt ./internal/crypto/frost ./internal/crypto/edsig ./internal/transport ./internal/budget ./internal/choreo ./internal/session ./internal/ceremony ./internal/wot ./internal/sync ./internal/sync/riblt ./internal/tree

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build aurad and auractl into ./bin
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/aurad ./cmd/aurad
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/auractl ./cmd/auractl

.PHONY: deps
deps: ## Download the modules go.mod names into the module cache (needs $GOPROXY)
	$(GO) mod download

.PHONY: man
man: build ## Write auractl's man pages, generated from its commands, into bin/man/man1
	$(BIN)/auractl man $(BIN)/man/man1

.PHONY: run
run: build ## Run aurad in the foreground on its embedded defaults
	exec $(BIN)/aurad

.PHONY: test
test: check ## Run every test with -race, plus a short fuzz of every target
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

.PHONY: check
check: lint proto-check sample-conf-check tidy-check ## Static checks: vet, gofmt, generated code, sample config, go.mod

.PHONY: lint
lint: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: proto
proto: ## Regenerate Go code from api/proto (protoc + plugins pinned in go.mod)
	./scripts/genproto.sh

.PHONY: proto-check
proto-check: ## Fail if the committed generated code differs from what the .proto files give
	@if ! command -v protoc >/dev/null; then \
		if [ -n "$${CI:-}" ]; then echo "protoc missing in CI"; exit 1; fi; \
		echo "proto-check skipped: protoc not installed (apt-get install protobuf-compiler)"; exit 0; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	./scripts/genproto.sh $$tmp; \
	diff -r -x '*.proto' $$tmp/aura api/proto/aura || { echo "generated code drifted: run make proto"; exit 1; }

.PHONY: sample-conf
sample-conf: ## Rewrite deploy/aurad.toml.sample from the defaults
	$(GO) run ./cmd/aurad config default > deploy/aurad.toml.sample

.PHONY: sample-conf-check
sample-conf-check: ## Fail if deploy/aurad.toml.sample differs from `aurad config default`
	@diff <($(GO) run ./cmd/aurad config default) deploy/aurad.toml.sample || { echo "run make sample-conf"; exit 1; }

.PHONY: tidy-check
tidy-check: ## Fail if go.mod/go.sum are not tidy
	@# Saved beside nothing shared: two clones on one machine must not
	@# restore each other's go.mod.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp go.mod go.sum "$$tmp"/; \
	$(GO) mod tidy; \
	if ! diff -q go.mod "$$tmp"/go.mod >/dev/null || ! diff -q go.sum "$$tmp"/go.sum >/dev/null; then \
		cp "$$tmp"/go.mod "$$tmp"/go.sum .; echo "go.mod not tidy: run go mod tidy"; exit 1; fi

.PHONY: fuzz
fuzz: ## Fuzz every target for FUZZTIME each (default 60s)
	@# A finding is an input Go writes under testdata/fuzz, which then fails
	@# every later `go test` as a seed. Go 1.26's fuzz coordinator can also
	@# fail a run at the -fuzztime boundary with no input (golang/go#75804,
	@# fixed in Go 1.27): testing.F prints the coordinator's bare error as the
	@# only line under the target's own `--- FAIL`, so exactly that shape,
	@# with no other failure and no input written, is reported, not counted.
	@# Any other failure fails, a "context deadline exceeded" of the target's
	@# own (which carries a file:line and writes an input) included, and
	@# prints go test's whole output. A tolerated run prints one line and
	@# none of go test's, whose FAIL lines would read as a failure.
	@out=; trap 'rm -f "$$out"' EXIT; \
	for pkg in $(FUZZ_PKGS); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$list"; exit 1; }; \
		for target in $$(echo "$$list" | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			out=$$(mktemp); \
			if ! $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -parallel 1 $$pkg >$$out 2>&1; then \
				if grep -q 'Failing input written to' $$out || ! awk -v t="$$target" ' \
					/^[ \t]*--- FAIL: / { fails++ } \
					prev ~ ("^--- FAIL: " t " [(]") && $$0 == "    context deadline exceeded" { hit++ } \
					{ prev = $$0 } \
					END { exit !(hit == 1 && fails == 1) }' $$out; then \
					cat $$out; rm -f $$out; exit 1; fi; \
				echo "  tolerated: golang/go#75804 (fuzz coordinator deadline race at -fuzztime's end; no failure of $$target, no input written)"; \
			fi; \
			rm -f $$out; \
		done; \
	done

.PHONY: bench
bench: ## Run the benchmarks (figures for the issues' notes)
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: clean
clean: ## Remove build outputs
	rm -rf $(BIN)
