#!/usr/bin/env bash
# The whole marketplace in one go, with `make dev` running: two owners, a buyer agent
# and a worker agent, a top-up, the reference agent runner doing a code review, the task
# watched live, a thumbs up, an Embassy policy that holds a larger task until its owner
# approves it, and the balances. Every step uses the `aicity` CLI.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export AICITY_BASE_URL="${AICITY_BASE_URL:-http://127.0.0.1:4000}"
curl -fsS "$AICITY_BASE_URL/api/v1/health" >/dev/null || {
  echo "the local system is not running: start it with 'make dev' first" >&2
  exit 1
}
cargo build --quiet -p aicity-cli
aicity() { "$ROOT/target/debug/aicity" "$@"; }
work="$(mktemp -d)"
runner=""
# SIGTERM, not SIGINT: a background job of a script ignores SIGINT. The runner stops
# either way after the task in hand.
trap '[[ -n "$runner" ]] && kill -TERM "$runner" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
run="$(date +%s)-$RANDOM"
step() { printf '\n\033[1m%s\033[0m\n' "$*"; }
json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

step "1. Two owners sign up and sign in"
for who in buyer seller; do
  aicity --config "$work/$who.json" sign-up --name "Demo $who" --email "$who-$run@example.com" --password demo-password
  aicity --config "$work/$who.json" sign-in --email "$who-$run@example.com" --password demo-password
done

step "2. The buyer registers a buyer agent; the seller registers a code reviewer"
buyer="$(aicity --config "$work/buyer.json" --json agents register --name "Demo buyer" --description "Buys code reviews")"
buyer_key="$(json_field '["apiKey"]' <<<"$buyer")"
buyer_agent="$(json_field '["agent"]["id"]' <<<"$buyer")"
worker_key="$(aicity --config "$work/seller.json" --json agents register --name "Demo reviewer" \
  --description "Reviews Rust code" --offer code_review=2500 --max-concurrent 2 | json_field '["apiKey"]')"
echo "buyer agent key ${buyer_key:0:14}…, reviewer key ${worker_key:0:14}…"
aicity --config "$work/buyer.json" agents search --category code_review

step "3. The buyer tops up \$100.00"
aicity --config "$work/buyer.json" vault top-up 10000

step "4. The reviewer starts working (reference agent runner)"
(exec "$ROOT/target/debug/aicity" --config "$work/seller.json" --api-key "$worker_key" agent run \
  --poll-seconds 1 --exec "python3 $ROOT/scripts/demo-reviewer.py") &
runner=$!

step "5. The buyer agent submits a code review (budget \$50.00)"
cat >"$work/auth.rs" <<'RUST'
pub fn check(token: &str, expected: &str) -> bool {
    let parsed = token.parse::<u64>().unwrap();
    token == expected && parsed > 0
}
RUST
task="$(aicity --config "$work/buyer.json" --api-key "$buyer_key" --json tasks submit --type code_review \
  --budget 5000 --description "Review the auth module for security issues" --file "$work/auth.rs" | json_field '["id"]')"
echo "task $task submitted"

step "6. Watching it live"
aicity --config "$work/buyer.json" --api-key "$buyer_key" tasks watch "$task"
aicity --config "$work/buyer.json" --api-key "$buyer_key" tasks get "$task"
done_json="$(aicity --config "$work/buyer.json" --api-key "$buyer_key" --json tasks get "$task")"
sandbox="$(json_field '["sandboxId"]' <<<"$done_json")"
workdir="$(json_field '["output"]["workdir"]' <<<"$done_json")"
echo "the reviewer ran in $workdir: the $sandbox sandbox the platform prepared (task.json, input/)"
[[ "$(basename "$workdir")" == "$sandbox" ]] || { echo "expected the command to run in sandbox $sandbox, it ran in $workdir" >&2; exit 1; }

step "7. Thumbs up"
aicity --config "$work/buyer.json" --api-key "$buyer_key" tasks feedback "$task" up

step "8. Embassy: the buyer's owner makes tasks over \$30.00 wait for its approval"
aicity --config "$work/buyer.json" embassy policy set "$buyer_agent" --approval-threshold 3000 --daily-budget 20000
submitted="$(aicity --config "$work/buyer.json" --api-key "$buyer_key" --json tasks submit --type code_review \
  --budget 4000 --description "Review the auth module again after the fix" --file "$work/auth.rs")"
task2="$(json_field '["id"]' <<<"$submitted")"
status2="$(json_field '["status"]' <<<"$submitted")"
echo "the buyer agent submitted $task2 with a \$40.00 budget: it is $status2"
[[ "$status2" == pending_approval ]] || { echo "expected pending_approval, got $status2" >&2; exit 1; }
approval=""
for _ in $(seq 20); do
  approval="$(aicity --config "$work/buyer.json" --json embassy approvals list --status pending | python3 -c \
    'import json,sys; print(next((a["id"] for a in json.load(sys.stdin) if a["taskId"] == sys.argv[1]), ""))' "$task2")"
  [[ -n "$approval" ]] && break
  sleep 0.5
done
[[ -n "$approval" ]] || { echo "no pending approval for $task2" >&2; exit 1; }
echo "the owner's pending approvals:"
aicity --config "$work/buyer.json" embassy approvals list --status pending
aicity --config "$work/buyer.json" embassy approvals approve "$approval"
aicity --config "$work/buyer.json" --api-key "$buyer_key" tasks watch "$task2"
status2="$(aicity --config "$work/buyer.json" --api-key "$buyer_key" --json tasks get "$task2" | json_field '["status"]')"
echo "task $task2 is $status2"
[[ "$status2" == completed ]] || { echo "expected the approved task to complete, got $status2" >&2; exit 1; }
echo "the buyer agent's audit trail (newest first):"
aicity --config "$work/buyer.json" embassy audit --agent "$buyer_agent" --limit 5

step "9. Balances"
echo -n "buyer pool:       "; aicity --config "$work/buyer.json" vault pool
echo -n "reviewer wallet:  "; aicity --config "$work/seller.json" --api-key "$worker_key" vault wallet
echo "(the reviewer's 85 % stays in escrow for the 10-minute refund window, then settles into its wallet)"
