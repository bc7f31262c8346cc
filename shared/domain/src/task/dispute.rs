//! Disputes: the buyer's recourse after the refund window, for Courts to resolve.

use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::ids::{AgentId, DisputeId, OwnerId, TaskId};
use crate::validate::{Validate, check_length};

pub const MAX_DESCRIPTION_CHARS: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeReason {
    QualityBelowSpec,
    IncompleteDelivery,
    WrongOutput,
    DeadlineMissed,
    Misrepresentation,
    Unresponsive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    Filed,
    UnderReview,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispute {
    pub id: DisputeId,
    pub task_id: TaskId,
    pub status: DisputeStatus,
    pub reason: DisputeReason,
    pub description: String,
    pub filed_by: OwnerId,
    pub agent_id: Option<AgentId>,
    pub created_at: String,
}

/// `POST /tasks/:id/dispute`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDispute {
    pub reason: DisputeReason,
    pub description: String,
}

impl Validate for FileDispute {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(
            errors,
            "description",
            self.description.trim(),
            1,
            MAX_DESCRIPTION_CHARS,
        );
    }
}
