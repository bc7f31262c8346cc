//! `agents`: the registry.
//!
//! Owners (Bearer) register and manage their agents; an agent (X-API-Key) reads and
//! updates itself and reads its profitability; any authenticated caller reads public
//! profiles and searches.

use aicity_domain::embassy::AuditTarget;
use aicity_domain::identity::agent::MAX_ACTIVE_AGENTS_PER_OWNER;
use aicity_domain::identity::secrets::{generate_api_key, hash_secret};
use aicity_domain::identity::{
    Agent, AgentStatus, Availability, Category, Framework, RegisterAgent, TrustTier, UpdateAgent,
    VerificationStatus,
};
use aicity_domain::ids::AgentId;
use aicity_domain::timestamps;
use aicity_domain::{ApiError, ErrorCode, FieldError};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, Caller, OwnerCaller};
use aicity_http::request::query_param;
use aicity_http::{Context, PageRequest, created, json_body, listed, ok, path_param, route_key};
use aicity_store::StoreError;
use aicity_store::agents::{self, AgentRecord, SearchFilter};
use aicity_store::transact::Transaction;
use aicity_store::vault::Labeled;
use aicity_tasks::outcomes::SUSPENSION_COOLDOWN;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;

const MAX_BODY: usize = 64 * 1024;
/// A save that loses to a concurrent change is re-read and re-applied this often.
const SAVE_ATTEMPTS: usize = 3;

pub async fn handle(ctx: &Context, request: Request) -> Result<Response<Body>, ApiError> {
    match route_key(&request).as_deref() {
        Some("POST /api/v1/agents") => register(ctx, &request).await,
        Some("GET /api/v1/agents") => list_own(ctx, &request).await,
        Some("GET /api/v1/agents/me") => me(ctx, &request).await,
        Some("PATCH /api/v1/agents/me") => update_me(ctx, &request).await,
        Some("POST /api/v1/agents/me/heartbeat") => heartbeat(ctx, &request).await,
        Some("GET /api/v1/agents/me/profitability") => profitability(ctx, &request).await,
        Some("GET /api/v1/agents/{id}/reputation") => reputation(ctx, &request).await,
        Some("GET /api/v1/agents/search") => search(ctx, &request).await,
        Some("GET /api/v1/agents/{id}") => public_profile(ctx, &request).await,
        Some("PATCH /api/v1/agents/{id}") => update_owned(ctx, &request).await,
        Some("POST /api/v1/agents/{id}/deactivate") => {
            set_status(ctx, &request, AgentStatus::Deactivated).await
        }
        Some("POST /api/v1/agents/{id}/reactivate") => {
            set_status(ctx, &request, AgentStatus::Active).await
        }
        Some("POST /api/v1/agents/{id}/rotate-key") => rotate_key(ctx, &request).await,
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

fn now() -> String {
    timestamps::format(OffsetDateTime::now_utc())
}

/// A profile as shown now: `offline` once the agent has not been seen lately.
fn shown(ctx: &Context, agent: &Agent) -> serde_json::Value {
    let mut private = agent.private();
    private.public = private
        .public
        .live(OffsetDateTime::now_utc(), ctx.limits.agent_liveness);
    json!(private)
}

fn agent_not_found() -> ApiError {
    ApiError::with_message(ErrorCode::AgentNotFound, "No agent with this id")
}

fn agent_id(request: &Request) -> Result<AgentId, ApiError> {
    path_param(request, "id")?
        .parse()
        .map_err(|_| agent_not_found())
}

async fn load(ctx: &Context, id: &AgentId) -> Result<AgentRecord, ApiError> {
    match agents::get(ctx.db(), &ctx.table, id).await {
        Ok(record) => Ok(record),
        Err(StoreError::NotFound) => Err(agent_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// The agent `id`, if the calling owner owns it.
async fn load_owned(
    ctx: &Context,
    owner: &OwnerCaller,
    id: &AgentId,
) -> Result<AgentRecord, ApiError> {
    let record = load(ctx, id).await?;
    if !auth::owns(&owner.owner, &record.agent) {
        return Err(ApiError::with_message(
            ErrorCode::NotAgentOwner,
            "You do not own this agent",
        ));
    }
    Ok(record)
}

/// Read, change, write; on a concurrent change re-read and re-apply. `audit` builds
/// the change's audit entry from the agent before and after; it is written in the same
/// transaction, so the change and its entry land together or not at all.
async fn modify(
    ctx: &Context,
    mut record: AgentRecord,
    new_key_hash: Option<String>,
    change: impl Fn(&mut Agent) -> Result<(), ApiError>,
    audit: impl Fn(&Agent, &Agent) -> Result<Labeled, ApiError>,
) -> Result<AgentRecord, ApiError> {
    for _ in 0..SAVE_ATTEMPTS {
        let mut next = record.agent.clone();
        change(&mut next)?;
        let entry = audit(&record.agent, &next)?;
        let (items, saved) = agents::save_items(
            &ctx.table,
            &record,
            next,
            new_key_hash.clone(),
            MAX_ACTIVE_AGENTS_PER_OWNER,
        )?;
        let mut transaction = Transaction::new();
        transaction.extend(items).extend([entry]);
        match transaction.commit(ctx.db()).await {
            Ok(()) => return Ok(saved),
            Err(err) if err.failed_labels().contains(&"owner") => {
                return Err(agent_limit_reached());
            }
            Err(err) if err.failed_labels() == ["agent"] => {
                record = load(ctx, &record.agent.id).await?;
            }
            Err(err) => {
                tracing::error!(error = %err, "agent save failed");
                return Err(ApiError::new(ErrorCode::AgentUpdateFailed));
            }
        }
    }
    Err(ApiError::new(ErrorCode::AgentUpdateFailed))
}

fn agent_limit_reached() -> ApiError {
    ApiError::with_message(
        ErrorCode::AgentLimitReached,
        format!("An owner may have at most {MAX_ACTIVE_AGENTS_PER_OWNER} active agents"),
    )
    .details(json!({ "limit": MAX_ACTIVE_AGENTS_PER_OWNER }))
}

async fn register(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let body: RegisterAgent = json_body(request, MAX_BODY)?;
    let api_key = generate_api_key();
    let record = AgentRecord {
        agent: Agent::register(owner.owner.id, body, &now()),
        api_key_hash: hash_secret(&api_key),
        version: 1,
    };
    let agent = &record.agent;
    let audit = Auditor::owner(owner.owner.id, request).item(
        &ctx.table,
        "agent.registered",
        AuditTarget::new("agent", agent.id),
        Some(agent.id),
        json!({
            "displayName": agent.display_name,
            "framework": agent.framework,
            "categories": agent.categories().collect::<Vec<_>>(),
            "pricing": agent.pricing,
            "maxConcurrentTasks": agent.max_concurrent_tasks,
        }),
    )?;
    match agents::register_with(
        ctx.db(),
        &ctx.table,
        &record,
        MAX_ACTIVE_AGENTS_PER_OWNER,
        vec![audit],
    )
    .await
    {
        Ok(()) => created(json!({ "agent": shown(ctx, &record.agent), "apiKey": api_key })),
        Err(err) if err.failed_labels() == ["owner"] => Err(agent_limit_reached()),
        Err(err) => {
            tracing::error!(error = %err, "agent registration failed");
            Err(ApiError::new(ErrorCode::AgentRegistrationFailed))
        }
    }
}

async fn list_own(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let page = page_request(request)?;
    let found = agents::list_by_owner(ctx.db(), &ctx.table, &owner.owner.id, &page.ask()).await?;
    listed(found.map(|agent| shown(ctx, &agent)))
}

async fn me(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = auth::agent(ctx, request).await?;
    ok(shown(ctx, &record.agent))
}

/// `GET /agents/me/profitability?period=30d|90d|all` (default `30d`): what the calling
/// agent made per category and in all, from its day counters since the period's first
/// UTC day (one bounded Query). The figures' meaning:
/// `aicity_domain::task::economics::Profit`.
async fn profitability(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    use aicity_domain::task::economics::{Period, ProfitReport, day_name};
    let record = auth::agent(ctx, request).await?;
    let period = match query_param(request, "period") {
        None => Period::Days30,
        Some(raw) => Period::parse(&raw).ok_or_else(|| {
            let all: Vec<&str> = Period::ALL.iter().map(|p| p.as_str()).collect();
            ApiError::validation(vec![FieldError::new(
                "period",
                format!("must be one of {}", all.join(", ")),
            )])
        })?,
    };
    let today = OffsetDateTime::now_utc().date();
    let since = period.since(today).map(day_name);
    let rows =
        aicity_store::stats::profit_rows(ctx.db(), &ctx.table, &record.agent.id, since.as_deref())
            .await?;
    let report = ProfitReport::from_rows(rows);
    ok(json!({
        "agentId": record.agent.id,
        "period": period.as_str(),
        "since": since,
        "categories": report.categories,
        "totals": report.totals,
    }))
}

/// `POST /agents/me/heartbeat`: the agent is alive (as a poll for work says too).
/// Written at most every 30 s, so a tight loop costs no write per call.
async fn heartbeat(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = auth::agent(ctx, request).await?;
    let now = OffsetDateTime::now_utc();
    let written = agents::mark_seen(
        ctx.db(),
        &ctx.table,
        &record,
        now,
        aicity_domain::identity::agent::LIVENESS_WRITE_EVERY,
    )
    .await?;
    let last_seen = if written {
        Some(timestamps::format(now))
    } else {
        record.agent.last_seen_at.clone()
    };
    let mut agent = record.agent.clone();
    agent.last_seen_at = last_seen.clone();
    let public = agent.public().live(now, ctx.limits.agent_liveness);
    ok(json!({
        "agentId": agent.id,
        "lastSeenAt": last_seen,
        "availability": public.availability,
    }))
}

/// `GET /agents/{id}/reputation` (any caller): the dimensions, tier, confidence,
/// counts and the last outcomes.
async fn reputation(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    auth::caller(ctx, request).await?;
    let agent = load(ctx, &agent_id(request)?).await?.agent;
    let record = agent.record;
    ok(json!({
        "agentId": agent.id,
        "overallScore": agent.overall_score,
        "trustTier": agent.trust_tier,
        "verificationStatus": agent.verification_status,
        "confidence": agent.reputation.confidence,
        "dimensions": {
            "outcome": agent.reputation.outcome,
            "relationship": agent.reputation.relationship,
            "economic": agent.reputation.economic,
            "reliability": agent.reputation.reliability,
        },
        "counts": {
            "completed": record.completed,
            "failed": record.failed(),
            "qualityFailed": record.quality_failed,
            "agentFailed": record.agent_failed,
            "timedOut": record.timed_out,
            "abandoned": record.abandoned,
            "thumbsUp": record.thumbs_up,
            "thumbsDown": record.thumbs_down,
            "refunded": record.refunded,
            "disputesFiled": record.disputes_filed,
            "disputesWon": record.disputes_won,
            "disputesLost": record.disputes_lost,
            "earned": record.earned,
        },
        "lastOutcomes": agent.recent_outcomes,
        "budgetLimit": limit_of(agent.trust_tier),
        "concurrencyLimit": agent.concurrency_limit(),
    }))
}

/// The tier's budget limit in cents, `null` for none.
fn limit_of(tier: TrustTier) -> Option<i64> {
    let limit = aicity_domain::task::routing::tier_limit(tier).get();
    (limit != i64::MAX).then_some(limit)
}

fn apply(update: &UpdateAgent) -> impl Fn(&mut Agent) -> Result<(), ApiError> + '_ {
    let now = now();
    move |agent: &mut Agent| {
        agent
            .apply(update.clone(), &now)
            .map_err(ApiError::validation)
    }
}

/// The names of the fields an update sets (never their values: descriptions are long).
fn updated_fields(update: &UpdateAgent) -> Vec<&'static str> {
    [
        ("displayName", update.display_name.is_some()),
        ("description", update.description.is_some()),
        ("model", update.model.is_some()),
        ("capabilities", update.capabilities.is_some()),
        ("pricing", update.pricing.is_some()),
        ("maxConcurrentTasks", update.max_concurrent_tasks.is_some()),
        ("availability", update.availability.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// The `agent.updated` entry of `update`, by `auditor`.
fn update_audit<'a>(
    ctx: &'a Context,
    auditor: &'a Auditor,
    update: &'a UpdateAgent,
) -> impl Fn(&Agent, &Agent) -> Result<Labeled, ApiError> + 'a {
    move |before: &Agent, after: &Agent| {
        let mut details = json!({ "fields": updated_fields(update) });
        if before.availability != after.availability {
            details["availability"] = json!(after.availability);
        }
        auditor.item(
            &ctx.table,
            "agent.updated",
            AuditTarget::new("agent", after.id),
            Some(after.id),
            details,
        )
    }
}

async fn update_me(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let record = auth::agent(ctx, request).await?;
    let update: UpdateAgent = json_body(request, MAX_BODY)?;
    let auditor = Auditor::of(&Caller::Agent(record.clone()), request);
    let saved = modify(
        ctx,
        record,
        None,
        apply(&update),
        update_audit(ctx, &auditor, &update),
    )
    .await?;
    ok(shown(ctx, &saved.agent))
}

async fn update_owned(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let id = agent_id(request)?;
    let update: UpdateAgent = json_body(request, MAX_BODY)?;
    let record = load_owned(ctx, &owner, &id).await?;
    let auditor = Auditor::owner(owner.owner.id, request);
    let saved = modify(
        ctx,
        record,
        None,
        apply(&update),
        update_audit(ctx, &auditor, &update),
    )
    .await?;
    ok(shown(ctx, &saved.agent))
}

async fn public_profile(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    auth::caller(ctx, request).await?;
    let record = load(ctx, &agent_id(request)?).await?;
    ok(record
        .agent
        .public()
        .live(OffsetDateTime::now_utc(), ctx.limits.agent_liveness))
}

async fn set_status(
    ctx: &Context,
    request: &Request,
    target: AgentStatus,
) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let record = load_owned(ctx, &owner, &agent_id(request)?).await?;
    let now = now();
    let auditor = Auditor::owner(owner.owner.id, request);
    let action = if target == AgentStatus::Active {
        "agent.reactivated"
    } else {
        "agent.deactivated"
    };
    let audit = |before: &Agent, after: &Agent| {
        auditor.item(
            &ctx.table,
            action,
            AuditTarget::new("agent", after.id),
            Some(after.id),
            json!({ "from": before.status, "to": after.status }),
        )
    };
    let saved = modify(ctx, record, None, |agent| {
        match (agent.status, target) {
            (AgentStatus::Deactivated, AgentStatus::Deactivated) => {
                return Err(ApiError::with_message(
                    ErrorCode::AgentAlreadyDeactivated,
                    "The agent is already deactivated",
                ));
            }
            (AgentStatus::Active, AgentStatus::Active) => {
                return Err(ApiError::with_message(
                    ErrorCode::AgentAlreadyActive,
                    "The agent is already active",
                ));
            }
            _ => {}
        }
        if target == AgentStatus::Active && agent.status == AgentStatus::Suspended {
            // A suspension for consecutive failures lasts its cool-down at least.
            let until = agent
                .suspended_at
                .as_deref()
                .and_then(timestamps::parse)
                .map(|at| at + SUSPENSION_COOLDOWN);
            if let Some(until) = until.filter(|until| OffsetDateTime::now_utc() < *until) {
                return Err(ApiError::with_message(
                    ErrorCode::AgentSuspended,
                    "The agent was suspended for consecutive failures; it can be reactivated after the cool-down",
                )
                .details(json!({ "reactivatableAt": timestamps::format(until) })));
            }
        }
        if target == AgentStatus::Active {
            // A fresh start after a suspension for consecutive failures.
            agent.stats.consecutive_failures = 0;
            agent.suspended_at = None;
        }
        agent.status = target;
        agent.updated_at = now.clone();
        Ok(())
    }, audit)
    .await?;
    ok(shown(ctx, &saved.agent))
}

async fn rotate_key(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    let owner = auth::owner(ctx, request).await?;
    let record = load_owned(ctx, &owner, &agent_id(request)?).await?;
    let api_key = generate_api_key();
    let now = now();
    let auditor = Auditor::owner(owner.owner.id, request);
    // Never the key nor its hash: only that it changed.
    let audit = |_: &Agent, after: &Agent| {
        auditor.item(
            &ctx.table,
            "agent.key_rotated",
            AuditTarget::new("agent", after.id),
            Some(after.id),
            json!({}),
        )
    };
    let saved = modify(
        ctx,
        record,
        Some(hash_secret(&api_key)),
        |agent| {
            agent.updated_at = now.clone();
            Ok(())
        },
        audit,
    )
    .await?;
    ok(json!({ "agentId": saved.agent.id, "apiKey": api_key }))
}

fn page_request(request: &Request) -> Result<PageRequest, ApiError> {
    PageRequest::from_request(request)
}

/// Parses an optional enum query value, naming the field when it is not one of them.
fn enum_param<T: Copy>(
    request: &Request,
    name: &str,
    parse: fn(&str) -> Option<T>,
    all: &[T],
    as_str: fn(T) -> &'static str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let raw = query_param(request, name)?;
    let parsed = parse(&raw);
    if parsed.is_none() {
        let allowed: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
        errors.push(FieldError::new(
            name,
            format!("must be one of {}", allowed.join(", ")),
        ));
    }
    parsed
}

async fn search(ctx: &Context, request: &Request) -> Result<Response<Body>, ApiError> {
    auth::caller(ctx, request).await?;
    let now_at = OffsetDateTime::now_utc();
    let mut errors = Vec::new();
    let page = match page_request(request) {
        Ok(page) => Some(page),
        Err(err) => {
            if let Some(fields) = err.details.as_ref().and_then(|d| d["fields"].as_array()) {
                for f in fields {
                    errors.push(FieldError::new(
                        f["field"].as_str().unwrap_or_default(),
                        f["message"].as_str().unwrap_or_default(),
                    ));
                }
            }
            None
        }
    };
    let filter = SearchFilter {
        category: enum_param(
            request,
            "category",
            Category::parse,
            Category::ALL,
            Category::as_str,
            &mut errors,
        ),
        availability: enum_param(
            request,
            "availability",
            Availability::parse,
            Availability::ALL,
            Availability::as_str,
            &mut errors,
        ),
        framework: enum_param(
            request,
            "framework",
            Framework::parse,
            Framework::ALL,
            Framework::as_str,
            &mut errors,
        ),
        trust_tier: enum_param(
            request,
            "trustTier",
            TrustTier::parse,
            TrustTier::ALL,
            TrustTier::as_str,
            &mut errors,
        ),
        verification_status: enum_param(
            request,
            "verificationStatus",
            VerificationStatus::parse,
            VerificationStatus::ALL,
            VerificationStatus::as_str,
            &mut errors,
        ),
        live_since: (now_at - ctx.limits.agent_liveness).unix_timestamp(),
        min_score: match query_param(request, "minScore") {
            None => None,
            Some(raw) => match raw.parse::<u32>() {
                Ok(score) if score <= 1000 => Some(score),
                _ => {
                    errors.push(FieldError::new(
                        "minScore",
                        "must be an integer between 0 and 1000",
                    ));
                    None
                }
            },
        },
    };
    let page = match page {
        Some(page) if errors.is_empty() => page,
        _ => return Err(ApiError::validation(errors)),
    };
    let found = agents::search(ctx.db(), &ctx.table, &filter, &page.ask()).await?;
    listed(found.map(|profile| profile.live(now_at, ctx.limits.agent_liveness)))
}
