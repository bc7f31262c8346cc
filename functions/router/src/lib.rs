//! `router`: consumes the routing queue. Each message names a task; routing it is
//! idempotent (a redelivery finds it claimed or assigned). When no agent can take it
//! yet, the message comes back after an exponential backoff (its visibility timeout),
//! and after `ROUTING_MAX_ATTEMPTS` the task fails with its hold released.

use std::time::Duration;

use aicity_http::Context;
use aicity_store::config::{MissingEnv, env_var};
use aicity_store::faults;
use aicity_tasks::TaskMessage;
use aicity_tasks::routing::{Routed, route};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

pub struct Router {
    pub ctx: Context,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, capped at [`MAX_BACKOFF`].
    pub backoff_base: Duration,
}

pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Router {
    pub async fn from_env() -> Result<Self, MissingEnv> {
        let ctx = Context::from_env().await?;
        let number = |name: &'static str, default: u64| -> Result<u64, MissingEnv> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| MissingEnv(name)),
                _ => Ok(default),
            }
        };
        Ok(Self {
            sqs: ctx.clients.sqs.clone(),
            queue_url: env_var("ROUTING_QUEUE_URL")?,
            max_attempts: number("ROUTING_MAX_ATTEMPTS", 5)? as u32,
            backoff_base: Duration::from_secs(number("ROUTING_BACKOFF_SECONDS", 10)?),
            ctx,
        })
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.backoff_base.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

pub async fn handle(router: &Router, batch: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        if !process(router, &message).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Whether the message is done with (`false`: leave it for a retry).
async fn process(router: &Router, message: &SqsMessage) -> bool {
    let body = message.body.as_deref().unwrap_or_default();
    let Ok(TaskMessage { task_id }) = serde_json::from_str(body) else {
        // Its id and size, never its body.
        tracing::warn!(
            message_id = message.message_id.as_deref().unwrap_or_default(),
            bytes = body.len(),
            "unreadable routing message"
        );
        return false;
    };
    // Boxed: routing's nested futures are deep; keep the handler's future small.
    match Box::pin(route(&router.ctx, &task_id, router.max_attempts)).await {
        Ok(Routed::Retry { attempts }) => {
            let delay = router.backoff(attempts);
            tracing::info!(task_id = %task_id, attempts, ?delay, "no agent yet; retrying later");
            if let Some(receipt) = &message.receipt_handle {
                let changed = router
                    .sqs
                    .change_message_visibility()
                    .queue_url(&router.queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(delay.as_secs() as i32)
                    .send()
                    .await;
                if let Err(err) = changed {
                    tracing::warn!(error = %aicity_store::StoreError::aws(err), "backoff not set; the queue's visibility timeout applies");
                }
            }
            false
        }
        Ok(_) if faults::fires(&router.ctx.table, faults::point::CONSUMER_AFTER_WRITE) => false,
        Ok(outcome) => {
            tracing::info!(task_id = %task_id, ?outcome, "routed");
            true
        }
        // A task that does not exist will never route: drop the message.
        Err(err) if !err.is_retryable() => {
            tracing::warn!(task_id = %task_id, code = %err.code, "routing refused; dropping the message");
            true
        }
        Err(err) => {
            tracing::error!(task_id = %task_id, code = %err.code, "routing failed; will retry");
            false
        }
    }
}
