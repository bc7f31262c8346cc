//! Disputes, filed on completed tasks and kept for Courts.

use aicity_domain::ids::{DisputeId, TaskId};
use aicity_domain::task::dispute::Dispute;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use crate::item::Stored;
use crate::vault::Labeled;
use crate::{Key, StoreError};

fn key(id: &DisputeId) -> Key {
    Key::new(format!("DISPUTE#{id}"), "DISPUTE")
}

pub fn task_partition(task: &TaskId) -> String {
    format!("TASK#{task}#DISPUTES")
}

/// The dispute as a new item of a transaction (label `"dispute"`).
pub fn create_item(table: &str, dispute: &Dispute) -> Result<Labeled, StoreError> {
    let item = Stored::new(key(&dispute.id), dispute)
        .gsi1(task_partition(&dispute.task_id), dispute.id.to_string())
        .to_item()?;
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok((
        "dispute".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

pub async fn get(client: &Client, table: &str, id: &DisputeId) -> Result<Dispute, StoreError> {
    crate::item::get(client, table, &key(id)).await
}
