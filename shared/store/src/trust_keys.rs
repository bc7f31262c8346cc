//! Trust API keys and their daily request counters.
//!
//! A key lives in its owner's partition (`OWNER#<ownerId>`, `TRUSTKEY#<keyId>`), so a
//! lookup by another owner finds nothing. Its secret is never stored: a pointer item
//! keyed by the secret's SHA-256 (`TRUSTKEYHASH#<sha256>`) leads to it, and exists
//! exactly while the key is not revoked (revoking deletes it in the same transaction).
//! The owner's count of keys not revoked is kept beside them and bounds how many it
//! may hold.

use std::collections::HashMap;
use std::time::Duration;

use aicity_domain::ids::{OwnerId, TrustKeyId};
use aicity_domain::trust::TrustKey;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::Stored;
use crate::rate_limit::{self, RateDecision};
use crate::schema::{PK, SK};
use crate::transact::Transaction;
use crate::vault::Labeled;
use crate::{Key, StoreError};

/// The key item: the owner's view plus whose it is and the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustKeyRecord {
    #[serde(flatten)]
    pub key: TrustKey,
    pub owner_id: OwnerId,
    pub key_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashPointer {
    owner_id: OwnerId,
    key_id: TrustKeyId,
}

/// A UTC day: epoch-aligned windows of this length start at midnight UTC (Unix time
/// has no leap seconds).
pub const DAY: Duration = Duration::from_secs(86_400);

const KEY_PREFIX: &str = "TRUSTKEY#";

fn invalid(err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(err.to_string())
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Stores a new key, its hash pointer and the owner's count, or nothing: past
/// `max_active` keys not revoked the `"count"` item fails.
pub async fn create(
    client: &Client,
    table: &str,
    record: &TrustKeyRecord,
    max_active: u32,
) -> Result<(), StoreError> {
    create_with(client, table, record, max_active, Vec::new()).await
}

/// [`create`], with `extra` items (e.g. its audit entry) in the same transaction.
pub async fn create_with(
    client: &Client,
    table: &str,
    record: &TrustKeyRecord,
    max_active: u32,
    extra: Vec<Labeled>,
) -> Result<(), StoreError> {
    let pointer = HashPointer {
        owner_id: record.owner_id,
        key_id: record.key.id,
    };
    let new_item = |item| {
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(invalid)
            .map(|put| TransactWriteItem::builder().put(put).build())
    };
    let count = Update::builder()
        .table_name(table)
        .set_key(Some(Key::trust_key_count(&record.owner_id).to_map()))
        .update_expression("ADD active :one")
        .condition_expression("attribute_not_exists(active) OR active < :max")
        .expression_attribute_values(":one", number(1))
        .expression_attribute_values(":max", number(max_active))
        .build()
        .map_err(invalid)?;
    let mut transaction = Transaction::new();
    transaction
        .push(
            "key",
            new_item(
                Stored::new(Key::trust_key(&record.owner_id, &record.key.id), record).to_item()?,
            )?,
        )
        .push(
            "hash",
            new_item(Stored::new(Key::trust_key_hash(&record.key_hash), pointer).to_item()?)?,
        )
        .push("count", TransactWriteItem::builder().update(count).build())
        .extend(extra);
    transaction.commit(client).await
}

/// The owner's key `id`; `NotFound` for an unknown id or another owner's key.
pub async fn get(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    id: &TrustKeyId,
) -> Result<TrustKeyRecord, StoreError> {
    crate::item::get(client, table, &Key::trust_key(owner, id)).await
}

/// A page of the owner's keys, newest first (ids sort by creation).
pub async fn list_by_owner(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<TrustKey>, crate::paging::PageError> {
    let partition = format!("OWNER#{owner}");
    let binding = crate::paging::Binding {
        list: format!("trust.keys|{owner}"),
        names: crate::paging::TABLE_KEY,
        partition: Some((PK, partition.clone())),
    };
    let query = || {
        client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
            .expression_attribute_values(":prefix", AttributeValue::S(KEY_PREFIX.to_owned()))
            .scan_index_forward(false)
            .consistent_read(true)
    };
    let page: crate::paging::Listed<TrustKeyRecord> =
        crate::paging::single(query, false, &binding, ask).await?;
    Ok(page.map(|r| r.key))
}

/// What a revocation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Revoked now; the key as it is after.
    Revoked(TrustKeyRecord),
    NotFound,
    AlreadyRevoked,
}

/// Revokes the owner's key `id` at `now`: marks it, deletes its hash pointer (so the
/// secret stops working at once) and gives back its place in the owner's count, in one
/// transaction. Exactly one of racing revocations wins.
pub async fn revoke(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    id: &TrustKeyId,
    now: &str,
) -> Result<Revocation, StoreError> {
    revoke_with(client, table, owner, id, now, |_| Ok(Vec::new())).await
}

/// [`revoke`], with the items `extra` builds from the key as read (e.g. its audit
/// entry) in the same transaction.
pub async fn revoke_with(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    id: &TrustKeyId,
    now: &str,
    extra: impl FnOnce(&TrustKeyRecord) -> Result<Vec<Labeled>, StoreError>,
) -> Result<Revocation, StoreError> {
    let record = match get(client, table, owner, id).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => return Ok(Revocation::NotFound),
        Err(err) => return Err(err),
    };
    if record.key.is_revoked() {
        return Ok(Revocation::AlreadyRevoked);
    }
    let mark = Update::builder()
        .table_name(table)
        .set_key(Some(Key::trust_key(owner, id).to_map()))
        .update_expression("SET revokedAt = :now")
        .condition_expression("attribute_exists(PK) AND attribute_not_exists(revokedAt)")
        .expression_attribute_values(":now", AttributeValue::S(now.to_owned()))
        .build()
        .map_err(invalid)?;
    let unlink = Delete::builder()
        .table_name(table)
        .set_key(Some(Key::trust_key_hash(&record.key_hash).to_map()))
        .build()
        .map_err(invalid)?;
    let count = Update::builder()
        .table_name(table)
        .set_key(Some(Key::trust_key_count(owner).to_map()))
        .update_expression("ADD active :minus")
        .expression_attribute_values(":minus", number(-1))
        .build()
        .map_err(invalid)?;
    let mut transaction = Transaction::new();
    transaction
        .push("key", TransactWriteItem::builder().update(mark).build())
        .push("hash", TransactWriteItem::builder().delete(unlink).build())
        .push("count", TransactWriteItem::builder().update(count).build())
        .extend(extra(&record)?);
    match transaction.commit(client).await {
        Ok(()) => {
            let mut revoked = record;
            revoked.key.revoked_at = Some(now.to_owned());
            Ok(Revocation::Revoked(revoked))
        }
        // Keys are never deleted, so the only way the mark can fail is a revocation
        // that committed in between.
        Err(err) if err.failed_labels() == ["key"] => Ok(Revocation::AlreadyRevoked),
        Err(err) => Err(err),
    }
}

/// The live key whose secret hashes to `key_hash`; `NotFound` when there is none or it
/// was revoked.
pub async fn by_hash(
    client: &Client,
    table: &str,
    key_hash: &str,
) -> Result<TrustKeyRecord, StoreError> {
    let pointer: HashPointer =
        crate::item::get(client, table, &Key::trust_key_hash(key_hash)).await?;
    let record = get(client, table, &pointer.owner_id, &pointer.key_id).await?;
    // The pointer is deleted with the revocation; checking the key too means a revoked
    // key can never authenticate, whatever order a reader sees the two in.
    if record.key.is_revoked() || record.key_hash != key_hash {
        return Err(StoreError::NotFound);
    }
    Ok(record)
}

/// Records that the key was used at `now` (the key must still exist).
pub async fn touch(
    client: &Client,
    table: &str,
    record: &TrustKeyRecord,
    now: &str,
) -> Result<(), StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(
            Key::trust_key(&record.owner_id, &record.key.id).to_map(),
        ))
        .update_expression("SET lastUsedAt = :now")
        .condition_expression("attribute_exists(PK)")
        .set_expression_attribute_values(Some(HashMap::from([(
            ":now".to_owned(),
            AttributeValue::S(now.to_owned()),
        )])))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) => match err.into_service_error() {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_) => {
                Err(StoreError::NotFound)
            }
            other => Err(StoreError::aws(other)),
        },
    }
}

/// Counts one request of key `id` against `limit` per UTC day: one conditional `ADD` on
/// the day's counter (`RATE#trust:<keyId>#<midnight epoch>`, expiring at the next
/// midnight), so racing requests can never pass the limit. `Limited` carries the seconds
/// to the next midnight UTC.
pub async fn count_request(
    client: &Client,
    table: &str,
    id: &TrustKeyId,
    limit: u32,
    now: OffsetDateTime,
) -> Result<RateDecision, StoreError> {
    rate_limit::hit(client, table, &format!("trust:{id}"), limit, DAY, now).await
}
