//! Primary keys of every item kind, in one place (`docs/data-model.md` explains them).

use std::collections::HashMap;

use aicity_domain::ids::{ProbeId, TaskId};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::schema::{PK, SK};

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key as the attribute map DynamoDB requests take.
    pub fn to_map(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }

    /// A task's main item.
    pub fn task(id: &TaskId) -> Self {
        Self::new(format!("TASK#{id}"), "TASK")
    }

    /// Event number `seq` of a task, zero-padded so events sort in order.
    pub fn task_event(id: &TaskId, seq: u64) -> Self {
        Self::new(format!("TASK#{id}"), format!("EVENT#{seq:010}"))
    }

    /// A health probe sent through the queue path.
    pub fn probe(id: &ProbeId) -> Self {
        Self::new(format!("PROBE#{id}"), "PROBE")
    }

    /// The canary summary: the last probe the consumer received.
    pub fn canary_summary() -> Self {
        Self::new("SYSTEM", "CANARY")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_events_sort_by_sequence() {
        let id = TaskId::new();
        assert!(Key::task_event(&id, 9).sk < Key::task_event(&id, 10).sk);
        assert_eq!(Key::task_event(&id, 9).pk, Key::task(&id).pk);
    }
}
