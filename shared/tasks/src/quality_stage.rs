//! The quality stage is bounded: a gate that keeps erroring (an LLM answering
//! non-JSON, a persistent 4xx) may not hold the buyer's credits forever. Each error is
//! counted on the task; after `QUALITY_MAX_ATTEMPTS` errors, or once the task has waited
//! in `quality_check` past the sweeper's maximum age, it fails with
//! `quality_unavailable` and its hold is voided. The agent is not marked: the failure
//! was the platform's.

use aicity_domain::ApiError;
use aicity_domain::identity::Agent;
use aicity_domain::ids::TaskId;
use aicity_domain::task::model::{EventType, FailureReason};
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_http::Context;
use serde_json::json;

use crate::change::{Change, Loaded, Money, apply};
use crate::outcomes;

/// Gate errors a task may see before it fails.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// What became of a task whose gate just errored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateErrored {
    /// Counted; the message comes back for another try.
    Retry { attempts: u32 },
    /// The task failed with `quality_unavailable`, its hold voided.
    GaveUp,
    /// The task had left `quality_check` meanwhile (a redelivery decided it).
    Decided,
}

/// Counts one gate error on the task, failing it when that was the last attempt.
pub async fn gate_errored(
    ctx: &Context,
    task_id: &TaskId,
    max_attempts: u32,
) -> Result<GateErrored, ApiError> {
    let saved = apply(ctx, task_id, None, |loaded| {
        let task = &loaded.task.task;
        if task.status != TaskStatus::QualityCheck {
            return Ok(None);
        }
        let attempts = task.quality_attempts + 1;
        if attempts >= max_attempts {
            return give_up_change(loaded, attempts).map(Some);
        }
        let mut next = task.clone();
        next.quality_attempts = attempts;
        Ok(Some(Change::new(next)))
    })
    .await?;
    Ok(match saved.task.status {
        TaskStatus::QualityCheck => GateErrored::Retry {
            attempts: saved.task.quality_attempts,
        },
        TaskStatus::Failed
            if saved.task.failure_reason == Some(FailureReason::QualityUnavailable) =>
        {
            GateErrored::GaveUp
        }
        _ => GateErrored::Decided,
    })
}

/// Fails a task still in `quality_check` without asking the gate again (the sweeper,
/// past the stage's maximum age). Whether it did.
pub async fn give_up(ctx: &Context, task_id: &TaskId) -> Result<bool, ApiError> {
    let saved = apply(ctx, task_id, None, |loaded| {
        let task = &loaded.task.task;
        if task.status != TaskStatus::QualityCheck {
            return Ok(None);
        }
        give_up_change(loaded, task.quality_attempts).map(Some)
    })
    .await?;
    Ok(saved.task.status == TaskStatus::Failed
        && saved.task.failure_reason == Some(FailureReason::QualityUnavailable))
}

fn give_up_change(loaded: &Loaded, attempts: u32) -> Result<Change, ApiError> {
    let task = &loaded.task.task;
    let status = transition(task.status, TaskEvent::QualityFailed, Actor::Platform)
        .map_err(|_| ApiError::internal())?;
    let mut next = task.clone();
    next.status = status;
    next.quality_attempts = attempts;
    next.failure_reason = Some(FailureReason::QualityUnavailable);
    next.error_message = Some("The quality gate could not assess the output".into());
    next.completed_at = Some(aicity_domain::timestamps::now());
    let mut change = Change::new(next)
        .event(EventType::Status, json!({ "status": status }))
        .event(
            EventType::Error,
            json!({ "reason": FailureReason::QualityUnavailable, "attempts": attempts }),
        )
        .money(Money::Void);
    if let Some(record) = &loaded.agent {
        let mut agent: Agent = record.agent.clone();
        outcomes::released(&mut agent);
        change = change.agent(agent);
    }
    Ok(change)
}
