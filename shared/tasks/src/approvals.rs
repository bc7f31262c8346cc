//! Deciding a task that waits for its owner's approval: approve (on to routing), deny
//! (cancelled, hold voided) or expire (the same, by the platform, past `expiresAt`).
//! Each is one task step: the task, its approval, the hold, the budget counter and the
//! audit entry in one transaction, so a decision happens exactly once.

use aicity_domain::embassy::{Approval, ApprovalStatus, AuditTarget};
use aicity_domain::task::model::EventType;
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::Context;
use aicity_http::audit::Auditor;
use aicity_store::StoreError;
use aicity_store::tasks::TaskRecord;
use serde_json::json;
use time::OffsetDateTime;

use crate::change::{Change, Money, apply};

/// How an approval ends.
#[derive(Debug, Clone)]
pub enum Decision {
    Approve,
    Deny { reason: Option<String> },
    Expire,
}

impl Decision {
    fn status(&self) -> ApprovalStatus {
        match self {
            Decision::Approve => ApprovalStatus::Approved,
            Decision::Deny { .. } => ApprovalStatus::Denied,
            Decision::Expire => ApprovalStatus::Expired,
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Decision::Approve => "task.approved",
            Decision::Deny { .. } => "task.denied",
            Decision::Expire => "approval.expired",
        }
    }
}

pub fn not_found() -> ApiError {
    ApiError::with_message(ErrorCode::ApprovalNotFound, "No approval with this id")
}

pub async fn load(ctx: &Context, id: &str) -> Result<Approval, ApiError> {
    match aicity_store::embassy::approval(ctx.db(), &ctx.table, id).await {
        Ok(approval) => Ok(approval),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}

/// Applies `decision` to the task of `approval` (which must still be pending). A task
/// that left `pending_approval` meanwhile (another decision, the buyer's cancel) is
/// `409 APPROVAL_ALREADY_DECIDED`.
pub async fn decide(
    ctx: &Context,
    approval: &Approval,
    decision: &Decision,
    auditor: &Auditor,
    now: OffsetDateTime,
) -> Result<TaskRecord, ApiError> {
    let at = aicity_domain::timestamps::format(now);
    apply(ctx, &approval.task_id, None, |loaded| {
        let task = &loaded.task.task;
        if task.status != TaskStatus::PendingApproval {
            return Err(ApiError::with_message(
                ErrorCode::ApprovalAlreadyDecided,
                format!("The task is already {}", task.status),
            )
            .details(json!({ "taskStatus": task.status })));
        }
        let (event, actor) = match decision {
            Decision::Approve => (TaskEvent::Approved, Actor::Submitter),
            Decision::Deny { .. } => (TaskEvent::Cancelled, Actor::Submitter),
            Decision::Expire => (TaskEvent::Cancelled, Actor::Platform),
        };
        let status = transition(task.status, event, actor).map_err(|_| ApiError::internal())?;
        let mut next = task.clone();
        next.status = status;
        let reason = match decision {
            Decision::Deny { reason } => reason.clone(),
            _ => None,
        };
        let cancelled = status == TaskStatus::Cancelled;
        if cancelled {
            next.completed_at = Some(at.clone());
            next.error_message = Some(match decision {
                Decision::Expire => "The owner's approval expired".to_owned(),
                _ => "The owner denied approval".to_owned(),
            });
        }
        let money = if cancelled {
            Money::Void
        } else {
            Money::Untouched
        };
        let change = Change::new(next)
            .money(money)
            .event(
                EventType::Status,
                json!({ "status": status, "approval": decision.status(), "reason": reason }),
            )
            .with_item(aicity_store::embassy::approval_decided_item(
                &ctx.table,
                &approval.id,
                decision.status(),
                &at,
                reason.as_deref(),
            )?)
            .with_item(auditor.item(
                &ctx.table,
                decision.action(),
                AuditTarget::new("approval", &approval.id),
                Some(approval.agent_id),
                json!({ "taskId": approval.task_id, "amount": approval.amount, "reason": reason }),
            )?);
        Ok(Some(change))
    })
    .await
}

/// The sweeper's (and a late decision's) expiry: past its `expiresAt`, a pending
/// approval's task is cancelled and its hold voided. Whether this call expired it.
pub async fn expire(
    ctx: &Context,
    approval: &Approval,
    now: OffsetDateTime,
) -> Result<bool, ApiError> {
    let due = aicity_domain::timestamps::parse(&approval.expires_at).is_some_and(|at| now >= at);
    if approval.status != ApprovalStatus::Pending || !due {
        return Ok(false);
    }
    match decide(
        ctx,
        approval,
        &Decision::Expire,
        &Auditor::platform(approval.owner_id),
        now,
    )
    .await
    {
        Ok(saved) => Ok(saved.task.status == TaskStatus::Cancelled),
        Err(err) if err.code == ErrorCode::ApprovalAlreadyDecided => Ok(false),
        Err(err) => Err(err),
    }
}
