//! The Embassy's audit trail, written with the change it records: every state-changing
//! action of an owner and its agents in the agents, vault, trust and courts functions
//! is driven over HTTP through the runner's gateway, and the trail (read from the
//! store) must hold exactly one entry for it — the right actor, target and agent, and
//! the request id the response carried in `X-Request-Id`. Changes that are refused, or
//! that lose a race, leave no entry.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aicity_domain::embassy::{AuditEntry, AuditTarget};
use aicity_domain::identity::secrets::hash_secret;
use aicity_domain::ids::{AgentId, OwnerId};
use aicity_http::audit::Auditor;
use aicity_store::agents;
use aicity_store::embassy::{audit_item, audit_page};
use aicity_store::faults::{self, point};
use aicity_store::transact::Transaction;
use common::world::{Auth, Party, World, good_review, template};
use common::{Knobs, Parts};
use reqwest::Method;
use serde_json::{Value, json};

async fn world() -> (World, Parts) {
    let (running, parts, clients) =
        common::start_full(template(), Knobs::default(), |f| Arc::new(f)).await;
    (
        World::from((running, parts.functions.clone(), clients)),
        parts,
    )
}

/// What a call answered, with the `X-Request-Id` it carried.
struct Answer {
    status: u16,
    body: Value,
    request_id: String,
}

async fn send(
    world: &World,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
    idempotency_key: Option<&str>,
) -> Answer {
    let mut request = world
        .http
        .request(method, format!("{}/api/v1{path}", world.running.base_url));
    request = match auth {
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::Key(key) => request.header("x-api-key", key),
    };
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned();
    Answer {
        status,
        body: response.json().await.unwrap_or(Value::Null),
        request_id,
    }
}

async fn call(
    world: &World,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> Answer {
    send(world, method, path, auth, body, None).await
}

/// Signs up an owner (funded with `funds` when positive): the party and its id.
async fn sign_up(world: &mut World, funds: i64) -> (Party, OwnerId) {
    let party = world.owner(funds).await;
    (party, *world.owners.last().unwrap())
}

/// Registers a code reviewer for `owner` over HTTP: (answer, id, key).
async fn register(world: &mut World, owner: &Party, price: i64) -> (Answer, AgentId, String) {
    let answer = call(
        world,
        Method::POST,
        "/agents",
        Auth::Bearer(&owner.token),
        Some(json!({
            "displayName": "Reviewer", "framework": "custom", "description": "Reviews code",
            "capabilities": [{"category": "code_review", "tags": ["rust"]}],
            "pricing": {"code_review": price}, "maxConcurrentTasks": 4,
        })),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id: AgentId = answer.body["data"]["agent"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let key = answer.body["data"]["apiKey"].as_str().unwrap().to_owned();
    world.agents.push(id);
    (answer, id, key)
}

/// The owner's whole trail (or one agent's), newest first.
async fn trail(world: &World, owner: &OwnerId, agent: Option<&AgentId>) -> Vec<AuditEntry> {
    let page = audit_page(
        &world.clients.dynamodb,
        world.table(),
        owner,
        agent,
        None,
        None,
        100,
    )
    .await
    .unwrap();
    assert!(!page.has_more, "tests stay within one page");
    page.items
}

/// The owner's entries for `action`.
async fn entries(world: &World, owner: &OwnerId, action: &str) -> Vec<AuditEntry> {
    trail(world, owner, None)
        .await
        .into_iter()
        .filter(|entry| entry.action == action)
        .collect()
}

/// The one entry the request `answer` wrote for `action`: exactly one with that action
/// carries its request id, and it is the only entry that request wrote.
async fn entry_of(world: &World, owner: &OwnerId, action: &str, answer: &Answer) -> AuditEntry {
    let written: Vec<AuditEntry> = trail(world, owner, None)
        .await
        .into_iter()
        .filter(|entry| entry.request_id.as_deref() == Some(answer.request_id.as_str()))
        .collect();
    assert_eq!(
        written.len(),
        1,
        "{action}: one entry for request {}: {written:#?}",
        answer.request_id
    );
    assert_eq!(written[0].action, action, "{written:#?}");
    written[0].clone()
}

/// No entry names the request `answer` answered.
async fn no_entry_of(world: &World, owner: &OwnerId, answer: &Answer) {
    let written: Vec<AuditEntry> = trail(world, owner, None)
        .await
        .into_iter()
        .filter(|entry| entry.request_id.as_deref() == Some(answer.request_id.as_str()))
        .collect();
    assert!(
        written.is_empty(),
        "a refused change ({}) wrote {written:#?}",
        answer.status
    );
}

#[track_caller]
fn assert_actor(entry: &AuditEntry, kind: &str, id: impl ToString) {
    assert_eq!(
        (entry.actor.kind.as_str(), entry.actor.id.clone()),
        (kind, id.to_string()),
        "{entry:#?}"
    );
}

#[track_caller]
fn assert_target(entry: &AuditEntry, kind: &str, id: impl ToString) {
    assert_eq!(
        entry.target,
        AuditTarget::new(kind, id.to_string()),
        "{entry:#?}"
    );
}

/// The entry is also in its agent's trail (`?agentId=`).
async fn assert_in_agents_trail(world: &World, owner: &OwnerId, entry: &AuditEntry) {
    let agent = entry.agent_id.expect("names an agent");
    let ids: Vec<String> = trail(world, owner, Some(&agent))
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(
        ids.contains(&entry.id),
        "{} not in {agent}'s trail",
        entry.id
    );
}

async fn pool_id(world: &World, owner: &Party) -> String {
    let answer = call(
        world,
        Method::GET,
        "/vault/pool",
        Auth::Bearer(&owner.token),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["data"]["id"].as_str().unwrap().to_owned()
}

// ---- agents -----------------------------------------------------------------------------

#[tokio::test]
async fn the_registry_audits_each_change_to_an_agent_with_its_request() {
    let (mut world, _parts) = world().await;
    let (owner, owner_id) = sign_up(&mut world, 0).await;

    // agent.registered
    let (registered, agent, key) = register(&mut world, &owner, 900).await;
    let entry = entry_of(&world, &owner_id, "agent.registered", &registered).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "agent", agent);
    assert_eq!(entry.agent_id, Some(agent));
    assert_eq!(entry.owner_id, owner_id);
    assert_eq!(entry.details["displayName"], "Reviewer");
    assert_in_agents_trail(&world, &owner_id, &entry).await;

    // agent.updated, by the agent itself
    let by_agent = call(
        &world,
        Method::PATCH,
        "/agents/me",
        Auth::Key(&key),
        Some(json!({"description": "Reviews Rust code"})),
    )
    .await;
    assert_eq!(by_agent.status, 200, "{}", by_agent.body);
    let entry = entry_of(&world, &owner_id, "agent.updated", &by_agent).await;
    assert_actor(&entry, "agent", agent);
    assert_target(&entry, "agent", agent);
    assert_eq!(entry.agent_id, Some(agent));
    assert_eq!(entry.details["fields"], json!(["description"]));
    assert_in_agents_trail(&world, &owner_id, &entry).await;

    // agent.updated, by its owner
    let by_owner = call(
        &world,
        Method::PATCH,
        &format!("/agents/{agent}"),
        Auth::Bearer(&owner.token),
        Some(json!({"displayName": "Senior reviewer"})),
    )
    .await;
    assert_eq!(by_owner.status, 200, "{}", by_owner.body);
    let entry = entry_of(&world, &owner_id, "agent.updated", &by_owner).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "agent", agent);
    assert_eq!(entry.agent_id, Some(agent));
    assert_eq!(entries(&world, &owner_id, "agent.updated").await.len(), 2);

    // A refused update (invalid) writes nothing.
    let invalid = call(
        &world,
        Method::PATCH,
        &format!("/agents/{agent}"),
        Auth::Bearer(&owner.token),
        Some(json!({"displayName": " "})),
    )
    .await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    no_entry_of(&world, &owner_id, &invalid).await;

    // Heartbeats are not audited.
    let before = trail(&world, &owner_id, None).await.len();
    world.heartbeat(&key).await;
    assert_eq!(trail(&world, &owner_id, None).await.len(), before);

    // agent.deactivated, once: deactivating again is refused and writes nothing.
    let deactivated = call(
        &world,
        Method::POST,
        &format!("/agents/{agent}/deactivate"),
        Auth::Bearer(&owner.token),
        None,
    )
    .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    let entry = entry_of(&world, &owner_id, "agent.deactivated", &deactivated).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "agent", agent);
    assert_eq!(entry.agent_id, Some(agent));
    assert_eq!(
        (&entry.details["from"], &entry.details["to"]),
        (&json!("active"), &json!("deactivated"))
    );
    let again = call(
        &world,
        Method::POST,
        &format!("/agents/{agent}/deactivate"),
        Auth::Bearer(&owner.token),
        None,
    )
    .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.body["error"]["code"], "AGENT_ALREADY_DEACTIVATED");
    no_entry_of(&world, &owner_id, &again).await;
    assert_eq!(
        entries(&world, &owner_id, "agent.deactivated").await.len(),
        1
    );

    // agent.reactivated
    let reactivated = call(
        &world,
        Method::POST,
        &format!("/agents/{agent}/reactivate"),
        Auth::Bearer(&owner.token),
        None,
    )
    .await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.body);
    let entry = entry_of(&world, &owner_id, "agent.reactivated", &reactivated).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "agent", agent);
    assert_eq!(entry.agent_id, Some(agent));
    assert_in_agents_trail(&world, &owner_id, &entry).await;

    // agent.key_rotated: neither the old nor the new key, nor a hash, in the trail.
    let rotated = call(
        &world,
        Method::POST,
        &format!("/agents/{agent}/rotate-key"),
        Auth::Bearer(&owner.token),
        None,
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_key = rotated.body["data"]["apiKey"].as_str().unwrap().to_owned();
    let entry = entry_of(&world, &owner_id, "agent.key_rotated", &rotated).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "agent", agent);
    assert_eq!(entry.agent_id, Some(agent));
    let whole = serde_json::to_string(&trail(&world, &owner_id, None).await).unwrap();
    for secret in [&key, &new_key, &hash_secret(&key), &hash_secret(&new_key)] {
        assert!(!whole.contains(secret.as_str()), "a key in the trail");
    }

    // Every action above once, and nothing else.
    let mut actions: Vec<String> = trail(&world, &owner_id, None)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "agent.deactivated",
            "agent.key_rotated",
            "agent.reactivated",
            "agent.registered",
            "agent.updated",
            "agent.updated",
        ]
    );
}

#[tokio::test]
async fn an_agent_change_that_loses_to_a_concurrent_one_writes_no_entry() {
    let (mut world, _parts) = world().await;
    let (owner, owner_id) = sign_up(&mut world, 0).await;
    let (_, agent, _) = register(&mut world, &owner, 900).await;
    let (db, table) = (&world.clients.dynamodb, world.table().to_owned());
    let stale = agents::get(db, &table, &agent).await.unwrap();

    // Someone else changes the agent after it was read …
    let meanwhile = call(
        &world,
        Method::PATCH,
        &format!("/agents/{agent}"),
        Auth::Bearer(&owner.token),
        Some(json!({"displayName": "Changed meanwhile"})),
    )
    .await;
    assert_eq!(meanwhile.status, 200, "{}", meanwhile.body);
    let before = trail(&world, &owner_id, None).await;

    // … so a save over the stale read is cancelled on the agent, entry and all.
    let mut next = stale.agent.clone();
    next.description = "Lost the race".into();
    let (items, _) = agents::save_items(&table, &stale, next, None, u32::MAX).unwrap();
    let entry = Auditor::platform(owner_id).entry(
        "agent.updated",
        AuditTarget::new("agent", agent),
        Some(agent),
        json!({"fields": ["description"]}),
    );
    let mut transaction = Transaction::new();
    transaction
        .extend(items)
        .extend([audit_item(&table, &entry).unwrap()]);
    let err = transaction
        .commit(db)
        .await
        .expect_err("a stale save fails");
    assert_eq!(err.failed_labels(), ["agent"], "{err:?}");

    let after = trail(&world, &owner_id, None).await;
    assert_eq!(after, before, "no entry for a change that did not happen");
    assert!(after.iter().all(|e| e.id != entry.id));
    assert!(
        trail(&world, &owner_id, Some(&agent))
            .await
            .iter()
            .all(|e| e.id != entry.id)
    );
}

// ---- vault ------------------------------------------------------------------------------

#[tokio::test]
async fn the_vault_audits_top_ups_rules_allocations_and_transfers_once() {
    let (mut world, _parts) = world().await;
    let (owner, owner_id) = sign_up(&mut world, 0).await;
    let pool = pool_id(&world, &owner).await;

    // pool.topped_up, by the owner who asked, with what was charged.
    let topped = call(
        &world,
        Method::POST,
        "/vault/pool/top-up",
        Auth::Bearer(&owner.token),
        Some(json!({"amount": 10_000})),
    )
    .await;
    assert_eq!(topped.status, 200, "{}", topped.body);
    let entry = entry_of(&world, &owner_id, "pool.topped_up", &topped).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "pool", &pool);
    assert_eq!(entry.agent_id, None);
    assert_eq!(entry.details["amount"], 10_000);
    assert_eq!(entry.details["chargeId"], topped.body["data"]["chargeId"]);

    // A keyed top-up and its replay: one credit, one entry.
    let keyed = send(
        &world,
        Method::POST,
        "/vault/pool/top-up",
        Auth::Bearer(&owner.token),
        Some(json!({"amount": 2_000})),
        Some("top-up-1"),
    )
    .await;
    assert_eq!(keyed.status, 200, "{}", keyed.body);
    let replay = send(
        &world,
        Method::POST,
        "/vault/pool/top-up",
        Auth::Bearer(&owner.token),
        Some(json!({"amount": 2_000})),
        Some("top-up-1"),
    )
    .await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    entry_of(&world, &owner_id, "pool.topped_up", &keyed).await;
    no_entry_of(&world, &owner_id, &replay).await;
    assert_eq!(entries(&world, &owner_id, "pool.topped_up").await.len(), 2);

    // pool.auto_top_up_configured; an invalid rule writes nothing.
    let rule = json!({"enabled": true, "threshold": 500, "reloadAmount": 2_000});
    let configured = call(
        &world,
        Method::PUT,
        "/vault/pool/auto-top-up",
        Auth::Bearer(&owner.token),
        Some(rule.clone()),
    )
    .await;
    assert_eq!(configured.status, 200, "{}", configured.body);
    let entry = entry_of(
        &world,
        &owner_id,
        "pool.auto_top_up_configured",
        &configured,
    )
    .await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "pool", &pool);
    assert_eq!(entry.details["after"], rule);
    assert_eq!(entry.details["before"]["enabled"], false);
    let invalid = call(
        &world,
        Method::PUT,
        "/vault/pool/auto-top-up",
        Auth::Bearer(&owner.token),
        Some(json!({"enabled": true, "threshold": -1, "reloadAmount": 2_000})),
    )
    .await;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    no_entry_of(&world, &owner_id, &invalid).await;

    // wallet.allocated
    let (_, a, _) = register(&mut world, &owner, 900).await;
    let (_, b, _) = register(&mut world, &owner, 900).await;
    let allocated = call(
        &world,
        Method::POST,
        &format!("/vault/wallets/{a}/allocate"),
        Auth::Bearer(&owner.token),
        Some(json!({"amount": 1_500})),
    )
    .await;
    assert_eq!(allocated.status, 200, "{}", allocated.body);
    let entry = entry_of(&world, &owner_id, "wallet.allocated", &allocated).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "wallet", a);
    assert_eq!(entry.agent_id, Some(a));
    assert_eq!(entry.details["amount"], 1_500);
    assert_in_agents_trail(&world, &owner_id, &entry).await;

    // More than the pool has: refused, no entry.
    let too_much = call(
        &world,
        Method::POST,
        &format!("/vault/wallets/{a}/allocate"),
        Auth::Bearer(&owner.token),
        Some(json!({"amount": 1_000_000})),
    )
    .await;
    assert_eq!(too_much.status, 400, "{}", too_much.body);
    no_entry_of(&world, &owner_id, &too_much).await;
    assert_eq!(
        entries(&world, &owner_id, "wallet.allocated").await.len(),
        1
    );

    // wallet.transferred
    let transferred = call(
        &world,
        Method::POST,
        "/vault/transfers",
        Auth::Bearer(&owner.token),
        Some(json!({"fromAgentId": a, "toAgentId": b, "amount": 600})),
    )
    .await;
    assert_eq!(transferred.status, 200, "{}", transferred.body);
    let entry = entry_of(&world, &owner_id, "wallet.transferred", &transferred).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "wallet", a);
    assert_eq!(entry.agent_id, Some(a));
    assert_eq!(
        entry.details,
        json!({"amount": 600, "fromAgentId": a, "toAgentId": b})
    );
    assert_in_agents_trail(&world, &owner_id, &entry).await;

    // A transfer refused for insufficient funds leaves no entry.
    let before = trail(&world, &owner_id, None).await;
    let refused = call(
        &world,
        Method::POST,
        "/vault/transfers",
        Auth::Bearer(&owner.token),
        Some(json!({"fromAgentId": a, "toAgentId": b, "amount": 5_000})),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "INSUFFICIENT_BALANCE");
    no_entry_of(&world, &owner_id, &refused).await;
    assert_eq!(trail(&world, &owner_id, None).await, before);
    assert_eq!(
        entries(&world, &owner_id, "wallet.transferred").await.len(),
        1
    );
    world.assert_books_balance(&[]).await;
}

#[tokio::test]
async fn a_top_up_credited_later_by_the_sweeper_is_audited_once_for_the_request_that_asked() {
    let (mut world, parts) = world().await;
    let (owner, owner_id) = sign_up(&mut world, 0).await;
    let pool = pool_id(&world, &owner).await;

    faults::arm(world.table(), point::AFTER_CHARGE_BEFORE_CREDIT, 1);
    let asked = send(
        &world,
        Method::POST,
        "/vault/pool/top-up",
        Auth::Bearer(&owner.token),
        Some(json!({"amount": 3_000})),
        Some("late"),
    )
    .await;
    assert_eq!(asked.status, 500, "charged, not credited: {}", asked.body);
    assert!(
        entries(&world, &owner_id, "pool.topped_up")
            .await
            .is_empty(),
        "no credit, no entry"
    );

    // The reconciliation pass credits it, and writes the entry with the credit.
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + Duration::from_secs(5 * 60));
    let report = sweeper::sweep(&parts.sweeper).await.expect("sweep");
    assert_eq!(report.payments.credited, 1);
    let entry = entry_of(&world, &owner_id, "pool.topped_up", &asked).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "pool", &pool);
    assert_eq!(entry.details["amount"], 3_000);

    // Neither another pass nor the client's late retry writes a second one.
    let report = sweeper::sweep(&parts.sweeper).await.expect("sweep");
    assert_eq!(report.payments.credited, 0);
    let retry = send(
        &world,
        Method::POST,
        "/vault/pool/top-up",
        Auth::Bearer(&owner.token),
        Some(json!({"amount": 3_000})),
        Some("late"),
    )
    .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["data"]["newBalance"], 3_000);
    no_entry_of(&world, &owner_id, &retry).await;
    assert_eq!(entries(&world, &owner_id, "pool.topped_up").await.len(), 1);
    world.assert_books_balance(&[]).await;
}

#[tokio::test]
async fn an_automatic_top_up_is_the_platforms_and_names_the_submit_that_triggered_it() {
    let (mut world, _parts) = world().await;
    let (buyer, buyer_id) = sign_up(&mut world, 1_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 100, 10).await;
    let pool = pool_id(&world, &buyer).await;
    let configured = call(
        &world,
        Method::PUT,
        "/vault/pool/auto-top-up",
        Auth::Bearer(&buyer.token),
        Some(json!({"enabled": true, "threshold": 500, "reloadAmount": 2_000})),
    )
    .await;
    assert_eq!(configured.status, 200, "{}", configured.body);

    let submit = |budget: i64| {
        let (world, buyer) = (&world, &buyer);
        async move {
            let answer = call(
                world,
                Method::POST,
                "/tasks",
                Auth::Bearer(&buyer.token),
                Some(json!({
                    "taskType": "code_review", "maxBudget": budget,
                    "input": {"description": "Review the Rust auth module"},
                })),
            )
            .await;
            assert_eq!(answer.status, 201, "{}", answer.body);
            answer
        }
    };
    let first = submit(800).await;
    let task = first.body["data"]["id"].as_str().unwrap().to_owned();
    let autos = entries(&world, &buyer_id, "pool.auto_topped_up").await;
    assert_eq!(autos.len(), 1, "{autos:#?}");
    let entry = &autos[0];
    assert_actor(entry, "platform", "platform");
    assert_target(entry, "pool", &pool);
    assert_eq!(entry.request_id.as_deref(), Some(first.request_id.as_str()));
    assert_eq!(entry.agent_id, None, "the owner submitted");
    assert_eq!(entry.details["amount"], 2_000);
    assert_eq!(entry.details["taskId"], task);

    // A submit that does not reload writes no pool entry.
    let second = submit(100).await;
    assert_eq!(
        entries(&world, &buyer_id, "pool.auto_topped_up")
            .await
            .len(),
        1
    );
    assert!(
        trail(&world, &buyer_id, None)
            .await
            .iter()
            .all(|e| !(e.action.starts_with("pool.")
                && e.request_id.as_deref() == Some(second.request_id.as_str())))
    );
    assert_eq!(entries(&world, &buyer_id, "pool.topped_up").await.len(), 1);
}

// ---- trust ------------------------------------------------------------------------------

#[tokio::test]
async fn trust_keys_are_audited_without_their_secret() {
    let (mut world, _parts) = world().await;
    let (owner, owner_id) = sign_up(&mut world, 0).await;

    let created = call(
        &world,
        Method::POST,
        "/trust/keys",
        Auth::Bearer(&owner.token),
        Some(json!({"name": "partner"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["data"]["id"].as_str().unwrap().to_owned();
    let secret = created.body["data"]["key"].as_str().unwrap().to_owned();
    let entry = entry_of(&world, &owner_id, "trust_key.created", &created).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "trust_key", &id);
    assert_eq!(entry.agent_id, None);
    assert_eq!(entry.details["name"], "partner");

    let revoked = call(
        &world,
        Method::POST,
        &format!("/trust/keys/{id}/revoke"),
        Auth::Bearer(&owner.token),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let entry = entry_of(&world, &owner_id, "trust_key.revoked", &revoked).await;
    assert_actor(&entry, "owner", owner_id);
    assert_target(&entry, "trust_key", &id);

    // Revoking again is refused and writes nothing.
    let again = call(
        &world,
        Method::POST,
        &format!("/trust/keys/{id}/revoke"),
        Auth::Bearer(&owner.token),
        None,
    )
    .await;
    assert_eq!(again.status, 400, "{}", again.body);
    no_entry_of(&world, &owner_id, &again).await;
    assert_eq!(
        entries(&world, &owner_id, "trust_key.revoked").await.len(),
        1
    );

    let whole = serde_json::to_string(&trail(&world, &owner_id, None).await).unwrap();
    assert!(!whole.contains(&secret), "the secret in the trail");
    assert!(
        !whole.contains(&hash_secret(&secret)),
        "its hash in the trail"
    );
}

// ---- courts -----------------------------------------------------------------------------

#[tokio::test]
async fn a_sellers_response_and_a_buyers_withdrawal_are_audited_in_their_own_trails() {
    let (mut world, _parts) = world().await;
    let (buyer, buyer_id) = sign_up(&mut world, 10_000).await;
    let (seller, seller_id) = sign_up(&mut world, 0).await;
    let (_, agent, key) = register(&mut world, &seller, 2_500).await;
    world.heartbeat(&key).await;

    let task = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&task, Auth::Bearer(&buyer.token)).await;
    world.start(&task, &key).await;
    world.complete(&task, &key, good_review()).await;
    world
        .wait_status(&task, Auth::Bearer(&buyer.token), "completed")
        .await;
    let filed = call(
        &world,
        Method::POST,
        &format!("/tasks/{task}/dispute"),
        Auth::Bearer(&buyer.token),
        Some(json!({"reason": "incomplete_delivery", "description": "Only 2 of the 5 files were reviewed."})),
    )
    .await;
    assert_eq!(filed.status, 201, "{}", filed.body);
    let dispute = filed.body["data"]["id"].as_str().unwrap().to_owned();

    // dispute.responded: the seller's agent, in its owner's trail.
    let response = json!({"response": "All five files were reviewed; see findings 1-3."});
    let responded = call(
        &world,
        Method::POST,
        &format!("/courts/disputes/{dispute}/respond"),
        Auth::Key(&key),
        Some(response.clone()),
    )
    .await;
    assert_eq!(responded.status, 200, "{}", responded.body);
    let entry = entry_of(&world, &seller_id, "dispute.responded", &responded).await;
    assert_actor(&entry, "agent", agent);
    assert_target(&entry, "dispute", &dispute);
    assert_eq!(entry.agent_id, Some(agent));
    assert_eq!(entry.owner_id, seller_id);
    assert_eq!(entry.details["taskId"], task);
    assert_in_agents_trail(&world, &seller_id, &entry).await;

    // Answering twice is refused and writes nothing.
    let twice = call(
        &world,
        Method::POST,
        &format!("/courts/disputes/{dispute}/respond"),
        Auth::Bearer(&seller.token),
        Some(response),
    )
    .await;
    assert!(twice.status >= 400, "{}", twice.body);
    no_entry_of(&world, &seller_id, &twice).await;
    assert_eq!(
        entries(&world, &seller_id, "dispute.responded").await.len(),
        1
    );

    // dispute.withdrawn: the buyer (an owner), in its trail.
    let withdrawn = call(
        &world,
        Method::POST,
        &format!("/courts/disputes/{dispute}/withdraw"),
        Auth::Bearer(&buyer.token),
        None,
    )
    .await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.body);
    assert_eq!(withdrawn.body["data"]["status"], "withdrawn");
    let entry = entry_of(&world, &buyer_id, "dispute.withdrawn", &withdrawn).await;
    assert_actor(&entry, "owner", buyer_id);
    assert_target(&entry, "dispute", &dispute);
    assert_eq!(entry.agent_id, None, "the owner itself submitted");
    assert_eq!(entry.details["status"], "withdrawn");
    assert!(
        entries(&world, &seller_id, "dispute.withdrawn")
            .await
            .is_empty()
    );

    let again = call(
        &world,
        Method::POST,
        &format!("/courts/disputes/{dispute}/withdraw"),
        Auth::Bearer(&buyer.token),
        None,
    )
    .await;
    assert!(again.status >= 400, "{}", again.body);
    no_entry_of(&world, &buyer_id, &again).await;
    assert_eq!(
        entries(&world, &buyer_id, "dispute.withdrawn").await.len(),
        1
    );
}
