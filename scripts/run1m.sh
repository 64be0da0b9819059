#!/usr/bin/env bash
# run1m.sh: one cold ingest of the bench's 1M-plan catalog by `boxoffice run` (the
# command line of make bench-ingest's embedded row: the built-in simulator's synthetic
# catalog, 10 000 base plans x 100 plans x 2 zones, churn off), on an empty data
# directory. Prints the time from the process's start until its search index holds
# every plan, its CPU time and peak RSS (VmHWM), then its collections and allocations.
#
#   scripts/run1m.sh BINARY [OUTPREFIX]
#
# PROFILE=70 also takes a 70 s CPU profile (OUTPREFIX.pprof); OUTPREFIX.allocs is the
# allocation profile at the end. Builds are compared by alternating their runs (A B A B)
# on a quiet machine: docs/BENCHMARKS.md.
set -euo pipefail
bin=${1:?usage: scripts/run1m.sh BINARY [OUTPREFIX]}
out=${2:-/tmp/run1m}
http=${RUN1M_HTTP_ADDR:-127.0.0.1:9910}
ops=${RUN1M_OPS_ADDR:-127.0.0.1:9911}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
start=$(date +%s.%N)
env -i PATH="$PATH" HOME="$HOME" LOG_LEVEL=warn SYNC_INTERVAL_SECONDS=86400 RATE_LIMIT_PER_SECOND=0 \
  RATE_LIMIT_WRITES_PER_SECOND=0 OPS_ADDR="$ops" \
  "$bin" run --http-addr="$http" --data-dir="$data" --env-file=/dev/null --sim-mode=synthetic --sim-seed=7 \
  --sim-base-plans=10000 --sim-plans=100 --sim-zones=2 --sim-vanish-rate=0 --sim-price-change-rate=0 \
  --sim-time-change-rate=0 --sim-sell-mode-flip-rate=0 --sim-invalid-date-rate=0 --sim-offline-rate=0 \
  >"$out.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
until curl -fs -o /dev/null "$ops/metrics"; do
  kill -0 $pid 2>/dev/null || { echo "run exited: see $out.log" >&2; exit 1; }
  sleep 0.05
done
profile=
if [ -n "${PROFILE:-}" ]; then
  curl -s -o "$out.pprof" "$ops/debug/pprof/profile?seconds=$PROFILE" &
  profile=$!
fi
until [ "$(curl -s "$ops/metrics" | awk '/^boxoffice_search_index_plans /{print ($2 >= 1000000) ? "yes" : "no"}')" = yes ]; do
  kill -0 $pid 2>/dev/null || { echo "run exited: see $out.log" >&2; exit 1; }
  sleep 0.5
done
end=$(date +%s.%N)
echo "served after $(echo "$end - $start" | bc) s; cpu $(awk '{print ($14+$15)/100}' /proc/$pid/stat) s; peak $(awk '/VmHWM/{printf "%.0f MiB", $2/1024}' /proc/$pid/status)"
[ -z "$profile" ] || wait $profile
curl -s -o "$out.allocs" "$ops/debug/pprof/allocs"
curl -s "$ops/metrics" | grep -E '^go_gc_duration_seconds_count|^go_memstats_alloc_bytes_total'
