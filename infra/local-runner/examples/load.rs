//! `make bench` (load): local throughput and latency of two reads at 1, 10 and 40
//! concurrent clients.
//!
//! By default every function runs in this process behind the local runner's HTTP
//! gateway (a real HTTP server, the runner's queue pollers running), on the emulator
//! the environment names (`AWS_ENDPOINT_URL`, and `AWS_ENDPOINT_URL_DYNAMODB` for
//! DynamoDB Local), with the request limits raised so the limiter's 429 is not what is
//! measured (its batched counter write still happens). With `BENCH_URL` set
//! (`http://127.0.0.1:4000`) it drives that server instead, e.g. `make dev`, whose
//! limits are its own: start it with the raised limits (`scripts/bench-load.sh` does).
//!
//! It signs up a buyer (and a seller with a reviewer agent, so the buyer can submit a
//! real task), then for each request and level runs `level` clients that each send one
//! request after another for `BENCH_SECONDS` (3) after a short warm-up, and prints
//! req/s and latency percentiles as a markdown table. The clients share the machine
//! (and, in process, the runtime) with the server.
//!
//! Run by `scripts/bench-load.sh`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Requests per minute each raised limit allows here (as `scripts/api-check.sh` raises
/// them for `make dev`).
const RAISED: u32 = 1_000_000;
const LEVELS: [usize; 3] = [1, 10, 40];

/// Where requests go and who makes them.
struct Target {
    base: String,
    http: reqwest::Client,
}

impl Target {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Signs a new owner up and in; returns the session token.
    async fn owner(&self) -> String {
        let email = format!(
            "bench-{}@example.com",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let credentials = json!({"name": "Bench", "email": email, "password": "long-password"});
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/auth/sign-up",
                None,
                Some(credentials),
            )
            .await;
        assert_eq!(status, 201, "sign-up: {body}");
        let credentials = json!({"email": email, "password": "long-password"});
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/auth/sign-in",
                None,
                Some(credentials),
            )
            .await;
        assert_eq!(status, 200, "sign-in: {body}");
        body["data"]["token"].as_str().unwrap().to_owned()
    }

    /// A funded buyer and a task it submitted to a live reviewer: (token, task id).
    async fn buyer_with_task(&self) -> (String, String) {
        let buyer = self.owner().await;
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/vault/pool/top-up",
                Some(&buyer),
                Some(json!({"amount": 100_000})),
            )
            .await;
        assert_eq!(status, 200, "top-up: {body}");
        let seller = self.owner().await;
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/agents",
                Some(&seller),
                Some(json!({
                    "displayName": "Reviewer", "framework": "custom", "description": "Reviews code",
                    "capabilities": [{"category": "code_review", "tags": ["rust"]}],
                    "pricing": {"code_review": 2_500}, "maxConcurrentTasks": 5,
                })),
            )
            .await;
        assert_eq!(status, 201, "register: {body}");
        let agent = body["data"]["agent"]["id"].as_str().unwrap().to_owned();
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/tasks",
                Some(&buyer),
                Some(json!({
                    "taskType": "code_review", "maxBudget": 5_000, "agentId": agent,
                    "input": {"description": "Review the Rust auth module"},
                })),
            )
            .await;
        assert_eq!(status, 201, "submit: {body}");
        (buyer, body["data"]["id"].as_str().unwrap().to_owned())
    }
}

/// One level's run: every request's latency, and the errors.
struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

async fn run(target: &Arc<Target>, path: &str, token: &str, clients: usize, seconds: f64) -> Run {
    // Warm-up: connections opened, caches filled, not measured.
    for _ in 0..clients.max(5) {
        target
            .call(reqwest::Method::GET, path, Some(token), None)
            .await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (target, path, token) = (target.clone(), path.to_owned(), token.to_owned());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let (status, _) = target
                        .call(reqwest::Method::GET, &path, Some(&token), None)
                        .await;
                    latencies.push(sent.elapsed());
                    if status != 200 {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Run {
        latencies: vec![],
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        let (latencies, errors) = worker.await.expect("a client");
        all.latencies.extend(latencies);
        all.errors += errors;
    }
    all.elapsed = started.elapsed();
    all.latencies.sort();
    all
}

/// The nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    // The request log line is formatted as in Lambda (JSON) but not printed: the table
    // is the output.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_target(false)
        .json()
        .flatten_event(true)
        .with_writer(std::io::sink)
        .init();
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let http = reqwest::Client::new();
    // Keeps the in-process world (runner, functions) alive for the run.
    let mut world = None;
    let (target, what) = match std::env::var("BENCH_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) => (
            Target {
                base: url.trim_end_matches('/').to_owned(),
                http,
            },
            format!("{url} (its own functions and rate limits)"),
        ),
        None => {
            let limits = aicity_http::Limits {
                per_caller: RAISED,
                per_ip_auth: RAISED,
                anonymous_per_minute: RAISED,
                failed_auth_per_ip: RAISED,
                sign_in_per_account: RAISED,
                ..aicity_http::Limits::default()
            };
            let knobs = common::Knobs {
                limits: Some(limits),
                ..common::Knobs::default()
            };
            let (running, _parts, _clients) =
                common::start_full(common::world::template(), knobs, |f| Arc::new(f)).await;
            let base = running.base_url.clone();
            world = Some(running);
            let dynamodb = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
                .map(|url| format!("DynamoDB Local at {url}"))
                .unwrap_or_else(|_| "moto".into());
            (
                Target { base, http },
                format!(
                    "every function in process behind the local runner, DynamoDB on {dynamodb}, SQS on moto at {}; \
                     rate limits raised to {RAISED} a minute (per principal, per IP, anonymous, failed auth, sign-in), \
                     as scripts/api-check.sh raises them",
                    std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
                ),
            )
        }
    };
    let target = Arc::new(target);
    let (token, task) = target.buyer_with_task().await;
    println!("## Local throughput and latency ({seconds} s per level)");
    println!();
    println!("Target: {what}.");
    println!(
        "Build: {}.",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimized"
        }
    );
    println!();
    println!(
        "| request | clients | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let requests = [
        ("GET /vault/pool", "/vault/pool".to_owned()),
        ("GET /tasks/{id}", format!("/tasks/{task}")),
    ];
    for (name, path) in &requests {
        for clients in LEVELS {
            let run = run(&target, path, &token, clients, seconds).await;
            let sorted = &run.latencies;
            println!(
                "| {name} | {clients} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                sorted.len(),
                sorted.len() as f64 / run.elapsed.as_secs_f64(),
                percentile(sorted, 50.0),
                percentile(sorted, 90.0),
                percentile(sorted, 99.0),
                percentile(sorted, 100.0),
                run.errors,
            );
        }
    }
    drop(world);
}
