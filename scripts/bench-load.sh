#!/usr/bin/env bash
# Local throughput and latency: GET /vault/pool and GET /tasks/{id} at 1, 10 and 40
# concurrent clients for BENCH_SECONDS (3) each, printed as a markdown table.
#
# - default: every function in process behind the local runner (optimized build, the
#   `bench` profile), DynamoDB on DynamoDB Local and SQS on moto, each started here on
#   a free port; the request limits are raised in process (the example says so).
#   DYNAMODB=moto puts DynamoDB on moto too.
# - BENCH_URL=http://127.0.0.1:4000: drives that running server (e.g. `make dev`) as
#   it is; its limits are its own, so start it with the raised limits below.
# - BENCH_DEV=1: starts `make dev` itself (debug functions under `cargo lambda watch`,
#   as the issue's baseline was measured) with the limits raised, as
#   scripts/api-check.sh does, and drives it; stops it at the end.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv

# The limiter must not be what is measured: one owner sends thousands of requests.
raise_limits() {
  export RATE_LIMIT_PER_MINUTE="${RATE_LIMIT_PER_MINUTE:-1000000}"
  export AUTH_RATE_LIMIT_PER_MINUTE="${AUTH_RATE_LIMIT_PER_MINUTE:-1000000}"
  export RATE_LIMIT_ANONYMOUS_PER_MINUTE="${RATE_LIMIT_ANONYMOUS_PER_MINUTE:-1000000}"
  export FAILED_AUTH_LIMIT_PER_IP="${FAILED_AUTH_LIMIT_PER_IP:-1000000}"
  export SIGN_IN_LIMIT_PER_ACCOUNT="${SIGN_IN_LIMIT_PER_ACCOUNT:-1000000}"
  log "rate limits raised for the run: $RATE_LIMIT_PER_MINUTE a minute per principal, per IP and anonymous"
}

if [[ "${BENCH_DEV:-}" == 1 && -z "${BENCH_URL:-}" ]]; then
  raise_limits
  devlog="$STATE/bench-load-dev.log"
  setsid scripts/dev.sh >"$devlog" 2>&1 &
  dev=$!
  trap 'kill -- -"$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true' EXIT
  for _ in $(seq 900); do
    grep -q "AI City is running" "$devlog" && break
    kill -0 "$dev" 2>/dev/null || { tail -50 "$devlog"; echo "dev.sh exited" >&2; exit 1; }
    sleep 1
  done
  export BENCH_URL="http://127.0.0.1:${AICITY_API_PORT:-4000}"
fi

if [[ -z "${BENCH_URL:-}" ]]; then
  port="$(free_port)"
  start_moto "$port"
  stop_on_exit "$STATE/moto-$port.pid"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  if [[ "$(dynamodb_engine)" == moto && -n "${DYNAMODB:-}" ]]; then
    unset AWS_ENDPOINT_URL_DYNAMODB
  else
    port="$(free_port)"
    start_dynamodb_local "$port"
    stop_on_exit "$STATE/dynamodb-local-$port.pid"
    export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  fi
fi
cargo run --quiet --profile bench -p aicity-local --example load
