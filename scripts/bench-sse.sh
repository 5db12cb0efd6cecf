#!/usr/bin/env bash
# SSE fan-out benchmark, as recorded in docs/benchmarks.md: N subscribers
# on /api/v1/stream, M changes, delay from acknowledgement to receipt, and
# the server's RSS per idle subscriber. Server on core 0, subscribers and
# writer on core 1. Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSCRIBERS="${SUBSCRIBERS:-10000}"
CHANGES="${CHANGES:-100}"
cargo build --release -q -p vexil -p vexil-bench
BIN=target/release
WORK=$(mktemp -d)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:18095 --data-dir "$WORK/data" \
  --rate-limit-admin 0 --rate-limit-server 0 --max-in-flight 100000 > "$WORK/serve.log" 2>&1 &
SERVER=$!
sleep 1
export VEXIL_URL=http://127.0.0.1:18095
KEY=$("$BIN/vexil" keys create --name sse-bench --scope server 2>/dev/null)
taskset -c 1 "$BIN/vexil-bench" sse --url "$VEXIL_URL" --server-key "$KEY" \
  --subscribers "$SUBSCRIBERS" --changes "$CHANGES" --server-pid "$SERVER"
