//! The Embassy's items: policies, budget counters, approvals, the audit trail and the
//! owner's notifications.
//!
//! - `AGENT#<agent>` / `POLICY`: the agent's policy, written only if its `version` is
//!   the one the writer read.
//! - `BUDGET#<agent>` / `DAY#<yyyy-mm-dd>`: what the agent's submits of that UTC day
//!   hold or were charged (`committed`). A submit adds to today's under a condition
//!   (`committed <= ceiling`), so racing submits can never pass a budget; the week's
//!   other six days are condition checks in the same transaction (they only shrink).
//! - `APPROVAL#<apr_…>` / `APPROVAL`: one per task over its threshold; by owner in GSI1.
//! - `OWNER#<owner>#AUDIT` / `<aud_…>`: the audit trail, by agent in GSI1.
//! - `OWNER#<owner>#NOTIFS` / `<ntf_…>`: the notifications feed.
//!
//! Ids are ULIDs, so sort keys are in time order.

use std::collections::HashMap;
use std::time::Duration;

use aicity_domain::embassy::{
    AUDIT_PREFIX, Approval, ApprovalStatus, AuditEntry, NOTIFICATION_PREFIX, Notification, Policy,
};
use aicity_domain::ids::{AgentId, OwnerId};
use aicity_domain::money::Cents;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::Stored;
use crate::schema::GSI1;
use crate::transact::Transaction;
use crate::vault::Labeled;
use crate::{Key, StoreError};

/// Budget counters outlive the 7-day window comfortably (a hold voided late still finds
/// its day), then go.
const BUDGET_TTL: Duration = Duration::from_secs(40 * 24 * 3600);
/// Kept for a year and a month.
const AUDIT_TTL: Duration = Duration::from_secs(400 * 24 * 3600);
const NOTIFICATION_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

fn invalid(err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(err.to_string())
}

pub fn policy_key(agent: &AgentId) -> Key {
    Key::new(format!("AGENT#{agent}"), "POLICY")
}

pub fn budget_key(agent: &AgentId, day: &str) -> Key {
    Key::new(format!("BUDGET#{agent}"), format!("DAY#{day}"))
}

pub fn approval_key(id: &str) -> Key {
    Key::new(format!("APPROVAL#{id}"), "APPROVAL")
}

fn owner_approvals(owner: &OwnerId) -> String {
    format!("OWNER#{owner}#APPROVALS")
}

fn audit_partition(owner: &OwnerId) -> String {
    format!("OWNER#{owner}#AUDIT")
}

fn agent_audit_partition(agent: &AgentId) -> String {
    format!("AGENT#{agent}#AUDIT")
}

fn notification_partition(owner: &OwnerId) -> String {
    format!("OWNER#{owner}#NOTIFS")
}

/// A new time-ordered id with `prefix`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", ulid::Ulid::generate())
}

/// The smallest id with `prefix` at or after `at`: a sort-key bound for "since".
pub fn id_at(prefix: &str, at: OffsetDateTime) -> String {
    let ms = (at.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    format!("{prefix}{}", ulid::Ulid::from_parts(ms, 0))
}

// ---------------------------------------------------------------- policies

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyRecord {
    agent_id: AgentId,
    owner_id: OwnerId,
    #[serde(flatten)]
    policy: Policy,
}

/// The agent's policy; version 0 with no limits when none was ever set.
pub async fn policy(client: &Client, table: &str, agent: &AgentId) -> Result<Policy, StoreError> {
    match crate::item::get::<PolicyRecord>(client, table, &policy_key(agent)).await {
        Ok(record) => Ok(record.policy),
        Err(StoreError::NotFound) => Ok(Policy::default()),
        Err(err) => Err(err),
    }
}

/// Writes `next` if the stored version is still `next.version - 1`, with `extra` (the
/// audit entry) in the same transaction; the `"policy"` item fails otherwise.
pub async fn put_policy(
    client: &Client,
    table: &str,
    agent: &AgentId,
    owner: &OwnerId,
    next: &Policy,
    extra: Vec<Labeled>,
) -> Result<(), StoreError> {
    let record = PolicyRecord {
        agent_id: *agent,
        owner_id: *owner,
        policy: next.clone(),
    };
    let read = next.version.saturating_sub(1);
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(Stored::new(policy_key(agent), record).to_item()?));
    let put = if read == 0 {
        put.condition_expression("attribute_not_exists(PK)")
    } else {
        put.condition_expression("version = :read")
            .expression_attribute_values(":read", AttributeValue::N(read.to_string()))
    };
    let mut transaction = Transaction::new();
    transaction
        .push(
            "policy",
            TransactWriteItem::builder()
                .put(put.build().map_err(invalid)?)
                .build(),
        )
        .extend(extra);
    transaction.commit(client).await
}

// ---------------------------------------------------------------- budgets

/// What an agent's submits committed: today's counter and the six days before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub today: Cents,
    /// `(day, committed)` for each of the six days before today, oldest first.
    pub past: Vec<(String, Cents)>,
}

impl Counters {
    pub fn past_total(&self) -> Cents {
        Cents(self.past.iter().map(|(_, c)| c.0.max(0)).sum())
    }

    pub fn committed(&self) -> aicity_domain::embassy::Committed {
        aicity_domain::embassy::Committed {
            today: Cents(self.today.0.max(0)),
            last7_days: Cents(self.today.0.max(0) + self.past_total().0),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Counter {
    #[serde(rename = "SK")]
    sk: String,
    #[serde(default)]
    committed: i64,
}

/// The agent's counters for the week ending on `today` (strongly consistent).
pub async fn counters(
    client: &Client,
    table: &str,
    agent: &AgentId,
    today: &str,
    past_days: &[String],
) -> Result<Counters, StoreError> {
    let first = past_days.first().map_or(today, String::as_str);
    let output = client
        .query()
        .table_name(table)
        .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
        .expression_attribute_values(":pk", AttributeValue::S(budget_key(agent, today).pk))
        .expression_attribute_values(":from", AttributeValue::S(format!("DAY#{first}")))
        .expression_attribute_values(":to", AttributeValue::S(format!("DAY#{today}")))
        .consistent_read(true)
        .send()
        .await
        .map_err(StoreError::aws)?;
    let mut found = HashMap::new();
    for item in output.items.unwrap_or_default() {
        let counter: Counter = serde_dynamo::from_item(item)?;
        let day = counter.sk.trim_start_matches("DAY#").to_owned();
        found.insert(day, Cents(counter.committed));
    }
    Ok(Counters {
        today: found.get(today).copied().unwrap_or_default(),
        past: past_days
            .iter()
            .map(|day| (day.clone(), found.get(day).copied().unwrap_or_default()))
            .collect(),
    })
}

/// Adds `amount` to today's counter. With a `ceiling`, only while the counter is at most
/// that before adding; with `week`, also only while none of the past days read in
/// `counters` grew since (a submit on the other side of midnight). Label `"budget"`.
pub fn commit_items(
    table: &str,
    agent: &AgentId,
    today: &str,
    amount: Cents,
    ceiling: Option<i64>,
    week: Option<&Counters>,
    now: OffsetDateTime,
) -> Result<Vec<Labeled>, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(budget_key(agent, today).to_map()))
        .update_expression("ADD committed :amount SET expiresAt = :expires")
        .expression_attribute_values(":amount", AttributeValue::N(amount.0.to_string()))
        .expression_attribute_values(
            ":expires",
            AttributeValue::N(crate::ttl::expires_at(now, BUDGET_TTL).to_string()),
        );
    if let Some(ceiling) = ceiling {
        update = update
            .condition_expression("attribute_not_exists(committed) OR committed <= :ceiling")
            .expression_attribute_values(":ceiling", AttributeValue::N(ceiling.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    }
    let mut items = vec![(
        "budget".to_owned(),
        TransactWriteItem::builder()
            .update(update.build().map_err(invalid)?)
            .build(),
    )];
    for (day, read) in week.map(|c| c.past.as_slice()).unwrap_or_default() {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(budget_key(agent, day).to_map()))
            .condition_expression("attribute_not_exists(committed) OR committed <= :read")
            .expression_attribute_values(":read", AttributeValue::N(read.0.to_string()))
            .build()
            .map_err(invalid)?;
        items.push((
            "budget".to_owned(),
            TransactWriteItem::builder().condition_check(check).build(),
        ));
    }
    Ok(items)
}

/// Gives `amount` back to the counter of `day` (a voided hold, or what a posted one did
/// not charge). Label `"budget"`; no condition: a counter only ever gets back what it
/// was given.
pub fn give_back_item(
    table: &str,
    agent: &AgentId,
    day: &str,
    amount: Cents,
) -> Result<Labeled, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(budget_key(agent, day).to_map()))
        .update_expression("ADD committed :amount")
        .expression_attribute_values(":amount", AttributeValue::N((-amount.0).to_string()))
        .build()
        .map_err(invalid)?;
    Ok((
        "budget".to_owned(),
        TransactWriteItem::builder().update(update).build(),
    ))
}

// ---------------------------------------------------------------- approvals

/// An approval as stored: its `expiresAt` is `deadline` here, because `expiresAt` is
/// the table's TTL attribute (epoch seconds) and an approval is kept after it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredApproval {
    id: String,
    task_id: aicity_domain::ids::TaskId,
    agent_id: AgentId,
    owner_id: OwnerId,
    task_type: aicity_domain::identity::Category,
    amount: Cents,
    status: ApprovalStatus,
    created_at: String,
    deadline: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&Approval> for StoredApproval {
    fn from(a: &Approval) -> Self {
        Self {
            id: a.id.clone(),
            task_id: a.task_id,
            agent_id: a.agent_id,
            owner_id: a.owner_id,
            task_type: a.task_type,
            amount: a.amount,
            status: a.status,
            created_at: a.created_at.clone(),
            deadline: a.expires_at.clone(),
            decided_at: a.decided_at.clone(),
            reason: a.reason.clone(),
        }
    }
}

impl From<StoredApproval> for Approval {
    fn from(a: StoredApproval) -> Self {
        Self {
            id: a.id,
            task_id: a.task_id,
            agent_id: a.agent_id,
            owner_id: a.owner_id,
            task_type: a.task_type,
            amount: a.amount,
            status: a.status,
            created_at: a.created_at,
            expires_at: a.deadline,
            decided_at: a.decided_at,
            reason: a.reason,
        }
    }
}

fn approval_item(approval: &Approval) -> Result<HashMap<String, AttributeValue>, StoreError> {
    Stored::new(approval_key(&approval.id), StoredApproval::from(approval))
        .gsi1(owner_approvals(&approval.owner_id), approval.id.clone())
        .to_item()
}

/// A new approval. Label `"approval"`.
pub fn approval_item_new(table: &str, approval: &Approval) -> Result<Labeled, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(approval_item(approval)?))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(invalid)?;
    Ok((
        "approval".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

/// Ends a pending approval as `to` (only while it is pending). Label `"approval"`.
pub fn approval_decided_item(
    table: &str,
    id: &str,
    to: ApprovalStatus,
    at: &str,
    reason: Option<&str>,
) -> Result<Labeled, StoreError> {
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(approval_key(id).to_map()))
        .condition_expression("#status = :pending")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
        .expression_attribute_values(":to", AttributeValue::S(to.as_str().into()))
        .expression_attribute_values(":at", AttributeValue::S(at.into()));
    update = match reason {
        Some(reason) => update
            .update_expression("SET #status = :to, decidedAt = :at, reason = :reason")
            .expression_attribute_values(":reason", AttributeValue::S(reason.into())),
        None => update.update_expression("SET #status = :to, decidedAt = :at"),
    };
    Ok((
        "approval".to_owned(),
        TransactWriteItem::builder()
            .update(update.build().map_err(invalid)?)
            .build(),
    ))
}

pub async fn approval(client: &Client, table: &str, id: &str) -> Result<Approval, StoreError> {
    crate::item::get::<StoredApproval>(client, table, &approval_key(id))
        .await
        .map(Approval::from)
}

/// A page of an owner's approvals, newest first, in one status if given.
pub async fn approvals_of(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    status: Option<ApprovalStatus>,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<Approval>, crate::paging::PageError> {
    let partition = owner_approvals(owner);
    let binding = crate::paging::Binding {
        list: format!(
            "embassy.approvals|{owner}|{}",
            status.map_or("*", |s| s.as_str())
        ),
        names: crate::paging::GSI1_KEY,
        partition: Some((GSI1.pk, partition.clone())),
    };
    let query = || {
        let query = client
            .query()
            .table_name(table)
            .index_name(GSI1.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1.pk)
            .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
            .scan_index_forward(false);
        match status {
            Some(status) => query
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", AttributeValue::S(status.as_str().into())),
            None => query,
        }
    };
    let page: crate::paging::Listed<StoredApproval> =
        crate::paging::single(query, status.is_some(), &binding, ask).await?;
    Ok(page.map(Approval::from))
}

// ---------------------------------------------------------------- audit trail

/// The audit entry as one item of the transaction that makes the change it records.
/// Label `"audit"`.
pub fn audit_item(table: &str, entry: &AuditEntry) -> Result<Labeled, StoreError> {
    let mut stored = Stored::new(
        Key::new(audit_partition(&entry.owner_id), entry.id.clone()),
        entry,
    )
    .expires_at(crate::ttl::expires_at(OffsetDateTime::now_utc(), AUDIT_TTL));
    if let Some(agent) = &entry.agent_id {
        stored = stored.gsi1(agent_audit_partition(agent), entry.id.clone());
    }
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(stored.to_item()?))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(invalid)?;
    Ok((
        "audit".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

/// One page of a feed: what it holds, whether there is more.
#[derive(Debug, Clone)]
pub struct FeedPage<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// An owner's audit entries (or one agent's), newest first: at or after `since`, before
/// the `before` id (the last of the previous page), at most `limit`.
pub async fn audit_page(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    agent: Option<&AgentId>,
    since: Option<OffsetDateTime>,
    before: Option<&str>,
    limit: usize,
) -> Result<FeedPage<AuditEntry>, StoreError> {
    let low = since.map_or_else(|| AUDIT_PREFIX.to_owned(), |at| id_at(AUDIT_PREFIX, at));
    let high = before.map_or_else(|| format!("{AUDIT_PREFIX}~"), str::to_owned);
    // A cursor older than `since`: nothing is between them (and DynamoDB refuses a
    // BETWEEN whose bounds are reversed).
    if low > high {
        return Ok(FeedPage {
            items: Vec::new(),
            has_more: false,
        });
    }
    let (index, pk_name, sk_name, partition) = match agent {
        Some(agent) => (
            Some(GSI1.name),
            GSI1.pk,
            GSI1.sk,
            agent_audit_partition(agent),
        ),
        None => (None, "PK", "SK", audit_partition(owner)),
    };
    let mut query = client
        .query()
        .table_name(table)
        .set_index_name(index.map(str::to_owned))
        .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
        .expression_attribute_names("#pk", pk_name)
        .expression_attribute_names("#sk", sk_name)
        .expression_attribute_values(":pk", AttributeValue::S(partition))
        .expression_attribute_values(":low", AttributeValue::S(low))
        .expression_attribute_values(":high", AttributeValue::S(high.clone()))
        .scan_index_forward(false)
        // One more than a page tells whether there is more; BETWEEN includes the
        // cursor itself, which is left out below.
        .limit((limit + 1 + usize::from(before.is_some())) as i32);
    if index.is_none() {
        query = query.consistent_read(true);
    }
    let output = query.send().await.map_err(StoreError::aws)?;
    let mut items = Vec::new();
    for item in output.items.unwrap_or_default() {
        let entry: AuditEntry = serde_dynamo::from_item::<_, Stored<AuditEntry>>(item)?.body;
        // BETWEEN includes its bounds; the cursor is the last entry already shown.
        if entry.id != high && entry.owner_id == *owner {
            items.push(entry);
        }
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    Ok(FeedPage { items, has_more })
}

// ---------------------------------------------------------------- notifications

/// A notification for `owner` as one item of a transaction. Label `"notification"`.
pub fn notification_item(
    table: &str,
    owner: &OwnerId,
    notification: &Notification,
) -> Result<Labeled, StoreError> {
    let stored = Stored::new(
        Key::new(notification_partition(owner), notification.id.clone()),
        notification,
    )
    .expires_at(crate::ttl::expires_at(
        OffsetDateTime::now_utc(),
        NOTIFICATION_TTL,
    ));
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(stored.to_item()?))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(invalid)?;
    Ok((
        "notification".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

/// Writes `notification` once per `marker` (e.g. one "budget reached" per agent, window
/// and day): whether it wrote.
pub async fn notify_once(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    marker: &str,
    notification: &Notification,
) -> Result<bool, StoreError> {
    let now = OffsetDateTime::now_utc();
    let marker = Put::builder()
        .table_name(table)
        .set_item(Some(
            Stored::new(
                Key::new(notification_partition(owner), format!("MARK#{marker}")),
                serde_json::json!({}),
            )
            .expires_at(crate::ttl::expires_at(now, BUDGET_TTL))
            .to_item()?,
        ))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(invalid)?;
    let mut transaction = Transaction::new();
    transaction
        .push("marker", TransactWriteItem::builder().put(marker).build())
        .extend([notification_item(table, owner, notification)?]);
    match transaction.commit(client).await {
        Ok(()) => Ok(true),
        Err(err) if err.failed_labels().contains(&"marker") => Ok(false),
        Err(err) => Err(err),
    }
}

/// An owner's notifications. After `since` (an id): the ones after it, oldest first
/// (a follower's next page). Without: the latest `limit`, still oldest first. `has_more`:
/// newer ones remain after `since`, or older ones before the latest.
pub async fn notifications_page(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    since: Option<&str>,
    limit: usize,
) -> Result<FeedPage<Notification>, StoreError> {
    let query = client
        .query()
        .table_name(table)
        .expression_attribute_values(":pk", AttributeValue::S(notification_partition(owner)))
        .consistent_read(true)
        .limit(limit as i32 + 1);
    let query = match since {
        Some(since) => query
            .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
            .expression_attribute_values(":low", AttributeValue::S(format!("{since}0")))
            .expression_attribute_values(
                ":high",
                AttributeValue::S(format!("{NOTIFICATION_PREFIX}~")),
            )
            .scan_index_forward(true),
        None => query
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(NOTIFICATION_PREFIX.into()))
            .scan_index_forward(false),
    };
    let output = query.send().await.map_err(StoreError::aws)?;
    let mut items = Vec::new();
    for item in output.items.unwrap_or_default() {
        items.push(serde_dynamo::from_item::<_, Stored<Notification>>(item)?.body);
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    if since.is_none() {
        items.reverse();
    }
    Ok(FeedPage { items, has_more })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_since_bounds_them() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let bound = id_at(AUDIT_PREFIX, at);
        let later = id_at(AUDIT_PREFIX, at + time::Duration::milliseconds(1));
        assert!(bound < later);
        assert!(new_id(AUDIT_PREFIX) > bound);
        assert!(bound.starts_with(AUDIT_PREFIX));
    }

    #[test]
    fn counters_add_up_the_week_without_negatives() {
        let counters = Counters {
            today: Cents(500),
            past: vec![
                ("2026-11-20".into(), Cents(300)),
                ("2026-11-21".into(), Cents(-5)),
            ],
        };
        assert_eq!(counters.past_total(), Cents(300));
        assert_eq!(counters.committed().last7_days, Cents(800));
    }
}
