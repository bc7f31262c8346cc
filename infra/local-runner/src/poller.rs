//! SQS event sources, locally: what Lambda's event source mapping does.
//!
//! Receive a batch, invoke the function with a real SQS event, delete what succeeded.
//! A failed invocation deletes nothing; with `ReportBatchItemFailures` only the listed
//! messages stay. What stays becomes visible again after the queue's visibility
//! timeout, and after `maxReceiveCount` receives the queue's redrive policy moves it to
//! the dead-letter queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Map, Value, json};

use crate::invoke::Invoker;
use crate::resources::QueueInfo;

/// One SQS event source of one function.
#[derive(Debug, Clone)]
pub struct SqsSource {
    pub function: String,
    pub queue: QueueInfo,
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
    pub timeout: Duration,
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollOutcome {
    pub received: usize,
    pub deleted: usize,
    pub failed: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("SQS call failed: {0}")]
pub struct PollError(String);

fn sqs_error(err: impl std::error::Error) -> PollError {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    PollError(text)
}

/// A message as Lambda presents it in an SQS event record.
pub fn sqs_record(message: &Message, queue_arn: &str, region: &str) -> Value {
    let attributes: Map<String, Value> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.clone())))
        .collect();
    let message_attributes: Map<String, Value> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let binary = value.binary_value().map(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(b.as_ref())
            });
            (
                name.clone(),
                json!({
                    "stringValue": value.string_value(),
                    "binaryValue": binary,
                    "stringListValues": value.string_list_values(),
                    "binaryListValues": [],
                    "dataType": value.data_type(),
                }),
            )
        })
        .collect();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    })
}

/// The ids to keep from a function's answer. Like Lambda, an answer that names an id
/// not in the batch (or an empty one) fails the whole batch.
pub fn failed_ids(output: &Value, batch: &[String]) -> HashSet<String> {
    let all = || batch.iter().cloned().collect();
    let Some(failures) = output.get("batchItemFailures") else {
        return HashSet::new();
    };
    let Some(failures) = failures.as_array() else {
        return all();
    };
    let mut ids = HashSet::new();
    for failure in failures {
        match failure.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if batch.iter().any(|b| b == id) => {
                ids.insert(id.to_owned());
            }
            _ => return all(),
        }
    }
    ids
}

/// Receives one batch (long-polling up to `wait_seconds`), invokes, deletes successes.
pub async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    invoker: &dyn Invoker,
    source: &SqsSource,
    region: &str,
    wait_seconds: i32,
) -> Result<PollOutcome, PollError> {
    let received = sqs
        .receive_message()
        .queue_url(&source.queue.url)
        .max_number_of_messages(source.batch_size.clamp(1, 10) as i32)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(sqs_error)?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(PollOutcome::default());
    }
    let ids: Vec<String> = messages
        .iter()
        .map(|m| m.message_id().unwrap_or_default().to_owned())
        .collect();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| sqs_record(m, &source.queue.arn, region))
        .collect();
    let failed: HashSet<String> = match invoker
        .invoke(
            &source.function,
            json!({ "Records": records }),
            source.timeout,
        )
        .await
    {
        Ok(output) if source.report_batch_item_failures => failed_ids(&output, &ids),
        Ok(_) => HashSet::new(),
        Err(err) => {
            tracing::warn!(function = source.function, error = %err, "batch failed; messages will be retried");
            ids.iter().cloned().collect()
        }
    };
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| !failed.contains(m.message_id().unwrap_or_default()))
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .set_receipt_handle(m.receipt_handle().map(str::to_owned))
                .build()
                .ok()
        })
        .collect();
    let deleted = entries.len();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(&source.queue.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sqs_error)?;
    }
    Ok(PollOutcome {
        received: messages.len(),
        deleted,
        failed: failed.len(),
    })
}

/// Polls forever (until the task is dropped), backing off when SQS is unreachable.
pub async fn run(
    sqs: aws_sdk_sqs::Client,
    invoker: Arc<dyn Invoker>,
    source: SqsSource,
    region: String,
    wait_seconds: i32,
) {
    loop {
        match poll_once(&sqs, invoker.as_ref(), &source, &region, wait_seconds).await {
            Ok(outcome) if outcome.received > 0 => {
                tracing::info!(
                    function = source.function,
                    queue = source.queue.name,
                    ?outcome,
                    "batch"
                );
            }
            // An empty receive: long polling already waited, unless disabled.
            Ok(_) if wait_seconds == 0 => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(queue = source.queue.name, error = %err, "poll failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_failures_keep_only_the_named_messages() {
        let batch = vec!["a".to_owned(), "b".to_owned()];
        let output = json!({"batchItemFailures": [{"itemIdentifier": "b"}]});
        assert_eq!(failed_ids(&output, &batch), HashSet::from(["b".to_owned()]));
        assert!(failed_ids(&json!({"batchItemFailures": []}), &batch).is_empty());
        assert!(failed_ids(&json!(null), &batch).is_empty());
    }

    #[test]
    fn an_unknown_or_empty_identifier_fails_the_batch() {
        let batch = vec!["a".to_owned(), "b".to_owned()];
        let unknown = json!({"batchItemFailures": [{"itemIdentifier": "zzz"}]});
        assert_eq!(failed_ids(&unknown, &batch).len(), 2);
        let empty = json!({"batchItemFailures": [{"itemIdentifier": ""}]});
        assert_eq!(failed_ids(&empty, &batch).len(), 2);
    }

    #[test]
    fn records_parse_as_lambda_sqs_events() {
        let message = Message::builder()
            .message_id("m1")
            .receipt_handle("r1")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .build();
        let record = sqs_record(&message, "arn:aws:sqs:us-east-1:1:q", "us-east-1");
        let event: aws_lambda_events::sqs::SqsEvent =
            serde_json::from_value(json!({"Records": [record]})).unwrap();
        assert_eq!(event.records[0].message_id.as_deref(), Some("m1"));
        assert_eq!(event.records[0].attributes["ApproximateReceiveCount"], "1");
    }
}
