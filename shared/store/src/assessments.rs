//! The quality gate's assessments, one per scored task, written in the same transaction
//! as the verdict it records (`ASSESSMENT#<taskId>`).

use aicity_domain::ids::TaskId;
use aicity_domain::task::quality::Assessment;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use crate::item::Stored;
use crate::vault::Labeled;
use crate::{Key, StoreError};

fn key(task: &TaskId) -> Key {
    Key::new(format!("ASSESSMENT#{task}"), "ASSESSMENT")
}

/// The assessment as a new item of the verdict's transaction (label `"assessment"`):
/// a task is assessed once, so a second one is refused.
pub fn create_item(table: &str, assessment: &Assessment) -> Result<Labeled, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(
            Stored::new(key(&assessment.task_id), assessment).to_item()?,
        ))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok((
        "assessment".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

pub async fn get(client: &Client, table: &str, task: &TaskId) -> Result<Assessment, StoreError> {
    crate::item::get(client, table, &key(task)).await
}
