#!/usr/bin/env bash
# `make bench` (cost): DynamoDB capacity, SQS requests and invocations of one task
# lifecycle, billed by AWS's rules from item sizes (infra/local-runner/src/billing.rs).
# DynamoDB Local serves DynamoDB (the items are real), moto SQS. BENCH_LIFECYCLES (5).
source "$(dirname "$0")/lib.sh"
ensure_venv

port="$(free_port)"
start_moto "$port"
stop_on_exit "$STATE/moto-$port.pid"
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
port="$(free_port)"
start_dynamodb_local "$port"
stop_on_exit "$STATE/dynamodb-local-$port.pid"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
cd "$ROOT"
RUST_LOG="${RUST_LOG:-error}" cargo run --quiet -p aicity-local --example lifecycle_cost
