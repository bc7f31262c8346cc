//! The webhook outbox: each event is an item written in the transaction of the change
//! that causes it, watched (GSI3 `WATCH#webhook_event`) until the webhooks consumer has
//! fanned it out to its subscriptions. A send to the queue lost after the commit is
//! re-driven by the sweeper from that watch, so no event is lost.
//!
//! `PK=WEBHOOKEVENT#<evt_…>`, `SK=WEBHOOKEVENT`, TTL 30 days.

use std::time::Duration;

use aicity_domain::webhooks::WebhookEvent;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::Stored;
use crate::vault::Labeled;
use crate::{Key, StoreError};

/// The sweeper's partition for events not yet fanned out.
pub const WATCH: &str = "WATCH#webhook_event";
/// Events (and their delivery logs) are kept this long.
pub const EVENT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn event_key(id: &str) -> Key {
    Key::new(format!("WEBHOOKEVENT#{id}"), "WEBHOOKEVENT")
}

/// An event as stored: when it was fanned out, if it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    #[serde(flatten)]
    pub event: WebhookEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatched_at: Option<String>,
}

/// The event as one item of the transaction that causes it. Label `"webhook"`.
pub fn event_item(table: &str, event: &WebhookEvent) -> Result<Labeled, StoreError> {
    let now = OffsetDateTime::now_utc();
    let record = EventRecord {
        event: event.clone(),
        dispatched_at: None,
    };
    let item = Stored::new(event_key(&event.id), record)
        .gsi3(
            WATCH,
            crate::tasks::watch_sort(now.unix_timestamp(), &event.id),
        )
        .expires_at(crate::ttl::expires_at(now, EVENT_TTL))
        .to_item()?;
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok((
        "webhook".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

pub async fn get(client: &Client, table: &str, id: &str) -> Result<EventRecord, StoreError> {
    crate::item::get(client, table, &event_key(id)).await
}

/// The consumer fanned the event out: off the sweeper's watch.
pub async fn mark_dispatched(
    client: &Client,
    table: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    client
        .update_item()
        .table_name(table)
        .set_key(Some(event_key(id).to_map()))
        .update_expression("SET dispatchedAt = :at REMOVE GSI3PK, GSI3SK")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(
            ":at",
            AttributeValue::S(aicity_domain::timestamps::format(now)),
        )
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(())
}

/// Ids of events recorded before `cutoff` (epoch seconds) and not yet fanned out,
/// oldest first, at most `budget`: the sweeper sends them to the queue again.
pub async fn undispatched_before(
    client: &Client,
    table: &str,
    cutoff: i64,
    budget: usize,
) -> Result<Vec<String>, StoreError> {
    let items = crate::tasks::due_before(client, table, WATCH, cutoff, budget).await?;
    Ok(items
        .into_iter()
        .filter_map(|item| item.get("id").and_then(|v| v.as_s().ok()).cloned())
        .collect())
}
