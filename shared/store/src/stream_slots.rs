//! Open task streams per principal (an owner or an agent), capped: one small item per
//! principal holding a lease per open stream (`leases: {<lease id>: <expires epoch>}`).
//!
//! A stream takes a lease when it opens (refused once `cap` leases are live), renews it
//! while it runs and gives it back when it ends. A lease past its expiry counts for
//! nothing and is dropped by the next open, so a function that died without giving its
//! lease back holds the slot only until the lease runs out, never for ever. Every write
//! is conditional on the `version` read (or on the lease being there), so racing opens
//! cannot pass the cap and a renewal never brings back a lease given back.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use crate::{Key, StoreError};

/// The answer to an open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    Granted,
    /// `cap` streams are open; the earliest lease ends in this many seconds (≥ 1).
    Full {
        retry_after: u64,
    },
}

/// What an open would do with the leases it read: refuse, or keep the live leases and
/// add its own (expired ones dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Full { retry_after: u64 },
    Take { leases: HashMap<String, i64> },
}

/// Decides an open at `now` (epoch seconds) on the leases read. Pure, so it is tested
/// without a table.
pub fn plan(
    leases: &HashMap<String, i64>,
    cap: u32,
    lease_id: &str,
    expires_at: i64,
    now: i64,
) -> Plan {
    let live: HashMap<String, i64> = leases
        .iter()
        .filter(|(id, at)| **at > now && id.as_str() != lease_id)
        .map(|(id, at)| (id.clone(), *at))
        .collect();
    if live.len() >= cap as usize {
        let earliest = live.values().min().copied().unwrap_or(now + 1);
        return Plan::Full {
            retry_after: (earliest - now).max(1) as u64,
        };
    }
    let mut leases = live;
    leases.insert(lease_id.to_owned(), expires_at);
    Plan::Take { leases }
}

/// A few milliseconds (0–19) that differ between racing opens.
fn jitter_ms() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 20)
}

fn number(value: Option<&AttributeValue>) -> Option<i64> {
    value
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// Takes a lease for `lease_id` lasting `lease` from `now`, unless `cap` are live.
pub async fn acquire(
    client: &Client,
    table: &str,
    principal: &str,
    lease_id: &str,
    cap: u32,
    lease: Duration,
    now: OffsetDateTime,
) -> Result<Acquire, StoreError> {
    /// Racing opens of one principal retry on the version; each try is two small calls.
    const ATTEMPTS: u32 = 8;
    let key = Key::stream_slots(principal);
    let now_secs = now.unix_timestamp();
    let expires_at = crate::ttl::expires_at(now, lease);
    for attempt in 0..ATTEMPTS {
        let item = client
            .get_item()
            .table_name(table)
            .set_key(Some(key.to_map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::aws)?
            .item
            .unwrap_or_default();
        let version = number(item.get("version"));
        let leases: HashMap<String, i64> = match item.get("leases") {
            Some(AttributeValue::M(map)) => map
                .iter()
                .filter_map(|(id, at)| Some((id.clone(), number(Some(at))?)))
                .collect(),
            _ => HashMap::new(),
        };
        let leases = match plan(&leases, cap, lease_id, expires_at, now_secs) {
            Plan::Full { retry_after } => return Ok(Acquire::Full { retry_after }),
            Plan::Take { leases } => leases,
        };
        // The item lives as long as its longest lease (TTL cleans up idle principals).
        let item_expiry = leases.values().max().copied().unwrap_or(expires_at);
        let map: HashMap<String, AttributeValue> = leases
            .into_iter()
            .map(|(id, at)| (id, AttributeValue::N(at.to_string())))
            .collect();
        let update = client
            .update_item()
            .table_name(table)
            .set_key(Some(key.to_map()))
            .update_expression("SET leases = :leases, expiresAt = :expires, version = :next")
            .expression_attribute_values(":leases", AttributeValue::M(map))
            .expression_attribute_values(":expires", AttributeValue::N(item_expiry.to_string()))
            .expression_attribute_values(
                ":next",
                AttributeValue::N((version.unwrap_or(0) + 1).to_string()),
            );
        let update = match version {
            Some(read) => update
                .condition_expression("version = :read")
                .expression_attribute_values(":read", AttributeValue::N(read.to_string())),
            None => update.condition_expression("attribute_not_exists(version)"),
        };
        match update.send().await {
            Ok(_) => return Ok(Acquire::Granted),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => {
                    // Another open or close of this principal came first: read again.
                    let pause = 10 + u64::from(attempt) * 15 + u64::from(jitter_ms());
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return Err(StoreError::aws(other)),
            },
        }
    }
    // Contended beyond reason: say so as a full house, briefly.
    Ok(Acquire::Full { retry_after: 1 })
}

/// Extends a lease to `lease` from `now`. `false`: the lease is gone (it ran out and a
/// later open dropped it), so the stream should end and its client open again.
pub async fn renew(
    client: &Client,
    table: &str,
    principal: &str,
    lease_id: &str,
    lease: Duration,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let expires_at = crate::ttl::expires_at(now, lease);
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(Key::stream_slots(principal).to_map()))
        // Every lease is renewed to `now + lease`, so this is also the longest one.
        .update_expression("SET leases.#id = :at, expiresAt = :at ADD version :one")
        .condition_expression("attribute_exists(leases.#id)")
        .expression_attribute_names("#id", lease_id)
        .expression_attribute_values(":at", AttributeValue::N(expires_at.to_string()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) => match err.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
            other => Err(StoreError::aws(other)),
        },
    }
}

/// Gives a lease back. Giving back a lease that is gone is not an error.
pub async fn release(
    client: &Client,
    table: &str,
    principal: &str,
    lease_id: &str,
) -> Result<(), StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(Key::stream_slots(principal).to_map()))
        .update_expression("REMOVE leases.#id ADD version :one")
        .condition_expression("attribute_exists(leases.#id)")
        .expression_attribute_names("#id", lease_id)
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) => match err.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
            other => Err(StoreError::aws(other)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leases(entries: &[(&str, i64)]) -> HashMap<String, i64> {
        entries
            .iter()
            .map(|(id, at)| (id.to_string(), *at))
            .collect()
    }

    #[test]
    fn an_open_under_the_cap_keeps_the_live_leases_and_adds_its_own() {
        let read = leases(&[("a", 1_100), ("b", 1_050)]);
        assert_eq!(
            plan(&read, 3, "c", 1_060, 1_000),
            Plan::Take {
                leases: leases(&[("a", 1_100), ("b", 1_050), ("c", 1_060)])
            }
        );
    }

    #[test]
    fn at_the_cap_an_open_is_refused_until_the_earliest_lease_ends() {
        let read = leases(&[("a", 1_100), ("b", 1_030)]);
        assert_eq!(
            plan(&read, 2, "c", 1_060, 1_000),
            Plan::Full { retry_after: 30 }
        );
    }

    #[test]
    fn expired_leases_count_for_nothing_and_are_dropped() {
        // "b" expired (a function that died), "c" expires exactly now.
        let read = leases(&[("a", 1_100), ("b", 900), ("c", 1_000)]);
        assert_eq!(
            plan(&read, 2, "d", 1_060, 1_000),
            Plan::Take {
                leases: leases(&[("a", 1_100), ("d", 1_060)])
            }
        );
    }

    #[test]
    fn a_cap_of_zero_refuses_everything_and_retry_after_is_at_least_one_second() {
        assert_eq!(
            plan(&HashMap::new(), 0, "a", 1_060, 1_000),
            Plan::Full { retry_after: 1 }
        );
        let read = leases(&[("a", 1_000_000)]);
        assert!(matches!(
            plan(&read, 1, "b", 1_060, 999_999),
            Plan::Full { retry_after: 1 }
        ));
    }

    #[test]
    fn the_same_lease_taken_again_is_not_counted_twice() {
        let read = leases(&[("a", 1_100)]);
        assert_eq!(
            plan(&read, 1, "a", 1_060, 1_000),
            Plan::Take {
                leases: leases(&[("a", 1_060)])
            }
        );
    }
}
