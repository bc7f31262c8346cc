//! Paying the agent once the refund window has closed: the escrowed earning moves to
//! its wallet, exactly once, and only if the task is still completed (not refunded).
//! Settlement and a thumbs-down (or a dispute) all start from the same task state and
//! the same posted hold, so whichever commits first wins and the others find nothing to
//! do (or, for a dispute, take the paid earning back out of the wallet).

use std::time::Duration;

use aicity_domain::ApiError;
use aicity_domain::ids::TaskId;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::timing::Clock;
use aicity_domain::timestamps;
use aicity_http::Context;
use aicity_store::vault::HoldStatus;
use time::OffsetDateTime;

use crate::change::{Change, Money, apply};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The agent was paid now.
    Paid,
    /// The window is still open for this long.
    NotYet(Duration),
    /// Nothing to pay: refunded, failed, or paid before.
    Nothing,
}

pub async fn settle(
    ctx: &Context,
    task_id: &TaskId,
    clock: &dyn Clock,
    window: Duration,
) -> Result<Settled, ApiError> {
    let now = clock.now();
    let cell = std::sync::Mutex::new(Settled::Nothing);
    apply(ctx, task_id, None, |loaded| {
        let task = &loaded.task.task;
        let posted = loaded
            .hold
            .as_ref()
            .is_some_and(|h| h.status == HoldStatus::Posted);
        // An open dispute froze the earning: its ruling (or withdrawal) pays or refunds
        // it, never settlement.
        if task.status != TaskStatus::Completed
            || task.settled_at.is_some()
            || task.dispute_open()
            || !posted
        {
            *cell.lock().expect("lock") = Settled::Nothing;
            return Ok(None);
        }
        let completed = task
            .completed_at
            .as_deref()
            .and_then(timestamps::parse)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let opens = completed + window;
        if now < opens {
            let remaining = (opens - now).try_into().unwrap_or(Duration::ZERO);
            *cell.lock().expect("lock") = Settled::NotYet(remaining);
            return Ok(None);
        }
        *cell.lock().expect("lock") = Settled::Paid;
        let mut next = task.clone();
        next.settled_at = Some(aicity_domain::timestamps::now());
        Ok(Some(Change::new(next).money(Money::Release)))
    })
    .await?;
    Ok(cell.into_inner().unwrap_or(Settled::Nothing))
}

/// `REFUND_WINDOW_SECONDS` (default ten minutes): how long a thumbs-down refunds, and
/// so how long the agent's earning stays in escrow.
pub fn refund_window_from_env() -> Result<Duration, aicity_store::config::MissingEnv> {
    match std::env::var("REFUND_WINDOW_SECONDS") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| aicity_store::config::MissingEnv("REFUND_WINDOW_SECONDS")),
        _ => Ok(aicity_domain::task::timing::REFUND_WINDOW),
    }
}
