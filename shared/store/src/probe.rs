//! Health probes: a message sent through the canary queue and recorded by its
//! consumer, proving the HTTP → DynamoDB → SQS → consumer → DynamoDB path end to end.

use aicity_domain::ids::ProbeId;
use aicity_domain::timestamps;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::Stored;
use crate::transact::Transaction;
use crate::transition::Transition;
use crate::{Key, StoreError, ttl};

/// Probes are diagnostics: kept for a day.
pub const PROBE_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    Sent,
    Received,
}

impl ProbeStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProbeStatus::Sent => "sent",
            ProbeStatus::Received => "received",
        }
    }
}

/// Who started a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeSource {
    Api,
    Schedule,
}

/// A probe as stored and as shown by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub probe_id: ProbeId,
    pub status: ProbeStatus,
    pub source: ProbeSource,
    pub sent_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
}

/// The last probe the consumer recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanarySummary {
    pub last_probe_id: ProbeId,
    pub last_received_at: String,
}

impl Probe {
    pub fn new(source: ProbeSource, now: OffsetDateTime) -> Self {
        Self {
            probe_id: ProbeId::new(),
            status: ProbeStatus::Sent,
            source,
            sent_at: timestamps::format(now),
            received_at: None,
        }
    }
}

/// Records a new probe; an id that exists already is refused.
pub async fn create(
    client: &Client,
    table: &str,
    probe: &Probe,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let stored =
        Stored::new(Key::probe(&probe.probe_id), probe).expires_at(ttl::expires_at(now, PROBE_TTL));
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(serde_dynamo::to_item(&stored)?))
        .condition_expression("attribute_not_exists(PK)")
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) => match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(_) => {
                Err(StoreError::Conflict { current: None })
            }
            other => Err(StoreError::aws(other)),
        },
    }
}

pub async fn get(client: &Client, table: &str, id: &ProbeId) -> Result<Probe, StoreError> {
    crate::item::get(client, table, &Key::probe(id)).await
}

/// What recording a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First delivery: the probe is now received.
    New,
    /// A redelivery: nothing changed.
    AlreadyRecorded,
}

/// Marks a probe received and updates the canary summary, in one transaction.
/// Idempotent: a redelivered message finds the probe received and changes nothing.
pub async fn record_received(
    client: &Client,
    table: &str,
    id: &ProbeId,
    now: OffsetDateTime,
) -> Result<Recorded, StoreError> {
    let received_at = timestamps::format(now);
    let transition = Transition::new(
        Key::probe(id),
        ProbeStatus::Sent.as_str(),
        ProbeStatus::Received.as_str(),
    )
    .set("receivedAt", AttributeValue::S(received_at.clone()));
    let summary = Stored::new(
        Key::canary_summary(),
        CanarySummary {
            last_probe_id: *id,
            last_received_at: received_at,
        },
    );
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(serde_dynamo::to_item(&summary)?))
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;

    let mut transaction = Transaction::new();
    transaction
        .push("probe", transition.to_transact_item(table)?)
        .push("summary", TransactWriteItem::builder().put(put).build());
    match transaction.commit(client).await {
        Ok(()) => Ok(Recorded::New),
        Err(err) if err.failed_labels() == ["probe"] => match get(client, table, id).await {
            Ok(probe) if probe.status == ProbeStatus::Received => Ok(Recorded::AlreadyRecorded),
            Ok(_) => Err(err),
            Err(StoreError::NotFound) => Err(StoreError::NotFound),
            Err(other) => Err(other),
        },
        Err(err) => Err(err),
    }
}

/// The canary summary, if any probe was ever received.
pub async fn summary(client: &Client, table: &str) -> Result<Option<CanarySummary>, StoreError> {
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(Key::canary_summary().to_map()))
        .send()
        .await
        .map_err(StoreError::aws)?;
    output
        .item
        .map(|item| {
            serde_dynamo::from_item::<_, Stored<CanarySummary>>(item).map(|stored| stored.body)
        })
        .transpose()
        .map_err(StoreError::from)
}
