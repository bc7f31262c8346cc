//! Idempotency records for money-moving POSTs (Powertools' model): one conditional put
//! claims the key (`in_progress`), the finished response is stored (`completed`), and
//! a repeat with the same body gets that response back.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use time::OffsetDateTime;

use crate::{Key, StoreError, ttl};

/// Keys are remembered for a day.
pub const RECORD_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a claim on a key lasts while its request runs. A request that crashed
/// leaves its claim behind; a minute later the same request may take the key over
/// (what it does is idempotent underneath: payment intents, holds keyed by task).
pub const IN_PROGRESS_LEASE: Duration = Duration::from_secs(60);

fn key(scope: &str, idempotency_key: &str) -> Key {
    Key::new(format!("IDEMP#{scope}#{idempotency_key}"), "IDEMP")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Go ahead, then [`complete`], [`release`] or [`abandon`]. `operation` is the id the
    /// request's effect must be written under (a task id, a transfer marker): the same
    /// for every try of the same key, so a retry after a crash that did commit finds
    /// the effect instead of repeating it.
    Proceed { operation: String },
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

/// Claims the key for this request. `fresh_operation` becomes the operation id unless
/// an earlier try of the same request (whose claim lapsed) already chose one.
pub async fn begin(
    client: &Client,
    table: &str,
    scope: &str,
    idempotency_key: &str,
    request_hash: &str,
    fresh_operation: &str,
    now: OffsetDateTime,
) -> Result<Begin, StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(key(scope, idempotency_key).to_map()))
        .update_expression(
            "SET #status = :in_progress, requestHash = :hash, expiresAt = :expires, \
             lockedUntil = :locked, operationId = :operation \
             REMOVE responseStatus, responseBody",
        )
        // An expired record (TTL deletion lags) counts as absent; so does the lapsed
        // or released claim of the same request (its process died, or it failed on our
        // side, before finishing).
        .condition_expression(
            "attribute_not_exists(PK) OR expiresAt < :now \
             OR (#status = :in_progress AND lockedUntil < :now AND requestHash = :hash)",
        )
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":in_progress", AttributeValue::S("in_progress".into()))
        .expression_attribute_values(":hash", AttributeValue::S(request_hash.into()))
        .expression_attribute_values(
            ":expires",
            AttributeValue::N(ttl::expires_at(now, RECORD_TTL).to_string()),
        )
        .expression_attribute_values(
            ":locked",
            AttributeValue::N(ttl::expires_at(now, IN_PROGRESS_LEASE).to_string()),
        )
        .expression_attribute_values(":operation", AttributeValue::S(fresh_operation.into()))
        .expression_attribute_values(":now", AttributeValue::N(now.unix_timestamp().to_string()))
        .return_values(ReturnValue::AllOld)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(output) => {
            let old = output.attributes.unwrap_or_default();
            let expired = old
                .get("expiresAt")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .is_none_or(|at| at < now.unix_timestamp());
            match text(&old, "operationId") {
                // Taking over an earlier try of this request: keep its operation id.
                Some(earlier) if !expired && earlier != fresh_operation => {
                    keep_operation(client, table, scope, idempotency_key, &earlier).await?;
                    Ok(Begin::Proceed { operation: earlier })
                }
                _ => Ok(Begin::Proceed {
                    operation: fresh_operation.to_owned(),
                }),
            }
        }
        Err(err) => match err.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(failed) => {
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

async fn keep_operation(
    client: &Client,
    table: &str,
    scope: &str,
    idempotency_key: &str,
    operation: &str,
) -> Result<(), StoreError> {
    client
        .update_item()
        .table_name(table)
        .set_key(Some(key(scope, idempotency_key).to_map()))
        .update_expression("SET operationId = :operation")
        .expression_attribute_values(":operation", AttributeValue::S(operation.into()))
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(())
}

/// Ends the claim without forgetting the key: the request failed on our side and may
/// or may not have taken effect, so a retry proceeds at once under the same operation
/// id (and finds the effect if there was one).
pub async fn release(
    client: &Client,
    table: &str,
    scope: &str,
    idempotency_key: &str,
) -> Result<(), StoreError> {
    client
        .update_item()
        .table_name(table)
        .set_key(Some(key(scope, idempotency_key).to_map()))
        .update_expression("SET lockedUntil = :zero")
        .condition_expression("#status = :in_progress")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":in_progress", AttributeValue::S("in_progress".into()))
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(())
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
        .update_expression(
            "SET #status = :completed, responseStatus = :code, responseBody = :body REMOVE lockedUntil",
        )
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":completed", AttributeValue::S("completed".into()))
        .expression_attribute_values(":code", AttributeValue::N(status.to_string()))
        .expression_attribute_values(":body", AttributeValue::S(body.into()))
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(())
}

/// Forgets the key after a refused request (a 4xx: nothing happened), so the client
/// may fix the cause and retry with it.
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
