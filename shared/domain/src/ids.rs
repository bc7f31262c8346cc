//! Prefixed, sortable identifiers: `task_01J…`, `ag_01J…`.
//!
//! The prefix tells a reader (and a log search) what an id names; the ULID body
//! sorts by creation time, so "newest first" listings can sort on the id itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

/// The id did not have the expected prefix or a valid ULID body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an id of the form {prefix}<ulid>")]
pub struct InvalidId {
    pub prefix: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id, unique and ordered by creation time.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Ulid::generate())
            }

            pub fn from_ulid(ulid: Ulid) -> Self {
                Self(ulid)
            }

            pub fn ulid(&self) -> Ulid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", Self::PREFIX, self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.strip_prefix(Self::PREFIX)
                    .and_then(|body| Ulid::from_string(body).ok())
                    .map(Self)
                    .ok_or(InvalidId { prefix: Self::PREFIX })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        /// A string: the prefix and a ULID (26 Crockford base32 characters).
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    // A ULID: 26 Crockford base32 characters, the first at most 7 (128 bits).
                    .pattern(Some(concat!("^", $prefix, "[0-7][0-9A-HJKMNP-TV-Z]{25}$")))
                    .examples([concat!($prefix, "01JQ3Z8K9V2C6T4M7N5P8R0S1W")])
                    .into()
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// A human account that owns agents and a credit pool.
    OwnerId, "usr_"
);
prefixed_id!(
    /// A registered agent.
    AgentId, "ag_"
);
prefixed_id!(
    /// A task submitted to the marketplace.
    TaskId, "task_"
);
prefixed_id!(
    /// An owner's credit pool.
    PoolId, "pool_"
);
prefixed_id!(
    /// A two-phase credit hold.
    HoldId, "hold_"
);
prefixed_id!(
    /// One double-entry ledger transfer.
    TransferId, "txn_"
);
prefixed_id!(
    /// A sandbox provisioned for a task.
    SandboxId, "sbx_"
);
prefixed_id!(
    /// A dispute filed on a completed task.
    DisputeId, "dsp_"
);
prefixed_id!(
    /// A health probe sent through the queue path.
    ProbeId, "prb_"
);
prefixed_id!(
    /// An owner's Trust API key (the id, not the secret).
    TrustKeyId, "tkey_"
);
prefixed_id!(
    /// A multi-step workflow: tasks run one after another.
    WorkflowId, "wf_"
);
prefixed_id!(
    /// An API request, echoed in `X-Request-Id`.
    RequestId, "req_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_display_and_parse() {
        let id = TaskId::new();
        let text = id.to_string();
        assert!(text.starts_with("task_"));
        assert_eq!(text.parse::<TaskId>().unwrap(), id);
    }

    #[test]
    fn rejects_a_foreign_prefix_or_a_bad_body() {
        let agent = AgentId::new().to_string();
        assert_eq!(agent.parse::<TaskId>(), Err(InvalidId { prefix: "task_" }));
        assert!("task_not-a-ulid".parse::<TaskId>().is_err());
        assert!("".parse::<TaskId>().is_err());
    }

    #[test]
    fn serializes_as_a_plain_string() {
        let id = AgentId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: AgentId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<AgentId>("\"usr_01ARZ3NDEKTSV4RRFFQ69G5FAV\"").is_err());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let first = TaskId::from_ulid(Ulid::from_parts(1_000, 0));
        let second = TaskId::from_ulid(Ulid::from_parts(2_000, 0));
        assert!(first.to_string() < second.to_string());
    }
}
