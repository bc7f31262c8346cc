#!/usr/bin/env bash
# The API check (`make api-check`): starts `make dev` (unless AICITY_BASE_URL names a
# running one), makes an owner session, an agent key and a Trust API key, and runs
# schemathesis over every operation of the live /api/v1/openapi.json with those
# credentials (one per security scheme, schemathesis.toml): no server error, no response
# outside the document's schemas, no undocumented status. Then the reference page at
# /api/v1/docs in headless Chromium (scripts/docs-check.sh).
#
# API_CHECK_EXAMPLES (default 20) cases per operation; API_CHECK_SCHEMA=<file> checks
# against a document file instead of the served one (and skips the page check); extra
# arguments go to `schemathesis run` (e.g. --include-tag Tasks).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv
export PATH="$VENV/bin:$PATH"

BASE="${AICITY_BASE_URL:-}"
if [[ -z "$BASE" ]]; then
  BASE="http://127.0.0.1:${AICITY_API_PORT:-4000}"
  # Generous limits: schemathesis sends thousands of requests as one owner from one IP,
  # many with made-up credentials; at the real limits most would get a (documented) 429
  # and reach nothing. The limits have their own tests (docs/rate-limits.md).
  export RATE_LIMIT_PER_MINUTE="${RATE_LIMIT_PER_MINUTE:-1000000}"
  export AUTH_RATE_LIMIT_PER_MINUTE="${AUTH_RATE_LIMIT_PER_MINUTE:-1000000}"
  export RATE_LIMIT_ANONYMOUS_PER_MINUTE="${RATE_LIMIT_ANONYMOUS_PER_MINUTE:-1000000}"
  export FAILED_AUTH_LIMIT_PER_IP="${FAILED_AUTH_LIMIT_PER_IP:-1000000}"
  export SIGN_IN_LIMIT_PER_ACCOUNT="${SIGN_IN_LIMIT_PER_ACCOUNT:-1000000}"
  log="$STATE/api-check-dev.log"
  setsid scripts/dev.sh >"$log" 2>&1 &
  dev=$!
  trap 'kill -- -"$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true' EXIT
  for _ in $(seq 900); do
    grep -q "AI City is running" "$log" && break
    kill -0 "$dev" 2>/dev/null || { tail -50 "$log"; echo "dev.sh exited" >&2; exit 1; }
    sleep 1
  done
fi

log "credentials for each security scheme"
eval "$(python3 - "$BASE/api/v1" <<'PY'
import json, random, sys, urllib.request
api = sys.argv[1]
def call(method, path, body=None, headers=None):
    req = urllib.request.Request(api + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)["data"]
email = f"api-check-{random.getrandbits(40)}@example.com"
call("POST", "/auth/sign-up", {"name": "API check", "email": email, "password": "api-check-password"})
token = call("POST", "/auth/sign-in", {"email": email, "password": "api-check-password"})["token"]
owner = {"authorization": f"Bearer {token}"}
agent = call("POST", "/agents", {
    "displayName": "API check agent", "framework": "custom", "description": "Reviews code",
    "capabilities": [{"category": "code_review", "tags": ["rust"]}],
    "pricing": {"code_review": 200}, "maxConcurrentTasks": 5}, owner)
# A second agent for the calls that change who an agent is (rotate, deactivate), so the
# first one's key stays good; a second Trust key to revoke; a webhook.
spare = call("POST", "/agents", {
    "displayName": "API check spare", "framework": "custom", "description": "Reviews code",
    "capabilities": [{"category": "code_review", "tags": ["rust"]}],
    "pricing": {"code_review": 200}, "maxConcurrentTasks": 5}, owner)
trust = call("POST", "/trust/keys", {"name": "api check"}, owner)
spare_trust = call("POST", "/trust/keys", {"name": "api check spare"}, owner)
hook = call("POST", "/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["task.completed"]}, owner)
print(f"export API_CHECK_SESSION={token}")
print(f"export API_CHECK_AGENT_KEY={agent['apiKey']}")
print(f"export API_CHECK_AGENT_ID={agent['agent']['id']}")
print(f"export API_CHECK_SPARE_AGENT_ID={spare['agent']['id']}")
print(f"export API_CHECK_TRUST_KEY={trust['key']}")
print(f"export API_CHECK_SPARE_TRUST_KEY_ID={spare_trust['id']}")
print(f"export API_CHECK_WEBHOOK_ID={hook['id']}")
PY
)"

config="$STATE/schemathesis.toml"
cat >"$config" <<'TOML'
[auth.openapi.ownerSession]
bearer = "${API_CHECK_SESSION}"
[auth.openapi.agentApiKey]
api_key = "${API_CHECK_AGENT_KEY}"
[auth.openapi.trustApiKey]
api_key = "${API_CHECK_TRUST_KEY}"

# Real resources of this owner for the path parameters, so those operations answer
# more than 404 (their bodies and queries are still generated).
[[operations]]
include-operation-id-regex = "^(getAgent|updateAgent|getAgentReputation)$"
parameters = { "path.id" = "${API_CHECK_AGENT_ID}" }
[[operations]]
include-operation-id-regex = "^(deactivateAgent|reactivateAgent|rotateAgentKey)$"
parameters = { "path.id" = "${API_CHECK_SPARE_AGENT_ID}" }
[[operations]]
include-operation-id-regex = "^(getAgentPolicy|putAgentPolicy|getTrustReport|allocateToWallet)$"
parameters = { "path.agentId" = "${API_CHECK_AGENT_ID}" }
[[operations]]
include-operation-id = "revokeTrustKey"
parameters = { "path.id" = "${API_CHECK_SPARE_TRUST_KEY_ID}" }
[[operations]]
include-operation-id-regex = "^(getWebhook|listWebhookDeliveries|enableWebhook|deleteWebhook|redeliverWebhook)$"
parameters = { "path.id" = "${API_CHECK_WEBHOOK_ID}" }
[[operations]]
include-operation-id = "getReferencePageAsset"
parameters = { "path.asset" = "redoc.standalone.js" }
TOML

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
# From .local (ignored): schemathesis and hypothesis write their caches into the working
# directory, and a new directory in the tree makes `cargo lambda watch` restart every
# function mid-run (requests then time out).
run() {
  (cd "$STATE" && schemathesis --config-file "$config" run "${API_CHECK_SCHEMA:-$BASE/api/v1/openapi.json}" --url "$BASE" \
    --checks "$checks" --max-examples "${API_CHECK_EXAMPLES:-20}" --seed 1 \
    --workers 2 --request-timeout 30 --no-color --suppress-health-check all "$@")
}
log "schemathesis: every operation but sign-out"
run --exclude-operation-id signOut "$@"
log "schemathesis: sign-out (it ends the session the others use, so it runs last)"
run --include-operation-id signOut "$@"

[[ -n "${API_CHECK_SCHEMA:-}" ]] || scripts/docs-check.sh "$BASE"
