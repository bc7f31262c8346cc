//! Webhooks over HTTP through the runner, against real receivers on 127.0.0.1 (the
//! loopback exception on, as `make dev` has it): a lifecycle's events arrive signed; a
//! 500 is retried with the same event id; a receiver that keeps failing ends in the DLQ
//! with every attempt logged; redelivery; refused URLs (at subscribe time and at
//! delivery: a redirect is a failed attempt, never followed); another principal sees
//! and touches nothing; and a crash between a step's commit and its queue send loses
//! no event (the sweeper re-drives it) and delivers it once.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aicity_domain::webhooks::{self as domain, RetrySchedule};
use aicity_local::template::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::world::{Auth, Party, World, good_review, template};
use common::{Knobs, Parts};
use reqwest::Method;
use serde_json::{Value, json};

// ---------------------------------------------------------------- a receiver

#[derive(Debug, Clone)]
struct Received {
    event_id: String,
    signature: String,
    content_type: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Debug, Clone)]
enum Answer {
    Status(u16),
    /// 302 to this URL.
    Redirect(String),
    /// Never answers (within any timeout a test uses).
    Hang,
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    /// Answers in order; 200 once they run out (or `fallback`).
    script: Arc<Mutex<VecDeque<Answer>>>,
    fallback: Arc<Mutex<Option<Answer>>>,
    url: String,
}

async fn hook(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    receiver.received.lock().unwrap().push(Received {
        event_id: header(domain::EVENT_ID_HEADER),
        signature: header(domain::SIGNATURE_HEADER),
        content_type: header("content-type"),
        body: body.to_vec(),
    });
    let answer = receiver
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| receiver.fallback.lock().unwrap().clone())
        .unwrap_or(Answer::Status(200));
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Answer::Redirect(to) => {
            (StatusCode::FOUND, [(axum::http::header::LOCATION, to)]).into_response()
        }
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK.into_response()
        }
    }
}

async fn receiver(script: Vec<Answer>, fallback: Option<Answer>) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver {
        received: Arc::default(),
        script: Arc::new(Mutex::new(script.into())),
        fallback: Arc::new(Mutex::new(fallback)),
        url: format!("http://127.0.0.1:{}/hook", addr.port()),
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    receiver
}

impl Receiver {
    fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what arrived.
    async fn wait(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let all = self.all();
            if done(&all) {
                return all;
            }
            assert!(
                started.elapsed() < Duration::from_secs(45),
                "receiver never got {what}: {:?}",
                all.iter().map(|r| r.json()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---------------------------------------------------------------- the world

async fn world_with(template: Template, knobs: Knobs) -> (World, Parts) {
    let (running, parts, clients) = common::start_full(template, knobs, |f| Arc::new(f)).await;
    (
        World::from((running, parts.functions.clone(), clients)),
        parts,
    )
}

/// Fast retries: 1 s between attempts, 4 attempts; the queue's maxReceiveCount to match.
fn fast() -> (Template, Knobs) {
    let schedule = RetrySchedule::parse("1,1,1").unwrap();
    let mut template = template();
    for queue in template.queues.iter_mut() {
        if queue.logical_id == "WebhookQueue" {
            let (dlq, _) = queue.redrive.clone().unwrap();
            queue.redrive = Some((dlq, schedule.max_attempts()));
        }
    }
    let knobs = Knobs {
        webhook_retry: Some(schedule),
        webhook_timeout: Some(Duration::from_secs(2)),
        ..Knobs::default()
    };
    (template, knobs)
}

async fn subscribe(world: &World, auth: Auth<'_>, url: &str, events: &[&str]) -> (String, Vec<u8>) {
    let (status, body) = world
        .call(
            Method::POST,
            "/webhooks",
            auth,
            Some(json!({ "url": url, "events": events })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let data = &body["data"];
    assert_eq!(data["status"], "active");
    let secret = data["secret"].as_str().unwrap();
    assert!(secret.starts_with(domain::SECRET_PREFIX));
    (
        data["id"].as_str().unwrap().to_owned(),
        secret.as_bytes().to_vec(),
    )
}

fn verify(secret: &[u8], received: &Received) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(
        domain::verify(secret, &received.signature, &received.body, now, 300),
        Ok(()),
        "signature of {}",
        received.event_id
    );
    assert_eq!(received.content_type, "application/json");
    let body = received.json();
    assert_eq!(body["id"], received.event_id.as_str());
    assert!(body.get("recipients").is_none());
}

async fn deliveries(world: &World, auth: Auth<'_>, id: &str) -> Vec<Value> {
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/webhooks/{id}/deliveries"),
            auth,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["deliveries"].as_array().unwrap().clone()
}

async fn wait_delivery(
    world: &World,
    auth: Auth<'_>,
    id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let found = deliveries(world, auth, id).await;
        if done(&found) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "deliveries never {what}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// A buyer with funds and another owner's reviewer online: (buyer, seller, reviewer
/// id, reviewer key).
async fn scene(world: &mut World) -> (Party, Party, String, String) {
    let buyer = world.owner(50_000).await;
    let seller = world.owner(0).await;
    let (agent, key) = world.reviewer(&seller, 2_500, 10).await;
    (buyer, seller, agent, key)
}

fn events_of(received: &[Received], kind: &str) -> Vec<Received> {
    received
        .iter()
        .filter(|r| r.json()["type"] == kind)
        .cloned()
        .collect()
}

// ---------------------------------------------------------------- tests

#[test]
fn the_queue_allows_one_receive_per_attempt() {
    let template = aicity_testkit::template();
    let queue = template
        .queues
        .iter()
        .find(|q| q.logical_id == "WebhookQueue")
        .unwrap();
    let function = template
        .functions
        .iter()
        .find(|f| f.binary == "webhook-delivery")
        .unwrap();
    let raw = match &function.environment["WEBHOOK_RETRY_SECONDS"] {
        aicity_local::template::Intrinsic::Literal(value) => value.clone(),
        other => panic!("WEBHOOK_RETRY_SECONDS is {other:?}"),
    };
    let schedule = RetrySchedule::parse(&raw).unwrap();
    assert_eq!(schedule, RetrySchedule::default());
    assert_eq!(
        queue.redrive.as_ref().unwrap().1,
        schedule.max_attempts(),
        "maxReceiveCount = schedule length + 1"
    );
}

#[tokio::test]
async fn a_lifecycle_arrives_signed_to_owners_and_agents() {
    let (mut world, _parts) = world_with(template(), Knobs::default()).await;
    let (buyer, seller, agent, key) = scene(&mut world).await;
    let buyer_hook = receiver(vec![], None).await;
    let agent_hook = receiver(vec![], None).await;
    let seller_hook = receiver(vec![], None).await;
    let all: Vec<&str> = domain::WebhookEventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    let (_, buyer_secret) =
        subscribe(&world, Auth::Bearer(&buyer.token), &buyer_hook.url, &all).await;
    let (_, agent_secret) = subscribe(
        &world,
        Auth::Key(&key),
        &agent_hook.url,
        &["task.assigned", "task.completed", "feedback.received"],
    )
    .await;
    let (_, seller_secret) = subscribe(
        &world,
        Auth::Bearer(&seller.token),
        &seller_hook.url,
        &["feedback.received"],
    )
    .await;

    let task = world.submit(&buyer, 5_000).await;
    let assigned = world.wait_assigned(&task, Auth::Bearer(&buyer.token)).await;
    assert_eq!(assigned["agentId"], agent.as_str());
    world.start(&task, &key).await;
    let (status, body) = world.complete(&task, &key, good_review()).await;
    assert_eq!(status, 200, "{body}");
    world
        .wait_status(&task, Auth::Bearer(&buyer.token), "completed")
        .await;
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{task}/feedback"),
            Auth::Bearer(&buyer.token),
            Some(json!({"feedback": "up"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let buyer_got = buyer_hook
        .wait("assigned and completed", |r| {
            !events_of(r, "task.assigned").is_empty() && !events_of(r, "task.completed").is_empty()
        })
        .await;
    let agent_got = agent_hook
        .wait("assigned, completed and feedback", |r| {
            ["task.assigned", "task.completed", "feedback.received"]
                .iter()
                .all(|k| !events_of(r, k).is_empty())
        })
        .await;
    let seller_got = seller_hook
        .wait("feedback", |r| {
            !events_of(r, "feedback.received").is_empty()
        })
        .await;
    for got in &buyer_got {
        verify(&buyer_secret, got);
        assert_eq!(got.json()["data"]["taskId"], task.as_str());
    }
    for got in &agent_got {
        verify(&agent_secret, got);
    }
    for got in &seller_got {
        verify(&seller_secret, got);
        // Another subscription's secret does not verify it.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(domain::verify(&buyer_secret, &got.signature, &got.body, now, 300).is_err());
    }
    // The same event reached the buyer and the agent under one id.
    let assigned_ids = |got: &[Received]| {
        events_of(got, "task.assigned")
            .iter()
            .map(|r| r.event_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(assigned_ids(&buyer_got), assigned_ids(&agent_got));
    // The buyer did not ask for feedback events meant for the seller's side: not sent.
    assert!(events_of(&buyer_got, "feedback.received").is_empty());
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_event_id_then_delivered() {
    let (template, knobs) = fast();
    let (mut world, _parts) = world_with(template, knobs).await;
    let (buyer, _, _, _) = scene(&mut world).await;
    let hook = receiver(vec![Answer::Status(500)], None).await;
    let auth = Auth::Bearer(&buyer.token);
    let (id, secret) = subscribe(&world, auth, &hook.url, &["task.assigned"]).await;
    world.submit(&buyer, 5_000).await;
    let got = hook.wait("two tries", |r| r.len() >= 2).await;
    assert_eq!(got[0].event_id, got[1].event_id);
    for received in &got {
        verify(&secret, received);
    }
    let log = wait_delivery(&world, auth, &id, "delivered", |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{log:?}");
    assert_eq!(attempts[0]["statusCode"], 500);
    assert!(attempts[0]["error"].is_string());
    assert_eq!(attempts[1]["statusCode"], 200);
    assert!(attempts[1].get("error").is_none());
    assert!(attempts[1]["latencyMs"].is_u64());
    assert_eq!(log[0]["eventId"], got[0].event_id.as_str());
    assert_eq!(log[0]["eventType"], "task.assigned");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.all().len(), 2, "nothing after the 2xx");
    let (_, listed) = world.call(Method::GET, "/webhooks", auth, None).await;
    assert!(listed["data"][0].get("failingSince").is_none(), "{listed}");
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_ends_in_the_dlq_with_every_attempt_logged() {
    let (template, knobs) = fast();
    let (mut world, _parts) = world_with(template, knobs).await;
    let (buyer, _, _, _) = scene(&mut world).await;
    // A 503, a hang past the timeout, then 500s.
    let hook = receiver(
        vec![Answer::Status(503), Answer::Hang],
        Some(Answer::Status(500)),
    )
    .await;
    let auth = Auth::Bearer(&buyer.token);
    let (id, _) = subscribe(&world, auth, &hook.url, &["task.assigned"]).await;
    world.submit(&buyer, 5_000).await;
    let log = wait_delivery(&world, auth, &id, "failed", |d| {
        d.len() == 1 && d[0]["status"] == "failed"
    })
    .await;
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4, "{log:?}");
    assert_eq!(attempts[0]["statusCode"], 503);
    assert!(attempts[1].get("statusCode").is_none());
    assert!(
        attempts[1]["error"].as_str().unwrap().contains("no answer"),
        "{log:?}"
    );
    assert_eq!(attempts[3]["statusCode"], 500);
    assert_eq!(hook.all().len(), 4);
    let (_, listed) = world.call(Method::GET, "/webhooks", auth, None).await;
    assert!(listed["data"][0]["failingSince"].is_string(), "{listed}");

    // The message is in the DLQ.
    let dlq = world.running.resources.queues["WebhookDeadLetterQueue"]
        .url
        .clone();
    let started = Instant::now();
    let body = loop {
        let received = world
            .clients
            .sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(message) = received.messages.unwrap_or_default().into_iter().next() {
            break serde_json::from_str::<Value>(message.body.as_deref().unwrap()).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing in the DLQ"
        );
    };
    assert_eq!(body["subscriptionId"], id.as_str());
    assert_eq!(body["eventId"], log[0]["eventId"]);
}

#[tokio::test]
async fn redeliver_sends_it_again_in_a_new_series() {
    let (mut world, _parts) = world_with(template(), Knobs::default()).await;
    let (buyer, _, _, _) = scene(&mut world).await;
    let hook = receiver(vec![], None).await;
    let auth = Auth::Bearer(&buyer.token);
    let (id, secret) = subscribe(&world, auth, &hook.url, &["task.assigned"]).await;
    world.submit(&buyer, 5_000).await;
    hook.wait("the event", |r| r.len() == 1).await;
    let log = wait_delivery(&world, auth, &id, "delivered", |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;
    let delivery = log[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/webhooks/{id}/deliveries/{delivery}/redeliver"),
            auth,
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["data"]["status"], "pending");
    assert_eq!(body["data"]["id"], delivery.as_str());
    let got = hook.wait("it again", |r| r.len() == 2).await;
    assert_eq!(got[0].event_id, got[1].event_id);
    verify(&secret, &got[1]);
    let log = wait_delivery(&world, auth, &id, "delivered again", |d| {
        d[0]["status"] == "delivered" && d[0]["attempts"].as_array().unwrap().len() == 2
    })
    .await;
    assert_eq!(log.len(), 1);
    // Unknown deliveries.
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/webhooks/{id}/deliveries/whd_01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver"),
            auth,
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("WEBHOOK_DELIVERY_NOT_FOUND"))
    );
}

#[tokio::test]
async fn refused_urls() {
    let names: HashMap<String, Vec<IpAddr>> = [
        ("private.test", "10.1.2.3"),
        ("meta.test", "169.254.169.254"),
        ("loop.test", "127.0.0.1"),
        ("v6.test", "::1"),
        ("mapped.test", "::ffff:192.168.0.1"),
    ]
    .into_iter()
    .map(|(name, ip)| (name.to_owned(), vec![ip.parse().unwrap()]))
    .collect();
    let knobs = Knobs {
        webhook_deny_loopback: true,
        webhook_names: names.clone(),
        ..Knobs::default()
    };
    let (mut world, _parts) = world_with(template(), knobs).await;
    let owner = world.owner(0).await;
    let long = format!("https://example.com/{}", "a".repeat(2048));
    let refused = [
        ("https://10.0.0.1/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("https://172.20.0.1/hook", "private"),
        ("http://127.0.0.1:8080/hook", "https"),
        ("https://127.0.0.1:8443/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://169.254.10.10/hook", "link-local"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[fd00:ec2::254]/", "metadata"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fc00::1]/", "unique-local"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://100.64.0.1/", "CGNAT"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://localhost/hook", "localhost"),
        ("https://api.localhost/hook", "localhost"),
        ("https://private.test/hook", "private"),
        ("https://meta.test/hook", "metadata"),
        ("https://loop.test/hook", "loopback"),
        ("https://v6.test/hook", "loopback"),
        ("https://mapped.test/hook", "private"),
        ("http://hooks.example.com/hook", "https"),
        ("https://user:pass@hooks.example.com/hook", "user name"),
        ("ftp://hooks.example.com/hook", "https"),
        ("not a url", "absolute URL"),
        (long.as_str(), "2048"),
    ];
    for (url, reason) in refused {
        let (status, body) = world
            .call(
                Method::POST,
                "/webhooks",
                Auth::Bearer(&owner.token),
                Some(json!({"url": url, "events": ["task.completed"]})),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{url}");
        let field = &body["error"]["details"]["fields"][0];
        assert_eq!(field["field"], "url", "{url}: {body}");
        assert!(
            field["message"].as_str().unwrap().contains(reason),
            "{url}: {body}"
        );
    }
    let (_, listed) = world
        .call(Method::GET, "/webhooks", Auth::Bearer(&owner.token), None)
        .await;
    assert_eq!(listed["data"], json!([]), "nothing was stored");

    // With the loopback flag, 127.0.0.1 itself is allowed, nothing else is.
    let (mut world, _parts) = world_with(
        template(),
        Knobs {
            webhook_names: names,
            ..Knobs::default()
        },
    )
    .await;
    let owner = world.owner(0).await;
    for (url, ok) in [
        ("http://127.0.0.1:9/hook", true),
        ("https://127.0.0.1:9/hook", true),
        ("http://localhost:9/hook", false),
        ("http://loop.test:9/hook", false),
        ("https://loop.test/hook", false),
        ("http://127.0.0.2:9/hook", false),
        ("http://10.0.0.1/hook", false),
    ] {
        let (status, body) = world
            .call(
                Method::POST,
                "/webhooks",
                Auth::Bearer(&owner.token),
                Some(json!({"url": url, "events": ["task.completed"]})),
            )
            .await;
        assert_eq!(status == 201, ok, "{url}: {body}");
    }
}

#[tokio::test]
async fn subscriptions_are_validated_and_limited() {
    let (mut world, _parts) = world_with(template(), Knobs::default()).await;
    let owner = world.owner(0).await;
    let (_, key) = world.idle_reviewer(&owner, 100, 1).await;
    let hook = receiver(vec![], None).await;
    let post = |auth, body: Value| {
        let world = &world;
        async move {
            world
                .call(Method::POST, "/webhooks", auth, Some(body))
                .await
        }
    };
    let (status, body) = post(
        Auth::Bearer(&owner.token),
        json!({"url": hook.url, "events": []}),
    )
    .await;
    assert_eq!(
        (
            status,
            body["error"]["details"]["fields"][0]["field"].clone()
        ),
        (400, json!("events"))
    );
    let (status, body) = post(
        Auth::Bearer(&owner.token),
        json!({"url": hook.url, "events": ["task.nope"]}),
    )
    .await;
    assert_eq!(
        (
            status,
            body["error"]["details"]["fields"][0]["field"].clone()
        ),
        (400, json!("events[0]"))
    );
    // Approvals are the owner's: an agent may not ask for them.
    let (status, body) = post(
        Auth::Key(&key),
        json!({"url": hook.url, "events": ["approval.requested"]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("owners only"),
        "{body}"
    );
    let (status, body) = post(
        Auth::Bearer(&owner.token),
        json!({"url": hook.url, "events": ["approval.requested", "task.failed", "task.failed"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["data"]["events"],
        json!(["task.failed", "approval.requested"])
    );
    // No secret after creation.
    let (_, listed) = world
        .call(Method::GET, "/webhooks", Auth::Bearer(&owner.token), None)
        .await;
    assert!(listed["data"][0].get("secret").is_none(), "{listed}");
    assert!(listed["pagination"].is_object(), "{listed}");
    for _ in 1..domain::MAX_SUBSCRIPTIONS {
        let (status, body) = post(
            Auth::Bearer(&owner.token),
            json!({"url": hook.url, "events": ["task.failed"]}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = post(
        Auth::Bearer(&owner.token),
        json!({"url": hook.url, "events": ["task.failed"]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("WEBHOOK_LIMIT_REACHED"))
    );
    // The agent's own limit is its own.
    let (status, body) = post(
        Auth::Key(&key),
        json!({"url": hook.url, "events": ["task.assigned"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // A deletion frees a place.
    let (_, listed) = world
        .call(
            Method::GET,
            "/webhooks?pageSize=100",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    let first = listed["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = world
        .call(
            Method::DELETE,
            &format!("/webhooks/{first}"),
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        Auth::Bearer(&owner.token),
        json!({"url": hook.url, "events": ["task.failed"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // The audit trail has them.
    let (status, audit) = world
        .call(
            Method::GET,
            "/embassy/audit?limit=100",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit["data"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"webhook.created") && actions.contains(&"webhook.deleted"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn without_a_key_no_subscription_is_created() {
    let knobs = Knobs {
        webhook_no_key: true,
        ..Knobs::default()
    };
    let (mut world, _parts) = world_with(template(), knobs).await;
    let owner = world.owner(0).await;
    let (status, body) = world
        .call(
            Method::POST,
            "/webhooks",
            Auth::Bearer(&owner.token),
            Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["task.failed"]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("WEBHOOKS_NOT_CONFIGURED"))
    );
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let (template, knobs) = fast();
    let (mut world, _parts) = world_with(template, knobs).await;
    let (buyer, _, _, _) = scene(&mut world).await;
    let elsewhere = receiver(vec![], None).await;
    let hook = receiver(vec![Answer::Redirect(elsewhere.url.clone())], None).await;
    let auth = Auth::Bearer(&buyer.token);
    let (id, _) = subscribe(&world, auth, &hook.url, &["task.assigned"]).await;
    world.submit(&buyer, 5_000).await;
    let log = wait_delivery(&world, auth, &id, "delivered on the retry", |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["statusCode"], 302);
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("redirect"),
        "{log:?}"
    );
    assert_eq!(attempts[1]["statusCode"], 200);
    assert!(elsewhere.all().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn another_principal_cannot_see_or_touch_a_subscription() {
    let (mut world, _parts) = world_with(template(), Knobs::default()).await;
    let (buyer, other, _, other_key) = scene(&mut world).await;
    let hook = receiver(vec![], None).await;
    let auth = Auth::Bearer(&buyer.token);
    let (id, _) = subscribe(&world, auth, &hook.url, &["task.assigned"]).await;
    world.submit(&buyer, 5_000).await;
    let log = wait_delivery(&world, auth, &id, "delivered", |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;
    let delivery = log[0]["id"].as_str().unwrap().to_owned();
    // Its owner's agent is another principal too.
    let (_, own_agent_key) = world.idle_reviewer(&buyer, 100, 1).await;
    for intruder in [
        Auth::Bearer(&other.token),
        Auth::Key(&other_key),
        Auth::Key(&own_agent_key),
    ] {
        for (method, path) in [
            (Method::GET, format!("/webhooks/{id}")),
            (Method::DELETE, format!("/webhooks/{id}")),
            (Method::POST, format!("/webhooks/{id}/enable")),
            (Method::GET, format!("/webhooks/{id}/deliveries")),
            (
                Method::POST,
                format!("/webhooks/{id}/deliveries/{delivery}/redeliver"),
            ),
            (
                Method::GET,
                "/webhooks/wh_01ARZ3NDEKTSV4RRFFQ69G5FAV".to_owned(),
            ),
        ] {
            let (status, body) = world.call(method.clone(), &path, intruder, None).await;
            assert_eq!(
                (status, body["error"]["code"].clone()),
                (404, json!("WEBHOOK_NOT_FOUND")),
                "{method} {path}: {body}"
            );
        }
        let (status, listed) = world.call(Method::GET, "/webhooks", intruder, None).await;
        assert_eq!(
            (status, listed["data"].clone()),
            (200, json!([])),
            "{listed}"
        );
    }
    // Still there, untouched, and nothing redelivered.
    let (status, body) = world
        .call(Method::GET, &format!("/webhooks/{id}"), auth, None)
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (200, json!("active"))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.all().len(), 1);
    // Unauthenticated.
    let response = world
        .http
        .get(format!("{}/api/v1/webhooks", world.running.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // And its owner may delete it.
    let (status, _) = world
        .call(Method::DELETE, &format!("/webhooks/{id}"), auth, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = world
        .call(Method::GET, &format!("/webhooks/{id}"), auth, None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_crash_before_the_queue_send_loses_no_event_and_delivers_it_once() {
    let (mut world, parts) = world_with(template(), Knobs::default()).await;
    let (buyer, _, _, key) = scene(&mut world).await;
    let hook = receiver(vec![], None).await;
    let auth = Auth::Bearer(&buyer.token);
    let (id, secret) = subscribe(&world, auth, &hook.url, &["task.failed"]).await;
    let task = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&task, auth).await;
    world.start(&task, &key).await;

    // The agent fails the task; the step commits (with its event) and dies before the
    // send to the webhooks queue.
    let table = world.table().to_owned();
    aicity_store::faults::arm(&table, aicity_store::faults::point::BEFORE_WEBHOOK_SEND, 1);
    let (status, _) = world
        .call(
            Method::POST,
            &format!("/tasks/{task}/fail"),
            Auth::Key(&key),
            Some(json!({"reason": "execution_error", "errorMessage": "boom"})),
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(
        aicity_store::faults::remaining(&table, aicity_store::faults::point::BEFORE_WEBHOOK_SEND),
        0
    );
    aicity_store::faults::disarm(&table);
    world.wait_status(&task, auth, "failed").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.all().is_empty(), "the send was lost");
    assert!(deliveries(&world, auth, &id).await.is_empty());

    // A minute later the sweeper sends it again.
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + time::Duration::seconds(120));
    let report = sweeper::sweep(&parts.sweeper).await.unwrap();
    assert!(report.webhooks_redriven >= 1, "{report:?}");
    let got = hook.wait("the failed task", |r| r.len() == 1).await;
    verify(&secret, &got[0]);
    assert_eq!(got[0].json()["type"], "task.failed");
    assert_eq!(got[0].json()["data"]["taskId"], task.as_str());
    wait_delivery(&world, auth, &id, "delivered", |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;

    // A late duplicate of the fan-out (the sweeper's and the original's both arriving)
    // delivers nothing twice; the event is off the watch, so the sweeper sends no more.
    let queue = world.running.resources.queues["WebhookQueue"].url.clone();
    let duplicate = json!({"eventId": got[0].event_id});
    aicity_store::queue::send_json(&world.clients.sqs, &queue, &duplicate)
        .await
        .unwrap();
    let report = sweeper::sweep(&parts.sweeper).await.unwrap();
    assert_eq!(report.webhooks_redriven, 0, "{report:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.all().len(), 1, "delivered exactly once");
    let log = deliveries(&world, auth, &id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_subscription_failing_for_three_days_is_disabled_until_enabled() {
    let (mut template, mut knobs) = fast();
    // Many attempts, so the streak, not the schedule, ends it.
    let schedule = RetrySchedule::parse("1,1,1,1,1,1,1,1").unwrap();
    for queue in template.queues.iter_mut() {
        if queue.logical_id == "WebhookQueue" {
            let (dlq, _) = queue.redrive.clone().unwrap();
            queue.redrive = Some((dlq, schedule.max_attempts()));
        }
    }
    knobs.webhook_retry = Some(schedule);
    let (mut world, parts) = world_with(template, knobs).await;
    let (buyer, _, _, _) = scene(&mut world).await;
    let hook = receiver(vec![], Some(Answer::Status(500))).await;
    let auth = Auth::Bearer(&buyer.token);
    let (id, _) = subscribe(&world, auth, &hook.url, &["task.assigned"]).await;
    let start = time::OffsetDateTime::now_utc();
    parts.knobs.webhook_clock.pin(start);
    world.submit(&buyer, 5_000).await;
    hook.wait("a first try", |r| !r.is_empty()).await;
    // Three days later the streak is long enough.
    parts
        .knobs
        .webhook_clock
        .pin(start + time::Duration::hours(72) + time::Duration::minutes(1));
    let log = wait_delivery(&world, auth, &id, "failed", |d| {
        d.len() == 1 && d[0]["status"] == "failed"
    })
    .await;
    let tries = log[0]["attempts"].as_array().unwrap().len();
    assert!((2..9).contains(&tries), "{log:?}");
    let (_, got) = world
        .call(Method::GET, &format!("/webhooks/{id}"), auth, None)
        .await;
    assert_eq!(got["data"]["status"], "disabled", "{got}");
    assert!(got["data"]["disabledAt"].is_string());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.all().len(), tries, "no attempts once disabled");

    let (status, got) = world
        .call(Method::POST, &format!("/webhooks/{id}/enable"), auth, None)
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["status"], "active");
    assert!(got["data"].get("failingSince").is_none(), "{got}");
    assert!(got["data"].get("disabledAt").is_none(), "{got}");
}

/// The Embassy's and Courts' events arrive too: `approval.requested` to the owner whose
/// agent's submit waits for it, `task.refunded` on a thumbs-down, `dispute.filed` and
/// `dispute.resolved` (a withdrawal) to both sides.
#[tokio::test]
async fn approval_refund_and_dispute_events_arrive() {
    let (mut world, _parts) = world_with(template(), Knobs::default()).await;
    let (buyer, seller, _agent, key) = scene(&mut world).await;
    let (buyer_agent, buyer_key) = world.idle_reviewer(&buyer, 100, 5).await;
    let buyer_hook = receiver(vec![], None).await;
    let seller_hook = receiver(vec![], None).await;
    let agent_hook = receiver(vec![], None).await;
    let (_, buyer_secret) = subscribe(
        &world,
        Auth::Bearer(&buyer.token),
        &buyer_hook.url,
        &[
            "approval.requested",
            "task.refunded",
            "dispute.filed",
            "dispute.resolved",
        ],
    )
    .await;
    let (_, seller_secret) = subscribe(
        &world,
        Auth::Bearer(&seller.token),
        &seller_hook.url,
        &["dispute.filed", "dispute.resolved"],
    )
    .await;
    let (_, agent_secret) = subscribe(
        &world,
        Auth::Key(&key),
        &agent_hook.url,
        &["task.refunded", "dispute.filed"],
    )
    .await;

    // An approval: the buyer's agent submits over its threshold.
    let (status, body) = world
        .call(
            Method::PUT,
            &format!("/embassy/agents/{buyer_agent}/policy"),
            Auth::Bearer(&buyer.token),
            Some(json!({"version": 0, "approvalThreshold": 1_000})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Key(&buyer_key),
            Some(json!({"taskType": "code_review", "maxBudget": 5_000,
                        "input": {"description": "Review the Rust auth module"}})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["status"].clone()),
        (201, json!("pending_approval"))
    );
    let refunded_task = body["data"]["id"].as_str().unwrap().to_owned();
    let got = buyer_hook
        .wait("approval.requested", |r| {
            !events_of(r, "approval.requested").is_empty()
        })
        .await;
    let requested = events_of(&got, "approval.requested").remove(0);
    verify(&buyer_secret, &requested);
    assert_eq!(requested.json()["data"]["taskId"], refunded_task.as_str());
    let approval = requested.json()["data"]["approvalId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/embassy/approvals/{approval}/approve"),
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A refund: done, then a thumbs-down inside the window.
    world
        .wait_assigned(&refunded_task, Auth::Bearer(&buyer.token))
        .await;
    world.start(&refunded_task, &key).await;
    world.complete(&refunded_task, &key, good_review()).await;
    world
        .wait_status(&refunded_task, Auth::Bearer(&buyer.token), "completed")
        .await;
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{refunded_task}/feedback"),
            Auth::Bearer(&buyer.token),
            Some(json!({"feedback": "down"})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["refunded"].clone()),
        (200, json!(true)),
        "{body}"
    );

    // A dispute, filed and withdrawn.
    let disputed = world.submit(&buyer, 5_000).await;
    world
        .wait_assigned(&disputed, Auth::Bearer(&buyer.token))
        .await;
    world.start(&disputed, &key).await;
    world.complete(&disputed, &key, good_review()).await;
    world
        .wait_status(&disputed, Auth::Bearer(&buyer.token), "completed")
        .await;
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/tasks/{disputed}/dispute"),
            Auth::Bearer(&buyer.token),
            Some(json!({"reason": "incomplete_delivery", "description": "Only 2 of the 5 files were reviewed."})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let dispute = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, body) = world
        .call(
            Method::POST,
            &format!("/courts/disputes/{dispute}/withdraw"),
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let buyer_got = buyer_hook
        .wait("refunded, filed and resolved", |r| {
            ["task.refunded", "dispute.filed", "dispute.resolved"]
                .iter()
                .all(|k| !events_of(r, k).is_empty())
        })
        .await;
    let seller_got = seller_hook
        .wait("filed and resolved", |r| {
            ["dispute.filed", "dispute.resolved"]
                .iter()
                .all(|k| !events_of(r, k).is_empty())
        })
        .await;
    let agent_got = agent_hook
        .wait("refunded and filed", |r| {
            ["task.refunded", "dispute.filed"]
                .iter()
                .all(|k| !events_of(r, k).is_empty())
        })
        .await;
    for got in &buyer_got {
        verify(&buyer_secret, got);
    }
    for got in &seller_got {
        verify(&seller_secret, got);
        assert_eq!(got.json()["data"]["taskId"], disputed.as_str());
        assert_eq!(got.json()["data"]["disputeId"], dispute.as_str());
    }
    for got in &agent_got {
        verify(&agent_secret, got);
    }
    assert_eq!(
        events_of(&buyer_got, "task.refunded")[0].json()["data"]["taskId"],
        refunded_task.as_str()
    );
    assert_eq!(
        events_of(&seller_got, "dispute.resolved")[0].json()["data"]["disputeStatus"],
        "withdrawn"
    );
}
