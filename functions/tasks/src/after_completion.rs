//! After a task completed: the buyer's thumbs up or down, and disputes.

use aicity_domain::embassy::AuditTarget;
use aicity_domain::identity::{Agent, Outcome};
use aicity_domain::ids::DisputeId;
use aicity_domain::task::dispute::{Dispute, DisputeStatus, FileDispute, filing_window_open};
use aicity_domain::task::model::{EventType, Feedback};
use aicity_domain::task::timing::refund_window_open;
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_domain::timestamps;
use aicity_domain::validate::Validate;
use aicity_domain::{ApiError, ErrorCode, FieldError};
use aicity_http::audit::Auditor;
use aicity_http::auth;
use aicity_http::{created, json_body, ok};
use aicity_store::disputes;
use aicity_store::vault::HoldStatus;
use aicity_tasks::access;
use aicity_tasks::change::{Change, Money, apply};
use aicity_tasks::outcomes;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::{Tasks, forbidden, refused, task_id};

const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    feedback: Feedback,
}

impl Validate for FeedbackBody {
    fn validate(&self, _errors: &mut Vec<FieldError>) {}
}

fn not_completed(status: TaskStatus) -> ApiError {
    ApiError::with_message(
        ErrorCode::InvalidTaskState,
        format!("The task is {status}, not completed"),
    )
    .details(json!({ "status": status }))
}

/// `POST /tasks/:id/feedback` {feedback: up|down} → `{refunded}`. A thumbs-down within
/// the window refunds in full (the task becomes `refunded`, the agent's escrow is
/// reversed); later it is recorded only. Either way it counts on the agent.
pub async fn feedback(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let id = task_id(request)?;
    let body: FeedbackBody = json_body(request, MAX_BODY)?;
    let auditor = Auditor::of(&caller, request);
    let now = tasks.clock.now();
    let saved = apply(ctx, &id, None, |loaded| {
        let current = &loaded.task.task;
        if access::actor(&caller, current) != Actor::Submitter {
            return Err(forbidden());
        }
        if current.status != TaskStatus::Completed {
            return Err(not_completed(current.status));
        }
        if current.feedback.is_some() {
            return Err(ApiError::with_message(
                ErrorCode::InvalidTaskState,
                "Feedback was already given",
            ));
        }
        let mut next = current.clone();
        next.feedback = Some(body.feedback);
        let mut change = Change::new(next.clone());
        let completed_at = current.completed_at.as_deref().and_then(timestamps::parse);
        let in_window =
            completed_at.is_some_and(|at| refund_window_open(at, now, tasks.refund_window));
        let escrowed = loaded
            .hold
            .as_ref()
            .is_some_and(|h| h.status == HoldStatus::Posted);
        if body.feedback == Feedback::Down && in_window && escrowed {
            let status = transition(current.status, TaskEvent::Refunded, Actor::Submitter)
                .map_err(refused)?;
            next.status = status;
            change = Change::new(next)
                .event(
                    EventType::Status,
                    json!({ "status": status, "feedback": "down" }),
                )
                .money(Money::Reverse);
        }
        if let Some(record) = &loaded.agent {
            let mut agent: Agent = record.agent.clone();
            let refunded = (change.money == Money::Reverse)
                .then(|| current.credits_charged.unwrap_or_default());
            outcomes::feedback(
                &mut agent,
                current.id,
                body.feedback == Feedback::Up,
                refunded,
            );
            change = change.agent(agent);
        }
        let refunded = change.money == Money::Reverse;
        let change = change.with_item(auditor.item(
            &ctx.table,
            "task.feedback",
            AuditTarget::new("task", current.id),
            current.caller_agent_id,
            json!({ "feedback": body.feedback, "refunded": refunded }),
        )?);
        Ok(Some(change))
    })
    .await?;
    ok(json!({
        "refunded": saved.task.status == TaskStatus::Refunded,
        "feedback": saved.task.feedback,
        "status": saved.task.status,
    }))
}

/// `POST /tasks/:id/dispute` {reason, description} → 201 `{id, taskId, status: filed,
/// reason}`; one per task, on completed tasks within `DISPUTE_WINDOW_DAYS` of
/// completion. Filing freezes the agent's earning for the task (out of escrow, or back
/// out of its wallet if already paid) until Courts rules or the buyer withdraws; the
/// agent hears of it as a task event.
pub async fn dispute(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let id = task_id(request)?;
    let body: FileDispute = json_body(request, MAX_BODY)?;
    let auditor = Auditor::of(&caller, request);
    let dispute_id = DisputeId::new();
    let now = tasks.clock.now();
    let rules = tasks.disputes;
    let saved = apply(ctx, &id, None, |loaded| {
        let current = &loaded.task.task;
        if access::actor(&caller, current) != Actor::Submitter {
            return Err(forbidden());
        }
        if current.status != TaskStatus::Completed {
            return Err(not_completed(current.status));
        }
        if current.dispute_id.is_some() {
            return Err(ApiError::with_message(
                ErrorCode::InvalidTaskState,
                "A dispute was already filed on this task",
            ));
        }
        let completed_at = current.completed_at.as_deref().and_then(timestamps::parse);
        if !completed_at.is_some_and(|at| filing_window_open(at, now, rules.window)) {
            let days = rules.window.as_secs() / (24 * 3600);
            return Err(ApiError::with_message(
                ErrorCode::InvalidTaskState,
                format!("Disputes are filed within {days} days of completion"),
            )
            .details(json!({ "completedAt": current.completed_at, "windowDays": days })));
        }
        let Some(hold) = loaded.hold.as_ref() else {
            tracing::error!(task_id = %current.id, "a completed task without a hold");
            return Err(ApiError::internal());
        };
        let record = Dispute {
            id: dispute_id,
            task_id: current.id,
            status: DisputeStatus::Filed,
            reason: body.reason,
            description: body.description.trim().to_owned(),
            filed_by: current.caller_owner_id,
            buyer_agent_id: current.caller_agent_id,
            agent_id: current.agent_id,
            seller_owner_id: loaded.agent.as_ref().map(|a| a.agent.owner_id),
            amount: hold.charged,
            created_at: timestamps::format(now),
            response_deadline: Some(timestamps::format(now + rules.response_time)),
            response: None,
            responded_at: None,
            responded_by: None,
            resolution: None,
            withdrawn_at: None,
            updated_at: Some(timestamps::format(now)),
        };
        let mut next = current.clone();
        next.dispute_id = Some(dispute_id);
        next.dispute_status = Some(DisputeStatus::Filed);
        let mut change = Change::new(next)
            .event(
                EventType::Dispute,
                json!({ "disputeId": dispute_id, "reason": body.reason, "status": DisputeStatus::Filed }),
            )
            .money(Money::Freeze)
            .with_item(disputes::create_item(&ctx.table, &record)?)
            .with_item(auditor.item(
                &ctx.table,
                "task.disputed",
                AuditTarget::new("dispute", dispute_id),
                current.caller_agent_id,
                json!({ "taskId": current.id, "reason": body.reason, "amount": hold.charged }),
            )?);
        if let Some(seller) = &loaded.agent {
            let mut agent: Agent = seller.agent.clone();
            outcomes::dispute(&mut agent, current.id, Outcome::DisputeFiled);
            change = change.agent(agent);
        }
        Ok(Some(change))
    })
    .await?;
    if saved.task.dispute_id != Some(dispute_id) {
        return Err(ApiError::internal());
    }
    let record = disputes::get(ctx.db(), &ctx.table, &dispute_id).await?;
    created(json!({
        "id": record.id,
        "taskId": record.task_id,
        "status": record.status,
        "reason": record.reason,
        "description": record.description,
        "amount": record.amount,
        "responseDeadline": record.response_deadline,
        "createdAt": record.created_at,
    }))
}
