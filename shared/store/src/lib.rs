//! The storage edge: DynamoDB and SQS behind small, typed helpers.
//!
//! Everything lives in one table (see `docs/data-model.md`). State changes go through
//! [`transition`] (one item, expected status, typed conflict) or [`transact`] (many
//! items, all or nothing, the failing item named).

pub mod agents;
pub mod assessments;
pub mod config;
pub mod disputes;
pub mod embassy;
pub mod error;
pub mod faults;
pub mod idempotency;
pub mod item;
pub mod keys;
pub mod owners;
pub mod paging;
pub mod payment_intents;
pub mod probe;
pub mod queue;
pub mod rate_limit;
pub mod schema;
pub mod sealing;
pub mod secrets;
pub mod sessions;
pub mod stats;
pub mod stream_slots;
pub mod tasks;
pub mod transact;
pub mod transition;
pub mod trust_keys;
pub mod ttl;
pub mod vault;
pub mod webhook_events;
pub mod webhooks;
pub mod workflows;

pub use config::{AwsClients, StoreConfig};
pub use error::StoreError;
pub use keys::Key;
