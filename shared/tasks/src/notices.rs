//! The owner's notifications a task step causes, written in the step's transaction:
//! a buyer's task completed or failed, a dispute filed against an owner's agent or
//! resolved, an agent suspended.

use aicity_domain::ApiError;
use aicity_domain::embassy::{NOTIFICATION_PREFIX, Notification, NotificationType};
use aicity_domain::identity::{Agent, AgentStatus};
use aicity_domain::ids::OwnerId;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::dispute::DisputeStatus;
use aicity_domain::task::model::Task;
use aicity_store::vault::Labeled;
use serde_json::{Value, json};

use crate::change::Loaded;

/// A notification for `owner`, as an item of the step's transaction.
pub fn item(
    table: &str,
    owner: &OwnerId,
    kind: NotificationType,
    title: String,
    body: String,
    data: Value,
) -> Result<Labeled, ApiError> {
    let notification = Notification {
        id: aicity_store::embassy::new_id(NOTIFICATION_PREFIX),
        kind,
        title,
        body,
        created_at: aicity_domain::timestamps::now(),
        data,
    };
    aicity_store::embassy::notification_item(table, owner, &notification).map_err(ApiError::from)
}

/// What the step from `loaded` to `after` (and the agent to `agent_after`) tells owners.
pub fn for_change(
    table: &str,
    loaded: &Loaded,
    after: &Task,
    agent_after: Option<&Agent>,
) -> Result<Vec<Labeled>, ApiError> {
    let before = &loaded.task.task;
    let mut items = Vec::new();
    let task_data =
        json!({ "taskId": after.id, "taskType": after.task_type, "agentId": after.agent_id });
    if before.status != after.status {
        match after.status {
            TaskStatus::Completed => items.push(item(
                table,
                &after.caller_owner_id,
                NotificationType::TaskCompleted,
                format!("Task {} completed", after.id),
                format!(
                    "Your {} task was completed{}.",
                    after.task_type,
                    after
                        .credits_charged
                        .map(|c| format!(" and charged {} cents", c.0))
                        .unwrap_or_default()
                ),
                task_data.clone(),
            )?),
            TaskStatus::Failed => items.push(item(
                table,
                &after.caller_owner_id,
                NotificationType::TaskFailed,
                format!("Task {} failed", after.id),
                format!(
                    "Your {} task failed; its credits were released.",
                    after.task_type
                ),
                task_data.clone(),
            )?),
            _ => {}
        }
    }
    let seller_owner = loaded.agent.as_ref().map(|a| a.agent.owner_id);
    if before.dispute_status != after.dispute_status {
        match after.dispute_status {
            Some(DisputeStatus::Filed) if before.dispute_status.is_none() => {
                if let Some(owner) = seller_owner {
                    items.push(item(
                        table,
                        &owner,
                        NotificationType::DisputeFiled,
                        format!("Dispute filed on task {}", after.id),
                        "A buyer disputed your agent's work; its earning is frozen until Courts decides."
                            .into(),
                        json!({ "taskId": after.id, "disputeId": after.dispute_id }),
                    )?);
                }
            }
            Some(DisputeStatus::Resolved | DisputeStatus::Withdrawn) => {
                let data = json!({ "taskId": after.id, "disputeId": after.dispute_id, "status": after.dispute_status });
                let mut owners = vec![after.caller_owner_id];
                owners.extend(seller_owner.filter(|o| *o != after.caller_owner_id));
                for owner in owners {
                    items.push(item(
                        table,
                        &owner,
                        NotificationType::DisputeResolved,
                        format!("Dispute on task {} closed", after.id),
                        format!(
                            "The dispute was {}.",
                            if after.dispute_status == Some(DisputeStatus::Withdrawn) {
                                "withdrawn by the buyer"
                            } else {
                                "resolved by Courts"
                            }
                        ),
                        data.clone(),
                    )?);
                }
            }
            _ => {}
        }
    }
    if let (Some(before_agent), Some(after_agent)) = (loaded.agent.as_ref(), agent_after) {
        if before_agent.agent.status != AgentStatus::Suspended
            && after_agent.status == AgentStatus::Suspended
        {
            items.push(item(
                table,
                &after_agent.owner_id,
                NotificationType::AgentSuspended,
                format!("Agent {} suspended", after_agent.display_name),
                "Three consecutive failures suspended your agent; reactivate it after the cool-down."
                    .into(),
                json!({ "agentId": after_agent.id }),
            )?);
        }
    }
    Ok(items)
}
