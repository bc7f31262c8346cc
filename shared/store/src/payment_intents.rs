//! Payment intents: a card charge is recorded *before* the provider is called, so a
//! charge that succeeds and is never credited (a crash, a failed write) is always found
//! again and credited exactly once — by a retry of the request, by the next auto
//! top-up of the same pool state, or by the sweeper's reconciliation pass.
//!
//! `pending` (maybe charged) → `processing` (the provider is still settling it) →
//! `credited` (the pool has the money; the credit and this transition are one
//! transaction). A declined intent is deleted: nothing was charged. Unsettled intents
//! sit in the `WATCH#payment` index until they are credited or declined.

use aicity_domain::embassy::{AUDIT_PREFIX, AuditActor, AuditEntry, AuditTarget};
use aicity_domain::ids::{OwnerId, PoolId};
use aicity_domain::money::Cents;
use aicity_domain::timestamps;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::Stored;
use crate::schema::GSI3;
use crate::vault::Labeled;
use crate::{Key, StoreError};

/// The sweeper's partition for intents not credited yet.
pub const PAYMENT_WATCH: &str = "WATCH#payment";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    Pending,
    Processing,
    Credited,
}

/// Why the money is being charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentKind {
    TopUp,
    AutoTopUp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// The provider's idempotency key: the same key never charges twice.
    pub key: String,
    pub owner_id: OwnerId,
    pub amount: Cents,
    pub payment_method: String,
    pub kind: IntentKind,
    pub status: IntentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_id: Option<String>,
    pub created_at: String,
    /// Who asked, in which request: the audit entry the credit writes (whoever credits
    /// it, whenever) is made from this (see [`Intent::credit_entry`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditEntry>,
}

impl Intent {
    pub fn new(
        key: impl Into<String>,
        owner_id: OwnerId,
        amount: Cents,
        payment_method: impl Into<String>,
        kind: IntentKind,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            key: key.into(),
            owner_id,
            amount,
            payment_method: payment_method.into(),
            kind,
            status: IntentStatus::Pending,
            charge_id: None,
            created_at: timestamps::format(now),
            audit: None,
        }
    }

    /// With the audit entry its credit records: its actor, agent, request id, action
    /// and details are kept; the credit gives it its own id, time, target and amount.
    pub fn audited(mut self, entry: AuditEntry) -> Self {
        self.audit = Some(entry);
        self
    }

    /// The audit entry of crediting `amount` (charge `charge_id`) to the pool `pool`
    /// at `now`: the one recorded when the intent was opened, or — for an intent
    /// opened without one — the owner's `pool.topped_up` or the platform's
    /// `pool.auto_topped_up`.
    pub fn credit_entry(
        &self,
        pool: &PoolId,
        amount: Cents,
        charge_id: &str,
        now: OffsetDateTime,
    ) -> AuditEntry {
        let template = self.audit.clone().unwrap_or_else(|| {
            let (action, actor) = match self.kind {
                IntentKind::TopUp => ("pool.topped_up", AuditActor::owner(&self.owner_id)),
                IntentKind::AutoTopUp => ("pool.auto_topped_up", AuditActor::platform()),
            };
            AuditEntry {
                id: String::new(),
                at: String::new(),
                owner_id: self.owner_id,
                agent_id: None,
                actor,
                action: action.to_owned(),
                target: AuditTarget::new("pool", pool),
                request_id: None,
                details: serde_json::Value::Null,
            }
        });
        let mut details = match template.details {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        details.insert("amount".into(), serde_json::json!(amount));
        details.insert("chargeId".into(), serde_json::json!(charge_id));
        AuditEntry {
            id: crate::embassy::new_id(AUDIT_PREFIX),
            at: timestamps::format(now),
            owner_id: self.owner_id,
            target: AuditTarget::new("pool", pool),
            details: serde_json::Value::Object(details),
            ..template
        }
    }
}

pub fn intent_key(key: &str) -> Key {
    Key::new(format!("PAYINTENT#{key}"), "PAYINTENT")
}

fn watch_sort(created_at: &str, key: &str) -> String {
    let since = timestamps::parse(created_at).map_or(0, |t| t.unix_timestamp());
    crate::tasks::watch_sort(since, key)
}

/// Records the intent unless one with its key exists; returns the one that stands.
pub async fn open(client: &Client, table: &str, intent: &Intent) -> Result<Intent, StoreError> {
    let item = Stored::new(intent_key(&intent.key), intent)
        .gsi3(PAYMENT_WATCH, watch_sort(&intent.created_at, &intent.key))
        .to_item()?;
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(intent.clone()),
        Err(err) => match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(failed) => match failed.item() {
                Some(old) => Ok(serde_dynamo::from_item::<_, Stored<Intent>>(old.clone())?.body),
                None => get(client, table, &intent.key).await,
            },
            other => Err(StoreError::aws(other)),
        },
    }
}

pub async fn get(client: &Client, table: &str, key: &str) -> Result<Intent, StoreError> {
    crate::item::get(client, table, &intent_key(key)).await
}

/// The provider is still settling the charge: remember its id to ask about it later.
pub async fn mark_processing(
    client: &Client,
    table: &str,
    key: &str,
    charge_id: &str,
) -> Result<(), StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(intent_key(key).to_map()))
        .update_expression("SET #status = :processing, chargeId = :charge")
        .condition_expression("#status IN (:pending, :processing)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
        .expression_attribute_values(":processing", AttributeValue::S("processing".into()))
        .expression_attribute_values(":charge", AttributeValue::S(charge_id.into()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Credited meanwhile: nothing left to remember.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(StoreError::aws(err)),
    }
}

/// Forgets a declined intent (nothing was charged), unless it was credited.
pub async fn discard(client: &Client, table: &str, key: &str) -> Result<(), StoreError> {
    let result = client
        .delete_item()
        .table_name(table)
        .set_key(Some(intent_key(key).to_map()))
        .condition_expression("#status <> :credited")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":credited", AttributeValue::S("credited".into()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(StoreError::aws(err)),
    }
}

/// The intent's side of a credit, for the credit's transaction: only an unsettled
/// intent may be credited, so the pool gets the money once. Label `"intent"`.
pub fn credit_item(
    table: &str,
    key: &str,
    charge_id: &str,
    now: OffsetDateTime,
) -> Result<Labeled, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(intent_key(key).to_map()))
        .update_expression(
            "SET #status = :credited, chargeId = :charge, creditedAt = :now REMOVE #wpk, #wsk",
        )
        .condition_expression("#status IN (:pending, :processing)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#wpk", GSI3.pk)
        .expression_attribute_names("#wsk", GSI3.sk)
        .expression_attribute_values(":credited", AttributeValue::S("credited".into()))
        .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
        .expression_attribute_values(":processing", AttributeValue::S("processing".into()))
        .expression_attribute_values(":charge", AttributeValue::S(charge_id.into()))
        .expression_attribute_values(":now", AttributeValue::S(timestamps::format(now)))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok((
        "intent".to_owned(),
        TransactWriteItem::builder().update(update).build(),
    ))
}

/// Intents opened before `cutoff` (epoch seconds) and not credited yet, oldest first,
/// every page: the reconciliation pass's work list.
pub async fn unsettled_before(
    client: &Client,
    table: &str,
    cutoff: i64,
) -> Result<Vec<Intent>, StoreError> {
    let stored: Vec<Intent> = crate::item::query_all(|| {
        client
            .query()
            .table_name(table)
            .index_name(GSI3.name)
            .key_condition_expression("#pk = :pk AND #sk < :cutoff")
            .expression_attribute_names("#pk", GSI3.pk)
            .expression_attribute_names("#sk", GSI3.sk)
            .expression_attribute_values(":pk", AttributeValue::S(PAYMENT_WATCH.into()))
            .expression_attribute_values(":cutoff", AttributeValue::S(format!("{cutoff:012}")))
    })
    .await?;
    Ok(stored)
}
