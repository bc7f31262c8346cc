#!/usr/bin/env bash
# Starts the whole system locally: moto (127.0.0.1:4566) unless AWS_ENDPOINT_URL is
# given, the functions under `cargo lambda watch` (:9000), and the local runner
# (HTTP API on :4000, queue pollers, schedules). Ctrl-C stops everything it started.
# DYNAMODB=local puts DynamoDB on DynamoDB Local (127.0.0.1:8000 unless
# AWS_ENDPOINT_URL_DYNAMODB is given); SQS stays on moto.
source "$(dirname "$0")/lib.sh"
engine="$(dynamodb_engine)"
ensure_venv
export PATH="$VENV/bin:$PATH"
export LOG_FORMAT="${LOG_FORMAT:-text}"
# Courts admins: the runner takes a template parameter from the variable named after it
# (AdminEmails ← ADMIN_EMAILS) into the functions' environment.
export ADMIN_EMAILS="${ADMIN_EMAILS:-admin@aicity.local}"
# Webhooks: a fixed development key seals signing secrets (WebhookSecretKey), and
# receivers on http://127.0.0.1 are allowed (WebhookAllowLoopback), e.g. `aicity
# webhooks listen`. Never use this key for a deployment.
export WEBHOOK_SECRET_KEY="${WEBHOOK_SECRET_KEY:-6169636974792d6465762d6b65792d6e6f742d666f722d70726f64756374696f}"
export WEBHOOK_ALLOW_LOOPBACK="${WEBHOOK_ALLOW_LOOPBACK:-1}"
# Sandboxes: directories on this machine (SandboxProvider, `e2b` in the template), where
# an agent runner on this same machine works (`aicity agent run`). SANDBOX_PROVIDER=e2b
# with E2B_API_KEY uses E2B instead.
export SANDBOX_PROVIDER="${SANDBOX_PROVIDER:-local}"
# Payments: the template has no default provider; locally, `local` (allowed because the
# functions run against the emulator, AWS_ENDPOINT_URL). Stripe: PAYMENT_PROVIDER=stripe
# with STRIPE_SECRET_KEY, which the functions read from this environment (in AWS they
# read it from the SSM parameter STRIPE_SECRET_KEY_PARAM names).
export PAYMENT_PROVIDER="${PAYMENT_PROVIDER:-local}"
API_PORT="${AICITY_API_PORT:-4000}"
INVOKE_PORT="${AICITY_INVOKE_PORT:-9000}"
cd "$ROOT"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for port in "$API_PORT" "$INVOKE_PORT"; do
  if port_open "$port"; then
    echo "port $port is in use (another 'make dev'?); stop it first" >&2
    exit 1
  fi
done

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  if port_open 4566; then
    log "using the emulator already on 127.0.0.1:4566"
  else
    log "starting moto on 127.0.0.1:4566"
    start_moto 4566
    pids+=("$(cat "$STATE/moto-4566.pid")")
  fi
  export AWS_ENDPOINT_URL="http://127.0.0.1:4566"
fi
if [[ "$engine" == local && -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
  if port_open 8000; then
    log "using the DynamoDB Local already on 127.0.0.1:8000"
  else
    log "starting DynamoDB Local on 127.0.0.1:8000"
    start_dynamodb_local 8000
    pids+=("$(cat "$STATE/dynamodb-local-8000.pid")")
  fi
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:8000"
fi

log "building the runner and the functions"
cargo build --quiet -p aicity-local
# One build per binary, as `cargo lambda watch` runs them (`cargo run --bin X`), so the
# watch finds them built and the first request is fast.
for bin in $(sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\).*/\1/p' infra/template.yaml); do
  cargo build --quiet --bin "$bin"
done

log "creating tables and queues in $AWS_ENDPOINT_URL${AWS_ENDPOINT_URL_DYNAMODB:+ (tables in $AWS_ENDPOINT_URL_DYNAMODB)}"
target/debug/aicity-local provision --env-file "$STATE/functions.env"

log "starting the functions (cargo lambda watch on :$INVOKE_PORT, log in .local/watch.log)"
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" \
  --env-file "$STATE/functions.env" >"$STATE/watch.log" 2>&1 &
pids+=("$!")
wait_for_port "$INVOKE_PORT" "cargo lambda watch" 300

log "starting the local runner"
target/debug/aicity-local serve --listen "127.0.0.1:$API_PORT" \
  --invoke-url "http://127.0.0.1:$INVOKE_PORT" &
pids+=("$!")
wait_for_port "$API_PORT" "the local runner" 300
echo
echo "AI City is running: http://127.0.0.1:$API_PORT/api/v1  (try: curl http://127.0.0.1:$API_PORT/api/v1/health)"
echo "Ctrl-C stops it."
wait -n "${pids[@]}"
