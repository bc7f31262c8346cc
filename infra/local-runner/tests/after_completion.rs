//! After completion: the refund window on both sides, settlement (and its race with a
//! thumbs-down), disputes, and the sweeper's repairs. The clocks are injected.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aicity_domain::timestamps;
use aicity_store::vault::{self, HoldStatus};
use aicity_tasks::settlement::{Settled, settle};
use common::world::{Auth, Party, World, good_review, template};
use common::{Knobs, Parts};
use reqwest::Method;
use serde_json::{Value, json};

async fn world_with(knobs: Knobs) -> (World, Parts) {
    let mut template = template();
    for queue in template.queues.iter_mut() {
        if queue.logical_id == "SettlementQueue" {
            queue.delay_seconds = Some(1);
        }
    }
    let (running, parts, clients) = common::start_full(template, knobs, |f| Arc::new(f)).await;
    (
        World::from((running, parts.functions.clone(), clients)),
        parts,
    )
}

/// A buyer, a reviewer and a completed task: (buyer, agent key, task id, completedAt).
async fn completed_task(world: &mut World) -> (Party, String, String, time::OffsetDateTime) {
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 4).await;
    let (id, at) = complete_one(world, &buyer, &key).await;
    (buyer, key, id, at)
}

/// One more completed task for `buyer`, done by the agent with `key` (the only one).
async fn complete_one(world: &World, buyer: &Party, key: &str) -> (String, time::OffsetDateTime) {
    let id = world.submit(buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, key).await;
    world.complete(&id, key, good_review()).await;
    let done = world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    (
        id,
        timestamps::parse(done["completedAt"].as_str().unwrap()).unwrap(),
    )
}

async fn feedback(world: &World, buyer: &Party, id: &str, value: &str) -> (u16, Value) {
    world
        .call(
            Method::POST,
            &format!("/tasks/{id}/feedback"),
            Auth::Bearer(&buyer.token),
            Some(json!({"feedback": value})),
        )
        .await
}

#[tokio::test]
async fn a_thumbs_down_refunds_until_exactly_ten_minutes_after_completion() {
    let (mut world, parts) = world_with(Knobs::default()).await;
    let (buyer, key, inside, done_inside) = completed_task(&mut world).await;

    parts
        .knobs
        .tasks_clock
        .pin(done_inside + Duration::from_millis(599_999));
    let (status, body) = feedback(&world, &buyer, &inside, "down").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["refunded"], true);
    let task = world.task(&inside, Auth::Bearer(&buyer.token)).await;
    assert_eq!(
        (task["status"].clone(), task["feedback"].clone()),
        (json!("refunded"), json!("down"))
    );
    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(pool["data"]["balance"], 10_000, "refunded in full");
    let wallet = world
        .call(Method::GET, "/vault/wallet", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(wallet["data"]["pendingEscrow"], 0, "escrow reversed");

    let seller_key = key.clone();
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, &seller_key).await;
    world.complete(&id, &seller_key, good_review()).await;
    let done = world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    let at = timestamps::parse(done["completedAt"].as_str().unwrap()).unwrap();
    parts.knobs.tasks_clock.pin(at + Duration::from_secs(600));
    let (status, body) = feedback(&world, &buyer, &id, "down").await;
    assert_eq!(
        (status, body["data"]["refunded"].clone()),
        (200, json!(false)),
        "{body}"
    );
    let task = world.task(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(
        (task["status"].clone(), task["feedback"].clone()),
        (json!("completed"), json!("down"))
    );

    let (status, _) = feedback(&world, &buyer, &id, "up").await;
    assert_eq!(status, 409, "feedback once");
    let (status, _) = feedback(&world, &buyer, &inside, "down").await;
    assert_eq!(status, 409, "a refunded task takes no more feedback");
    let me = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(me["data"]["feedback"], json!({"up": 0, "down": 2}));
    world.assert_books_balance(&[&inside, &id]).await;
}

#[tokio::test]
async fn feedback_needs_a_completed_task_of_ones_own() {
    let (mut world, _) = world_with(Knobs::default()).await;
    let (buyer, key, id, _) = completed_task(&mut world).await;
    let stranger = world.owner(0).await;
    let (status, _) = feedback(&world, &stranger, &id, "up").await;
    assert_eq!(status, 403);
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/feedback"),
            Auth::Key(&key),
            Some(json!({"feedback": "up"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = feedback(&world, &buyer, &id, "sideways").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("VALIDATION_ERROR"))
    );
    let open = world.submit(&buyer, 5_000).await;
    let (status, body) = feedback(&world, &buyer, &open, "up").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("INVALID_TASK_STATE"))
    );
    let (status, body) = feedback(&world, &buyer, &id, "up").await;
    assert_eq!(
        (status, body["data"]["refunded"].clone()),
        (200, json!(false))
    );
}

#[tokio::test]
async fn settlement_pays_once_after_the_window() {
    let (mut world, parts) = world_with(Knobs::default()).await;
    let (buyer, key, id, done) = completed_task(&mut world).await;
    let task: aicity_domain::ids::TaskId = id.parse().unwrap();
    let window = aicity_domain::task::timing::REFUND_WINDOW;
    // Inside the window the consumer leaves the message for later.
    let early = settle(
        &parts.settlement.ctx,
        &task,
        parts.knobs.settlement_clock.as_ref(),
        window,
    )
    .await
    .unwrap();
    assert!(
        matches!(early, Settled::NotYet(left) if left <= window),
        "not before the window closes: {early:?}"
    );
    let _ = done;
    parts
        .knobs
        .settlement_clock
        .pin(done + window + Duration::from_secs(1));
    // The delayed message arrives (1 s in this test) and pays.
    let started = std::time::Instant::now();
    loop {
        let wallet = world
            .call(Method::GET, "/vault/wallet", Auth::Key(&key), None)
            .await
            .1;
        if wallet["data"]["available"] == 2_125 {
            assert_eq!(
                (
                    wallet["data"]["pendingEscrow"].clone(),
                    wallet["data"]["lifetimeEarned"].clone()
                ),
                (json!(0), json!(2_125))
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never settled: {wallet}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A duplicate settles nothing; a late thumbs-down refunds nothing.
    assert_eq!(
        settle(
            &parts.settlement.ctx,
            &task,
            parts.knobs.settlement_clock.as_ref(),
            window
        )
        .await
        .unwrap(),
        Settled::Nothing
    );
    parts.knobs.tasks_clock.pin(done + Duration::from_secs(60));
    let (_, body) = feedback(&world, &buyer, &id, "down").await;
    assert_eq!(
        body["data"]["refunded"], false,
        "already paid: nothing to reverse"
    );
    let wallet = world
        .call(Method::GET, "/vault/wallet", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(wallet["data"]["available"], 2_125);
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn settlement_racing_a_thumbs_down_has_one_outcome() {
    let (mut world, parts) = world_with(Knobs::default()).await;
    let window = aicity_domain::task::timing::REFUND_WINDOW;
    let mut ids = Vec::new();
    let buyer = world.owner(50_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 4).await;
    for _ in 0..4 {
        let (id, done) = complete_one(&world, &buyer, &key).await;
        // Skewed clocks: the buyer's request sees the window open, settlement sees it closed.
        parts.knobs.tasks_clock.pin(done + Duration::from_secs(300));
        parts
            .knobs
            .settlement_clock
            .pin(done + window + Duration::from_secs(1));
        let task: aicity_domain::ids::TaskId = id.parse().unwrap();
        let (paid, (_, answer)) = tokio::join!(
            settle(
                &parts.settlement.ctx,
                &task,
                parts.knobs.settlement_clock.as_ref(),
                window
            ),
            feedback(&world, &buyer, &id, "down"),
        );
        let paid = paid.unwrap() == Settled::Paid;
        let refunded = answer["data"]["refunded"] == true;
        assert!(
            paid ^ refunded,
            "exactly one of paid ({paid}) and refunded ({refunded})"
        );
        let hold = vault::hold(&world.clients.dynamodb, world.table(), &task)
            .await
            .unwrap();
        assert_eq!(
            hold.status,
            if paid {
                HoldStatus::Released
            } else {
                HoldStatus::Reversed
            }
        );
        let wallet = world
            .call(Method::GET, "/vault/wallet", Auth::Key(&key), None)
            .await
            .1;
        assert_eq!(wallet["data"]["pendingEscrow"], 0);
        ids.push(id);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    world.assert_books_balance(&refs).await;
}

#[tokio::test]
async fn a_dispute_is_filed_once_on_a_completed_task_and_the_agent_hears_of_it() {
    let (mut world, _) = world_with(Knobs::default()).await;
    let (buyer, key, id, _) = completed_task(&mut world).await;
    let dispute = |reason: &str| json!({"reason": reason, "description": "The review only covered 2 of the 5 files."});
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/dispute"),
            Auth::Bearer(&buyer.token),
            Some(dispute("quality_below_spec")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["data"]["id"].as_str().unwrap().starts_with("dsp_"));
    assert_eq!(
        (
            body["data"]["taskId"].clone(),
            body["data"]["status"].clone(),
            body["data"]["reason"].clone()
        ),
        (json!(id), json!("filed"), json!("quality_below_spec"))
    );
    let events = world.events(&id).await;
    let (kind, data) = events.last().unwrap();
    assert_eq!(
        (kind.as_str(), data["disputeId"].clone()),
        ("dispute", body["data"]["id"].clone())
    );
    let task = world.task(&id, Auth::Key(&key)).await;
    assert_eq!(task["disputeId"], body["data"]["id"]);

    let (status, _) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/dispute"),
            Auth::Bearer(&buyer.token),
            Some(dispute("wrong_output")),
        )
        .await;
    assert_eq!(status, 409, "one dispute per task");
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/dispute"),
            Auth::Bearer(&buyer.token),
            Some(dispute("because")),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("VALIDATION_ERROR"))
    );
    let (status, _) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/dispute"),
            Auth::Key(&key),
            Some(dispute("unresponsive")),
        )
        .await;
    assert_eq!(status, 403, "only the buyer disputes");
    let open = world.submit(&buyer, 5_000).await;
    let (status, _) = world
        .call(
            Method::POST,
            &format!("/tasks/{open}/dispute"),
            Auth::Bearer(&buyer.token),
            Some(dispute("unresponsive")),
        )
        .await;
    assert_eq!(status, 409, "only completed tasks");
}

#[tokio::test]
async fn the_sweeper_recovers_a_dropped_routing_message_and_times_out_a_stuck_execution() {
    let knobs = Knobs {
        routing_queue_override: Some("http://127.0.0.1:9/000000000000/dropped".into()),
        ..Knobs::default()
    };
    let (mut world, parts) = world_with(knobs).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (agent, key) = world.reviewer(&seller, 1_000, 2).await;

    // The routing message is lost after the commit: the task waits, unassigned.
    let id = world.submit(&buyer, 2_000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let task = world.task(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(
        (task["status"].clone(), task["agentId"].clone()),
        (json!("submitted"), Value::Null)
    );

    // Past its deadline, the sweeper sends it again and the router assigns it.
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + Duration::from_secs(3_600));
    let report = aicity_local_sweep(&parts).await;
    assert_eq!(report.routing_redriven, 1, "{report:?}");
    let assigned = world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(assigned["agentId"], agent.as_str());

    // The agent starts and goes silent: past the execution deadline it times out.
    let sandbox = world.start(&id, &key).await;
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + Duration::from_secs(7_200));
    let report = aicity_local_sweep(&parts).await;
    assert_eq!(report.timed_out, 1, "{report:?}");
    let failed = world.task(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(
        (failed["status"].clone(), failed["failureReason"].clone()),
        (json!("failed"), json!("timeout"))
    );
    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(
        (
            pool["data"]["available"].clone(),
            pool["data"]["held"].clone()
        ),
        (json!(10_000), json!(0))
    );

    // Its sandbox was never destroyed by the agent: the same run did it, the task being
    // finished by then.
    assert_eq!(report.sandboxes_destroyed, 1, "{report:?}");
    let dir =
        aicity_sandbox::LocalSandboxes::new(std::env::temp_dir().join("aicity-test-sandboxes"))
            .path_of(&sandbox)
            .unwrap();
    assert!(!dir.exists(), "the sandbox directory is gone");
    // Every rule is idempotent: nothing left to do.
    let again = aicity_local_sweep(&parts).await;
    assert_eq!(
        (again.timed_out, again.sandboxes_destroyed, again.rerouted),
        (0, 0, 0)
    );
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn the_sweeper_takes_an_unstarted_task_back_and_routes_it_again() {
    let (mut world, parts) = world_with(Knobs::default()).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (first, key) = world.reviewer(&seller, 1_000, 1).await;
    let id = world.submit(&buyer, 2_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    // A second agent comes online; the first never starts.
    let (second, other_key) = world.reviewer(&seller, 1_500, 1).await;
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + Duration::from_secs(3_600));
    let report = aicity_local_sweep(&parts).await;
    assert_eq!(report.rerouted, 1, "{report:?}");
    // The lapsed agent's slot was freed, and the task goes to the other one.
    let again = world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(again["status"], "submitted");
    assert_eq!(
        again["agentId"],
        second.as_str(),
        "never offered to {first} again"
    );
    let me = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(me["data"]["stats"]["activeTasks"], 0, "its slot freed once");
    let other = world
        .call(Method::GET, "/agents/me", Auth::Key(&other_key), None)
        .await
        .1;
    assert_eq!(other["data"]["stats"]["activeTasks"], 1);
    let statuses: Vec<String> = world
        .events(&id)
        .await
        .into_iter()
        .filter_map(|(_, d)| d["status"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        statuses,
        ["submitted", "routing", "submitted", "routing", "submitted"]
    );
    world.assert_books_balance(&[&id]).await;
}

async fn aicity_local_sweep(parts: &Parts) -> sweeper::Report {
    sweeper::sweep(&parts.sweeper).await.expect("sweep runs")
}
