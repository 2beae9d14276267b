#!/usr/bin/env bash
# Prints the URL of a PostgreSQL server for the tests, starting a local one if needed.
# Uses FLOWHOUSE_TEST_POSTGRES_URL when it is set; otherwise installs (Debian) and starts the local cluster.
set -euo pipefail
if [ -n "${FLOWHOUSE_TEST_POSTGRES_URL:-}" ]; then
  echo "$FLOWHOUSE_TEST_POSTGRES_URL"
  exit 0
fi
{
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  fi
  cluster=$(pg_lsclusters --no-header | head -n 1)
  if [ -z "$cluster" ]; then
    pg_createcluster 15 main
    cluster=$(pg_lsclusters --no-header | head -n 1)
  fi
  read -r version name port status _ <<<"$cluster"
  if [ "$status" != "online" ]; then
    pg_ctlcluster "$version" "$name" start
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -p "$port" && break
    sleep 1
  done
  su postgres -c "psql -q -p $port -c \"alter user postgres password 'postgres'\""
} >&2
echo "postgresql://postgres:postgres@localhost:${port}/postgres"
