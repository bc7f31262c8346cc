//! How a domain value is stored: its keys and index keys beside its own fields.

use serde::{Deserialize, Serialize};

use crate::Key;

/// A domain value `T` with the item's keys. Index keys are set only on items that
/// belong in that index (the indexes are sparse).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored<T> {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(rename = "GSI2PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(rename = "GSI2SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    /// TTL (epoch seconds), see `crate::ttl`.
    #[serde(rename = "expiresAt", default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Stored<T> {
    pub fn new(key: Key, body: T) -> Self {
        Self {
            pk: key.pk,
            sk: key.sk,
            gsi1pk: None,
            gsi1sk: None,
            gsi2pk: None,
            gsi2sk: None,
            gsi3pk: None,
            gsi3sk: None,
            expires_at: None,
            body,
        }
    }

    pub fn expires_at(mut self, epoch_seconds: i64) -> Self {
        self.expires_at = Some(epoch_seconds);
        self
    }

    pub fn gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1pk = Some(pk.into());
        self.gsi1sk = Some(sk.into());
        self
    }

    pub fn gsi2(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi2pk = Some(pk.into());
        self.gsi2sk = Some(sk.into());
        self
    }

    pub fn gsi3(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi3pk = Some(pk.into());
        self.gsi3sk = Some(sk.into());
        self
    }
}

impl<T: Serialize> Stored<T> {
    pub fn to_item(
        &self,
    ) -> Result<
        std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
        crate::StoreError,
    > {
        Ok(serde_dynamo::to_item(self)?)
    }
}

/// DynamoDB's item limit is 400 KB; we stay a little under it so an estimate off by a
/// few bytes can never reach DynamoDB as a `ValidationException`.
pub const MAX_ITEM_BYTES: usize = 400_000;

/// The size DynamoDB counts for an item: each attribute's name plus its value (strings
/// by UTF-8 length, numbers by significant digits, 3 bytes per list or map plus a byte
/// per element and each map key).
pub fn stored_size(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match value {
        A::S(s) => s.len(),
        A::N(n) => {
            let digits = n.split(['e', 'E']).next().unwrap_or(n);
            let digits: String = digits.chars().filter(|c| c.is_ascii_digit()).collect();
            digits.trim_matches('0').len().max(1).div_ceil(2) + 1
        }
        A::B(b) => b.as_ref().len(),
        A::Bool(_) | A::Null(_) => 1,
        A::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        A::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + 1 + value_size(v))
                .sum::<usize>()
        }
        A::Ss(set) | A::Ns(set) => set.iter().map(String::len).sum(),
        A::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// Reads one item's domain value, strongly consistent (decisions are made on what is
/// read); `NotFound` when there is none.
pub async fn get<T: serde::de::DeserializeOwned>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &Key,
) -> Result<T, crate::StoreError> {
    let item = client
        .get_item()
        .table_name(table)
        .set_key(Some(key.to_map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(crate::StoreError::aws)?
        .item
        .ok_or(crate::StoreError::NotFound)?;
    Ok(serde_dynamo::from_item::<_, Stored<T>>(item)?.body)
}

/// Every item a query matches, page after page; `query` builds the request afresh for
/// each page.
pub async fn query_all<T: serde::de::DeserializeOwned>(
    query: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<T>, crate::StoreError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = query()
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(crate::StoreError::aws)?;
        for item in page.items.unwrap_or_default() {
            out.push(serde_dynamo::from_item::<_, Stored<T>>(item)?.body);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(out);
        }
    }
}
