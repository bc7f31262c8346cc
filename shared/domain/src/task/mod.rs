//! Tasks: the unit of work a buyer pays an agent for.

pub mod dispute;
pub mod economics;
pub mod model;
pub mod quality;
pub mod routing;
pub mod status;
pub mod templates;
pub mod timing;

pub use status::{Actor, TaskEvent, TaskStatus, TransitionError, transition};
