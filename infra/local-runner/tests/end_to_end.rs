//! The local runner end to end over the emulator: template → tables and queues →
//! HTTP gateway → function → DynamoDB → SQS → poller → consumer → DynamoDB.
//!
//! Functions run in-process through lambda_http's own adapter; everything else is
//! real: the emulator, HTTP on a socket, SQS receives, deletes, visibility timeouts
//! and the redrive to the dead-letter queue.

use std::time::{Duration, Instant};

mod common;

use aicity_local::runner;
use common::start;
use serde_json::{Value, json};

async fn get_json(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.expect("JSON body"))
}

/// Polls `check` until it returns Some, or fails after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_health_route_answers_with_the_success_envelope_through_the_gateway() {
    let (running, functions, _) = start(aicity_testkit::template()).await;
    let (status, headers, body) = get_json(&format!("{}/api/v1/health", running.base_url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["status"], "ok");
    assert_eq!(body["data"]["checks"]["dynamodb"]["status"], "ok");
    assert_eq!(body["data"]["canary"], Value::Null);
    // Anonymous: no version (nor anything else that names the build).
    assert_eq!(body["data"].get("version"), None, "{body}");
    assert!(
        !body.to_string().contains(env!("CARGO_PKG_VERSION")),
        "{body}"
    );
    assert!(headers["x-request-id"].to_str().unwrap().len() > 5);
    assert_eq!(functions.calls("health"), 1);
}

#[tokio::test]
async fn unknown_routes_and_bad_ids_get_the_error_envelope() {
    let (running, _, _) = start(aicity_testkit::template()).await;
    let (status, _, body) = get_json(&format!("{}/api/v1/no-such-thing", running.base_url)).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"success": false, "error": {"code": "NOT_FOUND", "message": "Not found", "details": {}}})
    );

    let (status, _, body) = get_json(&format!(
        "{}/api/v1/health/probes/not-an-id",
        running.base_url
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "probeId");
}

#[tokio::test]
async fn a_probe_travels_through_the_queue_and_is_recorded_once() {
    let (running, functions, _) = start(aicity_testkit::template()).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/api/v1/health/probes", running.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["success"], true, "{created}");
    assert_eq!(created["data"]["status"], "sent");
    let probe_id = created["data"]["probeId"].as_str().unwrap().to_owned();

    let url = format!("{}/api/v1/health/probes/{probe_id}", running.base_url);
    let probe = eventually(
        Duration::from_secs(30),
        "the probe to be received",
        || async {
            let (_, _, body) = get_json(&url).await;
            (body["data"]["status"] == "received").then_some(body["data"].clone())
        },
    )
    .await;
    assert!(probe["receivedAt"].is_string());
    assert!(functions.calls("canary") >= 1);

    let (_, _, health) = get_json(&format!("{}/api/v1/health", running.base_url)).await;
    assert_eq!(health["data"]["canary"]["lastProbeId"], probe_id.as_str());
}

#[tokio::test]
async fn poison_messages_are_retried_then_dead_lettered_while_good_ones_succeed() {
    // Shorter timings than production so the redrive happens within the test.
    let mut template = aicity_testkit::template();
    let queue = template
        .queues
        .iter_mut()
        .find(|q| q.logical_id == "CanaryQueue")
        .unwrap();
    queue.visibility_timeout = Some(1);
    queue.redrive.as_mut().unwrap().1 = 2;
    let (running, _, clients) = start(template).await;
    let canary_queue = running.resources.queue("CanaryQueue").unwrap().clone();

    // One poison message and one good probe.
    clients
        .sqs
        .send_message()
        .queue_url(&canary_queue.url)
        .message_body("this is not a probe")
        .send()
        .await
        .unwrap();
    let created: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/health/probes", running.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let probe_id = created["data"]["probeId"].as_str().unwrap().to_owned();

    let dead_letter_url = canary_queue.dead_letter_url.clone().unwrap();
    let dead = eventually(
        Duration::from_secs(40),
        "the poison message in the DLQ",
        || {
            let sqs = clients.sqs.clone();
            let url = dead_letter_url.clone();
            async move {
                let received = sqs
                    .receive_message()
                    .queue_url(url)
                    .message_system_attribute_names(
                        aws_sdk_sqs::types::MessageSystemAttributeName::All,
                    )
                    .send()
                    .await
                    .unwrap();
                received.messages.unwrap_or_default().into_iter().next()
            }
        },
    )
    .await;
    assert_eq!(dead.body(), Some("this is not a probe"));
    let receives: u32 = dead
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        receives >= 2,
        "delivered {receives} times before dead-lettering"
    );

    let (_, _, probe) = get_json(&format!(
        "{}/api/v1/health/probes/{probe_id}",
        running.base_url
    ))
    .await;
    assert_eq!(
        probe["data"]["status"], "received",
        "the good message was not held back"
    );
}

#[tokio::test]
async fn the_schedule_starts_a_probe_that_the_consumer_records() {
    let (running, functions, clients) = start(aicity_testkit::template()).await;
    let schedule = running
        .schedules
        .iter()
        .find(|s| s.function == "canary")
        .expect("the template schedules the canary");
    assert_eq!(schedule.period, Duration::from_secs(300));

    assert_eq!(
        functions.calls("canary"),
        0,
        "nothing fires before the first period"
    );
    aicity_local::schedule::fire(running.invoker.as_ref(), schedule, "us-east-1").await;
    let table = running.resources.tables["Table"].clone();
    let summary = eventually(Duration::from_secs(30), "the scheduled probe", || {
        let db = clients.dynamodb.clone();
        let table = table.clone();
        async move { aicity_store::probe::summary(&db, &table).await.unwrap() }
    })
    .await;
    let probe = aicity_store::probe::get(&clients.dynamodb, &table, &summary.last_probe_id)
        .await
        .unwrap();
    assert_eq!(probe.source, aicity_store::probe::ProbeSource::Schedule);
}

#[tokio::test]
async fn owners_and_agents_work_through_the_gateway_routes() {
    let (running, _, _) = start(aicity_testkit::template()).await;
    let api = format!("{}/api/v1", running.base_url);
    let client = reqwest::Client::new();
    let email = format!(
        "{}@example.com",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let up = client
        .post(format!("{api}/auth/sign-up"))
        .json(&json!({"name": "Riley", "email": email, "password": "long-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201);
    let signed_in: Value = client
        .post(format!("{api}/auth/sign-in"))
        .json(&json!({"email": email, "password": "long-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed_in["data"]["token"].as_str().unwrap();
    let registered: Value = client
        .post(format!("{api}/agents"))
        .bearer_auth(token)
        .json(&json!({"displayName": "Gateway agent", "framework": "custom", "description": "d"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["data"]["agent"]["id"].as_str().unwrap();
    let key = registered["data"]["apiKey"].as_str().unwrap();

    let me: Value = client
        .get(format!("{api}/agents/me"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["data"]["id"], id,
        "/agents/me is not taken for /agents/{{id}}"
    );
    let public = client
        .get(format!("{api}/agents/{id}"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 200);
    // A top-up with an Idempotency-Key, replayed: the header travels both ways.
    let top_up = || {
        client
            .post(format!("{api}/vault/pool/top-up"))
            .bearer_auth(token)
            .header("Idempotency-Key", "gateway-1")
            .json(&json!({"amount": 1_000}))
            .send()
    };
    let first = top_up().await.unwrap();
    assert_eq!(first.status(), 200);
    let replayed = top_up().await.unwrap();
    assert_eq!(replayed.headers()["idempotency-replayed"], "true");
    let pool: Value = client
        .get(format!("{api}/vault/pool"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pool["data"]["balance"], 1_000);

    let rotated = client
        .post(format!("{api}/agents/{id}/rotate-key"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
}

#[test]
fn the_template_table_matches_the_store_schema() {
    use aicity_store::schema;
    let template = aicity_testkit::template();
    let table = template
        .tables
        .iter()
        .find(|t| t.logical_id == "Table")
        .unwrap();
    let keys: Vec<_> = table
        .keys
        .iter()
        .map(|k| (k.attribute.as_str(), k.hash))
        .collect();
    assert_eq!(keys, [(schema::PK, true), (schema::SK, false)]);
    assert_eq!(table.ttl_attribute.as_deref(), Some(schema::TTL_ATTRIBUTE));
    let indexes: Vec<_> = table
        .indexes
        .iter()
        .map(|i| {
            (
                i.name.as_str(),
                i.keys[0].attribute.as_str(),
                i.keys[1].attribute.as_str(),
            )
        })
        .collect();
    let expected: Vec<_> = schema::INDEXES
        .iter()
        .map(|g| (g.name, g.pk, g.sk))
        .collect();
    assert_eq!(indexes, expected);
}

#[test]
fn every_function_gets_its_template_environment() {
    let template = aicity_testkit::template();
    let mut resources = aicity_local::resources::Resources {
        region: "us-east-1".into(),
        ..Default::default()
    };
    resources.parameters = template.parameters.clone();
    resources
        .tables
        .insert("Table".into(), "local-Table".into());
    for queue in &template.queues {
        resources.queues.insert(
            queue.logical_id.clone(),
            aicity_local::resources::QueueInfo {
                name: queue.logical_id.clone(),
                url: format!("http://sqs/{}", queue.logical_id),
                arn: format!("arn:aws:sqs:us-east-1:123456789012:{}", queue.logical_id),
                visibility_timeout: 30,
                max_receive_count: None,
                dead_letter_url: None,
            },
        );
    }
    let env = runner::shared_environment(&template, &resources).unwrap();
    assert_eq!(env["TABLE_NAME"], "local-Table");
    assert_eq!(env["CANARY_QUEUE_URL"], "http://sqs/CanaryQueue");
    assert_eq!(env["RUST_LOG"], "info");
    assert!(runner::env_file(&env).contains("TABLE_NAME=local-Table\n"));
    // No default payment provider: a deployment must choose (make dev exports
    // PAYMENT_PROVIDER=local, which the runner takes as the parameter's override).
    assert_eq!(env["PAYMENT_PROVIDER"], "");
    assert!(!runner::env_file(&env).contains("PAYMENT_PROVIDER"));
    // Secrets are passed by the name of their SSM parameter, never by value.
    assert_eq!(env["STRIPE_SECRET_KEY_PARAM"], "/aicity/stripe-secret-key");
    assert!(
        !runner::env_file(&env).contains("LLM_JUDGE_BASE_URL"),
        "empty values are left out"
    );
    assert!(
        !runner::env_file(&env).contains("STRIPE_SECRET_KEY="),
        "no key itself in the template"
    );
}
