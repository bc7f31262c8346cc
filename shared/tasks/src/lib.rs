//! The task lifecycle shared by the `tasks` HTTP function and the `router` and
//! `quality` consumers.
//!
//! Every step reads the task (and its agent), decides with the pure domain rules, and
//! commits the new task, its events, the money and the agent's stats in one
//! transaction that only succeeds if nothing changed since the read; on a lost race it
//! reads again and decides again.

pub mod access;
pub mod approvals;
pub mod budgets;
pub mod change;
pub mod disputes;
pub mod economics;
pub mod messages;
pub mod notices;
pub mod outcomes;
pub mod quality_stage;
pub mod routing;
pub mod settlement;
pub mod webhook_events;
pub mod workflows;

pub use change::{Change, apply};

pub use messages::TaskMessage;
