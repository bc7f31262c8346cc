//! Estimates and profitability from a known history: three reviewers priced 1,000,
//! 2,000 and 3,000 cents, tasks completed with known charges, quality scores and
//! execution times, one refunded by a thumbs-down, and the exact figures of
//! `GET /tasks/estimate` and `GET /agents/me/profitability` checked; a redelivered
//! quality message and racing quality runs count nothing twice.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aicity_domain::identity::Category;
use aicity_domain::ids::{AgentId, TaskId};
use aicity_domain::task::economics::{Profit, day_name};
use aicity_domain::task::model::Task;
use aicity_domain::task::quality::Verdict;
use aicity_quality::{GateFuture, QualityGate};
use aicity_store::transact::Transaction;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use common::world::{Auth, Party, World, template};
use common::{Knobs, Parts};
use reqwest::Method;
use serde_json::{Value, json};

/// Scores what the agent says its output is worth (`output.score`), after `delay_ms`.
#[derive(Default)]
struct ScoreGate {
    delay_ms: AtomicU64,
}

impl QualityGate for ScoreGate {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn assess<'a>(&'a self, _task: &'a Task, output: &'a Value) -> GateFuture<'a> {
        Box::pin(async move {
            let delay = self.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            Ok(Verdict {
                score: output["score"].as_u64().unwrap_or(0) as u8,
                reasons: vec!["scored as told".into()],
            })
        })
    }
}

async fn world_with_gate() -> (World, Parts, Arc<ScoreGate>) {
    let gate = Arc::new(ScoreGate::default());
    let knobs = Knobs {
        quality_gate: Some(gate.clone()),
        ..Knobs::default()
    };
    let (running, parts, clients) = common::start_full(template(), knobs, |f| Arc::new(f)).await;
    (
        World::from((running, parts.functions.clone(), clients)),
        parts,
        gate,
    )
}

/// An agent of `owner` with these prices, online; (id, key).
async fn agent(world: &mut World, owner: &Party, pricing: &[(&str, i64)]) -> (String, String) {
    let capabilities: Vec<Value> = pricing
        .iter()
        .map(|(c, _)| json!({"category": c, "tags": []}))
        .collect();
    let prices: serde_json::Map<String, Value> = pricing
        .iter()
        .map(|(c, p)| ((*c).to_owned(), json!(p)))
        .collect();
    let (status, body) = world
        .call(
            Method::POST,
            "/agents",
            Auth::Bearer(&owner.token),
            Some(json!({
                "displayName": "Worker", "framework": "custom", "description": "Works",
                "capabilities": capabilities, "pricing": prices, "maxConcurrentTasks": 4,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["agent"]["id"].as_str().unwrap().to_owned();
    let key = body["data"]["apiKey"].as_str().unwrap().to_owned();
    world.agents.push(id.parse().unwrap());
    world.heartbeat(&key).await;
    (id, key)
}

/// A task of `task_type` hired directly from `agent`, started, completed with this
/// execution time and an output the gate scores `score`; waits until it is decided.
async fn run_task(
    world: &World,
    buyer: &Party,
    (agent, key): (&str, &str),
    task_type: &str,
    execution_ms: i64,
    score: u8,
) -> String {
    let id = hire(world, buyer, agent, task_type).await;
    world.start(&id, key).await;
    complete(world, &id, key, execution_ms, score).await;
    world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    id
}

async fn hire(world: &World, buyer: &Party, agent: &str, task_type: &str) -> String {
    let (status, body) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(json!({
                "taskType": task_type, "maxBudget": 5_000, "agentId": agent,
                "input": {"description": "Do the work"},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    id
}

async fn complete(world: &World, id: &str, key: &str, execution_ms: i64, score: u8) {
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/complete"),
            Auth::Key(key),
            Some(json!({
                "output": {"result": "done", "score": score},
                "executionTimeMs": execution_ms,
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn estimate(world: &World, auth: Auth<'_>, query: &str) -> (u16, Value) {
    let (status, body) = world
        .call(Method::GET, &format!("/tasks/estimate?{query}"), auth, None)
        .await;
    (
        status,
        if status == 200 {
            body["data"].clone()
        } else {
            body
        },
    )
}

async fn profitability(world: &World, key: &str, query: &str) -> (u16, Value) {
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/agents/me/profitability{query}"),
            Auth::Key(key),
            None,
        )
        .await;
    (
        status,
        if status == 200 {
            body["data"].clone()
        } else {
            body
        },
    )
}

fn line(tasks: i64, revenue: i64, fees: i64, refunds: i64) -> Value {
    json!({"tasks": tasks, "revenue": revenue, "fees": fees, "refunds": refunds,
           "net": revenue - fees - refunds})
}

/// Writes `agent`'s counters of a day `days_ago` directly, as the money step would
/// have then (the clock of a money step is the real one).
async fn past_day(world: &World, agent: &str, days_ago: i64, category: Category, profit: Profit) {
    let agent: AgentId = agent.parse().unwrap();
    let day = day_name(time::OffsetDateTime::now_utc().date() - time::Duration::days(days_ago));
    let item =
        aicity_store::stats::profit_item(world.table(), &agent, &day, category, profit).unwrap();
    let mut transaction = Transaction::new();
    transaction.extend([item]);
    transaction.commit(&world.clients.dynamodb).await.unwrap();
}

fn sqs_event(task: &str) -> SqsEvent {
    let mut record = SqsMessage::default();
    record.message_id = Some(ulid::Ulid::generate().to_string());
    record.body = Some(json!({"taskId": task}).to_string());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    event
}

#[tokio::test]
async fn estimates_and_profitability_from_a_known_history() {
    let (mut world, parts, _gate) = world_with_gate().await;
    let buyer = world.owner(100_000).await;
    let (seller_a, seller_b, seller_c) = (
        world.owner(0).await,
        world.owner(0).await,
        world.owner(0).await,
    );
    let a = agent(
        &mut world,
        &seller_a,
        &[("code_review", 1_000), ("testing", 1_500)],
    )
    .await;
    let b = agent(&mut world, &seller_b, &[("code_review", 2_000)]).await;
    let c = agent(&mut world, &seller_c, &[("code_review", 3_000)]).await;
    // The buyer's own cheap reviewer: never in the buyer's market.
    let own = agent(&mut world, &buyer, &[("code_review", 500)]).await;

    // The market before any history: 3 reviewers of other owners.
    let (status, body) = estimate(&world, Auth::Bearer(&buyer.token), "taskType=code_review").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "taskType": "code_review", "maxBudget": null, "eligibleAgents": 3,
            "price": {"min": 1_000, "p50": 2_000, "p90": 3_000, "max": 3_000},
            "history": {"completed": 0, "avgCharged": null, "avgQualityScore": null,
                        "avgExecutionTimeMs": null},
        })
    );

    // Over what an unverified agent may be trusted with (10,000): nobody, while
    // all of them are new.
    let (_, body) = estimate(
        &world,
        Auth::Bearer(&buyer.token),
        "taskType=code_review&maxBudget=10001",
    )
    .await;
    assert_eq!(body["eligibleAgents"], 0);
    // The history: code reviews by A (twice), B and C; a testing task by A.
    let t1 = run_task(&world, &buyer, (&a.0, &a.1), "code_review", 1_000, 80).await;
    let t2 = run_task(&world, &buyer, (&b.0, &b.1), "code_review", 2_000, 90).await;
    let t3 = run_task(&world, &buyer, (&c.0, &c.1), "code_review", 4_000, 95).await;
    let t4 = run_task(&world, &buyer, (&a.0, &a.1), "code_review", 3_000, 70).await;
    let t5 = run_task(&world, &buyer, (&a.0, &a.1), "testing", 500, 85).await;
    // And a task the gate fails: no charge, not in the history.
    let failed = hire(&world, &buyer, &b.0, "code_review").await;
    world.start(&failed, &b.1).await;
    complete(&world, &failed, &b.1, 9_999, 10).await;
    world
        .wait_status(&failed, Auth::Bearer(&buyer.token), "failed")
        .await;
    // t4 gets a thumbs-down inside the window: refunded in full.
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{t4}/feedback"),
            Auth::Bearer(&buyer.token),
            Some(json!({"feedback": "down"})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["refunded"].clone()),
        (200, json!(true)),
        "{body}"
    );

    // A redelivered quality message of a completed task, handled to its end: nothing
    // counts twice.
    for id in [&t1, &t4] {
        let response = quality::handle(&parts.quality, sqs_event(id)).await;
        assert!(response.batch_item_failures.is_empty());
    }

    // Charged: 1,000 + 2,000 + 3,000 + 1,000 (refunded later, still completed) → 1,750
    // on average; scores 80, 90, 95, 70 → 83.75 → 84; times 1, 2, 4, 3 s → 2,500 ms.
    let history = json!({"completed": 4, "avgCharged": 1_750, "avgQualityScore": 84,
                         "avgExecutionTimeMs": 2_500});
    let (_, body) = estimate(&world, Auth::Bearer(&buyer.token), "taskType=code_review").await;
    assert_eq!(body["eligibleAgents"], 3);
    assert_eq!(body["history"], history);
    // A budget below C's price leaves A and B (nearest rank: p50 of two is the first).
    let (_, body) = estimate(
        &world,
        Auth::Bearer(&buyer.token),
        "taskType=code_review&maxBudget=2500",
    )
    .await;
    assert_eq!(
        (
            body["eligibleAgents"].clone(),
            body["price"].clone(),
            body["maxBudget"].clone()
        ),
        (
            json!(2),
            json!({"min": 1_000, "p50": 1_000, "p90": 2_000, "max": 2_000}),
            json!(2_500)
        )
    );
    assert_eq!(
        body["history"], history,
        "the history does not depend on the budget"
    );
    // Below every price: nobody, and nulls.
    let (_, body) = estimate(
        &world,
        Auth::Bearer(&buyer.token),
        "taskType=code_review&maxBudget=999",
    )
    .await;
    assert_eq!(
        (body["eligibleAgents"].clone(), body["price"].clone()),
        (
            json!(0),
            json!({"min": null, "p50": null, "p90": null, "max": null})
        )
    );
    // Agent A asks: its own owner's agent is out, the buyer's cheap one in.
    let (_, body) = estimate(
        &world,
        Auth::Key(&a.1),
        "taskType=code_review&maxBudget=5000",
    )
    .await;
    assert_eq!(
        (body["eligibleAgents"].clone(), body["price"].clone()),
        (
            json!(3),
            json!({"min": 500, "p50": 2_000, "p90": 3_000, "max": 3_000})
        )
    );
    let (_, body) = estimate(&world, Auth::Key(&own.1), "taskType=testing").await;
    assert_eq!(
        body,
        json!({
            "taskType": "testing", "maxBudget": null, "eligibleAgents": 1,
            "price": {"min": 1_500, "p50": 1_500, "p90": 1_500, "max": 1_500},
            "history": {"completed": 1, "avgCharged": 1_500, "avgQualityScore": 85,
                        "avgExecutionTimeMs": 500},
        })
    );
    let (_, body) = estimate(&world, Auth::Bearer(&buyer.token), "taskType=research").await;
    assert_eq!(
        (
            body["eligibleAgents"].clone(),
            body["history"]["completed"].clone()
        ),
        (json!(0), json!(0))
    );

    // A's profitability: code review 2 tasks, 2,000 charged, fees 150 + 150 − 150 given
    // back with t4's refund, 1,000 refunded → keeps 850 (t1's earning); testing 1,500,
    // fee 225 → 1,275.
    let (status, body) = profitability(&world, &a.1, "").await;
    assert_eq!(status, 200, "{body}");
    let today = day_name(time::OffsetDateTime::now_utc().date());
    let since_30 = day_name(time::OffsetDateTime::now_utc().date() - time::Duration::days(29));
    assert_eq!(
        body,
        json!({
            "agentId": a.0, "period": "30d", "since": since_30,
            "categories": {"code_review": line(2, 2_000, 150, 1_000), "testing": line(1, 1_500, 225, 0)},
            "totals": line(3, 3_500, 375, 1_000),
        })
    );
    assert_eq!(body["totals"]["net"], 850 + 1_275);
    // What A's wallet holds agrees: its escrow is exactly the net (nothing settled yet).
    let wallet = world
        .call(Method::GET, "/vault/wallet", Auth::Key(&a.1), None)
        .await
        .1;
    assert_eq!(
        wallet["data"]["pendingEscrow"].as_i64().unwrap()
            + wallet["data"]["available"].as_i64().unwrap(),
        2_125
    );
    // B: one task of 2,000 (the failed one charged nothing).
    let (_, body) = profitability(&world, &b.1, "?period=all").await;
    assert_eq!(
        (
            body["categories"].clone(),
            body["totals"].clone(),
            body["since"].clone()
        ),
        (
            json!({"code_review": line(1, 2_000, 300, 0)}),
            line(1, 2_000, 300, 0),
            Value::Null
        )
    );
    // The buyer's own agent did nothing: empty, zeros.
    let (_, body) = profitability(&world, &own.1, "?period=90d").await;
    assert_eq!(
        (body["categories"].clone(), body["totals"].clone()),
        (json!({}), line(0, 0, 0, 0))
    );

    // The SDK reads the same figures, typed.
    let sdk = aicity_sdk::AgentCity::builder()
        .base_url(&world.running.base_url)
        .api_key(&a.1)
        .build()
        .unwrap();
    let report = sdk.agents().profitability(None).await.unwrap();
    assert_eq!(
        (
            report.period.as_str(),
            report.totals.net,
            report.categories["testing"].fees
        ),
        ("30d", 2_125, 225)
    );
    let typed = sdk
        .tasks()
        .estimate("code_review", Some(2_500))
        .await
        .unwrap();
    assert_eq!(
        (
            typed.eligible_agents,
            typed.price.p90,
            typed.history.avg_charged
        ),
        (2, Some(2_000), Some(1_750))
    );
    let refused = sdk.agents().profitability(Some("7d")).await.unwrap_err();
    assert!(
        matches!(refused, aicity_sdk::Error::Validation(_)),
        "{refused:?}"
    );

    // Older days: 40 days ago (in 90d and all, not 30d), 100 days ago (all only).
    past_day(
        &world,
        &a.0,
        40,
        Category::CodeReview,
        Profit {
            tasks: 1,
            revenue: 4_000,
            fees: 600,
            refunds: 0,
        },
    )
    .await;
    past_day(
        &world,
        &a.0,
        100,
        Category::Research,
        Profit {
            tasks: 2,
            revenue: 1_000,
            fees: 150,
            refunds: 500,
        },
    )
    .await;
    let (_, thirty) = profitability(&world, &a.1, "?period=30d").await;
    assert_eq!(thirty["totals"], line(3, 3_500, 375, 1_000));
    let (_, ninety) = profitability(&world, &a.1, "?period=90d").await;
    assert_eq!(
        ninety["categories"],
        json!({"code_review": line(3, 6_000, 750, 1_000), "testing": line(1, 1_500, 225, 0)})
    );
    assert_eq!(ninety["totals"], line(4, 7_500, 975, 1_000));
    let (_, all) = profitability(&world, &a.1, "?period=all").await;
    assert_eq!(
        all["categories"],
        json!({
            "code_review": line(3, 6_000, 750, 1_000),
            "research": line(2, 1_000, 150, 500),
            "testing": line(1, 1_500, 225, 0),
        })
    );
    assert_eq!(all["totals"], line(6, 8_500, 1_125, 1_500));
    assert!(today.as_str() >= since_30.as_str());

    world
        .assert_books_balance(&[&t1, &t2, &t3, &t4, &t5, &failed])
        .await;
}

#[tokio::test]
async fn racing_quality_runs_and_redeliveries_count_a_completion_once() {
    let (mut world, parts, gate) = world_with_gate().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (id, key) = agent(&mut world, &seller, &[("code_review", 2_500)]).await;
    let task = hire(&world, &buyer, &id, "code_review").await;
    world.start(&task, &key).await;
    // Every run of the gate now takes a while: the queue's run and five more started
    // at once all read the task in quality_check, and race to commit.
    gate.delay_ms.store(1_500, Ordering::SeqCst);
    complete(&world, &task, &key, 1_200, 88).await;
    let task_id: TaskId = task.parse().unwrap();
    let runs = (0..5).map(|_| quality::assess(&parts.quality, &task_id));
    for result in futures::future::join_all(runs).await {
        result.unwrap();
    }
    world
        .wait_status(&task, Auth::Bearer(&buyer.token), "completed")
        .await;
    gate.delay_ms.store(0, Ordering::SeqCst);
    // And redelivered twice more through the queue, waited for as handled.
    let url = world
        .running
        .resources
        .queue("QualityQueue")
        .unwrap()
        .url
        .clone();
    for _ in 0..2 {
        world
            .clients
            .sqs
            .send_message()
            .queue_url(&url)
            .message_body(json!({"taskId": task}).to_string())
            .send()
            .await
            .unwrap();
    }
    let response = quality::handle(&parts.quality, sqs_event(&task)).await;
    assert!(response.batch_item_failures.is_empty());
    // Give the queue's copies time to be handled (visibility timeout 2 s in tests).
    tokio::time::sleep(Duration::from_secs(4)).await;

    let completes = world
        .events(&task)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "complete")
        .count();
    assert_eq!(completes, 1, "decided once");
    let (_, body) = estimate(&world, Auth::Bearer(&buyer.token), "taskType=code_review").await;
    assert_eq!(
        body["history"],
        json!({"completed": 1, "avgCharged": 2_500, "avgQualityScore": 88,
               "avgExecutionTimeMs": 1_200})
    );
    let (_, body) = profitability(&world, &key, "?period=all").await;
    assert_eq!(body["totals"], line(1, 2_500, 375, 0));
    world.assert_books_balance(&[&task]).await;
}

#[tokio::test]
async fn bad_requests_are_refused_and_literal_routes_win() {
    let (mut world, _parts, _gate) = world_with_gate().await;
    let owner = world.owner(0).await;
    let (_, key) = agent(&mut world, &owner, &[("code_review", 1_000)]).await;

    // The gateway sends the literal paths to their handlers, not to /tasks/{id} or
    // /agents/{id}/…: the template's routes, matched as the runner matches them.
    let routes = aicity_local::gateway::routes(&template());
    let (route, params) =
        aicity_local::gateway::find_route(&routes, "GET", "/api/v1/tasks/estimate").unwrap();
    assert_eq!(
        (
            route.route_key.as_str(),
            route.function.as_str(),
            params.is_empty()
        ),
        ("GET /api/v1/tasks/estimate", "tasks", true)
    );
    let (route, params) =
        aicity_local::gateway::find_route(&routes, "GET", "/api/v1/agents/me/profitability")
            .unwrap();
    assert_eq!(
        (
            route.route_key.as_str(),
            route.function.as_str(),
            params.is_empty()
        ),
        ("GET /api/v1/agents/me/profitability", "agents", true)
    );

    let code = |body: &Value| body["error"]["code"].clone();
    for query in [
        "",
        "taskType=plumbing",
        "taskType=code_review&maxBudget=0",
        "taskType=code_review&maxBudget=abc",
        "taskType=code_review&maxBudget=1000001",
    ] {
        let (status, body) = estimate(&world, Auth::Key(&key), query).await;
        assert_eq!(
            (status, code(&body)),
            (400, json!("VALIDATION_ERROR")),
            "{query}: {body}"
        );
    }
    let (status, body) = world
        .call(
            Method::GET,
            "/tasks/estimate?taskType=code_review",
            Auth::Key("ac_live_nope"),
            None,
        )
        .await;
    assert_eq!(status, 401, "{body}");

    let (status, body) = profitability(&world, &key, "?period=7d").await;
    assert_eq!((status, code(&body)), (400, json!("VALIDATION_ERROR")));
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "period");
    // An agent's figures: an owner session is not an agent.
    let (status, _) = world
        .call(
            Method::GET,
            "/agents/me/profitability",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 401);
}
