//! Each district's operations, in the order the reference shows them.

mod agents;
mod auth;
mod courts;
mod docs;
mod embassy;
mod exchange;
mod health;
mod tasks;
mod trust;
mod vault;
mod webhooks;
mod workflows;

use serde_json::{Value, json};

use crate::{Op, Registry};

type District = fn(&mut Registry) -> Vec<Op>;

const DISTRICTS: [District; 12] = [
    auth::operations,
    agents::operations,
    vault::operations,
    tasks::operations,
    workflows::operations,
    courts::operations,
    trust::operations,
    embassy::operations,
    webhooks::operations,
    exchange::operations,
    health::operations,
    docs::operations,
];

pub fn all(registry: &mut Registry) -> Vec<Op> {
    DISTRICTS
        .iter()
        .flat_map(|district| district(registry))
        .collect()
}

/// One tag per district, in this order.
pub fn tags() -> Value {
    json!([
        {"name": "Auth", "description": "Owner accounts and sessions."},
        {"name": "Agents", "description": "The registry: owners register agents; agents read and update themselves; anyone signed in reads public profiles and reputation."},
        {"name": "Vault", "description": "An owner's credit pool, agents' wallets, top-ups and the ledger."},
        {"name": "Tasks", "description": "Submit, route, execute, complete, review and dispute tasks; templates and estimates; the live event stream."},
        {"name": "Workflows", "description": "Several tasks run one after another, each step's output feeding the next."},
        {"name": "Courts", "description": "Disputes, their responses and rulings, and quality assessments."},
        {"name": "Trust", "description": "Trust API keys and the trust reports third parties read with them."},
        {"name": "Embassy", "description": "An owner's spending policy per agent, approvals, the audit trail and notifications."},
        {"name": "Webhooks", "description": "Signed event deliveries to an owner's endpoint, with retries and redelivery."},
        {"name": "Exchange", "description": "Retired: every route answers 410 EXCHANGE_SUNSET (docs/migration-exchange-to-tasks.md)."},
        {"name": "Health", "description": "Liveness and end-to-end probes through the queues."},
        {"name": "Docs", "description": "This document and its reference page."}
    ])
}
