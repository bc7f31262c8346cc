//! How each outcome changes the assigned agent — its stats, its reputation record, and
//! so its score, tier and verification — in the same transaction as the task change
//! that caused it: a redelivered message finds the task already changed, so an outcome
//! is applied exactly once.

use aicity_domain::identity::{Agent, AgentStatus, Outcome};
use aicity_domain::ids::TaskId;
use aicity_domain::money::Cents;
use aicity_domain::timestamps;

/// Three failures in a row suspend an agent until its owner reactivates it (after
/// [`SUSPENSION_COOLDOWN`]).
pub const SUSPEND_AFTER_CONSECUTIVE_FAILURES: u32 = 3;
/// How long a suspension lasts at least: the owner cannot clear it sooner.
pub const SUSPENSION_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(3600);

/// The agent took the task.
pub fn assigned(agent: &mut Agent) {
    agent.stats.active_tasks += 1;
}

/// The task passed the gate with `quality` and the buyer was charged `charged`: a
/// success breaks any failure streak.
pub fn completed(agent: &mut Agent, task: TaskId, quality: u8, charged: Cents) {
    agent.stats.active_tasks = agent.stats.active_tasks.saturating_sub(1);
    agent.stats.completed += 1;
    agent.stats.consecutive_failures = 0;
    agent.record_outcome(
        Outcome::Completed { quality, charged },
        Some(task),
        &timestamps::now(),
    );
}

/// The task failed on the agent's side: the gate scored it too low
/// (`Outcome::QualityFailed`), the agent reported failure (`AgentFailed`), or it ran
/// past its deadline (`TimedOut`).
pub fn failed(agent: &mut Agent, task: TaskId, why: Outcome) {
    agent.stats.active_tasks = agent.stats.active_tasks.saturating_sub(1);
    agent.stats.failed += 1;
    agent.stats.consecutive_failures += 1;
    let now = timestamps::now();
    agent.record_outcome(why, Some(task), &now);
    if agent.stats.consecutive_failures >= SUSPEND_AFTER_CONSECUTIVE_FAILURES
        && agent.status == AgentStatus::Active
    {
        agent.status = AgentStatus::Suspended;
        agent.suspended_at = Some(now);
    }
}

/// Assigned, never started: the slot is freed and the lapse counts against its
/// reliability (the task is not offered to it again).
pub fn abandoned(agent: &mut Agent, task: TaskId) {
    agent.stats.active_tasks = agent.stats.active_tasks.saturating_sub(1);
    agent.record_outcome(Outcome::Abandoned, Some(task), &timestamps::now());
}

/// The buyer cancelled before the agent started, or the platform could not judge the
/// work: no mark either way.
pub fn released(agent: &mut Agent) {
    agent.stats.active_tasks = agent.stats.active_tasks.saturating_sub(1);
}

/// The buyer's thumbs up or down; `refunded` when the thumbs-down refunded the task.
pub fn feedback(agent: &mut Agent, task: TaskId, up: bool, refunded: Option<Cents>) {
    let outcome = match (up, refunded) {
        (true, _) => {
            agent.feedback.up += 1;
            Outcome::ThumbsUp
        }
        (false, None) => {
            agent.feedback.down += 1;
            Outcome::ThumbsDown
        }
        (false, Some(amount)) => {
            agent.feedback.down += 1;
            Outcome::Refunded { amount }
        }
    };
    agent.record_outcome(outcome, Some(task), &timestamps::now());
}

/// A dispute about one of its tasks: filed, withdrawn, or ruled on (`DisputeWon` when
/// the seller prevailed, `DisputeLost` when the buyer was refunded in full or in part).
/// Courts calls this in the transaction that records the dispute's step.
pub fn dispute(agent: &mut Agent, task: TaskId, outcome: Outcome) {
    debug_assert!(matches!(
        outcome,
        Outcome::DisputeFiled
            | Outcome::DisputeWithdrawn
            | Outcome::DisputeWon
            | Outcome::DisputeLost
    ));
    agent.record_outcome(outcome, Some(task), &timestamps::now());
}

#[cfg(test)]
mod tests {
    use aicity_domain::identity::{Framework, RegisterAgent, TrustTier, VerificationStatus};
    use aicity_domain::ids::OwnerId;

    use super::*;

    fn agent() -> Agent {
        Agent::register(
            OwnerId::new(),
            RegisterAgent {
                display_name: "a".into(),
                framework: Framework::Custom,
                description: "d".into(),
                model: None,
                capabilities: vec![],
                pricing: Default::default(),
                max_concurrent_tasks: None,
            },
            "t",
        )
    }

    #[test]
    fn three_failures_in_a_row_suspend_and_a_success_resets() {
        let mut agent = agent();
        let task = TaskId::new();
        for _ in 0..2 {
            assigned(&mut agent);
            failed(&mut agent, task, Outcome::AgentFailed);
        }
        assigned(&mut agent);
        completed(&mut agent, task, 90, Cents(100));
        assert_eq!(
            (agent.stats.consecutive_failures, agent.status),
            (0, AgentStatus::Active)
        );
        for _ in 0..3 {
            assigned(&mut agent);
            failed(&mut agent, task, Outcome::TimedOut);
        }
        assert_eq!(agent.status, AgentStatus::Suspended);
        assert!(agent.suspended_at.is_some());
        assert_eq!(agent.stats.failed, 5);
        assert_eq!(agent.stats.completed, 1);
        assert_eq!(agent.stats.active_tasks, 0);
        assert_eq!(agent.recent_outcomes[0].outcome, "timed_out");
    }

    #[test]
    fn three_completions_verify_and_promote_to_provisional() {
        let mut agent = agent();
        for _ in 0..3 {
            assigned(&mut agent);
            assert_eq!(agent.trust_tier, TrustTier::Unverified);
            completed(&mut agent, TaskId::new(), 90, Cents(2_500));
        }
        assert_eq!(agent.trust_tier, TrustTier::Provisional);
        assert_eq!(agent.verification_status, VerificationStatus::Verified);
        assert!(agent.overall_score > 0);
        let before = agent.overall_score;
        feedback(&mut agent, TaskId::new(), false, Some(Cents(2_500)));
        assert!(agent.overall_score < before, "a refund lowers the score");
    }
}
