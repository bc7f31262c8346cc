//! Workflows on the emulator: steps run in order with the output before them, the whole
//! budget is held at creation and released exactly, a failed step or a cancel ends the
//! rest, and repeated or crashed engine moves change nothing twice.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aicity_domain::ids::WorkflowId;
use aicity_store::faults::{self, point};
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

fn step(description: &str, budget: i64) -> Value {
    json!({"taskType": "code_review", "description": description, "maxBudget": budget,
           "input": {"files": [{"name": "auth.rs", "content": "fn check() {}"}]}})
}

async fn create(world: &World, buyer: &Party, steps: Vec<Value>) -> Value {
    let (status, body) = world
        .call(
            Method::POST,
            "/workflows",
            Auth::Bearer(&buyer.token),
            Some(json!({"name": "Full code audit", "steps": steps})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"].clone()
}

async fn workflow(world: &World, buyer: &Party, id: &str) -> Value {
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/workflows/{id}"),
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn wait_workflow(world: &World, buyer: &Party, id: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let current = workflow(world, buyer, id).await;
        if current["status"] == status {
            return current;
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "workflow {id} stuck at {current}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn step_id(workflow: &Value, i: usize) -> String {
    workflow["steps"][i]["taskId"].as_str().unwrap().to_owned()
}

async fn pool(world: &World, buyer: &Party) -> Value {
    world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1["data"]
        .clone()
}

/// Runs one step to completion with the reviewer.
async fn run_step(world: &World, buyer: &Party, key: &str, task: &str) -> Value {
    world.wait_assigned(task, Auth::Bearer(&buyer.token)).await;
    world.start(task, key).await;
    let (status, body) = world.complete(task, key, good_review()).await;
    assert_eq!(status, 200, "{body}");
    world
        .wait_status(task, Auth::Bearer(&buyer.token), "completed")
        .await
}

/// Waits until nothing is left on the queue nor in flight: every message was handled
/// and deleted.
async fn drained(world: &World, queue: &str) {
    let url = world.running.resources.queue(queue).unwrap().url.clone();
    let started = Instant::now();
    loop {
        let attributes = world
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let count = |name| {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages) == 0
            && count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                == 0
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{queue} never drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn steps_run_in_order_with_the_output_before_them_and_the_budget_held_once() {
    let (mut world, _parts) = world().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 1_000, 3).await;

    let created = create(
        &world,
        &buyer,
        vec![
            step("Review the auth module", 2_000),
            step("Review the fix", 3_000),
        ],
    )
    .await;
    assert_eq!(created["status"], "active");
    assert_eq!(created["totalBudget"], 5_000);
    assert_eq!(created["steps"][0]["status"], "submitted");
    assert_eq!(created["steps"][1]["status"], "waiting");
    assert_eq!(created["steps"][1]["order"], 2);
    // The whole budget is held at once.
    let held = pool(&world, &buyer).await;
    assert_eq!(
        (held["available"].clone(), held["held"].clone()),
        (json!(5_000), json!(5_000))
    );

    let (first, second) = (step_id(&created, 0), step_id(&created, 1));
    let waiting = world.task(&second, Auth::Bearer(&buyer.token)).await;
    assert_eq!(waiting["status"], "waiting");
    assert_eq!(waiting["parentTaskId"], first.as_str());
    assert!(waiting["agentId"].is_null(), "a waiting step is not routed");

    let done = run_step(&world, &buyer, &key, &first).await;
    // The next step starts with the output before it.
    let released = world
        .wait_assigned(&second, Auth::Bearer(&buyer.token))
        .await;
    assert_eq!(released["input"]["previousOutput"], done["output"]);
    assert_eq!(released["input"]["description"], "Review the fix");
    assert_eq!(released["workflowId"], created["id"]);
    assert_eq!(released["workflowStep"], 2);
    run_step(&world, &buyer, &key, &second).await;

    let finished =
        wait_workflow(&world, &buyer, created["id"].as_str().unwrap(), "completed").await;
    assert_eq!(finished["creditsCharged"], 2_000);
    assert!(finished["completedAt"].is_string());
    let after = pool(&world, &buyer).await;
    assert_eq!(
        (after["balance"].clone(), after["held"].clone()),
        (json!(8_000), json!(0)),
        "each step charged the agent's price, the rest released"
    );
    let (status, listed) = world
        .call(Method::GET, "/workflows", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"][0]["id"], created["id"]);
    assert_eq!(listed["pagination"]["total"], 1);
    world.assert_books_balance(&[&first, &second]).await;
}

#[tokio::test]
async fn a_failed_step_fails_the_workflow_and_releases_the_rest() {
    let (mut world, _parts) = world().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 1_000, 3).await;
    let created = create(
        &world,
        &buyer,
        vec![step("one", 2_000), step("two", 3_000), step("three", 1_500)],
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first = step_id(&created, 0);
    world
        .wait_assigned(&first, Auth::Bearer(&buyer.token))
        .await;
    world.start(&first, &key).await;
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{first}/fail"),
            Auth::Key(&key),
            Some(json!({"reason": "execution_error", "errorMessage": "crashed"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let failed = wait_workflow(&world, &buyer, &id, "failed").await;
    assert_eq!(failed["failedStep"], 1);
    let statuses: Vec<&str> = failed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "cancelled", "cancelled"]);
    let after = pool(&world, &buyer).await;
    assert_eq!(
        (
            after["balance"].clone(),
            after["available"].clone(),
            after["held"].clone()
        ),
        (json!(10_000), json!(10_000), json!(0)),
        "every hold released, nothing charged"
    );
    let ids: Vec<String> = (0..3).map(|i| step_id(&created, i)).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    world.assert_books_balance(&ids).await;
}

#[tokio::test]
async fn cancel_mid_way_skips_what_has_not_started_and_releases_its_holds() {
    let (mut world, _parts) = world().await;
    let buyer = world.owner(10_000).await;
    let stranger = world.owner(0).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 1_000, 3).await;
    let created = create(
        &world,
        &buyer,
        vec![step("one", 2_000), step("two", 3_000), step("three", 1_500)],
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    run_step(&world, &buyer, &key, &step_id(&created, 0)).await;
    // Step two is routed and assigned, not started; step three waits.
    world
        .wait_assigned(&step_id(&created, 1), Auth::Bearer(&buyer.token))
        .await;

    let (status, body) = world
        .call(
            Method::GET,
            &format!("/workflows/{id}"),
            Auth::Bearer(&stranger.token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("WORKFLOW_NOT_FOUND"))
    );
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/workflows/{id}/cancel"),
            Auth::Bearer(&stranger.token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("WORKFLOW_NOT_FOUND"))
    );

    // Two cancels race: one ends the workflow, the other finds it ended.
    let path = format!("/workflows/{id}/cancel");
    let (a, b) = tokio::join!(
        world.call(Method::POST, &path, Auth::Bearer(&buyer.token), None),
        world.call(Method::POST, &path, Auth::Bearer(&buyer.token), None),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let lost = if a.0 == 409 { a.1 } else { b.1 };
    assert_eq!(lost["error"]["code"], "INVALID_WORKFLOW_STATE");
    assert_eq!(lost["error"]["details"]["status"], "cancelled");

    let cancelled = wait_workflow(&world, &buyer, &id, "cancelled").await;
    let statuses: Vec<&str> = cancelled["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "cancelled", "cancelled"]);
    let after = pool(&world, &buyer).await;
    assert_eq!(
        (after["balance"].clone(), after["held"].clone()),
        (json!(9_000), json!(0)),
        "step one charged, the others released"
    );
    let ids: Vec<String> = (0..3).map(|i| step_id(&created, i)).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    world.assert_books_balance(&ids).await;
}

#[tokio::test]
async fn redelivered_messages_and_racing_engine_moves_change_nothing_twice() {
    let (mut world, parts) = world().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 1_000, 3).await;
    let created = create(&world, &buyer, vec![step("one", 2_000), step("two", 3_000)]).await;
    let id: WorkflowId = created["id"].as_str().unwrap().parse().unwrap();
    let (first, second) = (step_id(&created, 0), step_id(&created, 1));
    run_step(&world, &buyer, &key, &first).await;
    world
        .wait_assigned(&second, Auth::Bearer(&buyer.token))
        .await;
    let events_before = world.events(&second).await.len();

    // The quality message of step one and the routing message of step two, twice
    // each, and four engine moves at once: nothing is released or routed again.
    for (queue, task) in [("QualityQueue", &first), ("RoutingQueue", &second)] {
        let url = world.running.resources.queue(queue).unwrap().url.clone();
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
    }
    let moves = (0..4).map(|_| aicity_tasks::workflows::advance(&parts.api, &id));
    for result in futures::future::join_all(moves).await {
        result.unwrap();
    }
    drained(&world, "QualityQueue").await;
    drained(&world, "RoutingQueue").await;
    assert_eq!(
        world.events(&second).await.len(),
        events_before,
        "no new events"
    );
    let held = pool(&world, &buyer).await;
    assert_eq!(
        (held["balance"].clone(), held["held"].clone()),
        (json!(9_000), json!(3_000)),
        "step one charged once, step two held once"
    );
    run_step(&world, &buyer, &key, &second).await;
    wait_workflow(&world, &buyer, &id.to_string(), "completed").await;
    world.assert_books_balance(&[&first, &second]).await;
}

#[tokio::test]
async fn a_crash_between_a_step_and_the_engine_is_finished_by_the_sweeper() {
    let (mut world, parts) = world().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 1_000, 3).await;
    let created = create(&world, &buyer, vec![step("one", 2_000), step("two", 3_000)]).await;
    let id: WorkflowId = created["id"].as_str().unwrap().parse().unwrap();
    let (first, second) = (step_id(&created, 0), step_id(&created, 1));

    faults::arm(world.table(), point::BEFORE_WORKFLOW_ADVANCE, 1);
    run_step(&world, &buyer, &key, &first).await;
    drained(&world, "QualityQueue").await;
    assert_eq!(
        faults::remaining(world.table(), point::BEFORE_WORKFLOW_ADVANCE),
        0
    );
    // The step completed and the process died before the engine moved: the next step
    // still waits, and the workflow is in the sweeper's index.
    let stuck = world.task(&second, Auth::Bearer(&buyer.token)).await;
    assert_eq!(stuck["status"], "waiting");
    let due = aicity_store::workflows::due_before(
        &world.clients.dynamodb,
        world.table(),
        time::OffsetDateTime::now_utc().unix_timestamp() + 1,
        100,
    )
    .await
    .unwrap();
    assert_eq!(due, [id]);

    // A minute later the sweeper moves it on.
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + Duration::from_secs(60));
    let report = sweeper::sweep(&parts.sweeper).await.unwrap();
    parts.knobs.settlement_clock.unpin();
    assert_eq!(report.workflows_advanced, 1);
    let released = world
        .wait_assigned(&second, Auth::Bearer(&buyer.token))
        .await;
    assert!(released["input"]["previousOutput"].is_object());
    let due = aicity_store::workflows::due_before(
        &world.clients.dynamodb,
        world.table(),
        time::OffsetDateTime::now_utc().unix_timestamp() + 1,
        100,
    )
    .await
    .unwrap();
    assert!(due.is_empty(), "nothing left for the sweeper: {due:?}");
    run_step(&world, &buyer, &key, &second).await;
    wait_workflow(&world, &buyer, &id.to_string(), "completed").await;
    world.assert_books_balance(&[&first, &second]).await;
}

#[tokio::test]
async fn a_workflow_is_refused_whole_before_anything_is_held() {
    let (mut world, _parts) = world().await;
    let buyer = world.owner(3_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 1_000, 3).await;
    for (body, field) in [
        (json!({"name": "x", "steps": [step("one", 500)]}), "steps"),
        (
            json!({"name": "x", "steps": [step("one", 500),
                {"taskType": "nonsense", "description": "d", "maxBudget": 5}]}),
            "steps[1].taskType",
        ),
        (
            json!({"name": "x", "steps": [step("one", 500), step("", 500)]}),
            "steps[1].description",
        ),
    ] {
        let (status, answer) = world
            .call(
                Method::POST,
                "/workflows",
                Auth::Bearer(&buyer.token),
                Some(body),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "VALIDATION_ERROR");
        let fields: Vec<&str> = answer["error"]["details"]["fields"]
            .as_array()
            .map(|f| f.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(fields.contains(&field), "{field} in {answer}");
    }
    // 2,000 + 2,000 is more than the pool holds: nothing is created or held.
    let (status, answer) = world
        .call(
            Method::POST,
            "/workflows",
            Auth::Bearer(&buyer.token),
            Some(json!({"name": "x", "steps": [step("one", 2_000), step("two", 2_000)]})),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (402, json!("INSUFFICIENT_CREDITS")),
        "{answer}"
    );
    let after = pool(&world, &buyer).await;
    assert_eq!(
        (after["available"].clone(), after["held"].clone()),
        (json!(3_000), json!(0))
    );
    let (_, listed) = world
        .call(Method::GET, "/workflows", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(listed["pagination"]["total"], 0);
    let (_, tasks) = world
        .call(Method::GET, "/tasks", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(tasks["pagination"]["total"], 0, "no task was created");
}
