//! Money under crashes and contention: every hold ends, every charge is credited once,
//! no retry duplicates, no contention reported as a business error. Each named fault
//! point is switched on for the test's table, and the test proves the system recovers
//! (a retry, a redelivery or the sweeper) to one end state with the books right.
//!
//! These run on moto in `make test` and on DynamoDB Local (real transaction conflicts)
//! in `make test-dynamodb-local`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aicity_domain::task::model::Task;
use aicity_domain::task::quality::Verdict;
use aicity_quality::{GateError, GateFuture, QualityGate};
use aicity_store::faults::{self, point};
use aws_sdk_dynamodb::types::AttributeValue;
use common::world::{Auth, Party, World, good_review, template};
use common::{Knobs, Parts};
use reqwest::Method;
use serde_json::{Value, json};

async fn world_with(knobs: Knobs) -> (World, Parts) {
    let (running, parts, clients) = common::start_full(template(), knobs, |f| Arc::new(f)).await;
    (
        World::from((running, parts.functions.clone(), clients)),
        parts,
    )
}

/// A POST with an `Idempotency-Key`: (status, body, replayed?).
async fn post_keyed(
    world: &World,
    path: &str,
    token: &str,
    key: &str,
    body: Value,
) -> (u16, Value, bool) {
    let response = world
        .http
        .post(format!("{}/api/v1{path}", world.running.base_url))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key("idempotency-replayed");
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

async fn pool(world: &World, owner: &Party) -> Value {
    let (status, body) = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&owner.token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn top_up_entries(world: &World, owner: &Party) -> Vec<Value> {
    let (status, body) = world
        .call(
            Method::GET,
            "/vault/transactions?type=top_up&pageSize=100",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// How many charges the local provider made (one record per provider key).
async fn provider_charges(world: &World) -> usize {
    let output = world
        .clients
        .dynamodb
        .scan()
        .table_name(world.table())
        .filter_expression("begins_with(PK, :payment)")
        .expression_attribute_values(":payment", AttributeValue::S("PAYMENT#".into()))
        .send()
        .await
        .unwrap();
    output.items.unwrap_or_default().len()
}

async fn sweep(parts: &Parts) -> sweeper::Report {
    sweeper::sweep(&parts.sweeper).await.expect("sweep runs")
}

/// Moves the sweeper's clock `ahead` of now.
fn sweeper_ahead(parts: &Parts, ahead: Duration) {
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + ahead);
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(45), "never: {what}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// A gate that can never score: it always errors, and counts how often it was asked.
#[derive(Default)]
struct BrokenGate(AtomicU32);

impl QualityGate for BrokenGate {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn assess<'a>(&'a self, _task: &'a Task, _output: &'a Value) -> GateFuture<'a> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err::<Verdict, _>(GateError::Unavailable("not JSON".into())) })
    }
}

/// A buyer with `funds`, a reviewer of another owner at $25, and a task it delivered.
async fn delivered(world: &mut World, funds: i64) -> (Party, String, String) {
    let buyer = world.owner(funds).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 4).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, &key).await;
    let (status, body) = world.complete(&id, &key, good_review()).await;
    assert_eq!(status, 200, "{body}");
    (buyer, key, id)
}

// ---- 1. the quality stage is bounded ---------------------------------------------------

#[tokio::test]
async fn a_gate_that_keeps_erroring_fails_the_task_and_voids_the_hold() {
    let gate = Arc::new(BrokenGate::default());
    let (mut world, _parts) = world_with(Knobs {
        quality_gate: Some(gate.clone()),
        ..Knobs::default()
    })
    .await;
    let (buyer, key, id) = delivered(&mut world, 10_000).await;
    let task = world
        .wait_status(&id, Auth::Bearer(&buyer.token), "failed")
        .await;
    assert_eq!(task["failureReason"], "quality_unavailable", "{task}");
    assert_eq!(task["qualityAttempts"], 3);
    assert_eq!(gate.0.load(Ordering::SeqCst), 3, "asked exactly 3 times");
    let pool = pool(&world, &buyer).await;
    assert_eq!(
        (pool["balance"].clone(), pool["held"].clone()),
        (json!(10_000), json!(0))
    );
    let (_, me) = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await;
    let stats = &me["data"]["stats"];
    assert_eq!(
        (
            stats["failed"].clone(),
            stats["activeTasks"].clone(),
            me["data"]["status"].clone()
        ),
        (json!(0), json!(0), json!("active")),
        "the platform's failure is not the agent's: {me}"
    );
    // Redeliveries after the end change nothing and ask the gate no more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(gate.0.load(Ordering::SeqCst), 3);
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn the_sweeper_fails_a_quality_check_past_its_maximum_age() {
    let gate = Arc::new(BrokenGate::default());
    let (mut world, parts) = world_with(Knobs {
        quality_gate: Some(gate.clone()),
        quality_max_attempts: Some(1_000),
        ..Knobs::default()
    })
    .await;
    let (buyer, _key, id) = delivered(&mut world, 10_000).await;
    eventually("the gate was tried", async || {
        gate.0.load(Ordering::SeqCst) >= 1
    })
    .await;
    sweeper_ahead(&parts, Duration::from_secs(30 * 60));
    assert_eq!(
        sweep(&parts).await.quality_given_up,
        0,
        "30 minutes is not too old"
    );
    sweeper_ahead(&parts, Duration::from_secs(61 * 60));
    let report = sweep(&parts).await;
    assert_eq!(report.quality_given_up, 1, "{report:?}");
    let task = world.task(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(
        (task["status"].clone(), task["failureReason"].clone()),
        (json!("failed"), json!("quality_unavailable"))
    );
    assert_eq!(sweep(&parts).await.quality_given_up, 0, "once");
    assert_eq!(pool(&world, &buyer).await["held"], 0);
    world.assert_books_balance(&[&id]).await;
}

// ---- 2. every charge is credited, once --------------------------------------------------

#[tokio::test]
async fn a_charge_not_credited_is_credited_once_by_a_retry_or_by_the_sweeper() {
    let (mut world, parts) = world_with(Knobs::default()).await;
    let owner = world.owner(0).await;
    let body = json!({"amount": 2_500});

    faults::arm(world.table(), point::AFTER_CHARGE_BEFORE_CREDIT, 1);
    let (status, _, _) = post_keyed(
        &world,
        "/vault/pool/top-up",
        &owner.token,
        "k1",
        body.clone(),
    )
    .await;
    assert_eq!(status, 500, "died between the charge and the credit");
    assert_eq!(pool(&world, &owner).await["balance"], 0);
    let (status, answer, replayed) = post_keyed(
        &world,
        "/vault/pool/top-up",
        &owner.token,
        "k1",
        body.clone(),
    )
    .await;
    assert_eq!((status, replayed), (200, false), "{answer}");
    assert_eq!(answer["data"]["newBalance"], 2_500);
    let (_, again, replayed) = post_keyed(
        &world,
        "/vault/pool/top-up",
        &owner.token,
        "k1",
        body.clone(),
    )
    .await;
    assert!(replayed);
    assert_eq!(again["data"]["chargeId"], answer["data"]["chargeId"]);

    // No retry this time: the sweeper's reconciliation finds the charge.
    faults::arm(world.table(), point::AFTER_CHARGE_BEFORE_CREDIT, 1);
    let (status, _, _) = post_keyed(
        &world,
        "/vault/pool/top-up",
        &owner.token,
        "k2",
        body.clone(),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        sweep(&parts).await.payments.credited,
        0,
        "too young to reconcile"
    );
    sweeper_ahead(&parts, Duration::from_secs(5 * 60));
    assert_eq!(sweep(&parts).await.payments.credited, 1);
    assert_eq!(sweep(&parts).await.payments.credited, 0, "once");
    assert_eq!(pool(&world, &owner).await["balance"], 5_000);
    // The client's late retry finds it done, not a second charge.
    let (status, late, _) =
        post_keyed(&world, "/vault/pool/top-up", &owner.token, "k2", body).await;
    assert_eq!(
        (status, late["data"]["newBalance"].clone()),
        (200, json!(5_000))
    );
    assert_eq!(top_up_entries(&world, &owner).await.len(), 2);
    assert_eq!(provider_charges(&world).await, 2, "two keys, two charges");
    world.assert_books_balance(&[]).await;
}

#[tokio::test]
async fn an_auto_top_up_charged_but_not_credited_is_credited_by_the_next_one() {
    let (mut world, _parts) = world_with(Knobs::default()).await;
    let buyer = world.owner(1_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 100, 10).await;
    let (status, body) = world
        .call(
            Method::PUT,
            "/vault/pool/auto-top-up",
            Auth::Bearer(&buyer.token),
            Some(json!({"enabled": true, "threshold": 500, "reloadAmount": 2_000})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    faults::arm(world.table(), point::AFTER_CHARGE_BEFORE_CREDIT, 1);
    let first = world.submit(&buyer, 800).await;
    let after_first = pool(&world, &buyer).await;
    assert_eq!(after_first["balance"], 1_000, "charged, not credited yet");
    assert_eq!(
        provider_charges(&world).await,
        2,
        "the first top-up and the reload"
    );
    let second = world.submit(&buyer, 100).await;
    let after_second = pool(&world, &buyer).await;
    assert_eq!(
        after_second["balance"], 3_000,
        "the same reload credited, once"
    );
    assert_eq!(
        provider_charges(&world).await,
        2,
        "the reload was not charged again"
    );
    let entries = top_up_entries(&world, &buyer).await;
    let amounts: Vec<i64> = entries
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![2_000, 1_000]);
    world.assert_books_balance(&[&first, &second]).await;
}

// ---- 3. retries never duplicate; crashes between steps are repaired --------------------

#[tokio::test]
async fn a_retried_submit_after_a_lost_response_creates_one_task_and_one_hold() {
    let (mut world, _parts) = world_with(Knobs::default()).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 2_500, 4).await;
    let task = json!({
        "taskType": "code_review", "maxBudget": 5_000,
        "input": {"description": "Review the Rust auth module"},
    });
    faults::arm(world.table(), point::AFTER_COMMIT_BEFORE_SEND, 1);
    let (status, _, _) = post_keyed(&world, "/tasks", &buyer.token, "submit-1", task.clone()).await;
    assert_eq!(status, 500, "committed, then died before answering");
    let (status, body, _) = post_keyed(&world, "/tasks", &buyer.token, "submit-1", task).await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let (_, listed) = world
        .call(Method::GET, "/tasks", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(listed["pagination"]["total"], 1, "one task: {listed}");
    assert_eq!(pool(&world, &buyer).await["held"], 5_000, "one hold");
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn a_task_committed_without_its_routing_message_is_routed_by_the_sweeper() {
    let (mut world, parts) = world_with(Knobs::default()).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 2_500, 4).await;
    faults::arm(world.table(), point::AFTER_COMMIT_BEFORE_SEND, 1);
    let (status, body) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(json!({"taskType": "code_review", "maxBudget": 5_000, "input": {"description": "Review it"}})),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    let (_, listed) = world
        .call(Method::GET, "/tasks", Auth::Bearer(&buyer.token), None)
        .await;
    let id = listed["data"][0]["id"]
        .as_str()
        .expect("the task was committed")
        .to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let task = world.task(&id, Auth::Bearer(&buyer.token)).await;
    assert!(task["agentId"].is_null(), "no message, no routing: {task}");
    sweeper_ahead(&parts, Duration::from_secs(11 * 60));
    assert_eq!(sweep(&parts).await.routing_redriven, 1);
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn consumers_that_die_after_writing_change_nothing_twice() {
    let (mut world, parts) = world_with(Knobs::default()).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 4).await;
    // The router assigns and dies; its redelivery must not assign twice.
    faults::arm(world.table(), point::CONSUMER_AFTER_WRITE, 1);
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    eventually("the router's fault fired", async || {
        faults::remaining(world.table(), point::CONSUMER_AFTER_WRITE) == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // the redelivery comes and goes
    let (_, me) = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await;
    assert_eq!(me["data"]["stats"]["activeTasks"], 1, "assigned once: {me}");
    // Quality completes, then dies before sending to settlement and again before
    // reporting its message done: charged once all the same.
    world.start(&id, &key).await;
    faults::arm(world.table(), point::AFTER_COMMIT_BEFORE_SEND, 2);
    faults::arm(world.table(), point::CONSUMER_AFTER_WRITE, 1);
    let (status, body) = world.complete(&id, &key, good_review()).await;
    assert_eq!(
        status, 500,
        "complete committed, its quality message not sent: {body}"
    );
    let task = world.task(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(task["status"], "quality_check");
    // Lost message: the sweeper re-drives it (the quality watch is 15 minutes).
    sweeper_ahead(&parts, Duration::from_secs(16 * 60));
    assert_eq!(sweep(&parts).await.quality_redriven, 1);
    world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pool = pool(&world, &buyer).await;
    assert_eq!(
        (pool["balance"].clone(), pool["held"].clone()),
        (json!(7_500), json!(0)),
        "charged $25 once: {pool}"
    );
    let (_, wallet) = world
        .call(Method::GET, "/vault/wallet", Auth::Key(&key), None)
        .await;
    // Earned once: still in escrow, or already paid out if the same sweep (its clock
    // 16 minutes ahead) settled it after the re-driven quality check completed it.
    let earned = wallet["data"]["pendingEscrow"].as_i64().unwrap()
        + wallet["data"]["available"].as_i64().unwrap();
    assert_eq!(earned, 2_125, "{wallet}");
    world.assert_books_balance(&[&id]).await;
}

// ---- 4. every item fits ----------------------------------------------------------------

#[tokio::test]
async fn an_output_too_big_to_store_is_refused_and_the_largest_allowed_completes() {
    let (mut world, _parts) = world_with(Knobs::default()).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 4).await;
    let big = "x".repeat(74 * 1024);
    let (status, body) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(json!({
                "taskType": "code_review", "maxBudget": 5_000,
                "input": {"description": "Review both", "files": [
                    {"name": "a.rs", "content": big}, {"name": "b.rs", "content": big}]},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, &key).await;
    // 170 KiB of JSON (under the old 200 KiB limit) that is 255 KiB stored: with the
    // 148 KiB input, past DynamoDB's 400 KB, so it could never have been written.
    let numbers = Value::Array(vec![json!(1); 85 * 1024]);
    let (status, body) = world.complete(&id, &key, numbers).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "output");
    assert_eq!(
        world.task(&id, Auth::Bearer(&buyer.token)).await["status"],
        "executing"
    );
    let mut largest = good_review();
    largest["appendix"] = json!("y".repeat(140 * 1024));
    let (status, body) = world.complete(&id, &key, largest).await;
    assert_eq!(
        status, 200,
        "the largest output with a large input still fits: {body}"
    );
    world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    world.assert_books_balance(&[&id]).await;
}

// ---- 5. allocations and transfers honour Idempotency-Key -------------------------------

#[tokio::test]
async fn allocations_and_transfers_move_money_once_per_idempotency_key() {
    let (mut world, _parts) = world_with(Knobs::default()).await;
    let owner = world.owner(10_000).await;
    let (a, _) = world.reviewer(&owner, 100, 1).await;
    let (b, _) = world.reviewer(&owner, 100, 1).await;
    let path = format!("/vault/wallets/{a}/allocate");
    let (status, first, replayed) = post_keyed(
        &world,
        &path,
        &owner.token,
        "alloc-1",
        json!({"amount": 1_000}),
    )
    .await;
    assert_eq!((status, replayed), (200, false), "{first}");
    let (status, again, replayed) = post_keyed(
        &world,
        &path,
        &owner.token,
        "alloc-1",
        json!({"amount": 1_000}),
    )
    .await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(again, first);
    let (status, _, _) = post_keyed(
        &world,
        &path,
        &owner.token,
        "alloc-1",
        json!({"amount": 999}),
    )
    .await;
    assert_eq!(status, 409, "same key, other body");
    let transfer = json!({"fromAgentId": a, "toAgentId": b, "amount": 400});
    for _ in 0..3 {
        let (status, body, _) = post_keyed(
            &world,
            "/vault/transfers",
            &owner.token,
            "move-1",
            transfer.clone(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let pool = pool(&world, &owner).await;
    assert_eq!(pool["balance"], 9_000, "allocated once");
    let wallet = |id: &str| {
        let id: aicity_domain::ids::AgentId = id.parse().unwrap();
        let (db, table) = (world.clients.dynamodb.clone(), world.table().to_owned());
        async move { aicity_store::vault::wallet(&db, &table, &id).await.unwrap() }
    };
    assert_eq!(wallet(&a).await.available.get(), 600, "transferred once");
    assert_eq!(wallet(&b).await.available.get(), 400);
    world.assert_books_balance(&[]).await;
}

// ---- 6. contention is retried, never a business error -----------------------------------

#[tokio::test]
async fn racing_submits_on_one_pool_are_all_held_when_the_money_is_there() {
    let (mut world, _parts) = world_with(Knobs::default()).await;
    let buyer = world.owner(100_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 100, 10).await;
    let world = Arc::new(world);
    let racers: Vec<_> = (0..30)
        .map(|_| {
            let (world, token) = (world.clone(), buyer.token.clone());
            tokio::spawn(async move {
                world
                    .call(
                        Method::POST,
                        "/tasks",
                        Auth::Bearer(&token),
                        Some(json!({"taskType": "code_review", "maxBudget": 1_000,
                                    "input": {"description": "Review this"}})),
                    )
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        assert_eq!(status, 201, "contention is not a shortfall: {body}");
        ids.push(body["data"]["id"].as_str().unwrap().to_owned());
    }
    let pool = pool(&world, &buyer).await;
    assert_eq!(pool["held"], 30_000, "{pool}");
    assert_eq!(pool["balance"], 100_000);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    world.assert_books_balance(&ids).await;
}

#[tokio::test]
async fn racing_submits_past_the_pool_hold_exactly_what_is_there() {
    let (mut world, _parts) = world_with(Knobs::default()).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 100, 10).await;
    let world = Arc::new(world);
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let (world, token) = (world.clone(), buyer.token.clone());
            tokio::spawn(async move {
                world
                    .call(
                        Method::POST,
                        "/tasks",
                        Auth::Bearer(&token),
                        Some(json!({"taskType": "code_review", "maxBudget": 1_000,
                                    "input": {"description": "Review this"}})),
                    )
                    .await
            })
        })
        .collect();
    let mut held = 0;
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        match status {
            201 => held += 1,
            402 => {
                assert_eq!(body["error"]["code"], "INSUFFICIENT_CREDITS");
                assert!(
                    body["error"]["details"]["available"].as_i64().unwrap() < 1_000,
                    "{body}"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(held, 10, "exactly $100 of $10 holds");
    assert_eq!(pool(&world, &buyer).await["available"], 0);
}
