#!/usr/bin/env bash
# test.sh: the whole test suite, for `make test` and CI.
#
# 1. Set-up, as root: scripts/services.sh (PostgreSQL primary + streaming replica,
#    Redis, RabbitMQ on loopback) and scripts/test-tools.sh (Chromium, promtool). Both
#    are idempotent: they start only what is down and install only what is missing.
#    Without root nothing is set up; what is absent is named below, before the tests.
# 2. Every test of every package with the race detector, through gotestsum (a pinned
#    `go tool` of tools/go.mod). Tests that need an absent service or program skip with
#    the reason, listed under "Skipped" at the end, unless CI=true, where they fail.
# 3. One closing line: "test: N passed, N failed, N skipped".
#
# TESTARGS adds `go test` arguments (e.g. TESTARGS='-run TestBroker ./rabbitmq'; the
# default is ./...). SETUP=0 skips the set-up even as root. TEST_TIMEOUT is go test's
# limit per package (default 45m).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

absent=() # what the tests will miss, with why

if [ "${SETUP:-1}" = 1 ] && [ "$(id -u)" = 0 ]; then
  ./scripts/services.sh
  ./scripts/test-tools.sh
elif [ "${SETUP:-1}" = 1 ]; then
  echo "test: not root, so no set-up: scripts/services.sh and scripts/test-tools.sh need root (sudo make services; sudo scripts/test-tools.sh)"
fi

# reachable HOST:PORT: a TCP connection succeeds within a second.
reachable() { timeout 1 bash -c "exec 3<>/dev/tcp/${1%:*}/${1##*:}" 2>/dev/null; }
# hostport URL: the host:port of URL (no user info, no path).
hostport() { local h=${1#*://}; h=${h%%/*}; echo "${h##*@}"; }
for svc in "PostgreSQL primary|TEST_DATABASE_WRITE_URL|127.0.0.1:5432" \
  "PostgreSQL replica|TEST_DATABASE_READ_URL|127.0.0.1:5433" \
  "Redis|TEST_REDIS_URL|127.0.0.1:6379" \
  "RabbitMQ|TEST_BROKER_URL|127.0.0.1:5672"; do
  IFS='|' read -r name var addr <<<"$svc"
  [ -n "${!var:-}" ] && addr=$(hostport "${!var}")
  reachable "$addr" || absent+=("$name (not reachable at $addr): its integration tests")
done
command -v chromium >/dev/null || absent+=("chromium (not installed): the /docs and /redoc browser test")
command -v promtool >/dev/null || absent+=("promtool (not installed): the Prometheus config and alert rule checks")
if [ ${#absent[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "test: CI=true and these are absent, so the tests that need them fail:"
  else
    echo "test: these are absent, so the tests that need them skip (CI=true makes them fail):"
  fi
  printf '  - %s\n' "${absent[@]}"
fi

# gotestsum's own closing line ("DONE 812 tests, 9 skipped in 301s") counts every test
# but not the passed ones; it is replaced by the post-run line, which does.
summary='echo "test: ran in $GOTESTSUM_ELAPSED"
[ "$TESTS_ERRORS" = 0 ] || echo "test: $TESTS_ERRORS errors (a package that did not build, or output outside a test: see above)"
echo "test: $((TESTS_TOTAL - TESTS_FAILED - TESTS_SKIPPED)) passed, $TESTS_FAILED failed, $TESTS_SKIPPED skipped"'
# go test's default 10-minute limit per package is too short for cmd/boxoffice on a loaded
# 2-core machine (9m59s once at load average 20); CI allows 90 minutes for the whole run.
# shellcheck disable=SC2086 # TESTARGS is a list of arguments
$GO tool -modfile=tools/go.mod gotestsum --format pkgname --post-run-command "bash -c '$summary'" \
  -- -race -count=1 -timeout=${TEST_TIMEOUT:-45m} ${TESTARGS:-./...} | sed -u '/^DONE [0-9]* tests/d'
