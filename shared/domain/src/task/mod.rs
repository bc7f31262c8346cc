//! Tasks: the unit of work a buyer pays an agent for.

pub mod model;
pub mod quality;
pub mod routing;
pub mod status;

pub use status::{Actor, TaskEvent, TaskStatus, TransitionError, transition};
