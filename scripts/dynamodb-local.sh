#!/usr/bin/env bash
# CI's second engine: DynamoDB Local (AWS's own engine, on Java 17) for DynamoDB, a moto
# on a free port for SQS. Runs the store conformance tests (conditional writes,
# transactions) and the tests where money moves under crashes and contention: the
# runner's money-safety, task lifecycle, end-to-end, after-completion, Courts, Embassy, webhooks and SDK
# demo tests, the ledger, the payment providers and the vault function. Extra arguments go
# to `cargo nextest run`.
source "$(dirname "$0")/lib.sh"
ensure_venv

port="$(free_port)"
log "starting moto (SQS) on 127.0.0.1:$port"
start_moto "$port"
stop_on_exit "$STATE/moto-$port.pid"
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"

port="$(free_port)"
log "starting DynamoDB Local on 127.0.0.1:$port"
start_dynamodb_local "$port"
stop_on_exit "$STATE/dynamodb-local-$port.pid"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"

cd "$ROOT"
cargo nextest run --no-fail-fast \
  -p aicity-store --test conformance \
  -p aicity-local --test money_safety --test auditor --test lifecycle --test end_to_end \
  --test after_completion --test sdk_demo --test courts --test embassy --test webhooks \
  -p aicity-vault --test ledger_on_emulator --test payments \
  -p vault --test vault \
  "$@"
