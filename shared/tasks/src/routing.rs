//! Routing one task: claim it, pick the best eligible agent, assign it and count it
//! against the agent's capacity in one transaction, so two routers can never overbook.

use aicity_domain::ApiError;
use aicity_domain::ids::{AgentId, TaskId};
use aicity_domain::task::model::{EventType, FailureReason};
use aicity_domain::task::routing::{eligibility, rank, tier_limit};
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_http::Context;
use aicity_store::agents;
use serde_json::json;

use crate::change::{Change, Money, apply};
use crate::outcomes;

/// Candidates tried per routing attempt (the best first).
const CANDIDATES_PER_ATTEMPT: usize = 5;
/// Routing index rows read from each minute of the liveness window.
const ROWS_PER_BUCKET: i32 = 8;

/// The few live agents worth reading for `task`: from the routing index (only agents
/// seen within the liveness window, best score first in each minute), those of
/// another owner whose price and tier fit the budget and who did not let this task
/// lapse before; the best [`CANDIDATES_PER_ATTEMPT`] by the row's score. A bounded
/// read whatever the size of the category.
async fn live_candidates(
    ctx: &Context,
    task: &aicity_domain::task::model::Task,
) -> Result<Vec<AgentId>, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let cutoff = now - ctx.limits.agent_liveness;
    let (rows, _) = agents::live_candidates(
        ctx.db(),
        &ctx.table,
        task.task_type,
        now.unix_timestamp(),
        cutoff.unix_timestamp(),
        ROWS_PER_BUCKET,
    )
    .await?;
    let mut fitting: Vec<_> = rows
        .into_iter()
        .filter(|row| {
            let price = row.profile.pricing.get(&task.task_type).copied();
            row.owner_id != task.caller_owner_id
                && !task.declined_by.contains(&row.profile.id)
                && price.is_some_and(|p| p <= task.max_budget)
                && task.max_budget <= tier_limit(row.profile.trust_tier)
        })
        .collect();
    fitting.sort_by_key(|row| (std::cmp::Reverse(row.profile.overall_score), row.profile.id));
    Ok(fitting
        .into_iter()
        .take(CANDIDATES_PER_ATTEMPT)
        .map(|row| row.profile.id)
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// Assigned to this agent (now, or by an earlier delivery).
    Assigned(AgentId),
    /// The task is past routing (cancelled, already assigned and started, …).
    Nothing,
    /// No agent could take it yet; try again later.
    Retry { attempts: u32 },
    /// No agent after every attempt: the task failed and its hold was released.
    GaveUp,
}

pub async fn route(ctx: &Context, task_id: &TaskId, max_attempts: u32) -> Result<Routed, ApiError> {
    // Claim: submitted (unassigned) → routing. Already routing: a retry, carry on.
    let claimed = apply(ctx, task_id, None, |loaded| {
        let task = &loaded.task.task;
        if task.status != TaskStatus::Submitted || task.agent_id.is_some() {
            return Ok(None);
        }
        let status = transition(task.status, TaskEvent::RoutingStarted, Actor::Platform)
            .map_err(|_| ApiError::internal())?;
        let mut next = task.clone();
        next.status = status;
        Ok(Some(
            Change::new(next).event(EventType::Status, json!({ "status": status })),
        ))
    })
    .await?;
    match (claimed.task.status, claimed.task.agent_id) {
        (TaskStatus::Routing, _) => {}
        (_, Some(agent)) => return Ok(Routed::Assigned(agent)),
        _ => return Ok(Routed::Nothing),
    }
    let task = claimed.task;

    let ids = match task.requested_agent_id {
        Some(agent) => vec![agent],
        None => live_candidates(ctx, &task).await?,
    };
    let ids: Vec<AgentId> = ids
        .into_iter()
        .filter(|id| !task.declined_by.contains(id))
        .collect();
    let records = agents::get_many(ctx.db(), &ctx.table, &ids).await?;
    let candidates: Vec<_> = records.into_iter().map(|r| r.agent).collect();
    let ranked = rank(
        &candidates,
        task.task_type,
        task.max_budget,
        task.caller_owner_id,
        &task.input.description,
    );

    for (candidate, _) in ranked.into_iter().take(CANDIDATES_PER_ATTEMPT) {
        let saved = apply(ctx, task_id, Some(candidate.id), |loaded| {
            let task = &loaded.task.task;
            if task.status != TaskStatus::Routing || task.agent_id.is_some() {
                return Ok(None);
            }
            let Some(record) = &loaded.agent else {
                return Ok(None);
            };
            // Decide on the agent as it is now: its load may have changed since ranking.
            let Ok(price) = eligibility(
                &record.agent,
                task.task_type,
                task.max_budget,
                task.caller_owner_id,
            ) else {
                return Ok(None);
            };
            let Ok(status) = transition(task.status, TaskEvent::AgentAssigned, Actor::Platform)
            else {
                return Ok(None);
            };
            let mut next = task.clone();
            next.status = status;
            next.agent_id = Some(record.agent.id);
            next.agreed_price = Some(price);
            next.assigned_at = Some(aicity_domain::timestamps::now());
            let mut agent = record.agent.clone();
            outcomes::assigned(&mut agent);
            Ok(Some(
                Change::new(next)
                    .event(
                        EventType::Status,
                        json!({ "status": status, "agentId": record.agent.id }),
                    )
                    .agent(agent),
            ))
        })
        .await?;
        if let Some(agent) = saved.task.agent_id {
            return Ok(Routed::Assigned(agent));
        }
        if saved.task.status != TaskStatus::Routing {
            return Ok(Routed::Nothing);
        }
    }

    // Nobody could take it now: count the attempt, or give up.
    let record = apply(ctx, task_id, None, |loaded| {
        let task = &loaded.task.task;
        if task.status != TaskStatus::Routing || task.agent_id.is_some() {
            return Ok(None);
        }
        let attempts = task.routing_attempts + 1;
        let mut next = task.clone();
        next.routing_attempts = attempts;
        if attempts < max_attempts {
            return Ok(Some(Change::new(next)));
        }
        let status = transition(task.status, TaskEvent::RoutingFailed, Actor::Platform)
            .map_err(|_| ApiError::internal())?;
        next.status = status;
        next.failure_reason = Some(FailureReason::NoAgentsAvailable);
        next.error_message = Some("No eligible agent took the task".into());
        next.completed_at = Some(aicity_domain::timestamps::now());
        Ok(Some(
            Change::new(next)
                .event(EventType::Status, json!({ "status": status }))
                .event(
                    EventType::Error,
                    json!({ "reason": FailureReason::NoAgentsAvailable }),
                )
                .money(Money::Void),
        ))
    })
    .await?;
    Ok(match record.task.status {
        TaskStatus::Routing => Routed::Retry {
            attempts: record.task.routing_attempts,
        },
        TaskStatus::Failed => Routed::GaveUp,
        _ => record
            .task
            .agent_id
            .map_or(Routed::Nothing, Routed::Assigned),
    })
}
