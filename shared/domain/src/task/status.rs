//! The task status machine as one pure function.
//!
//! ```text
//!   pending_approval ──approve──► submitted    (over the agent's approval threshold)
//!       └─deny / expire / cancel──► cancelled
//!   waiting ──step released──► submitted       (a workflow step, once the step before
//!       └─cancel (workflow failed or cancelled)──► cancelled    it completed)
//!   submitted ──route──► routing ──assign──► submitted (assigned, waiting for the agent)
//!       │                   │  └─no agent──► failed
//!       │ (assigned)        └─cancel──► cancelled
//!       ├─start──► executing ──complete──► quality_check ──pass──► completed ──refund──► refunded
//!       ├─cancel─► cancelled     │                        └─fail──► failed
//!       └─agent fails─► failed   └─agent fails / time out──► failed
//! ```
//!
//! `routing` is the router's brief claim on a task while it picks an agent; an
//! assigned task waits in `submitted` until its agent starts (the seed's "credits held,
//! waiting for agent to start"; `GET /tasks/submitted` lists exactly these).
//! The storage layer turns each allowed edge into a conditional write on the
//! expected `from` status, so a lost race is a conflict, never an overwrite.

use serde::{Deserialize, Serialize};

/// Where a task is in its life. Wire names are the seed's snake_case statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Held, waiting for the submitting agent's owner to approve (the Embassy).
    PendingApproval,
    /// A workflow step, held since the workflow was created, waiting for the step
    /// before it to complete.
    Waiting,
    Submitted,
    Routing,
    Executing,
    QualityCheck,
    Completed,
    Failed,
    Refunded,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 10] = [
        TaskStatus::PendingApproval,
        TaskStatus::Waiting,
        TaskStatus::Submitted,
        TaskStatus::Routing,
        TaskStatus::Executing,
        TaskStatus::QualityCheck,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Refunded,
        TaskStatus::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::PendingApproval => "pending_approval",
            TaskStatus::Waiting => "waiting",
            TaskStatus::Submitted => "submitted",
            TaskStatus::Routing => "routing",
            TaskStatus::Executing => "executing",
            TaskStatus::QualityCheck => "quality_check",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Refunded => "refunded",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// No work happens in a terminal state. `completed` is terminal for work but
    /// can still be refunded; see [`TaskStatus::is_final`].
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed
                | TaskStatus::Failed
                | TaskStatus::Refunded
                | TaskStatus::Cancelled
        )
    }

    /// Nothing can ever change a final status.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Failed | TaskStatus::Refunded | TaskStatus::Cancelled
        )
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asks for a transition, relative to the task. The caller resolves identities
/// (session, API key) into one of these before asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The buyer: the submitting owner, or the owner of the submitting agent.
    Submitter,
    /// The agent the task is assigned to.
    AssignedAgent,
    /// Platform functions: router, quality gate, settlement, sweeper.
    Platform,
    /// Anybody else.
    Stranger,
}

/// Something that happens to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskEvent {
    /// The submitting agent's owner approved a task over its approval threshold.
    Approved,
    /// The workflow engine released a step: the step before it completed.
    StepReleased,
    /// The router claims the task to pick an agent (also a re-route of a stale assignment).
    RoutingStarted,
    /// The router assigned an agent; the task waits for it to start.
    AgentAssigned,
    /// No eligible agent after every retry.
    RoutingFailed,
    /// The assigned agent provisioned a sandbox and started.
    ExecutionStarted,
    /// The agent delivered output; the quality gate takes over.
    OutputSubmitted,
    /// The agent reported a failure.
    AgentFailed,
    /// The deadline passed while executing.
    TimedOut,
    /// The quality gate accepted the output.
    QualityPassed,
    /// The quality gate rejected the output.
    QualityFailed,
    /// The buyer withdrew the task before execution.
    Cancelled,
    /// Thumbs-down inside the window, or a dispute ruled for the buyer.
    Refunded,
}

impl TaskEvent {
    pub const ALL: [TaskEvent; 13] = [
        TaskEvent::Approved,
        TaskEvent::StepReleased,
        TaskEvent::RoutingStarted,
        TaskEvent::AgentAssigned,
        TaskEvent::RoutingFailed,
        TaskEvent::ExecutionStarted,
        TaskEvent::OutputSubmitted,
        TaskEvent::AgentFailed,
        TaskEvent::TimedOut,
        TaskEvent::QualityPassed,
        TaskEvent::QualityFailed,
        TaskEvent::Cancelled,
        TaskEvent::Refunded,
    ];

    /// Who may cause this event.
    const fn allowed(self, actor: Actor) -> bool {
        use Actor::*;
        use TaskEvent::*;
        match self {
            StepReleased | RoutingStarted | AgentAssigned | RoutingFailed | TimedOut
            | QualityPassed | QualityFailed => matches!(actor, Platform),
            ExecutionStarted | OutputSubmitted | AgentFailed => matches!(actor, AssignedAgent),
            Cancelled | Refunded => matches!(actor, Submitter | Platform),
            Approved => matches!(actor, Submitter),
        }
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The actor may never cause this event (→ 403).
    #[error("{actor:?} may not cause {event:?}")]
    Forbidden { actor: Actor, event: TaskEvent },
    /// The event does not apply in the current status (→ 409 INVALID_TASK_STATE).
    #[error("cannot apply {event:?} to a task that is {from}")]
    InvalidState { from: TaskStatus, event: TaskEvent },
}

impl TransitionError {
    pub fn code(self) -> crate::ErrorCode {
        match self {
            TransitionError::Forbidden { .. } => crate::ErrorCode::TaskForbidden,
            TransitionError::InvalidState { .. } => crate::ErrorCode::InvalidTaskState,
        }
    }
}

/// The status after `event`, caused by `actor`, happens to a task in `from`.
///
/// Authorization is checked before state, so a stranger learns nothing about the
/// task's state from the error.
pub fn transition(
    from: TaskStatus,
    event: TaskEvent,
    actor: Actor,
) -> Result<TaskStatus, TransitionError> {
    use TaskEvent as E;
    use TaskStatus as S;

    if !event.allowed(actor) {
        return Err(TransitionError::Forbidden { actor, event });
    }
    let to = match (from, event) {
        (S::PendingApproval, E::Approved) => S::Submitted,
        (S::Waiting, E::StepReleased) => S::Submitted,
        (S::Submitted, E::RoutingStarted) => S::Routing,
        (S::Routing, E::AgentAssigned) => S::Submitted,
        (S::Routing, E::RoutingFailed) => S::Failed,
        (S::Submitted, E::ExecutionStarted) => S::Executing,
        (S::Executing, E::OutputSubmitted) => S::QualityCheck,
        (S::Submitted | S::Executing, E::AgentFailed) => S::Failed,
        (S::Executing, E::TimedOut) => S::Failed,
        (S::QualityCheck, E::QualityPassed) => S::Completed,
        (S::QualityCheck, E::QualityFailed) => S::Failed,
        (S::PendingApproval | S::Waiting | S::Submitted | S::Routing, E::Cancelled) => S::Cancelled,
        (S::Completed, E::Refunded) => S::Refunded,
        _ => return Err(TransitionError::InvalidState { from, event }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ACTORS: [Actor; 4] = [
        Actor::Submitter,
        Actor::AssignedAgent,
        Actor::Platform,
        Actor::Stranger,
    ];

    /// The whole machine written out as a table, independent of `transition`'s match.
    const EDGES: &[(TaskStatus, TaskEvent, &[Actor], TaskStatus)] = {
        use Actor::*;
        use TaskEvent as E;
        use TaskStatus as S;
        &[
            (S::PendingApproval, E::Approved, &[Submitter], S::Submitted),
            (
                S::PendingApproval,
                E::Cancelled,
                &[Submitter, Platform],
                S::Cancelled,
            ),
            (S::Waiting, E::StepReleased, &[Platform], S::Submitted),
            (
                S::Waiting,
                E::Cancelled,
                &[Submitter, Platform],
                S::Cancelled,
            ),
            (S::Submitted, E::RoutingStarted, &[Platform], S::Routing),
            (S::Routing, E::AgentAssigned, &[Platform], S::Submitted),
            (S::Routing, E::RoutingFailed, &[Platform], S::Failed),
            (
                S::Submitted,
                E::ExecutionStarted,
                &[AssignedAgent],
                S::Executing,
            ),
            (
                S::Executing,
                E::OutputSubmitted,
                &[AssignedAgent],
                S::QualityCheck,
            ),
            (S::Submitted, E::AgentFailed, &[AssignedAgent], S::Failed),
            (S::Executing, E::AgentFailed, &[AssignedAgent], S::Failed),
            (S::Executing, E::TimedOut, &[Platform], S::Failed),
            (S::QualityCheck, E::QualityPassed, &[Platform], S::Completed),
            (S::QualityCheck, E::QualityFailed, &[Platform], S::Failed),
            (
                S::Submitted,
                E::Cancelled,
                &[Submitter, Platform],
                S::Cancelled,
            ),
            (
                S::Routing,
                E::Cancelled,
                &[Submitter, Platform],
                S::Cancelled,
            ),
            (
                S::Completed,
                E::Refunded,
                &[Submitter, Platform],
                S::Refunded,
            ),
        ]
    };

    fn expected(from: TaskStatus, event: TaskEvent, actor: Actor) -> Option<TaskStatus> {
        EDGES
            .iter()
            .find(|(f, e, actors, _)| *f == from && *e == event && actors.contains(&actor))
            .map(|(_, _, _, to)| *to)
    }

    #[test]
    fn every_status_event_actor_combination_matches_the_table() {
        for from in TaskStatus::ALL {
            for event in TaskEvent::ALL {
                for actor in ACTORS {
                    let got = transition(from, event, actor);
                    match expected(from, event, actor) {
                        Some(to) => assert_eq!(got, Ok(to), "{from} {event:?} {actor:?}"),
                        None => assert!(got.is_err(), "{from} {event:?} {actor:?} -> {got:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_actor_is_forbidden_whatever_the_state() {
        for from in TaskStatus::ALL {
            assert_eq!(
                transition(from, TaskEvent::OutputSubmitted, Actor::Stranger),
                Err(TransitionError::Forbidden {
                    actor: Actor::Stranger,
                    event: TaskEvent::OutputSubmitted
                })
            );
        }
        let err = transition(
            TaskStatus::Executing,
            TaskEvent::Cancelled,
            Actor::AssignedAgent,
        )
        .unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::TaskForbidden);
    }

    #[test]
    fn right_actor_wrong_state_is_a_conflict() {
        let err = transition(
            TaskStatus::Completed,
            TaskEvent::OutputSubmitted,
            Actor::AssignedAgent,
        )
        .unwrap_err();
        assert_eq!(
            err,
            TransitionError::InvalidState {
                from: TaskStatus::Completed,
                event: TaskEvent::OutputSubmitted
            }
        );
        assert_eq!(err.code(), crate::ErrorCode::InvalidTaskState);
        assert_eq!(err.code().http_status(), 409);
    }

    #[test]
    fn buyer_cannot_cancel_once_execution_started() {
        for from in [
            TaskStatus::Executing,
            TaskStatus::QualityCheck,
            TaskStatus::Completed,
        ] {
            assert!(matches!(
                transition(from, TaskEvent::Cancelled, Actor::Submitter),
                Err(TransitionError::InvalidState { .. })
            ));
        }
    }

    #[test]
    fn statuses_use_the_seed_wire_names() {
        for status in TaskStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskStatus::QualityCheck.as_str(), "quality_check");
        assert_eq!(TaskStatus::parse("done"), None);
    }

    fn any_event() -> impl Strategy<Value = TaskEvent> {
        prop::sample::select(TaskEvent::ALL.to_vec())
    }

    fn any_actor() -> impl Strategy<Value = Actor> {
        prop::sample::select(ACTORS.to_vec())
    }

    proptest! {
        /// Random walks from where a task is created (`submitted`, `pending_approval`
        /// over an approval threshold, `waiting` as a later workflow step): every
        /// accepted step is an edge of the table, final states never move, `completed`
        /// only ever moves to `refunded`, and nothing ever goes back to
        /// `pending_approval` or `waiting`.
        #[test]
        fn random_walks_respect_the_machine(
            start in prop::sample::select(vec![
                TaskStatus::Submitted, TaskStatus::PendingApproval, TaskStatus::Waiting,
            ]),
            steps in prop::collection::vec((any_event(), any_actor()), 0..64)
        ) {
            let mut status = start;
            for (event, actor) in steps {
                let before = status;
                match transition(status, event, actor) {
                    Ok(to) => {
                        prop_assert_eq!(Some(to), expected(before, event, actor));
                        prop_assert!(!before.is_final(), "{} moved to {}", before, to);
                        if before == TaskStatus::Completed {
                            prop_assert_eq!(to, TaskStatus::Refunded);
                        }
                        prop_assert_ne!(to, TaskStatus::PendingApproval);
                        prop_assert_ne!(to, TaskStatus::Waiting);
                        if matches!(before, TaskStatus::PendingApproval | TaskStatus::Waiting) {
                            prop_assert!(matches!(to, TaskStatus::Submitted | TaskStatus::Cancelled));
                        }
                        status = to;
                    }
                    Err(TransitionError::Forbidden { .. }) => {
                        prop_assert!(!event.allowed(actor));
                    }
                    Err(TransitionError::InvalidState { from, .. }) => {
                        prop_assert_eq!(from, before);
                        prop_assert!(event.allowed(actor));
                    }
                }
            }
        }

        /// Whatever happens after a final status, it stays put.
        #[test]
        fn final_states_stay_final(
            start in prop::sample::select(vec![
                TaskStatus::Failed, TaskStatus::Refunded, TaskStatus::Cancelled,
            ]),
            steps in prop::collection::vec((any_event(), any_actor()), 1..32)
        ) {
            for (event, actor) in steps {
                prop_assert!(transition(start, event, actor).is_err());
            }
        }
    }
}
