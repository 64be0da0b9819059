#!/usr/bin/env bash
# services.sh: make sure the services of the distributed mode run on loopback, for
# `make services`, integration tests and CI. Idempotent: it starts only what is down and
# creates only what is missing. Needs root on Debian 12 (it may apt-get install).
#
#   Redis       127.0.0.1:6379   no persistence
#   RabbitMQ    127.0.0.1:5672   guest/guest
#   PostgreSQL  127.0.0.1:5432   primary (Debian cluster 15/main), trust auth on loopback,
#                                wal_level=replica; database and role "boxoffice";
#                                bulk-load settings by ALTER SYSTEM (pg_tune)
#               127.0.0.1:5433   streaming hot-standby replica (Debian cluster 15/replica),
#                                cloned from the primary with pg_basebackup -R
#
# SERVICES="redis rabbitmq postgres" limits what it brings up.
set -euo pipefail

SERVICES=${SERVICES:-"redis rabbitmq postgres"}
PGVER=15
PGBIN=/usr/lib/postgresql/$PGVER/bin
PRIMARY_PORT=5432
REPLICA_PORT=5433

log() { echo "[services] $*"; }
die() { echo "[services] error: $*" >&2; exit 1; }
want() { [[ " $SERVICES " == *" $1 "* ]]; }
# retry N CMD…: run CMD every half second until it succeeds, at most N times.
retry() { local n=$1; shift; for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }

[ "$(id -u)" = 0 ] || die "run as root (it starts system services and may install packages)"

# write FILE CONTENT: replace FILE when its content differs; succeed when it changed.
write() {
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then return 1; fi
  printf '%s\n' "$2" >"$1"
}

install_packages() {
  local need=()
  want redis && { command -v redis-server >/dev/null || need+=(redis-server); command -v redis-cli >/dev/null || need+=(redis-tools); }
  want rabbitmq && { command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server); }
  want postgres && { [ -x "$PGBIN/postgres" ] || need+=("postgresql-$PGVER" "postgresql-client-$PGVER"); }
  [ ${#need[@]} -eq 0 ] && return
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" || { apt-get update -qq && apt-get install -y --no-install-recommends "${need[@]}"; }
}

redis_up() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    log "redis: starting"
    install -d -o redis -g redis /var/lib/redis /var/log/redis 2>/dev/null || install -d /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/boxoffice.log
    retry 40 redis-cli -h 127.0.0.1 -p 6379 ping || die "redis did not answer"
  fi
  log "redis: up on 127.0.0.1:6379"
}

rabbitmq_up() {
  if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    log "rabbitmq: starting"
    rabbitmq-server -detached
    retry 120 rabbitmq-diagnostics -q ping || true
    rabbitmqctl -q await_startup --timeout 120 >/dev/null || die "rabbitmq did not start (see /var/log/rabbitmq/)"
  fi
  log "rabbitmq: up on 127.0.0.1:5672"
}

pg_psql() { local port=$1; shift; PGOPTIONS="-c client_min_messages=warning" runuser -u postgres -- "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$port" -v ON_ERROR_STOP=1 "$@"; }
pg_online() { pg_lsclusters -h | awk -v c="$1" -v v=$PGVER '$1==v && $2==c && $4 ~ /^online/ {f=1} END {exit !f}'; }
pg_exists() { pg_lsclusters -h | awk -v c="$1" -v v=$PGVER '$1==v && $2==c {f=1} END {exit !f}'; }
pg_datadir() { pg_lsclusters -h | awk -v c="$1" -v v=$PGVER '$1==v && $2==c {print $6}'; }

# pg_configure CLUSTER PORT: our settings in conf.d and a loopback-trust pg_hba; restarts
# a running cluster whose settings changed.
pg_configure() {
  local etc=/etc/postgresql/$PGVER/$1 changed=0
  install -d -o postgres -g postgres "$etc/conf.d"
  write "$etc/conf.d/boxoffice.conf" "# written by boxoffice scripts/services.sh
listen_addresses = '127.0.0.1'
port = $2
wal_level = replica
max_wal_senders = 10
wal_keep_size = '512MB'
hot_standby = on
max_connections = 200
# Holds the catalog's hash-keyed indexes (about 240 MB per million plans) during a bulk
# load; a restart, so here and not in pg_tune (docs/OPERATIONS.md)
shared_buffers = '1GB'" && changed=1
  write "$etc/pg_hba.conf" "# written by boxoffice scripts/services.sh: trust on loopback only
local all         all                 trust
host  all         all   127.0.0.1/32  trust
local replication all                 trust
host  replication all   127.0.0.1/32  trust" && changed=1
  chown postgres:postgres "$etc/conf.d/boxoffice.conf" "$etc/pg_hba.conf"
  if [ $changed = 1 ] && pg_online "$1"; then
    log "postgres: $1 settings changed, restarting"
    pg_ctlcluster $PGVER "$1" restart
  fi
}

pg_start() {
  pg_online "$1" || { log "postgres: starting $1"; pg_ctlcluster $PGVER "$1" start; }
  retry 60 "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$2" || die "postgres $1 not ready on port $2"
}

# pg_tune: the primary's settings for bulk loads (a cold ingest writes every index page
# of plans and products in each batch), all of which apply on reload, so a running
# primary takes them without a restart; docs/OPERATIONS.md says why each.
pg_tune() {
  pg_psql $PRIMARY_PORT -d postgres >/dev/null <<'SQL'
ALTER SYSTEM SET max_wal_size = '4GB';
ALTER SYSTEM SET wal_compression = 'lz4';
ALTER SYSTEM SET bgwriter_delay = '10ms';
ALTER SYSTEM SET bgwriter_lru_maxpages = 1000;
ALTER SYSTEM SET bgwriter_lru_multiplier = 10;
SELECT pg_reload_conf();
SQL
}

postgres_up() {
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  pg_exists main || pg_createcluster $PGVER main -p $PRIMARY_PORT
  pg_configure main $PRIMARY_PORT
  pg_start main $PRIMARY_PORT
  pg_psql $PRIMARY_PORT -d postgres <<'SQL'
SELECT 'CREATE ROLE boxoffice LOGIN PASSWORD ''boxoffice''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'boxoffice')\gexec
SELECT 'CREATE DATABASE boxoffice OWNER boxoffice' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'boxoffice')\gexec
SQL

  pg_tune

  pg_exists replica || { log "postgres: creating cluster replica"; pg_createcluster $PGVER replica -p $REPLICA_PORT >/dev/null; }
  pg_configure replica $REPLICA_PORT
  local data; data=$(pg_datadir replica)
  if [ ! -f "$data/standby.signal" ]; then
    # A fresh cluster or a promoted copy: clone the primary into it.
    pg_online replica && pg_ctlcluster $PGVER replica stop
    log "postgres: cloning the primary into $data (pg_basebackup -R)"
    find "$data" -mindepth 1 -delete
    runuser -u postgres -- "$PGBIN/pg_basebackup" -h 127.0.0.1 -p $PRIMARY_PORT -U postgres -D "$data" -R -X stream --checkpoint=fast
  fi
  pg_start replica $REPLICA_PORT

  # Prove replication: a row written on the primary shows up on the replica.
  local token; token="check-$(date +%s%N)"
  pg_psql $PRIMARY_PORT -d postgres -c "CREATE TABLE IF NOT EXISTS boxoffice_replication_check (token text PRIMARY KEY, at timestamptz DEFAULT now())" \
    -c "DELETE FROM boxoffice_replication_check WHERE at < now() - interval '1 hour'" \
    -c "INSERT INTO boxoffice_replication_check (token) VALUES ('$token')"
  replicated() { [ "$(pg_psql $REPLICA_PORT -d postgres -tAc "SELECT count(*) FROM boxoffice_replication_check WHERE token = '$token'")" = 1 ]; }
  retry 60 replicated || die "a row written on the primary did not reach the replica within 30s"
  [ "$(pg_psql $REPLICA_PORT -d postgres -tAc 'SELECT pg_is_in_recovery()')" = t ] || die "the replica is not in recovery"
  log "postgres: primary on 127.0.0.1:$PRIMARY_PORT, streaming replica on 127.0.0.1:$REPLICA_PORT"
}

install_packages
want redis && redis_up
want rabbitmq && rabbitmq_up
want postgres && postgres_up
log "up: $SERVICES"
