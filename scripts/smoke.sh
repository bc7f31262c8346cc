#!/usr/bin/env bash
# Starts `scripts/dev.sh` exactly as `make dev` does, checks the health route and a
# probe through the queue over :4000, then stops it. Proves the run command works.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
API="http://127.0.0.1:${AICITY_API_PORT:-4000}/api/v1"

setsid scripts/dev.sh >"$STATE/smoke-dev.log" 2>&1 &
dev=$!
trap 'kill -- -"$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true' EXIT

for _ in $(seq 900); do
  grep -q "AI City is running" "$STATE/smoke-dev.log" && break
  kill -0 "$dev" 2>/dev/null || { cat "$STATE/smoke-dev.log"; echo "dev.sh exited" >&2; exit 1; }
  sleep 1
done

# An owner's session, the pool, and the streaming path (a response-streaming function
# behind the runner, as a Function URL serves it in AWS).
stream_check() {
  local email="smoke-$RANDOM$RANDOM@example.com"
  curl -fsS -X POST "$API/auth/sign-up" -H 'content-type: application/json' \
    -d "{\"name\":\"Smoke\",\"email\":\"$email\",\"password\":\"smoke-password\"}" >/dev/null
  local token
  token="$(curl -fsS -X POST "$API/auth/sign-in" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"smoke-password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')"
  local pool
  pool="$(curl -fsS "$API/vault/pool" -H "authorization: Bearer $token")"
  echo "GET /vault/pool -> $pool"
  local status body
  body="$(curl -sS -o /dev/stdout -w '\n%{http_code}' "$API/tasks/task_01ARZ3NDEKTSV4RRFFQ69G5FAV/stream" -H "authorization: Bearer $token")"
  status="$(tail -n1 <<<"$body")"
  echo "GET /tasks/<unknown>/stream -> $status $(head -n1 <<<"$body")"
  [[ "$status" == 404 ]] && grep -q TASK_NOT_FOUND <<<"$body"
}

health="$(curl -fsS "$API/health")"
echo "GET /health -> $health"
python3 -c 'import json,sys; b=json.loads(sys.argv[1]); assert b["success"] is True and b["data"]["status"]=="ok", b' "$health"

probe="$(curl -fsS -X POST "$API/health/probes")"
id="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"]["probeId"])' "$probe")"
for _ in $(seq 120); do
  state="$(curl -fsS "$API/health/probes/$id")"
  if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["data"]["status"]=="received" else 1)' "$state"; then
    echo "probe $id received through the canary queue: $state"
    stream_check
    # The newcomer's demo, through the real functions: CLI, agent runner, live watch.
    AICITY_BASE_URL="${API%/api/v1}" timeout 600 scripts/demo.sh
    echo "smoke: 5 passed, 0 failed"
    exit 0
  fi
  sleep 1
done
echo "probe $id was never received" >&2
tail -50 "$STATE/smoke-dev.log" "$STATE/watch.log" >&2
exit 1
