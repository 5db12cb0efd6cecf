#!/usr/bin/env bash
# ResolveBoolean over gRPC (flagd.evaluation.v2, `vexil serve --grpc-listen`)
# against the OFREP single-flag route, in the same run and with the same
# load generator: h2load (Debian's `nghttp2-client`), HTTP/2 for gRPC and
# `--h1` for OFREP (the HTTP listener speaks HTTP/1.1). Server pinned to
# core 0, h2load to core 1, as in bench-http.sh. Each route is run RUNS
# times for SECONDS_PER_RUN seconds; the median req/s is reported.
#
# A gRPC call is an HTTP/2 POST with `content-type: application/grpc` and a
# length-prefixed protobuf body (1 byte "not compressed", 4 bytes length);
# h2load sends the prepared body with `-d`. The answer's HTTP status is 200
# even for a failed call, so one call is checked for `grpc-status: 0` first.
#
# BIN=dir uses binaries already built there (e.g. a debug build for a smoke
# run: BIN=target/debug SECONDS_PER_RUN=2 RUNS=1); otherwise a release build
# (in $CARGO_TARGET_DIR when set).
# Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${SECONDS_PER_RUN:-8}"
RUNS="${RUNS:-3}"
CONNS="${CONNS:-64}"
# Concurrent streams per connection for gRPC (HTTP/1.1 has one).
STREAMS="${STREAMS:-1}"
if ! command -v h2load > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get install -y -qq nghttp2-client > /dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client > /dev/null; }
  else
    echo "h2load is needed: apt-get install nghttp2-client" >&2
    exit 1
  fi
fi
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p vexil
  BIN="${CARGO_TARGET_DIR:-target}/release"
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# CPU ticks (user + system) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench NAME SERVER_PID [h2load args...]: RUNS runs, prints one line.
bench() {
  local name=$1 pid=$2; shift 2
  local results=()
  for _ in $(seq "$RUNS"); do
    local before after
    before=$(ticks "$pid")
    taskset -c 1 h2load -D "$SECONDS_PER_RUN" -c "$CONNS" -t 1 "$@" > "$WORK/h2load.out" 2>&1
    after=$(ticks "$pid")
    local rps ok failed non2xx
    rps=$(awk '/^finished in/ {print $4}' "$WORK/h2load.out")
    ok=$(awk '/^requests:/ {print $8}' "$WORK/h2load.out")
    failed=$(awk '/^requests:/ {print $10}' "$WORK/h2load.out")
    non2xx=$(awk '/^status codes:/ {print $5 + $7 + $9}' "$WORK/h2load.out")
    local hz; hz=$(getconf CLK_TCK)
    local server_cpu
    server_cpu=$(awk -v d=$((after - before)) -v hz="$hz" -v s="$SECONDS_PER_RUN" 'BEGIN {printf "%.0f", 100 * d / hz / s}')
    results+=("${rps:-0} ${ok:-0} ${failed:-0} ${non2xx:-0} $server_cpu")
  done
  local median
  median=$(printf '%s\n' "${results[@]}" | sort -n -k1 | sed -n "$(( (RUNS + 1) / 2 ))p")
  read -r rps ok failed non2xx server_cpu <<< "$median"
  local all; all=$(printf '%s\n' "${results[@]}" | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}')
  printf '%-40s %10.0f req/s  server cpu %3s %%  succeeded %s failed %s non-2xx %s  (runs: %s)\n' \
    "$name" "$rps" "$server_cpu" "$ok" "$failed" "$non2xx" "$all"
}

export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:18098 --grpc-listen 127.0.0.1:18096 \
  --data-dir "$WORK/data" --rate-limit-client 100000000 --rate-limit-server 100000000 \
  --rate-limit-admin 0 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
SERVER=$!
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18098/readyz && break; sleep 0.1; done
python3 - "$WORK" <<'PY'
import json, struct, sys
work = sys.argv[1]
flag = {"variants": {"on": True, "off": False}, "defaultServe": {"variant": "off"},
        "rules": [{"clauses": [{"attribute": "country", "op": "in", "values": ["US", "CA", "GB"]},
                               {"attribute": "plan", "op": "in", "values": ["pro", "enterprise"]}],
                   "serve": {"rollout": {"weights": {"on": 50, "off": 50}}}}]}
json.dump({"flags": {f"flag-{i}": flag for i in range(50)}}, open(f"{work}/flags.json", "w"))
ctx = {"targetingKey": "user-1234567", "country": "CA", "plan": "pro"}
json.dump({"context": ctx}, open(f"{work}/ctx.json", "w"))

# ResolveBooleanRequest {flag_key = 1; google.protobuf.Struct context = 2},
# encoded by hand: a length-delimited field is (number << 3 | 2), length, bytes.
def field(number, payload):
    out, n = bytes([number << 3 | 2]), len(payload)
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80]); n >>= 7
    return out + bytes([n]) + payload
def entry(key, text):  # map entry: key = 1, Value{string_value = 3} = 2
    return field(1, field(1, key.encode()) + field(2, field(3, text.encode())))
request = field(1, b"flag-7") + field(2, b"".join(entry(k, v) for k, v in ctx.items()))
open(f"{work}/resolve.bin", "wb").write(b"\0" + struct.pack(">I", len(request)) + request)
PY
export VEXIL_URL=http://127.0.0.1:18098
"$BIN/vexil" import "$WORK/flags.json" > /dev/null
KEY=$("$BIN/vexil" keys create --name bench --scope server 2>/dev/null)
GRPC=http://127.0.0.1:18096/flagd.evaluation.v2.Service/ResolveBoolean
for _ in $(seq 50); do (exec 3<> /dev/tcp/127.0.0.1/18096) 2>/dev/null && break; sleep 0.1; done
status=$(curl -s --http2-prior-knowledge -o /dev/null -D - -H 'content-type: application/grpc' -H 'te: trailers' \
  -H "authorization: Bearer $KEY" --data-binary @"$WORK/resolve.bin" "$GRPC" | tr -d '\r' | awk -F': ' 'tolower($1)=="grpc-status"{print $2}')
if [ "$status" != 0 ]; then
  echo "ResolveBoolean does not succeed (grpc-status ${status:-missing}); see $WORK/serve.log" >&2
  exit 1
fi

echo "== h2load -c$CONNS (gRPC: -m$STREAMS), ${RUNS} x ${SECONDS_PER_RUN} s, median; server on core 0, h2load on core 1"
bench "OFREP single flag (HTTP/1.1)" "$SERVER" --h1 -d "$WORK/ctx.json" \
  -H 'content-type: application/json' -H "authorization: Bearer $KEY" \
  http://127.0.0.1:18098/ofrep/v1/evaluate/flags/flag-7
bench "gRPC ResolveBoolean (v2)" "$SERVER" -m "$STREAMS" -d "$WORK/resolve.bin" \
  -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $KEY" "$GRPC"
