//! A minimal Lambda Runtime API (the part a function's runtime client speaks): it hands
//! out one event and records when the runtime asked for it and when the answer came.
//!
//! One server per spawned process, on an ephemeral port of 127.0.0.1, so a late request
//! of a previous run can never be mistaken for this run's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Notify;

/// The request id of the one invocation handed out.
pub const REQUEST_ID: &str = "bench-00000000-0000-4000-8000-000000000001";

/// How the invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `POST /invocation/{id}/response`, with the bytes posted.
    Response(Bytes),
    /// `POST /invocation/{id}/error`: the handler failed (the body says why).
    Error(String),
    /// `POST /init/error`: the function could not start.
    InitError(String),
}

/// When things happened, as the server saw them.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// The first `GET /invocation/next` arrived: the end of init.
    pub first_next: Option<Instant>,
    /// Its answer (the event) was handed to the HTTP layer.
    pub handed_out: Option<Instant>,
    /// The whole response (or error) body was received.
    pub answered: Option<Instant>,
    pub outcome: Option<Outcome>,
}

struct Shared {
    event: Bytes,
    timeline: Mutex<Timeline>,
    done: Notify,
}

/// A running Runtime API; dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves `event` (JSON bytes) as the first invocation.
    pub async fn start(event: Vec<u8>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            event: Bytes::from(event),
            timeline: Mutex::new(Timeline::default()),
            done: Notify::new(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // Responses (the OpenAPI document, a streamed body) may exceed axum's 2 MB default.
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Waits until the invocation is answered (or init failed).
    pub async fn finished(&self) -> Timeline {
        loop {
            // Registered before the check, so a notification in between is not lost.
            let notified = self.shared.done.notified();
            let timeline = self.timeline();
            if timeline.outcome.is_some() {
                return timeline;
            }
            notified.await;
        }
    }

    pub fn timeline(&self) -> Timeline {
        self.shared.timeline.lock().expect("timeline lock").clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let arrived = Instant::now();
    let first = {
        let mut timeline = shared.timeline.lock().expect("timeline lock");
        let first = timeline.first_next.is_none();
        if first {
            timeline.first_next = Some(arrived);
        }
        first
    };
    if !first {
        // One invocation per process: later polls wait until the process is killed.
        std::future::pending::<()>().await;
    }
    let deadline_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 60_000)
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", REQUEST_ID.to_owned());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
    );
    set("content-type", "application/json".to_owned());
    shared.timeline.lock().expect("timeline lock").handed_out = Some(Instant::now());
    (headers, shared.event.clone()).into_response()
}

fn finish(shared: &Shared, outcome: Outcome) {
    let mut timeline = shared.timeline.lock().expect("timeline lock");
    if timeline.outcome.is_none() {
        timeline.answered = Some(Instant::now());
        timeline.outcome = Some(outcome);
    }
    drop(timeline);
    shared.done.notify_one();
}

async fn response(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    finish(&shared, Outcome::Response(body));
    StatusCode::ACCEPTED
}

async fn error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    finish(
        &shared,
        Outcome::Error(String::from_utf8_lossy(&body).into_owned()),
    );
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    finish(
        &shared,
        Outcome::InitError(String::from_utf8_lossy(&body).into_owned()),
    );
    StatusCode::ACCEPTED
}
