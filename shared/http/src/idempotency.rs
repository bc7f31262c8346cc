//! `Idempotency-Key` on money-moving POSTs: same key and same body → the stored
//! response again (`Idempotency-Replayed: true`); same key, other body → 409.

use std::future::Future;

use aicity_domain::identity::secrets::hash_secret;
use aicity_domain::{ApiError, ErrorCode};
use aicity_store::idempotency::{self, Begin};
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;

use crate::context::Context;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotency-replayed";
const MAX_KEY_CHARS: usize = 255;

fn body_text(body: &Body) -> String {
    match body {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    }
}

/// Runs `handler` at most once per key within `scope` (e.g. the caller's owner id and
/// the route). The handler gets the operation id to write its effect under: the same
/// on every try of one key (so a try after a crash finds what an earlier one
/// committed), `None` without the header (then it simply runs).
pub async fn idempotent<F, Fut>(
    ctx: &Context,
    request: &Request,
    scope: &str,
    handler: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(Option<String>) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let Some(raw) = request.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return handler(None).await;
    };
    let key = raw.to_str().unwrap_or_default().trim();
    if key.is_empty()
        || key.chars().count() > MAX_KEY_CHARS
        || !key.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
        ));
    }
    let fingerprint = hash_secret(&format!(
        "{} {}\n{}",
        request.method(),
        request.uri().path(),
        body_text(request.body())
    ));
    let now = OffsetDateTime::now_utc();
    let fresh = ulid::Ulid::generate().to_string();
    let operation =
        match idempotency::begin(ctx.db(), &ctx.table, scope, key, &fingerprint, &fresh, now)
            .await?
        {
            Begin::Proceed { operation } => operation,
            Begin::Replay { status, body } => {
                let mut response = Response::new(Body::Text(body));
                *response.status_mut() =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                let headers = response.headers_mut();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                headers.insert(REPLAYED_HEADER, http::HeaderValue::from_static("true"));
                return Ok(response);
            }
            Begin::Mismatch => {
                return Err(ApiError::with_message(
                    ErrorCode::IdempotencyKeyReused,
                    "This Idempotency-Key was used with a different request",
                ));
            }
            Begin::InProgress => {
                return Err(ApiError::with_message(
                    ErrorCode::IdempotencyInProgress,
                    "A request with this Idempotency-Key is still being processed",
                ));
            }
        };
    let result = handler(Some(operation)).await;
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(err) => err.http_status(),
    };
    let outcome = match &result {
        Ok(response) if response.status().is_success() => {
            idempotency::complete(
                ctx.db(),
                &ctx.table,
                scope,
                key,
                status,
                &body_text(response.body()),
            )
            .await
        }
        // Our failure: it may have taken effect. Keep the operation id and let a retry
        // take the key over at once.
        _ if status >= 500 => idempotency::release(ctx.db(), &ctx.table, scope, key).await,
        // Refused: nothing happened, the client may fix the cause and retry.
        _ => idempotency::abandon(ctx.db(), &ctx.table, scope, key).await,
    };
    if let Err(err) = outcome {
        tracing::error!(error = %err, "idempotency record update failed");
    }
    result
}
