//! Counters for estimates and profitability, kept as the money moves so no read ever
//! scans tasks (`docs/data-model.md` rows 50–52; what the figures mean:
//! `aicity_domain::task::economics`).
//!
//! - Completion statistics of a task type: `PK=STATS#category#<type>`,
//!   `SK=SHARD#<0..STATS_SHARDS>`, `ADD` on a charge; read with one Query of the
//!   partition and summed.
//! - What an agent made per UTC day and category: `PK=PROFIT#<agentId>`,
//!   `SK=<yyyy-mm-dd>#<category>`, `ADD` on a charge and on a refund; read with one
//!   Query on the SK range from the period's first day (paged).
//!
//! Both are written by `aicity_tasks::change::apply` in the transaction of the money
//! step itself, next to the hold's conditional transition and the task's: a replayed or
//! redelivered step either commits with them once or not at all. The updates carry no
//! condition of their own (a counter only ever gets what the step adds), so they never
//! cancel a step; under contention the commit retries like any other.

use std::collections::HashMap;

use aicity_domain::identity::Category;
use aicity_domain::ids::{AgentId, TaskId};
use aicity_domain::task::economics::{CompletionCounters, Profit, stats_shard};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde::Deserialize;

use crate::item::Stored;
use crate::schema::GSI2;
use crate::vault::Labeled;
use crate::{Key, StoreError};

fn invalid(err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(err.to_string())
}

fn stats_partition(category: Category) -> String {
    format!("STATS#category#{}", category.as_str())
}

/// The stats shard item a task's completion is counted in.
pub fn stats_key(category: Category, task: &TaskId) -> Key {
    Key::new(
        stats_partition(category),
        format!("SHARD#{}", stats_shard(task)),
    )
}

fn profit_partition(agent: &AgentId) -> String {
    format!("PROFIT#{agent}")
}

/// An agent's counter item of one UTC day (`yyyy-mm-dd`) and category.
pub fn profit_key(agent: &AgentId, day: &str, category: Category) -> Key {
    Key::new(
        profit_partition(agent),
        format!("{day}#{}", category.as_str()),
    )
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// `ADD` of a few counters (zeros left out) plus `SET` of a few descriptive fields, as
/// one transaction item labelled `label`.
fn add_item(
    table: &str,
    label: &str,
    key: &Key,
    counters: &[(&str, i64)],
    fields: &[(&str, String)],
) -> Result<Labeled, StoreError> {
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut adds = Vec::new();
    for (i, (name, n)) in counters.iter().filter(|(_, n)| *n != 0).enumerate() {
        names.insert(format!("#c{i}"), (*name).to_owned());
        values.insert(format!(":c{i}"), number(*n));
        adds.push(format!("#c{i} :c{i}"));
    }
    let mut sets = Vec::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        names.insert(format!("#f{i}"), (*name).to_owned());
        values.insert(format!(":f{i}"), AttributeValue::S(value.clone()));
        sets.push(format!("#f{i} = :f{i}"));
    }
    let mut expression = String::new();
    if !sets.is_empty() {
        expression.push_str(&format!("SET {}", sets.join(", ")));
    }
    if !adds.is_empty() {
        expression.push_str(&format!(" ADD {}", adds.join(", ")));
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key.to_map()))
        .update_expression(expression.trim())
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(invalid)?;
    Ok((
        label.to_owned(),
        TransactWriteItem::builder().update(update).build(),
    ))
}

/// Counts one completion of `task` (of type `category`) in its stats shard. Label
/// `"stats"`.
pub fn completion_item(
    table: &str,
    category: Category,
    task: &TaskId,
    counters: CompletionCounters,
) -> Result<Labeled, StoreError> {
    add_item(
        table,
        "stats",
        &stats_key(category, task),
        &[
            ("completed", counters.completed),
            ("charged", counters.charged),
            ("scored", counters.scored),
            ("qualitySum", counters.quality_sum),
            ("timed", counters.timed),
            ("executionMsSum", counters.execution_ms_sum),
        ],
        &[("category", category.as_str().to_owned())],
    )
}

/// Adds `profit` to `agent`'s counters of `day` and `category`. Label `"profit"`.
pub fn profit_item(
    table: &str,
    agent: &AgentId,
    day: &str,
    category: Category,
    profit: Profit,
) -> Result<Labeled, StoreError> {
    add_item(
        table,
        "profit",
        &profit_key(agent, day, category),
        &[
            ("tasks", profit.tasks),
            ("revenue", profit.revenue),
            ("fees", profit.fees),
            ("refunds", profit.refunds),
        ],
        &[
            ("day", day.to_owned()),
            ("category", category.as_str().to_owned()),
        ],
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatsShard {
    #[serde(default)]
    completed: i64,
    #[serde(default)]
    charged: i64,
    #[serde(default)]
    scored: i64,
    #[serde(default)]
    quality_sum: i64,
    #[serde(default)]
    timed: i64,
    #[serde(default)]
    execution_ms_sum: i64,
}

/// Every past completion of `category`: its shards, summed (one Query of
/// [`aicity_domain::task::economics::STATS_SHARDS`] items).
pub async fn completions(
    client: &Client,
    table: &str,
    category: Category,
) -> Result<CompletionCounters, StoreError> {
    let mut sum = CompletionCounters::default();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(stats_partition(category)))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::aws)?;
        for item in page.items.unwrap_or_default() {
            let s: StatsShard = serde_dynamo::from_item(item)?;
            sum = sum.plus(CompletionCounters {
                completed: s.completed,
                charged: s.charged,
                scored: s.scored,
                quality_sum: s.quality_sum,
                timed: s.timed,
                execution_ms_sum: s.execution_ms_sum,
            });
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(sum);
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfitDay {
    category: String,
    #[serde(default)]
    tasks: i64,
    #[serde(default)]
    revenue: i64,
    #[serde(default)]
    fees: i64,
    #[serde(default)]
    refunds: i64,
}

/// `agent`'s day counters from `since` (`yyyy-mm-dd`, inclusive; `None`: all of them),
/// as (category, counters): one Query of the partition's SK range, paged. At most one
/// item per day and category of activity.
pub async fn profit_rows(
    client: &Client,
    table: &str,
    agent: &AgentId,
    since: Option<&str>,
) -> Result<Vec<(Category, Profit)>, StoreError> {
    let mut rows = Vec::new();
    let mut start = None;
    loop {
        let mut query = client
            .query()
            .table_name(table)
            .expression_attribute_values(":pk", AttributeValue::S(profit_partition(agent)))
            .set_exclusive_start_key(start);
        query = match since {
            // `yyyy-mm-dd#…` sorts at or after `yyyy-mm-dd` from that day on.
            Some(day) => query
                .key_condition_expression("PK = :pk AND SK >= :since")
                .expression_attribute_values(":since", AttributeValue::S(day.to_owned())),
            None => query.key_condition_expression("PK = :pk"),
        };
        let page = query.send().await.map_err(StoreError::aws)?;
        for item in page.items.unwrap_or_default() {
            let day: ProfitDay = serde_dynamo::from_item(item)?;
            // A category the code no longer knows is left out rather than failing
            // the whole report.
            let Some(category) = Category::parse(&day.category) else {
                tracing::warn!(category = %day.category, "profit counter of an unknown category");
                continue;
            };
            rows.push((
                category,
                Profit {
                    tasks: day.tasks,
                    revenue: day.revenue,
                    fees: day.fees,
                    refunds: day.refunds,
                },
            ));
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(rows);
        }
    }
}

/// The market of `category` for an estimate: the search rows (active agents offering
/// it, with their owner and prices) of the best `limit` by score (GSI2 `CAT#<type>`,
/// best first, as routing's `someone_could_take` reads it). Bounded by `limit`,
/// whatever the size of the market.
pub async fn market(
    client: &Client,
    table: &str,
    category: Category,
    limit: usize,
) -> Result<Vec<crate::agents::SearchRow>, StoreError> {
    let mut rows = Vec::new();
    let mut start = None;
    while rows.len() < limit {
        let page = client
            .query()
            .table_name(table)
            .index_name(GSI2.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI2.pk)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("CAT#{}", category.as_str())),
            )
            .scan_index_forward(false)
            .limit(i32::try_from(limit - rows.len()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::aws)?;
        for item in page.items.unwrap_or_default() {
            rows.push(serde_dynamo::from_item::<_, Stored<crate::agents::SearchRow>>(item)?.body);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    rows.truncate(limit);
    Ok(rows)
}
