//! Sending to SQS. Bodies are JSON; consumers parse each record on its own.

use aws_sdk_sqs::Client;
use serde::Serialize;

use crate::StoreError;

/// Sends one JSON message; returns its SQS message id.
pub async fn send_json<T: Serialize>(
    client: &Client,
    queue_url: &str,
    body: &T,
) -> Result<String, StoreError> {
    let body = serde_json::to_string(body).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let sent = client
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(sent.message_id.unwrap_or_default())
}
