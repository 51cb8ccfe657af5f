#!/usr/bin/env bash
# Frequency-cap overshoot across a cluster (issue 12): three nodes over one
# redis-server, every load-test campaign capped at one impression per user
# per hour, the load generator spreading bids over the nodes and sending
# each bid's notices and (delayed) pixel to another node.
#
#   loadtest/cluster-frequency.sh [PIXEL_DELAY_MS] [SECONDS] [CONNECTIONS] [USERS]
#
# Needs target/release/{bullseye,loadtest} (cargo build --release -p
# bullseye -p loadtest; CARGO_TARGET_DIR is honoured) and redis-server.
# Prints the load generator's summary: "impressions per user and campaign:
# … pairs over one, … impressions past the first" is the overshoot.
set -euo pipefail
cd "$(dirname "$0")/.."
delay=${1:-500}
seconds=${2:-20}
connections=${3:-48}
users=${4:-20000}
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

# The load-test config with every campaign capped at 1 per user per hour.
python3 - "$work" <<'PY'
import pathlib, re, shutil, sys
work = pathlib.Path(sys.argv[1])
shutil.copytree("loadtest/config", work / "config")
for f in (work / "config/campaigns").glob("*.toml"):
    parts = re.split(r"(?m)^(?=\[\[campaign\]\])", f.read_text())
    out = []
    for part in parts:
        if part.startswith("[[campaign]]"):
            if "[campaign.targeting.frequency]" in part:
                part = re.sub(r"(?m)^  per_hour = \d+\n", "  per_hour = 1\n", part)
                part = re.sub(r"(?m)^  per_day = \d+\n", "", part)
            else:
                part = part.replace("  [[campaign.creative]]",
                                    "  [campaign.targeting.frequency]\n  per_hour = 1\n\n  [[campaign.creative]]", 1)
        out.append(part)
    f.write_text("".join(out))
cfg = work / "config/bullseye.toml"
cfg.write_text(cfg.read_text().replace('snapshot = "../../bidder-config/audience.snapshot"',
                                       'snapshot = "%s"' % (pathlib.Path.cwd() / "bidder-config/audience.snapshot")))
PY
"$bin/bullseye" check-config --config "$work/config" > /dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no > "$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$port" ping > /dev/null 2>&1; do sleep 0.1; done

targets=()
for i in 0 1 2; do
  mkdir -p "$work/config-$i"
  cp -r "$work/config/." "$work/config-$i/"
  "$bin/bullseye" serve --config "$work/config-$i" --listen "127.0.0.1:$((18180 + i))" \
    --admin-listen "127.0.0.1:$((18190 + i))" --data-dir "$work/data-$i" \
    --redis "redis://127.0.0.1:$port/0" --node-id "node-$i" > "$work/node-$i.log" 2>&1 &
  pids+=($!)
  targets+=(--target "http://127.0.0.1:$((18180 + i))/openrtb2/bid")
done
for i in 0 1 2; do
  until curl -sf "http://127.0.0.1:$((18190 + i))/healthz" > /dev/null 2>&1 \
     || grep -q "bullseye listening" "$work/node-$i.log"; do sleep 0.1; done
done

# The event delay under load: each node's bullseye_replication_lag_ms (the
# newest replicated event's age when applied), sampled every 200 ms.
(
  while true; do
    for i in 0 1 2; do
      curl -s "http://127.0.0.1:$((18190 + i))/metrics" | awk '/^bullseye_replication_lag_ms /{print $2}'
    done >> "$work/lag.txt"
    sleep 0.2
  done
) &
sampler=$!
pids+=($sampler)

"$bin/loadtest" "${targets[@]}" --notices --notice-spread --pixel-delay "$delay" --win-rate 1.0 \
  --click-rate 0 --connections "$connections" --duration "$seconds" --users "$users" \
  --templates ../shared/corpus/requests --bodies "${BODIES:-20000}" --json 2> "$work/loadtest.log"
echo "redis: $(redis-cli -p "$port" info commandstats | grep -E 'cmdstat_(xadd|xread|hset|hgetall)' | tr '\r\n' '  ')"
kill "$sampler" 2>/dev/null || true
grep -v '^0$' "$work/lag.txt" | sort -n | awk '{v[NR]=$1} END {if (NR) printf "event delay (replication lag samples, ms): n %d, p50 %d, p90 %d, p99 %d, max %d\n", NR, v[int(NR*0.5)+1], v[int(NR*0.9)+1], v[int(NR*0.99)+1], v[NR]}'
