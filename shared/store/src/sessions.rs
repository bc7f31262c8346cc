//! Owner sessions, stored only as the SHA-256 of their token, expiring by TTL.

use aicity_domain::ids::OwnerId;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::Stored;
use crate::{Key, StoreError, ttl};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub owner_id: OwnerId,
    pub created_at: String,
    /// RFC 3339, as the API shows it.
    pub expires: String,
}

/// What a token lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionLookup {
    Valid(Session),
    Expired,
    Unknown,
}

pub async fn create(
    client: &Client,
    table: &str,
    token_hash: &str,
    session: &Session,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    let stored =
        Stored::new(Key::session(token_hash), session).expires_at(expires_at.unix_timestamp());
    client
        .put_item()
        .table_name(table)
        .set_item(Some(stored.to_item()?))
        .condition_expression("attribute_not_exists(PK)")
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(())
}

pub async fn lookup(
    client: &Client,
    table: &str,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<SessionLookup, StoreError> {
    let item = client
        .get_item()
        .table_name(table)
        .set_key(Some(Key::session(token_hash).to_map()))
        // Sign-out must take effect at once.
        .consistent_read(true)
        .send()
        .await
        .map_err(StoreError::aws)?
        .item;
    let Some(item) = item else {
        return Ok(SessionLookup::Unknown);
    };
    let stored: Stored<Session> = serde_dynamo::from_item(item)?;
    // TTL deletion lags; the expiry itself is authoritative.
    match stored.expires_at {
        Some(at) if !ttl::is_expired(at, now) => Ok(SessionLookup::Valid(stored.body)),
        _ => Ok(SessionLookup::Expired),
    }
}

/// Revokes a session at once. Revoking an unknown session is not an error.
pub async fn delete(client: &Client, table: &str, token_hash: &str) -> Result<(), StoreError> {
    client
        .delete_item()
        .table_name(table)
        .set_key(Some(Key::session(token_hash).to_map()))
        .send()
        .await
        .map_err(StoreError::aws)?;
    Ok(())
}
