#!/usr/bin/env bash
# Items read per routed task with 10, 100 and 1,000 live agents in the category,
# counted by an SDK interceptor on the router's DynamoDB client (moto on a free port).
source "$(dirname "$0")/lib.sh"
ensure_venv

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  port="$(free_port)"
  start_moto "$port"
  stop_on_exit "$STATE/moto-$port.pid"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
fi
cd "$ROOT"
cargo run --quiet -p aicity-tasks --example routing_reads
