//! Idempotency records for money-moving POSTs (Powertools' model): one conditional put
//! claims the key (`in_progress`), the finished response is stored (`completed`), and
//! a repeat with the same body gets that response back.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use time::OffsetDateTime;

use crate::{Key, StoreError, ttl};

/// Keys are remembered for a day.
pub const RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

fn key(scope: &str, idempotency_key: &str) -> Key {
    Key::new(format!("IDEMP#{scope}#{idempotency_key}"), "IDEMP")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use of the key: go ahead, then [`complete`] or [`abandon`].
    Proceed,
    /// Done before with the same request: answer this again.
    Replay { status: u16, body: String },
    /// The key was used for a different request.
    Mismatch,
    /// The same request is still being processed.
    InProgress,
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub async fn begin(
    client: &Client,
    table: &str,
    scope: &str,
    idempotency_key: &str,
    request_hash: &str,
    now: OffsetDateTime,
) -> Result<Begin, StoreError> {
    let mut item = key(scope, idempotency_key).to_map();
    item.insert("status".into(), AttributeValue::S("in_progress".into()));
    item.insert("requestHash".into(), AttributeValue::S(request_hash.into()));
    item.insert(
        "expiresAt".into(),
        AttributeValue::N(ttl::expires_at(now, RECORD_TTL).to_string()),
    );
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        // An expired record (TTL deletion lags) counts as absent.
        .condition_expression("attribute_not_exists(PK) OR expiresAt < :now")
        .expression_attribute_values(":now", AttributeValue::N(now.unix_timestamp().to_string()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Begin::Proceed),
        Err(err) => match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(failed) => {
                let old = failed.item().cloned().unwrap_or_default();
                if text(&old, "requestHash").as_deref() != Some(request_hash) {
                    return Ok(Begin::Mismatch);
                }
                match (text(&old, "status").as_deref(), text(&old, "responseBody")) {
                    (Some("completed"), Some(body)) => Ok(Begin::Replay {
                        status: old
                            .get("responseStatus")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(200),
                        body,
                    }),
                    _ => Ok(Begin::InProgress),
                }
            }
            other => Err(StoreError::aws(other)),
        },
    }
}

/// Stores the response to replay.
pub async fn complete(
    client: &Client,
    table: &str,
    scope: &str,
    idempotency_key: &str,
    status: u16,
    body: &str,
) -> Result<(), StoreError> {
    client
        .update_item()
        .table_name(table)
        .set_key(Some(key(scope, idempotency_key).to_map()))
        .update_expression("SET #status = :completed, responseStatus = :code, responseBody = :body")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":completed", AttributeValue::S("completed".into()))
        .expression_attribute_values(":code", AttributeValue::N(status.to_string()))
        .expression_attribute_values(":body", AttributeValue::S(body.into()))
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(())
}

/// Forgets the key after a failed request, so the client may retry with it.
pub async fn abandon(
    client: &Client,
    table: &str,
    scope: &str,
    idempotency_key: &str,
) -> Result<(), StoreError> {
    client
        .delete_item()
        .table_name(table)
        .set_key(Some(key(scope, idempotency_key).to_map()))
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(())
}
