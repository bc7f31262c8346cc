//! The task lifecycle end to end on the real queue path: HTTP through the gateway,
//! SQS to the router and the quality gate through the runner's pollers, the emulator
//! underneath. After every scenario the ledger sums to zero and no hold is left open on
//! a finished task.

mod common;

use common::world::{Auth, World, good_review, template};

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aicity_local::invoke::{InvokeError, Invoker, Streamed};
use aicity_testkit::invoke::InProcess;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_task_is_routed_executed_scored_and_paid() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (worker, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;

    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(
        (
            pool["data"]["held"].clone(),
            pool["data"]["available"].clone()
        ),
        (json!(5_000), json!(5_000))
    );

    let assigned = world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(assigned["agentId"], worker.as_str());
    let (_, waiting) = world
        .call(Method::GET, "/tasks/submitted", Auth::Key(&key), None)
        .await;
    assert_eq!(waiting["data"][0]["id"], id.as_str());

    let sandbox = world.start(&id, &key).await;
    let (status, _) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/progress"),
            Auth::Key(&key),
            Some(json!({"message": "cloning", "percent": 20})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = world.complete(&id, &key, good_review()).await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("quality_check"))
    );
    let (status, body) = world
        .call(
            Method::DELETE,
            &format!("/tasks/{id}/sandbox/{sandbox}"),
            Auth::Key(&key),
            None,
        )
        .await;
    assert_eq!(
        (status, body["data"]["destroyed"].clone()),
        (200, json!(true))
    );

    let done = world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    assert!(done["qualityScore"].as_u64().unwrap() >= 70, "{done}");
    assert_eq!(done["creditsCharged"], 2_500);
    assert_eq!(done["executionTimeMs"], 3_200);
    assert_eq!(done["output"], good_review());

    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(
        (
            pool["data"]["balance"].clone(),
            pool["data"]["held"].clone()
        ),
        (json!(7_500), json!(0))
    );
    let wallet = world
        .call(Method::GET, "/vault/wallet", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(wallet["data"]["pendingEscrow"], 2_125);
    let me = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(
        me["data"]["stats"],
        json!({"completed": 1, "failed": 0, "consecutiveFailures": 0, "activeTasks": 0})
    );

    let kinds: Vec<String> = world
        .events(&id)
        .await
        .into_iter()
        .map(|(k, d)| format!("{k}:{}", d["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            "status:submitted",
            "status:routing",
            "status:submitted",
            "status:executing",
            "progress:",
            "status:quality_check",
            "status:completed",
            "complete:"
        ]
    );
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn a_thin_output_fails_the_quality_gate_and_releases_everything() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, &key).await;
    world.complete(&id, &key, json!("ok")).await;
    let failed = world
        .wait_status(&id, Auth::Bearer(&buyer.token), "failed")
        .await;
    assert_eq!(failed["failureReason"], "quality_gate");
    assert!(failed["qualityScore"].as_u64().unwrap() < 70);
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
    let me = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(me["data"]["stats"]["consecutiveFailures"], 1);
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn an_agent_failure_releases_the_hold_and_three_in_a_row_suspend() {
    let mut world = World::new().await;
    let buyer = world.owner(50_000).await;
    let seller = world.owner(0).await;
    let (worker, key) = world.reviewer(&seller, 1_000, 1).await;
    let mut ids = Vec::new();
    for round in 0..3 {
        let id = world.submit(&buyer, 2_000).await;
        world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
        if round == 0 {
            world.start(&id, &key).await;
        }
        let (status, body) = world
            .call(
                Method::POST,
                &format!("/tasks/{id}/fail"),
                Auth::Key(&key),
                Some(json!({"reason": "execution_error", "errorMessage": "clone failed"})),
            )
            .await;
        assert_eq!(
            (status, body["data"]["status"].clone()),
            (200, json!("failed")),
            "{body}"
        );
        assert_eq!(body["data"]["errorMessage"], "clone failed");
        ids.push(id);
    }
    let pool = world
        .call(
            Method::GET,
            "/vault/pool",
            Auth::Bearer(&seller.token),
            None,
        )
        .await;
    assert_eq!(pool.0, 200);
    let buyer_pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(buyer_pool["data"]["available"], 50_000);
    let (_, agent) = world
        .call(
            Method::GET,
            &format!("/agents/{worker}"),
            Auth::Bearer(&seller.token),
            None,
        )
        .await;
    assert!(agent["data"].is_object());
    let (status, body) = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("AGENT_SUSPENDED")),
        "three failures suspend"
    );
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{}/fail", ids[0]),
            Auth::Key(&key),
            Some(json!({"reason": "timeout"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    world.assert_books_balance(&refs).await;
}

#[tokio::test]
async fn a_buyer_cancels_before_execution_only() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 1_000, 2).await;
    let first = world.submit(&buyer, 3_000).await;
    world
        .wait_assigned(&first, Auth::Bearer(&buyer.token))
        .await;
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{first}/cancel"),
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("cancelled")),
        "{body}"
    );
    let me = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(
        me["data"]["stats"]["activeTasks"], 0,
        "the slot is free again"
    );

    let second = world.submit(&buyer, 3_000).await;
    world
        .wait_assigned(&second, Auth::Bearer(&buyer.token))
        .await;
    world.start(&second, &key).await;
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{second}/cancel"),
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("INVALID_TASK_STATE"))
    );
    let (status, _) = world
        .call(
            Method::POST,
            &format!("/tasks/{second}/cancel"),
            Auth::Key(&key),
            None,
        )
        .await;
    assert_eq!(status, 403, "the agent cannot cancel");
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{second}/fail"),
            Auth::Key(&key),
            Some(json!({"reason": "execution_error"})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("failed")),
        "{body}"
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
    world.assert_books_balance(&[&first, &second]).await;
}

#[tokio::test]
async fn of_two_racing_starts_one_wins_and_strangers_are_refused() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let other_seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 1_000, 2).await;
    let id = world.submit(&buyer, 3_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    // The other reviewer registers after the assignment, so it is not the one picked.
    let (_, other_key) = world.reviewer(&other_seller, 1_000, 2).await;
    let (_, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/sandbox"),
            Auth::Key(&key),
            None,
        )
        .await;
    let sandbox = body["data"]["sandboxId"].as_str().unwrap().to_owned();

    let path = format!("/tasks/{id}/executing");
    let start = || {
        world.call(
            Method::POST,
            &path,
            Auth::Key(&key),
            Some(json!({"sandboxId": sandbox})),
        )
    };
    let (a, b) = tokio::join!(start(), start());
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");

    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/complete"),
            Auth::Key(&other_key),
            Some(json!({"output": "x", "executionTimeMs": 1})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("TASK_FORBIDDEN"))
    );
    let (status, _) = world
        .call(
            Method::GET,
            &format!("/tasks/{id}"),
            Auth::Key(&other_key),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/fail"),
            Auth::Key(&key),
            Some(json!({"reason": "execution_error"})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("failed")),
        "the winner fails it: {body}"
    );
    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(pool["data"]["held"], 0, "the hold is released");
    world.assert_books_balance(&[&id]).await;
}

/// An event-function invocation that has returned: the function, the ids of the
/// messages in its batch, and those it handed back as failed (all of them when the
/// invocation failed), which the runner leaves on the queue.
struct Finished {
    function: String,
    messages: Vec<String>,
    failed: HashSet<String>,
}

type Log = Arc<Mutex<Vec<Finished>>>;

/// Runs the functions and records each invocation when it returns, so a test can wait
/// for a run to have committed what it would, not merely to have started. When `dies`
/// names a function, its first invocation runs and then reports a crash, as if the
/// function died after its commit and before the runner could delete the message.
struct Watched {
    inner: InProcess,
    dies: Option<&'static str>,
    deaths: AtomicUsize,
    finished: Log,
}

impl Invoker for Watched {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send + 'a>> {
        Box::pin(async move {
            let messages: Vec<String> = event["Records"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["messageId"].as_str().map(str::to_owned))
                .collect();
            let mut result = self.inner.invoke(function, event, timeout).await;
            if self.dies == Some(function) && self.deaths.fetch_add(1, Ordering::SeqCst) == 0 {
                result = Err(InvokeError::Unreachable {
                    function: function.into(),
                    reason: "died".into(),
                });
            }
            let failed = match &result {
                Ok(output) => aicity_local::poller::failed_ids(output, &messages),
                Err(_) => messages.iter().cloned().collect(),
            };
            self.finished.lock().unwrap().push(Finished {
                function: function.to_owned(),
                messages,
                failed,
            });
            result
        })
    }

    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        event: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Streamed, InvokeError>> + Send + 'a>> {
        self.inner.invoke_stream(function, event)
    }
}

/// A world whose functions are [`Watched`]; the log of their finished invocations.
async fn watched_world(dies: Option<&'static str>) -> (World, Log) {
    let finished = Log::default();
    let log = finished.clone();
    let started = common::start_with(template(), move |functions| {
        Arc::new(Watched {
            inner: functions,
            dies,
            deaths: AtomicUsize::new(0),
            finished: log,
        })
    })
    .await;
    (World::from(started), finished)
}

/// Whether an invocation of `function` with `message` has returned and reported it
/// done (so the runner deletes it: it will not run again).
fn settled(log: &Log, function: &str, message: &str) -> bool {
    log.lock().unwrap().iter().any(|f| {
        f.function == function
            && f.messages.iter().any(|m| m == message)
            && !f.failed.contains(message)
    })
}

/// Waits until `done` holds, or fails with `what` after 30 s.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redelivered_router_and_quality_messages_change_nothing_twice() {
    let (mut world, finished) = watched_world(None).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, &key).await;
    world.complete(&id, &key, good_review()).await;
    world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    let events_before = world.events(&id).await.len();

    let mut duplicates = Vec::new();
    for (queue, function) in [("RoutingQueue", "router"), ("QualityQueue", "quality")] {
        let url = world.running.resources.queue(queue).unwrap().url.clone();
        for _ in 0..2 {
            let sent = world
                .clients
                .sqs
                .send_message()
                .queue_url(&url)
                .message_body(json!({"taskId": id}).to_string())
                .send()
                .await
                .unwrap();
            duplicates.push((function, sent.message_id().unwrap().to_owned()));
        }
    }
    // Every duplicate has been run to its end and reported done: whatever it would
    // change is committed, and it will not come back.
    wait_until("the duplicates were never all handled", || {
        duplicates
            .iter()
            .all(|(function, message)| settled(&finished, function, message))
    })
    .await;
    assert_eq!(
        world.events(&id).await.len(),
        events_before,
        "no new events"
    );
    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(pool["data"]["balance"], 7_500, "charged once");
    let me = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(me["data"]["stats"]["completed"], 1);
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn a_consumer_that_dies_before_deleting_is_retried_and_completes_once() {
    let (mut world, finished) = watched_world(Some("quality")).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, &key).await;
    world.complete(&id, &key, good_review()).await;
    world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    // The run that completed the task "died": its message stays on the queue.
    wait_until("the first quality run never returned", || {
        finished
            .lock()
            .unwrap()
            .iter()
            .any(|f| f.function == "quality")
    })
    .await;
    let died: Vec<String> = {
        let log = finished.lock().unwrap();
        let first = log.iter().find(|f| f.function == "quality").unwrap();
        assert!(!first.messages.is_empty());
        assert_eq!(first.failed.len(), first.messages.len(), "it died");
        first.messages.clone()
    };
    // Redelivered and run again to its end, reported done this time.
    wait_until("the message was not redelivered and handled", || {
        died.iter().all(|m| settled(&finished, "quality", m))
    })
    .await;
    let completes = world
        .events(&id)
        .await
        .into_iter()
        .filter(|(k, _)| k == "complete")
        .count();
    assert_eq!(completes, 1);
    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(pool["data"]["balance"], 7_500, "charged once");
    let me = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await
        .1;
    assert_eq!(me["data"]["stats"]["completed"], 1);
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn twenty_tasks_on_three_agents_of_capacity_two_never_overbook() {
    let mut world = World::new().await;
    let buyer = world.owner(100_000).await;
    let mut keys = Vec::new();
    for _ in 0..3 {
        let seller = world.owner(0).await;
        keys.push(world.reviewer(&seller, 1_000, 2).await.1);
    }
    let submissions = (0..20).map(|_| world.submit(&buyer, 2_000));
    let ids: Vec<String> = futures::future::join_all(submissions).await;

    // Let routing settle: six assignments, the rest retried until they give up.
    let started = Instant::now();
    loop {
        let mut settled = 0;
        for id in &ids {
            let task = world.task(id, Auth::Bearer(&buyer.token)).await;
            if task["agentId"].is_string() || task["status"] == "failed" {
                settled += 1;
            }
        }
        if settled == ids.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "routing never settled ({settled}/20)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut assigned = 0;
    for key in &keys {
        let me = world
            .call(Method::GET, "/agents/me", Auth::Key(key), None)
            .await
            .1;
        let active = me["data"]["stats"]["activeTasks"].as_u64().unwrap();
        assert!(active <= 2, "an agent holds {active} tasks");
        let (_, waiting) = world
            .call(Method::GET, "/tasks/submitted", Auth::Key(key), None)
            .await;
        assert_eq!(waiting["data"].as_array().unwrap().len() as u64, active);
        assigned += active;
    }
    assert_eq!(assigned, 6);
    let failed = {
        let (_, list) = world
            .call(
                Method::GET,
                "/tasks?status=failed&pageSize=100",
                Auth::Bearer(&buyer.token),
                None,
            )
            .await;
        list["pagination"]["total"].as_u64().unwrap()
    };
    assert_eq!(failed, 14, "the rest gave up with their holds released");
    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(pool["data"]["held"], 6 * 2_000);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    world.assert_books_balance(&refs).await;
}

#[tokio::test]
async fn submissions_are_refused_up_front_when_nobody_could_take_them() {
    let mut world = World::new().await;
    let buyer = world.owner(1_000).await;
    let body = |budget: i64, agent: Option<&str>| json!({"taskType": "code_review", "maxBudget": budget, "input": {"description": "d"}, "agentId": agent});
    let (status, answer) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(body(500, None)),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (404, json!("NO_AGENTS_AVAILABLE"))
    );

    let (own, _) = world.reviewer(&buyer, 100, 1).await;
    let (status, answer) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(body(500, None)),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (404, json!("NO_AGENTS_AVAILABLE")),
        "own agents never count"
    );
    let (status, answer) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(body(500, Some(&own))),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (403, json!("SAME_OWNER_NOT_ALLOWED"))
    );

    let seller = world.owner(0).await;
    world.reviewer(&seller, 800, 1).await;
    let (status, answer) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(body(500, None)),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (404, json!("NO_AGENTS_AVAILABLE")),
        "over budget"
    );
    let (status, answer) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(body(5_000, None)),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (402, json!("INSUFFICIENT_CREDITS"))
    );
    assert_eq!(
        answer["error"]["details"],
        json!({"required": 5_000, "available": 1_000})
    );
    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(pool["data"]["held"], 0, "nothing held");
    let (_, list) = world
        .call(Method::GET, "/tasks", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(list["pagination"]["total"], 0, "nothing written");

    let (status, answer) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(json!({"taskType": "cooking", "maxBudget": 1.5, "input": {}})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "VALIDATION_ERROR");
    world.assert_books_balance(&[]).await;
}

#[tokio::test]
async fn a_direct_hire_goes_to_the_named_agent_and_a_replayed_submit_holds_once() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let (first_seller, second_seller) = (world.owner(0).await, world.owner(0).await);
    world.reviewer(&first_seller, 1_000, 2).await;
    let (named, _) = world.reviewer(&second_seller, 1_500, 2).await;
    let submit = || {
        world
            .http
            .post(format!("{}/api/v1/tasks", world.running.base_url))
            .bearer_auth(&buyer.token)
            .header("Idempotency-Key", "submit-1")
            .json(&json!({"taskType": "code_review", "maxBudget": 2_000, "agentId": named, "input": {"description": "Review"}}))
            .send()
    };
    let first = submit().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = submit().await.unwrap();
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["data"]["id"], again["data"]["id"]);
    let id = first["data"]["id"].as_str().unwrap().to_owned();

    let assigned = world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(
        assigned["agentId"],
        named.as_str(),
        "not the cheaper agent: the one named"
    );
    assert_eq!(assigned["agreedPrice"], 1_500);
    let pool = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await
        .1;
    assert_eq!(pool["data"]["held"], 2_000, "held once");
    let (_, list) = world
        .call(Method::GET, "/tasks", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(list["pagination"]["total"], 1);
    world.assert_books_balance(&[&id]).await;
}
