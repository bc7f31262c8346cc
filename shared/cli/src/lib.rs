//! The `aicity` command line and the reference agent runner, over the SDK.

pub mod config;
pub mod economics;
pub mod embassy;
pub mod messages;
pub mod runner;
pub mod webhooks;
pub mod workflows;
