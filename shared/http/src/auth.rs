//! One auth layer for every function: who is calling, and may they call this often.
//!
//! - `X-API-Key: ac_live_…` → an active agent.
//! - `Authorization: Bearer <session token>` → an active owner.
//! - `X-Trust-API-Key: tst_…` → a Trust API key not revoked (Trust API routes only;
//!   nothing else stands in for it, and it stands in for nothing else).
//!
//! Secrets are looked up by their SHA-256 only. Each authenticated caller is rate
//! limited per principal (`owner:<ownerId>` for all of an owner's sessions,
//! `agent:<agentId>` whatever its key), with the batched limiter; a Trust API key per UTC
//! day. A credential sent and not matched (an unknown, deactivated or rotated-out key,
//! an unknown or expired session, an unknown Trust API key) counts against the client
//! IP's failed authentications (strict counter); past `failed_auth_per_ip` in
//! `failed_auth_window`, the IP's requests get `429` before their credentials are looked
//! up, by every instance that saw the limit reached (the others refuse its next
//! failure). A request without credentials is not counted: it costs no lookup.
//! An agent acts for its owner: a suspended owner's agents get `403 OWNER_SUSPENDED`
//! (the owner's status read at most every `owner_status_cache` per instance).

use aicity_domain::identity::secrets::{TRUST_KEY_PREFIX, hash_secret};
use aicity_domain::identity::{Agent, AgentStatus, Owner, OwnerStatus};
use aicity_domain::{ApiError, ErrorCode};
use aicity_store::agents::{self, AgentRecord};
use aicity_store::rate_limit::RateDecision;
use aicity_store::sessions::{self, Session, SessionLookup};
use aicity_store::trust_keys::{self, TrustKeyRecord};
use aicity_store::{StoreError, owners};
use lambda_http::Request;
use serde_json::json;
use time::OffsetDateTime;

use crate::context::Context;
use crate::limiter::{self, Batching, Rule};

pub const API_KEY_HEADER: &str = "x-api-key";
pub const TRUST_API_KEY_HEADER: &str = "x-trust-api-key";

/// An owner with a live session.
#[derive(Debug, Clone)]
pub struct OwnerCaller {
    pub owner: Owner,
    pub session: Session,
    /// SHA-256 of the token, to revoke the session on sign-out.
    pub token_hash: String,
}

/// Who made the request.
// One per request, moved rather than copied and never collected: the agent variant's
// size costs nothing worth a box (and a box would reach into every handler's match).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Caller {
    Owner(OwnerCaller),
    Agent(AgentRecord),
}

impl Caller {
    /// The owner on whose behalf the caller acts (an agent acts for its owner).
    pub fn owner_id(&self) -> aicity_domain::ids::OwnerId {
        match self {
            Caller::Owner(owner) => owner.owner.id,
            Caller::Agent(record) => record.agent.owner_id,
        }
    }
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bearer(request: &Request) -> Option<&str> {
    let value = header(request, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Counts one request for `subject` against `limit` per `ctx.limits.window` with the
/// batched limiter (most requests cost no write; see [`limiter`]); over the limit is
/// `RATE_LIMITED` with the seconds to wait in `Retry-After`.
pub async fn rate_limit(ctx: &Context, subject: &str, limit: u32) -> Result<(), ApiError> {
    let rule = Rule {
        limit,
        window: ctx.limits.window,
    };
    limiter::batched(
        ctx.db(),
        &ctx.table,
        subject,
        rule,
        batching(ctx),
        OffsetDateTime::now_utc(),
    )
    .await
}

/// Counts one request for `subject` against `limit` per `window` exactly (one
/// conditional write per hit until the limit, none after): for security counters.
pub async fn rate_limit_strict(
    ctx: &Context,
    subject: &str,
    limit: u32,
    window: std::time::Duration,
) -> Result<(), ApiError> {
    let rule = Rule { limit, window };
    limiter::strict(
        ctx.db(),
        &ctx.table,
        subject,
        rule,
        OffsetDateTime::now_utc(),
    )
    .await
}

/// The batched limiter's settings.
pub fn batching(ctx: &Context) -> Batching {
    Batching {
        batch: ctx.limits.rate_limit_batch,
        flush_after: ctx.limits.rate_limit_flush,
    }
}

/// Requests from one client IP to a route callable without credentials, limited with
/// the batched limiter (`anonymous_per_minute`).
pub async fn limit_anonymous(ctx: &Context, request: &Request) -> Result<(), ApiError> {
    limiter::anonymous(ctx.db(), &ctx.table, &ctx.limits, &source_ip(request)).await
}

fn failed_auth_subject(request: &Request) -> String {
    format!("authfail-ip:{}", source_ip(request))
}

fn failed_auth_rule(ctx: &Context) -> Rule {
    Rule {
        limit: ctx.limits.failed_auth_per_ip,
        window: ctx.limits.failed_auth_window,
    }
}

/// `429` before any lookup when this instance saw the client IP's failed
/// authentications reach the limit in the current window.
fn refuse_failing_ip(ctx: &Context, request: &Request) -> Result<(), ApiError> {
    match limiter::known_limited(
        &ctx.table,
        &failed_auth_subject(request),
        failed_auth_rule(ctx),
        OffsetDateTime::now_utc(),
    ) {
        Some(retry_after) => Err(limiter::limited(retry_after)),
        None => Ok(()),
    }
}

/// Counts a failed authentication against the client IP: `failure` itself, or `429`
/// once the IP is past its limit. A counter that cannot be written does not hide the
/// failure.
async fn failed(ctx: &Context, request: &Request, failure: ApiError) -> ApiError {
    let counted = limiter::strict(
        ctx.db(),
        &ctx.table,
        &failed_auth_subject(request),
        failed_auth_rule(ctx),
        OffsetDateTime::now_utc(),
    )
    .await;
    match counted {
        Ok(()) => failure,
        Err(err) if err.code == ErrorCode::RateLimited => err,
        Err(err) => {
            tracing::warn!(error = %err, "failed authentication not counted");
            failure
        }
    }
}

/// The status of the owner an agent acts for, from this instance's memory when read
/// less than `owner_status_cache` ago; `None` when the owner is gone.
async fn agent_owner_status(
    ctx: &Context,
    owner_id: &aicity_domain::ids::OwnerId,
) -> Result<Option<OwnerStatus>, ApiError> {
    let key = owner_id.to_string();
    if let Some(status) =
        limiter::cached_owner_status(&ctx.table, &key, ctx.limits.owner_status_cache)
    {
        return Ok(Some(status));
    }
    match owners::get(ctx.db(), &ctx.table, owner_id).await {
        Ok(record) => {
            limiter::remember_owner_status(&ctx.table, &key, record.owner.status);
            Ok(Some(record.owner.status))
        }
        Err(StoreError::NotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The calling agent (`X-API-Key`).
pub async fn agent(ctx: &Context, request: &Request) -> Result<AgentRecord, ApiError> {
    let key =
        header(request, API_KEY_HEADER).ok_or_else(|| ApiError::new(ErrorCode::MissingApiKey))?;
    refuse_failing_ip(ctx, request)?;
    let key_hash = hash_secret(key);
    let record = match agents::by_api_key(ctx.db(), &ctx.table, &key_hash).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => {
            return Err(failed(ctx, request, ApiError::new(ErrorCode::InvalidApiKey)).await);
        }
        Err(err) => return Err(err.into()),
    };
    match record.agent.status {
        AgentStatus::Active => {}
        // The seed: a deactivated agent's key "does not match any active agent".
        AgentStatus::Deactivated => {
            return Err(failed(ctx, request, ApiError::new(ErrorCode::InvalidApiKey)).await);
        }
        AgentStatus::Suspended => return Err(ApiError::new(ErrorCode::AgentSuspended)),
    }
    match agent_owner_status(ctx, &record.agent.owner_id).await? {
        Some(OwnerStatus::Active) => {}
        Some(OwnerStatus::Suspended) => return Err(ApiError::new(ErrorCode::OwnerSuspended)),
        // A key acts for its owner; without one it matches nothing.
        None => return Err(ApiError::new(ErrorCode::InvalidApiKey)),
    }
    rate_limit(
        ctx,
        &format!("agent:{}", record.agent.id),
        ctx.limits.per_caller,
    )
    .await?;
    Ok(record)
}

/// The calling owner (`Authorization: Bearer`).
pub async fn owner(ctx: &Context, request: &Request) -> Result<OwnerCaller, ApiError> {
    let token = bearer(request).ok_or_else(|| {
        ApiError::with_message(
            ErrorCode::Unauthorized,
            "A Bearer session token is required",
        )
    })?;
    refuse_failing_ip(ctx, request)?;
    let token_hash = hash_secret(token);
    let session =
        match sessions::lookup(ctx.db(), &ctx.table, &token_hash, OffsetDateTime::now_utc())
            .await
            .map_err(ApiError::from)?
        {
            SessionLookup::Valid(session) => session,
            SessionLookup::Expired => {
                return Err(failed(ctx, request, ApiError::new(ErrorCode::SessionExpired)).await);
            }
            SessionLookup::Unknown => {
                return Err(failed(ctx, request, ApiError::new(ErrorCode::Unauthorized)).await);
            }
        };
    let owner = match owners::get(ctx.db(), &ctx.table, &session.owner_id).await {
        Ok(record) => record.owner,
        Err(StoreError::NotFound) => return Err(ApiError::new(ErrorCode::OwnerNotFound)),
        Err(err) => return Err(err.into()),
    };
    limiter::remember_owner_status(&ctx.table, &owner.id.to_string(), owner.status);
    if owner.status == OwnerStatus::Suspended {
        return Err(ApiError::new(ErrorCode::OwnerSuspended));
    }
    rate_limit(ctx, &format!("owner:{}", owner.id), ctx.limits.per_caller).await?;
    Ok(OwnerCaller {
        owner,
        session,
        token_hash,
    })
}

/// A Trust API key's quota: `per_day` requests per UTC day, this one counted at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustQuota {
    pub per_day: u32,
    pub now: OffsetDateTime,
}

/// `lastUsedAt` is written at most this often per key.
const TRUST_KEY_TOUCH_INTERVAL: time::Duration = time::Duration::minutes(1);

/// The calling Trust API client (`X-Trust-API-Key`), its request counted against the
/// key's daily quota (`429 RATE_LIMITED` with `Retry-After` until the next midnight UTC
/// once it is used up). Owner tokens and agent keys are not Trust API keys: sent in
/// this header they match nothing (`INVALID_TRUST_API_KEY`), and sent in their own
/// headers they are not read here (`MISSING_TRUST_API_KEY`).
pub async fn trust_key(
    ctx: &Context,
    request: &Request,
    quota: TrustQuota,
) -> Result<TrustKeyRecord, ApiError> {
    let key = header(request, TRUST_API_KEY_HEADER)
        .ok_or_else(|| ApiError::new(ErrorCode::MissingTrustApiKey))?;
    refuse_failing_ip(ctx, request)?;
    if !key.starts_with(TRUST_KEY_PREFIX) {
        return Err(failed(ctx, request, ApiError::new(ErrorCode::InvalidTrustApiKey)).await);
    }
    let record = match trust_keys::by_hash(ctx.db(), &ctx.table, &hash_secret(key)).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => {
            return Err(failed(ctx, request, ApiError::new(ErrorCode::InvalidTrustApiKey)).await);
        }
        Err(err) => return Err(err.into()),
    };
    // A key acts for its owner: a suspended owner's keys stop with it.
    match owners::get(ctx.db(), &ctx.table, &record.owner_id).await {
        Ok(owner) if owner.owner.status == OwnerStatus::Suspended => {
            return Err(ApiError::new(ErrorCode::OwnerSuspended));
        }
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(ApiError::new(ErrorCode::InvalidTrustApiKey)),
        Err(err) => return Err(err.into()),
    }
    let decision = trust_keys::count_request(
        ctx.db(),
        &ctx.table,
        &record.key.id,
        quota.per_day,
        quota.now,
    )
    .await
    .map_err(ApiError::from)?;
    if let RateDecision::Limited { retry_after } = decision {
        return Err(ApiError::with_message(
            ErrorCode::RateLimited,
            format!(
                "This key's {} requests for today (UTC) are used up; retry after {retry_after} seconds",
                quota.per_day
            ),
        )
        .details(json!({ "retryAfter": retry_after, "limit": quota.per_day })));
    }
    let stale = record
        .key
        .last_used_at
        .as_deref()
        .and_then(aicity_domain::timestamps::parse)
        .is_none_or(|at| quota.now - at >= TRUST_KEY_TOUCH_INTERVAL);
    if stale {
        let now = aicity_domain::timestamps::format(quota.now);
        // Bookkeeping only: the request goes on whatever happens to it.
        if let Err(err) = trust_keys::touch(ctx.db(), &ctx.table, &record, &now).await {
            tracing::warn!(error = %err, key = %record.key.id, "lastUsedAt not written");
        }
    }
    Ok(record)
}

/// Either kind of caller; an API key wins when both are sent.
pub async fn caller(ctx: &Context, request: &Request) -> Result<Caller, ApiError> {
    if header(request, API_KEY_HEADER).is_some() {
        return agent(ctx, request).await.map(Caller::Agent);
    }
    if bearer(request).is_some() {
        return owner(ctx, request).await.map(Caller::Owner);
    }
    Err(ApiError::with_message(
        ErrorCode::Unauthorized,
        "Send an X-API-Key or an Authorization: Bearer session token",
    ))
}

/// Checks again a caller authenticated earlier, for a connection that outlives its
/// request (the task stream): the answer a new request with the same credentials would
/// get (a rotated or deactivated key, a signed-out or expired session, a suspended
/// agent or owner), read by id and by the secret's hash, neither rate limited nor
/// counted as a failed authentication (the connection was both when it opened).
/// Returns the caller as it is now.
pub async fn recheck(ctx: &Context, caller: &Caller) -> Result<Caller, ApiError> {
    match caller {
        Caller::Agent(before) => {
            let record = match agents::get(ctx.db(), &ctx.table, &before.agent.id).await {
                Ok(record) => record,
                Err(StoreError::NotFound) => return Err(ApiError::new(ErrorCode::InvalidApiKey)),
                Err(err) => return Err(err.into()),
            };
            // A rotation replaces the hash: the key this caller sent matches nothing now.
            if record.api_key_hash != before.api_key_hash {
                return Err(ApiError::new(ErrorCode::InvalidApiKey));
            }
            match record.agent.status {
                AgentStatus::Active => {}
                AgentStatus::Deactivated => return Err(ApiError::new(ErrorCode::InvalidApiKey)),
                AgentStatus::Suspended => return Err(ApiError::new(ErrorCode::AgentSuspended)),
            }
            match agent_owner_status(ctx, &record.agent.owner_id).await? {
                Some(OwnerStatus::Active) => Ok(Caller::Agent(record)),
                Some(OwnerStatus::Suspended) => Err(ApiError::new(ErrorCode::OwnerSuspended)),
                None => Err(ApiError::new(ErrorCode::InvalidApiKey)),
            }
        }
        Caller::Owner(before) => {
            let now = OffsetDateTime::now_utc();
            let session = match sessions::lookup(ctx.db(), &ctx.table, &before.token_hash, now)
                .await
                .map_err(ApiError::from)?
            {
                SessionLookup::Valid(session) => session,
                SessionLookup::Expired => return Err(ApiError::new(ErrorCode::SessionExpired)),
                SessionLookup::Unknown => return Err(ApiError::new(ErrorCode::Unauthorized)),
            };
            let owner = match owners::get(ctx.db(), &ctx.table, &session.owner_id).await {
                Ok(record) => record.owner,
                Err(StoreError::NotFound) => return Err(ApiError::new(ErrorCode::OwnerNotFound)),
                Err(err) => return Err(err.into()),
            };
            limiter::remember_owner_status(&ctx.table, &owner.id.to_string(), owner.status);
            if owner.status == OwnerStatus::Suspended {
                return Err(ApiError::new(ErrorCode::OwnerSuspended));
            }
            Ok(Caller::Owner(OwnerCaller {
                owner,
                session,
                token_hash: before.token_hash.clone(),
            }))
        }
    }
}

/// The client's IP as API Gateway saw it.
pub fn source_ip(request: &Request) -> String {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .http
            .source_ip
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        _ => "unknown".into(),
    }
}

/// An agent acting for someone else's owner is refused; helper for handlers.
pub fn owns(owner: &Owner, agent: &Agent) -> bool {
    agent.owner_id == owner.id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = http::Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(lambda_http::Body::Empty).unwrap()
    }

    #[test]
    fn reads_bearer_tokens_case_insensitively() {
        assert_eq!(
            bearer(&request(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer(&request(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(bearer(&request(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&request(&[("authorization", "Bearer ")])), None);
        assert_eq!(bearer(&request(&[])), None);
    }
}
