#!/usr/bin/env bash
# Two builds of the bidder, alternated, each alone on one core (issue 14):
# on a host whose speed drifts from run to run, only alternation compares
# them fairly. Per round and build: start the bidder pinned (`taskset -c
# $SERVER_CPU`) on `loadtest/config`, warm up 2 s, then a closed loop from
# the other core (`taskset -c $LOAD_CPU`); prints the rate and the server's
# CPU per request (utime + stime from /proc), and the means per build.
#
# Usage: loadtest/alternate.sh OLD_BINARY NEW_BINARY [BODY] [ROUNDS]
#   BODY: a corpus request (default iab/simple-banner.json); ROUNDS (5)
#   SECONDS_PER_RUN=8 CONNECTIONS=32 SERVER_CPU=1 LOAD_CPU=0
#   NOTICES=1 plays the exchange (`--notices`, all corpus requests) and
#   reports durable notices per second instead
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 body=${3:-iab/simple-banner.json} rounds=${4:-5}
seconds=${SECONDS_PER_RUN:-8} connections=${CONNECTIONS:-32}
server_cpu=${SERVER_CPU:-1} load_cpu=${LOAD_CPU:-0}
cargo build --release -q -p loadtest
templates=$(mktemp -d)
cp "../shared/corpus/requests/$body" "$templates/"
hz=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -rf "$templates" "$results"' EXIT
for _ in $(seq "$rounds"); do
  for bin in "$old" "$new"; do
    data=$(mktemp -d)
    taskset -c "$server_cpu" env RUST_LOG=warn "$bin" serve --config loadtest/config \
      --listen 127.0.0.1:18480 --admin-listen 127.0.0.1:18481 --data-dir "$data" > /dev/null 2>&1 &
    pid=$!
    until curl -s -o /dev/null http://127.0.0.1:18480/healthz; do sleep 0.2; done
    if [ "${NOTICES:-0}" = 1 ]; then
      args=(--notices)
    else
      args=(--templates "$templates")
    fi
    taskset -c "$load_cpu" target/release/loadtest --target http://127.0.0.1:18480/openrtb2/bid "${args[@]}" \
      --users 500 --duration 2 > /dev/null 2>&1
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    summary=$(taskset -c "$load_cpu" target/release/loadtest --target http://127.0.0.1:18480/openrtb2/bid "${args[@]}" \
      --users 500 --duration "$seconds" --connections "$connections" --json 2>/dev/null | tail -n 1)
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
    python3 - "$bin" "$summary" $((after - before)) "$hz" <<'PY' | tee -a "$results"
import json, sys
bin, s, ticks, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu = ticks / hz / max(s["requests"], 1) * 1e6
print(f"{bin}\t{s['rps']:.0f} rps\t{cpu:.2f} µs/request\t{s['notices_per_s']:.0f} notices/s")
PY
  done
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    bin, rps, cpu, notices = line.rstrip("\n").split("\t")
    runs.setdefault(bin, []).append((float(rps.split()[0]), float(cpu.split()[0]), float(notices.split()[0])))
for bin, r in runs.items():
    print(f"mean {bin}: {statistics.mean(x[0] for x in r):,.0f} rps, {statistics.mean(x[1] for x in r):.2f} µs/request, "
          f"{statistics.mean(x[2] for x in r):,.0f} notices/s ({len(r)} runs)")
PY
