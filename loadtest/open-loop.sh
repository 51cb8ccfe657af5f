#!/usr/bin/env bash
# Open-loop latency against load (issue 14): the bidder pinned on one core
# (`taskset -c $SERVER_CPU`, `loadtest/config`), the load generator on the
# other, one fixed rate after another (latency from each request's due
# time); prints per rate the p50, p99, p99.9 and max, and the server's CPU
# per request (utime + stime from /proc over the run).
#
# Usage: loadtest/open-loop.sh [RATES...]   (default 5000 10000 15000 20000)
#   BODY=iab/simple-banner.json SECONDS_PER_RUN=8 CONNECTIONS=256
#   SERVER_CPU=1 LOAD_CPU=0 BIDDER=target/release/bullseye
#   FLOOR=1 measures the floor (`loadtest floor`) instead of the bidder
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(5000 10000 15000 20000)
body=${BODY:-iab/simple-banner.json} seconds=${SECONDS_PER_RUN:-8} connections=${CONNECTIONS:-256}
server_cpu=${SERVER_CPU:-1} load_cpu=${LOAD_CPU:-0}
cargo build --release -q -p bullseye -p loadtest
templates=$(mktemp -d) data=$(mktemp -d)
cp "../shared/corpus/requests/$body" "$templates/"
if [ "${FLOOR:-0}" = 1 ]; then
  taskset -c "$server_cpu" target/release/loadtest floor --listen 127.0.0.1:18680 > /dev/null 2>&1 &
else
  taskset -c "$server_cpu" env RUST_LOG=warn "${BIDDER:-target/release/bullseye}" serve --config loadtest/config \
    --listen 127.0.0.1:18680 --admin-listen 127.0.0.1:18681 --data-dir "$data" > /dev/null 2>&1 &
fi
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$templates" "$data"' EXIT
until curl -s -o /dev/null -X POST http://127.0.0.1:18680/openrtb2/bid; do
  kill -0 "$pid" 2> /dev/null || { echo "the server did not start" >&2; exit 1; }
  sleep 0.2
done
# Warm up (page cache, allocator, branch predictors), then measure.
taskset -c "$load_cpu" target/release/loadtest --target http://127.0.0.1:18680/openrtb2/bid \
  --templates "$templates" --users 500 --duration 2 > /dev/null 2>&1
hz=$(getconf CLK_TCK)
echo "| rate | p50 ms | p99 ms | p99.9 ms | max ms | server CPU µs/request |"
echo "|---|---|---|---|---|---|"
for rate in "${rates[@]}"; do
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  summary=$(taskset -c "$load_cpu" target/release/loadtest --target http://127.0.0.1:18680/openrtb2/bid \
    --templates "$templates" --users 500 --duration "$seconds" --rate "$rate" --connections "$connections" \
    --json 2>/dev/null | tail -n 1)
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  python3 - "$rate" "$summary" $((after - before)) "$hz" <<'PY'
import json, sys
rate, s, ticks, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu = ticks / hz / max(s["requests"], 1) * 1e6
print(f"| {int(rate):,} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['p999_ms']:.2f} | {s['max_ms']:.2f} | {cpu:.1f} |")
PY
done
