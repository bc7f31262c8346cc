//! The webhook events a task step causes, recorded in the step's transaction (the
//! outbox, `aicity_store::webhook_events`) and sent to the webhooks queue once it
//! committed. Who gets each:
//!
//! | event | recipients |
//! |---|---|
//! | `task.assigned` | the assigned agent; the buyer (owner, and agent if an agent submitted) |
//! | `task.completed`, `task.failed`, `task.refunded` | the buyer; the assigned agent |
//! | `feedback.received` | the assigned agent and its owner |
//! | `dispute.filed`, `dispute.resolved` | the buyer; the assigned agent and its owner |
//! | `approval.requested` | the owner whose agent submitted (at submit) |

use aicity_domain::ApiError;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::dispute::DisputeStatus;
use aicity_domain::task::model::Task;
use aicity_domain::webhooks::{WebhookEvent, WebhookEventType};
use aicity_http::Context;
use aicity_store::vault::Labeled;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::change::Loaded;

/// The fan-out message on the webhooks queue: the consumer reads the event itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMessage {
    pub event_id: String,
}

fn buyer(task: &Task) -> Vec<String> {
    let mut out = vec![task.caller_owner_id.to_string()];
    out.extend(task.caller_agent_id.map(|a| a.to_string()));
    out
}

fn task_data(task: &Task) -> Value {
    json!({
        "taskId": task.id, "taskType": task.task_type, "status": task.status,
        "agentId": task.agent_id, "maxBudget": task.max_budget,
        "creditsCharged": task.credits_charged, "qualityScore": task.quality_score,
        "failureReason": task.failure_reason,
    })
}

/// The events of the step from `loaded` to `after`.
pub fn for_change(loaded: &Loaded, after: &Task) -> Vec<WebhookEvent> {
    let before = &loaded.task.task;
    let seller: Vec<String> = after.agent_id.map(|a| a.to_string()).into_iter().collect();
    let seller_side: Vec<String> = seller
        .iter()
        .cloned()
        .chain(loaded.agent.as_ref().map(|a| a.agent.owner_id.to_string()))
        .collect();
    let mut events = Vec::new();
    let assigned_now = after.agent_id.is_some()
        && before.agent_id != after.agent_id
        && after.status == TaskStatus::Submitted;
    if assigned_now {
        events.push(WebhookEvent::new(
            WebhookEventType::TaskAssigned,
            task_data(after),
            seller.iter().cloned().chain(buyer(after)).collect(),
        ));
    }
    if before.status != after.status {
        let kind = match after.status {
            TaskStatus::Completed => Some(WebhookEventType::TaskCompleted),
            TaskStatus::Failed => Some(WebhookEventType::TaskFailed),
            TaskStatus::Refunded => Some(WebhookEventType::TaskRefunded),
            _ => None,
        };
        if let Some(kind) = kind {
            events.push(WebhookEvent::new(
                kind,
                task_data(after),
                buyer(after)
                    .into_iter()
                    .chain(seller.iter().cloned())
                    .collect(),
            ));
        }
    }
    if before.feedback.is_none() {
        if let Some(feedback) = after.feedback {
            events.push(WebhookEvent::new(
                WebhookEventType::FeedbackReceived,
                json!({ "taskId": after.id, "feedback": feedback, "status": after.status }),
                seller_side.clone(),
            ));
        }
    }
    if before.dispute_status != after.dispute_status {
        let kind = match after.dispute_status {
            Some(DisputeStatus::Filed) if before.dispute_status.is_none() => {
                Some(WebhookEventType::DisputeFiled)
            }
            Some(DisputeStatus::Resolved | DisputeStatus::Withdrawn) => {
                Some(WebhookEventType::DisputeResolved)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            events.push(WebhookEvent::new(
                kind,
                json!({ "taskId": after.id, "disputeId": after.dispute_id,
                        "disputeStatus": after.dispute_status, "status": after.status }),
                buyer(after)
                    .into_iter()
                    .chain(seller_side.iter().cloned())
                    .collect(),
            ));
        }
    }
    events
}

/// The outbox items of `events`, for the step's transaction.
pub fn items(table: &str, events: &[WebhookEvent]) -> Result<Vec<Labeled>, ApiError> {
    events
        .iter()
        .map(|event| aicity_store::webhook_events::event_item(table, event).map_err(ApiError::from))
        .collect()
}

/// Sends committed events to the webhooks queue. A failed send is logged, not fatal:
/// the sweeper re-drives events not fanned out.
pub async fn send(ctx: &Context, events: &[WebhookEvent]) {
    let Some(queue_url) = ctx.webhook_queue_url.as_deref() else {
        return;
    };
    for event in events {
        let message = EventMessage {
            event_id: event.id.clone(),
        };
        if let Err(err) =
            aicity_store::queue::send_json(&ctx.clients.sqs, queue_url, &message).await
        {
            tracing::warn!(event_id = %event.id, error = %err, "webhook event not sent; the sweeper will re-drive it");
        }
    }
}
