#!/usr/bin/env bash
# The pinned comparison (issue 14): the floor (a bare hyper server) and the
# bidder each run alone on one core (`taskset -c $SERVER_CPU`), the load
# generator on the other (`taskset -c $LOAD_CPU`), so the generator's share
# of the CPU does not blur the ratio. Per request body it measures, in one
# run: the closed-loop maximum of the floor and of the bidder (32
# connections), the server CPU per request read from /proc (utime + stime
# of the server process over the run), and the bidder's open-loop latency
# at half of its maximum (latency from each request's intended send time).
# It also runs both unpinned on the two cores (report only). Prints the
# PERFORMANCE.md table, and writes every run's JSON under $OUT.
#
# Usage: loadtest/pinned.sh [SECONDS]
#   BODIES="iab/simple-banner.json iab/video.json"  the corpus requests, one per row
#   SERVER_CPU=1 LOAD_CPU=0  the cores; CONNECTIONS=32; OUT=/tmp/pinned
#   UNPINNED=0 skips the unpinned rows; USERS=500 distinct users (Zipf)
#   BIDDER=path/to/bullseye measures another build (e.g. the one before a
#   change) against the same floor
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
bodies=${BODIES:-"iab/simple-banner.json iab/video.json"}
server_cpu=${SERVER_CPU:-1}
load_cpu=${LOAD_CPU:-0}
connections=${CONNECTIONS:-32}
users=${USERS:-500}
out=${OUT:-/tmp/pinned}
mkdir -p "$out"
cargo build --release -q -p bullseye -p loadtest
bin=target/release
corpus=../shared/corpus/requests
hz=$(getconf CLK_TCK)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# The CPU time (in clock ticks) a process and its threads have used.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_up() { until curl -s -o /dev/null "http://$1/healthz" || curl -s -o /dev/null -X POST "http://$1/openrtb2/bid"; do sleep 0.2; done; }

# run NAME PID URL TEMPLATES [loadtest args...]: one load run against a
# server, its JSON summary in $out/NAME.json plus the server's CPU ticks.
run() {
  local name=$1 pid=$2 url=$3 templates=$4
  shift 4
  local before after
  before=$(ticks "$pid")
  taskset -c "$load_cpu" "$bin/loadtest" --target "$url" --templates "$templates" --users "$users" \
    --duration "$seconds" --json "$@" 2>/dev/null | tail -n 1 > "$out/$name.json"
  after=$(ticks "$pid")
  python3 - "$out/$name.json" $((after - before)) "$hz" <<'EOF'
import json, sys
path, ticks, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = json.load(open(path))
s["server_cpu_s"] = ticks / hz
s["server_cpu_us_per_request"] = ticks / hz / max(s["requests"], 1) * 1e6
json.dump(s, open(path, "w"))
EOF
}

# start NAME CPUS COMMAND...: a server on the given cores, in the background.
start() {
  local cpus=$1
  shift
  taskset -c "$cpus" "$@" > "$out/server.log" 2>&1 &
  pids+=($!)
  echo $!
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

measure() { # measure LABEL CPUS: every body against the floor and the bidder
  local label=$1 cpus=$2
  for body in $bodies; do
    local key templates
    key=$label-$(basename "$body" .json)
    templates=$(mktemp -d)
    cp "$corpus/$body" "$templates/"
    local floor bidder data
    floor=$(start "$cpus" "$bin/loadtest" floor --listen 127.0.0.1:18090)
    wait_up 127.0.0.1:18090
    run "$key-floor" "$floor" http://127.0.0.1:18090/openrtb2/bid "$templates" --connections "$connections"
    stop "$floor"
    data=$(mktemp -d)
    bidder=$(start "$cpus" env RUST_LOG=warn "${BIDDER:-$bin/bullseye}" serve --config loadtest/config \
      --listen 127.0.0.1:18080 --admin-listen 127.0.0.1:18081 --data-dir "$data")
    wait_up 127.0.0.1:18080
    # Warm up (page cache, allocator, branch predictors), then measure.
    taskset -c "$load_cpu" "$bin/loadtest" --target http://127.0.0.1:18080/openrtb2/bid --templates "$templates" \
      --duration 2 > /dev/null 2>&1
    run "$key-bidder" "$bidder" http://127.0.0.1:18080/openrtb2/bid "$templates" --connections "$connections"
    if [ "$label" = pinned ]; then
      local half
      half=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["rps"] / 2))' "$out/$key-bidder.json")
      run "$key-open" "$bidder" http://127.0.0.1:18080/openrtb2/bid "$templates" --rate "$half" --connections 256
    fi
    stop "$bidder"
    if [ "$label" = pinned ]; then
      # The floor at the same rate: what the generator and the kernel
      # alone add to the open-loop latency.
      floor=$(start "$cpus" "$bin/loadtest" floor --listen 127.0.0.1:18090)
      wait_up 127.0.0.1:18090
      run "$key-floor-open" "$floor" http://127.0.0.1:18090/openrtb2/bid "$templates" --rate "$half" --connections 256
      stop "$floor"
    fi
    rm -rf "$data" "$templates"
  done
}

measure pinned "$server_cpu"
if [ "${UNPINNED:-1}" != 0 ]; then
  load_cpu=0,1 measure unpinned 0,1
fi

python3 - "$out" "$bodies" <<'EOF'
import json, os, sys
out, bodies = sys.argv[1], sys.argv[2].split()
def load(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None
print("| body | floor rps | bidder rps | ratio | server CPU µs/request (floor, bidder) | bid rate | open loop at half max: rps, p99, p99.9 (floor's p99, p99.9 at that rate) | unpinned ratio |")
print("|---|---|---|---|---|---|---|---|")
for body in bodies:
    key = os.path.basename(body)[:-5]
    f, b, o = load(f"pinned-{key}-floor"), load(f"pinned-{key}-bidder"), load(f"pinned-{key}-open")
    fo = load(f"pinned-{key}-floor-open")
    uf, ub = load(f"unpinned-{key}-floor"), load(f"unpinned-{key}-bidder")
    unpinned = f"{ub['rps'] / uf['rps']:.2f}" if uf and ub else "-"
    print(f"| {body} | {f['rps']:,.0f} | {b['rps']:,.0f} | **{b['rps'] / f['rps']:.2f}** | "
          f"{f['server_cpu_us_per_request']:.2f}, {b['server_cpu_us_per_request']:.2f} | {b['bid_rate'] * 100:.1f} % | "
          f"{o['rps']:,.0f}: {o['p99_ms']:.2f} ms, {o['p999_ms']:.2f} ms ({fo['p99_ms']:.2f}, {fo['p999_ms']:.2f}) | {unpinned} |")
EOF
