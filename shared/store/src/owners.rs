//! Owner accounts and their unique emails.

use aicity_domain::identity::Owner;
use aicity_domain::ids::OwnerId;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use crate::item::Stored;
use crate::transact::Transaction;
use crate::{Key, StoreError};

/// The owner item: the public account plus what only the store needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRecord {
    #[serde(flatten)]
    pub owner: Owner,
    pub password_hash: String,
    /// Active agents, kept by conditional updates so the per-owner limit holds under races.
    #[serde(default)]
    pub active_agents: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailClaim {
    owner_id: OwnerId,
}

fn put_new(
    table: &str,
    item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Creates the account and claims its email in one transaction. A taken email fails
/// the `"email"` item (see [`StoreError::failed_labels`]) and writes nothing.
pub async fn create(client: &Client, table: &str, record: &OwnerRecord) -> Result<(), StoreError> {
    let owner = &record.owner;
    let mut transaction = Transaction::new();
    transaction
        .push(
            "email",
            put_new(
                table,
                Stored::new(Key::email(&owner.email), EmailClaim { owner_id: owner.id })
                    .to_item()?,
            )?,
        )
        .push(
            "owner",
            put_new(table, Stored::new(Key::owner(&owner.id), record).to_item()?)?,
        );
    transaction.commit(client).await
}

pub async fn get(client: &Client, table: &str, id: &OwnerId) -> Result<OwnerRecord, StoreError> {
    crate::item::get(client, table, &Key::owner(id)).await
}

/// The account registered with a normalised email.
pub async fn by_email(
    client: &Client,
    table: &str,
    email: &str,
) -> Result<OwnerRecord, StoreError> {
    let claim: EmailClaim = crate::item::get(client, table, &Key::email(email)).await?;
    get(client, table, &claim.owner_id).await
}
