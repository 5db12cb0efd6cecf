#!/usr/bin/env bash
# Propagation between servers sharing PostgreSQL, as recorded in
# docs/benchmarks.md: changes are written to server A, SUBSCRIBERS follow
# /api/v1/stream on server B, and the delay from A's acknowledgement to each
# receipt on B is reported. Polling is set to once a minute, so what is
# measured is LISTEN/NOTIFY. Both servers on core 0, load on core 1.
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth). Sends traffic to
# 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSCRIBERS="${SUBSCRIBERS:-100}"
CHANGES="${CHANGES:-200}"
DB="vexil_bench_propagation_$$"
cargo build --release -q -p vexil -p vexil-bench
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" > /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $DB" > /dev/null
URL="postgres://postgres@127.0.0.1:5432/$DB"
export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
for port in 18093 18094; do
  VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:$port --database-url "$URL" \
    --sync-interval-ms 60000 --rate-limit-admin 0 --rate-limit-server 0 > "$WORK/serve-$port.log" 2>&1 &
  PIDS+=($!)
  sleep 1
done
export VEXIL_URL=http://127.0.0.1:18093
KEY=$("$BIN/vexil" keys create --name propagation --scope server 2>/dev/null)
sleep 0.5
taskset -c 1 "$BIN/vexil-bench" sse --url http://127.0.0.1:18094 --write-url http://127.0.0.1:18093 \
  --server-key "$KEY" --subscribers "$SUBSCRIBERS" --changes "$CHANGES" --interval-ms 50
