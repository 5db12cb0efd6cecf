#!/usr/bin/env bash
# Propagation recorded in docs/benchmarks.md: a write acknowledged by the
# server -> the change listener of each of CLIENTS SDK clients following one
# edge. Server and edge share core 0, the clients (one process) core 1.
# Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${CLIENTS:-1000}"
CHANGES="${CHANGES:-50}"
cargo build --release -q -p vexil -p vexil-bench
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:18298 --data-dir "$WORK/data" \
  --rate-limit-admin 0 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18298/readyz && break; sleep 0.1; done
export VEXIL_URL=http://127.0.0.1:18298
KEY=$("$BIN/vexil" keys create --name edge --scope server 2>/dev/null)
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" edge --listen 127.0.0.1:18297 --upstream http://127.0.0.1:18298 --key "$KEY" \
  --rate-limit-server 0 > "$WORK/edge.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18297/readyz && break; sleep 0.1; done
${PERF:-} taskset -c 1 "$BIN/vexil-bench" sdk --url http://127.0.0.1:18297 --write-url http://127.0.0.1:18298 \
  --server-key "$KEY" --clients "$CLIENTS" --changes "$CHANGES"
