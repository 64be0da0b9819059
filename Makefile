# boxoffice: everyday commands. `make run` and `make test` are all a newcomer needs.
GO      ?= go
BIN     := bin/boxoffice
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run build test lint fuzz bench bench-price bench-ingest bench-charts bench-micro soak services clean

## run: build and run every role in one process on embedded defaults (http://localhost:8000)
run: build
	./$(BIN) run

## build: build the binary into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/boxoffice

## test: the whole suite on a fresh machine: as root, start the services and install the test
## tools first (idempotent); then every test with the race detector, ending with one line
## "test: N passed, N failed, N skipped" (scripts/test.sh; TESTARGS='-run X ./pkg' narrows it)
test:
	GO=$(GO) ./scripts/test.sh

## lint: gofmt, tidy modules, staticcheck, golangci-lint (.golangci.yml) and the import rules of the architecture
lint:
	./scripts/lint.sh

## fuzz: run each fuzz target for FUZZTIME (default 30s); new corpus entries land in testdata/
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./provider
	$(GO) test -run='^$$' -fuzz='^FuzzParseJSON$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./provider
	$(GO) test -run='^$$' -fuzz='^FuzzParseWindow$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./httpapi
	$(GO) test -run='^$$' -fuzz='^FuzzSearchQuery$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./httpapi
	$(GO) test -run='^$$' -fuzz='^FuzzCursor$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./httpapi
	$(GO) test -run='^$$' -fuzz='^FuzzZones$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./catalog
	$(GO) test -run='^$$' -fuzz='^FuzzIDTable$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./catalog
	$(GO) test -run='^$$' -fuzz='^FuzzDecodePlansJSON$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./catalog

## bench: cold ingest of 10k, 100k and 1M plans (time until served, peak RSS per process), then load
## /search end to end (wrk, vegeta) beside a trivial handler; results in docs/BENCHMARKS.md
## (BENCH_SIZES=10k,1m BENCH_MODES=embedded,distributed BENCH_DURATION=10s; see bench/doc.go)
bench:
	./scripts/bench.sh

## bench-price: load POST /api/v1/price with cache hits (the seed's locustfile) beside a trivial handler
bench-price:
	BENCH_RUN='^TestBenchPrice$$' ./scripts/bench.sh

## bench-ingest: the cold-ingest table alone (BENCH_INGEST_SIZES=10k,100k,1m; see bench/doc.go)
bench-ingest:
	BENCH_RUN='^TestBenchIngest$$' ./scripts/bench.sh

## soak: SOAK_DURATION (default 10m) of mixed traffic on each mode (BENCH_MODES), reporting each
## process's goroutines, open fds and RSS at the start and end (SOAK_RATE=200 req/s; see bench/doc.go)
soak:
	BENCH_RUN='^TestSoak$$' ./scripts/bench.sh

## bench-charts: redraw docs/bench/*.svg from the tables in docs/BENCHMARKS.md, measuring nothing (make bench draws them from its own run)
bench-charts:
	$(GO) test -tags bench -count=1 -run '^TestCharts$$' ./bench

## bench-micro: Go micro-benchmarks of each stage: MB/s of XML parsed (provider), plans/s spooled and
## decoded (ingest), upserted per store (sqlite; postgres when TEST_DATABASE_WRITE_URL answers),
## indexed (catalog), and the search path (catalog, httpapi)
bench-micro:
	$(GO) test -run='^$$' -bench=. -benchmem ./provider ./ingest ./sqlite ./postgres ./catalog ./httpapi

clean:
	rm -rf bin

## services: start PostgreSQL (primary + streaming replica on :5433), Redis and RabbitMQ on loopback
services:
	./scripts/services.sh
