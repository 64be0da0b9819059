#!/usr/bin/env bash
# lint.sh: formatting, a tidy go.mod, staticcheck, golangci-lint (.golangci.yml: go vet
# with more analyzers, errcheck, gosec, revive and the others it lists), and the
# architecture's import rules:
#   - domain packages (catalog, pricing, ingest, task) import only the standard library,
#     each other, clock, spans and the OpenTelemetry API; never a driver, net/http or an adapter;
#   - adapters never import each other; only cmd/boxoffice imports everything.
# staticcheck and golangci-lint are pinned in tools/go.mod, a module of their own so that
# their dependencies never change the service's; `go tool -modfile=tools/go.mod` builds
# them once and caches them.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
tool() { $GO tool -modfile=tools/go.mod "$@"; }

fail=0
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; fail=1
fi

if ! $GO mod tidy -diff >/dev/null 2>&1; then
  echo "go.mod or go.sum is not tidy: run go mod tidy"; fail=1
fi
if ! (cd tools && $GO mod tidy -diff >/dev/null 2>&1); then
  echo "tools/go.mod or tools/go.sum is not tidy: run (cd tools && go mod tidy)"; fail=1
fi

echo "lint: staticcheck"
tool staticcheck -tags bench ./... || fail=1 # the load benchmark, behind its tag, is code too
echo "lint: golangci-lint"
tool golangci-lint run ./... || fail=1

module=$(go list -m)
domain="catalog pricing ingest task"
adapters="httpapi provider providersim postgres sqlite redis rabbitmq memory"

# imports DIR: the non-test imports of the packages under DIR, one per line, leaving out
# the contract-suite packages (catalogtest, tasktest…), which are test support.
imports() {
  go list "./$1/..." 2>/dev/null | grep -v 'test$' |
    xargs -r go list -f '{{range .Imports}}{{.}}{{"\n"}}{{end}}' | sort -u
}

for d in $domain; do
  [ -d "$d" ] || continue
  while read -r imp; do
    [ -z "$imp" ] && continue
    case "$imp" in
      "$module"/catalog*|"$module"/pricing*|"$module"/ingest*|"$module"/task*|"$module"/clock|"$module"/spans) ;;
      go.opentelemetry.io/otel|go.opentelemetry.io/otel/attribute|go.opentelemetry.io/otel/codes|go.opentelemetry.io/otel/metric|go.opentelemetry.io/otel/trace|go.opentelemetry.io/otel/propagation) ;;
      net/http|net/http/*|database/sql|database/sql/*) echo "$d imports $imp: domain packages stay free of infrastructure"; fail=1 ;;
      *.*/*) echo "$d imports $imp: domain packages import only the standard library, each other and the OpenTelemetry API"; fail=1 ;;
      "$module"/*) echo "$d imports $imp: domain packages never import adapters"; fail=1 ;;
    esac
  done < <(imports "$d")
done

# spans is used by the domain: the standard library and the OpenTelemetry API only.
while read -r imp; do
  case "$imp" in
    go.opentelemetry.io/otel/attribute|go.opentelemetry.io/otel/codes|go.opentelemetry.io/otel/trace|go.opentelemetry.io/otel/trace/noop) ;;
    *.*/*|"$module"/*) echo "spans imports $imp: it imports only the standard library and the OpenTelemetry API"; fail=1 ;;
  esac
done < <(imports spans)

# redact is used by every adapter and by cmd/boxoffice, clock by the domain too: the
# standard library only.
for p in redact clock; do
  while read -r imp; do
    case "$imp" in
      *.*/*|"$module"/*) echo "$p imports $imp: it imports only the standard library"; fail=1 ;;
    esac
  done < <(imports $p)
done

for a in $adapters; do
  [ -d "$a" ] || continue
  while read -r imp; do
    for other in $adapters; do
      [ "$other" = "$a" ] && continue
      if [ "$imp" = "$module/$other" ] || [[ "$imp" == "$module/$other/"* ]]; then
        # providersim is built on the provider wire format by design: it serves it.
        [ "$a/$other" = "providersim/provider" ] && continue
        echo "$a imports $imp: adapters never import each other"; fail=1
      fi
    done
  done < <(imports "$a")
done

[ $fail = 0 ] && echo "lint: ok"
exit $fail
