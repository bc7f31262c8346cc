//! Time rules of a task: the refund window and what the sweeper watches.

use std::time::Duration;

use time::OffsetDateTime;

use crate::task::TaskStatus;
use crate::task::model::Task;

/// A thumbs-down within this long after completion refunds in full.
pub const REFUND_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Where "now" comes from, so time rules are testable on both sides of a boundary.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Whether a thumbs-down at `now` still refunds: strictly less than `window` after
/// completion (at exactly ten minutes the window is closed).
pub fn refund_window_open(
    completed_at: OffsetDateTime,
    now: OffsetDateTime,
    window: Duration,
) -> bool {
    now < completed_at + window
}

/// What the sweeper watches a task for, by the state it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Watch {
    /// Waiting for its owner's approval, against `APPROVAL_TTL_HOURS`.
    Approval,
    /// Waiting for the router (submitted without an agent, or routing).
    Routing,
    /// Assigned, waiting for the agent to start.
    Start,
    /// Executing, against the execution deadline.
    Execution,
    /// Delivered, waiting for the quality gate.
    Quality,
    /// Completed, waiting for its escrow to be released.
    Settlement,
}

impl Watch {
    pub const ALL: [Watch; 6] = [
        Watch::Approval,
        Watch::Routing,
        Watch::Start,
        Watch::Execution,
        Watch::Quality,
        Watch::Settlement,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Watch::Approval => "approval",
            Watch::Routing => "routing",
            Watch::Start => "start",
            Watch::Execution => "execution",
            Watch::Quality => "quality",
            Watch::Settlement => "settlement",
        }
    }
}

/// What a task is watched for and since when (the sweeper adds each watch's deadline).
pub fn watch(task: &Task) -> Option<(Watch, OffsetDateTime)> {
    let at = |field: &Option<String>| field.as_deref().and_then(crate::timestamps::parse);
    let updated = crate::timestamps::parse(&task.updated_at);
    match task.status {
        TaskStatus::PendingApproval => {
            Some((Watch::Approval, crate::timestamps::parse(&task.created_at)?))
        }
        TaskStatus::Submitted if task.agent_id.is_none() => {
            Some((Watch::Routing, crate::timestamps::parse(&task.created_at)?))
        }
        TaskStatus::Routing => Some((Watch::Routing, updated?)),
        TaskStatus::Submitted => Some((Watch::Start, at(&task.assigned_at).or(updated)?)),
        TaskStatus::Executing => Some((Watch::Execution, at(&task.started_at).or(updated)?)),
        TaskStatus::QualityCheck => Some((Watch::Quality, updated?)),
        // A late thumbs-down refunds nothing, so the earning is still owed: it stays
        // watched. An open dispute is not: its ruling (or withdrawal) pays or refunds.
        TaskStatus::Completed if task.settled_at.is_none() && !task.dispute_open() => {
            Some((Watch::Settlement, at(&task.completed_at).or(updated)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::model::Feedback;

    /// A completed, unpaid task, from JSON so new optional fields need no edit here.
    fn completed() -> Task {
        serde_json::from_value(serde_json::json!({
            "id": crate::ids::TaskId::new(), "taskType": "code_review", "status": "completed",
            "input": {"description": "d"}, "maxBudget": 5000,
            "agentId": crate::ids::AgentId::new(), "callerOwnerId": crate::ids::OwnerId::new(),
            "directHire": false, "routingAttempts": 1,
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:05:00Z",
            "completedAt": "2026-01-01T00:05:00Z",
        }))
        .unwrap()
    }

    #[test]
    fn a_late_thumbs_down_stays_watched_and_an_open_dispute_does_not() {
        use crate::task::dispute::DisputeStatus;
        let mut task = completed();
        assert_eq!(watch(&task).map(|(w, _)| w), Some(Watch::Settlement));
        task.feedback = Some(Feedback::Down);
        assert_eq!(
            watch(&task).map(|(w, _)| w),
            Some(Watch::Settlement),
            "a late thumbs-down refunds nothing: the earning is still owed"
        );
        for status in [DisputeStatus::Filed, DisputeStatus::UnderReview] {
            task.dispute_status = Some(status);
            assert_eq!(watch(&task), None, "{status}: the ruling pays or refunds");
        }
        // A closed dispute always paid (settledAt) or refunded the task.
        task.dispute_status = Some(DisputeStatus::Withdrawn);
        task.settled_at = Some("2026-01-02T00:00:00Z".into());
        assert_eq!(watch(&task), None);
        task.settled_at = None;
        task.status = TaskStatus::Refunded;
        assert_eq!(watch(&task), None);
    }

    #[test]
    fn the_refund_window_closes_at_exactly_ten_minutes() {
        let done = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let just_inside = done + Duration::from_secs(599) + Duration::from_millis(999);
        assert!(refund_window_open(done, done, REFUND_WINDOW));
        assert!(refund_window_open(done, just_inside, REFUND_WINDOW));
        assert!(!refund_window_open(
            done,
            done + REFUND_WINDOW,
            REFUND_WINDOW
        ));
        assert!(!refund_window_open(
            done,
            done + Duration::from_secs(3600),
            REFUND_WINDOW
        ));
    }
}
