#!/usr/bin/env bash
# Handler CPU per request (criterion): GET /health, GET /vault/pool, GET /tasks/{id},
# POST /tasks and the router's SQS event, each through the in-process invoker with its
# DynamoDB and SQS clients over a stub store (no emulator, no network). Optimized build
# (the `bench` profile: opt-level 3, no LTO). Extra arguments go to criterion (e.g. a
# filter, `--quick`); BENCH_QUICK=1 passes `--quick` (a few seconds in all, for CI).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
args=("$@")
[[ "${BENCH_QUICK:-}" == 1 ]] && args+=(--quick)
out="$STATE/bench-cpu.txt"
stamp="$STATE/bench-cpu.stamp"
touch "$stamp"
cargo bench --quiet -p aicity-local --bench handlers -- "${args[@]}" | tee "$out"

# criterion's point estimates, as one table (its estimates.json, in nanoseconds).
# Only what this run measured (a filter leaves older results in place).
python3 - "${CARGO_TARGET_DIR:-$ROOT/target}/criterion/handlers" "$stamp" <<'PY'
import json, os, pathlib, sys
root = pathlib.Path(sys.argv[1])
since = os.path.getmtime(sys.argv[2])
rows = []
for estimates in sorted(root.glob("*/new/estimates.json")):
    if os.path.getmtime(estimates) < since:
        continue
    name = json.loads((estimates.parent / "benchmark.json").read_text())["function_id"]
    e = json.loads(estimates.read_text())
    rows.append((name, e["median"]["point_estimate"] / 1000, e["mean"]["confidence_interval"]))
print()
print("## Handler CPU per request (in process, stub store; criterion median)")
print()
print("| request | µs per request | mean 95% CI (µs) |")
print("|---|---:|---:|")
for name, median, ci in rows:
    print(f"| {name} | {median:.1f} | {ci['lower_bound']/1000:.1f} – {ci['upper_bound']/1000:.1f} |")
PY
