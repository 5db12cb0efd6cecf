#!/usr/bin/env bash
# Memory of an idle HTTP connection, as recorded in docs/benchmarks.md: the
# server's RSS growth per keep-alive connection left idle after one request
# (`GET /healthz`), for `vexil serve` and for the bare hyper server built
# from this repository (the floor: hyper's own connection). Both pinned to
# core 0; CONNS connections (default 3000). Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS="${CONNS:-3000}"
PORT="${PORT:-18093}"
cargo build --release -q -p vexil -p vexil-bench
BIN=target/release
WORK=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# measure NAME: connections to the server running as $PID on $PORT.
measure() {
  python3 - "$PID" "$PORT" "$CONNS" "$1" <<'PY'
import socket, sys, time
pid, port, conns, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rss():
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS")).split()[1])
def connect():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
    return s
# A few first, so that what every server allocates once is counted before.
warm = [connect() for _ in range(50)]
for s in warm:
    s.recv(4096)
time.sleep(0.5)
before = rss()
socks = [connect() for _ in range(conns)]
for s in socks:
    s.recv(4096)
time.sleep(1)
after = rss()
print(f"{name}: idle RSS {before} KiB; {conns} idle keep-alive connections "
      f"-> {after} KiB = {(after - before) / conns:.1f} KiB per connection")
PY
}

taskset -c 0 "$BIN/vexil-bench" bare-server --listen 127.0.0.1:$PORT > /dev/null &
PID=$!
sleep 0.5
measure "bare hyper server"
kill "$PID"; wait "$PID" 2>/dev/null || true

VEXIL_LOG=warn taskset -c 0 "$BIN/vexil" serve --listen 127.0.0.1:$PORT --data-dir "$WORK/data" \
  --rate-limit-admin 0 > "$WORK/serve.log" 2>&1 &
PID=$!
sleep 1
measure "vexil serve"
