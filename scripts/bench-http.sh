#!/usr/bin/env bash
# HTTP evaluation benchmarks, as recorded in docs/benchmarks.md.
# Server pinned to core 0, load generator to core 1; every figure is also
# given as a ratio to a bare hyper server measured in the same run.
# Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
CONNS="${CONNS:-64}"
cargo build --release -q -p vexil-server -p vexil-bench
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

load() { taskset -c 1 "$BIN/vexil-bench" http --connections "$CONNS" --seconds "$SECONDS_PER_RUN" "$@"; }

echo "== bare hyper server (the ceiling)"
taskset -c 0 "$BIN/vexil-bench" bare-server --listen 127.0.0.1:18099 > /dev/null & PIDS+=($!)
sleep 0.5
load --url http://127.0.0.1:18099/ofrep/v1/evaluate/flags/flag-7 --body '{"context":{"targetingKey":"user-1234567","country":"CA","plan":"pro"}}'
kill "${PIDS[0]}"; sleep 0.3

echo "== vexil serve"
export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
# Limits stay on (so their cost is measured) but high enough not to refuse.
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:18098 --data-dir "$WORK/data" \
  --rate-limit-client 10000000 --rate-limit-admin 0 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
sleep 1
python3 - "$WORK/flags.json" <<'PY'
import json, sys
flag = {"variants": {"on": True, "off": False}, "defaultServe": {"variant": "off"},
        "rules": [{"clauses": [{"attribute": "country", "op": "in", "values": ["US", "CA", "GB"]},
                               {"attribute": "plan", "op": "in", "values": ["pro", "enterprise"]}],
                   "serve": {"rollout": {"weights": {"on": 50, "off": 50}}}}]}
json.dump({"flags": {f"flag-{i}": flag for i in range(50)}}, open(sys.argv[1], "w"))
PY
export VEXIL_URL=http://127.0.0.1:18098
"$BIN/vexil" import "$WORK/flags.json" > /dev/null
KEY=$("$BIN/vexil" keys create --name bench --scope client 2>/dev/null)
CTX='{"context":{"targetingKey":"user-1234567","country":"CA","plan":"pro"}}'
echo "-- OFREP single flag"
load --url http://127.0.0.1:18098/ofrep/v1/evaluate/flags/flag-7 --header "Authorization: Bearer $KEY" --body "$CTX"
echo "-- OFREP bulk, 50 flags (200 with body)"
load --url http://127.0.0.1:18098/ofrep/v1/evaluate/flags --header "Authorization: Bearer $KEY" --body "$CTX"
ETAG=$(curl -s -D - -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$CTX" http://127.0.0.1:18098/ofrep/v1/evaluate/flags | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
echo "-- OFREP bulk answered 304 (If-None-Match: $ETAG)"
load --url http://127.0.0.1:18098/ofrep/v1/evaluate/flags --header "Authorization: Bearer $KEY" --header "If-None-Match: $ETAG" --body "$CTX"

echo "== overload: the same single-flag load against a client key limited to 5000 req/s"
kill "${PIDS[1]}"; sleep 0.5
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:18098 --data-dir "$WORK/data" \
  --rate-limit-client 5000 --rate-limit-admin 0 > "$WORK/serve2.log" 2>&1 & PIDS+=($!)
sleep 1
load --url http://127.0.0.1:18098/ofrep/v1/evaluate/flags/flag-7 --header "Authorization: Bearer $KEY" --body "$CTX"
