//! `sweeper`: runs on a schedule and repairs what at-least-once delivery and crashes
//! leave behind. Each rule pages through the tasks past their deadline (the `WATCH#…`
//! index), oldest first, up to a per-run budget, so entries it cannot process never
//! hide the rest; each step is a conditional transition or an idempotent message, so a
//! rule that runs twice changes nothing twice.
//!
//! - waiting for the owner's approval past `APPROVAL_TTL_HOURS`: cancelled, the hold
//!   voided (the approval `expired`);
//! - waiting for routing too long (the message was lost): send it again;
//! - assigned but not started too long: take it back from the agent and route again;
//! - executing past the deadline: fail it (`timeout`) and release the hold;
//! - in quality check too long (the message was lost): send it again; past the stage's
//!   maximum age (a gate that keeps failing): fail it, the hold voided;
//! - card charges recorded but never credited (a crash, a failed write, a payment
//!   still processing): charge again under the same key or ask, and credit once;
//! - completed and not paid well after the refund window: settle it now;
//! - disputes the seller's side did not answer by the response deadline: on to the
//!   admins' review queue (never an automatic refund);
//! - webhook events recorded but not fanned out a minute later (the send was lost):
//!   send them again;
//! - sandboxes of finished tasks, or older than their maximum age: destroy them;
//! - workflows whose step ended (or that ended with steps waiting) and whose engine
//!   did not finish its move (a crash right after the step): move them on.

use std::sync::Arc;
use std::time::Duration;

use aicity_domain::ApiError;
use aicity_domain::identity::{Agent, Outcome};
use aicity_domain::ids::TaskId;
use aicity_domain::task::dispute::{DisputeStatus, Party};
use aicity_domain::task::model::{EventType, FailureReason};
use aicity_domain::task::timing::{Clock, Watch};
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_http::Context;
use aicity_sandbox::SandboxProvider;
use aicity_store::StoreError;
use aicity_store::tasks::{self as task_store, SANDBOX_WATCH, TaskRecord};
use aicity_tasks::change::{Change, Money, apply};
use aicity_tasks::settlement::{Settled, settle};
use aicity_tasks::{disputes, messages, outcomes, quality_stage};
use aicity_vault::PaymentProvider;
use aicity_vault::service::{self, Reconciled};
use serde::Serialize;
use serde_json::json;

/// How long each state may last before the sweeper steps in.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// How long a task over its agent's approval threshold waits for the owner.
    pub approval: Duration,
    pub routing: Duration,
    pub start: Duration,
    pub execution: Duration,
    pub quality: Duration,
    /// The longest a task may stay in quality check, whatever the gate does.
    pub quality_max_age: Duration,
    /// How old an uncredited payment intent must be before reconciliation takes it
    /// (younger ones may still be finishing in their own request).
    pub payment_grace: Duration,
    /// After the refund window.
    pub settlement_grace: Duration,
    /// Sandboxes of finished tasks are kept this long (the agent may still clean up).
    pub sandbox_grace: Duration,
    pub sandbox_max_age: Duration,
    /// How long a workflow may stay due before the sweeper moves it on (the engine
    /// normally does right after the step ends).
    pub workflow: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            approval: Duration::from_secs(aicity_tasks::budgets::DEFAULT_APPROVAL_TTL_HOURS * 3600),
            // Longer than the router's longest backoff, so a task it is still retrying is
            // left alone.
            routing: Duration::from_secs(600),
            start: Duration::from_secs(900),
            execution: Duration::from_secs(1_800),
            quality: Duration::from_secs(900),
            quality_max_age: Duration::from_secs(3_600),
            payment_grace: Duration::from_secs(120),
            settlement_grace: Duration::from_secs(300),
            sandbox_grace: Duration::from_secs(300),
            sandbox_max_age: Duration::from_secs(3_600),
            workflow: Duration::from_secs(30),
        }
    }
}

pub struct Sweeper {
    pub ctx: Context,
    pub sqs: aws_sdk_sqs::Client,
    pub routing_queue_url: String,
    pub quality_queue_url: String,
    pub sandboxes: Box<dyn SandboxProvider>,
    pub payments: Box<dyn PaymentProvider>,
    pub clock: Arc<dyn Clock>,
    pub refund_window: Duration,
    pub deadlines: Deadlines,
    /// At most this many items per rule per run (read page by page).
    pub budget: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Approvals past their expiry: tasks cancelled, holds voided.
    pub approvals_expired: usize,
    pub routing_redriven: usize,
    pub rerouted: usize,
    pub timed_out: usize,
    pub quality_redriven: usize,
    pub quality_given_up: usize,
    pub payments: Reconciled,
    pub settled: usize,
    /// Filed disputes past their response deadline moved to `under_review`.
    pub disputes_escalated: usize,
    /// Webhook events sent to the webhooks queue again.
    pub webhooks_redriven: usize,
    pub sandboxes_destroyed: usize,
    /// Workflows moved on after their engine did not finish.
    pub workflows_advanced: usize,
}

impl Sweeper {
    fn cutoff(&self, age: Duration) -> i64 {
        (self.clock.now() - age).unix_timestamp()
    }

    async fn watched(&self, watch: Watch, age: Duration) -> Result<Vec<TaskRecord>, ApiError> {
        Ok(task_store::watched_before(
            self.ctx.db(),
            &self.ctx.table,
            watch,
            self.cutoff(age),
            self.budget,
        )
        .await?)
    }
}

/// One run of every rule. A rule's failure on one task is logged and the rest go on.
pub async fn sweep(sweeper: &Sweeper) -> Result<Report, ApiError> {
    let mut report = Report::default();
    let d = sweeper.deadlines;

    for record in sweeper.watched(Watch::Approval, d.approval).await? {
        match Box::pin(expire_approval(sweeper, &record.task.id)).await {
            Ok(true) => report.approvals_expired += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(task_id = %record.task.id, code = %err.code, "approval expiry failed")
            }
        }
    }

    for record in sweeper.watched(Watch::Routing, d.routing).await? {
        if messages::send(&sweeper.sqs, &sweeper.routing_queue_url, record.task.id).await {
            report.routing_redriven += 1;
        }
    }
    for record in sweeper.watched(Watch::Start, d.start).await? {
        match Box::pin(reroute(sweeper, &record.task.id)).await {
            Ok(true) => report.rerouted += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(task_id = %record.task.id, code = %err.code, "re-route failed")
            }
        }
    }
    for record in sweeper.watched(Watch::Execution, d.execution).await? {
        match Box::pin(time_out(sweeper, &record.task.id)).await {
            Ok(true) => report.timed_out += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(task_id = %record.task.id, code = %err.code, "time-out failed")
            }
        }
    }
    let too_old = sweeper.cutoff(d.quality_max_age);
    for record in sweeper.watched(Watch::Quality, d.quality).await? {
        let since =
            aicity_domain::task::timing::watch(&record.task).map(|(_, at)| at.unix_timestamp());
        if since.is_some_and(|at| at < too_old) {
            match quality_stage::give_up(&sweeper.ctx, &record.task.id).await {
                Ok(true) => report.quality_given_up += 1,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(task_id = %record.task.id, code = %err.code, "quality give-up failed")
                }
            }
        } else if messages::send(&sweeper.sqs, &sweeper.quality_queue_url, record.task.id).await {
            report.quality_redriven += 1;
        }
    }
    report.payments = service::reconcile(
        sweeper.ctx.db(),
        &sweeper.ctx.table,
        sweeper.payments.as_ref(),
        sweeper.cutoff(d.payment_grace),
    )
    .await?;
    for record in sweeper
        .watched(
            Watch::Settlement,
            sweeper.refund_window + d.settlement_grace,
        )
        .await?
    {
        match Box::pin(settle(
            &sweeper.ctx,
            &record.task.id,
            sweeper.clock.as_ref(),
            sweeper.refund_window,
        ))
        .await
        {
            Ok(Settled::Paid) => report.settled += 1,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(task_id = %record.task.id, code = %err.code, "settlement failed")
            }
        }
    }
    report.disputes_escalated = escalate_overdue_disputes(sweeper).await?;
    report.webhooks_redriven = redrive_webhook_events(sweeper).await?;
    report.sandboxes_destroyed = destroy_leaked_sandboxes(sweeper).await?;
    report.workflows_advanced = advance_due_workflows(sweeper).await?;
    tracing::info!(?report, "sweep");
    Ok(report)
}

/// Past its approval's `expiresAt`: the task cancelled, its hold voided.
async fn expire_approval(sweeper: &Sweeper, task_id: &TaskId) -> Result<bool, ApiError> {
    let id = aicity_domain::embassy::approval_id(task_id);
    let approval = aicity_tasks::approvals::load(&sweeper.ctx, &id).await?;
    aicity_tasks::approvals::expire(&sweeper.ctx, &approval, sweeper.clock.now()).await
}

/// Assigned but never started: the slot goes back to the agent and the task to routing.
async fn reroute(sweeper: &Sweeper, task_id: &TaskId) -> Result<bool, ApiError> {
    let cutoff = sweeper.cutoff(sweeper.deadlines.start);
    let saved = apply(&sweeper.ctx, task_id, None, |loaded| {
        let task = &loaded.task.task;
        let stale = aicity_domain::task::timing::watch(task)
            .is_some_and(|(watch, since)| watch == Watch::Start && since.unix_timestamp() < cutoff);
        if !stale {
            return Ok(None);
        }
        let status = transition(task.status, TaskEvent::RoutingStarted, Actor::Platform)
            .map_err(|_| ApiError::internal())?;
        let mut next = task.clone();
        next.status = status;
        // It let the task lapse: never offer it to that agent again.
        next.declined_by.extend(task.agent_id);
        next.agent_id = None;
        next.agreed_price = None;
        next.assigned_at = None;
        let mut change = Change::new(next).event(
            EventType::Status,
            json!({ "status": status, "reason": "the assigned agent did not start" }),
        );
        if let Some(record) = &loaded.agent {
            let mut agent: Agent = record.agent.clone();
            outcomes::abandoned(&mut agent, *task_id);
            change = change.agent(agent);
        }
        Ok(Some(change))
    })
    .await?;
    let rerouted = saved.task.status == TaskStatus::Routing && saved.task.agent_id.is_none();
    if rerouted {
        messages::send(&sweeper.sqs, &sweeper.routing_queue_url, *task_id).await;
    }
    Ok(rerouted)
}

/// Executing past the deadline: failed with `timeout`, the hold released.
async fn time_out(sweeper: &Sweeper, task_id: &TaskId) -> Result<bool, ApiError> {
    let cutoff = sweeper.cutoff(sweeper.deadlines.execution);
    let saved = apply(&sweeper.ctx, task_id, None, |loaded| {
        let task = &loaded.task.task;
        let overdue = aicity_domain::task::timing::watch(task).is_some_and(|(watch, since)| {
            watch == Watch::Execution && since.unix_timestamp() < cutoff
        });
        if !overdue {
            return Ok(None);
        }
        let status = transition(task.status, TaskEvent::TimedOut, Actor::Platform)
            .map_err(|_| ApiError::internal())?;
        let mut next = task.clone();
        next.status = status;
        next.failure_reason = Some(FailureReason::Timeout);
        next.error_message = Some("The task ran past its execution deadline".into());
        next.completed_at = Some(aicity_domain::timestamps::now());
        let mut change = Change::new(next)
            .event(EventType::Status, json!({ "status": status }))
            .event(
                EventType::Error,
                json!({ "reason": FailureReason::Timeout }),
            )
            .money(Money::Void);
        if let Some(record) = &loaded.agent {
            let mut agent: Agent = record.agent.clone();
            outcomes::failed(&mut agent, *task_id, Outcome::TimedOut);
            change = change.agent(agent);
        }
        Ok(Some(change))
    })
    .await?;
    Ok(saved.task.failure_reason == Some(FailureReason::Timeout)
        && saved.task.status == TaskStatus::Failed)
}

/// Filed disputes past their response deadline go to review without the seller's
/// answer. Never a refund: only an admin's ruling moves the frozen money.
async fn escalate_overdue_disputes(sweeper: &Sweeper) -> Result<usize, ApiError> {
    let now = sweeper.clock.now();
    let overdue = aicity_store::disputes::overdue(
        sweeper.ctx.db(),
        &sweeper.ctx.table,
        now.unix_timestamp(),
        sweeper.budget,
    )
    .await?;
    let mut escalated = 0;
    for dispute in overdue {
        let id = dispute.id;
        let step = Box::pin(disputes::act(
            &sweeper.ctx,
            dispute,
            |_| Party::Platform,
            &disputes::Request::Escalate,
            now,
        ));
        match step.await {
            Ok(after) if after.status == DisputeStatus::UnderReview => escalated += 1,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(dispute_id = %id, code = %err.code, "dispute escalation failed")
            }
        }
    }
    Ok(escalated)
}

/// Webhook events a minute old and not fanned out: their send was lost (or the fan-out
/// keeps failing and its message is on its way back anyway: a duplicate is harmless).
async fn redrive_webhook_events(sweeper: &Sweeper) -> Result<usize, ApiError> {
    let ctx = &sweeper.ctx;
    if ctx.webhook_queue_url.is_none() {
        return Ok(0);
    }
    let ids = aicity_store::webhook_events::undispatched_before(
        ctx.db(),
        &ctx.table,
        sweeper.cutoff(Duration::from_secs(60)),
        sweeper.budget,
    )
    .await?;
    let mut events = Vec::new();
    for id in &ids {
        match aicity_store::webhook_events::get(ctx.db(), &ctx.table, id).await {
            Ok(record) => events.push(record.event),
            Err(err) => tracing::warn!(event_id = %id, error = %err, "webhook event unreadable"),
        }
    }
    aicity_tasks::webhook_events::send(ctx, &events).await;
    Ok(events.len())
}

/// Sandboxes whose task finished (after a grace) or that outlived their maximum age.
async fn advance_due_workflows(sweeper: &Sweeper) -> Result<usize, ApiError> {
    let due = aicity_store::workflows::due_before(
        sweeper.ctx.db(),
        &sweeper.ctx.table,
        sweeper.cutoff(sweeper.deadlines.workflow),
        sweeper.budget,
    )
    .await?;
    let mut advanced = 0;
    for id in due {
        match aicity_tasks::workflows::advance_boxed(&sweeper.ctx, &id).await {
            Ok(()) => advanced += 1,
            Err(err) => {
                tracing::warn!(workflow_id = %id, code = %err.code, "workflow advance failed")
            }
        }
    }
    Ok(advanced)
}

async fn destroy_leaked_sandboxes(sweeper: &Sweeper) -> Result<usize, ApiError> {
    let ctx = &sweeper.ctx;
    let grace_cutoff = sweeper.cutoff(sweeper.deadlines.sandbox_grace);
    let max_age_cutoff = sweeper.cutoff(sweeper.deadlines.sandbox_max_age);
    let due = task_store::due_before(
        ctx.db(),
        &ctx.table,
        SANDBOX_WATCH,
        grace_cutoff,
        sweeper.budget,
    )
    .await?;
    let mut destroyed = 0;
    for item in due {
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let (sandbox, task_id, sort) = (text("sandboxId"), text("taskId"), text("GSI3SK"));
        let created: i64 = sort
            .split('#')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let task_done = match task_id.parse::<TaskId>() {
            Ok(id) => match task_store::get(ctx.db(), &ctx.table, &id).await {
                Ok(record) => record.task.status.is_terminal(),
                Err(StoreError::NotFound) => true,
                Err(err) => return Err(err.into()),
            },
            Err(_) => true,
        };
        if !(task_done || created < max_age_cutoff) {
            continue;
        }
        match sweeper.sandboxes.destroy(&sandbox).await {
            Ok(_) => {
                ctx.db()
                    .delete_item()
                    .table_name(&ctx.table)
                    .key("PK", item["PK"].clone())
                    .key("SK", item["SK"].clone())
                    .send()
                    .await
                    .map_err(|e| ApiError::from(StoreError::aws(e)))?;
                destroyed += 1;
            }
            Err(err) => {
                tracing::warn!(sandbox, error = %err, "sandbox not destroyed; next run retries")
            }
        }
    }
    Ok(destroyed)
}
