#!/usr/bin/env bash
# The randomized auditor at length: DynamoDB Local for DynamoDB (real transaction
# conflicts), moto for SQS, AUDITOR_WORKERS runs side by side of AUDITOR_OPS operations
# each (100,000 in all by default), every invariant checked after every step. Prints
# the seed; AUDITOR_SEED=<seed> reproduces the operations.
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

export AUDITOR_OPS="${AUDITOR_OPS:-25000}" AUDITOR_WORKERS="${AUDITOR_WORKERS:-4}"
log "auditor: $AUDITOR_WORKERS × $AUDITOR_OPS operations on DynamoDB Local"
cd "$ROOT"
cargo nextest run -p aicity-local --test auditor --no-capture "$@"
