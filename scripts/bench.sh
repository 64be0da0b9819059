#!/usr/bin/env bash
# bench.sh: the end-to-end benchmarks (`make bench`). Installs wrk when it is missing,
# builds bin/boxoffice, and runs bench.TestBenchIngest (cold ingest of 10k, 100k and 1M
# plans in each mode) and bench.TestBench, which starts boxoffice on loopback with a
# synthetic catalog, waits for ingest and loads it with wrk and vegeta beside a trivial
# handler serving the same bytes. Settings come from the environment
# (BENCH_SIZES=10k,1m BENCH_MODES=embedded,distributed BENCH_DURATION=10s …; see
# bench/doc.go); the Markdown table is printed at the end and written to BENCH_OUT when set.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get install -y wrk || { $sudo apt-get update && $sudo apt-get install -y wrk; }
fi

GO=${GO:-go}
if [ -z "${BENCH_BIN:-}" ]; then # BENCH_BIN measures another binary, e.g. an older build
  mkdir -p bin
  $GO build -ldflags "-X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -o bin/boxoffice ./cmd/boxoffice
  export BENCH_BIN="$PWD/bin/boxoffice"
fi
echo "bench: measuring $BENCH_BIN ($("$BENCH_BIN" version 2>/dev/null || true)); tree: $(git rev-parse --short HEAD 2>/dev/null || echo '?') with $(git status --porcelain 2>/dev/null | wc -l) changed paths"
# BENCH_RUN picks the benchmarks: TestBenchIngest (cold ingest), TestBench (/search),
# TestBenchLimiter (the rate limiter on against off), TestBenchPrice (POST /api/v1/price).
exec $GO test -tags bench -count=1 -run "${BENCH_RUN:-^TestBench(Ingest|Limiter|Price)?\$}" -v -timeout 120m ./bench
