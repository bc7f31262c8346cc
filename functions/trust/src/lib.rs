//! `trust`: the Trust API.
//!
//! - `POST /api/v1/trust/keys` (owner): a new key → 201 `{id, name, key, createdAt}`; the
//!   secret `tst_…` is shown this once and stored only as its SHA-256
//! - `GET  /api/v1/trust/keys` (owner): its keys, newest first, paginated, never the
//!   secret nor its hash
//! - `POST /api/v1/trust/keys/{id}/revoke` (owner): the key stops working at once
//! - `GET  /api/v1/trust/agents/{agentId}` (`X-Trust-API-Key`): the agent's trust report
//!   with a recommendation; `TRUST_DAILY_LIMIT` requests per key per UTC day

use std::sync::Arc;

use aicity_domain::embassy::AuditTarget;
use aicity_domain::identity::secrets::{generate_trust_key, hash_secret};
use aicity_domain::ids::{AgentId, TrustKeyId};
use aicity_domain::task::timing::Clock;
use aicity_domain::trust::{
    CreateTrustKey, DEFAULT_DAILY_LIMIT, MAX_ACTIVE_KEYS, TrustKey, TrustReport,
};
use aicity_domain::{ApiError, ErrorCode, FieldError, timestamps};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, TrustQuota};
use aicity_http::{Context, PageRequest, created, json_body, listed, ok, path_param, route_key};
use aicity_store::StoreError;
use aicity_store::agents;
use aicity_store::config::MissingEnv;
use aicity_store::trust_keys::{self, Revocation, TrustKeyRecord};
use lambda_http::{Body, Request, Response};
use serde_json::json;

const MAX_BODY: usize = 4 * 1024;

pub struct Trust {
    pub ctx: Context,
    pub clock: Arc<dyn Clock>,
    /// Requests per key per UTC day.
    pub daily_limit: u32,
}

/// `TRUST_DAILY_LIMIT` (at least 1), [`DEFAULT_DAILY_LIMIT`] when unset.
pub fn daily_limit_from_env() -> Result<u32, MissingEnv> {
    parse_daily_limit(std::env::var("TRUST_DAILY_LIMIT").ok().as_deref())
}

fn parse_daily_limit(value: Option<&str>) -> Result<u32, MissingEnv> {
    match value.map(str::trim) {
        Some(value) if !value.is_empty() => value
            .parse()
            .ok()
            .filter(|limit| *limit >= 1)
            .ok_or(MissingEnv("TRUST_DAILY_LIMIT")),
        _ => Ok(DEFAULT_DAILY_LIMIT),
    }
}

pub async fn handle(trust: &Trust, request: Request) -> Result<Response<Body>, ApiError> {
    match route_key(&request).as_deref() {
        Some("POST /api/v1/trust/keys") => create_key(trust, &request).await,
        Some("GET /api/v1/trust/keys") => list_keys(trust, &request).await,
        Some("POST /api/v1/trust/keys/{id}/revoke") => revoke_key(trust, &request).await,
        Some("GET /api/v1/trust/agents/{agentId}") => report(trust, &request).await,
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

fn now(trust: &Trust) -> String {
    timestamps::format(trust.clock.now())
}

async fn create_key(trust: &Trust, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &trust.ctx;
    let owner = auth::owner(ctx, request).await?;
    let body: CreateTrustKey = json_body(request, MAX_BODY)?;
    let secret = generate_trust_key();
    let record = TrustKeyRecord {
        key: TrustKey::new(&body.name, &now(trust)),
        owner_id: owner.owner.id,
        key_hash: hash_secret(&secret),
    };
    // Never the secret nor its hash.
    let audit = Auditor::owner(owner.owner.id, request).item(
        &ctx.table,
        "trust_key.created",
        AuditTarget::new("trust_key", record.key.id),
        None,
        json!({ "name": record.key.name }),
    )?;
    match trust_keys::create_with(ctx.db(), &ctx.table, &record, MAX_ACTIVE_KEYS, vec![audit]).await
    {
        Ok(()) => {}
        Err(err) if err.failed_labels() == ["count"] => {
            return Err(ApiError::validation(vec![FieldError::new(
                "body",
                format!(
                    "an owner may hold at most {MAX_ACTIVE_KEYS} Trust API keys that are not revoked; revoke one first"
                ),
            )]));
        }
        Err(err) => return Err(err.into()),
    }
    created(json!({
        "id": record.key.id,
        "name": record.key.name,
        "key": secret,
        "createdAt": record.key.created_at,
    }))
}

async fn list_keys(trust: &Trust, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &trust.ctx;
    let owner = auth::owner(ctx, request).await?;
    let page = PageRequest::from_request(request)?;
    let keys =
        trust_keys::list_by_owner(ctx.db(), &ctx.table, &owner.owner.id, &page.ask()).await?;
    listed(keys)
}

fn key_not_found() -> ApiError {
    ApiError::with_message(
        ErrorCode::TrustApiKeyNotFound,
        "You have no Trust API key with this id",
    )
}

async fn revoke_key(trust: &Trust, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &trust.ctx;
    let owner = auth::owner(ctx, request).await?;
    let id: TrustKeyId = path_param(request, "id")?
        .parse()
        .map_err(|_| key_not_found())?;
    let auditor = Auditor::owner(owner.owner.id, request);
    let audit = |record: &TrustKeyRecord| {
        let entry = auditor.entry(
            "trust_key.revoked",
            AuditTarget::new("trust_key", record.key.id),
            None,
            json!({ "name": record.key.name }),
        );
        Ok(vec![aicity_store::embassy::audit_item(&ctx.table, &entry)?])
    };
    let revocation = trust_keys::revoke_with(
        ctx.db(),
        &ctx.table,
        &owner.owner.id,
        &id,
        &now(trust),
        audit,
    )
    .await?;
    match revocation {
        Revocation::Revoked(record) => ok(record.key),
        Revocation::NotFound => Err(key_not_found()),
        Revocation::AlreadyRevoked => Err(ApiError::new(ErrorCode::TrustApiKeyAlreadyRevoked)),
    }
}

async fn report(trust: &Trust, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &trust.ctx;
    let at = trust.clock.now();
    auth::trust_key(
        ctx,
        request,
        TrustQuota {
            per_day: trust.daily_limit,
            now: at,
        },
    )
    .await?;
    let agent_not_found =
        || ApiError::with_message(ErrorCode::AgentNotFound, "No agent with this id");
    let id: AgentId = path_param(request, "agentId")?
        .parse()
        .map_err(|_| agent_not_found())?;
    let record = match agents::get(ctx.db(), &ctx.table, &id).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => return Err(agent_not_found()),
        Err(err) => return Err(err.into()),
    };
    ok(TrustReport::of(&record.agent, &timestamps::format(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_limit_defaults_and_must_be_a_positive_number() {
        assert_eq!(parse_daily_limit(None).unwrap(), DEFAULT_DAILY_LIMIT);
        assert_eq!(parse_daily_limit(Some(" ")).unwrap(), DEFAULT_DAILY_LIMIT);
        assert_eq!(parse_daily_limit(Some(" 5 ")).unwrap(), 5);
        assert!(parse_daily_limit(Some("0")).is_err());
        assert!(parse_daily_limit(Some("-1")).is_err());
        assert!(parse_daily_limit(Some("lots")).is_err());
    }
}
