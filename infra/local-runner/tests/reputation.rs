//! Reputation, trust tiers and liveness-aware routing on the real runner path: agents
//! rise through the tiers by their work, outcomes count once, idle agents are not
//! routed to, a lapsed task is not offered again.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aicity_domain::ids::AgentId;
use aicity_tasks::TaskMessage;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
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

async fn reputation(world: &World, agent: &str, auth: Auth<'_>) -> Value {
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/agents/{agent}/reputation"),
            auth,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn submit(world: &World, buyer: &Party, budget: i64, agent: Option<&str>) -> (u16, Value) {
    let mut body = json!({
        "taskType": "code_review", "maxBudget": budget,
        "input": {"description": "Review the Rust auth module"},
    });
    if let Some(agent) = agent {
        body["agentId"] = json!(agent);
    }
    world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(body),
        )
        .await
}

/// Submits, lets the agent do it well, waits for completion: the task id.
async fn one_good_task(world: &World, buyer: &Party, key: &str, budget: i64) -> String {
    let (status, body) = submit(world, buyer, budget, None).await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, key).await;
    let (status, body) = world.complete(&id, key, good_review()).await;
    assert_eq!(status, 200, "{body}");
    world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;
    id
}

#[tokio::test]
async fn three_completed_tasks_verify_an_agent_and_make_it_hireable_for_200() {
    let (mut world, _parts) = world().await;
    let buyer = world.owner(100_000).await;
    let seller = world.owner(0).await;
    let (agent, key) = world.reviewer(&seller, 2_000, 4).await;

    let before = reputation(&world, &agent, Auth::Bearer(&buyer.token)).await;
    assert_eq!(
        (
            before["trustTier"].clone(),
            before["verificationStatus"].clone(),
            before["overallScore"].clone()
        ),
        (json!("unverified"), json!("unverified"), json!(0))
    );
    let (status, body) = submit(&world, &buyer, 20_000, None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("NO_AGENTS_AVAILABLE")),
        "{body}"
    );
    let (status, body) = submit(&world, &buyer, 20_000, Some(&agent)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("AGENT_NOT_ELIGIBLE")),
        "{body}"
    );

    let mut scores = vec![];
    for _ in 0..3 {
        one_good_task(&world, &buyer, &key, 5_000).await;
        scores.push(
            reputation(&world, &agent, Auth::Key(&key)).await["overallScore"]
                .as_u64()
                .unwrap(),
        );
    }
    assert!(
        scores.windows(2).all(|w| w[0] <= w[1]),
        "good work never lowers: {scores:?}"
    );
    let after = reputation(&world, &agent, Auth::Bearer(&buyer.token)).await;
    assert_eq!(
        (
            after["trustTier"].clone(),
            after["verificationStatus"].clone()
        ),
        (json!("provisional"), json!("verified")),
        "{after}"
    );
    assert_eq!(after["counts"]["completed"], 3);
    assert_eq!(after["confidence"], 6);
    assert_eq!(after["lastOutcomes"][0]["outcome"], "completed");
    assert!(after["dimensions"]["outcome"].as_u64().unwrap() > 0);

    // Now $200 is within its tier: hired.
    one_good_task(&world, &buyer, &key, 20_000).await;
    let (_, found) = world
        .call(
            Method::GET,
            "/agents/search?verificationStatus=verified&minScore=1",
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(found["data"][0]["id"], agent.as_str(), "{found}");
    let (_, none) = world
        .call(
            Method::GET,
            "/agents/search?verificationStatus=unverified",
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(none["pagination"]["total"], 0, "{none}");
}

#[tokio::test]
async fn a_refunded_thumbs_down_lowers_the_score_and_a_redelivered_outcome_counts_once() {
    let (mut world, parts) = world().await;
    let buyer = world.owner(100_000).await;
    let seller = world.owner(0).await;
    let (agent, key) = world.reviewer(&seller, 2_000, 4).await;
    let id = one_good_task(&world, &buyer, &key, 5_000).await;
    let done = reputation(&world, &agent, Auth::Key(&key)).await;

    // The quality message again: the task is decided, nothing counts twice.
    let mut record = SqsMessage::default();
    record.message_id = Some("again".into());
    record.body = Some(
        serde_json::to_string(&TaskMessage {
            task_id: id.parse().unwrap(),
        })
        .unwrap(),
    );
    let mut event = SqsEvent::default();
    event.records = vec![record];
    let response = quality::handle(&parts.quality, event).await;
    assert!(response.batch_item_failures.is_empty());
    let again = reputation(&world, &agent, Auth::Key(&key)).await;
    assert_eq!(again, done, "a redelivered outcome changes nothing");

    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{id}/feedback"),
            Auth::Bearer(&buyer.token),
            Some(json!({"feedback": "down"})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["refunded"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let refunded = reputation(&world, &agent, Auth::Key(&key)).await;
    assert!(
        refunded["overallScore"].as_u64() < done["overallScore"].as_u64(),
        "{done} → {refunded}"
    );
    assert_eq!(refunded["counts"]["refunded"], 1);
    assert_eq!(refunded["lastOutcomes"][0]["outcome"], "refunded");
    assert_eq!(
        refunded["counts"]["earned"], 0,
        "the refunded charge is not earned"
    );
}

#[tokio::test]
async fn three_failures_suspend_until_the_cool_down_has_passed() {
    let (mut world, _parts) = world().await;
    let buyer = world.owner(100_000).await;
    let seller = world.owner(0).await;
    let (agent, key) = world.reviewer(&seller, 2_000, 4).await;
    for _ in 0..3 {
        let (status, body) = submit(&world, &buyer, 5_000, None).await;
        assert_eq!(status, 201, "{body}");
        let id = body["data"]["id"].as_str().unwrap().to_owned();
        world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
        world.start(&id, &key).await;
        let (status, body) = world
            .call(
                Method::POST,
                &format!("/tasks/{id}/fail"),
                Auth::Key(&key),
                Some(json!({"reason": "execution_error"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = world
        .call(Method::GET, "/agents/me", Auth::Key(&key), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("AGENT_SUSPENDED")),
        "{body}"
    );
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/agents/{agent}/reactivate"),
            Auth::Bearer(&seller.token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("AGENT_SUSPENDED")),
        "{body}"
    );
    assert!(body["error"]["details"]["reactivatableAt"].is_string());

    // An hour later (the suspension moved back in time), the owner may reactivate.
    let id: AgentId = agent.parse().unwrap();
    let (db, table) = (&world.clients.dynamodb, world.table());
    let record = aicity_store::agents::get(db, table, &id).await.unwrap();
    let mut earlier = record.agent.clone();
    earlier.suspended_at = Some(aicity_domain::timestamps::format(
        time::OffsetDateTime::now_utc() - Duration::from_secs(3_601),
    ));
    aicity_store::agents::save(db, table, &record, earlier, None, u32::MAX)
        .await
        .unwrap();
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/agents/{agent}/reactivate"),
            Auth::Bearer(&seller.token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("active")),
        "{body}"
    );
    let rep = reputation(&world, &agent, Auth::Bearer(&buyer.token)).await;
    assert_eq!(rep["counts"]["agentFailed"], 3);
}

#[tokio::test]
async fn smart_routing_never_chooses_an_idle_agent_while_a_live_one_can_work() {
    let (mut world, _parts) = world().await;
    let buyer = world.owner(100_000).await;
    let seller = world.owner(0).await;
    let (idle, _) = world.idle_reviewer(&seller, 1_000, 10).await;
    let (live, _) = world.reviewer(&seller, 3_000, 10).await;
    // Two tasks: an unverified agent runs at most two at once, whatever it asks for.
    for _ in 0..2 {
        let (status, body) = submit(&world, &buyer, 5_000, None).await;
        assert_eq!(status, 201, "{body}");
        let id = body["data"]["id"].as_str().unwrap().to_owned();
        let task = world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
        assert_eq!(
            task["agentId"],
            live.as_str(),
            "the cheaper idle agent is never chosen"
        );
    }
    let (_, profile) = world
        .call(
            Method::GET,
            &format!("/agents/{idle}"),
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(profile["data"]["availability"], "offline", "{profile}");
    let (_, profile) = world
        .call(
            Method::GET,
            &format!("/agents/{live}"),
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(profile["data"]["availability"], "available");
    assert!(profile["data"]["lastSeenAt"].is_string());
    let (_, offline) = world
        .call(
            Method::GET,
            "/agents/search?availability=offline",
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    let ids: Vec<&str> = offline["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, vec![idle.as_str()]);
}

#[tokio::test]
async fn a_lapsed_task_is_not_offered_again_and_with_no_one_else_fails_with_its_hold_released() {
    let (mut world, parts) = world().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (agent, key) = world.reviewer(&seller, 2_000, 4).await;
    let (status, body) = submit(&world, &buyer, 5_000, None).await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let task = world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(task["agentId"], agent.as_str());

    // The agent never starts; 16 minutes later the sweeper takes the task back.
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + Duration::from_secs(16 * 60));
    let report = sweeper::sweep(&parts.sweeper).await.unwrap();
    assert_eq!(report.rerouted, 1, "{report:?}");
    world.heartbeat(&key).await; // still live: only the lapse keeps it out
    let failed = world
        .wait_status(&id, Auth::Bearer(&buyer.token), "failed")
        .await;
    assert_eq!(failed["failureReason"], "no_agents_available", "{failed}");
    assert_eq!(failed["declinedBy"][0], agent.as_str());
    let (_, pool) = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(
        (
            pool["data"]["held"].clone(),
            pool["data"]["balance"].clone()
        ),
        (json!(0), json!(10_000))
    );
    let rep = reputation(&world, &agent, Auth::Key(&key)).await;
    assert_eq!(rep["counts"]["abandoned"], 1);
    assert!(
        rep["dimensions"]["reliability"].as_u64().unwrap() < 500,
        "{rep}"
    );
    world.assert_books_balance(&[&id]).await;
}

#[tokio::test]
async fn an_agent_lists_both_what_it_submitted_and_what_it_was_assigned() {
    let (mut world, _parts) = world().await;
    let buyer_owner = world.owner(100_000).await;
    let (_, buyer_key) = world.reviewer(&buyer_owner, 1_000, 4).await;
    let seller = world.owner(0).await;
    let (_, seller_key) = world.reviewer(&seller, 2_000, 4).await;
    // The buyer's agent hires the seller's (its own owner's agent is never chosen).
    let (status, body) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Key(&buyer_key),
            Some(json!({"taskType": "code_review", "maxBudget": 5_000, "input": {"description": "Review it"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    world.wait_assigned(&id, Auth::Key(&buyer_key)).await;
    for key in [&buyer_key, &seller_key] {
        let (status, listed) = world
            .call(Method::GET, "/tasks", Auth::Key(key), None)
            .await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["data"][0]["id"], id.as_str(), "{listed}");
    }
    let (_, assigned) = world
        .call(
            Method::GET,
            "/tasks?role=assigned",
            Auth::Key(&buyer_key),
            None,
        )
        .await;
    assert_eq!(assigned["pagination"]["total"], 0, "role narrows");
    let (_, completed) = world
        .call(
            Method::GET,
            "/tasks?status=completed",
            Auth::Key(&buyer_key),
            None,
        )
        .await;
    assert_eq!(completed["pagination"]["total"], 0);
}
