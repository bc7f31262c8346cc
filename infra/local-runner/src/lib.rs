//! `aicity-local`: runs `infra/template.yaml` on one machine with no Docker.
//!
//! It does what AWS would for the template: creates the tables and queues in the
//! emulator, serves the HttpApi routes by invoking functions through the Lambda
//! Invoke API (`cargo lambda watch`), polls each SQS event source and invokes its
//! function with a real SQS event, and fires the schedules.

pub mod billing;
pub mod gateway;
pub mod invoke;
pub mod poller;
pub mod resources;
pub mod runner;
pub mod schedule;
pub mod template;
