//! Fixed-window rate limits as counters in the table: one conditional update per hit,
//! the counter expiring by TTL after its window.

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

/// Counts one hit for `subject` against `limit` hits per `window`.
pub async fn hit(
    client: &Client,
    table: &str,
    subject: &str,
    limit: u32,
    window: Duration,
    now: OffsetDateTime,
) -> Result<RateDecision, StoreError> {
    let window_secs = window.as_secs().max(1) as i64;
    let now_secs = now.unix_timestamp();
    let start = now_secs - now_secs.rem_euclid(window_secs);
    let end = start + window_secs;
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
