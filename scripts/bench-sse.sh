#!/usr/bin/env bash
# SSE fan-out benchmark, as recorded in docs/benchmarks.md: N subscribers
# on /api/v1/stream, M changes, delay from acknowledgement to receipt, and
# the server's RSS idle and per idle subscriber. Three steps:
#   1. the floor: one event written to each of N loopback sockets by one
#      thread on core 0 (read on core 1), nothing else per subscriber;
#   2. the server pinned to core 0, subscribers and writer on core 1;
#   3. the same with the server free on both cores.
# ONLY=floor|pinned|free runs one step. Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSCRIBERS="${SUBSCRIBERS:-10000}"
CHANGES="${CHANGES:-100}"
PORT="${PORT:-18095}"
cargo build --release -q -p vexil -p vexil-bench
BIN=target/release
WORK=$(mktemp -d)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
step() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

if step floor; then
  # Each socket pair takes two descriptors in one process: stay within the
  # open-file limit.
  limit=$(ulimit -Hn)
  sockets=$SUBSCRIBERS
  [ "$limit" != unlimited ] && [ $((2 * sockets + 16)) -gt "$limit" ] && sockets=$(( (limit - 16) / 2 ))
  echo "== floor: one write per socket, writer on core 0, reader on core 1"
  "$BIN/vexil-bench" write-floor --sockets "$sockets" --rounds "$CHANGES" --writer-cpu 0 --reader-cpu 1
fi

# sse NAME [taskset args...]: one server run, fresh data directory.
sse() {
  local name=$1; shift
  rm -rf "$WORK/data"
  export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
  VEXIL_LOG=warn "$@" "$BIN/vexil" serve --listen 127.0.0.1:$PORT --data-dir "$WORK/data" \
    --rate-limit-admin 0 --rate-limit-server 0 --max-in-flight 100000 > "$WORK/serve.log" 2>&1 &
  SERVER=$!
  sleep 1
  echo "== $name: server idle RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$SERVER/status)"
  export VEXIL_URL=http://127.0.0.1:$PORT
  local key
  key=$("$BIN/vexil" keys create --name sse-bench --scope server 2>/dev/null)
  taskset -c 1 "$BIN/vexil-bench" sse --url "$VEXIL_URL" --server-key "$key" \
    --subscribers "$SUBSCRIBERS" --changes "$CHANGES" --server-pid "$SERVER"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

step pinned && sse "server on core 0" taskset -c 0
step free && sse "server free on both cores" env
exit 0
