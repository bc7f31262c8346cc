//! `embassy`: an owner's oversight of its agents. Owners only (a session token).
//!
//! - `GET|PUT /api/v1/embassy/agents/{agentId}/policy`: budgets per task, per UTC day
//!   and per rolling 7 days, allowed task types, the approval threshold; a `PUT` names
//!   the `version` it read (`409 POLICY_VERSION_CONFLICT` when stale)
//! - `GET /api/v1/embassy/approvals?status=`, `GET /api/v1/embassy/approvals/{id}`,
//!   `POST /api/v1/embassy/approvals/{id}/approve`, `POST …/deny {reason?}`
//! - `GET /api/v1/embassy/audit?agentId=&since=&limit=&cursor=`: newest first
//! - `GET /api/v1/embassy/notifications?since=&limit=`
//!
//! Another owner's agent is `403 NOT_AGENT_OWNER`; another owner's approval is `404
//! APPROVAL_NOT_FOUND` (docs/errors.md).

use std::sync::Arc;

use aicity_domain::embassy::{ApprovalStatus, Committed};
use aicity_domain::embassy::{
    AuditTarget, DEFAULT_FEED_LIMIT, Deny, MAX_FEED_LIMIT, NOTIFICATION_PREFIX, Policy, PutPolicy,
    approval_task, decision_refused,
};
use aicity_domain::ids::{AgentId, OwnerId};
use aicity_domain::task::timing::Clock;
use aicity_domain::{ApiError, ErrorCode, FieldError};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, OwnerCaller};
use aicity_http::request::query_param;
use aicity_http::{Context, PageRequest, json_body, listed, ok, path_param, route_key};
use aicity_store::embassy as store;
use aicity_store::{StoreError, agents};
use aicity_tasks::approvals::{self, Decision};
use aicity_tasks::budgets::Gate;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;

const MAX_BODY: usize = 16 * 1024;

pub struct Embassy {
    pub ctx: Context,
    pub sqs: aws_sdk_sqs::Client,
    pub routing_queue_url: String,
    /// Injected so approval expiry is testable on both sides.
    pub clock: Arc<dyn Clock>,
}

pub async fn handle(embassy: &Embassy, request: Request) -> Result<Response<Body>, ApiError> {
    match route_key(&request).as_deref() {
        Some("GET /api/v1/embassy/agents/{agentId}/policy") => get_policy(embassy, &request).await,
        Some("PUT /api/v1/embassy/agents/{agentId}/policy") => put_policy(embassy, &request).await,
        Some("GET /api/v1/embassy/approvals") => list_approvals(embassy, &request).await,
        Some("GET /api/v1/embassy/approvals/{id}") => get_approval(embassy, &request).await,
        Some("POST /api/v1/embassy/approvals/{id}/approve") => {
            decide(embassy, &request, true).await
        }
        Some("POST /api/v1/embassy/approvals/{id}/deny") => decide(embassy, &request, false).await,
        Some("GET /api/v1/embassy/audit") => audit(embassy, &request).await,
        Some("GET /api/v1/embassy/notifications") => notifications(embassy, &request).await,
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

fn not_owner() -> ApiError {
    ApiError::with_message(ErrorCode::NotAgentOwner, "You do not own this agent")
}

/// The agent named in the path or query, if the caller owns it.
async fn owned_agent(ctx: &Context, owner: &OwnerId, raw: &str) -> Result<AgentId, ApiError> {
    let not_found = || ApiError::with_message(ErrorCode::AgentNotFound, "No agent with this id");
    let id: AgentId = raw.parse().map_err(|_| not_found())?;
    match agents::get(ctx.db(), &ctx.table, &id).await {
        Ok(record) if record.agent.owner_id == *owner => Ok(id),
        Ok(_) => Err(not_owner()),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyView {
    agent_id: AgentId,
    #[serde(flatten)]
    policy: Policy,
    /// What the agent's submits hold or were charged, today and over 7 days.
    committed: Committed,
}

async fn policy_view(
    embassy: &Embassy,
    agent: AgentId,
    policy: Policy,
) -> Result<PolicyView, ApiError> {
    let gate = Gate::load(&embassy.ctx, &agent, embassy.clock.now()).await?;
    Ok(PolicyView {
        agent_id: agent,
        policy,
        committed: gate.counters.committed(),
    })
}

async fn get_policy(embassy: &Embassy, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &embassy.ctx;
    let owner = auth::owner(ctx, request).await?;
    let agent = owned_agent(ctx, &owner.owner.id, &path_param(request, "agentId")?).await?;
    let policy = store::policy(ctx.db(), &ctx.table, &agent).await?;
    ok(policy_view(embassy, agent, policy).await?)
}

async fn put_policy(embassy: &Embassy, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &embassy.ctx;
    let owner = auth::owner(ctx, request).await?;
    let agent = owned_agent(ctx, &owner.owner.id, &path_param(request, "agentId")?).await?;
    let body: PutPolicy = json_body(request, MAX_BODY)?;
    let current = store::policy(ctx.db(), &ctx.table, &agent).await?;
    let conflict = |current: u64| {
        ApiError::with_message(
            ErrorCode::PolicyVersionConflict,
            "The policy changed since you read it; read it again",
        )
        .details(json!({ "currentVersion": current }))
    };
    if body.version != current.version {
        return Err(conflict(current.version));
    }
    let now = aicity_domain::timestamps::format(embassy.clock.now());
    let next = body.apply(&current, &now);
    let audit = Auditor::owner(owner.owner.id, request).item(
        &ctx.table,
        "policy.updated",
        AuditTarget::new("policy", agent),
        Some(agent),
        json!({ "before": current, "after": next }),
    )?;
    match store::put_policy(
        ctx.db(),
        &ctx.table,
        &agent,
        &owner.owner.id,
        &next,
        vec![audit],
    )
    .await
    {
        Ok(()) => ok(policy_view(embassy, agent, next).await?),
        Err(err) if err.failed_labels().contains(&"policy") => {
            let now_current = store::policy(ctx.db(), &ctx.table, &agent).await?;
            Err(conflict(now_current.version))
        }
        Err(err) => Err(err.into()),
    }
}

fn parse_status(request: &Request) -> Result<Option<ApprovalStatus>, ApiError> {
    match query_param(request, "status") {
        None => Ok(None),
        Some(raw) => ApprovalStatus::parse(&raw).map(Some).ok_or_else(|| {
            let all: Vec<&str> = ApprovalStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation(vec![FieldError::new(
                "status",
                format!("must be one of {}", all.join(", ")),
            )])
        }),
    }
}

async fn list_approvals(embassy: &Embassy, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &embassy.ctx;
    let owner = auth::owner(ctx, request).await?;
    let page = PageRequest::from_request(request)?;
    let status = parse_status(request)?;
    let found =
        store::approvals_of(ctx.db(), &ctx.table, &owner.owner.id, status, &page.ask()).await?;
    listed(found)
}

/// The approval in the path, if it is the caller's.
async fn owned_approval(
    ctx: &Context,
    owner: &OwnerCaller,
    request: &Request,
) -> Result<aicity_domain::embassy::Approval, ApiError> {
    let id = path_param(request, "id")?;
    if approval_task(&id).is_none() {
        return Err(approvals::not_found());
    }
    let approval = approvals::load(ctx, &id).await?;
    // Another owner's approval is not found: its existence is not the caller's business.
    if approval.owner_id != owner.owner.id {
        return Err(approvals::not_found());
    }
    Ok(approval)
}

async fn get_approval(embassy: &Embassy, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &embassy.ctx;
    let owner = auth::owner(ctx, request).await?;
    ok(owned_approval(ctx, &owner, request).await?)
}

/// `approve` or `deny`. A pending approval past its `expiresAt` is expired here and
/// then (`410 APPROVAL_EXPIRED`), whether or not the sweeper got to it.
async fn decide(
    embassy: &Embassy,
    request: &Request,
    approve: bool,
) -> Result<Response<Body>, ApiError> {
    let ctx = &embassy.ctx;
    let owner = auth::owner(ctx, request).await?;
    let approval = owned_approval(ctx, &owner, request).await?;
    let decision = if approve {
        Decision::Approve
    } else {
        let body: Deny = if request.body().is_empty() {
            Deny::default()
        } else {
            json_body(request, MAX_BODY)?
        };
        Decision::Deny {
            reason: body.reason,
        }
    };
    let now = embassy.clock.now();
    if let Some(refusal) = decision_refused(&approval, now) {
        if refusal.code == ErrorCode::ApprovalExpired {
            approvals::expire(ctx, &approval, now).await?;
        }
        return Err(refusal);
    }
    let auditor = Auditor::owner(owner.owner.id, request);
    let saved = approvals::decide(ctx, &approval, &decision, &auditor, now).await?;
    if approve {
        // Lost sends are re-driven by the sweeper (an unassigned submitted task).
        aicity_tasks::messages::send(&embassy.sqs, &embassy.routing_queue_url, approval.task_id)
            .await;
    }
    let approval = approvals::load(ctx, &approval.id).await?;
    ok(json!({ "approval": approval, "task": saved.task }))
}

fn parse_limit(request: &Request) -> Result<usize, ApiError> {
    match query_param(request, "limit") {
        None => Ok(DEFAULT_FEED_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_FEED_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_field("limit", format!("must be between 1 and {MAX_FEED_LIMIT}"))
            }),
    }
}

/// `prefix` and a ULID, as the feeds' ids are: anything else would make a key range
/// the store refuses (a bound past `~`, or below the prefix).
fn is_feed_id(raw: &str, prefix: &str) -> bool {
    raw.strip_prefix(prefix)
        .is_some_and(|ulid| ulid.len() == 26 && ulid.parse::<ulid::Ulid>().is_ok())
}

fn parse_time(field: &str, raw: &str) -> Result<time::OffsetDateTime, ApiError> {
    aicity_domain::timestamps::parse(raw)
        .ok_or_else(|| ApiError::invalid_field(field, "must be an RFC 3339 timestamp"))
}

async fn audit(embassy: &Embassy, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &embassy.ctx;
    let owner = auth::owner(ctx, request).await?;
    let limit = parse_limit(request)?;
    let since = query_param(request, "since")
        .map(|raw| parse_time("since", &raw))
        .transpose()?;
    let cursor = query_param(request, "cursor");
    if let Some(cursor) = &cursor {
        let valid = is_feed_id(cursor, aicity_domain::embassy::AUDIT_PREFIX);
        if !valid {
            return Err(ApiError::invalid_field(
                "cursor",
                "must be a nextCursor value",
            ));
        }
    }
    let agent = match query_param(request, "agentId") {
        Some(raw) => Some(owned_agent(ctx, &owner.owner.id, &raw).await?),
        None => None,
    };
    let page = store::audit_page(
        ctx.db(),
        &ctx.table,
        &owner.owner.id,
        agent.as_ref(),
        since,
        cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = page
        .has_more
        .then(|| page.items.last().map(|e| e.id.clone()))
        .flatten();
    ok(json!({ "entries": page.items, "hasMore": page.has_more, "nextCursor": next_cursor }))
}

async fn notifications(embassy: &Embassy, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &embassy.ctx;
    let owner = auth::owner(ctx, request).await?;
    let limit = parse_limit(request)?;
    // `since` is a notification id (what a follower saw last) or a timestamp.
    let since = match query_param(request, "since") {
        None => None,
        Some(raw) if raw.starts_with(NOTIFICATION_PREFIX) => {
            if !is_feed_id(&raw, NOTIFICATION_PREFIX) {
                return Err(ApiError::invalid_field("since", "not a notification id"));
            }
            Some(raw)
        }
        Some(raw) => {
            let at = parse_time("since", &raw)?;
            // Just before the first id of that millisecond.
            let bound = store::id_at(NOTIFICATION_PREFIX, at);
            Some(bound[..bound.len() - 1].to_owned())
        }
    };
    let page = store::notifications_page(
        ctx.db(),
        &ctx.table,
        &owner.owner.id,
        since.as_deref(),
        limit,
    )
    .await?;
    ok(json!({ "notifications": page.items, "hasMore": page.has_more }))
}
