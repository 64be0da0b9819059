#!/usr/bin/env bash
# pg-backup-check.sh: checks that a logical backup of boxoffice's PostgreSQL database
# restores into a working catalog. It dumps DATABASE_WRITE_URL with pg_dump (or takes
# the custom-format dump given as its argument), restores it with pg_restore into a new
# scratch database on the same server, serves the source and the copy each with
# `boxoffice run` (PostgreSQL only: no provider, no Redis, no RabbitMQ, so nothing but
# the database's content is served), and checks that /search answers the same bytes from
# both. The scratch database is dropped at the end, whatever happens.
#
# usage: DATABASE_WRITE_URL=postgres://user@host:5432/boxoffice scripts/pg-backup-check.sh [DUMP]
#
#   BOXOFFICE    the binary (default: bin/boxoffice of this checkout); use the version
#                that serves the database: like every role it migrates the databases it
#                opens, so a newer one would migrate the source
#   CHECK_PATHS  the searches compared, whitespace-separated (default: the whole
#                catalog, and 2021)
#
# The source must not change while the check runs (the catalog version is compared
# before and after): run it on a staging copy, a quiet database, or a replica promoted
# for the purpose. The role in the URL needs CREATEDB. The URL is passed to libpq
# (psql, pg_dump, pg_restore): use its parameters (sslmode=…), not pgx-only ones.
#
# Exit status: 0 when every search answers the same bytes; 1 otherwise, saying why.
set -euo pipefail

die() { echo "pg-backup-check: $*" >&2; exit 1; }

: "${DATABASE_WRITE_URL:?DATABASE_WRITE_URL: the PostgreSQL database to check (postgres://…/DATABASE)}"
here=$(cd "$(dirname "$0")" && pwd)
BOXOFFICE=${BOXOFFICE:-$here/../bin/boxoffice}
CHECK_PATHS=${CHECK_PATHS:-"/search /search?starts_at=2021-01-01&ends_at=2021-12-31"}
dump=${1:-}
[ -x "$BOXOFFICE" ] || die "BOXOFFICE: no executable at $BOXOFFICE (make build)"
for tool in psql pg_dump pg_restore curl cmp; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

[[ $DATABASE_WRITE_URL =~ ^(postgres(ql)?://[^/?]*/)([^?]+)(\?.*)?$ ]] ||
  die "DATABASE_WRITE_URL: want postgres://…/DATABASE[?parameters]"
prefix=${BASH_REMATCH[1]} source_db=${BASH_REMATCH[3]} params=${BASH_REMATCH[4]}
scratch=${source_db}_check_$(date -u +%Y%m%d%H%M%S)_$$
scratch_url=$prefix$scratch$params

work=$(mktemp -d)
pids=()
created=""
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$created" ] && ! psql -X -q "$DATABASE_WRITE_URL" -c "DROP DATABASE IF EXISTS \"$scratch\" WITH (FORCE)" >/dev/null; then
    echo "pg-backup-check: could not drop the scratch database $scratch: drop it by hand" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

version() { psql -X -At "$1" -c 'SELECT version FROM catalog_version'; }

before=$(version "$DATABASE_WRITE_URL")
if [ -z "$dump" ]; then
  dump=$work/boxoffice.dump
  pg_dump --format=custom --file="$dump" "$DATABASE_WRITE_URL"
  echo "pg-backup-check: dumped $source_db at catalog version $before ($(wc -c <"$dump") bytes)"
fi
psql -X -q "$DATABASE_WRITE_URL" -c "CREATE DATABASE \"$scratch\"" >/dev/null
created=yes
pg_restore --exit-on-error --no-owner --no-privileges --dbname="$scratch_url" "$dump"
copy=$(version "$scratch_url")
echo "pg-backup-check: restored into $scratch at catalog version $copy"
[ "$copy" = "$before" ] ||
  die "the dump is at catalog version $copy and the source at $before: their searches cannot match"

# serve NAME URL: runs boxoffice on the database at URL alone, and sets base to its URL
# once it is ready.
serve() {
  local name=$1 url=$2 port pid
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    env -u REDIS_URL -u BROKER_URL -u DATABASE_READ_URL -u EXTERNAL_API_URL -u HTTP_ADDR -u DATA_DIR \
      "$BOXOFFICE" run --env-file="$work/none.env" --http-addr="127.0.0.1:$port" --data-dir="$work/$name" \
      --database-write-url="$url" --external-api-url="http://127.0.0.1:9/off" \
      --sync-interval-seconds=31536000 --log-level=error 2>"$work/$name.log" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 600); do # up to 60 s
      if "$BOXOFFICE" healthcheck "http://127.0.0.1:$port/ready" 2>/dev/null; then
        base=http://127.0.0.1:$port
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break # exited: the port was taken, or worse
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
  done
  cat "$work/$name.log" >&2
  die "boxoffice did not become ready on the $name database"
}

serve source "$DATABASE_WRITE_URL"
source_base=$base
serve copy "$scratch_url"
copy_base=$base

status=0
for path in $CHECK_PATHS; do
  curl -sS --fail -o "$work/source.body" "$source_base$path"
  curl -sS --fail -o "$work/copy.body" "$copy_base$path"
  if cmp -s "$work/source.body" "$work/copy.body"; then
    echo "pg-backup-check: same bytes: $path ($(wc -c <"$work/source.body") bytes)"
  else
    echo "pg-backup-check: the responses differ: $path ($(wc -c <"$work/source.body") bytes from the source, $(wc -c <"$work/copy.body") from the copy)" >&2
    status=1
  fi
done

after=$(version "$DATABASE_WRITE_URL")
[ "$after" = "$before" ] ||
  die "the source moved from catalog version $before to $after during the check: run it again on a quiet database"
[ $status = 0 ] || die "the restored copy does not answer as the source does"
echo "pg-backup-check: ok"
