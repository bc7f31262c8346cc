//! `health`: is the API up, can it reach its table, does the queue path work.
//!
//! - `GET  /api/v1/health` reads the table and reports the last canary probe received.
//! - `POST /api/v1/health/probes` records a probe and sends it through the canary queue.
//! - `GET  /api/v1/health/probes/{probeId}` shows whether the consumer received it.
//!
//! All three are callable without credentials: each client IP gets
//! `RATE_LIMIT_ANONYMOUS_PER_MINUTE` (60) of them a minute, then `429 RATE_LIMITED`
//! with `Retry-After` (the batched limiter: most requests cost no write).

use std::time::Instant;

use aicity_domain::ids::ProbeId;
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::auth::source_ip;
use aicity_http::limiter;
use aicity_http::{created, ok, path_param, route_key};
use aicity_store::probe::{self, Probe, ProbeSource};
use aicity_store::{AwsClients, StoreError, config};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;

/// What the function needs, built once per cold start.
#[derive(Clone, Debug)]
pub struct Health {
    pub clients: AwsClients,
    pub table: String,
    pub canary_queue_url: String,
    /// Only `anonymous_per_minute` and the batching are read here.
    pub limits: aicity_http::Limits,
}

impl Health {
    pub async fn from_env() -> Result<Self, config::MissingEnv> {
        Ok(Self {
            clients: AwsClients::from_env().await,
            table: config::env_var("TABLE_NAME")?,
            canary_queue_url: config::env_var("CANARY_QUEUE_URL")?,
            limits: aicity_http::Limits::from_env()?,
        })
    }
}

pub async fn handle(deps: &Health, request: Request) -> Result<Response<Body>, ApiError> {
    let route = route_key(&request);
    let route = route.as_deref();
    if matches!(
        route,
        Some(
            "GET /api/v1/health"
                | "POST /api/v1/health/probes"
                | "GET /api/v1/health/probes/{probeId}"
        )
    ) {
        limiter::anonymous(
            &deps.clients.dynamodb,
            &deps.table,
            &deps.limits,
            &source_ip(&request),
        )
        .await?;
    }
    match route {
        Some("GET /api/v1/health") => status(deps).await,
        Some("POST /api/v1/health/probes") => send_probe(deps).await,
        Some("GET /api/v1/health/probes/{probeId}") => get_probe(deps, &request).await,
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

async fn status(deps: &Health) -> Result<Response<Body>, ApiError> {
    let started = Instant::now();
    let canary = probe::summary(&deps.clients.dynamodb, &deps.table)
        .await
        .map_err(unavailable)?;
    ok(json!({
        // Anonymous: no version (it tells an attacker which advisories apply).
        "status": "ok",
        "checks": {
            "dynamodb": { "status": "ok", "latencyMs": started.elapsed().as_millis() as u64 },
        },
        "canary": canary,
    }))
}

async fn send_probe(deps: &Health) -> Result<Response<Body>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let probe = Probe::new(ProbeSource::Api, now);
    probe::create(&deps.clients.dynamodb, &deps.table, &probe, now)
        .await
        .map_err(unavailable)?;
    // If this send fails the probe stays `sent`, which is exactly what it reports.
    aicity_store::queue::send_json(
        &deps.clients.sqs,
        &deps.canary_queue_url,
        &json!({ "probeId": probe.probe_id }),
    )
    .await
    .map_err(unavailable)?;
    created(probe)
}

async fn get_probe(deps: &Health, request: &Request) -> Result<Response<Body>, ApiError> {
    let id: ProbeId =
        path_param(request, "probeId")?
            .parse()
            .map_err(|e: aicity_domain::ids::InvalidId| {
                ApiError::invalid_field("probeId", e.to_string())
            })?;
    match probe::get(&deps.clients.dynamodb, &deps.table, &id).await {
        Ok(probe) => ok(probe),
        Err(StoreError::NotFound) => Err(ApiError::with_message(
            ErrorCode::NotFound,
            format!("No probe {id}"),
        )),
        Err(err) => Err(unavailable(err)),
    }
}

/// A dependency failed: logged here with its cause, answered as a bare 503.
fn unavailable(err: StoreError) -> ApiError {
    tracing::error!(error = %err, "health dependency failed");
    ApiError::new(ErrorCode::ServiceUnavailable)
}
