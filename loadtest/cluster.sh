#!/usr/bin/env bash
# Cluster mode under load: a throwaway redis-server, three release nodes on
# loadtest/config sharing it, one load generator per node playing the
# exchange (--notices: win and billing notices, pixels, clicks). Prints
# each node's bids and billed events, and Redis's own count of commands
# (INFO commandstats, commands run inside scripts included) per bid request
# and per notice. Usage: loadtest/cluster.sh [SECONDS] [CONNECTIONS] [WIN_RATE]
# (WIN_RATE: the fraction of bids won, whose notices and pixel are sent;
# default 0.2).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
connections=${2:-8}
win_rate=${3:-0.2}
cargo build --release -q -p bullseye -p loadtest
work=$(mktemp -d)
port=$((20000 + RANDOM % 10000))
redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --dir "$work" > "$work/redis.log" 2>&1 &
redis=$!
pids=($redis)
trap 'kill ${pids[*]} 2>/dev/null || true' EXIT
until redis-cli -p $port ping > /dev/null 2>&1; do sleep 0.1; done
for n in 1 2 3; do
  BULLSEYE_SIGNING_KEY=cluster-loadtest-signing-key-0123456789abcdef \
  ./target/release/bullseye serve --config loadtest/config --listen 127.0.0.1:1808$n \
    --admin-listen 127.0.0.1:1809$n --data-dir "$work/node$n" \
    --redis redis://127.0.0.1:$port/0 --node-id node-$n > "$work/node$n.log" 2>&1 &
  pids+=($!)
done
for n in 1 2 3; do until curl -sf http://127.0.0.1:1808$n/healthz > /dev/null; do sleep 0.2; done; done
redis-cli -p $port config resetstat > /dev/null
for n in 1 2 3; do
  ./target/release/loadtest --target http://127.0.0.1:1808$n/openrtb2/bid --connections "$connections" \
    --duration "$seconds" --notices --win-rate "$win_rate" --json > "$work/load$n.json" 2>/dev/null &
  loads+=($!)
done
wait "${loads[@]}"
sleep 2
redis-cli -p $port info commandstats > "$work/commandstats.txt"
for n in 1 2 3; do curl -s http://127.0.0.1:1809$n/metrics > "$work/metrics$n.txt"; done
python3 - "$work" <<'PY'
import json, re, sys, pathlib
work = pathlib.Path(sys.argv[1])
def metric(text, name, labels=""):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line and not line.startswith("#"):
            total += float(line.split()[-1])
    return total
requests = bids = 0
notices = 0
background = claims = 0
for n in (1, 2, 3):
    load = json.loads((work / f"load{n}.json").read_text().splitlines()[-1])
    m = (work / f"metrics{n}.txt").read_text()
    node_requests = metric(m, "bullseye_bid_requests_total")
    node_bids = metric(m, "bullseye_bids_total")
    node_notices = load["notices"]
    requests += node_requests; bids += node_bids; notices += node_notices
    trips = {p: metric(m, "bullseye_redis_round_trips_total", f'purpose="{p}"') for p in ("membership", "claim", "lease", "events", "control")}
    background += sum(v for p, v in trips.items() if p != "claim")
    claims += trips["claim"]
    print(f"node-{n}: {load['rps']:.0f} req/s, {node_requests:.0f} bid requests, {node_bids:.0f} bids, {node_notices:.0f} notices (win, billing, pixel, click calls), round trips {trips}")
calls = 0
per_command = {}
for line in (work / "commandstats.txt").read_text().splitlines():
    m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
    if m:
        per_command[m.group(1)] = int(m.group(2)); calls += int(m.group(2))
print("redis commands:", dict(sorted(per_command.items(), key=lambda kv: -kv[1])))
print(f"total: {requests:.0f} bid requests, {notices:.0f} notices (win, billing, pixel, click calls), {calls} redis commands")
claim_commands = sum(n for c, n in per_command.items() if c in ("set", "get", "mget", "evalsha", "bitfield", "pexpire"))
print(f"round trips off the notice path (leases, events, control, membership) per bid request: {background / requests:.4f}")
print(f"claim round trips per notice: {claims / max(notices, 1):.2f}")
print(f"redis commands per bid request, everything included: {calls / requests:.4f}")
print(f"redis commands per notice, everything included: {calls / max(notices, 1):.2f}; claim commands alone (set, get, mget, evalsha, bitfield, pexpire): {claim_commands / max(notices, 1):.2f}")
PY
echo "(logs and figures in $work)"
