//! The single table's physical schema: key attributes, indexes, TTL.
//!
//! `infra/template.yaml` declares the table; a test in the local runner checks that
//! these names agree with it, and tests create their tables from the template itself.

pub const PK: &str = "PK";
pub const SK: &str = "SK";
/// Epoch seconds after which DynamoDB may delete the item.
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// A global secondary index with overloaded string keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gsi {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
}

/// Lists by parent, newest first (an owner's tasks, an agent's tasks, ledger entries).
pub const GSI1: Gsi = Gsi {
    name: "GSI1",
    pk: "GSI1PK",
    sk: "GSI1SK",
};
/// Ranked lookups (agents by category and score).
pub const GSI2: Gsi = Gsi {
    name: "GSI2",
    pk: "GSI2PK",
    sk: "GSI2SK",
};
/// Work queues by due time (the sweeper's deadlines).
pub const GSI3: Gsi = Gsi {
    name: "GSI3",
    pk: "GSI3PK",
    sk: "GSI3SK",
};

pub const INDEXES: [Gsi; 3] = [GSI1, GSI2, GSI3];
