//! Tasks and their event history.
//!
//! Every change to a task is a Put conditional on the status it expects *and* on the
//! sequence number of its last event, so a lost race is a typed conflict; the change's
//! events are written in the same transaction, numbered on from there.

use std::collections::HashMap;

use aicity_domain::ids::{AgentId, OwnerId, TaskId};
use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::{Event, EventType, Task};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::item::Stored;
use crate::schema::{GSI1, GSI2};
use crate::vault::Labeled;
use crate::{Key, StoreError};
use aicity_domain::timestamps;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    #[serde(flatten)]
    pub task: Task,
    pub last_event_seq: u64,
    /// Bumped by every write, events or not: a writer that read an older version
    /// loses (settlement, feedback and disputes cannot overwrite each other).
    #[serde(default)]
    pub version: u64,
}

/// What a watcher needs of a task: its status, last event number and parties, read
/// from the task item with a projection (see [`parties`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskParties {
    pub status: TaskStatus,
    pub last_event_seq: u64,
    pub caller_owner_id: OwnerId,
    #[serde(default)]
    pub agent_id: Option<AgentId>,
    #[serde(default)]
    pub caller_agent_id: Option<AgentId>,
}

fn invalid(err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(err.to_string())
}

pub fn buyer_partition(owner: &OwnerId) -> String {
    format!("OWNER#{owner}#TASKS")
}

pub fn agent_partition(agent: &AgentId) -> String {
    format!("AGENT#{agent}#TASKS")
}

/// The sweeper's partition for sandboxes (items `TASK#<id>` / `SANDBOX#<id>`).
pub const SANDBOX_WATCH: &str = "WATCH#sandbox";

pub fn watch_partition(watch: aicity_domain::task::timing::Watch) -> String {
    format!("WATCH#{}", watch.as_str())
}

/// Zero-padded epoch seconds first, so a range condition on the sort key is a time range.
pub fn watch_sort(epoch_seconds: i64, id: &str) -> String {
    format!("{epoch_seconds:012}#{id}")
}

/// Items of a watch partition (`WATCH#…`, or any partition of the due-time index) due
/// before `cutoff` (epoch seconds), oldest first, at most `budget` of them. It pages
/// (`ExclusiveStartKey`) instead of reading one page, so entries that stay behind (a
/// step that keeps failing on them) never hide the ones after them.
pub async fn due_before(
    client: &Client,
    table: &str,
    partition: &str,
    cutoff: i64,
    budget: usize,
) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
    /// Items per page: small pages keep one call quick; the budget bounds the run.
    const PAGE: usize = 100;
    let mut out = Vec::new();
    let mut start = None;
    while out.len() < budget {
        let page = client
            .query()
            .table_name(table)
            .index_name(crate::schema::GSI3.name)
            .key_condition_expression("#pk = :pk AND #sk < :cutoff")
            .expression_attribute_names("#pk", crate::schema::GSI3.pk)
            .expression_attribute_names("#sk", crate::schema::GSI3.sk)
            .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
            .expression_attribute_values(":cutoff", AttributeValue::S(format!("{cutoff:012}")))
            .limit(PAGE.min(budget - out.len()) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::aws)?;
        out.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Tasks watched for `watch` since before `cutoff` (epoch seconds), oldest first, at
/// most `budget`: the sweeper's work list. An item that does not read as a task is
/// logged and left out, never an error for the rest.
pub async fn watched_before(
    client: &Client,
    table: &str,
    watch: aicity_domain::task::timing::Watch,
    cutoff: i64,
    budget: usize,
) -> Result<Vec<TaskRecord>, StoreError> {
    let items = due_before(client, table, &watch_partition(watch), cutoff, budget).await?;
    Ok(items
        .into_iter()
        .filter_map(
            |item| match serde_dynamo::from_item::<_, Stored<TaskRecord>>(item) {
                Ok(stored) => Some(stored.body),
                Err(err) => {
                    tracing::warn!(watch = watch.as_str(), error = %err, "unreadable watch entry skipped");
                    None
                }
            },
        )
        .collect())
}

fn task_item(record: &TaskRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let task = &record.task;
    let mut stored = Stored::new(Key::task(&task.id), record)
        .gsi1(buyer_partition(&task.caller_owner_id), task.id.to_string());
    if let Some(agent) = task.agent_id {
        stored = stored.gsi2(
            agent_partition(&agent),
            format!("{}#{}", task.status, task.id),
        );
    }
    // The sweeper's index: what the task waits for, and since when.
    if let Some((watch, since)) = aicity_domain::task::timing::watch(task) {
        stored = stored.gsi3(
            watch_partition(watch),
            watch_sort(since.unix_timestamp(), &task.id.to_string()),
        );
    }
    let item = stored.to_item()?;
    // The input and output limits keep every task under this (see MAX_INPUT_BYTES);
    // should one ever not, say so plainly instead of sending DynamoDB a write it refuses.
    let size = crate::item::stored_size(&item);
    if size > crate::item::MAX_ITEM_BYTES {
        return Err(StoreError::Invalid(format!(
            "task {} would be {size} bytes stored",
            task.id
        )));
    }
    Ok(item)
}

fn event_items(
    table: &str,
    task: &TaskId,
    first_seq: u64,
    events: Vec<(EventType, Value)>,
    now: OffsetDateTime,
) -> Result<Vec<Labeled>, StoreError> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, (kind, data))| {
            let seq = first_seq + i as u64;
            let event = Event {
                seq,
                kind,
                data,
                at: timestamps::format(now),
            };
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(
                    Stored::new(Key::task_event(task, seq), event).to_item()?,
                ))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(invalid)?;
            Ok((
                "event".to_owned(),
                TransactWriteItem::builder().put(put).build(),
            ))
        })
        .collect()
}

/// A new task with its first events.
pub fn create_items(
    table: &str,
    task: Task,
    events: Vec<(EventType, Value)>,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, TaskRecord), StoreError> {
    let record = TaskRecord {
        last_event_seq: events.len() as u64,
        version: 1,
        task,
    };
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(task_item(&record)?))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .map_err(invalid)?;
    let mut items = vec![(
        "task".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    )];
    items.extend(event_items(table, &record.task.id, 1, events, now)?);
    Ok((items, record))
}

/// Writes `after` over `before` only if the task is still as it was read (same status,
/// same last event), appending `events`. The `"task"` item fails otherwise.
pub fn save_items(
    table: &str,
    before: &TaskRecord,
    mut after: Task,
    events: Vec<(EventType, Value)>,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, TaskRecord), StoreError> {
    after.updated_at = timestamps::format(now);
    let first_seq = before.last_event_seq + 1;
    let record = TaskRecord {
        last_event_seq: before.last_event_seq + events.len() as u64,
        version: before.version + 1,
        task: after,
    };
    // Items written before versions existed have none: that absence is version 0.
    let same_version = if before.version == 0 {
        "attribute_not_exists(#version)"
    } else {
        "#version = :version"
    };
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(task_item(&record)?))
        .condition_expression(format!(
            "#status = :from AND lastEventSeq = :seq AND {same_version}"
        ))
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#version", "version")
        .expression_attribute_values(
            ":from",
            AttributeValue::S(before.task.status.as_str().into()),
        )
        .expression_attribute_values(":seq", AttributeValue::N(before.last_event_seq.to_string()));
    let put = if before.version == 0 {
        put
    } else {
        put.expression_attribute_values(":version", AttributeValue::N(before.version.to_string()))
    };
    let put = put
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(invalid)?;
    let mut items = vec![(
        "task".to_owned(),
        TransactWriteItem::builder().put(put).build(),
    )];
    items.extend(event_items(table, &record.task.id, first_seq, events, now)?);
    Ok((items, record))
}

pub async fn get(client: &Client, table: &str, id: &TaskId) -> Result<TaskRecord, StoreError> {
    crate::item::get(client, table, &Key::task(id)).await
}

/// A task's status, last event number and parties, strongly consistent; `NotFound`
/// when there is no such task.
///
/// Read capacity: DynamoDB charges a GetItem by the size of the whole item it reads,
/// rounded up to 4 KB, whatever the `ProjectionExpression` leaves out of the answer: a
/// task item can be ~400 KB (input, output), up to 100 RCU. The stream reads this when
/// it opens and again only when new events arrived (see [`events_page`]), never on a
/// poll that found nothing.
pub async fn parties(client: &Client, table: &str, id: &TaskId) -> Result<TaskParties, StoreError> {
    let item = client
        .get_item()
        .table_name(table)
        .set_key(Some(Key::task(id).to_map()))
        .projection_expression("#status, lastEventSeq, callerOwnerId, agentId, callerAgentId")
        .expression_attribute_names("#status", "status")
        .consistent_read(true)
        .send()
        .await
        .map_err(StoreError::aws)?
        .item
        .ok_or(StoreError::NotFound)?;
    Ok(serde_dynamo::from_item(item)?)
}

async fn query_all(
    client: &Client,
    table: &str,
    index: crate::schema::Gsi,
    partition: String,
    sort_prefix: Option<String>,
) -> Result<Vec<Task>, StoreError> {
    let records: Vec<TaskRecord> = crate::item::query_all(|| {
        let query = client
            .query()
            .table_name(table)
            .index_name(index.name)
            .expression_attribute_names("#pk", index.pk)
            .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
            .scan_index_forward(false);
        match &sort_prefix {
            Some(prefix) => query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", index.sk)
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone())),
            None => query.key_condition_expression("#pk = :pk"),
        }
    })
    .await?;
    Ok(records.into_iter().map(|r| r.task).collect())
}

/// Every task an owner's side submitted, newest first: the whole partition, for
/// checks and tools, never for a request (requests page with [`list`]).
pub async fn submitted_by(
    client: &Client,
    table: &str,
    owner: &OwnerId,
) -> Result<Vec<Task>, StoreError> {
    query_all(client, table, GSI1, buyer_partition(owner), None).await
}

/// Which tasks to list: what an owner's side submitted (only one of its agents'
/// if given) and/or what an agent was assigned; in one status if given.
#[derive(Debug, Clone, Copy)]
pub struct TaskFilter<'a> {
    pub submitted_by: Option<(&'a OwnerId, Option<&'a AgentId>)>,
    pub assigned_to: Option<&'a AgentId>,
    pub status: Option<TaskStatus>,
}

type Source<'a> = crate::paging::BoxedSource<'a>;

/// A page of tasks, newest first (ids sort by creation), merged from the buyer's
/// index and the agent's, one status at a time there (its sort key starts with it).
pub async fn list(
    client: &Client,
    table: &str,
    filter: TaskFilter<'_>,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<Task>, crate::paging::PageError> {
    let status = filter.status;
    let binding = crate::paging::Binding {
        list: format!(
            "tasks|{}|{}|{}|{}",
            filter
                .submitted_by
                .map_or_else(|| "-".to_owned(), |(owner, _)| owner.to_string()),
            filter
                .submitted_by
                .and_then(|(_, agent)| agent)
                .map_or_else(|| "*".to_owned(), ToString::to_string),
            filter
                .assigned_to
                .map_or_else(|| "-".to_owned(), ToString::to_string),
            status.map_or("*", TaskStatus::as_str)
        ),
        names: &["id"],
        partition: None,
    };
    let mut sources: Vec<Source<'_>> = Vec::new();
    if let Some((owner, agent)) = filter.submitted_by {
        let partition = buyer_partition(owner);
        sources.push(crate::paging::newest_first(
            client,
            table,
            GSI1,
            partition,
            agent.map(|agent| ("callerAgentId", agent.to_string())),
            status.map(TaskStatus::as_str),
        ));
    }
    if let Some(agent) = filter.assigned_to {
        let statuses = match status {
            Some(status) => vec![status],
            None => TaskStatus::ALL.to_vec(),
        };
        for status in statuses {
            let partition = agent_partition(agent);
            let prefix = format!("{}#", status.as_str());
            sources.push(crate::paging::IdSource {
                query: Box::new(move |before: Option<&str>| {
                    client
                        .query()
                        .table_name(table)
                        .index_name(GSI2.name)
                        // BETWEEN includes `before` itself; the merge leaves it out.
                        .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                        .expression_attribute_names("#pk", GSI2.pk)
                        .expression_attribute_names("#sk", GSI2.sk)
                        .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
                        .expression_attribute_values(":low", AttributeValue::S(prefix.clone()))
                        .expression_attribute_values(
                            ":high",
                            AttributeValue::S(match before {
                                Some(before) => format!("{prefix}{before}"),
                                None => format!("{prefix}~"),
                            }),
                        )
                        .scan_index_forward(false)
                }),
                filtered: false,
                names: crate::paging::GSI2_KEY,
                id_attribute: GSI2.sk,
            });
        }
    }
    crate::paging::merged(&sources, &binding, valid_task_id, ask)
        .await
        .map(|page: crate::paging::Listed<TaskRecord>| page.map(|r| r.task))
}

fn valid_task_id(raw: &str) -> bool {
    raw.parse::<TaskId>().is_ok()
}

/// Events after `after_seq`, in order.
pub async fn events(
    client: &Client,
    table: &str,
    task: &TaskId,
    after_seq: u64,
) -> Result<Vec<Event>, StoreError> {
    crate::item::query_all(|| {
        client
            .query()
            .table_name(table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", AttributeValue::S(Key::task(task).pk))
            .expression_attribute_values(
                ":from",
                AttributeValue::S(Key::task_event(task, after_seq + 1).sk),
            )
            .expression_attribute_values(
                ":to",
                AttributeValue::S(Key::task_event(task, 9_999_999_999).sk),
            )
            .consistent_read(true)
    })
    .await
}

/// At most `limit` events after `after_seq`, in order: one strongly consistent Query
/// page, the stream's poll. DynamoDB charges a Query by the size of what it reads,
/// rounded up to 4 KB, with a minimum of 1 RCU: a poll that finds nothing new costs
/// 1 RCU whatever the task's size (the task item, `SK=TASK`, is outside the range).
pub async fn events_page(
    client: &Client,
    table: &str,
    task: &TaskId,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let page = client
        .query()
        .table_name(table)
        .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
        .expression_attribute_values(":pk", AttributeValue::S(Key::task(task).pk))
        .expression_attribute_values(
            ":from",
            AttributeValue::S(Key::task_event(task, after_seq + 1).sk),
        )
        .expression_attribute_values(
            ":to",
            AttributeValue::S(Key::task_event(task, 9_999_999_999).sk),
        )
        .limit(limit.clamp(1, i32::MAX as u32) as i32)
        .consistent_read(true)
        .send()
        .await
        .map_err(StoreError::aws)?;
    page.items
        .unwrap_or_default()
        .into_iter()
        .map(|item| Ok(serde_dynamo::from_item::<_, Stored<Event>>(item)?.body))
        .collect()
}

#[cfg(test)]
mod tests {
    use aicity_domain::identity::Category;
    use aicity_domain::ids::{AgentId, OwnerId};
    use aicity_domain::money::Cents;
    use aicity_domain::task::model::{
        InputFile, MAX_ERROR_CHARS, MAX_INPUT_BYTES, MAX_OUTPUT_BYTES, MAX_QUALITY_REASON_CHARS,
        MAX_QUALITY_REASONS, TaskInput,
    };
    use serde_json::json;

    use super::*;

    /// The largest task the limits allow: 150 KiB of input stored (files, template fields
    /// and a previous step's output of tiny numbers), 150 KiB of output stored (as tiny
    /// numbers, the costliest shape), every reason and the error message at their longest
    /// in 4-byte characters, every optional field set.
    fn worst_case() -> TaskRecord {
        let wide = "𝄞";
        let files = (0..2)
            .map(|i| InputFile {
                name: format!("{i}.rs"),
                content: "x".repeat(MAX_INPUT_BYTES / 4 - 64),
            })
            .collect();
        let mut input = TaskInput {
            previous_output: Some(serde_json::Value::Array(vec![
                json!(7);
                (MAX_INPUT_BYTES / 2 - 2_000)
                    / 3
            ])),
            fields: Default::default(),
            description: "d".into(),
            repo: Some("r".into()),
            code: None,
            files,
        };
        input
            .fields
            .insert("expectedBehavior".into(), json!("e".repeat(1_000)));
        let stored =
            aicity_domain::json_limits::stored_size(&serde_json::to_value(&input).unwrap());
        assert!(serde_json::to_vec(&input).unwrap().len() <= MAX_INPUT_BYTES);
        assert!(stored <= MAX_INPUT_BYTES, "{stored}");
        assert!(stored > MAX_INPUT_BYTES - 4_096, "{stored}");
        let output = serde_json::Value::Array(vec![json!(7); (MAX_OUTPUT_BYTES - 3) / 3]);
        assert!(aicity_domain::json_limits::stored_size(&output) <= MAX_OUTPUT_BYTES);
        let now = timestamps::now();
        let agent = AgentId::new();
        TaskRecord {
            last_event_seq: 99_999,
            version: 99_999,
            task: Task {
                id: TaskId::new(),
                task_type: Category::CodeReview,
                status: TaskStatus::Completed,
                input,
                max_budget: Cents(1_000_000),
                agent_id: Some(agent),
                caller_owner_id: OwnerId::new(),
                caller_agent_id: Some(AgentId::new()),
                parent_task_id: Some(TaskId::new()),
                direct_hire: true,
                requested_agent_id: Some(agent),
                agreed_price: Some(Cents(999_999)),
                sandbox_id: Some("sbx_".repeat(16)),
                output: Some(output),
                quality_score: Some(100),
                self_reported_score: Some(100),
                credits_charged: Some(Cents(999_999)),
                execution_time_ms: Some(u64::MAX),
                feedback: None,
                failure_reason: None,
                error_message: Some(wide.repeat(MAX_ERROR_CHARS)),
                quality_reasons: vec![wide.repeat(MAX_QUALITY_REASON_CHARS); MAX_QUALITY_REASONS],
                routing_attempts: u32::MAX,
                quality_attempts: u32::MAX,
                declined_by: vec![AgentId::new(); 10],
                created_at: now.clone(),
                updated_at: now.clone(),
                completed_at: Some(now.clone()),
                assigned_at: Some(now.clone()),
                started_at: Some(now.clone()),
                settled_at: None,
                dispute_id: Some(aicity_domain::ids::DisputeId::new()),
                dispute_status: Some(aicity_domain::task::dispute::DisputeStatus::UnderReview),
                budget_day: Some("2026-11-23".into()),
                workflow_id: None,
                workflow_step: None,
            },
        }
    }

    #[test]
    fn the_largest_task_the_limits_allow_fits_in_one_item() {
        let record = worst_case();
        let item = task_item(&record).expect("within the item limit");
        let size = crate::item::stored_size(&item);
        assert!(size <= crate::item::MAX_ITEM_BYTES, "{size} bytes");
        assert!(size > 300_000, "the worst case really is large: {size}");
    }

    #[test]
    fn template_fields_round_trip_through_an_item() {
        let mut record = worst_case();
        let fields = json!({
            "wordCount": 800, "tone": "dry", "questions": ["why?", "how?"], "draft": true,
            "nested": {"a": [1, 2.5, null, "x"]}
        });
        record.task.input.fields = fields.as_object().unwrap().clone();
        record.task.input.previous_output = Some(json!({"findings": "ok", "score": 7}));
        record.task.task_type = Category::BugFix;
        let item = task_item(&record).unwrap();
        let back: crate::item::Stored<TaskRecord> = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back.body.task.input, record.task.input);
        assert_eq!(back.body.task.task_type, Category::BugFix);
        // Beside the common fields, as the buyer sent them.
        let shown = serde_json::to_value(&back.body.task).unwrap();
        assert_eq!(shown["input"]["wordCount"], 800);
        assert_eq!(shown["input"]["questions"][1], "how?");
    }

    #[test]
    fn a_task_past_the_item_limit_is_refused_before_dynamodb() {
        let mut record = worst_case();
        record.task.quality_reasons = vec!["x".repeat(100_000)];
        assert!(matches!(task_item(&record), Err(StoreError::Invalid(_))));
    }
}
