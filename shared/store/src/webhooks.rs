//! Webhook subscriptions and their delivery logs.
//!
//! - Subscription: `PK=WEBHOOK#<wh_…>`, `SK=WEBHOOK`, in GSI1 under its principal
//!   (`GSI1PK=PRINCIPAL#<usr_…|ag_…>#WEBHOOKS`, `GSI1SK=<wh_…>`); the signing secret
//!   only sealed (`secretSealed`, see `crate::sealing`).
//! - A principal's count: `PK=PRINCIPAL#<id>`, `SK=WEBHOOKS`, `count` (at most
//!   `MAX_SUBSCRIPTIONS`, changed in the create and delete transactions).
//! - Delivery of one event to one subscription: `PK=WEBHOOK#<wh_…>`,
//!   `SK=DELIVERY#<whd_<event ulid>>` (one per pair, so a repeated fan-out finds it),
//!   newest first by its ULID; TTL 30 days. `series` counts manual redeliveries: a
//!   delivery message names the series it belongs to, and a stale one does nothing.

use std::collections::HashMap;

use aicity_domain::webhooks::{
    Attempt, Delivery, DeliveryStatus, MAX_LOGGED_ATTEMPTS, MAX_SUBSCRIPTIONS, Subscription,
    SubscriptionStatus, WebhookEventType,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::Stored;
use crate::schema::GSI1;
use crate::transact::Transaction;
use crate::vault::Labeled;
use crate::webhook_events::EVENT_TTL;
use crate::{Key, StoreError};

pub fn subscription_key(id: &str) -> Key {
    Key::new(format!("WEBHOOK#{id}"), "WEBHOOK")
}

pub fn count_key(principal: &str) -> Key {
    Key::new(format!("PRINCIPAL#{principal}"), "WEBHOOKS")
}

pub fn delivery_key(subscription: &str, delivery: &str) -> Key {
    Key::new(
        format!("WEBHOOK#{subscription}"),
        format!("DELIVERY#{delivery}"),
    )
}

pub fn principal_partition(principal: &str) -> String {
    format!("PRINCIPAL#{principal}#WEBHOOKS")
}

fn invalid(err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(err.to_string())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Service errors that say "your condition did not hold".
trait ConditionFailed {
    fn condition_failed(&self) -> bool;
}

impl ConditionFailed for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

fn is_condition_failure<E: ConditionFailed, R>(
    err: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    err.as_service_error()
        .is_some_and(ConditionFailed::condition_failed)
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRecord {
    #[serde(flatten)]
    pub subscription: Subscription,
    /// Whose it is: an owner id (`usr_…`) or an agent id (`ag_…`).
    pub principal_id: String,
    pub secret_sealed: String,
}

impl SubscriptionRecord {
    pub fn wants(&self, kind: WebhookEventType) -> bool {
        self.subscription.status == SubscriptionStatus::Active
            && self.subscription.events.contains(&kind)
    }
}

/// Creates a subscription within its principal's limit, with the audit entry. `Ok(false)`
/// when the principal already has [`MAX_SUBSCRIPTIONS`].
pub async fn create(
    client: &Client,
    table: &str,
    record: &SubscriptionRecord,
    audit: Labeled,
) -> Result<bool, StoreError> {
    let id = &record.subscription.id;
    let item = Stored::new(subscription_key(id), record)
        .gsi1(principal_partition(&record.principal_id), id.clone())
        .to_item()?;
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(invalid)?;
    let count = Update::builder()
        .table_name(table)
        .set_key(Some(count_key(&record.principal_id).to_map()))
        .update_expression("ADD #count :one")
        .condition_expression("attribute_not_exists(#count) OR #count < :max")
        .expression_attribute_names("#count", "count")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":max", AttributeValue::N(MAX_SUBSCRIPTIONS.to_string()))
        .build()
        .map_err(invalid)?;
    let mut transaction = Transaction::new();
    transaction
        .push("count", TransactWriteItem::builder().update(count).build())
        .push("webhook", TransactWriteItem::builder().put(put).build())
        .extend([audit]);
    match transaction.commit(client).await {
        Ok(()) => Ok(true),
        Err(err) if err.failed_labels().contains(&"count") => Ok(false),
        Err(err) => Err(err),
    }
}

pub async fn get(client: &Client, table: &str, id: &str) -> Result<SubscriptionRecord, StoreError> {
    crate::item::get(client, table, &subscription_key(id)).await
}

/// A principal's subscriptions, oldest first.
pub async fn of_principal(
    client: &Client,
    table: &str,
    principal: &str,
) -> Result<Vec<SubscriptionRecord>, StoreError> {
    let found: Vec<SubscriptionRecord> = crate::item::query_all(|| {
        client
            .query()
            .table_name(table)
            .index_name(GSI1.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1.pk)
            .expression_attribute_values(":pk", s(principal_partition(principal)))
    })
    .await?;
    // The index is the principal's; the item says so too (defence in depth).
    Ok(found
        .into_iter()
        .filter(|record| record.principal_id == principal)
        .collect())
}

/// A page of a principal's subscriptions, newest first (ids are ULIDs).
pub async fn page_of_principal(
    client: &Client,
    table: &str,
    principal: &str,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<SubscriptionRecord>, crate::paging::PageError> {
    let partition = principal_partition(principal);
    let binding = crate::paging::Binding {
        list: format!("webhooks|{principal}"),
        names: crate::paging::GSI1_KEY,
        partition: Some((GSI1.pk, partition.clone())),
    };
    let query = || {
        client
            .query()
            .table_name(table)
            .index_name(GSI1.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1.pk)
            .expression_attribute_values(":pk", s(partition.clone()))
            .scan_index_forward(false)
    };
    let mut page: crate::paging::Listed<SubscriptionRecord> =
        crate::paging::single(query, false, &binding, ask).await?;
    // The index is the principal's; the item says so too (defence in depth).
    page.items.retain(|record| record.principal_id == principal);
    Ok(page)
}

/// Deletes the principal's subscription, with the audit entry. `Ok(false)` when it is
/// not there (or not the principal's).
pub async fn delete(
    client: &Client,
    table: &str,
    id: &str,
    principal: &str,
    audit: Labeled,
) -> Result<bool, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(subscription_key(id).to_map()))
        .condition_expression("principalId = :principal")
        .expression_attribute_values(":principal", s(principal))
        .build()
        .map_err(invalid)?;
    let count = Update::builder()
        .table_name(table)
        .set_key(Some(count_key(principal).to_map()))
        .update_expression("ADD #count :minus")
        .condition_expression("#count > :zero")
        .expression_attribute_names("#count", "count")
        .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .build()
        .map_err(invalid)?;
    let mut transaction = Transaction::new();
    transaction
        .push(
            "webhook",
            TransactWriteItem::builder().delete(delete).build(),
        )
        .push("count", TransactWriteItem::builder().update(count).build())
        .extend([audit]);
    match transaction.commit(client).await {
        Ok(()) => Ok(true),
        Err(err) if err.failed_labels().contains(&"webhook") => Ok(false),
        Err(err) => Err(err),
    }
}

/// A disabled subscription active again (its failure streak forgotten), with the audit
/// entry. `Ok(false)` when it was not disabled.
pub async fn enable(
    client: &Client,
    table: &str,
    id: &str,
    principal: &str,
    audit: Labeled,
) -> Result<bool, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(subscription_key(id).to_map()))
        .update_expression("SET #status = :active REMOVE disabledAt, failingSince")
        .condition_expression("#status = :disabled AND principalId = :principal")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":active", s("active"))
        .expression_attribute_values(":disabled", s("disabled"))
        .expression_attribute_values(":principal", s(principal))
        .build()
        .map_err(invalid)?;
    let mut transaction = Transaction::new();
    transaction
        .push(
            "webhook",
            TransactWriteItem::builder().update(update).build(),
        )
        .extend([audit]);
    match transaction.commit(client).await {
        Ok(()) => Ok(true),
        Err(err) if err.failed_labels().contains(&"webhook") => Ok(false),
        Err(err) => Err(err),
    }
}

/// A failed attempt: the streak starts now unless it started before. Returns when it
/// started (`None` if the subscription is gone).
pub async fn record_failure(
    client: &Client,
    table: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<Option<String>, StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(subscription_key(id).to_map()))
        .update_expression("SET failingSince = if_not_exists(failingSince, :now)")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":now", s(aicity_domain::timestamps::format(now)))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    match result {
        Ok(output) => Ok(output
            .attributes
            .and_then(|a| a.get("failingSince").and_then(|v| v.as_s().ok()).cloned())),
        Err(err) if is_condition_failure(&err) => Ok(None),
        Err(err) => Err(StoreError::aws(err)),
    }
}

/// A successful attempt ends the streak.
pub async fn clear_failure(client: &Client, table: &str, id: &str) -> Result<(), StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(subscription_key(id).to_map()))
        .update_expression("REMOVE failingSince")
        .condition_expression("attribute_exists(failingSince)")
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_condition_failure(&err) => Ok(()),
        Err(err) => Err(StoreError::aws(err)),
    }
}

/// Failing for too long: disabled. Whether this call disabled it.
pub async fn disable(
    client: &Client,
    table: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(subscription_key(id).to_map()))
        .update_expression("SET #status = :disabled, disabledAt = :now")
        .condition_expression("#status = :active")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":disabled", s("disabled"))
        .expression_attribute_values(":active", s("active"))
        .expression_attribute_values(":now", s(aicity_domain::timestamps::format(now)))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failure(&err) => Ok(false),
        Err(err) => Err(StoreError::aws(err)),
    }
}

// ---------------------------------------------------------------- deliveries

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub subscription_id: String,
    /// 1, then one more per manual redelivery.
    pub series: u32,
}

/// Records the delivery unless it exists: whether this call created it.
pub async fn create_delivery(
    client: &Client,
    table: &str,
    record: &DeliveryRecord,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let item = Stored::new(
        delivery_key(&record.subscription_id, &record.delivery.id),
        record,
    )
    .expires_at(crate::ttl::expires_at(now, EVENT_TTL))
    .to_item()?;
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failure(&err) => Ok(false),
        Err(err) => Err(StoreError::aws(err)),
    }
}

pub async fn get_delivery(
    client: &Client,
    table: &str,
    subscription: &str,
    delivery: &str,
) -> Result<DeliveryRecord, StoreError> {
    let record: DeliveryRecord =
        crate::item::get(client, table, &delivery_key(subscription, delivery)).await?;
    Ok(record)
}

/// One page of a subscription's deliveries, newest first, before the delivery id
/// `before` (the last of the previous page).
pub async fn deliveries_page(
    client: &Client,
    table: &str,
    subscription: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<(Vec<DeliveryRecord>, bool), StoreError> {
    let high = before.map_or_else(|| "DELIVERY#~".to_owned(), |id| format!("DELIVERY#{id}"));
    let output = client
        .query()
        .table_name(table)
        .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
        .expression_attribute_values(":pk", s(format!("WEBHOOK#{subscription}")))
        .expression_attribute_values(":low", s("DELIVERY#"))
        .expression_attribute_values(":high", s(high.clone()))
        .scan_index_forward(false)
        .consistent_read(true)
        .limit((limit + 1 + usize::from(before.is_some())) as i32)
        .send()
        .await
        .map_err(StoreError::aws)?;
    let mut items = Vec::new();
    for item in output.items.unwrap_or_default() {
        let stored: Stored<DeliveryRecord> = serde_dynamo::from_item(item)?;
        if stored.sk != high {
            items.push(stored.body);
        }
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    Ok((items, has_more))
}

/// Appends an attempt to a pending delivery of `series`, and sets its status to
/// `status` if given. `Ok(false)` when the delivery is no longer pending in that series
/// (done already, or redelivered since).
pub async fn record_attempt(
    client: &Client,
    table: &str,
    record: &DeliveryRecord,
    attempt: &Attempt,
    status: Option<DeliveryStatus>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let attempt_value: HashMap<String, AttributeValue> =
        serde_dynamo::to_item(attempt).map_err(StoreError::from)?;
    let attempt_value = AttributeValue::M(attempt_value);
    let logged = &record.delivery.attempts;
    let mut update = client
        .update_item()
        .table_name(table)
        .set_key(Some(
            delivery_key(&record.subscription_id, &record.delivery.id).to_map(),
        ))
        .condition_expression("#status = :pending AND series = :series")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":pending", s("pending"))
        .expression_attribute_values(":series", AttributeValue::N(record.series.to_string()))
        .expression_attribute_values(":now", s(aicity_domain::timestamps::format(now)));
    let mut expression = if logged.len() + 1 > MAX_LOGGED_ATTEMPTS {
        // A long log: the oldest attempts drop out (the list rewritten whole).
        let mut kept = Vec::new();
        for old in &logged[logged.len() + 1 - MAX_LOGGED_ATTEMPTS..] {
            kept.push(AttributeValue::M(
                serde_dynamo::to_item(old).map_err(StoreError::from)?,
            ));
        }
        kept.push(attempt_value);
        update = update.expression_attribute_values(":attempts", AttributeValue::L(kept));
        "SET attempts = :attempts, updatedAt = :now".to_owned()
    } else {
        update = update
            .expression_attribute_values(":attempt", AttributeValue::L(vec![attempt_value]))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]));
        "SET attempts = list_append(if_not_exists(attempts, :empty), :attempt), updatedAt = :now"
            .to_owned()
    };
    if let Some(status) = status {
        expression.push_str(", #status = :next");
        update = update.expression_attribute_values(":next", s(status_str(status)));
    }
    match update.update_expression(expression).send().await {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failure(&err) => Ok(false),
        Err(err) => Err(StoreError::aws(err)),
    }
}

fn status_str(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}

/// A pending delivery of `series` ends without an attempt (its subscription is gone or
/// disabled). Whether this call ended it.
pub async fn fail_pending(
    client: &Client,
    table: &str,
    record: &DeliveryRecord,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(
            delivery_key(&record.subscription_id, &record.delivery.id).to_map(),
        ))
        .update_expression("SET #status = :failed, updatedAt = :now")
        .condition_expression("#status = :pending AND series = :series")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":failed", s("failed"))
        .expression_attribute_values(":pending", s("pending"))
        .expression_attribute_values(":series", AttributeValue::N(record.series.to_string()))
        .expression_attribute_values(":now", s(aicity_domain::timestamps::format(now)))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_condition_failure(&err) => Ok(false),
        Err(err) => Err(StoreError::aws(err)),
    }
}

/// A manual redelivery: pending again in a new series, with the audit entry. Returns
/// the delivery as it is now.
pub async fn restart(
    client: &Client,
    table: &str,
    subscription: &str,
    delivery: &str,
    audit: Labeled,
    now: OffsetDateTime,
) -> Result<DeliveryRecord, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(delivery_key(subscription, delivery).to_map()))
        .update_expression("SET #status = :pending, updatedAt = :now ADD series :one")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":pending", s("pending"))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":now", s(aicity_domain::timestamps::format(now)))
        .build()
        .map_err(invalid)?;
    let mut transaction = Transaction::new();
    transaction
        .push(
            "delivery",
            TransactWriteItem::builder().update(update).build(),
        )
        .extend([audit]);
    match transaction.commit(client).await {
        Ok(()) => get_delivery(client, table, subscription, delivery).await,
        Err(err) if err.failed_labels().contains(&"delivery") => Err(StoreError::NotFound),
        Err(err) => Err(err),
    }
}

/// The message that asks the consumer to attempt a delivery (of `series`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMessage {
    pub subscription_id: String,
    pub event_id: String,
    #[serde(default = "first_series")]
    pub series: u32,
}

fn first_series() -> u32 {
    1
}
