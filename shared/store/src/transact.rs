//! All-or-nothing writes across items, with the failing item named.
//!
//! Each item gets a label when it is added; if DynamoDB cancels the transaction, its
//! `CancellationReasons` (one per item, in order) are mapped back to those labels so the
//! caller can answer "pool too low" rather than "transaction failed".
//!
//! A transaction cancelled only because another one touched the same items at the same
//! moment (`TransactionConflict`, or throttling) is not a business answer: it is tried
//! again with jittered backoff, and if it keeps losing it is [`StoreError::Contention`]
//! (a retryable 503), never "insufficient credits" or "wrong state".

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

use crate::StoreError;
use crate::error::FailedItem;

/// DynamoDB's limit on items in one transaction.
pub const MAX_ITEMS: usize = 100;

/// Tries of a transaction that only lost to contention, the first included.
pub const CONTENTION_ATTEMPTS: u32 = 6;

/// Reason codes that say "somebody else was writing these items": worth a retry.
const CONTENTION_CODES: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

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

    /// Writes every item or none, retrying a transaction that lost only to contention.
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
        for attempt in 1..=CONTENTION_ATTEMPTS {
            match self.send(client).await {
                Err(StoreError::TransactionCancelled { failed }) if only_contention(&failed) => {
                    if attempt < CONTENTION_ATTEMPTS {
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                }
                other => return other,
            }
        }
        tracing::warn!(
            attempts = CONTENTION_ATTEMPTS,
            "transaction kept losing to concurrent writers"
        );
        Err(StoreError::Contention)
    }

    async fn send(&self, client: &Client) -> Result<(), StoreError> {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(self.items.clone()))
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
                // Another transaction is still applying to one of the items.
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Err(StoreError::TransactionCancelled {
                        failed: vec![FailedItem {
                            label: "#transaction".into(),
                            index: 0,
                            code: "TransactionConflict".into(),
                            item: None,
                        }],
                    })
                }
                other => Err(StoreError::aws(other)),
            },
        }
    }
}

/// Whether every failed item failed only because of concurrent writers (no condition
/// said no), so the same transaction may succeed when tried again.
pub fn only_contention(failed: &[FailedItem]) -> bool {
    !failed.is_empty() && failed.iter().all(|f| is_contention(&f.code))
}

/// A reason code that means "another writer", not "your condition failed".
pub fn is_contention(code: &str) -> bool {
    CONTENTION_CODES.contains(&code)
}

/// 10 ms doubling per attempt, capped at 320 ms, with full jitter: racing writers
/// spread out instead of colliding again in step.
fn backoff(attempt: u32) -> std::time::Duration {
    let cap = 10u64 << attempt.min(5);
    let mut bytes = [0u8; 8];
    let random = if getrandom::fill(&mut bytes).is_ok() {
        u64::from_le_bytes(bytes)
    } else {
        u64::from(attempt) * 7
    };
    std::time::Duration::from_millis(1 + random % cap)
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
    fn contention_is_retryable_but_a_failed_condition_is_not() {
        let labels = ["task".to_owned(), "pool".to_owned()];
        let conflict = failed_items(&labels, &[reason("None"), reason("TransactionConflict")]);
        assert!(only_contention(&conflict));
        let mixed = failed_items(
            &labels,
            &[
                reason("ConditionalCheckFailed"),
                reason("TransactionConflict"),
            ],
        );
        assert!(!only_contention(&mixed));
        assert!(!only_contention(&[]));
        let short = failed_items(&labels, &[reason("None"), reason("ConditionalCheckFailed")]);
        assert!(!only_contention(&short));
    }

    #[test]
    fn backoff_stays_within_its_cap() {
        for attempt in 1..10 {
            let wait = backoff(attempt);
            assert!(wait >= std::time::Duration::from_millis(1));
            assert!(wait <= std::time::Duration::from_millis(321));
        }
    }

    #[test]
    fn keeps_a_reason_without_a_label() {
        let failed = failed_items(&[], &[reason("TransactionConflict")]);
        assert_eq!(failed[0].label, "#0");
    }
}
