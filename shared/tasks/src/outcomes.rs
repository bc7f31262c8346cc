//! How each outcome changes the assigned agent's stats, in the same transaction.

use aicity_domain::identity::{Agent, AgentStatus};

/// Three failures in a row suspend an agent until its owner reactivates it.
pub const SUSPEND_AFTER_CONSECUTIVE_FAILURES: u32 = 3;

/// The agent took the task.
pub fn assigned(agent: &mut Agent) {
    agent.stats.active_tasks += 1;
}

/// The task completed: a success breaks any failure streak.
pub fn completed(agent: &mut Agent) {
    agent.stats.active_tasks = agent.stats.active_tasks.saturating_sub(1);
    agent.stats.completed += 1;
    agent.stats.consecutive_failures = 0;
}

/// The task failed on the agent's side (its report, the quality gate, a timeout).
pub fn failed(agent: &mut Agent) {
    agent.stats.active_tasks = agent.stats.active_tasks.saturating_sub(1);
    agent.stats.failed += 1;
    agent.stats.consecutive_failures += 1;
    if agent.stats.consecutive_failures >= SUSPEND_AFTER_CONSECUTIVE_FAILURES
        && agent.status == AgentStatus::Active
    {
        agent.status = AgentStatus::Suspended;
    }
}

/// The buyer cancelled before the agent started: no mark either way.
pub fn released(agent: &mut Agent) {
    agent.stats.active_tasks = agent.stats.active_tasks.saturating_sub(1);
}

#[cfg(test)]
mod tests {
    use aicity_domain::identity::{Framework, RegisterAgent};
    use aicity_domain::ids::OwnerId;

    use super::*;

    #[test]
    fn three_failures_in_a_row_suspend_and_a_success_resets() {
        let mut agent = Agent::register(
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
        );
        for _ in 0..2 {
            assigned(&mut agent);
            failed(&mut agent);
        }
        assigned(&mut agent);
        completed(&mut agent);
        assert_eq!(
            (agent.stats.consecutive_failures, agent.status),
            (0, AgentStatus::Active)
        );
        for _ in 0..3 {
            assigned(&mut agent);
            failed(&mut agent);
        }
        assert_eq!(agent.status, AgentStatus::Suspended);
        assert_eq!(agent.stats.failed, 5);
        assert_eq!(agent.stats.completed, 1);
        assert_eq!(agent.stats.active_tasks, 0);
    }
}
