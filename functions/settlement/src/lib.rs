//! `settlement`: consumes the settlement queue, whose delivery delay is the refund
//! window. Pays each completed, unrefunded task's agent exactly once; a message that
//! arrives early (a shorter queue delay, a clock skew) comes back when the window ends.

use std::sync::Arc;
use std::time::Duration;

use aicity_domain::task::timing::Clock;
use aicity_http::Context;
use aicity_store::faults;
use aicity_tasks::TaskMessage;
use aicity_tasks::settlement::{Settled, settle};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

pub struct Settlement {
    pub ctx: Context,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub clock: Arc<dyn Clock>,
    pub window: Duration,
}

pub async fn handle(settlement: &Settlement, batch: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        if !process(settlement, &message).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn process(settlement: &Settlement, message: &SqsMessage) -> bool {
    let body = message.body.as_deref().unwrap_or_default();
    let Ok(TaskMessage { task_id }) = serde_json::from_str(body) else {
        // Its id and size, never its body.
        tracing::warn!(
            message_id = message.message_id.as_deref().unwrap_or_default(),
            bytes = body.len(),
            "unreadable settlement message"
        );
        return false;
    };
    match Box::pin(settle(
        &settlement.ctx,
        &task_id,
        settlement.clock.as_ref(),
        settlement.window,
    ))
    .await
    {
        Ok(Settled::NotYet(remaining)) => {
            // Come back when the window has closed (SQS allows up to 12 hours).
            let seconds = remaining.as_secs().clamp(1, 43_200) as i32;
            if let Some(receipt) = &message.receipt_handle {
                let _ = settlement
                    .sqs
                    .change_message_visibility()
                    .queue_url(&settlement.queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(seconds)
                    .send()
                    .await;
            }
            false
        }
        Ok(_) if faults::fires(&settlement.ctx.table, faults::point::CONSUMER_AFTER_WRITE) => false,
        Ok(outcome) => {
            tracing::info!(task_id = %task_id, ?outcome, "settlement");
            true
        }
        Err(err) if !err.is_retryable() => {
            tracing::warn!(task_id = %task_id, code = %err.code, "nothing to settle; dropping the message");
            true
        }
        Err(err) => {
            tracing::error!(task_id = %task_id, code = %err.code, "settlement failed; will retry");
            false
        }
    }
}
