//! All-or-nothing writes across items, with the failing item named.
//!
//! Each item gets a label when it is added; if DynamoDB cancels the transaction, its
//! `CancellationReasons` (one per item, in order) are mapped back to those labels so the
//! caller can answer "pool too low" rather than "transaction failed".

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

use crate::StoreError;
use crate::error::FailedItem;

/// DynamoDB's limit on items in one transaction.
pub const MAX_ITEMS: usize = 100;

/// A transaction being built: labelled items, committed at once.
#[derive(Debug, Default)]
pub struct Transaction {
    labels: Vec<String>,
    items: Vec<TransactWriteItem>,
}

impl Transaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an item under a label used in errors (e.g. `"task"`, `"hold"`).
    pub fn push(&mut self, label: impl Into<String>, item: TransactWriteItem) -> &mut Self {
        self.labels.push(label.into());
        self.items.push(item);
        self
    }

    /// Adds labelled items built elsewhere (e.g. a vault operation's).
    pub fn extend(
        &mut self,
        items: impl IntoIterator<Item = (String, TransactWriteItem)>,
    ) -> &mut Self {
        for (label, item) in items {
            self.push(label, item);
        }
        self
    }

    /// Writes every item or none.
    pub async fn commit(self, client: &Client) -> Result<(), StoreError> {
        if self.items.is_empty() {
            return Ok(());
        }
        if self.items.len() > MAX_ITEMS {
            return Err(StoreError::Invalid(format!(
                "{} items in one transaction; DynamoDB allows {MAX_ITEMS}",
                self.items.len()
            )));
        }
        let result = client
            .transact_write_items()
            .set_transact_items(Some(self.items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    Err(StoreError::TransactionCancelled {
                        failed: failed_items(&self.labels, cancelled.cancellation_reasons()),
                    })
                }
                other => Err(StoreError::aws(other)),
            },
        }
    }
}

/// Pairs each reason with its item's label, keeping only the items that failed
/// (DynamoDB reports `None` for the ones that would have succeeded).
fn failed_items(labels: &[String], reasons: &[CancellationReason]) -> Vec<FailedItem> {
    reasons
        .iter()
        .enumerate()
        .filter_map(|(index, reason)| {
            let code = reason.code().unwrap_or("Unknown");
            (code != "None").then(|| FailedItem {
                label: labels
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| format!("#{index}")),
                index,
                code: code.to_owned(),
                item: reason.item().cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn names_only_the_items_that_failed() {
        let labels = ["task".to_owned(), "hold".to_owned(), "pool".to_owned()];
        let reasons = [
            reason("None"),
            reason("None"),
            reason("ConditionalCheckFailed"),
        ];
        let failed = failed_items(&labels, &reasons);
        assert_eq!(
            failed,
            vec![FailedItem {
                label: "pool".into(),
                index: 2,
                code: "ConditionalCheckFailed".into(),
                item: None,
            }]
        );
    }

    #[test]
    fn keeps_a_reason_without_a_label() {
        let failed = failed_items(&[], &[reason("TransactionConflict")]);
        assert_eq!(failed[0].label, "#0");
    }
}
