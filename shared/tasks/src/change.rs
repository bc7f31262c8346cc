//! Read, decide, commit — and on a lost race, read and decide again.

use aicity_domain::identity::Agent;
use aicity_domain::identity::agent::MAX_ACTIVE_AGENTS_PER_OWNER;
use aicity_domain::ids::{AgentId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::{EventType, Task};
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::Context;
use aicity_store::StoreError;
use aicity_store::agents::{self, AgentRecord};
use aicity_store::tasks::{self, TaskRecord};
use aicity_store::transact::Transaction;
use aicity_store::vault::{self, Hold, HoldStatus};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{notices, webhook_events};

/// How often a step is re-read and re-decided after losing a race.
const ATTEMPTS: usize = 5;

/// What happens to the task's hold in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Money {
    Untouched,
    /// Charge the agent's price: 85/15 split, the rest released.
    Post {
        agent: AgentId,
        charge: Cents,
    },
    /// Release everything.
    Void,
    /// Pay the agent: its escrowed earning to its wallet (the window closed).
    Release,
    /// Refund a completed task in full (earning out of escrow, fee out of revenue).
    Reverse,
    /// A dispute freezes the earning: out of escrow, or back out of the wallet if it
    /// was already paid (what the wallet cannot cover becomes its shortfall).
    Freeze,
    /// A dispute ends: `refund` of the charge back to the buyer, the rest of the
    /// frozen earning to the agent (its shortfall first).
    Unfreeze {
        refund: Cents,
    },
}

/// One step of a task's life.
#[derive(Debug, Clone)]
pub struct Change {
    pub task: Task,
    pub events: Vec<(EventType, Value)>,
    /// The agent as it will be (stats, maybe suspension), when it changes.
    pub agent: Option<Agent>,
    pub money: Money,
    /// Further items for the same transaction (e.g. a dispute record).
    pub extra: Vec<aicity_store::vault::Labeled>,
    /// Made by the workflow engine itself, which moves on by itself: a step it ends
    /// does not call it back.
    pub by_workflow: bool,
}

impl Change {
    pub fn new(task: Task) -> Self {
        Self {
            task,
            events: Vec::new(),
            agent: None,
            money: Money::Untouched,
            extra: Vec::new(),
            by_workflow: false,
        }
    }

    pub fn by_workflow(mut self) -> Self {
        self.by_workflow = true;
        self
    }

    pub fn with_item(mut self, item: aicity_store::vault::Labeled) -> Self {
        self.extra.push(item);
        self
    }

    pub fn event(mut self, kind: EventType, data: Value) -> Self {
        self.events.push((kind, data));
        self
    }

    pub fn agent(mut self, agent: Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    pub fn money(mut self, money: Money) -> Self {
        self.money = money;
        self
    }
}

/// What a step decides from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub task: TaskRecord,
    /// The agent the step is about: the assigned one, or the candidate being assigned.
    pub agent: Option<AgentRecord>,
    pub hold: Option<Hold>,
}

pub fn task_not_found() -> ApiError {
    ApiError::with_message(ErrorCode::TaskNotFound, "No task with this id")
}

async fn load(
    ctx: &Context,
    task_id: &TaskId,
    agent_id: Option<AgentId>,
) -> Result<Loaded, ApiError> {
    let task = match tasks::get(ctx.db(), &ctx.table, task_id).await {
        Ok(task) => task,
        Err(StoreError::NotFound) => return Err(task_not_found()),
        Err(err) => return Err(err.into()),
    };
    let agent = match agent_id.or(task.task.agent_id) {
        Some(id) => match agents::get(ctx.db(), &ctx.table, &id).await {
            Ok(record) => Some(record),
            Err(StoreError::NotFound) => None,
            Err(err) => return Err(err.into()),
        },
        None => None,
    };
    let hold = match vault::hold(ctx.db(), &ctx.table, task_id).await {
        Ok(hold) => Some(hold),
        Err(StoreError::NotFound) => None,
        Err(err) => return Err(err.into()),
    };
    Ok(Loaded { task, agent, hold })
}

/// Applies one step to a task. `decide` sees the task as it is and returns the change,
/// `None` when there is nothing to do (a replay), or an error (wrong state, forbidden).
/// `candidate` loads that agent instead of the assigned one (routing).
pub async fn apply<F>(
    ctx: &Context,
    task_id: &TaskId,
    candidate: Option<AgentId>,
    decide: F,
) -> Result<TaskRecord, ApiError>
where
    F: Fn(&Loaded) -> Result<Option<Change>, ApiError>,
{
    let mut last_error = None;
    for attempt in 1..=ATTEMPTS {
        let loaded = load(ctx, task_id, candidate).await?;
        let Some(change) = decide(&loaded)? else {
            return Ok(loaded.task);
        };
        let now = OffsetDateTime::now_utc();
        let workflow_due = crate::workflows::step_ended(&loaded.task.task, &change.task)
            .filter(|_| !change.by_workflow);
        let (mut items, record) =
            tasks::save_items(&ctx.table, &loaded.task, change.task, change.events, now)?;
        let agent_after = change.agent.clone();
        if let (Some(after), Some(before)) = (change.agent, loaded.agent.as_ref()) {
            let (agent_items, _) =
                agents::save_items(&ctx.table, before, after, None, MAX_ACTIVE_AGENTS_PER_OWNER)?;
            items.extend(agent_items);
        }
        // Paying or taking back an earning depends on the agent's wallet (what it owes,
        // what it has): read it now, strongly consistent; its balances are conditions
        // of the transaction, so a change in between cancels it and we decide again.
        let wallet = match (change.money, loaded.hold.as_ref().and_then(|h| h.agent_id)) {
            (Money::Release | Money::Freeze | Money::Unfreeze { .. }, Some(agent)) => {
                Some(vault::wallet(ctx.db(), &ctx.table, &agent).await?)
            }
            _ => None,
        };
        let money = match (change.money, loaded.hold.as_ref(), wallet.as_ref()) {
            (Money::Untouched, _, _) => None,
            (Money::Post { agent, charge }, Some(hold), _)
                if hold.status == HoldStatus::Pending =>
            {
                Some(vault::post_items(&ctx.table, hold, &agent, charge, now))
            }
            (Money::Void, Some(hold), _) if hold.status == HoldStatus::Pending => {
                Some(vault::void_items(&ctx.table, hold, now))
            }
            (Money::Release, Some(hold), Some(wallet)) if hold.status == HoldStatus::Posted => {
                Some(vault::release_items(&ctx.table, hold, wallet, now))
            }
            (Money::Reverse, Some(hold), _) if hold.status == HoldStatus::Posted => {
                Some(vault::reverse_items(&ctx.table, hold, now))
            }
            (Money::Freeze, Some(hold), Some(wallet))
                if matches!(hold.status, HoldStatus::Posted | HoldStatus::Released) =>
            {
                Some(vault::freeze_items(&ctx.table, hold, wallet, now))
            }
            (Money::Unfreeze { refund }, Some(hold), Some(wallet))
                if hold.status == HoldStatus::Frozen =>
            {
                Some(vault::unfreeze_items(&ctx.table, hold, wallet, refund, now))
            }
            // The hold is read after the task: a racing run of the same step (a
            // redelivery) may have committed in between, so the task read is stale.
            // Read both again; only a hold that stays out of place is a bug.
            _ if attempt < ATTEMPTS => continue,
            (money, hold, _) => {
                tracing::error!(task_id = %task_id, ?money, hold = ?hold.map(|h| h.status), "the hold is not where this step starts");
                return Err(ApiError::internal());
            }
        };
        if let Some(built) = money {
            let (money_items, _) = built.map_err(|err| {
                tracing::error!(task_id = %task_id, error = %err, "building the money step failed");
                ApiError::internal()
            })?;
            items.extend(money_items);
            items.extend(budget_given_back(
                &ctx.table,
                &record.task,
                change.money,
                loaded.hold.as_ref(),
            )?);
            // The estimate's and the profitability report's counters, in the same
            // transaction as the money they count.
            items.extend(crate::economics::items(
                &ctx.table,
                &record.task,
                change.money,
                loaded.hold.as_ref(),
                now,
            )?);
        }
        items.extend(notices::for_change(
            &ctx.table,
            &loaded,
            &record.task,
            agent_after.as_ref(),
        )?);
        let events = webhook_events::for_change(&loaded, &record.task);
        items.extend(webhook_events::items(&ctx.table, &events)?);
        items.extend(change.extra);
        // A workflow's step ended: the workflow is due for its engine in the same
        // transaction, so the next move happens even if this process dies right after.
        if let Some(workflow) = &workflow_due {
            items.push(aicity_store::workflows::due_item(
                &ctx.table, workflow, now,
            )?);
        }
        // A task leaving `pending_approval` ends its approval in the same transaction
        // (the Embassy's deny and expiry say how; otherwise approved or cancelled).
        let leaves_approval = loaded.task.task.status == TaskStatus::PendingApproval
            && record.task.status != TaskStatus::PendingApproval;
        if leaves_approval && !items.iter().any(|(label, _)| label == "approval") {
            use aicity_domain::embassy::{ApprovalStatus, approval_id};
            let to = if record.task.status == TaskStatus::Submitted {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Cancelled
            };
            items.push(aicity_store::embassy::approval_decided_item(
                &ctx.table,
                &approval_id(task_id),
                to,
                &aicity_domain::timestamps::format(now),
                None,
            )?);
        }
        let mut transaction = Transaction::new();
        transaction.extend(items);
        match transaction.commit(ctx.db()).await {
            Ok(()) => {
                if aicity_store::faults::fires(
                    &ctx.table,
                    aicity_store::faults::point::BEFORE_WEBHOOK_SEND,
                ) {
                    return Err(ApiError::internal());
                }
                webhook_events::send(ctx, &events).await;
                if let Some(workflow) = &workflow_due {
                    if aicity_store::faults::fires(
                        &ctx.table,
                        aicity_store::faults::point::BEFORE_WORKFLOW_ADVANCE,
                    ) {
                        return Err(ApiError::internal());
                    }
                    // Best effort here; the due mark makes the sweeper finish it.
                    if let Err(err) = crate::workflows::advance_boxed(ctx, workflow).await {
                        tracing::warn!(workflow_id = %workflow, code = %err.code, "workflow step left to the sweeper");
                    }
                }
                return Ok(record);
            }
            Err(err)
                if err.failed_labels().iter().any(|l| {
                    matches!(
                        *l,
                        "task" | "agent" | "hold" | "event" | "dispute" | "approval" | "workflow"
                    ) || l.starts_with("wallet:")
                }) =>
            {
                // Somebody else changed the task, the agent, the hold or the wallet a
                // step read (what it owes or has): decide again.
                last_error = Some(err);
            }
            Err(err) => return Err(err.into()),
        }
    }
    tracing::warn!(task_id = %task_id, failed = ?last_error.map(|e| e.failed_labels().join(",")), "gave up after repeated conflicts");
    // Not a state the caller asked about: the task kept changing under us. Retryable,
    // so a consumer redelivers instead of dropping the step.
    Err(ApiError::new(ErrorCode::ServiceUnavailable))
}

/// What the submitting agent's budget gets back when the hold ends: all of it when
/// voided, what was not charged when posted (budgets count held plus charged).
fn budget_given_back(
    table: &str,
    task: &Task,
    money: Money,
    hold: Option<&Hold>,
) -> Result<Option<aicity_store::vault::Labeled>, ApiError> {
    let (Some(agent), Some(day), Some(hold)) = (task.caller_agent_id, &task.budget_day, hold)
    else {
        return Ok(None);
    };
    let back = match money {
        Money::Void => hold.amount,
        Money::Post { charge, .. } => Cents(hold.amount.0 - charge.0),
        _ => return Ok(None),
    };
    if !back.is_positive() {
        return Ok(None);
    }
    aicity_store::embassy::give_back_item(table, &agent, day, back)
        .map(Some)
        .map_err(ApiError::from)
}
