//! Primary keys of every item kind, in one place (`docs/data-model.md` explains them).

use std::collections::HashMap;

use aicity_domain::identity::Category;
use aicity_domain::ids::{AgentId, OwnerId, ProbeId, TaskId, TrustKeyId};
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

    /// An owner's account.
    pub fn owner(id: &OwnerId) -> Self {
        Self::new(format!("OWNER#{id}"), "PROFILE")
    }

    /// Claims an email for one owner (normalised email).
    pub fn email(email: &str) -> Self {
        Self::new(format!("EMAIL#{email}"), "EMAIL")
    }

    /// A session, by the SHA-256 of its token.
    pub fn session(token_hash: &str) -> Self {
        Self::new(format!("SESSION#{token_hash}"), "SESSION")
    }

    /// An agent's profile.
    pub fn agent(id: &AgentId) -> Self {
        Self::new(format!("AGENT#{id}"), "PROFILE")
    }

    /// An API key, by its SHA-256, pointing at its agent.
    pub fn api_key(key_hash: &str) -> Self {
        Self::new(format!("APIKEY#{key_hash}"), "APIKEY")
    }

    /// An active agent's search row for one category (`None`: the all-categories row).
    pub fn agent_search_row(id: &AgentId, category: Option<Category>) -> Self {
        Self::new(
            format!("AGENT#{id}"),
            format!("CAP#{}", category.map_or("*", Category::as_str)),
        )
    }

    /// An owner's Trust API key, in the owner's partition (so another owner's key id
    /// finds nothing).
    pub fn trust_key(owner: &OwnerId, id: &TrustKeyId) -> Self {
        Self::new(format!("OWNER#{owner}"), format!("TRUSTKEY#{id}"))
    }

    /// A live Trust API key, by its SHA-256, pointing at its key item.
    pub fn trust_key_hash(key_hash: &str) -> Self {
        Self::new(format!("TRUSTKEYHASH#{key_hash}"), "TRUSTKEYHASH")
    }

    /// How many Trust API keys an owner has that are not revoked.
    pub fn trust_key_count(owner: &OwnerId) -> Self {
        Self::new(format!("OWNER#{owner}"), "TRUSTKEYS")
    }

    /// A fixed-window rate counter.
    pub fn rate(subject: &str, window_start: i64) -> Self {
        Self::new(format!("RATE#{subject}#{window_start}"), "RATE")
    }

    /// A task's main item.
    pub fn task(id: &TaskId) -> Self {
        Self::new(format!("TASK#{id}"), "TASK")
    }

    /// The open streams of one principal (an owner or an agent id): leases with expiries.
    pub fn stream_slots(principal: &str) -> Self {
        Self::new(format!("STREAMS#{principal}"), "STREAMS")
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
