#!/usr/bin/env bash
# `make bench`: every figure of docs/performance.md in one run, each part side by side
# with its baseline where one exists (ratios, not absolute times: the machine is noisy).
#   1. cold start and zipped package size per function vs a hello-world lambda_runtime
#      binary (scripts/bench-coldstart.sh; release builds)
#   2. what one task lifecycle costs in DynamoDB, SQS and invocations
#      (scripts/bench-cost.sh; DynamoDB Local)
#   3. handler CPU per request (scripts/bench-cpu.sh; criterion, stub store)
#   4. local throughput and latency at 1, 10 and 40 concurrent clients
#      (scripts/bench-load.sh)
#   5. how many holds per second one owner's pool can take, sharded or not
#      (a simulation; shared/domain/examples/hot_pool)
# BENCH_PARTS=cost,cpu runs only those parts (coldstart, cost, cpu, load, hot-pool).
# The whole report is also written to .local/bench/report.md.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
parts="${BENCH_PARTS:-coldstart,cost,cpu,load,hot-pool}"
mkdir -p "$ROOT/.local/bench"
report="$ROOT/.local/bench/report.md"
: > "$report"
want() { [[ ",$parts," == *",$1,"* ]]; }
run() {
  log "bench: $1"
  shift
  "$@" | tee -a "$report"
  echo | tee -a "$report"
}
want coldstart && run "cold start and package size" scripts/bench-coldstart.sh
want cost && run "cost of a task lifecycle" scripts/bench-cost.sh
want cpu && run "handler CPU" scripts/bench-cpu.sh
want load && run "throughput and latency" scripts/bench-load.sh
want hot-pool && run "one owner's pool under load" \
  cargo run --quiet --release -p aicity-domain --example hot_pool
log "bench: report in $report"
