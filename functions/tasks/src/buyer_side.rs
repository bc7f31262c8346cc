//! What the buyer does: read, list, cancel.

use aicity_domain::embassy::AuditTarget;
use aicity_domain::identity::Agent;
use aicity_domain::task::model::EventType;
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_domain::{ApiError, FieldError};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, Caller};
use aicity_http::request::query_param;
use aicity_http::{PageRequest, listed, ok};
use aicity_store::{StoreError, tasks as task_store};
use aicity_tasks::access;
use aicity_tasks::change::{Change, Money, apply, task_not_found};
use aicity_tasks::outcomes;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::{Tasks, forbidden, refused, task_id};

/// `GET /tasks/:id`: the submitter's side or the assigned agent.
pub async fn get(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let record = match task_store::get(ctx.db(), &ctx.table, &task_id(request)?).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => return Err(task_not_found()),
        Err(err) => return Err(err.into()),
    };
    if !access::may_read(&caller, &record.task) {
        return Err(forbidden());
    }
    ok(record.task)
}

/// `GET /tasks?role=submitted|assigned&status=&page=&pageSize=`, newest first. An
/// owner's default is what it submitted; an agent's, both what it submitted and what
/// it was assigned.
pub async fn list(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let page = PageRequest::from_request(request)?;
    let status = match query_param(request, "status") {
        None => None,
        Some(raw) => Some(TaskStatus::parse(&raw).ok_or_else(|| {
            let all: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation(vec![FieldError::new(
                "status",
                format!("must be one of {}", all.join(", ")),
            )])
        })?),
    };
    let role = query_param(request, "role");
    // Without a role an agent sees both sides of its work: what it hired others for
    // and what it was hired for, newest first (a task is on one side only: nobody is
    // hired by its own owner's agents).
    let (submitted_by, assigned_to) = match (role.as_deref(), &caller) {
        (None | Some("submitted"), Caller::Owner(owner)) => (Some((&owner.owner.id, None)), None),
        (Some("submitted"), Caller::Agent(agent)) => {
            (Some((&agent.agent.owner_id, Some(&agent.agent.id))), None)
        }
        (Some("assigned"), Caller::Agent(agent)) => (None, Some(&agent.agent.id)),
        (None, Caller::Agent(agent)) => (
            Some((&agent.agent.owner_id, Some(&agent.agent.id))),
            Some(&agent.agent.id),
        ),
        (Some("assigned"), Caller::Owner(_)) => {
            return Err(ApiError::invalid_field(
                "role",
                "only an agent has assigned tasks",
            ));
        }
        (Some(_), _) => {
            return Err(ApiError::invalid_field(
                "role",
                "must be submitted or assigned",
            ));
        }
    };
    let filter = task_store::TaskFilter {
        submitted_by,
        assigned_to,
        status,
    };
    listed(task_store::list(ctx.db(), &ctx.table, filter, &page.ask()).await?)
}

/// `POST /tasks/:id/cancel`: before execution; the hold released.
pub async fn cancel(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let id = task_id(request)?;
    let auditor = Auditor::of(&caller, request);
    let saved = apply(ctx, &id, None, |loaded| {
        let current = &loaded.task.task;
        let actor = access::actor(&caller, current);
        if actor == Actor::Stranger || actor == Actor::AssignedAgent {
            return Err(forbidden());
        }
        let status = transition(current.status, TaskEvent::Cancelled, actor).map_err(refused)?;
        let mut task = current.clone();
        task.status = status;
        task.completed_at = Some(aicity_domain::timestamps::now());
        let mut change = Change::new(task)
            .event(EventType::Status, json!({ "status": status }))
            .money(Money::Void)
            .with_item(auditor.item(
                &ctx.table,
                "task.cancelled",
                AuditTarget::new("task", current.id),
                current.caller_agent_id,
                json!({ "from": current.status }),
            )?);
        if let (Some(_), Some(record)) = (current.agent_id, &loaded.agent) {
            let mut next: Agent = record.agent.clone();
            outcomes::released(&mut next);
            change = change.agent(next);
        }
        Ok(Some(change))
    })
    .await?;
    ok(saved.task)
}
