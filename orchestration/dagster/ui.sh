#!/usr/bin/env bash
# The Dagster UI over a flowhouse warehouse (`make ui`).
#
#   orchestration/dagster/ui.sh [--port 3000] [--warehouse demo/warehouse.duckdb] [--fake-port 8025]
#
# Generates the demo warehouse when it does not exist, starts the local fake provider (so runs
# send without any account) and `dagster dev` on 127.0.0.1, and stops both on Ctrl-C or SIGTERM.
# Job control (set -m) is on before `dagster dev` starts in the background: without it a
# background process ignores SIGINT and SIGTERM, and could not be stopped cleanly.
set -euo pipefail
set -m

root="$(cd "$(dirname "$0")/../.." && pwd)"
port=3000
fake_port=8025
warehouse="$root/demo/warehouse.duckdb"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --fake-port) fake_port="$2"; shift 2 ;;
    --warehouse) warehouse="$2"; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

bin="$root/.venv/bin"
if [[ ! -e "$warehouse" ]]; then
  echo "no warehouse at $warehouse: generating the demo store (a few minutes)"
  "$bin/flowhouse" demo --warehouse "$warehouse"
fi
home="$(dirname "$warehouse")/dagster_home"
mkdir -p "$home"
cp "$root/orchestration/dagster/dagster.yaml" "$home/dagster.yaml"
inbox="$(dirname "$warehouse")/inbox"

export DAGSTER_HOME="$home"
export FLOWHOUSE_WAREHOUSE="$warehouse"
export FLOWHOUSE_PROVIDER_URL="http://127.0.0.1:$fake_port"
export FLOWHOUSE_INBOX="$inbox"

"$bin/flowhouse" fake-provider --port "$fake_port" --inbox "$inbox" &
fake_pid=$!
(cd "$root" && exec "$bin/dagster" dev -m flowhouse.orchestration.dagster.definitions -h 127.0.0.1 -p "$port") &
dagster_pid=$!

stop() {
  kill -TERM "$dagster_pid" 2>/dev/null || true
  wait "$dagster_pid" 2>/dev/null || true
  kill -TERM "$fake_pid" 2>/dev/null || true
  wait "$fake_pid" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
echo "Dagster UI: http://127.0.0.1:$port (warehouse $warehouse; fake provider on port $fake_port)"
wait "$dagster_pid"
kill -TERM "$fake_pid" 2>/dev/null || true
