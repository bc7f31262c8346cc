//! `make bench`'s cold-start and package-size measurements (the `coldstart` binary).
//!
//! - [`runtime_api`]: a minimal Lambda Runtime API that hands out one event;
//! - [`coldstart`]: one spawn of a function under it (init, first invocation, peak RSS);
//! - [`events`]: the first event of each function;
//! - [`package`]: the zip `sam build` ships;
//! - [`report`]: medians and markdown tables.

pub mod coldstart;
pub mod events;
pub mod package;
pub mod report;
pub mod runtime_api;
