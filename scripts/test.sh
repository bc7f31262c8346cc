#!/usr/bin/env bash
# Runs every test: unit, property, and over a real emulator connection, plus the
# template lint. Uses $AWS_ENDPOINT_URL if set; otherwise starts moto on a free port.
# DYNAMODB=local also starts DynamoDB Local on a free port for DynamoDB (unless
# $AWS_ENDPOINT_URL_DYNAMODB is set); SQS stays on $AWS_ENDPOINT_URL.
source "$(dirname "$0")/lib.sh"
engine="$(dynamodb_engine)"
ensure_venv

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  port="$(free_port)"
  log "starting moto on 127.0.0.1:$port"
  start_moto "$port"
  stop_on_exit "$STATE/moto-$port.pid"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
fi
if [[ "$engine" == local && -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
  port="$(free_port)"
  log "starting DynamoDB Local on 127.0.0.1:$port"
  start_dynamodb_local "$port"
  stop_on_exit "$STATE/dynamodb-local-$port.pid"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
fi
log "emulator: $AWS_ENDPOINT_URL${AWS_ENDPOINT_URL_DYNAMODB:+ (DynamoDB: $AWS_ENDPOINT_URL_DYNAMODB)}"

log "template lint (cfn-lint, sam validate --lint)"
"$ROOT/scripts/lint-template.sh" >/dev/null

cd "$ROOT"
if cargo nextest --version >/dev/null 2>&1; then
  log "cargo nextest run --workspace"
  cargo nextest run --workspace --no-fail-fast "$@"
else
  log "cargo test --workspace"
  cargo test --workspace --no-fail-fast "$@"
fi
