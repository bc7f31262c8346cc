//! Disputes, filed on completed tasks and kept for Courts.
//!
//! A dispute item is written only in the same transaction as its task (whose copy of
//! the dispute's status says whether the earning is frozen), and only over the status
//! it was read in. Its index keys serve Courts' lists:
//! - GSI1 `OWNER#<buyer owner>#DISPUTES`: the buyer's side, newest first;
//! - GSI2 `OWNER#<seller owner>#DISPUTES_AGAINST`: the seller's side, newest first;
//! - GSI3 `WATCH#dispute_response` by response deadline while `filed` (the sweep), then
//!   `COURTS#review` by the time it went to review while `under_review` (the queue).

use std::collections::HashMap;

use aicity_domain::ids::{DisputeId, OwnerId};
use aicity_domain::task::dispute::{Dispute, DisputeStatus};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use crate::item::Stored;
use crate::tasks::watch_sort;
use crate::vault::Labeled;
use crate::{Key, StoreError};

/// Filed disputes by response deadline: the dispute sweep's work list.
pub const RESPONSE_WATCH: &str = "WATCH#dispute_response";
/// Disputes under review, oldest first: the admins' queue.
pub const REVIEW_QUEUE: &str = "COURTS#review";

fn key(id: &DisputeId) -> Key {
    Key::new(format!("DISPUTE#{id}"), "DISPUTE")
}

pub fn buyer_partition(owner: &OwnerId) -> String {
    format!("OWNER#{owner}#DISPUTES")
}

pub fn seller_partition(owner: &OwnerId) -> String {
    format!("OWNER#{owner}#DISPUTES_AGAINST")
}

fn epoch(at: Option<&str>) -> i64 {
    at.and_then(aicity_domain::timestamps::parse)
        .map_or(0, |t| t.unix_timestamp())
}

fn to_item(dispute: &Dispute) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let id = dispute.id.to_string();
    let mut stored =
        Stored::new(key(&dispute.id), dispute).gsi1(buyer_partition(&dispute.filed_by), &id);
    if let Some(seller) = dispute.seller_owner_id {
        stored = stored.gsi2(seller_partition(&seller), &id);
    }
    stored = match dispute.status {
        DisputeStatus::Filed => stored.gsi3(
            RESPONSE_WATCH,
            watch_sort(dispute.deadline().map_or(0, |at| at.unix_timestamp()), &id),
        ),
        DisputeStatus::UnderReview => stored.gsi3(
            REVIEW_QUEUE,
            watch_sort(epoch(dispute.updated_at.as_deref()), &id),
        ),
        DisputeStatus::Resolved | DisputeStatus::Withdrawn => stored,
    };
    stored.to_item()
}

fn put(
    table: &str,
    item: HashMap<String, AttributeValue>,
    condition: &str,
    from: Option<DisputeStatus>,
) -> Result<Labeled, StoreError> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    if let Some(from) = from {
        put = put
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":from", AttributeValue::S(from.as_str().into()));
    }
    let put = put
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok((
        "dispute".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

/// The dispute as a new item of a transaction (label `"dispute"`).
pub fn create_item(table: &str, dispute: &Dispute) -> Result<Labeled, StoreError> {
    put(table, to_item(dispute)?, "attribute_not_exists(PK)", None)
}

/// The dispute as it becomes, over the status it was read in (label `"dispute"`).
pub fn save_item(table: &str, from: DisputeStatus, after: &Dispute) -> Result<Labeled, StoreError> {
    put(table, to_item(after)?, "#status = :from", Some(from))
}

pub async fn get(client: &Client, table: &str, id: &DisputeId) -> Result<Dispute, StoreError> {
    crate::item::get(client, table, &key(id)).await
}

type Source<'a> = crate::paging::BoxedSource<'a>;

/// One side's disputes (before an id if given), newest first, only one agent's and
/// in one status if given.
fn side<'a>(
    client: &'a Client,
    table: &'a str,
    index: crate::schema::Gsi,
    partition: String,
    agent: Option<(&'static str, String)>,
    status: Option<DisputeStatus>,
) -> Source<'a> {
    crate::paging::newest_first(
        client,
        table,
        index,
        partition,
        agent,
        status.map(|s| s.as_str()),
    )
}

/// Which disputes of an owner's side to list.
#[derive(Debug, Clone, Copy)]
pub struct DisputeFilter<'a> {
    /// Those the owner's side filed (as buyer).
    pub as_buyer: bool,
    /// Those against the owner's agents (as seller).
    pub as_seller: bool,
    /// Only those of this agent of the owner (as the buyer's agent or the seller).
    pub agent: Option<&'a aicity_domain::ids::AgentId>,
    pub status: Option<DisputeStatus>,
}

/// A page of an owner's disputes, newest first.
pub async fn of_owner(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    filter: DisputeFilter<'_>,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<Dispute>, crate::paging::PageError> {
    let agent = filter.agent.map(ToString::to_string);
    let binding = crate::paging::Binding {
        list: format!(
            "courts.disputes|{owner}|{}{}|{}|{}",
            if filter.as_buyer { "b" } else { "" },
            if filter.as_seller { "s" } else { "" },
            agent.as_deref().unwrap_or("*"),
            filter.status.map_or("*", DisputeStatus::as_str)
        ),
        names: &["id"],
        partition: None,
    };
    let mut sources = Vec::new();
    if filter.as_buyer {
        sources.push(side(
            client,
            table,
            crate::schema::GSI1,
            buyer_partition(owner),
            agent.clone().map(|a| ("buyerAgentId", a)),
            filter.status,
        ));
    }
    if filter.as_seller {
        sources.push(side(
            client,
            table,
            crate::schema::GSI2,
            seller_partition(owner),
            agent.map(|a| ("agentId", a)),
            filter.status,
        ));
    }
    crate::paging::merged(&sources, &binding, valid_id, ask).await
}

fn valid_id(raw: &str) -> bool {
    raw.parse::<DisputeId>().is_ok()
}

/// A page of the disputes under review, the longest waiting first.
pub async fn review_queue(
    client: &Client,
    table: &str,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<Dispute>, crate::paging::PageError> {
    let index = crate::schema::GSI3;
    let binding = crate::paging::Binding {
        list: "courts.review".to_owned(),
        names: crate::paging::GSI3_KEY,
        partition: Some((index.pk, REVIEW_QUEUE.to_owned())),
    };
    let query = || {
        client
            .query()
            .table_name(table)
            .index_name(index.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", index.pk)
            .expression_attribute_values(":pk", AttributeValue::S(REVIEW_QUEUE.to_owned()))
            .scan_index_forward(true)
    };
    crate::paging::single(query, false, &binding, ask).await
}

/// Filed disputes whose response deadline is before `cutoff` (epoch seconds), the
/// most overdue first, at most `budget`; unreadable entries are logged and skipped.
pub async fn overdue(
    client: &Client,
    table: &str,
    cutoff: i64,
    budget: usize,
) -> Result<Vec<Dispute>, StoreError> {
    let items = crate::tasks::due_before(client, table, RESPONSE_WATCH, cutoff, budget).await?;
    Ok(items
        .into_iter()
        .filter_map(
            |item| match serde_dynamo::from_item::<_, Stored<Dispute>>(item) {
                Ok(stored) => Some(stored.body),
                Err(err) => {
                    tracing::warn!(error = %err, "unreadable dispute watch entry skipped");
                    None
                }
            },
        )
        .collect())
}
