//! A dispute's life after filing: the seller's response, the sweep's escalation, the
//! buyer's withdrawal and the admin's ruling.
//!
//! Each is a task step ([`apply`]): the dispute item (written over the status it was
//! read in), the task's copy of that status, the money and the agent commit in one
//! transaction, conditional on the task's version. So a ruling and a withdrawal, or a
//! response and the sweep, can never both happen; the loser reads again and is told
//! why.

use std::sync::Mutex;
use std::time::Duration;

use aicity_domain::embassy::AuditTarget;
use aicity_domain::ids::{AgentId, DisputeId, OwnerId};
use aicity_domain::money::Cents;
use aicity_domain::task::dispute::{
    Action, Dispute, DisputeError, Outcome, Party, Resolution, step,
};
use aicity_domain::task::model::EventType;
use aicity_domain::task::{Actor, TaskEvent, transition};
use aicity_domain::{ApiError, ErrorCode, timestamps};
use aicity_http::Context;
use aicity_http::audit::Auditor;
use aicity_store::StoreError;
use aicity_store::config::MissingEnv;
use aicity_store::disputes;
use serde_json::json;
use time::OffsetDateTime;

use crate::change::{Change, Money, apply};
use crate::outcomes;

/// How long a buyer may file, and how long the seller's side has to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisputeRules {
    pub window: Duration,
    pub response_time: Duration,
}

impl Default for DisputeRules {
    fn default() -> Self {
        Self {
            window: aicity_domain::task::dispute::DEFAULT_WINDOW,
            response_time: aicity_domain::task::dispute::DEFAULT_RESPONSE_TIME,
        }
    }
}

fn whole(name: &'static str, unit: u64, default: Duration) -> Result<Duration, MissingEnv> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| Duration::from_secs(n * unit))
            .ok_or(MissingEnv(name)),
        _ => Ok(default),
    }
}

impl DisputeRules {
    /// `DISPUTE_WINDOW_DAYS` (default 7) and `DISPUTE_RESPONSE_HOURS` (default 48).
    pub fn from_env() -> Result<Self, MissingEnv> {
        let defaults = Self::default();
        Ok(Self {
            window: whole("DISPUTE_WINDOW_DAYS", 24 * 3600, defaults.window)?,
            response_time: whole("DISPUTE_RESPONSE_HOURS", 3600, defaults.response_time)?,
        })
    }
}

/// What a party asks of a dispute.
#[derive(Debug, Clone)]
pub enum Request {
    /// The seller's side answers; `by` is the agent or owner id that answered.
    Respond {
        response: String,
        by: String,
    },
    /// The response deadline passed unanswered (the sweep).
    Escalate,
    Withdraw,
    /// An admin rules: `refund` cents of the charge back to the buyer.
    Resolve {
        outcome: Outcome,
        refund: Cents,
        note: String,
        by: OwnerId,
    },
}

impl Request {
    /// What the step means for the seller agent's record: the one place Courts hands
    /// its agent-side effects to reputation ([`outcomes::dispute`]).
    fn agent_outcome(&self) -> Option<aicity_domain::identity::Outcome> {
        use aicity_domain::identity::Outcome as Record;
        match self {
            Request::Respond { .. } | Request::Escalate => None,
            Request::Withdraw => Some(Record::DisputeWithdrawn),
            Request::Resolve {
                outcome: Outcome::Seller,
                ..
            } => Some(Record::DisputeWon),
            Request::Resolve { .. } => Some(Record::DisputeLost),
        }
    }

    fn action(&self) -> Action {
        match self {
            Request::Respond { .. } => Action::Respond,
            Request::Escalate => Action::Escalate,
            Request::Withdraw => Action::Withdraw,
            Request::Resolve { .. } => Action::Resolve,
        }
    }

    /// The audit trail's name for a party's step, and the agent it concerns.
    fn audited(&self, dispute: &Dispute) -> Option<(&'static str, Option<AgentId>)> {
        match self {
            Request::Respond { .. } => Some(("dispute.responded", dispute.agent_id)),
            Request::Withdraw => Some(("dispute.withdrawn", dispute.buyer_agent_id)),
            Request::Escalate | Request::Resolve { .. } => None,
        }
    }
}

pub fn not_found() -> ApiError {
    ApiError::with_message(ErrorCode::CourtCaseNotFound, "No dispute with this id")
}

pub fn forbidden() -> ApiError {
    ApiError::with_message(
        ErrorCode::CourtCaseForbidden,
        "You are not a party to this dispute",
    )
}

/// A refused step as the API says it.
pub fn refused(err: DisputeError, dispute: &Dispute) -> ApiError {
    match err {
        DisputeError::Forbidden { .. } => forbidden(),
        DisputeError::DeadlinePassed => ApiError::with_message(
            ErrorCode::ResponseDeadlinePassed,
            "The response deadline has passed; the dispute proceeds without a response",
        )
        .details(json!({ "responseDeadline": dispute.response_deadline })),
        DisputeError::NotAccepting => ApiError::with_message(
            ErrorCode::DisputeNotAcceptingResponses,
            format!("The dispute is {} and takes no response", dispute.status),
        )
        .details(json!({ "status": dispute.status, "responded": dispute.response.is_some() })),
        DisputeError::InvalidState { from, .. } => {
            ApiError::with_message(ErrorCode::InvalidState, format!("The dispute is {from}"))
                .details(json!({ "status": from }))
        }
    }
}

/// Reads a dispute; unknown is `404 COURT_CASE_NOT_FOUND`.
pub async fn get(ctx: &Context, id: &DisputeId) -> Result<Dispute, ApiError> {
    match disputes::get(ctx.db(), &ctx.table, id).await {
        Ok(dispute) => Ok(dispute),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}

/// The dispute after the step, or why not.
fn decide(
    table: &str,
    dispute: &Dispute,
    party: Party,
    request: &Request,
    now: OffsetDateTime,
    loaded: &crate::change::Loaded,
    auditor: Option<&Auditor>,
) -> Result<Change, ApiError> {
    let task = &loaded.task.task;
    let next_case = step(
        dispute.case(),
        request.action(),
        party,
        dispute.deadline_passed(now),
    )
    .map_err(|err| refused(err, dispute))?;
    let at = timestamps::format(now);
    let mut next = dispute.clone();
    next.status = next_case.status;
    next.updated_at = Some(at.clone());
    let mut task_next = task.clone();
    task_next.dispute_status = Some(next.status);
    let mut money = Money::Untouched;
    let mut ruling: Option<Outcome> = None;
    match request {
        Request::Respond { response, by } => {
            next.response = Some(response.trim().to_owned());
            next.responded_at = Some(at.clone());
            next.responded_by = Some(by.clone());
        }
        Request::Escalate => {}
        Request::Withdraw => {
            next.withdrawn_at = Some(at.clone());
            money = Money::Unfreeze {
                refund: Cents::ZERO,
            };
        }
        Request::Resolve {
            outcome,
            refund,
            note,
            by,
        } => {
            next.resolution = Some(Resolution {
                outcome: *outcome,
                refund_amount: *refund,
                note: note.trim().to_owned(),
                resolved_by: *by,
                resolved_at: at.clone(),
            });
            money = Money::Unfreeze { refund: *refund };
            ruling = Some(*outcome);
            if *outcome == Outcome::Buyer {
                task_next.status = transition(task.status, TaskEvent::Refunded, Actor::Platform)
                    .map_err(|_| ApiError::internal())?;
            }
        }
    }
    // Whatever of the earning is not refunded is paid now: the dispute was the only
    // thing holding it.
    if matches!(money, Money::Unfreeze { .. }) && task_next.status == task.status {
        task_next.settled_at = Some(at.clone());
    }
    let mut change = Change::new(task_next.clone())
        .event(
            EventType::Dispute,
            json!({
                "disputeId": dispute.id,
                "status": next.status,
                "outcome": ruling,
            }),
        )
        .money(money)
        .with_item(disputes::save_item(table, dispute.status, &next)?);
    if task_next.status != task.status {
        change = change.event(EventType::Status, json!({ "status": task_next.status }));
    }
    // A party's step carries its audit entry (each run of this builds a new one; only
    // the committed run's lands).
    if let (Some(auditor), Some((action, agent))) = (auditor, request.audited(dispute)) {
        change = change.with_item(auditor.item(
            table,
            action,
            AuditTarget::new("dispute", dispute.id),
            agent,
            json!({ "taskId": task.id, "status": next.status, "amount": dispute.amount }),
        )?);
    }
    if let (Some(outcome), Some(record)) = (request.agent_outcome(), &loaded.agent) {
        let mut agent = record.agent.clone();
        outcomes::dispute(&mut agent, task.id, outcome);
        change = change.agent(agent);
    }
    Ok(change)
}

/// Takes one step on `dispute` for `party`; the dispute as it is afterwards.
///
/// The task carries a copy of its dispute's status, changed only with the dispute: if
/// the two disagree, the dispute changed since it was read, so it is read again and
/// the step decided again.
pub async fn act(
    ctx: &Context,
    dispute: Dispute,
    party: impl Fn(&Dispute) -> Party,
    request: &Request,
    now: OffsetDateTime,
) -> Result<Dispute, ApiError> {
    act_as(ctx, dispute, party, request, now, None).await
}

/// [`act`] for a caller: a party's response or withdrawal is recorded in `auditor`'s
/// audit trail (`dispute.responded`, `dispute.withdrawn`) in the step's transaction.
pub async fn act_as(
    ctx: &Context,
    dispute: Dispute,
    party: impl Fn(&Dispute) -> Party,
    request: &Request,
    now: OffsetDateTime,
    auditor: Option<&Auditor>,
) -> Result<Dispute, ApiError> {
    let mut dispute = dispute;
    for _ in 0..4 {
        let stale = Mutex::new(false);
        let role = party(&dispute);
        apply(ctx, &dispute.task_id, None, |loaded| {
            let task = &loaded.task.task;
            if task.dispute_id != Some(dispute.id) {
                tracing::error!(dispute_id = %dispute.id, task_id = %task.id, "the task does not name this dispute");
                return Err(ApiError::internal());
            }
            if task.dispute_status != Some(dispute.status) {
                *stale.lock().expect("lock") = true;
                return Ok(None);
            }
            decide(&ctx.table, &dispute, role, request, now, loaded, auditor).map(Some)
        })
        .await?;
        if !*stale.lock().expect("lock") {
            return get(ctx, &dispute.id).await;
        }
        dispute = get(ctx, &dispute.id).await?;
    }
    Err(ApiError::new(ErrorCode::ServiceUnavailable))
}
