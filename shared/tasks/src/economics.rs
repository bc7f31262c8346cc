//! The counters behind `GET /tasks/estimate` and `GET /agents/me/profitability`,
//! written by [`crate::change::apply`] in the transaction of the money step they count
//! (so a replayed step, cancelled by the task's and the hold's conditions, counts
//! nothing; see `aicity_store::stats`).

use aicity_domain::ApiError;
use aicity_domain::task::economics::{CompletionCounters, MoneyStep, Profit, day_name};
use aicity_domain::task::model::Task;
use aicity_store::stats;
use aicity_store::vault::{Hold, Labeled};
use time::OffsetDateTime;

use crate::change::Money;

/// The counter updates of `money` on `task` (as it will be), its `hold` as read:
/// a charge counts a completion of the task type and the agent's revenue and fee; a
/// full refund (thumbs-down) or a dispute's ruling counts what went back to the buyer.
/// The agent's counters are those of the UTC day the money moved.
pub fn items(
    table: &str,
    task: &Task,
    money: Money,
    hold: Option<&Hold>,
    now: OffsetDateTime,
) -> Result<Vec<Labeled>, ApiError> {
    let (agent, step) = match (money, hold) {
        (Money::Post { agent, charge }, _) => (agent, MoneyStep::Charge { charge }),
        (Money::Reverse, Some(hold)) => (
            match hold.agent_id {
                Some(agent) => agent,
                None => return Ok(Vec::new()),
            },
            MoneyStep::Refund {
                charge: hold.charged,
                refund: hold.charged,
            },
        ),
        (Money::Unfreeze { refund }, Some(hold)) => (
            match hold.agent_id {
                Some(agent) => agent,
                None => return Ok(Vec::new()),
            },
            MoneyStep::Refund {
                charge: hold.charged,
                refund,
            },
        ),
        _ => return Ok(Vec::new()),
    };
    let Some(profit) = Profit::of(step) else {
        // The money step itself refuses such amounts; nothing to count.
        return Ok(Vec::new());
    };
    let mut items = Vec::new();
    if let MoneyStep::Charge { charge } = step {
        let counters =
            CompletionCounters::completion(charge, task.quality_score, task.execution_time_ms);
        items.push(stats::completion_item(
            table,
            task.task_type,
            &task.id,
            counters,
        )?);
    }
    if !profit.is_zero() {
        let day = day_name(now.to_offset(time::UtcOffset::UTC).date());
        items.push(stats::profit_item(
            table,
            &agent,
            &day,
            task.task_type,
            profit,
        )?);
    }
    Ok(items)
}
