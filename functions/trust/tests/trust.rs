//! The Trust API through its HTTP handler (auth and agents for setup), over the emulator.

use std::sync::Arc;

use aicity_domain::identity::Outcome;
use aicity_domain::identity::agent::MAX_ACTIVE_AGENTS_PER_OWNER;
use aicity_domain::identity::secrets::hash_secret;
use aicity_domain::ids::AgentId;
use aicity_domain::money::Cents;
use aicity_domain::timestamps;
use aicity_domain::trust::MAX_ACTIVE_KEYS;
use aicity_http::{Context, Limits};
use aicity_store::Key;
use aicity_store::agents as agent_store;
use aicity_testkit::ManualClock;
use aicity_testkit::http::{Answer, Call, send};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use time::OffsetDateTime;
use trust::Trust;

struct World {
    trust: Trust,
    clock: Arc<ManualClock>,
}

struct Owner {
    id: String,
    token: String,
}

impl World {
    async fn new(daily_limit: u32) -> Self {
        let clock = Arc::new(ManualClock::default());
        Self {
            trust: Trust {
                ctx: aicity_testkit::context(Limits::default()).await,
                clock: clock.clone(),
                daily_limit,
            },
            clock,
        }
    }

    fn ctx(&self) -> &Context {
        &self.trust.ctx
    }

    async fn call(&self, call: Call) -> Answer {
        send(&|request| trust::handle(&self.trust, request), &call).await
    }

    async fn agents(&self, call: Call) -> Answer {
        send(&|request| agents::handle(self.ctx(), request), &call).await
    }

    async fn owner(&self) -> Owner {
        let email = format!(
            "{}@example.com",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let auth =
            |call| async move { send(&|request| auth::handle(self.ctx(), request), &call).await };
        auth(
            Call::at("POST", "/api/v1/auth/sign-up")
                .json(json!({"name": "O", "email": email, "password": "long-password"})),
        )
        .await;
        let answer = auth(
            Call::at("POST", "/api/v1/auth/sign-in")
                .json(json!({"email": email, "password": "long-password"})),
        )
        .await;
        Owner {
            id: answer.data()["user"]["id"].as_str().unwrap().to_owned(),
            token: answer.data()["token"].as_str().unwrap().to_owned(),
        }
    }

    /// Registers an agent; returns its id and API key.
    async fn agent(&self, owner: &Owner) -> (String, String) {
        let answer = self
            .agents(
                Call::at("POST", "/api/v1/agents")
                    .bearer(&owner.token)
                    .json(json!({
                        "displayName": "Reviewer", "framework": "custom", "description": "d"
                    })),
            )
            .await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        (
            answer.data()["agent"]["id"].as_str().unwrap().to_owned(),
            answer.data()["apiKey"].as_str().unwrap().to_owned(),
        )
    }

    async fn create_key(&self, owner: &Owner, name: &str) -> Answer {
        self.call(
            Call::at("POST", "/api/v1/trust/keys")
                .bearer(&owner.token)
                .json(json!({ "name": name })),
        )
        .await
    }

    /// A new key's id and secret.
    async fn key(&self, owner: &Owner) -> (String, String) {
        let answer = self.create_key(owner, "partner").await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        (
            answer.data()["id"].as_str().unwrap().to_owned(),
            answer.data()["key"].as_str().unwrap().to_owned(),
        )
    }

    async fn list(&self, owner: &Owner) -> Answer {
        self.call(Call::at("GET", "/api/v1/trust/keys").bearer(&owner.token))
            .await
    }

    async fn revoke(&self, token: &str, id: &str) -> Answer {
        self.call(revoke(id).bearer(token)).await
    }

    async fn report(&self, agent: &str, key: Option<&str>) -> Answer {
        let mut call = report(agent);
        if let Some(key) = key {
            call = call.header("X-Trust-API-Key", key);
        }
        self.call(call).await
    }

    /// Every item in the table, as text.
    async fn dump(&self) -> Vec<String> {
        let scan = self
            .ctx()
            .db()
            .scan()
            .table_name(&self.ctx().table)
            .send()
            .await
            .unwrap();
        scan.items()
            .iter()
            .map(|item| format!("{item:?}"))
            .collect()
    }
}

fn at(text: &str) -> OffsetDateTime {
    timestamps::parse(text).unwrap()
}

fn revoke(id: &str) -> Call {
    Call::new(
        "POST",
        "/api/v1/trust/keys/{id}/revoke",
        &format!("/api/v1/trust/keys/{id}/revoke"),
    )
}

fn report(agent: &str) -> Call {
    Call::new(
        "GET",
        "/api/v1/trust/agents/{agentId}",
        &format!("/api/v1/trust/agents/{agent}"),
    )
}

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_listed_without_its_secret() {
    let world = World::new(1_000).await;
    let owner = world.owner().await;
    let answer = world.create_key(&owner, "  partner portal  ").await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let data = answer.data().as_object().unwrap();
    let mut fields: Vec<&str> = data.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["createdAt", "id", "key", "name"]);
    let id = data["id"].as_str().unwrap();
    let secret = data["key"].as_str().unwrap();
    assert!(id.starts_with("tkey_"), "{id}");
    assert!(
        secret.starts_with("tst_") && secret.len() == 4 + 43,
        "{secret}"
    );
    assert_eq!(data["name"], "partner portal");

    // Stored: the SHA-256 and never the secret, in any item.
    let items = world.dump().await;
    assert!(items.iter().all(|item| !item.contains(secret)));
    assert!(items.iter().any(|item| item.contains(&hash_secret(secret))));

    // Listed: without the secret or its hash, newest first, paginated.
    world.key(&owner).await;
    world.key(&owner).await;
    let list = world.list(&owner).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    assert_eq!(
        list.body["pagination"],
        json!({"page": 1, "pageSize": 20, "total": 3, "totalPages": 1, "nextCursor": null})
    );
    let listed = list.data().as_array().unwrap();
    assert_eq!(listed[2]["id"], id, "oldest last");
    for key in listed {
        let mut fields: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, ["createdAt", "id", "name"], "{key}");
    }
    let page = world
        .call(
            Call::at("GET", "/api/v1/trust/keys")
                .bearer(&owner.token)
                .query("page", "2")
                .query("pageSize", "2"),
        )
        .await;
    assert_eq!(page.data().as_array().unwrap().len(), 1);
    assert_eq!(page.data()[0]["id"], id);
    assert_eq!(page.body["pagination"]["totalPages"], 2);

    // Another owner sees none of them.
    let other = world.owner().await;
    assert_eq!(world.list(&other).await.body["pagination"]["total"], 0);

    // Names are checked.
    let bad = world.create_key(&owner, " ").await;
    assert_eq!((bad.status, bad.fields()), (400, vec!["name".to_owned()]));
}

#[tokio::test]
async fn key_management_needs_an_owner_session() {
    let world = World::new(1_000).await;
    let owner = world.owner().await;
    let (_, api_key) = world.agent(&owner).await;
    let (key_id, secret) = world.key(&owner).await;
    let calls = [
        Call::at("POST", "/api/v1/trust/keys").json(json!({"name": "x"})),
        Call::at("GET", "/api/v1/trust/keys"),
        revoke(&key_id),
    ];
    for call in calls {
        for (who, call) in [
            ("anonymous", call.clone()),
            ("an agent key", call.clone().api_key(&api_key)),
            (
                "a trust key",
                call.clone().header("X-Trust-API-Key", &secret),
            ),
            ("a trust key as a session", call.clone().bearer(&secret)),
        ] {
            let answer = world.call(call).await;
            assert_eq!(
                (answer.status, answer.code()),
                (401, "UNAUTHORIZED"),
                "{who}: {:?}",
                answer.body
            );
        }
    }
    // Nothing of that revoked or created anything.
    let list = world.list(&owner).await;
    assert_eq!(list.body["pagination"]["total"], 1);
    assert!(list.data()[0].get("revokedAt").is_none());
}

#[tokio::test]
async fn revoking_works_once_for_the_owner_only_and_kills_the_key_at_once() {
    let world = World::new(1_000).await;
    let owner = world.owner().await;
    let other = world.owner().await;
    let (agent, _) = world.agent(&owner).await;
    let (id, secret) = world.key(&owner).await;
    assert_eq!(world.report(&agent, Some(&secret)).await.status, 200);

    // Another owner's key is not found, like an unknown or malformed id.
    for (token, key_id) in [
        (other.token.as_str(), id.as_str()),
        (owner.token.as_str(), "tkey_01JBZZZZZZZZZZZZZZZZZZZZZZ"),
        (owner.token.as_str(), "not-a-key-id"),
    ] {
        let answer = world.revoke(token, key_id).await;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "TRUST_API_KEY_NOT_FOUND"),
            "{key_id}"
        );
    }
    assert_eq!(world.report(&agent, Some(&secret)).await.status, 200);

    let revoked = world.revoke(&owner.token, &id).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(revoked.data()["id"], id.as_str());
    assert!(revoked.data()["revokedAt"].is_string());
    assert!(revoked.data().get("key").is_none() && revoked.data().get("keyHash").is_none());

    let again = world.revoke(&owner.token, &id).await;
    assert_eq!(
        (again.status, again.code()),
        (400, "TRUST_API_KEY_ALREADY_REVOKED")
    );
    let refused = world.report(&agent, Some(&secret)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (401, "INVALID_TRUST_API_KEY")
    );
    let list = world.list(&owner).await;
    assert_eq!(list.data()[0]["revokedAt"], revoked.data()["revokedAt"]);
    // The secret's pointer is gone with the revocation.
    let hash = hash_secret(&secret);
    assert!(
        world
            .dump()
            .await
            .iter()
            .all(|item| !item.contains(&format!("TRUSTKEYHASH#{hash}")))
    );

    // Racing revocations: exactly one wins.
    let (id, _) = world.key(&owner).await;
    let answers = futures::future::join_all((0..6).map(|_| world.revoke(&owner.token, &id))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400], "{answers:?}");
}

#[tokio::test]
async fn the_report_needs_a_live_trust_key_and_nothing_else_will_do() {
    let world = World::new(1_000).await;
    let owner = world.owner().await;
    let (agent, api_key) = world.agent(&owner).await;
    let (_, secret) = world.key(&owner).await;

    let missing = world.report(&agent, None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (401, "MISSING_TRUST_API_KEY")
    );
    let with_session = world.call(report(&agent).bearer(&owner.token)).await;
    assert_eq!(with_session.code(), "MISSING_TRUST_API_KEY");
    let with_agent_key = world.call(report(&agent).api_key(&api_key)).await;
    assert_eq!(with_agent_key.code(), "MISSING_TRUST_API_KEY");

    for (what, key) in [
        ("an owner token", owner.token.clone()),
        ("an agent key", api_key.clone()),
        ("an unknown key", format!("tst_{}", "A".repeat(43))),
        ("the key's hash", hash_secret(&secret)),
        ("a truncated key", secret[..secret.len() - 1].to_owned()),
    ] {
        let answer = world.report(&agent, Some(&key)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (401, "INVALID_TRUST_API_KEY"),
            "{what}"
        );
    }

    for unknown in [AgentId::new().to_string(), "not-an-agent".to_owned()] {
        let answer = world.report(&unknown, Some(&secret)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "AGENT_NOT_FOUND"),
            "{unknown}"
        );
    }
    let answer = world.report(&agent, Some(&secret)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);

    // A suspended owner's keys stop with it.
    world
        .ctx()
        .db()
        .update_item()
        .table_name(&world.ctx().table)
        .set_key(Some(Key::owner(&owner.id.parse().unwrap()).to_map()))
        .update_expression("SET #status = :suspended")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":suspended", AttributeValue::S("suspended".into()))
        .send()
        .await
        .unwrap();
    let answer = world.report(&agent, Some(&secret)).await;
    assert_eq!((answer.status, answer.code()), (403, "OWNER_SUSPENDED"));
}

#[tokio::test]
async fn the_report_shows_the_agents_record_in_real_numbers() {
    let world = World::new(1_000).await;
    let seller = world.owner().await;
    let buyer = world.owner().await;
    let (agent, _) = world.agent(&seller).await;
    let (_, secret) = world.key(&buyer).await;
    let at = at("2026-03-10T12:00:00Z");
    world.clock.pin(at);

    // A new agent: nothing done yet, caution.
    let fresh = world.report(&agent, Some(&secret)).await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    assert_eq!(fresh.data()["trustTier"], "unverified");
    assert_eq!(fresh.data()["recommendation"], "caution");
    assert_eq!(
        fresh.data()["stats"],
        json!({"completed": 0, "failed": 0, "refundRate": 0.0, "disputeRate": 0.0})
    );

    // Some work: 8 completed, 3 failures, 2 refunds, 3 disputes of which 1 lost.
    let id: AgentId = agent.parse().unwrap();
    let before = agent_store::get(world.ctx().db(), &world.ctx().table, &id)
        .await
        .unwrap();
    let mut after = before.agent.clone();
    let mut outcomes = vec![
        Outcome::Completed {
            quality: 90,
            charged: Cents(2_500)
        };
        8
    ];
    outcomes.extend([
        Outcome::QualityFailed,
        Outcome::AgentFailed,
        Outcome::TimedOut,
        Outcome::Abandoned,
        Outcome::ThumbsUp,
        Outcome::Refunded {
            amount: Cents(2_500),
        },
        Outcome::Refunded {
            amount: Cents(2_500),
        },
        Outcome::DisputeFiled,
        Outcome::DisputeFiled,
        Outcome::DisputeFiled,
        Outcome::DisputeLost,
    ]);
    for outcome in outcomes {
        after.record_outcome(outcome, None, "2026-03-10T11:00:00Z");
    }
    let saved = agent_store::save(
        world.ctx().db(),
        &world.ctx().table,
        &before,
        after,
        None,
        MAX_ACTIVE_AGENTS_PER_OWNER,
    )
    .await
    .unwrap()
    .agent;

    let answer = world.report(&agent, Some(&secret)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let reputation = &saved.reputation;
    assert!(saved.overall_score > 0);
    assert_eq!(
        answer.data(),
        &json!({
            "agentId": agent,
            "displayName": "Reviewer",
            "status": "active",
            "trustTier": "provisional",
            "overallScore": saved.overall_score,
            "confidence": 16,
            "verificationStatus": "verified",
            "dimensions": {
                "outcome": reputation.outcome,
                "relationship": reputation.relationship,
                "economic": reputation.economic,
                "reliability": reputation.reliability,
            },
            "stats": {"completed": 8, "failed": 3, "refundRate": 0.25, "disputeRate": 0.375},
            "disputeSummary": {"filed": 3, "open": 2, "lostAsSeller": 1},
            "recommendation": "caution",
            "reasons": ["provisional", "low_confidence", "open_dispute"],
            "asOf": "2026-03-10T12:00:00Z",
        })
    );

    // Its use shows on the owner's list.
    let list = world.list(&buyer).await;
    assert_eq!(list.data()[0]["lastUsedAt"], "2026-03-10T12:00:00Z");
}

#[tokio::test]
async fn the_daily_quota_holds_under_racing_requests_and_resets_at_midnight_utc() {
    let world = World::new(5).await;
    let owner = world.owner().await;
    let (agent, _) = world.agent(&owner).await;
    let (id, secret) = world.key(&owner).await;
    let (_, other_secret) = world.key(&owner).await;
    let evening = at("2026-03-10T23:00:00Z");
    world.clock.pin(evening);

    let answers =
        futures::future::join_all((0..10).map(|_| world.report(&agent, Some(&secret)))).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((ok, limited.len()), (5, 5), "{answers:?}");
    for answer in &limited {
        assert_eq!(answer.code(), "RATE_LIMITED");
        let retry_after: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(retry_after, 3_600, "seconds to midnight UTC");
        assert!(retry_after <= 86_400);
        assert_eq!(answer.body["error"]["details"]["limit"], 5);
    }
    // Another key has its own quota.
    assert_eq!(world.report(&agent, Some(&other_secret)).await.status, 200);

    // The counter is one item per key per day, expiring at midnight.
    let midnight = at("2026-03-11T00:00:00Z").unix_timestamp();
    let day_start = midnight - 86_400;
    let counter = world
        .ctx()
        .db()
        .get_item()
        .table_name(&world.ctx().table)
        .set_key(Some(Key::rate(&format!("trust:{id}"), day_start).to_map()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the day's counter");
    assert_eq!(counter["hits"], AttributeValue::N("5".into()));
    assert_eq!(
        counter["expiresAt"],
        AttributeValue::N(midnight.to_string())
    );

    // Still the same UTC day a second before midnight; a new one after it.
    world.clock.pin(at("2026-03-10T23:59:59Z"));
    let last_second = world.report(&agent, Some(&secret)).await;
    assert_eq!(last_second.status, 429);
    assert_eq!(last_second.headers["retry-after"], "1");
    world
        .clock
        .pin(OffsetDateTime::from_unix_timestamp(midnight).unwrap());
    let answers =
        futures::future::join_all((0..7).map(|_| world.report(&agent, Some(&secret)))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert_eq!(
        answers.iter().find(|a| a.status == 429).unwrap().headers["retry-after"],
        "86400"
    );
}

#[tokio::test]
async fn an_owner_holds_a_bounded_number_of_live_keys() {
    let world = World::new(1_000).await;
    let owner = world.owner().await;
    let mut first = None;
    for _ in 0..MAX_ACTIVE_KEYS {
        let (id, _) = world.key(&owner).await;
        first.get_or_insert(id);
    }
    let refused = world.create_key(&owner, "one too many").await;
    assert_eq!((refused.status, refused.code()), (400, "VALIDATION_ERROR"));
    // The first page's total is a lower bound; read the list to its end in one page.
    let all = world
        .call(
            Call::at("GET", "/api/v1/trust/keys")
                .bearer(&owner.token)
                .query("pageSize", "100"),
        )
        .await;
    assert_eq!(all.body["pagination"]["total"], u64::from(MAX_ACTIVE_KEYS));
    assert!(all.body["pagination"]["nextCursor"].is_null());
    // A revoked key gives its place back.
    assert_eq!(
        world.revoke(&owner.token, &first.unwrap()).await.status,
        200
    );
    assert_eq!(world.create_key(&owner, "replacement").await.status, 201);
    assert_eq!(world.create_key(&owner, "again too many").await.status, 400);
}
