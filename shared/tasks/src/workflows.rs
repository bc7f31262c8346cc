//! The workflow engine: after one of a workflow's steps ends, what comes next (the
//! rules are `aicity_domain::workflow::next`): the next step released with the output
//! before it, or the workflow ended and its waiting steps cancelled, their holds voided.
//!
//! It runs right after the transaction that ended the step (`change::apply`), and that
//! transaction also marked the workflow due in the sweeper's index, so a crash in
//! between is finished by the next sweep. Every move is a conditional write: running it
//! twice, or twice at once, changes nothing twice.

use aicity_domain::ids::{TaskId, WorkflowId};
use aicity_domain::task::model::{EventType, Task};
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_domain::workflow::{MAX_STEPS, Next, WorkflowStatus, next};
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::Context;
use aicity_store::StoreError;
use aicity_store::tasks::{self as task_store, TaskRecord};
use aicity_store::workflows;
use serde_json::json;
use time::OffsetDateTime;

use crate::change::{Change, Money, apply};

/// [`advance`], boxed by a plain function: a caller's future (`change::apply`'s above
/// all, which the engine itself calls) then holds a pointer, not the engine's whole
/// state, and no frame of the caller's poll reserves room for it.
pub fn advance_boxed<'a>(
    ctx: &'a Context,
    id: &'a WorkflowId,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>> + Send + 'a>> {
    Box::pin(advance(ctx, id))
}

/// Moves a workflow on as far as it can go now. Every pass makes one move or returns.
pub async fn advance(ctx: &Context, id: &WorkflowId) -> Result<(), ApiError> {
    for _ in 0..(2 * MAX_STEPS + 4) {
        let record = match workflows::get(ctx.db(), &ctx.table, id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        let workflow = &record.workflow;
        let steps = load_steps(ctx, workflow.steps.iter().map(|s| s.task_id)).await?;
        let statuses: Vec<TaskStatus> = steps.iter().map(|t| t.task.status).collect();
        let now = OffsetDateTime::now_utc();
        match next(workflow.status, &statuses) {
            Next::Wait => {
                if let Some(seen) = &record.due {
                    workflows::settle_due(ctx.db(), &ctx.table, id, seen).await?;
                }
                return Ok(());
            }
            Next::Release(i) => release(ctx, &steps[i - 1].task, &steps[i].task.id).await?,
            Next::Complete => {
                workflows::end(
                    ctx.db(),
                    &ctx.table,
                    id,
                    WorkflowStatus::Completed,
                    None,
                    now,
                )
                .await?;
            }
            Next::End { status, step } => {
                workflows::end(ctx.db(), &ctx.table, id, status, Some(step as u8 + 1), now).await?;
            }
            Next::CancelWaiting(waiting) => {
                for i in waiting {
                    cancel_waiting(ctx, &steps[i].task.id, workflow.status).await?;
                }
            }
        }
    }
    tracing::warn!(workflow_id = %id, "the workflow kept moving; the sweeper goes on");
    Err(ApiError::new(ErrorCode::ServiceUnavailable))
}

/// The steps' tasks, in order, read strongly consistent.
pub async fn load_steps(
    ctx: &Context,
    ids: impl Iterator<Item = TaskId>,
) -> Result<Vec<TaskRecord>, ApiError> {
    let mut steps = Vec::new();
    for id in ids {
        match task_store::get(ctx.db(), &ctx.table, &id).await {
            Ok(record) => steps.push(record),
            Err(StoreError::NotFound) => {
                tracing::error!(task_id = %id, "a workflow step's task is missing");
                return Err(ApiError::internal());
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(steps)
}

/// The waiting step starts: its input gets the output of the step before, and it goes
/// to routing like any submitted task.
async fn release(ctx: &Context, previous: &Task, step: &TaskId) -> Result<(), ApiError> {
    let output = previous.output.clone();
    let saved = apply(ctx, step, None, |loaded| {
        let current = &loaded.task.task;
        if current.status != TaskStatus::Waiting {
            return Ok(None);
        }
        let status = transition(current.status, TaskEvent::StepReleased, Actor::Platform)
            .map_err(|_| ApiError::internal())?;
        let mut task = current.clone();
        task.status = status;
        task.input.previous_output = output.clone();
        Ok(Some(
            Change::new(task)
                .event(
                    EventType::Status,
                    json!({ "status": status, "workflowId": current.workflow_id,
                            "previousTaskId": previous.id }),
                )
                .by_workflow(),
        ))
    })
    .await?;
    if saved.task.status == TaskStatus::Submitted && saved.task.agent_id.is_none() {
        if let Some(queue) = &ctx.routing_queue_url {
            crate::messages::send(&ctx.clients.sqs, queue, *step).await;
        }
    }
    Ok(())
}

/// A step that will never run: cancelled, its hold voided.
async fn cancel_waiting(
    ctx: &Context,
    step: &TaskId,
    ended: WorkflowStatus,
) -> Result<(), ApiError> {
    apply(ctx, step, None, |loaded| {
        let current = &loaded.task.task;
        if current.status != TaskStatus::Waiting {
            return Ok(None);
        }
        let status = transition(current.status, TaskEvent::Cancelled, Actor::Platform)
            .map_err(|_| ApiError::internal())?;
        let mut task = current.clone();
        task.status = status;
        task.completed_at = Some(aicity_domain::timestamps::now());
        Ok(Some(
            Change::new(task)
                .event(
                    EventType::Status,
                    json!({ "status": status, "reason": format!("workflow {ended}") }),
                )
                .money(Money::Void)
                .by_workflow(),
        ))
    })
    .await?;
    Ok(())
}

/// The workflow whose step `before → after` ended (completed, failed, cancelled or
/// refunded): the engine has something to look at.
pub fn step_ended(before: &Task, after: &Task) -> Option<WorkflowId> {
    let ends = matches!(
        after.status,
        TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Refunded
    );
    (ends && before.status != after.status)
        .then_some(after.workflow_id)
        .flatten()
}
