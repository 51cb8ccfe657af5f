#!/usr/bin/env bash
# What a response's size costs on its own (issue 14): the floor (a bare
# hyper server) answering 204, and answering 200 with JSON bodies of the
# given sizes (`loadtest floor --answer-bytes N`), alternated, each alone
# on one core with the load generator on the other; prints the rate and
# the server's CPU per request (utime + stime from /proc) per run and the
# means per size.
#
# Usage: loadtest/response-size.sh [ROUNDS]   (3)
#   SIZES="0 1650 1900" (0: the 204 yardstick) SECONDS_PER_RUN=8
#   CONNECTIONS=32 SERVER_CPU=1 LOAD_CPU=0
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} sizes=${SIZES:-"0 1650 1900"}
seconds=${SECONDS_PER_RUN:-8} connections=${CONNECTIONS:-32}
server_cpu=${SERVER_CPU:-1} load_cpu=${LOAD_CPU:-0}
cargo build --release -q -p loadtest
templates=$(mktemp -d)
cp ../shared/corpus/requests/iab/simple-banner.json "$templates/"
hz=$(getconf CLK_TCK)
results=$(mktemp)
pid=
trap 'kill $pid 2>/dev/null || true; rm -rf "$templates" "$results"' EXIT
for _ in $(seq "$rounds"); do
  for size in $sizes; do
    args=()
    [ "$size" = 0 ] || args=(--answer-bytes "$size")
    taskset -c "$server_cpu" target/release/loadtest floor --listen 127.0.0.1:18490 ${args[@]+"${args[@]}"} > /dev/null 2>&1 &
    pid=$!
    until curl -s -o /dev/null -X POST http://127.0.0.1:18490/openrtb2/bid; do
      kill -0 "$pid" 2> /dev/null || { echo "the floor did not start" >&2; exit 1; }
      sleep 0.2
    done
    taskset -c "$load_cpu" target/release/loadtest --target http://127.0.0.1:18490/openrtb2/bid \
      --templates "$templates" --users 500 --duration 2 > /dev/null 2>&1
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    summary=$(taskset -c "$load_cpu" target/release/loadtest --target http://127.0.0.1:18490/openrtb2/bid \
      --templates "$templates" --users 500 --duration "$seconds" --connections "$connections" --json 2>/dev/null | tail -n 1)
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    pid=
    python3 - "$size" "$summary" $((after - before)) "$hz" <<'PY' | tee -a "$results"
import json, sys
size, s, ticks, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu = ticks / hz / max(s["requests"], 1) * 1e6
print(f"{size}\t{s['rps']:.0f} rps\t{cpu:.2f} µs/request")
PY
  done
done
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    size, rps, cpu = line.rstrip("\n").split("\t")
    runs.setdefault(size, []).append((float(rps.split()[0]), float(cpu.split()[0])))
for size, r in runs.items():
    label = "204, no body" if size == "0" else f"200, {size} bytes"
    print(f"mean {label}: {statistics.mean(x[0] for x in r):,.0f} rps, "
          f"{statistics.mean(x[1] for x in r):.2f} µs/request ({len(r)} runs)")
PY
