#!/usr/bin/env bash
# Edge figures recorded in docs/benchmarks.md: time to ready when an edge
# restarts from its cache while upstream is down (10,000 flags), and the
# edge's idle RSS. Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-flags.sh
FLAGS="${FLAGS:-10000}"
cargo build --release -q -p vexil
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
VEXIL_LOG=warn "$BIN/vexil" serve --listen 127.0.0.1:18198 --data-dir "$WORK/data" \
  --rate-limit-admin 0 --max-body-bytes 67108864 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
SERVER=$!
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18198/readyz && break; sleep 0.1; done
bench_flags "$WORK/flags.json" "$FLAGS"
export VEXIL_URL=http://127.0.0.1:18198
"$BIN/vexil" import "$WORK/flags.json" > /dev/null
KEY=$("$BIN/vexil" keys create --name edge --scope server 2>/dev/null)

# ready: PID URL -> milliseconds until /readyz answers 200
ready_ms() {
  local start; start=$(date +%s%N)
  for _ in $(seq 1000); do
    curl -sf -o /dev/null "$2/readyz" && { echo $(( ($(date +%s%N) - start) / 1000000 )); return; }
    sleep 0.005
  done
  echo "never"
}

VEXIL_LOG=warn "$BIN/vexil" edge --listen 127.0.0.1:18197 --upstream http://127.0.0.1:18198 --key "$KEY" \
  --cache-dir "$WORK/cache" > "$WORK/edge1.log" 2>&1 & PIDS+=($!)
EDGE=$!
echo "edge, first start with upstream up: ready in $(ready_ms "$EDGE" http://127.0.0.1:18197) ms"
sleep 2
kill "$EDGE"; wait "$EDGE" 2>/dev/null || true
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
echo "cache: $(du -sh "$WORK/cache" | cut -f1) for $FLAGS flags"
for run in 1 2 3; do
  START=$(date +%s%N)
  VEXIL_LOG=warn "$BIN/vexil" edge --listen 127.0.0.1:18197 --upstream http://127.0.0.1:18198 --key "$KEY" \
    --cache-dir "$WORK/cache" > "$WORK/edge2.log" 2>&1 & PIDS+=($!)
  EDGE=$!
  for _ in $(seq 2000); do curl -sf -o /dev/null http://127.0.0.1:18197/readyz && break; sleep 0.002; done
  echo "restart $run with upstream down, from the cache: ready in $(( ($(date +%s%N) - START) / 1000000 )) ms (process start included)"
  sleep 1
  echo "  idle RSS with $FLAGS flags: $(awk '/VmRSS/ {print $2, $3}' /proc/$EDGE/status)"
  kill "$EDGE"; wait "$EDGE" 2>/dev/null || true
done
