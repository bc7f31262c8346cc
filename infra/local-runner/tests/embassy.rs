//! The Embassy over HTTP through the runner: versioned policies, every budget limit,
//! racing submits under a budget, budgets given back, the approval lifecycle (approve,
//! deny, cancel, expiry by a late decision and by the sweeper, double decisions),
//! another owner refused everywhere, the audit trail and the notifications feed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::world::{Auth, Party, World, good_review, template};
use common::{Knobs, Parts};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

async fn world() -> (World, Parts) {
    let (running, parts, clients) =
        common::start_full(template(), Knobs::default(), |f| Arc::new(f)).await;
    (
        World::from((running, parts.functions.clone(), clients)),
        parts,
    )
}

/// An owner with `funds`, its buying agent (id, key), and another owner's reviewer
/// (id, key) charging `price`, online.
struct Scene {
    owner: Party,
    agent: String,
    key: String,
    seller_key: String,
}

async fn scene(world: &mut World, funds: i64, price: i64) -> Scene {
    let owner = world.owner(funds).await;
    let (agent, key) = world.idle_reviewer(&owner, 100, 5).await;
    let seller = world.owner(0).await;
    let (_, seller_key) = world.reviewer(&seller, price, 50).await;
    Scene {
        owner,
        agent,
        key,
        seller_key,
    }
}

async fn submit(world: &World, key: &str, budget: i64, task_type: &str) -> (u16, Value) {
    world
        .call(
            Method::POST,
            "/tasks",
            Auth::Key(key),
            Some(json!({
                "taskType": task_type, "maxBudget": budget,
                "input": {"description": "Review the Rust auth module", "files": [{"name": "auth.rs", "content": "fn check() {}"}]},
            })),
        )
        .await
}

async fn policy(world: &World, owner: &Party, agent: &str) -> Value {
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/embassy/agents/{agent}/policy"),
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// Reads the policy and writes `changes` over it with the version read.
async fn set_policy(world: &World, owner: &Party, agent: &str, changes: Value) -> Value {
    let version = policy(world, owner, agent).await["version"].clone();
    let mut body = changes;
    body["version"] = version;
    let (status, answer) = world
        .call(
            Method::PUT,
            &format!("/embassy/agents/{agent}/policy"),
            Auth::Bearer(&owner.token),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["data"].clone()
}

async fn committed_today(world: &World, s: &Scene) -> Value {
    policy(world, &s.owner, &s.agent).await["committed"]["today"].clone()
}

async fn pool(world: &World, owner: &Party) -> Value {
    let (status, body) = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&owner.token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn approvals(world: &World, owner: &Party, status: &str) -> Vec<Value> {
    let (code, body) = world
        .call(
            Method::GET,
            &format!("/embassy/approvals?status={status}"),
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

async fn decide(world: &World, owner: &Party, approval: &str, verb: &str) -> (u16, Value) {
    world
        .call(
            Method::POST,
            &format!("/embassy/approvals/{approval}/{verb}"),
            Auth::Bearer(&owner.token),
            (verb == "deny").then(|| json!({"reason": "not this week"})),
        )
        .await
}

async fn notifications(world: &World, owner: &Party) -> Vec<Value> {
    let (status, body) = world
        .call(
            Method::GET,
            "/embassy/notifications?limit=100",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["notifications"].as_array().unwrap().clone()
}

fn kinds(notifications: &[Value]) -> Vec<String> {
    notifications
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_owned())
        .collect()
}

/// The agent's audit actions, oldest first, paging through `limit` at a time.
async fn audit_actions(
    world: &World,
    owner: &Party,
    agent: Option<&str>,
    limit: usize,
) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/embassy/audit?limit={limit}");
        if let Some(agent) = agent {
            path.push_str(&format!("&agentId={agent}"));
        }
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = world
            .call(Method::GET, &path, Auth::Bearer(&owner.token), None)
            .await;
        assert_eq!(status, 200, "{body}");
        let page = body["data"]["entries"].as_array().unwrap().clone();
        assert!(page.len() <= limit);
        entries.extend(page);
        if body["data"]["hasMore"] != true {
            break;
        }
        cursor = Some(body["data"]["nextCursor"].as_str().unwrap().to_owned());
    }
    entries.reverse();
    entries
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn policies_are_versioned_and_owned() {
    let (mut world, _parts) = world().await;
    let s = scene(&mut world, 10_000, 500).await;
    let fresh = policy(&world, &s.owner, &s.agent).await;
    assert_eq!(fresh["version"], 0);
    assert_eq!(fresh["dailyBudget"], Value::Null);
    assert_eq!(fresh["committed"], json!({"today": 0, "last7Days": 0}));

    let path = format!("/embassy/agents/{}/policy", s.agent);
    let put = |version: i64, daily: i64| json!({"version": version, "dailyBudget": daily, "allowedTaskTypes": ["code_review"]});
    let (status, body) = world
        .call(
            Method::PUT,
            &path,
            Auth::Bearer(&s.owner.token),
            Some(put(0, 5_000)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 1);
    assert_eq!(body["data"]["dailyBudget"], 5_000);
    // A writer that read version 0 lost to the one above.
    let (status, body) = world
        .call(
            Method::PUT,
            &path,
            Auth::Bearer(&s.owner.token),
            Some(put(0, 9_000)),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "POLICY_VERSION_CONFLICT");
    assert_eq!(body["error"]["details"]["currentVersion"], 1);
    // Racing writers of the same version: exactly one wins.
    let racers = (0..5).map(|i| {
        world.call(
            Method::PUT,
            &path,
            Auth::Bearer(&s.owner.token),
            Some(put(1, 6_000 + i)),
        )
    });
    let results = futures::future::join_all(racers).await;
    let won = results.iter().filter(|(status, _)| *status == 200).count();
    let lost = results
        .iter()
        .filter(|(status, body)| {
            *status == 409 && body["error"]["code"] == "POLICY_VERSION_CONFLICT"
        })
        .count();
    assert_eq!((won, lost), (1, 4), "{results:?}");
    assert_eq!(policy(&world, &s.owner, &s.agent).await["version"], 2);
    // Invalid bodies name their fields.
    let (status, body) = world
        .call(
            Method::PUT,
            &path,
            Auth::Bearer(&s.owner.token),
            Some(json!({"version": 2, "maxPerTask": -5})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("VALIDATION_ERROR"))
    );

    // Another owner is refused on every route that names this owner's things; an
    // agent key is not an owner session.
    let stranger = world.owner(0).await;
    let other = Auth::Bearer(&stranger.token);
    for (method, route, body) in [
        (Method::GET, path.clone(), None),
        (Method::PUT, path.clone(), Some(put(2, 1))),
        (
            Method::GET,
            format!("/embassy/audit?agentId={}", s.agent),
            None,
        ),
    ] {
        let (status, answer) = world.call(method, &route, other, body).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (403, json!("NOT_AGENT_OWNER")),
            "{route}: {answer}"
        );
    }
    let (status, _) = world
        .call(
            Method::GET,
            "/embassy/notifications",
            Auth::Key(&s.key),
            None,
        )
        .await;
    assert_eq!(status, 401);
    // The stranger's own feeds show nothing of this owner's.
    let (status, body) = world.call(Method::GET, "/embassy/audit", other, None).await;
    assert_eq!(status, 200);
    assert!(
        body["data"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["agentId"] != json!(s.agent)),
        "{body}"
    );
    assert!(notifications(&world, &stranger).await.is_empty());
}

#[tokio::test]
async fn each_limit_refuses_naming_itself() {
    let (mut world, _parts) = world().await;
    let s = scene(&mut world, 100_000, 500).await;
    set_policy(
        &world,
        &s.owner,
        &s.agent,
        json!({"maxPerTask": 3_000, "dailyBudget": 5_000, "weeklyBudget": 20_000,
               "allowedTaskTypes": ["code_review"]}),
    )
    .await;
    let refused = |body: &Value| {
        (
            body["error"]["code"].clone(),
            body["error"]["details"].clone(),
        )
    };

    let (status, body) = submit(&world, &s.key, 3_001, "code_review").await;
    assert_eq!(status, 400);
    assert_eq!(
        refused(&body),
        (
            json!("BUDGET_LIMIT_EXCEEDED"),
            json!({"limit": 3000, "committed": 0, "window": "task"})
        )
    );
    let (status, body) = submit(&world, &s.key, 100, "testing").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("AGENT_NOT_AUTHORIZED"))
    );

    for _ in 0..2 {
        let (status, body) = submit(&world, &s.key, 2_000, "code_review").await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = submit(&world, &s.key, 1_500, "code_review").await;
    assert_eq!(status, 400);
    assert_eq!(
        refused(&body),
        (
            json!("BUDGET_LIMIT_EXCEEDED"),
            json!({"limit": 5000, "committed": 4000, "window": "day"})
        )
    );
    // Refused submits hold nothing.
    assert_eq!(pool(&world, &s.owner).await["held"], 4_000);

    // The week: with the day's budget lifted, 16,000 more fit under 20,000.
    set_policy(&world, &s.owner, &s.agent, json!({"weeklyBudget": 20_000})).await;
    for _ in 0..8 {
        let (status, body) = submit(&world, &s.key, 2_000, "code_review").await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = submit(&world, &s.key, 1, "code_review").await;
    assert_eq!(status, 400);
    assert_eq!(
        refused(&body),
        (
            json!("BUDGET_LIMIT_EXCEEDED"),
            json!({"limit": 20000, "committed": 20000, "window": "week"})
        )
    );
    assert_eq!(
        policy(&world, &s.owner, &s.agent).await["committed"],
        json!({"today": 20000, "last7Days": 20000})
    );
    // The owner heard once per window and day, however often it was refused.
    submit(&world, &s.key, 1, "code_review").await;
    let reached: Vec<_> = notifications(&world, &s.owner)
        .await
        .into_iter()
        .filter(|n| n["type"] == "budget.reached")
        .collect();
    let windows: Vec<_> = reached
        .iter()
        .map(|n| n["data"]["window"].clone())
        .collect();
    assert_eq!(windows, vec![json!("day"), json!("week")], "{reached:?}");
    // The owner's own submits are not the agent's budget.
    let (status, body) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&s.owner.token),
            Some(json!({"taskType": "code_review", "maxBudget": 5_000,
                        "input": {"description": "Review the Rust auth module"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn racing_submits_never_overspend_a_budget() {
    let (mut world, _parts) = world().await;
    let s = scene(&mut world, 100_000, 500).await;
    set_policy(&world, &s.owner, &s.agent, json!({"dailyBudget": 5_000})).await;
    let racers = (0..10).map(|_| submit(&world, &s.key, 1_000, "code_review"));
    let results = futures::future::join_all(racers).await;
    let accepted = results.iter().filter(|(status, _)| *status == 201).count();
    let refused = results
        .iter()
        .filter(|(status, body)| *status == 400 && body["error"]["code"] == "BUDGET_LIMIT_EXCEEDED")
        .count();
    assert_eq!((accepted, refused), (5, 5), "{results:?}");
    assert_eq!(
        policy(&world, &s.owner, &s.agent).await["committed"]["today"],
        5_000
    );
    assert_eq!(pool(&world, &s.owner).await["held"], 5_000);
}

#[tokio::test]
async fn ended_holds_give_their_budget_back() {
    let (mut world, _parts) = world().await;
    let s = scene(&mut world, 100_000, 600).await;
    set_policy(&world, &s.owner, &s.agent, json!({"dailyBudget": 3_000})).await;
    // Cancelled: all of it back.
    let (_, body) = submit(&world, &s.key, 1_000, "code_review").await;
    let cancelled = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(committed_today(&world, &s).await, 1_000);
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{cancelled}/cancel"),
            Auth::Key(&s.key),
            None,
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("cancelled")),
        "{body}"
    );
    assert_eq!(committed_today(&world, &s).await, 0);

    // Failed by the agent: all of it back.
    let (_, body) = submit(&world, &s.key, 1_000, "code_review").await;
    let failed = body["data"]["id"].as_str().unwrap().to_owned();
    world.wait_assigned(&failed, Auth::Key(&s.key)).await;
    world.start(&failed, &s.seller_key).await;
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{failed}/fail"),
            Auth::Key(&s.seller_key),
            Some(json!({"reason": "execution_error"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(committed_today(&world, &s).await, 0);

    // Completed for 600 of 1,000: the 400 not charged comes back.
    let (_, body) = submit(&world, &s.key, 1_000, "code_review").await;
    let done = body["data"]["id"].as_str().unwrap().to_owned();
    world.wait_assigned(&done, Auth::Key(&s.key)).await;
    world.start(&done, &s.seller_key).await;
    world.complete(&done, &s.seller_key, good_review()).await;
    let task = world
        .wait_status(&done, Auth::Key(&s.key), "completed")
        .await;
    assert_eq!(task["creditsCharged"], 600);
    assert_eq!(committed_today(&world, &s).await, 600);
    let kinds = kinds(&notifications(&world, &s.owner).await);
    assert!(kinds.contains(&"task.completed".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"task.failed".to_owned()), "{kinds:?}");
    world
        .assert_books_balance(&[&cancelled, &failed, &done])
        .await;
}

#[tokio::test]
async fn approvals_approve_deny_cancel_and_expire() {
    let (mut world, parts) = world().await;
    let s = scene(&mut world, 100_000, 500).await;
    set_policy(
        &world,
        &s.owner,
        &s.agent,
        json!({"approvalThreshold": 2_000}),
    )
    .await;

    // At the threshold: straight to routing. Over it: held, waiting, not routed.
    let (status, body) = submit(&world, &s.key, 2_000, "code_review").await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (201, json!("submitted"))
    );
    let (status, body) = submit(&world, &s.key, 3_000, "code_review").await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (201, json!("pending_approval")),
        "{body}"
    );
    let waiting = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(pool(&world, &s.owner).await["held"], 5_000);
    let pending = approvals(&world, &s.owner, "pending").await;
    assert_eq!(pending.len(), 1);
    let approval = pending[0].clone();
    assert_eq!(approval["taskId"], json!(waiting));
    assert_eq!(approval["agentId"], json!(s.agent));
    assert_eq!(approval["amount"], 3_000);
    let id = approval["id"].as_str().unwrap().to_owned();
    let requested: Vec<_> = notifications(&world, &s.owner)
        .await
        .into_iter()
        .filter(|n| n["type"] == "approval.requested")
        .collect();
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["data"]["approvalId"], json!(id));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        world.task(&waiting, Auth::Key(&s.key)).await["agentId"],
        Value::Null
    );

    // Another owner can neither see nor decide it; unknown ids are 404.
    let stranger = world.owner(0).await;
    for verb in ["approve", "deny"] {
        let (status, body) = decide(&world, &stranger, &id, verb).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (404, json!("APPROVAL_NOT_FOUND"))
        );
    }
    let (status, _) = world
        .call(
            Method::GET,
            &format!("/embassy/approvals/{id}"),
            Auth::Bearer(&stranger.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert!(approvals(&world, &stranger, "pending").await.is_empty());
    let unknown = aicity_domain::embassy::approval_id(&aicity_domain::ids::TaskId::new());
    let (status, body) = decide(&world, &s.owner, &unknown, "approve").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("APPROVAL_NOT_FOUND"))
    );

    // Approved: routed, assigned; a second decision either way is refused.
    let (status, body) = decide(&world, &s.owner, &id, "approve").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["approval"]["status"], "approved");
    assert_eq!(body["data"]["task"]["status"], "submitted");
    world.wait_assigned(&waiting, Auth::Key(&s.key)).await;
    for verb in ["approve", "deny"] {
        let (status, body) = decide(&world, &s.owner, &id, verb).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (409, json!("APPROVAL_ALREADY_DECIDED")),
            "{body}"
        );
    }

    // Racing approve and deny on one approval: exactly one decides.
    let (_, body) = submit(&world, &s.key, 3_000, "code_review").await;
    let raced = body["data"]["id"].as_str().unwrap().to_owned();
    let raced_id = aicity_domain::embassy::approval_id(&raced.parse().unwrap());
    let (a, d) = tokio::join!(
        decide(&world, &s.owner, &raced_id, "approve"),
        decide(&world, &s.owner, &raced_id, "deny")
    );
    let mut codes = [a.0, d.0];
    codes.sort();
    assert_eq!(codes, [200, 409], "{a:?} {d:?}");

    // Denied: cancelled, hold voided, the budget back.
    let (_, body) = submit(&world, &s.key, 4_000, "code_review").await;
    let denied = body["data"]["id"].as_str().unwrap().to_owned();
    let denied_id = aicity_domain::embassy::approval_id(&denied.parse().unwrap());
    let (status, body) = decide(&world, &s.owner, &denied_id, "deny").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["approval"]["status"], "denied");
    assert_eq!(body["data"]["approval"]["reason"], "not this week");
    assert_eq!(body["data"]["task"]["status"], "cancelled");

    // Cancelled by the buyer while pending: the approval ends with it.
    let (_, body) = submit(&world, &s.key, 3_500, "code_review").await;
    let withdrawn = body["data"]["id"].as_str().unwrap().to_owned();
    let withdrawn_id = aicity_domain::embassy::approval_id(&withdrawn.parse().unwrap());
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{withdrawn}/cancel"),
            Auth::Key(&s.key),
            None,
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("cancelled")),
        "{body}"
    );
    let (status, body) = decide(&world, &s.owner, &withdrawn_id, "approve").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("APPROVAL_ALREADY_DECIDED"))
    );

    // Expired, seen by a late decision (the embassy's clock a day on): 410, and the
    // task cancelled with its hold voided right then.
    let (_, body) = submit(&world, &s.key, 2_500, "code_review").await;
    let late = body["data"]["id"].as_str().unwrap().to_owned();
    let late_id = aicity_domain::embassy::approval_id(&late.parse().unwrap());
    let tomorrow = OffsetDateTime::now_utc() + Duration::from_secs(24 * 3600 + 60);
    parts.knobs.embassy_clock.pin(tomorrow);
    let (status, body) = decide(&world, &s.owner, &late_id, "approve").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (410, json!("APPROVAL_EXPIRED")),
        "{body}"
    );
    assert_eq!(
        world.task(&late, Auth::Key(&s.key)).await["status"],
        "cancelled"
    );
    let (status, body) = decide(&world, &s.owner, &late_id, "deny").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (410, json!("APPROVAL_EXPIRED"))
    );
    parts.knobs.embassy_clock.unpin();

    // Expired by the sweeper (its clock a day on), before anybody decided.
    let (_, body) = submit(&world, &s.key, 2_600, "code_review").await;
    let swept = body["data"]["id"].as_str().unwrap().to_owned();
    let early = sweeper::sweep(&parts.sweeper).await.unwrap();
    assert_eq!(early.approvals_expired, 0);
    parts.knobs.settlement_clock.pin(tomorrow);
    let report = sweeper::sweep(&parts.sweeper).await.unwrap();
    parts.knobs.settlement_clock.unpin();
    assert_eq!(report.approvals_expired, 1, "{report:?}");
    assert_eq!(
        world.task(&swept, Auth::Key(&s.key)).await["status"],
        "cancelled"
    );
    let swept_id = aicity_domain::embassy::approval_id(&swept.parse().unwrap());
    let (status, body) = decide(&world, &s.owner, &swept_id, "approve").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (410, json!("APPROVAL_EXPIRED"))
    );
    assert_eq!(approvals(&world, &s.owner, "expired").await.len(), 2);

    // Every hold that ended gave its amount back: only the one under the threshold,
    // the approved one and (if approval won the race) the raced one still hold.
    let raced_task = world.task(&raced, Auth::Key(&s.key)).await;
    let raced_held = if raced_task["status"] == "cancelled" {
        0
    } else {
        3_000
    };
    assert_eq!(
        policy(&world, &s.owner, &s.agent).await["committed"]["today"],
        5_000 + raced_held
    );
    assert_eq!(pool(&world, &s.owner).await["held"], 5_000 + raced_held);
    world
        .assert_books_balance(&[&waiting, &raced, &denied, &withdrawn, &late, &swept])
        .await;
}

#[tokio::test]
async fn the_audit_trail_of_a_lifecycle_is_complete_and_in_order() {
    let (mut world, _parts) = world().await;
    let s = scene(&mut world, 100_000, 500).await;
    set_policy(
        &world,
        &s.owner,
        &s.agent,
        json!({"approvalThreshold": 1_000}),
    )
    .await;
    let (status, body) = submit(&world, &s.key, 1_500, "code_review").await;
    assert_eq!(status, 201, "{body}");
    let task = body["data"]["id"].as_str().unwrap().to_owned();
    let approval = aicity_domain::embassy::approval_id(&task.parse().unwrap());
    let (status, body) = decide(&world, &s.owner, &approval, "approve").await;
    assert_eq!(status, 200, "{body}");
    world.wait_assigned(&task, Auth::Key(&s.key)).await;
    world.start(&task, &s.seller_key).await;
    world.complete(&task, &s.seller_key, good_review()).await;
    world
        .wait_status(&task, Auth::Key(&s.key), "completed")
        .await;
    let response = world
        .http
        .post(format!(
            "{}/api/v1/tasks/{task}/feedback",
            world.running.base_url
        ))
        .header("x-api-key", &s.key)
        .json(&json!({"feedback": "up"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let feedback_request = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    // The buyer's side, for its agent, paged two at a time, oldest first.
    let entries = audit_actions(&world, &s.owner, Some(&s.agent), 2).await;
    let got = actions(&entries);
    let expected = [
        "agent.registered",
        "policy.updated",
        "task.submitted",
        "task.approved",
        "task.feedback",
    ];
    assert_eq!(got, expected, "{entries:#?}");
    let at: Vec<_> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    let by_action = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap();
    assert_eq!(by_action("policy.updated")["actor"]["type"], "owner");
    assert_eq!(
        by_action("policy.updated")["details"]["after"]["approvalThreshold"],
        1_000
    );
    assert_eq!(
        by_action("task.submitted")["actor"],
        json!({"type": "agent", "id": s.agent})
    );
    assert_eq!(
        by_action("task.submitted")["target"],
        json!({"type": "task", "id": task})
    );
    assert_eq!(
        by_action("task.submitted")["details"]["status"],
        "pending_approval"
    );
    assert_eq!(
        by_action("task.approved")["target"],
        json!({"type": "approval", "id": approval})
    );
    assert_eq!(
        by_action("task.feedback")["requestId"],
        json!(feedback_request)
    );

    // The seller's side sees its agent's steps on the same task.
    let seller_owner = {
        // The seller's owner is the second owner of the world; find it via its key.
        let (status, me) = world
            .call(Method::GET, "/agents/me", Auth::Key(&s.seller_key), None)
            .await;
        assert_eq!(status, 200);
        me["data"]["ownerId"].as_str().unwrap().to_owned()
    };
    let seller_entries = aicity_store::embassy::audit_page(
        &world.clients.dynamodb,
        world.table(),
        &seller_owner.parse().unwrap(),
        None,
        None,
        None,
        100,
    )
    .await
    .unwrap();
    let mut seller_actions: Vec<_> = seller_entries
        .items
        .iter()
        .filter(|e| e.target.id == task)
        .map(|e| e.action.as_str())
        .collect();
    seller_actions.reverse();
    assert_eq!(seller_actions, ["task.started", "task.delivered"]);

    // `since` bounds the trail from below.
    let (status, body) = world
        .call(
            Method::GET,
            &format!(
                "/embassy/audit?since={}",
                aicity_domain::timestamps::format(
                    OffsetDateTime::now_utc() + Duration::from_secs(5)
                )
            ),
            Auth::Bearer(&s.owner.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["entries"], json!([]));
    let (status, _) = world
        .call(
            Method::GET,
            "/embassy/audit?limit=0",
            Auth::Bearer(&s.owner.token),
            None,
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn notifications_page_forward_from_since() {
    let (mut world, _parts) = world().await;
    let s = scene(&mut world, 100_000, 500).await;
    set_policy(
        &world,
        &s.owner,
        &s.agent,
        json!({"approvalThreshold": 500}),
    )
    .await;
    for budget in [600, 700, 800] {
        let (status, body) = submit(&world, &s.key, budget, "code_review").await;
        assert_eq!(status, 201, "{body}");
    }
    let all = notifications(&world, &s.owner).await;
    assert_eq!(all.len(), 3);
    let amounts: Vec<_> = all.iter().map(|n| n["data"]["amount"].clone()).collect();
    assert_eq!(
        amounts,
        [json!(600), json!(700), json!(800)],
        "oldest first"
    );
    let first = all[0]["id"].as_str().unwrap();
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/embassy/notifications?since={first}&limit=1"),
            Auth::Bearer(&s.owner.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["notifications"][0]["id"], all[1]["id"]);
    assert_eq!(body["data"]["hasMore"], true);
    let last = all[2]["id"].as_str().unwrap();
    let (_, body) = world
        .call(
            Method::GET,
            &format!("/embassy/notifications?since={last}"),
            Auth::Bearer(&s.owner.token),
            None,
        )
        .await;
    assert_eq!(body["data"]["notifications"], json!([]));
    assert_eq!(body["data"]["hasMore"], false);
    let (_, body) = world
        .call(
            Method::GET,
            "/embassy/notifications?limit=2",
            Auth::Bearer(&s.owner.token),
            None,
        )
        .await;
    assert_eq!(
        body["data"]["notifications"][1]["id"], all[2]["id"],
        "the latest two"
    );
    assert_eq!(body["data"]["hasMore"], true);
}
