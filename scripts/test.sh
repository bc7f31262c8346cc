#!/usr/bin/env bash
# Runs every test: unit, property, and over a real emulator connection, plus the
# template lint. Uses $AWS_ENDPOINT_URL if set; otherwise starts moto on a free port.
source "$(dirname "$0")/lib.sh"
ensure_venv

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  port="$(free_port)"
  log "starting moto on 127.0.0.1:$port"
  start_moto "$port"
  trap 'stop_pidfile "$STATE/moto-$port.pid"' EXIT
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
fi
log "emulator: $AWS_ENDPOINT_URL"

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
