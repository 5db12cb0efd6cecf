#!/usr/bin/env bash
# Before/after in one run: the same HTTP requests against two `vexil`
# binaries, alternated (old, new, old, new, ...), server on core 0, wrk on
# core 1; prints each side's median req/s and the ratio new/old.
#   scripts/bench-compare.sh OLD_BINARY NEW_BINARY
# Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-flags.sh
OLD=$1 NEW=$2
SECONDS_PER_RUN="${SECONDS_PER_RUN:-6}"
ROUNDS="${ROUNDS:-3}"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
LUA
bench_flags "$WORK/flags.json" 50
export BODY='{"context":{"targetingKey":"user-1234567","country":"CA","plan":"pro"}}'
export VEXIL_ADMIN_KEY=bench-admin-key-0123456789

# start BINARY PORT DIR: a server with the 50 flags; sets SERVER, KEY, ETAG
start() {
  VEXIL_LOG=warn taskset -c 0 "$1" serve --listen "127.0.0.1:$2" --data-dir "$3" \
    --rate-limit-client 100000000 --rate-limit-server 100000000 --rate-limit-admin 0 > /dev/null 2>&1 & PIDS+=($!)
  SERVER=$!
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$2/readyz" && break; sleep 0.1; done
  VEXIL_URL="http://127.0.0.1:$2" "$1" import "$WORK/flags.json" > /dev/null
  KEY=$(VEXIL_URL="http://127.0.0.1:$2" "$1" keys create --name bench --scope client 2>/dev/null)
  ETAG=$(curl -s -D - -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$BODY" "http://127.0.0.1:$2/ofrep/v1/evaluate/flags" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
}
rps() { taskset -c 1 wrk -t1 -c64 -d"${SECONDS_PER_RUN}s" -s "$WORK/post.lua" "$@" | awk '/Requests\/sec/ {print $2}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start "$OLD" 18301 "$WORK/old"; OLD_PID=$SERVER OLD_KEY=$KEY OLD_ETAG=$ETAG
start "$NEW" 18302 "$WORK/new"; NEW_PID=$SERVER NEW_KEY=$KEY NEW_ETAG=$ETAG
echo "== $ROUNDS rounds of ${SECONDS_PER_RUN} s each, alternated; old: $OLD, new: $NEW"
for route in single bulk 304 native; do
  : > "$WORK/old.$route"; : > "$WORK/new.$route"
  for _ in $(seq "$ROUNDS"); do
    for side in old new; do
      if [ $side = old ]; then port=18301 key=$OLD_KEY etag=$OLD_ETAG; else port=18302 key=$NEW_KEY etag=$NEW_ETAG; fi
      url="http://127.0.0.1:$port"
      case $route in
        single) r=$(rps -H "Authorization: Bearer $key" "$url/ofrep/v1/evaluate/flags/flag-7") ;;
        bulk) r=$(rps -H "Authorization: Bearer $key" "$url/ofrep/v1/evaluate/flags") ;;
        304) r=$(rps -H "Authorization: Bearer $key" -H "If-None-Match: $etag" "$url/ofrep/v1/evaluate/flags") ;;
        native) r=$(rps -H "Authorization: Bearer $key" "$url/api/v1/evaluate") ;;
      esac
      echo "$r" >> "$WORK/$side.$route"
    done
  done
  o=$(median < "$WORK/old.$route"); n=$(median < "$WORK/new.$route")
  printf '%-8s old %9.0f req/s  new %9.0f req/s  new/old %5.1f %%   (old runs: %s; new runs: %s)\n' \
    "$route" "$o" "$n" "$(awk -v o="$o" -v n="$n" 'BEGIN {print 100 * n / o}')" \
    "$(tr '\n' ' ' < "$WORK/old.$route")" "$(tr '\n' ' ' < "$WORK/new.$route")"
done
