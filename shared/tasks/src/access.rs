//! Who the caller is to a task.

use aicity_domain::ids::{AgentId, OwnerId};
use aicity_domain::task::Actor;
use aicity_domain::task::model::Task;
use aicity_http::auth::Caller;
use aicity_store::tasks::TaskParties;

/// The role for a task with these parties: all [`actor`] looks at.
fn actor_of(
    caller: &Caller,
    caller_owner_id: OwnerId,
    agent_id: Option<AgentId>,
    caller_agent_id: Option<AgentId>,
) -> Actor {
    match caller {
        Caller::Owner(owner) if owner.owner.id == caller_owner_id => Actor::Submitter,
        Caller::Agent(record) if Some(record.agent.id) == agent_id => Actor::AssignedAgent,
        Caller::Agent(record) if Some(record.agent.id) == caller_agent_id => Actor::Submitter,
        _ => Actor::Stranger,
    }
}

/// The caller's role for `task`: the buyer's owner (or the submitting agent), the
/// assigned agent, or a stranger.
pub fn actor(caller: &Caller, task: &Task) -> Actor {
    actor_of(
        caller,
        task.caller_owner_id,
        task.agent_id,
        task.caller_agent_id,
    )
}

/// Whether the caller may read the task (`GET /tasks/:id`, the stream).
pub fn may_read(caller: &Caller, task: &Task) -> bool {
    actor(caller, task) != Actor::Stranger
}

/// [`may_read`] from a task's parties as the stream reads them (projected, see
/// [`aicity_store::tasks::parties`]): the same parties, the same answer.
pub fn may_read_parties(caller: &Caller, parties: &TaskParties) -> bool {
    actor_of(
        caller,
        parties.caller_owner_id,
        parties.agent_id,
        parties.caller_agent_id,
    ) != Actor::Stranger
}
