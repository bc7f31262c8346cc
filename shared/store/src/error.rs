//! Storage errors, typed so callers can tell a lost race from an outage.

use aicity_domain::{ApiError, ErrorCode};

/// One item of a cancelled transaction and why it failed.
///
/// Its `Debug` (and the error's `Display`) name the item by its key, never its
/// content: a task item carries buyers' code and files, and errors go to the logs.
#[derive(Clone, PartialEq)]
pub struct FailedItem {
    /// The caller's name for the item (e.g. `"task"`, `"hold"`, `"pool"`).
    pub label: String,
    /// Its position in the transaction.
    pub index: usize,
    /// DynamoDB's reason code, e.g. `ConditionalCheckFailed`.
    pub code: String,
    /// The item as it was, when the write asked for it (`ALL_OLD` on failure).
    pub item: Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
}

impl FailedItem {
    /// The failed item's key (`PK`, `SK`), when DynamoDB returned the item.
    pub fn key(&self) -> Option<(&str, &str)> {
        let item = self.item.as_ref()?;
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
        };
        Some((
            text(crate::schema::PK)?,
            text(crate::schema::SK).unwrap_or(""),
        ))
    }
}

impl std::fmt::Debug for FailedItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailedItem")
            .field("label", &self.label)
            .field("index", &self.index)
            .field("code", &self.code)
            .field("key", &self.key())
            .finish()
    }
}

impl std::fmt::Display for FailedItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (#{}: {}", self.label, self.index, self.code)?;
        if let Some((pk, sk)) = self.key() {
            write!(f, ", {pk}/{sk}")?;
        }
        f.write_str(")")
    }
}

fn list(failed: &[FailedItem]) -> String {
    failed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The item does not exist.
    #[error("item not found")]
    NotFound,
    /// A conditional write lost: the item is not in the expected state.
    /// `current` is the status it was found in, when there was one.
    #[error("conflict: item is in status {current:?}")]
    Conflict { current: Option<String> },
    /// The item exists and is in the expected state but belongs to somebody else.
    #[error("the actor does not match the item's owner")]
    ActorMismatch,
    /// A TransactWriteItems was cancelled; nothing was written. Names each failed item.
    #[error("transaction cancelled: {}", list(failed))]
    TransactionCancelled { failed: Vec<FailedItem> },
    /// The write kept losing to concurrent writers (after retries): nothing was
    /// written, and trying again later will do.
    #[error("contention: concurrent writers kept winning")]
    Contention,
    /// A request the caller built is invalid before it reaches DynamoDB.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// An item could not be converted to or from its Rust type.
    #[error("item (de)serialization failed: {0}")]
    Serde(#[from] serde_dynamo::Error),
    /// DynamoDB or SQS failed (network, throttling, permissions, …).
    #[error("AWS call failed: {0}")]
    Aws(String),
}

impl StoreError {
    /// Wraps any SDK error; the text goes to logs, never to a response body.
    pub fn aws(err: impl std::error::Error) -> Self {
        StoreError::Aws(aws_error_chain(&err))
    }

    /// The failed item of a cancelled transaction with this label.
    pub fn failed_item(&self, label: &str) -> Option<&FailedItem> {
        match self {
            StoreError::TransactionCancelled { failed } => failed.iter().find(|f| f.label == label),
            _ => None,
        }
    }

    /// The labels of the items whose conditions said no in a cancelled transaction
    /// (empty otherwise); items that only met a concurrent writer are not among them.
    pub fn failed_labels(&self) -> Vec<&str> {
        match self {
            StoreError::TransactionCancelled { failed } => failed
                .iter()
                .filter(|f| !crate::transact::is_contention(&f.code))
                .map(|f| f.label.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// `err: source: source…`: the SDK's Display alone says only "service error".
fn aws_error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl From<StoreError> for ApiError {
    /// The default mapping, for callers with no more specific one. Outages are logged
    /// here, once, and leave as a bare 5xx.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::new(ErrorCode::NotFound),
            StoreError::Conflict { .. } | StoreError::TransactionCancelled { .. } => {
                ApiError::new(ErrorCode::InvalidTaskState)
            }
            StoreError::ActorMismatch => ApiError::new(ErrorCode::TaskForbidden),
            StoreError::Invalid(_) | StoreError::Serde(_) => {
                tracing::error!(error = %err, "store request failed");
                ApiError::internal()
            }
            StoreError::Contention => ApiError::new(ErrorCode::ServiceUnavailable),
            StoreError::Aws(_) => {
                tracing::error!(error = %err, "AWS call failed");
                ApiError::new(ErrorCode::ServiceUnavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    /// A lost race logs which item said no, by its key: never the item's content.
    #[test]
    fn a_cancelled_transaction_names_items_by_key_never_content() {
        let item = HashMap::from([
            ("PK".to_owned(), AttributeValue::S("TASK#tk_1".into())),
            ("SK".to_owned(), AttributeValue::S("TASK".into())),
            (
                "input".to_owned(),
                AttributeValue::S("fn secret() { sk_live_abc }".into()),
            ),
        ]);
        let err = StoreError::TransactionCancelled {
            failed: vec![FailedItem {
                label: "task".into(),
                index: 0,
                code: "ConditionalCheckFailed".into(),
                item: Some(item),
            }],
        };
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(text.contains("TASK#tk_1"), "{text}");
            assert!(text.contains("ConditionalCheckFailed"), "{text}");
            assert!(!text.contains("sk_live_abc"), "{text}");
            assert!(!text.contains("input"), "{text}");
        }
    }
}
