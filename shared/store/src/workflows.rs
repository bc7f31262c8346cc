//! Workflows as stored.
//!
//! - `WORKFLOW#<wf_…>` / `WORKFLOW`: the workflow; by owner in GSI1
//!   (`WORKFLOWS#<owner>`, newest first). While the engine has something to do (a step
//!   ended, or the workflow ended with steps still waiting) it is in the sweeper's
//!   index (GSI3 `WATCH#workflow`, due since then), so a crash between a step's end
//!   and the engine's next move is picked up, never lost.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use aicity_domain::ids::{OwnerId, WorkflowId};
use aicity_domain::timestamps;
use aicity_domain::workflow::{Workflow, WorkflowStatus};

use crate::item::Stored;
use crate::schema::{GSI1, GSI3};
use crate::tasks::watch_sort;
use crate::vault::Labeled;
use crate::{Key, StoreError};

/// The sweeper's partition of workflows the engine has to look at.
pub const WATCH_PARTITION: &str = "WATCH#workflow";

pub fn key(id: &WorkflowId) -> Key {
    Key::new(format!("WORKFLOW#{id}"), "WORKFLOW")
}

fn owner_partition(owner: &OwnerId) -> String {
    format!("WORKFLOWS#{owner}")
}

fn invalid(err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(err.to_string())
}

/// A workflow and whether (since when) the engine has something to do on it.
#[derive(Debug, Clone)]
pub struct WorkflowRecord {
    pub workflow: Workflow,
    /// The sweeper index's sort key while due (`None`: nothing to do).
    pub due: Option<String>,
}

impl From<Stored<Workflow>> for WorkflowRecord {
    fn from(stored: Stored<Workflow>) -> Self {
        Self {
            due: stored.gsi3sk,
            workflow: stored.body,
        }
    }
}

/// A new workflow. Label `"workflow"`.
pub fn create_item(table: &str, workflow: &Workflow) -> Result<Labeled, StoreError> {
    let item = Stored::new(key(&workflow.id), workflow)
        .gsi1(
            owner_partition(&workflow.caller_owner_id),
            workflow.id.to_string(),
        )
        .to_item()?;
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(invalid)?;
    Ok((
        "workflow".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

fn due_sort(id: &WorkflowId, at: OffsetDateTime) -> String {
    watch_sort(at.unix_timestamp(), &id.to_string())
}

/// Marks the workflow due for the engine, in the transaction that ends one of its
/// steps. Label `"workflow"`.
pub fn due_item(table: &str, id: &WorkflowId, now: OffsetDateTime) -> Result<Labeled, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(id).to_map()))
        .condition_expression("attribute_exists(PK)")
        .update_expression("SET #wpk = :wpk, #wsk = :wsk")
        .expression_attribute_names("#wpk", GSI3.pk)
        .expression_attribute_names("#wsk", GSI3.sk)
        .expression_attribute_values(":wpk", AttributeValue::S(WATCH_PARTITION.into()))
        .expression_attribute_values(":wsk", AttributeValue::S(due_sort(id, now)))
        .build()
        .map_err(invalid)?;
    Ok((
        "workflow".to_owned(),
        TransactWriteItem::builder().update(update).build(),
    ))
}

pub async fn get(
    client: &Client,
    table: &str,
    id: &WorkflowId,
) -> Result<WorkflowRecord, StoreError> {
    let item = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(id).to_map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(StoreError::aws)?
        .item
        .ok_or(StoreError::NotFound)?;
    Ok(serde_dynamo::from_item::<_, Stored<Workflow>>(item)?.into())
}

/// Ends an active workflow as `to`, and leaves it due (its waiting steps are cancelled
/// next). `false` when it had already left `active`.
pub async fn end(
    client: &Client,
    table: &str,
    id: &WorkflowId,
    to: WorkflowStatus,
    failed_step: Option<u8>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let at = timestamps::format(now);
    let mut update = client
        .update_item()
        .table_name(table)
        .set_key(Some(key(id).to_map()))
        .condition_expression("#status = :active")
        .update_expression(
            "SET #status = :to, updatedAt = :at, completedAt = :at, #wpk = :wpk, #wsk = :wsk",
        )
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#wpk", GSI3.pk)
        .expression_attribute_names("#wsk", GSI3.sk)
        .expression_attribute_values(":active", AttributeValue::S("active".into()))
        .expression_attribute_values(":to", AttributeValue::S(to.as_str().into()))
        .expression_attribute_values(":at", AttributeValue::S(at))
        .expression_attribute_values(":wpk", AttributeValue::S(WATCH_PARTITION.into()))
        .expression_attribute_values(":wsk", AttributeValue::S(due_sort(id, now)));
    if let Some(step) = failed_step {
        update = update
            .update_expression(
                "SET #status = :to, updatedAt = :at, completedAt = :at, #wpk = :wpk, \
                 #wsk = :wsk, failedStep = :step",
            )
            .expression_attribute_values(":step", AttributeValue::N(step.to_string()));
    }
    match update.send().await {
        Ok(_) => Ok(true),
        Err(err) => match err.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
            err => Err(StoreError::aws(err)),
        },
    }
}

/// Nothing left for the engine: out of the sweeper's index, unless the workflow was
/// marked due again after `seen` was read (then the mark stays for the next look).
pub async fn settle_due(
    client: &Client,
    table: &str,
    id: &WorkflowId,
    seen: &str,
) -> Result<(), StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(key(id).to_map()))
        .condition_expression("#wsk = :seen")
        .update_expression("REMOVE #wpk, #wsk")
        .expression_attribute_names("#wpk", GSI3.pk)
        .expression_attribute_names("#wsk", GSI3.sk)
        .expression_attribute_values(":seen", AttributeValue::S(seen.into()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) => match err.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
            err => Err(StoreError::aws(err)),
        },
    }
}

/// Workflows due before `cutoff` (epoch seconds), oldest first, at most `budget`.
pub async fn due_before(
    client: &Client,
    table: &str,
    cutoff: i64,
    budget: usize,
) -> Result<Vec<WorkflowId>, StoreError> {
    let items = crate::tasks::due_before(client, table, WATCH_PARTITION, cutoff, budget).await?;
    Ok(items
        .into_iter()
        .filter_map(|item| {
            serde_dynamo::from_item::<_, Stored<Workflow>>(item)
                .map(|stored| stored.body.id)
                .map_err(
                    |err| tracing::warn!(error = %err, "unreadable workflow watch entry skipped"),
                )
                .ok()
        })
        .collect())
}

/// A page of an owner's workflows, newest first; only those one agent created if
/// given, only in one status if given.
pub async fn of_owner(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    agent: Option<&aicity_domain::ids::AgentId>,
    status: Option<WorkflowStatus>,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<Workflow>, crate::paging::PageError> {
    let partition = owner_partition(owner);
    let binding = crate::paging::Binding {
        list: format!(
            "workflows|{owner}|{}|{}",
            agent.map_or_else(|| "*".to_owned(), ToString::to_string),
            status.map_or("*", WorkflowStatus::as_str)
        ),
        names: crate::paging::GSI1_KEY,
        partition: Some((GSI1.pk, partition.clone())),
    };
    let mut filters = Vec::new();
    if agent.is_some() {
        filters.push("#agent = :agent");
    }
    if status.is_some() {
        filters.push("#status = :status");
    }
    let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
    let query = || {
        let mut query = client
            .query()
            .table_name(table)
            .index_name(GSI1.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1.pk)
            .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
            .set_filter_expression(filter.clone())
            .scan_index_forward(false);
        if let Some(agent) = agent {
            query = query
                .expression_attribute_names("#agent", "callerAgentId")
                .expression_attribute_values(":agent", AttributeValue::S(agent.to_string()));
        }
        if let Some(status) = status {
            query = query
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", AttributeValue::S(status.as_str().into()));
        }
        query
    };
    crate::paging::single(query, filter.is_some(), &binding, ask).await
}
