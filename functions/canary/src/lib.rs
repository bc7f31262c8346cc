//! `canary`: the other end of the health probe.
//!
//! - SQS (canary queue): records each probe as received, exactly once per probe,
//!   reporting per-record failures (`batchItemFailures`).
//! - Schedule: starts a probe, so the queue path is exercised even when nobody calls
//!   the API.

use aicity_domain::ids::ProbeId;
use aicity_store::probe::{self, Probe, ProbeSource, Recorded};
use aicity_store::{AwsClients, StoreError, config};
use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct Canary {
    pub clients: AwsClients,
    pub table: String,
    pub canary_queue_url: String,
}

impl Canary {
    pub async fn from_env() -> Result<Self, config::MissingEnv> {
        Ok(Self {
            clients: AwsClients::from_env().await,
            table: config::env_var("TABLE_NAME")?,
            canary_queue_url: config::env_var("CANARY_QUEUE_URL")?,
        })
    }
}

/// The two triggers; an SQS event always has `Records`, a schedule never does.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CanaryEvent {
    Queue(SqsEvent),
    Schedule(CloudWatchEvent),
}

/// The body of a canary message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeMessage {
    pub probe_id: ProbeId,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("unreadable message body: {0}")]
    BadBody(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn handle(deps: &Canary, event: CanaryEvent) -> Result<Value, lambda_runtime::Error> {
    match event {
        CanaryEvent::Queue(batch) => Ok(serde_json::to_value(consume(deps, batch).await)?),
        CanaryEvent::Schedule(_) => {
            let probe_id = start_probe(deps).await?;
            Ok(json!({ "probeId": probe_id }))
        }
    }
}

/// Records every message of a batch on its own; the failed ones are returned for
/// redelivery (and, past the queue's maxReceiveCount, the DLQ).
pub async fn consume(deps: &Canary, batch: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        if let Err(err) = record(deps, &message).await {
            let id = message.message_id.clone().unwrap_or_default();
            tracing::warn!(message_id = id, error = %err, "canary message failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn record(deps: &Canary, message: &SqsMessage) -> Result<Recorded, RecordError> {
    let body: ProbeMessage = serde_json::from_str(message.body.as_deref().unwrap_or_default())?;
    let outcome = probe::record_received(
        &deps.clients.dynamodb,
        &deps.table,
        &body.probe_id,
        OffsetDateTime::now_utc(),
    )
    .await?;
    tracing::info!(probe_id = %body.probe_id, ?outcome, "probe recorded");
    Ok(outcome)
}

/// Creates a probe and sends it through the queue.
pub async fn start_probe(deps: &Canary) -> Result<ProbeId, StoreError> {
    let now = OffsetDateTime::now_utc();
    let probe = Probe::new(ProbeSource::Schedule, now);
    probe::create(&deps.clients.dynamodb, &deps.table, &probe, now).await?;
    aicity_store::queue::send_json(
        &deps.clients.sqs,
        &deps.canary_queue_url,
        &ProbeMessage {
            probe_id: probe.probe_id,
        },
    )
    .await?;
    Ok(probe.probe_id)
}
