//! Retry behaviour and typed errors against a local fake of the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aicity_sdk::{AgentCity, Error};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::get;
use serde_json::json;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn envelope(code: &str, details: serde_json::Value) -> String {
    json!({"success": false, "error": {"code": code, "message": "m", "details": details}})
        .to_string()
}

/// 429 with Retry-After: 1, then 503, then 200.
async fn flaky(State(calls): State<Arc<AtomicUsize>>) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    match calls.fetch_add(1, Ordering::SeqCst) {
        0 => {
            headers.insert("retry-after", HeaderValue::from_static("1"));
            (
                StatusCode::TOO_MANY_REQUESTS,
                headers,
                envelope("RATE_LIMITED", json!({"retryAfter": 1})),
            )
        }
        1 => (
            StatusCode::SERVICE_UNAVAILABLE,
            headers,
            envelope("SERVICE_UNAVAILABLE", json!({})),
        ),
        _ => (
            StatusCode::OK,
            headers,
            json!({"success": true, "data": {"displayName": "ok"}}).to_string(),
        ),
    }
}

#[tokio::test]
async fn retries_a_429_after_retry_after_then_a_503_then_succeeds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let base = serve(
        axum::Router::new()
            .route("/api/v1/agents/me", get(flaky))
            .with_state(calls.clone()),
    )
    .await;
    let city = AgentCity::builder()
        .api_key("ac_live_x")
        .base_url(&base)
        .backoff(Duration::from_millis(50))
        .build()
        .unwrap();
    let started = Instant::now();
    let me = city.agents().me().await.unwrap();
    assert_eq!(me["displayName"], "ok");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "honoured Retry-After"
    );

    let calls = Arc::new(AtomicUsize::new(0));
    let base = serve(
        axum::Router::new()
            .route("/api/v1/agents/me", get(flaky))
            .with_state(calls.clone()),
    )
    .await;
    let impatient = AgentCity::builder()
        .api_key("ac_live_x")
        .base_url(&base)
        .retries(0)
        .build()
        .unwrap();
    match impatient.agents().me().await {
        Err(Error::RateLimit {
            retry_after,
            failure,
        }) => {
            assert_eq!(retry_after, Some(1));
            assert_eq!(failure.code, "RATE_LIMITED");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry left");
}

#[tokio::test]
async fn errors_are_typed_by_status_with_code_and_details() {
    let app = axum::Router::new()
        .route(
            "/api/v1/vault/pool",
            get(|| async {
                (
                    StatusCode::PAYMENT_REQUIRED,
                    envelope(
                        "INSUFFICIENT_CREDITS",
                        json!({"required": 500, "available": 200}),
                    ),
                )
            }),
        )
        .route(
            "/api/v1/agents/me",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    envelope("INVALID_API_KEY", json!({})),
                )
            }),
        );
    let base = serve(app).await;
    let city = AgentCity::builder()
        .owner_token("t")
        .api_key("k")
        .base_url(&base)
        .build()
        .unwrap();
    match city.vault().pool().await {
        Err(Error::PaymentRequired(failure)) => {
            assert_eq!(failure.code, "INSUFFICIENT_CREDITS");
            assert_eq!(failure.details, json!({"required": 500, "available": 200}));
        }
        other => panic!("{other:?}"),
    }
    let err = city.agents().me().await.unwrap_err();
    assert!(matches!(err, Error::Authentication(_)));
    assert_eq!(err.code(), Some("INVALID_API_KEY"));
    assert!(!err.is_retryable());

    let nobody = AgentCity::builder().base_url(&base).build().unwrap();
    assert!(
        matches!(nobody.agents().me().await, Err(Error::Authentication(_))),
        "no key, no call"
    );
}

/// A server that reads each request in full and hangs up without answering: the
/// request reached it, the answer was lost. Returns the base URL and the requests read
/// (their head: request line and headers).
async fn hangs_up() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut read = Vec::new();
                let mut buffer = [0u8; 4096];
                let head_end = loop {
                    if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buffer[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while read.len() < head_end + length {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read.extend_from_slice(&buffer[..n]),
                    }
                }
                seen.lock().unwrap().push(head);
                // Dropped here: closed with no answer.
            });
        }
    });
    (base, heads)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn network_errors_are_retried_then_reported() {
    // A GET whose answer is lost: the first try and both retries, then the error.
    let (base, heads) = hangs_up().await;
    let city = AgentCity::builder()
        .api_key("k")
        .base_url(&base)
        .retries(2)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let err = city.agents().me().await.unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    let tries = heads.lock().unwrap().clone();
    assert_eq!(tries.len(), 3, "one try and two retries: {tries:#?}");
    assert!(
        tries
            .iter()
            .all(|h| h.starts_with("GET /api/v1/agents/me ")),
        "{tries:#?}"
    );

    // A submit always carries an Idempotency-Key: retried too, with the same key.
    let (base, heads) = hangs_up().await;
    let owner = AgentCity::builder()
        .owner_token("t")
        .base_url(&base)
        .retries(2)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let task = aicity_sdk::resources::SubmitTask {
        task_type: "code_review".into(),
        max_budget: 100,
        input: json!({"description": "d"}),
        agent_id: None,
        parent_task_id: None,
    };
    let err = owner.tasks().submit(&task, None).await.unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    let tries = heads.lock().unwrap().clone();
    assert_eq!(tries.len(), 3, "{tries:#?}");
    let key = header(&tries[0], "idempotency-key").expect("a key");
    assert!(
        tries
            .iter()
            .all(|h| h.starts_with("POST /api/v1/tasks ")
                && header(h, "idempotency-key") == Some(key)),
        "{tries:#?}"
    );

    // A POST without a key that may have reached the server is not sent again.
    let (base, heads) = hangs_up().await;
    let owner = AgentCity::builder()
        .owner_token("t")
        .base_url(&base)
        .retries(2)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let err = owner
        .agents()
        .register(&json!({"displayName": "x"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Network(_)), "{err:?}");
    let tries = heads.lock().unwrap().clone();
    assert_eq!(
        tries.len(),
        1,
        "registering twice would make two agents: {tries:#?}"
    );

    // Nobody listening: reported as a network error.
    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let city = AgentCity::builder()
        .api_key("k")
        .base_url(&nowhere)
        .retries(1)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    assert!(matches!(city.agents().me().await, Err(Error::Network(_))));
}

/// Answers 503 `times` times, then 201; records every request's Idempotency-Key.
#[derive(Clone, Default)]
struct Recorder {
    keys: Arc<std::sync::Mutex<Vec<Option<String>>>>,
    fail_first: usize,
}

async fn record(State(recorder): State<Recorder>, headers: HeaderMap) -> (StatusCode, String) {
    let mut keys = recorder.keys.lock().unwrap();
    keys.push(
        headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    if keys.len() <= recorder.fail_first {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            envelope("SERVICE_UNAVAILABLE", json!({})),
        );
    }
    let task = json!({"id": "task_01J00000000000000000000000", "taskType": "code_review",
        "status": "submitted", "maxBudget": 100, "input": {"description": "d"},
        "callerOwnerId": "usr_01J00000000000000000000000", "directHire": false,
        "routingAttempts": 0, "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z"});
    (
        StatusCode::CREATED,
        json!({"success": true, "data": task}).to_string(),
    )
}

fn client(base: &str) -> AgentCity {
    AgentCity::builder()
        .owner_token("t")
        .base_url(base)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_retried_submit_carries_one_idempotency_key_on_every_try() {
    let recorder = Recorder {
        fail_first: 2,
        ..Recorder::default()
    };
    let base = serve(
        axum::Router::new()
            .route("/api/v1/tasks", axum::routing::post(record))
            .with_state(recorder.clone()),
    )
    .await;
    let task = aicity_sdk::resources::SubmitTask {
        task_type: "code_review".into(),
        max_budget: 100,
        input: json!({"description": "d"}),
        agent_id: None,
        parent_task_id: None,
    };
    client(&base).tasks().submit(&task, None).await.unwrap();
    let keys = recorder.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 3, "two 503s, then the answer");
    let first = keys[0].clone().expect("a key the SDK made up");
    assert!(first.starts_with("sdk_") && first.len() == 36, "{first}");
    assert!(
        keys.iter().all(|k| k.as_deref() == Some(first.as_str())),
        "{keys:?}"
    );

    // The caller's own key wins; a second call gets a new key of its own.
    recorder.keys.lock().unwrap().clear();
    client(&base)
        .tasks()
        .submit(&task, Some("mine-1"))
        .await
        .unwrap();
    client(&base).tasks().submit(&task, None).await.unwrap();
    let keys = recorder.keys.lock().unwrap().clone();
    assert_eq!(keys[0].as_deref(), Some("mine-1"));
    assert_ne!(keys.last().unwrap(), &keys[0]);
}

#[tokio::test]
async fn a_post_without_a_key_is_not_retried_after_a_5xx() {
    let recorder = Recorder {
        fail_first: 5,
        ..Recorder::default()
    };
    let base = serve(
        axum::Router::new()
            .route("/api/v1/agents", axum::routing::post(record))
            .with_state(recorder.clone()),
    )
    .await;
    let err = client(&base)
        .agents()
        .register(&json!({"displayName": "x"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server(_)), "{err:?}");
    // Registering twice would make two agents: the one try is all it gets.
    assert_eq!(recorder.keys.lock().unwrap().len(), 1);
}
