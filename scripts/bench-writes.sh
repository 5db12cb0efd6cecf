#!/usr/bin/env bash
# Write-path figures recorded in docs/benchmarks.md: for each environment
# size, the time to import that many flags into an empty environment (with
# the server's peak RSS against its RSS once idle), then the latency of
# toggling one flag in it. `vexil serve` (SQLite, release) on core 0, the
# load on core 1. Sends traffic to 127.0.0.1 only.
#
#   ./scripts/bench-writes.sh                 # SIZES="1000 10000 100000" SECONDS_PER_RUN=10
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-flags.sh
SIZES="${SIZES:-1000 10000 100000}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
PORT="${PORT:-18301}"
cargo build --release -q -p vexil -p vexil-bench
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
URL="http://127.0.0.1:$PORT"
rss() { awk "/^$2:/ {print \$2}" "/proc/$1/status"; }

for n in $SIZES; do
  rm -rf "$WORK/data"
  bench_flags "$WORK/flags.json" "$n"
  VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
    --rate-limit-admin 0 --max-body-bytes 268435456 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
  SERVER=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "$URL/readyz" && break; sleep 0.1; done
  before=$(rss "$SERVER" VmRSS)
  start=$(date +%s%N)
  code=$(taskset -c 1 curl -s -o "$WORK/import.out" -w '%{http_code}' -X POST \
    -H "authorization: Bearer $VEXIL_ADMIN_KEY" -H 'content-type: application/json' \
    --data-binary "@$WORK/flags.json" "$URL/api/v1/projects/default/environments/production/import")
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  sleep 1
  peak=$(rss "$SERVER" VmHWM)
  after=$(rss "$SERVER" VmRSS)
  echo "$n flags: import ${ms} ms (HTTP $code, $(wc -c < "$WORK/flags.json") bytes); RSS before ${before} KiB, peak ${peak} KiB, after ${after} KiB"
  [ "$code" = 200 ] || { head -c 400 "$WORK/import.out"; echo; }
  taskset -c 1 "$BIN/vexil-bench" admin-writes --url "$URL" --key "$VEXIL_ADMIN_KEY" \
    --env production --connections 1 --seconds "$SECONDS_PER_RUN" | sed "s/^/$n flags: /"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  # What holding the final state costs: the same data, a fresh process.
  VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
    --rate-limit-admin 0 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
  SERVER=$!
  for _ in $(seq 600); do curl -sf -o /dev/null "$URL/readyz" && break; sleep 0.1; done
  sleep 1
  echo "$n flags: a fresh server holding them: RSS $(rss "$SERVER" VmRSS) KiB (empty: ${before} KiB); import peak growth / held growth = $(python3 -c "print(round(($peak-$before)/max(1,$(rss "$SERVER" VmRSS)-$before),2))")"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
done
