#!/usr/bin/env bash
# The memory curve of a saturation run (issue 14): the bidder pinned on
# one core, the load generator playing the exchange (`--notices`: win and
# billing notices, pixels, clicks) on the other, mixed traffic over a
# million users, with the bundled map bounds; prints every 10 s the
# resident set (VmRSS), the dedup set's claims, the bytes its tables have
# allocated (`bullseye_dedup_bytes`), and the resident set without them.
#
# Usage: loadtest/rss.sh [BINARY] [SECONDS]   (default target/release/bullseye, 600)
#   MAX_DEDUP=N runs with `[tracking] max_dedup_entries = N` (a bound the
#   run reaches: from then on new notices get 503 and the set stops growing)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/bullseye} seconds=${2:-600}
cargo build --release -q -p loadtest
data=$(mktemp -d)
config=loadtest/config
if [ -n "${MAX_DEDUP:-}" ]; then
  # A sibling of loadtest/config, so that its relative paths still hold.
  config=$(mktemp -d loadtest/.rss-config.XXXX)
  cp -r loadtest/config/. "$config/"
  printf '\n[tracking]\nmax_dedup_entries = %s\n' "$MAX_DEDUP" >> "$config/bullseye.toml"
fi
taskset -c 1 env RUST_LOG=warn "$bin" serve --config "$config" --listen 127.0.0.1:18280 \
  --admin-listen 127.0.0.1:18281 --data-dir "$data" > /dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"; [ "$config" = loadtest/config ] || rm -rf "$config"' EXIT
until curl -s -o /dev/null http://127.0.0.1:18280/healthz; do
  kill -0 "$pid" 2> /dev/null || { echo "the bidder did not start" >&2; exit 1; }
  sleep 0.2
done
taskset -c 0 target/release/loadtest --target http://127.0.0.1:18280/openrtb2/bid --traffic mixed \
  --users 1000000 --notices --duration "$seconds" --json > /dev/null 2>&1 &
load=$!
start=$(date +%s)
echo "seconds rss_kb dedup_entries dedup_kb rss_without_dedup_kb"
while kill -0 "$load" 2>/dev/null; do
  metrics=$(curl -s http://127.0.0.1:18281/metrics)
  dedup=$(awk '/^bullseye_dedup_entries /{print $2}' <<< "$metrics")
  bytes=$(awk '/^bullseye_dedup_bytes /{print $2}' <<< "$metrics")
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  echo "$(( $(date +%s) - start )) $rss ${dedup:-?} $(( ${bytes:-0} / 1024 )) $(( rss - ${bytes:-0} / 1024 ))"
  sleep 10
done
