#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) on nightly, growing the
# corpus in fuzz/corpus/<target> from the seeds in fuzz/seeds/<target>.
# Crashes land in fuzz/artifacts/<target>/: minimise one (cargo fuzz tmin) and
# move it to fuzz/regressions/<target>/, where cargo test replays it. Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decode_request bid_path tracking_url config snapshot ledger_recovery)
fi
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "== $target (${seconds}s)"
  seeds=()
  [ -d "seeds/$target" ] && seeds+=("seeds/$target")
  case $target in
    decode_request | bid_path) seeds+=(../../shared/corpus/requests ../../shared/corpus/bad) ;;
  esac
  cargo +nightly fuzz run -O "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=5 -rss_limit_mb=4096 -print_final_stats=1 2>&1 |
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==|SUMMARY|.*panicked)' || true
done
