#!/usr/bin/env bash
# The memory curve of a saturation run (issue 14): the bidder pinned on
# one core, the load generator playing the exchange (`--notices`: win and
# billing notices, pixels, clicks) on the other, mixed traffic over a
# million users, with the bundled map bounds; prints RSS (VmRSS, KB) and
# the dedup set's size every 10 s.
#
# Usage: loadtest/rss.sh [BINARY] [SECONDS]   (default target/release/bullseye, 600)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/bullseye} seconds=${2:-600}
cargo build --release -q -p loadtest
data=$(mktemp -d)
taskset -c 1 env RUST_LOG=warn "$bin" serve --config loadtest/config --listen 127.0.0.1:18280 \
  --admin-listen 127.0.0.1:18281 --data-dir "$data" > /dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
until curl -s -o /dev/null http://127.0.0.1:18280/healthz; do sleep 0.2; done
taskset -c 0 target/release/loadtest --target http://127.0.0.1:18280/openrtb2/bid --traffic mixed \
  --users 1000000 --notices --duration "$seconds" --json > /dev/null 2>&1 &
load=$!
start=$(date +%s)
echo "seconds rss_kb dedup_entries"
while kill -0 "$load" 2>/dev/null; do
  dedup=$(curl -s http://127.0.0.1:18281/metrics | awk '/^bullseye_dedup_entries /{print $2}')
  echo "$(( $(date +%s) - start )) $(awk '/VmRSS/{print $2}' "/proc/$pid/status") ${dedup:-?}"
  sleep 10
done
