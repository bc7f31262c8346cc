//! The agent registry through the HTTP handlers (auth to sign in, agents for the rest),
//! over the emulator.

use std::time::Duration;

use aicity_http::{Context, Limits};
use aicity_testkit::http::{Answer, Call, send};
use serde_json::{Value, json};

async fn agents_call(ctx: &Context, call: Call) -> Answer {
    send(&|request| agents::handle(ctx, request), &call).await
}

async fn auth_call(ctx: &Context, call: Call) -> Answer {
    send(&|request| auth::handle(ctx, request), &call).await
}

/// Signs up a new owner and returns a session token.
async fn owner(ctx: &Context) -> String {
    let email = format!(
        "{}@example.com",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let up = Call::at("POST", "/api/v1/auth/sign-up")
        .json(json!({"name": "Owner", "email": email, "password": "long-password"}));
    assert_eq!(auth_call(ctx, up).await.status, 201);
    let answer = auth_call(
        ctx,
        Call::at("POST", "/api/v1/auth/sign-in")
            .json(json!({"email": email, "password": "long-password"})),
    )
    .await;
    answer.data()["token"].as_str().unwrap().to_owned()
}

fn registration(name: &str, category: &str, price: i64) -> Value {
    json!({
        "displayName": name,
        "framework": "crewai",
        "description": format!("{name} does {category}"),
        "model": "gpt-4o",
        "capabilities": [{"category": category, "tags": ["rust"]}],
        "pricing": {category: price},
        "maxConcurrentTasks": 2,
    })
}

/// Registers an agent; returns (agent id, api key).
async fn register(ctx: &Context, token: &str, body: Value) -> (String, String) {
    let answer = agents_call(
        ctx,
        Call::at("POST", "/api/v1/agents").bearer(token).json(body),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    (
        answer.data()["agent"]["id"].as_str().unwrap().to_owned(),
        answer.data()["apiKey"].as_str().unwrap().to_owned(),
    )
}

fn on(method: &str, route: &str, id: &str) -> Call {
    Call::new(method, route, &route.replace("{id}", id))
}

#[tokio::test]
async fn register_then_read_as_the_agent_and_as_the_owner() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let token = owner(&ctx).await;
    let answer = agents_call(
        &ctx,
        Call::at("POST", "/api/v1/agents")
            .bearer(&token)
            .json(registration("Reviewer", "code_review", 2500)),
    )
    .await;
    assert_eq!(answer.status, 201);
    let agent = &answer.data()["agent"];
    let key = answer.data()["apiKey"].as_str().unwrap();
    assert!(key.starts_with("ac_live_") && key.len() >= 8 + 43);
    assert_eq!(agent["trustTier"], "unverified");
    assert_eq!(agent["overallScore"], 0);
    assert_eq!(
        agent["stats"],
        json!({"completed": 0, "failed": 0, "consecutiveFailures": 0, "activeTasks": 0})
    );
    assert!(agent.get("apiKeyHash").is_none() && agent.get("apiKey").is_none());

    let me = agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(key)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.data()["id"], agent["id"]);
    assert!(me.data()["ownerId"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(me.data()["maxConcurrentTasks"], 2);

    let mine = agents_call(&ctx, Call::at("GET", "/api/v1/agents").bearer(&token)).await;
    assert_eq!(mine.body["pagination"]["total"], 1);
    assert_eq!(mine.data()[0]["id"], agent["id"]);

    // Never seen: offline whatever it says; once it polls, what it says.
    let me = agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(key)).await;
    assert_eq!(me.data()["availability"], "offline");
    agents_call(
        &ctx,
        Call::at("POST", "/api/v1/agents/me/heartbeat").api_key(key),
    )
    .await;
    let patched = agents_call(
        &ctx,
        Call::at("PATCH", "/api/v1/agents/me")
            .api_key(key)
            .json(json!({"availability": "busy"})),
    )
    .await;
    assert_eq!(
        (patched.status, patched.data()["availability"].clone()),
        (200, json!("busy"))
    );

    let missing = agents_call(&ctx, Call::at("GET", "/api/v1/agents/me")).await;
    assert_eq!((missing.status, missing.code()), (401, "MISSING_API_KEY"));
    let wrong = agents_call(
        &ctx,
        Call::at("GET", "/api/v1/agents/me").api_key("ac_live_nope"),
    )
    .await;
    assert_eq!((wrong.status, wrong.code()), (401, "INVALID_API_KEY"));
}

#[tokio::test]
async fn the_eleventh_active_agent_is_refused_even_under_a_race() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let token = owner(&ctx).await;
    let attempts = (0..12).map(|i| {
        let ctx = ctx.clone();
        let token = token.clone();
        async move {
            agents_call(
                &ctx,
                Call::at("POST", "/api/v1/agents")
                    .bearer(&token)
                    .json(registration(&format!("A{i}"), "testing", 100)),
            )
            .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 403).collect();
    assert_eq!(
        (created.len(), refused.len()),
        (10, 2),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(refused.iter().all(|a| a.code() == "AGENT_LIMIT_REACHED"));

    // Deactivating one frees a slot; reactivating it while full is refused.
    let first = created[0].data()["agent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let off = agents_call(
        &ctx,
        on("POST", "/api/v1/agents/{id}/deactivate", &first).bearer(&token),
    )
    .await;
    assert_eq!(
        (off.status, off.data()["status"].clone()),
        (200, json!("deactivated"))
    );
    register(&ctx, &token, registration("Eleventh", "testing", 100)).await;
    let back = agents_call(
        &ctx,
        on("POST", "/api/v1/agents/{id}/reactivate", &first).bearer(&token),
    )
    .await;
    assert_eq!((back.status, back.code()), (403, "AGENT_LIMIT_REACHED"));
}

#[tokio::test]
async fn deactivate_reactivate_and_rotate_follow_the_seed() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let token = owner(&ctx).await;
    let (id, key) = register(&ctx, &token, registration("Worker", "code_generation", 900)).await;

    let again = agents_call(
        &ctx,
        on("POST", "/api/v1/agents/{id}/reactivate", &id).bearer(&token),
    )
    .await;
    assert_eq!((again.status, again.code()), (400, "AGENT_ALREADY_ACTIVE"));
    agents_call(
        &ctx,
        on("POST", "/api/v1/agents/{id}/deactivate", &id).bearer(&token),
    )
    .await;
    let twice = agents_call(
        &ctx,
        on("POST", "/api/v1/agents/{id}/deactivate", &id).bearer(&token),
    )
    .await;
    assert_eq!(
        (twice.status, twice.code()),
        (400, "AGENT_ALREADY_DEACTIVATED")
    );
    let inactive_key = agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(&key)).await;
    assert_eq!(
        (inactive_key.status, inactive_key.code()),
        (401, "INVALID_API_KEY")
    );
    let back = agents_call(
        &ctx,
        on("POST", "/api/v1/agents/{id}/reactivate", &id).bearer(&token),
    )
    .await;
    assert_eq!(
        (back.status, back.data()["status"].clone()),
        (200, json!("active"))
    );
    assert_eq!(
        agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(&key))
            .await
            .status,
        200
    );

    let rotated = agents_call(
        &ctx,
        on("POST", "/api/v1/agents/{id}/rotate-key", &id).bearer(&token),
    )
    .await;
    assert_eq!(rotated.status, 200);
    let new_key = rotated.data()["apiKey"].as_str().unwrap();
    assert_ne!(new_key, key);
    let old = agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(&key)).await;
    assert_eq!(
        (old.status, old.code()),
        (401, "INVALID_API_KEY"),
        "the old key stops at once"
    );
    let new = agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(new_key)).await;
    assert_eq!(new.status, 200);
}

#[tokio::test]
async fn another_owner_can_neither_change_nor_see_private_fields() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let mine = owner(&ctx).await;
    let theirs = owner(&ctx).await;
    let (id, key) = register(&ctx, &mine, registration("Mine", "research", 700)).await;

    for request in [
        on("PATCH", "/api/v1/agents/{id}", &id).json(json!({"description": "hijacked"})),
        on("POST", "/api/v1/agents/{id}/deactivate", &id),
        on("POST", "/api/v1/agents/{id}/rotate-key", &id),
    ] {
        let answer = agents_call(&ctx, request.bearer(&theirs)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (403, "NOT_AGENT_OWNER"),
            "{:?}",
            answer.body
        );
    }
    assert_eq!(
        agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(&key))
            .await
            .status,
        200
    );

    let public = agents_call(&ctx, on("GET", "/api/v1/agents/{id}", &id).bearer(&theirs)).await;
    assert_eq!(public.status, 200);
    let fields: Vec<&String> = public.data().as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "availability",
            "capabilities",
            "description",
            "displayName",
            "framework",
            "id",
            "overallScore",
            "pricing",
            "reputation",
            "trustTier",
            "verificationStatus"
        ]
    );
    assert_eq!(public.data()["description"], "Mine does research");

    let unknown = agents_call(
        &ctx,
        on(
            "GET",
            "/api/v1/agents/{id}",
            "ag_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        )
        .bearer(&theirs),
    )
    .await;
    assert_eq!((unknown.status, unknown.code()), (404, "AGENT_NOT_FOUND"));
    let anonymous = agents_call(&ctx, on("GET", "/api/v1/agents/{id}", &id)).await;
    assert_eq!(anonymous.status, 401);
}

/// Sets an agent's score as the reputation system will.
async fn set_score(ctx: &Context, id: &str, score: u32) {
    let record = aicity_store::agents::get(ctx.db(), &ctx.table, &id.parse().unwrap())
        .await
        .unwrap();
    let mut agent = record.agent.clone();
    agent.overall_score = score;
    aicity_store::agents::save(ctx.db(), &ctx.table, &record, agent, None, 10)
        .await
        .unwrap();
}

#[tokio::test]
async fn search_filters_orders_by_score_and_paginates() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let token = owner(&ctx).await;
    let (a, a_key) = register(&ctx, &token, registration("A", "code_review", 100)).await;
    let (b, b_key) = register(&ctx, &token, registration("B", "code_review", 100)).await;
    let (c, c_key) = register(&ctx, &token, registration("C", "code_review", 100)).await;
    // A and C are running (they sent a heartbeat); the others never were.
    for key in [&a_key, &c_key] {
        let beat = agents_call(
            &ctx,
            Call::at("POST", "/api/v1/agents/me/heartbeat").api_key(key),
        )
        .await;
        assert_eq!(beat.status, 200, "{}", beat.body);
        assert_eq!(beat.data()["availability"], "available");
    }
    let mut langgraph = registration("D", "security", 100);
    langgraph["framework"] = json!("langgraph");
    let (d, _) = register(&ctx, &token, langgraph).await;
    let (e, _) = register(&ctx, &token, registration("E", "code_review", 100)).await;
    for (id, score) in [(&a, 300), (&b, 900), (&c, 600), (&d, 950), (&e, 10)] {
        set_score(&ctx, id, score).await;
    }
    agents_call(
        &ctx,
        on("POST", "/api/v1/agents/{id}/deactivate", &e).bearer(&token),
    )
    .await;
    agents_call(
        &ctx,
        Call::at("PATCH", "/api/v1/agents/me")
            .api_key(&b_key)
            .json(json!({"availability": "offline"})),
    )
    .await;

    let search = |query: &[(&str, &str)]| {
        let mut call = Call::at("GET", "/api/v1/agents/search").bearer(&token);
        for (k, v) in query {
            call = call.query(k, v);
        }
        call
    };
    let ids = |answer: &Answer| -> Vec<String> {
        answer
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let reviewers = agents_call(&ctx, search(&[("category", "code_review")])).await;
    assert_eq!(
        ids(&reviewers),
        [b.clone(), c.clone(), a.clone()],
        "best score first; deactivated left out"
    );
    assert_eq!(
        reviewers.body["pagination"],
        json!({"page": 1, "pageSize": 20, "total": 3, "totalPages": 1, "nextCursor": null})
    );
    assert!(reviewers.data()[0].get("ownerId").is_none());

    let everyone = agents_call(&ctx, search(&[])).await;
    assert_eq!(ids(&everyone), [d.clone(), b.clone(), c.clone(), a.clone()]);
    let available = agents_call(
        &ctx,
        search(&[("category", "code_review"), ("availability", "available")]),
    )
    .await;
    assert_eq!(ids(&available), [c.clone(), a.clone()]);
    let strong = agents_call(&ctx, search(&[("minScore", "600")])).await;
    assert_eq!(ids(&strong), [d.clone(), b.clone(), c.clone()]);
    let framework = agents_call(&ctx, search(&[("framework", "langgraph")])).await;
    assert_eq!(ids(&framework), vec![d.clone()]);
    let tier = agents_call(
        &ctx,
        search(&[("trustTier", "unverified"), ("category", "security")]),
    )
    .await;
    assert_eq!(ids(&tier), vec![d.clone()]);

    let page2 = agents_call(&ctx, search(&[("pageSize", "2"), ("page", "2")])).await;
    assert_eq!(ids(&page2), [c.clone(), a.clone()]);
    assert_eq!(
        page2.body["pagination"],
        json!({"page": 2, "pageSize": 2, "total": 4, "totalPages": 2, "nextCursor": null})
    );

    let bad = agents_call(
        &ctx,
        search(&[
            ("category", "cooking"),
            ("pageSize", "101"),
            ("minScore", "-1"),
        ]),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.fields(), ["pageSize", "category", "minScore"]);
}

#[tokio::test]
async fn calls_past_the_limit_get_429_with_retry_after_then_recover() {
    let ctx = aicity_testkit::context(Limits {
        per_caller: 3,
        window: Duration::from_secs(2),
        ..Limits::default()
    })
    .await;
    let token = owner(&ctx).await;
    let (_, key) = register(&ctx, &token, registration("Busy", "general", 50)).await;
    let now = time::OffsetDateTime::now_utc();
    let into_window = (now.unix_timestamp() % 2) as f64 + f64::from(now.nanosecond()) / 1e9;
    tokio::time::sleep(Duration::from_secs_f64(2.0 - into_window)).await;

    for _ in 0..3 {
        assert_eq!(
            agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(&key))
                .await
                .status,
            200
        );
    }
    let limited = agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(&key)).await;
    assert_eq!((limited.status, limited.code()), (429, "RATE_LIMITED"));
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        agents_call(&ctx, Call::at("GET", "/api/v1/agents/me").api_key(&key))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bad_registrations_name_the_fields_and_write_nothing() {
    let ctx = aicity_testkit::context(Limits::default()).await;
    let token = owner(&ctx).await;
    let mut unknown_framework = registration("X", "testing", 10);
    unknown_framework["framework"] = json!("skynet");
    let mut unknown_category = registration("X", "testing", 10);
    unknown_category["capabilities"] = json!([{"category": "cooking"}]);
    let mut wrong_type = registration("X", "testing", 10);
    wrong_type["maxConcurrentTasks"] = json!("two");
    let mut oversized = registration(&"n".repeat(101), "testing", 10);
    oversized["description"] = json!("d".repeat(2001));
    let mut bad_price = registration("X", "testing", 0);
    bad_price["pricing"]["design"] = json!(100);
    let cases: Vec<(Call, Vec<&str>)> = vec![
        (
            Call::at("POST", "/api/v1/agents")
                .json(json!({"framework": "custom", "description": "d"})),
            vec!["displayName"],
        ),
        (
            Call::at("POST", "/api/v1/agents").json(unknown_framework),
            vec!["framework"],
        ),
        (
            Call::at("POST", "/api/v1/agents").json(unknown_category),
            vec!["capabilities[0].category"],
        ),
        (
            Call::at("POST", "/api/v1/agents").json(wrong_type),
            vec!["maxConcurrentTasks"],
        ),
        (
            Call::at("POST", "/api/v1/agents").json(oversized),
            vec!["displayName", "description"],
        ),
        (
            Call::at("POST", "/api/v1/agents").json(bad_price),
            vec!["pricing.testing", "pricing.design"],
        ),
        (
            Call::at("POST", "/api/v1/agents")
                .raw_body("{not json")
                .header("content-type", "application/json"),
            vec!["body"],
        ),
    ];
    for (request, fields) in cases {
        let answer = agents_call(&ctx, request.clone().bearer(&token)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "VALIDATION_ERROR"),
            "{:?}",
            answer.body
        );
        assert_eq!(answer.fields(), fields, "{:?}", answer.body);
    }
    let mine = agents_call(&ctx, Call::at("GET", "/api/v1/agents").bearer(&token)).await;
    assert_eq!(mine.body["pagination"]["total"], 0, "nothing was written");
    let search = agents_call(
        &ctx,
        Call::at("GET", "/api/v1/agents/search").bearer(&token),
    )
    .await;
    assert_eq!(search.body["pagination"]["total"], 0);
}
