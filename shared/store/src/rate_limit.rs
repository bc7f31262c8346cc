//! Fixed-window rate limits as counters in the table, each expiring by TTL after its
//! window: [`hit`] counts one hit with a conditional update (the strict path, exact
//! across every caller), [`add`] adds a batch of hits counted elsewhere and returns the
//! shared total (the batched path of `aicity_http::limiter`), [`give_back`] returns one.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use crate::{Key, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed {
        remaining: u32,
    },
    /// Over the limit; the window ends in this many seconds (≥ 1).
    Limited {
        retry_after: u64,
    },
}

/// The fixed window `now` falls in, as (start, end) in Unix seconds: windows are
/// aligned to the epoch, so every caller agrees on them.
pub fn window_of(window: Duration, now: OffsetDateTime) -> (i64, i64) {
    let window_secs = window.as_secs().max(1) as i64;
    let now_secs = now.unix_timestamp();
    let start = now_secs - now_secs.rem_euclid(window_secs);
    (start, start + window_secs)
}

/// Counts one hit for `subject` against `limit` hits per `window`.
pub async fn hit(
    client: &Client,
    table: &str,
    subject: &str,
    limit: u32,
    window: Duration,
    now: OffsetDateTime,
) -> Result<RateDecision, StoreError> {
    let (start, end) = window_of(window, now);
    let now_secs = now.unix_timestamp();
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(Key::rate(subject, start).to_map()))
        .update_expression("SET expiresAt = :end ADD hits :one")
        .condition_expression("attribute_not_exists(hits) OR hits < :limit")
        .set_expression_attribute_values(Some(HashMap::from([
            (":one".to_owned(), AttributeValue::N("1".into())),
            (":limit".to_owned(), AttributeValue::N(limit.to_string())),
            (":end".to_owned(), AttributeValue::N(end.to_string())),
        ])))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await;
    match result {
        Ok(output) => {
            let hits: u32 = output
                .attributes()
                .and_then(|a| a.get("hits"))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(limit);
            Ok(RateDecision::Allowed {
                remaining: limit.saturating_sub(hits),
            })
        }
        Err(err) => match err.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(_) => Ok(RateDecision::Limited {
                retry_after: (end - now_secs).max(1) as u64,
            }),
            other => Err(StoreError::aws(other)),
        },
    }
}

/// Adds `hits` to `subject`'s counter of the window `(start, end)` whatever it holds
/// and returns the total after: one write for a batch of hits already let through.
pub async fn add(
    client: &Client,
    table: &str,
    subject: &str,
    hits: u32,
    (start, end): (i64, i64),
) -> Result<u64, StoreError> {
    let output = client
        .update_item()
        .table_name(table)
        .set_key(Some(Key::rate(subject, start).to_map()))
        .update_expression("SET expiresAt = :end ADD hits :hits")
        .set_expression_attribute_values(Some(HashMap::from([
            (":hits".to_owned(), AttributeValue::N(hits.to_string())),
            (":end".to_owned(), AttributeValue::N(end.to_string())),
        ])))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(output
        .attributes()
        .and_then(|a| a.get("hits"))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::from(hits)))
}

/// Returns one hit [`hit`] counted in the window starting at `start` (a sign-in that
/// succeeded, say); never below zero, and a counter already gone is left alone.
pub async fn give_back(
    client: &Client,
    table: &str,
    subject: &str,
    start: i64,
) -> Result<(), StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(Key::rate(subject, start).to_map()))
        .update_expression("ADD hits :minus")
        .condition_expression("hits > :zero")
        .set_expression_attribute_values(Some(HashMap::from([
            (":minus".to_owned(), AttributeValue::N("-1".into())),
            (":zero".to_owned(), AttributeValue::N("0".into())),
        ])))
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

    #[test]
    fn windows_are_aligned_to_the_epoch() {
        let at = OffsetDateTime::from_unix_timestamp(1_000_000_123).unwrap();
        assert_eq!(
            window_of(Duration::from_secs(60), at),
            (1_000_000_080, 1_000_000_140)
        );
        assert_eq!(
            window_of(Duration::from_secs(900), at),
            (999_999_900, 1_000_000_800)
        );
        assert_eq!(
            window_of(Duration::ZERO, at),
            (1_000_000_123, 1_000_000_124)
        );
    }
}
