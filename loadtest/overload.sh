#!/usr/bin/env bash
# Overload: find the closed-loop maximum, offer twice that open loop, then
# half of it, against a release bidder on loadtest/config. Prints each
# phase's summary, the bidder's RSS, and its own latency histogram and
# no-bid counts from /metrics. Usage: loadtest/overload.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
cargo build --release -q -p bullseye -p loadtest
data=$(mktemp -d)
./target/release/bullseye serve --config loadtest/config --listen 127.0.0.1:18080 --data-dir "$data" > "$data/serve.log" 2>&1 &
bidder=$!
trap 'kill $bidder 2>/dev/null || true' EXIT
until curl -sf http://127.0.0.1:18080/healthz > /dev/null; do sleep 0.2; done
rss() { awk '/VmRSS|VmHWM/ {printf "%s %s MB  ", $1, int($2/1024)}' /proc/$bidder/status; echo; }
server_side() {
  curl -s http://127.0.0.1:18081/metrics | python3 -c '
import sys
buckets, count = [], 0
for line in sys.stdin:
    if line.startswith("bullseye_bid_latency_seconds_bucket"):
        le = line.split("le=\"")[1].split("\"")[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    if line.startswith("bullseye_no_bids_total") and not line.rstrip().endswith(" 0"):
        print("   ", line.strip())
    if line.startswith("bullseye_http_responses_total"):
        print("   ", line.strip())
total = buckets[-1][1]
for q in (0.5, 0.99, 0.999, 1.0):
    le = next(le for le, c in buckets if c >= q * total)
    print(f"    server-side bid latency p{q*100:g} <= {le*1000:g} ms")
'
}
echo "== closed loop, 32 connections: the maximum"
max=$(./target/release/loadtest --target http://127.0.0.1:18080/openrtb2/bid --connections 32 --duration "$seconds" --json 2>/dev/null | tail -n 1 | python3 -c 'import json,sys; s=json.load(sys.stdin); print(int(s["rps"]))')
echo "maximum: $max req/s"; rss
for phase in "twice the maximum:$((max * 2))" "half the maximum, right after:$((max / 2))"; do
  rate=${phase##*:}
  echo "== open loop at $rate req/s (${phase%%:*}), 256 connections"
  ./target/release/loadtest --target http://127.0.0.1:18080/openrtb2/bid --rate "$rate" --connections 256 --duration "$seconds" 2>/dev/null
  rss; server_side
done
