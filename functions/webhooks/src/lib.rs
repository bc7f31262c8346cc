//! `webhooks`: subscriptions of an owner (Bearer session) or an agent (X-API-Key), each
//! acting for itself; a subscription belongs to the principal that created it.
//!
//! - `POST /api/v1/webhooks {url, events}` → 201 with the signing secret `whsec_…`,
//!   shown only here (stored sealed, `aicity_store::sealing`)
//! - `GET /api/v1/webhooks` (paginated), `GET /api/v1/webhooks/{id}`
//! - `DELETE /api/v1/webhooks/{id}`, `POST /api/v1/webhooks/{id}/enable`
//! - `GET /api/v1/webhooks/{id}/deliveries?limit=&cursor=` newest first
//! - `POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver` → 202
//!
//! Another principal's subscription is `404 WEBHOOK_NOT_FOUND`, as an unknown one.

use std::sync::Arc;

use aicity_domain::embassy::AuditTarget;
use aicity_domain::validate::Validate;
use aicity_domain::webhooks::{
    self as domain, DeliveryStatus, Subscription, SubscriptionStatus, WebhookEventType,
};
use aicity_domain::{ApiError, ErrorCode, FieldError};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, Caller};
use aicity_http::request::query_param;
use aicity_http::ssrf::{self, Resolver};
use aicity_http::{Context, PageRequest, created, json_body, listed, ok, path_param, route_key};
use aicity_store::StoreError;
use aicity_store::sealing::SecretSealer;
use aicity_store::webhooks::{self as store, DeliveryMessage, SubscriptionRecord};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

const MAX_BODY: usize = 8 * 1024;
pub const DEFAULT_DELIVERY_LIMIT: usize = 20;
pub const MAX_DELIVERY_LIMIT: usize = 100;

pub struct Webhooks {
    pub ctx: Context,
    pub sqs: aws_sdk_sqs::Client,
    /// Seals signing secrets; `None` (no `WEBHOOK_SECRET_KEY`): no subscriptions are
    /// created (503 `WEBHOOKS_NOT_CONFIGURED`), and no secret is ever stored in clear.
    pub sealer: Option<Arc<dyn SecretSealer>>,
    /// `WEBHOOK_ALLOW_LOOPBACK=1`: `http(s)://127.0.0.1` is accepted too.
    pub allow_loopback: bool,
    pub resolver: Arc<dyn Resolver>,
}

impl Webhooks {
    /// From the environment: `WEBHOOK_SECRET_KEY`, `WEBHOOK_ALLOW_LOOPBACK`.
    pub async fn from_env() -> Result<Self, aicity_store::config::MissingEnv> {
        let ctx = Context::from_env().await?;
        let sealer: Option<Arc<dyn SecretSealer>> =
            match aicity_store::sealing::AesGcmSealer::from_env() {
                Ok(Some(sealer)) => Some(Arc::new(sealer)),
                Ok(None) => {
                    tracing::warn!(
                        "WEBHOOK_SECRET_KEY is not set: webhook subscriptions cannot be created"
                    );
                    None
                }
                Err(err) => {
                    tracing::error!(error = %err, "WEBHOOK_SECRET_KEY is unusable: webhook subscriptions cannot be created");
                    None
                }
            };
        Ok(Self {
            sqs: ctx.clients.sqs.clone(),
            sealer,
            allow_loopback: allow_loopback_from_env(),
            resolver: Arc::new(ssrf::SystemResolver),
            ctx,
        })
    }
}

/// `WEBHOOK_ALLOW_LOOPBACK` is `1` or `true`.
pub fn allow_loopback_from_env() -> bool {
    std::env::var("WEBHOOK_ALLOW_LOOPBACK")
        .map(|v| matches!(v.trim(), "1" | "true"))
        .unwrap_or(false)
}

pub async fn handle(webhooks: &Webhooks, request: Request) -> Result<Response<Body>, ApiError> {
    match route_key(&request).as_deref() {
        Some("POST /api/v1/webhooks") => create(webhooks, &request).await,
        Some("GET /api/v1/webhooks") => list(webhooks, &request).await,
        Some("GET /api/v1/webhooks/{id}") => get(webhooks, &request).await,
        Some("DELETE /api/v1/webhooks/{id}") => delete(webhooks, &request).await,
        Some("POST /api/v1/webhooks/{id}/enable") => enable(webhooks, &request).await,
        Some("GET /api/v1/webhooks/{id}/deliveries") => deliveries(webhooks, &request).await,
        Some("POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver") => {
            redeliver(webhooks, &request).await
        }
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

/// The principal a caller acts as: the owner, or the agent itself.
fn principal(caller: &Caller) -> String {
    match caller {
        Caller::Owner(owner) => owner.owner.id.to_string(),
        Caller::Agent(record) => record.agent.id.to_string(),
    }
}

pub fn not_found() -> ApiError {
    ApiError::with_message(
        ErrorCode::WebhookNotFound,
        "No webhook subscription with this id",
    )
}

fn delivery_not_found() -> ApiError {
    ApiError::with_message(
        ErrorCode::WebhookDeliveryNotFound,
        "No delivery with this id in this subscription's log",
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWebhook {
    url: String,
    events: Vec<String>,
}

impl Validate for CreateWebhook {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.url.trim().is_empty() {
            errors.push(FieldError::new("url", "is required"));
        }
        if self.events.is_empty() {
            errors.push(FieldError::new(
                "events",
                "must name at least one event type",
            ));
        }
        for (i, event) in self.events.iter().enumerate() {
            if WebhookEventType::parse(event).is_none() {
                let all: Vec<&str> = WebhookEventType::ALL.iter().map(|t| t.as_str()).collect();
                errors.push(FieldError::new(
                    format!("events[{i}]"),
                    format!("must be one of {}", all.join(", ")),
                ));
            }
        }
    }
}

fn view(record: &SubscriptionRecord) -> Subscription {
    record.subscription.clone()
}

async fn create(webhooks: &Webhooks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &webhooks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let body: CreateWebhook = json_body(request, MAX_BODY)?;
    let mut events: Vec<WebhookEventType> = body
        .events
        .iter()
        .filter_map(|e| WebhookEventType::parse(e))
        .collect();
    events.sort();
    events.dedup();
    if matches!(caller, Caller::Agent(_)) {
        if let Some(kind) = events.iter().find(|k| !domain::agent_may_subscribe(**k)) {
            return Err(ApiError::invalid_field(
                "events",
                format!("{} is for owners only", kind.as_str()),
            ));
        }
    }
    let url = body.url.trim().to_owned();
    if let Err(refusal) =
        ssrf::check(&url, webhooks.allow_loopback, webhooks.resolver.as_ref()).await
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "url",
            refusal.to_string(),
        )]));
    }
    let Some(sealer) = &webhooks.sealer else {
        return Err(ApiError::with_message(
            ErrorCode::WebhooksNotConfigured,
            "Webhooks are not configured on this server (no WEBHOOK_SECRET_KEY)",
        ));
    };
    let id = domain::new_subscription_id();
    let secret = domain::new_secret();
    let sealed = sealer.seal(secret.as_bytes(), &id).await.map_err(|err| {
        tracing::error!(error = %err, "sealing a webhook secret failed");
        ApiError::internal()
    })?;
    let principal = principal(&caller);
    let record = SubscriptionRecord {
        subscription: Subscription {
            id: id.clone(),
            url: url.clone(),
            events: events.clone(),
            status: SubscriptionStatus::Active,
            created_at: aicity_domain::timestamps::now(),
            failing_since: None,
            disabled_at: None,
        },
        principal_id: principal.clone(),
        secret_sealed: sealed,
    };
    let audit = Auditor::of(&caller, request).item(
        &ctx.table,
        "webhook.created",
        AuditTarget::new("webhook", &id),
        None,
        json!({ "url": url, "events": events }),
    )?;
    if !store::create(ctx.db(), &ctx.table, &record, audit).await? {
        return Err(ApiError::with_message(
            ErrorCode::WebhookLimitReached,
            format!(
                "At most {} webhook subscriptions per owner or agent",
                domain::MAX_SUBSCRIPTIONS
            ),
        )
        .details(json!({ "limit": domain::MAX_SUBSCRIPTIONS })));
    }
    let subscription = record.subscription;
    created(json!({
        "id": subscription.id, "url": subscription.url, "events": subscription.events,
        "secret": secret, "status": subscription.status, "createdAt": subscription.created_at,
    }))
}

async fn list(webhooks: &Webhooks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &webhooks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let page = PageRequest::from_request(request)?;
    // Newest first (ids are ULIDs).
    let found =
        store::page_of_principal(ctx.db(), &ctx.table, &principal(&caller), &page.ask()).await?;
    listed(found.map(|record| view(&record)))
}

/// The subscription in the path, if it is the caller's.
async fn owned(
    ctx: &Context,
    caller: &Caller,
    request: &Request,
) -> Result<SubscriptionRecord, ApiError> {
    let id = path_param(request, "id")?;
    if !id.starts_with(domain::SUBSCRIPTION_PREFIX) || id.len() > 64 {
        return Err(not_found());
    }
    match store::get(ctx.db(), &ctx.table, &id).await {
        // Another principal's subscription is not found: its existence is not the
        // caller's business.
        Ok(record) if record.principal_id == principal(caller) => Ok(record),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}

async fn get(webhooks: &Webhooks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &webhooks.ctx;
    let caller = auth::caller(ctx, request).await?;
    ok(view(&owned(ctx, &caller, request).await?))
}

async fn delete(webhooks: &Webhooks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &webhooks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let record = owned(ctx, &caller, request).await?;
    let id = record.subscription.id.clone();
    let audit = Auditor::of(&caller, request).item(
        &ctx.table,
        "webhook.deleted",
        AuditTarget::new("webhook", &id),
        None,
        json!({ "url": record.subscription.url }),
    )?;
    if !store::delete(ctx.db(), &ctx.table, &id, &record.principal_id, audit).await? {
        return Err(not_found());
    }
    ok(json!({ "id": id, "deleted": true }))
}

async fn enable(webhooks: &Webhooks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &webhooks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let record = owned(ctx, &caller, request).await?;
    if record.subscription.status == SubscriptionStatus::Disabled {
        let audit = Auditor::of(&caller, request).item(
            &ctx.table,
            "webhook.enabled",
            AuditTarget::new("webhook", &record.subscription.id),
            None,
            json!({ "disabledAt": record.subscription.disabled_at }),
        )?;
        store::enable(
            ctx.db(),
            &ctx.table,
            &record.subscription.id,
            &record.principal_id,
            audit,
        )
        .await?;
    }
    // Enabling an active subscription changes nothing.
    let now = store::get(ctx.db(), &ctx.table, &record.subscription.id)
        .await
        .map_err(|err| match err {
            StoreError::NotFound => not_found(),
            other => other.into(),
        })?;
    ok(view(&now))
}

fn parse_limit(request: &Request) -> Result<usize, ApiError> {
    match query_param(request, "limit") {
        None => Ok(DEFAULT_DELIVERY_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_DELIVERY_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "limit",
                    format!("must be between 1 and {MAX_DELIVERY_LIMIT}"),
                )
            }),
    }
}

async fn deliveries(webhooks: &Webhooks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &webhooks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let record = owned(ctx, &caller, request).await?;
    let limit = parse_limit(request)?;
    let cursor = query_param(request, "cursor");
    if let Some(cursor) = &cursor {
        if domain::event_of_delivery(cursor).is_none() {
            return Err(ApiError::invalid_field(
                "cursor",
                "must be a nextCursor value",
            ));
        }
    }
    let (items, has_more) = store::deliveries_page(
        ctx.db(),
        &ctx.table,
        &record.subscription.id,
        cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = has_more
        .then(|| items.last().map(|d| d.delivery.id.clone()))
        .flatten();
    let deliveries: Vec<_> = items.into_iter().map(|d| d.delivery).collect();
    ok(json!({ "deliveries": deliveries, "hasMore": has_more, "nextCursor": next_cursor }))
}

async fn redeliver(webhooks: &Webhooks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &webhooks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let record = owned(ctx, &caller, request).await?;
    let delivery_id = path_param(request, "deliveryId")?;
    if domain::event_of_delivery(&delivery_id).is_none() {
        return Err(delivery_not_found());
    }
    let subscription_id = record.subscription.id.clone();
    match store::get_delivery(ctx.db(), &ctx.table, &subscription_id, &delivery_id).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(delivery_not_found()),
        Err(err) => return Err(err.into()),
    }
    let Some(queue_url) = ctx.webhook_queue_url.as_deref() else {
        return Err(ApiError::with_message(
            ErrorCode::WebhooksNotConfigured,
            "Webhooks are not configured on this server (no WEBHOOK_QUEUE_URL)",
        ));
    };
    let audit = Auditor::of(&caller, request).item(
        &ctx.table,
        "webhook.redelivered",
        AuditTarget::new("webhook", &subscription_id),
        None,
        json!({ "deliveryId": delivery_id }),
    )?;
    let now = time::OffsetDateTime::now_utc();
    let restarted = match store::restart(
        ctx.db(),
        &ctx.table,
        &subscription_id,
        &delivery_id,
        audit,
        now,
    )
    .await
    {
        Ok(restarted) => restarted,
        Err(StoreError::NotFound) => return Err(delivery_not_found()),
        Err(err) => return Err(err.into()),
    };
    let message = DeliveryMessage {
        subscription_id,
        event_id: restarted.delivery.event_id.clone(),
        series: restarted.series,
    };
    if let Err(err) = aicity_store::queue::send_json(&webhooks.sqs, queue_url, &message).await {
        // Pending with no message: nothing re-drives it, so say so; redelivering again
        // is safe (a new series supersedes this one).
        tracing::error!(error = %err, delivery = %message.event_id, "redelivery not queued");
        return Err(ApiError::new(ErrorCode::ServiceUnavailable));
    }
    debug_assert_eq!(restarted.delivery.status, DeliveryStatus::Pending);
    let mut response = ok(restarted.delivery)?;
    *response.status_mut() = lambda_http::http::StatusCode::ACCEPTED;
    Ok(response)
}
