#!/usr/bin/env bash
# Cold start (init, first invocation, peak RSS) and zipped package size of every
# function against a hello-world lambda_runtime binary (infra/bench/hello), release
# builds, alternating runs, medians.
#
#   scripts/bench-coldstart.sh              build target/release, measure it
#   scripts/bench-coldstart.sh DIR [DIR…]   measure binaries built elsewhere (a "before"
#                                           set); hello-lambda still comes from target/release
#
# BENCH_RUNS (15) runs per binary; BENCH_FUNCTIONS=health,tasks measures only those;
# BENCH_NO_BUILD=1 builds nothing (BENCH_TOOL and BENCH_HELLO name the tool and the
# hello-world binary, target/release's by default).
# The functions get the deployed configuration (the template's defaults, Stripe and
# E2B, keys absent from SSM) with DynamoDB on DynamoDB Local and SQS and SSM on moto,
# so the first invocation really reaches a table.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

functions=()
for dir in functions/*/; do
  functions+=("$(basename "$dir")")
done
packages=()
for name in "${functions[@]}"; do
  packages+=(-p "$name")
done

tool="${BENCH_TOOL:-$ROOT/target/release/coldstart}"
hello="${BENCH_HELLO:-$ROOT/target/release/hello-lambda}"
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
  if [[ $# -eq 0 ]]; then
    log "release build of ${#functions[@]} functions and hello-lambda"
    cargo build --release --bins "${packages[@]}" -p hello-lambda
  else
    log "release build of hello-lambda"
    cargo build --release -p hello-lambda
  fi
  # Built on its own: its dependencies' features must not leak into the functions' build.
  log "building the bench tool"
  cargo build --release -p aicity-bench --bin coldstart
  cargo build --quiet -p aicity-local
fi
[[ $# -eq 0 ]] && set -- "$ROOT/target/release"

ensure_venv
port="$(free_port)"
start_moto "$port"
stop_on_exit "$STATE/moto-$port.pid"
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
port="$(free_port)"
start_dynamodb_local "$port"
stop_on_exit "$STATE/dynamodb-local-$port.pid"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"

# What a deployed stack runs with (template defaults; a key that is not a secret).
env_file="$STATE/bench-functions.env"
PAYMENT_PROVIDER=stripe SANDBOX_PROVIDER=e2b QUALITY_GATE=rules \
  WEBHOOK_SECRET_KEY="$(printf 'b%.0s' {1..64})" AICITY_LOCAL_PREFIX=aicity-bench- \
  "$ROOT/target/debug/aicity-local" provision --env-file "$env_file" >/dev/null

filter=()
[[ -n "${BENCH_FUNCTIONS:-}" ]] && filter=(--functions "$BENCH_FUNCTIONS")
for dir in "$@"; do
  log "cold start and package size: $dir"
  "$tool" "$dir" --hello "$hello" \
    --env-file "$env_file" --label "$dir" "${filter[@]}"
done
