#!/usr/bin/env bash
# HTTP data-plane benchmarks, as recorded in docs/benchmarks.md.
#
# Load comes from wrk (an independent load generator: Debian's `wrk`
# package); the ceiling is a bare hyper server built from this repository
# (`vexil-bench bare-server`) measured in the same run. Server pinned to
# core 0, wrk to core 1. Each request is run RUNS times for SECONDS each and
# the median req/s is reported, with the p99 of that run, the ratio to the
# bare server, and the CPU share each side used (a load generator near 100 %
# while the server is well below it would mean the generator, not the
# server, is the limit).
# PERF=1 also records a perf profile of the single-flag route and prints
# its top entries. Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-flags.sh
SECONDS_PER_RUN="${SECONDS_PER_RUN:-8}"
RUNS="${RUNS:-3}"
CONNS="${CONNS:-64}"
# Ports on 127.0.0.1: PORT_BASE (the edge), +1 (the server), +2 (the bare server).
PORT_BASE="${PORT_BASE:-18097}"
P_EDGE=$PORT_BASE P_SERVER=$((PORT_BASE + 1)) P_BARE=$((PORT_BASE + 2))
if ! command -v wrk > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get install -y -qq wrk > /dev/null || { apt-get update -qq && apt-get install -y -qq wrk > /dev/null; }
  else
    echo "wrk is needed: apt-get install wrk" >&2
    exit 1
  fi
fi
cargo build --release -q -p vexil -p vexil-bench
BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
LUA

# CPU ticks (user + system) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench NAME SERVER_PID URL [wrk -H args...]: RUNS runs, prints one line.
bench() {
  local name=$1 pid=$2 url=$3; shift 3
  local results=()
  for _ in $(seq "$RUNS"); do
    local before after
    before=$(ticks "$pid")
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/post.lua" "$@" "$url" > "$WORK/wrk.out" &
    local wrk_pid=$!
    sleep 1
    local wrk_before; wrk_before=$(ticks "$wrk_pid" 2>/dev/null || echo 0)
    sleep $((SECONDS_PER_RUN - 2))
    local wrk_after; wrk_after=$(ticks "$wrk_pid" 2>/dev/null || echo 0)
    wait "$wrk_pid"
    after=$(ticks "$pid")
    local rps p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
    non2xx=$(awk '/Non-2xx or 3xx/ {print $5}' "$WORK/wrk.out")
    local hz; hz=$(getconf CLK_TCK)
    local server_cpu wrk_cpu
    server_cpu=$(awk -v d=$((after - before)) -v hz="$hz" -v s="$SECONDS_PER_RUN" 'BEGIN {printf "%.0f", 100 * d / hz / s}')
    wrk_cpu=$(awk -v d=$((wrk_after - wrk_before)) -v hz="$hz" -v s=$((SECONDS_PER_RUN - 2)) 'BEGIN {printf "%.0f", 100 * d / hz / s}')
    results+=("$rps $p99 $server_cpu $wrk_cpu ${non2xx:-0}")
  done
  # The median run by req/s.
  local median
  median=$(printf '%s\n' "${results[@]}" | sort -n -k1 | sed -n "$(( (RUNS + 1) / 2 ))p")
  read -r rps p99 server_cpu wrk_cpu non2xx <<< "$median"
  local ratio=""
  if [ -n "${CEILING:-}" ]; then
    ratio=$(awk -v r="$rps" -v c="$CEILING" 'BEGIN {printf "%.1f %%", 100 * r / c}')
  fi
  local all; all=$(printf '%s\n' "${results[@]}" | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}')
  printf '%-44s %10.0f req/s  p99 %-8s %-8s server cpu %3s %%  wrk cpu %3s %%  non-2xx/3xx %s  (runs: %s)\n' \
    "$name" "$rps" "$p99" "$ratio" "$server_cpu" "$wrk_cpu" "$non2xx" "$all"
  LAST_RPS=$rps
}

CTX='{"context":{"targetingKey":"user-1234567","country":"CA","plan":"pro"}}'
export BODY=$CTX

echo "== wrk -t1 -c$CONNS, ${RUNS} x ${SECONDS_PER_RUN} s, median; server on core 0, wrk on core 1"
taskset -c 0 "$BIN/vexil-bench" bare-server --listen 127.0.0.1:$P_BARE > /dev/null & PIDS+=($!)
BARE=$!
sleep 0.5
[ "${ONLY:-}" = edge ] || bench "bare hyper server (the ceiling)" "$BARE" http://127.0.0.1:$P_BARE/ofrep/v1/evaluate/flags/flag-7
CEILING=${LAST_RPS:-}
kill "$BARE"; sleep 0.3

export VEXIL_ADMIN_KEY=bench-admin-key-0123456789
# Limits stay on (so their cost is measured) but high enough not to refuse.
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:$P_SERVER --data-dir "$WORK/data" \
  --rate-limit-client 100000000 --rate-limit-server 100000000 --rate-limit-admin 0 > "$WORK/serve.log" 2>&1 & PIDS+=($!)
SERVER=$!
sleep 1
bench_flags "$WORK/flags.json" 50
export VEXIL_URL=http://127.0.0.1:$P_SERVER
"$BIN/vexil" import "$WORK/flags.json" > /dev/null
KEY=$("$BIN/vexil" keys create --name bench --scope client 2>/dev/null)
V=http://127.0.0.1:$P_SERVER
# ONLY=edge: just the edge against the server (the alternating rounds below).
if [ "${ONLY:-}" != edge ]; then
bench "OFREP single flag" "$SERVER" "$V/ofrep/v1/evaluate/flags/flag-7" -H "Authorization: Bearer $KEY"
if [ -n "${PERF:-}" ]; then
  # PERF=1: where the single-flag route's time goes, from perf (cpu-clock
  # samples with call graphs of the server under the same load).
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$((SECONDS_PER_RUN + 2))s" -s "$WORK/post.lua" \
    -H "Authorization: Bearer $KEY" "$V/ofrep/v1/evaluate/flags/flag-7" > /dev/null &
  PERF_LOAD=$!
  sleep 1
  perf record -q -e cpu-clock -F 1999 -g -p "$SERVER" -o "$WORK/perf.data" -- sleep "$SECONDS_PER_RUN" 2> /dev/null
  wait "$PERF_LOAD"
  echo "== perf: OFREP single flag, by DSO, then by symbol (top 40, self time)"
  { perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2> /dev/null | grep '%' | head -5; } || true
  { perf report -i "$WORK/perf.data" --no-children --sort sym --stdio -g none 2> /dev/null | grep '%' | head -40; } || true
fi
bench "OFREP bulk, 50 flags" "$SERVER" "$V/ofrep/v1/evaluate/flags" -H "Authorization: Bearer $KEY"
ETAG=$(curl -s -D - -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$CTX" "$V/ofrep/v1/evaluate/flags" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
bench "OFREP bulk, 304 (If-None-Match)" "$SERVER" "$V/ofrep/v1/evaluate/flags" -H "Authorization: Bearer $KEY" -H "If-None-Match: $ETAG"
bench "native POST /api/v1/evaluate, 50 flags" "$SERVER" "$V/api/v1/evaluate" -H "Authorization: Bearer $KEY"
fi

echo "== the same requests at an edge following that server (edge on core 0, the idle server beside it), alternating with the server"
SKEY=$("$BIN/vexil" keys create --name edge --scope server 2>/dev/null)
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" edge --listen 127.0.0.1:$P_EDGE --upstream "$V" --key "$SKEY" \
  --rate-limit-client 100000000 --rate-limit-server 100000000 > "$WORK/edge.log" 2>&1 & PIDS+=($!)
EDGE=$!
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:$P_EDGE/readyz && break; sleep 0.1; done
E=http://127.0.0.1:$P_EDGE
# The edge against the server on the same request: PAIRS rounds, each the
# server then the edge, so that drift of the machine over the run falls on
# both alike; the ratio is of the two medians.
pair() {
  local name=$1 path=$2 server=() edge=()
  for _ in $(seq "${PAIRS:-5}"); do
    RUNS=1 bench "server: $name" "$SERVER" "$V$path" -H "Authorization: Bearer $KEY" > /dev/null
    server+=("$LAST_RPS")
    RUNS=1 bench "edge: $name" "$EDGE" "$E$path" -H "Authorization: Bearer $KEY" > /dev/null
    edge+=("$LAST_RPS")
  done
  local ms me
  ms=$(printf '%s\n' "${server[@]}" | sort -n | sed -n "$(( (${PAIRS:-5} + 1) / 2 ))p")
  me=$(printf '%s\n' "${edge[@]}" | sort -n | sed -n "$(( (${PAIRS:-5} + 1) / 2 ))p")
  # Each round's edge/server ratio; their median is robust to drift between rounds.
  local paired
  paired=$(for i in "${!server[@]}"; do awk -v e="${edge[$i]}" -v s="${server[$i]}" 'BEGIN {printf "%.3f\n", e / s}'; done \
    | sort -n | sed -n "$(( (${PAIRS:-5} + 1) / 2 ))p")
  printf '%-44s server %8.0f  edge %8.0f req/s (medians)  edge/server %s; median of the rounds'"'"' ratios %s  (server: %s; edge: %s)\n' "$name" "$ms" "$me" \
    "$(awk -v e="$me" -v s="$ms" 'BEGIN {printf "%.1f %%", 100 * e / s}')" "$(awk -v r="$paired" 'BEGIN {printf "%.1f %%", 100 * r}')" "${server[*]}" "${edge[*]}"
}
pair "OFREP single flag" /ofrep/v1/evaluate/flags/flag-7
pair "OFREP bulk, 50 flags" /ofrep/v1/evaluate/flags
echo "edge idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$EDGE/status)"
kill "$EDGE"

[ "${ONLY:-}" = edge ] && exit 0
echo "== overload: single-flag load against a client key limited to 5000 req/s"
kill "$SERVER"; sleep 0.5
VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:$P_SERVER --data-dir "$WORK/data" \
  --rate-limit-client 5000 --rate-limit-admin 0 > "$WORK/serve2.log" 2>&1 & PIDS+=($!)
SERVER=$!
sleep 1
RUNS=1 bench "OFREP single, over the key's rate (429s)" "$SERVER" "$V/ofrep/v1/evaluate/flags/flag-7" -H "Authorization: Bearer $KEY"
