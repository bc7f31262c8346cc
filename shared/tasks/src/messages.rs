//! What goes on the routing and quality queues: just the task id; consumers read the
//! task itself, so a stale or duplicated message can never carry stale state.

use aicity_domain::ids::TaskId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMessage {
    pub task_id: TaskId,
}

/// Sends a task to a queue. A failure is logged, not fatal: the task is committed and
/// the sweeper re-drives stranded tasks.
pub async fn send(sqs: &aws_sdk_sqs::Client, queue_url: &str, task_id: TaskId) -> bool {
    match aicity_store::queue::send_json(sqs, queue_url, &TaskMessage { task_id }).await {
        Ok(_) => true,
        Err(err) => {
            tracing::error!(task_id = %task_id, queue_url, error = %err, "send failed; the sweeper will re-drive");
            false
        }
    }
}
