//! Who the caller is to a task.

use aicity_domain::task::Actor;
use aicity_domain::task::model::Task;
use aicity_http::auth::Caller;

/// The caller's role for `task`: the buyer's owner (or the submitting agent), the
/// assigned agent, or a stranger.
pub fn actor(caller: &Caller, task: &Task) -> Actor {
    match caller {
        Caller::Owner(owner) if owner.owner.id == task.caller_owner_id => Actor::Submitter,
        Caller::Agent(record) if Some(record.agent.id) == task.agent_id => Actor::AssignedAgent,
        Caller::Agent(record) if Some(record.agent.id) == task.caller_agent_id => Actor::Submitter,
        _ => Actor::Stranger,
    }
}

/// Whether the caller may read the task (`GET /tasks/:id`, the stream).
pub fn may_read(caller: &Caller, task: &Task) -> bool {
    actor(caller, task) != Actor::Stranger
}
