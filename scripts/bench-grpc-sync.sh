#!/usr/bin/env bash
# gRPC sync fan-out (issue 9): SUBSCRIBERS in-process-provider-like
# subscribers of flagd.sync.v1.FlagSyncService/SyncFlags on
# `vexil serve --grpc-listen`, each on its own connection; CHANGES toggles
# through the admin API, INTERVAL_MS apart; the delay from the writer's
# acknowledgement of each change to each subscriber's receipt of a flagd
# document reflecting it (p50/p99/max). Server (SQLite, release) pinned to
# core 0, `vexil-bench grpc-sync` (subscribers and writer) to core 1.
# Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSCRIBERS="${SUBSCRIBERS:-100}"
CHANGES="${CHANGES:-50}"
INTERVAL_MS="${INTERVAL_MS:-200}"
cargo build --release -q -p vexil -p vexil-bench
BIN="${CARGO_TARGET_DIR:-target}/release"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:18398 --grpc-listen 127.0.0.1:18396 \
  --data-dir "$WORK/data" --rate-limit-admin 0 --rate-limit-server 0 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18398/readyz && break; sleep 0.1; done
export VEXIL_URL=http://127.0.0.1:18398
KEY=$("$BIN/vexil" keys create --name grpc-sync-bench --scope server 2>/dev/null)
for _ in $(seq 50); do (exec 3<> /dev/tcp/127.0.0.1/18396) 2>/dev/null && break; sleep 0.1; done
${PERF:-} taskset -c 1 "$BIN/vexil-bench" grpc-sync --grpc-url http://127.0.0.1:18396 --write-url "$VEXIL_URL" \
  --server-key "$KEY" --subscribers "$SUBSCRIBERS" --changes "$CHANGES" --interval-ms "$INTERVAL_MS"
