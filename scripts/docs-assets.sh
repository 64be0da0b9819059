#!/usr/bin/env bash
# docs-assets.sh: vendor the third-party files that /docs (Swagger UI) and /redoc (ReDoc)
# serve from the binary (httpapi.DocsHandler), at the pinned versions below, from the
# npm registry. Only the files the pages load are kept, with their licences, in
# httpapi/docs/assets/<package>-<version>/; their sha256 sums are committed in
# httpapi/docs/assets.sha256, so a download is checked against them, and the tests check
# the embedded files against them too.
#
#   scripts/docs-assets.sh           download the pinned versions, check them against the
#                                    committed sums, and (re)install them
#   scripts/docs-assets.sh --check   check the vendored files against the sums (offline)
#   scripts/docs-assets.sh --update  after changing a version below: download, install,
#                                    point the pages at the new directories and rewrite the
#                                    sums (review the diff, then run `go test ./httpapi`)
#
# Needs npm (`npm pack` checks each tarball against the registry's integrity hash),
# tar and sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."

SWAGGER_UI_VERSION=5.35.0 # npm swagger-ui-dist
REDOC_VERSION=2.5.4       # npm redoc: the 2.x line (3.x bundles in-browser telemetry and is twice the size)

DOCS=httpapi/docs
ASSETS=$DOCS/assets
SUMS=$DOCS/assets.sha256

# PACKAGES: "npm-name version directory file…": the files to keep, as paths inside the
# package's tarball; each lands in $ASSETS/<directory>/ under its base name.
PACKAGES=(
  "swagger-ui-dist $SWAGGER_UI_VERSION swagger-ui-dist-$SWAGGER_UI_VERSION
     swagger-ui.css swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt LICENSE NOTICE"
  "redoc $REDOC_VERSION redoc-$REDOC_VERSION
     bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE"
)

log() { echo "[docs-assets] $*"; }
die() { echo "[docs-assets] error: $*" >&2; exit 1; }

check() { # check DIR: the files under DIR match the committed sums
  (cd "$1" && sha256sum --quiet --strict -c) <"$SUMS" || die "checksum mismatch in $1 (see above)"
}

mode=${1:-install}
case "$mode" in
  --check)
    check "$ASSETS"
    log "ok: vendored files match $SUMS"
    exit 0
    ;;
  install | --update) ;;
  *) die "unknown argument $mode; see the comment at the top of $0" ;;
esac

command -v npm >/dev/null || die "npm not found"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
staged=$tmp/assets
mkdir -p "$staged"

for spec in "${PACKAGES[@]}"; do
  read -r name version dir files <<<"$(echo $spec)"
  log "fetching $name@$version"
  (cd "$tmp" && npm pack --silent --loglevel=error "$name@$version" >/dev/null)
  tarball=$tmp/$name-$version.tgz
  [ -f "$tarball" ] || die "npm pack $name@$version left no $tarball"
  mkdir -p "$tmp/$name" "$staged/$dir"
  tar -xzf "$tarball" -C "$tmp/$name"
  for f in $files; do
    [ -f "$tmp/$name/package/$f" ] || die "$name@$version has no $f"
    cp "$tmp/$name/package/$f" "$staged/$dir/"
  done
done

if [ "$mode" = --update ]; then
  (cd "$staged" && find . -type f | sed 's#^\./##' | LC_ALL=C sort | xargs sha256sum) >"$tmp/sums"
  cp "$tmp/sums" "$SUMS"
  log "wrote $SUMS"
else
  check "$staged"
fi

# Install: replace every vendored version directory by the staged ones.
for spec in "${PACKAGES[@]}"; do
  read -r name version dir _ <<<"$(echo $spec)"
  rm -rf "$ASSETS/$name"-[0-9]*
  cp -R "$staged/$dir" "$ASSETS/$dir"
  # Point the pages at this version (a no-op when it is already the one they load).
  sed -i -E "s#/$name-[0-9][^/\"]*/#/$dir/#g" "$DOCS"/*.html
done
check "$ASSETS"
log "ok: installed swagger-ui-dist@$SWAGGER_UI_VERSION and redoc@$REDOC_VERSION in $ASSETS"
