//! `quality`: consumes the quality queue. The gate scores the output; on a pass the
//! task completes and the buyer is charged the agreed price (85 % to the agent's
//! escrow, 15 % fee, the rest released); on a fail the task fails and everything held
//! is released. Status, money, agent stats and events change in one transaction, so a
//! redelivered message finds the task already decided and changes nothing.

use aicity_domain::identity::{Agent, Outcome};
use aicity_domain::ids::TaskId;
use aicity_domain::task::model::{EventType, FailureReason};
use aicity_domain::task::quality::Verdict;
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::Context;
use aicity_quality::QualityGate;
use aicity_store::{StoreError, assessments, faults, tasks as task_store};
use aicity_tasks::change::{Change, Money, apply};
use aicity_tasks::quality_stage::{self, GateErrored};
use aicity_tasks::{TaskMessage, outcomes};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::json;

pub struct Quality {
    pub ctx: Context,
    pub gate: Box<dyn QualityGate>,
    pub pass_mark: u8,
    /// Gate errors a task may see before it fails with `quality_unavailable`.
    pub max_attempts: u32,
    /// Where completed tasks go to be paid after the refund window (a delayed queue).
    pub settlement: Option<(aws_sdk_sqs::Client, String)>,
}

pub async fn handle(quality: &Quality, batch: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        let body = message.body.as_deref().unwrap_or_default();
        let done = match serde_json::from_str::<TaskMessage>(body) {
            Ok(TaskMessage { task_id }) => match assess(quality, &task_id).await {
                // Died after writing, before reporting the message done: redelivered.
                Ok(())
                    if faults::fires(&quality.ctx.table, faults::point::CONSUMER_AFTER_WRITE) =>
                {
                    false
                }
                Ok(()) => true,
                Err(err) if !err.is_retryable() => {
                    tracing::warn!(task_id = %task_id, code = %err.code, "quality check refused; dropping the message");
                    true
                }
                Err(err) => {
                    tracing::error!(task_id = %task_id, code = %err.code, "quality check failed; will retry");
                    false
                }
            },
            Err(_) => {
                // Its id and size, never its body.
                tracing::warn!(
                    message_id = message.message_id.as_deref().unwrap_or_default(),
                    bytes = body.len(),
                    "unreadable quality message"
                );
                false
            }
        };
        if !done {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// `QUALITY_MAX_ATTEMPTS` (default 5).
pub fn max_attempts_from_env() -> Result<u32, aicity_store::config::MissingEnv> {
    match std::env::var("QUALITY_MAX_ATTEMPTS") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(aicity_store::config::MissingEnv("QUALITY_MAX_ATTEMPTS")),
        _ => Ok(quality_stage::DEFAULT_MAX_ATTEMPTS),
    }
}

/// Scores one task and records the outcome, once.
pub async fn assess(quality: &Quality, task_id: &TaskId) -> Result<(), ApiError> {
    let ctx = &quality.ctx;
    let record = match task_store::get(ctx.db(), &ctx.table, task_id).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => return Err(aicity_tasks::change::task_not_found()),
        Err(err) => return Err(err.into()),
    };
    if record.task.status != TaskStatus::QualityCheck {
        return Ok(()); // decided already: a redelivery
    }
    let output = record.task.output.clone().unwrap_or_default();
    let verdict = match quality.gate.assess(&record.task, &output).await {
        Ok(verdict) => verdict,
        Err(err) => {
            tracing::error!(task_id = %task_id, error = %err, gate = quality.gate.name(), "quality gate unavailable");
            return match quality_stage::gate_errored(ctx, task_id, quality.max_attempts).await? {
                // Counted: leave the message for another try.
                GateErrored::Retry { .. } => Err(ApiError::new(ErrorCode::ServiceUnavailable)),
                GateErrored::GaveUp | GateErrored::Decided => Ok(()),
            };
        }
    };
    let gate = quality.gate.name();
    let decided = apply(ctx, task_id, None, |loaded| {
        let change = decide(loaded, &verdict, quality.pass_mark)?;
        // The gate's record for Courts, written with the verdict it records.
        let record = verdict.assessment(
            *task_id,
            quality.pass_mark,
            gate,
            aicity_domain::timestamps::now(),
        );
        change
            .map(|change| Ok(change.with_item(assessments::create_item(&ctx.table, &record)?)))
            .transpose()
    })
    .await?;
    if decided.task.status == TaskStatus::Completed {
        if faults::fires(&ctx.table, faults::point::AFTER_COMMIT_BEFORE_SEND) {
            return Err(ApiError::internal());
        }
        if let Some((sqs, url)) = &quality.settlement {
            // A lost send is re-driven by the sweeper's settlement watch.
            aicity_tasks::messages::send(sqs, url, *task_id).await;
        }
    }
    Ok(())
}

fn decide(
    loaded: &aicity_tasks::change::Loaded,
    verdict: &Verdict,
    pass_mark: u8,
) -> Result<Option<Change>, ApiError> {
    let task = &loaded.task.task;
    if task.status != TaskStatus::QualityCheck {
        return Ok(None);
    }
    let (Some(agent_id), Some(agent)) = (task.agent_id, loaded.agent.as_ref()) else {
        tracing::error!(task_id = %task.id, "a task in quality_check has no agent");
        return Err(ApiError::internal());
    };
    let mut next = task.clone();
    next.quality_score = Some(verdict.score);
    next.quality_reasons = verdict.bounded_reasons();
    next.completed_at = Some(aicity_domain::timestamps::now());
    let mut stats: Agent = agent.agent.clone();
    if verdict.passes(pass_mark) {
        let status = transition(task.status, TaskEvent::QualityPassed, Actor::Platform)
            .map_err(|_| ApiError::internal())?;
        // The agreed price, never more than the budget that was held.
        let charge = task
            .agreed_price
            .unwrap_or(task.max_budget)
            .min(task.max_budget);
        next.status = status;
        next.credits_charged = Some(charge);
        outcomes::completed(&mut stats, task.id, verdict.score, charge);
        Ok(Some(
            Change::new(next)
                .event(EventType::Status, json!({ "status": status }))
                .event(
                    EventType::Complete,
                    json!({ "output": task.output, "qualityScore": verdict.score, "creditsCharged": charge }),
                )
                .agent(stats)
                .money(Money::Post { agent: agent_id, charge }),
        ))
    } else {
        let status = transition(task.status, TaskEvent::QualityFailed, Actor::Platform)
            .map_err(|_| ApiError::internal())?;
        next.status = status;
        next.failure_reason = Some(FailureReason::QualityGate);
        next.error_message = Some(format!(
            "Quality score {} is below the pass mark {pass_mark}",
            verdict.score
        ));
        outcomes::failed(&mut stats, task.id, Outcome::QualityFailed);
        Ok(Some(
            Change::new(next)
                .event(EventType::Status, json!({ "status": status }))
                .event(
                    EventType::Error,
                    json!({ "reason": FailureReason::QualityGate, "qualityScore": verdict.score, "reasons": verdict.bounded_reasons() }),
                )
                .agent(stats)
                .money(Money::Void),
        ))
    }
}
