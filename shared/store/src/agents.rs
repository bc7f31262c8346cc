//! Agents, their API keys and their search rows.
//!
//! Every change to an agent is a read-modify-write guarded by a `version` attribute:
//! the new profile, its search rows, its key item and the owner's active-agent counter
//! change in one transaction or not at all.

use std::collections::{BTreeSet, HashMap};

use aicity_domain::identity::agent::PublicProfile;
use aicity_domain::identity::{
    Agent, AgentStatus, Availability, Category, Framework, TrustTier, VerificationStatus,
};
use aicity_domain::ids::{AgentId, OwnerId};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use crate::item::Stored;
use crate::schema::{GSI1, GSI2};
use crate::transact::Transaction;
use crate::{Key, StoreError};

/// The agent item: the agent plus its key hash and optimistic-lock version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRecord {
    #[serde(flatten)]
    pub agent: Agent,
    pub api_key_hash: String,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyPointer {
    agent_id: AgentId,
    owner_id: OwnerId,
}

fn invalid(err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(err.to_string())
}

fn owner_agents_partition(owner: &OwnerId) -> String {
    format!("OWNER#{owner}#AGENTS")
}

fn agent_item(record: &AgentRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let agent = &record.agent;
    Stored::new(Key::agent(&agent.id), record)
        .gsi1(
            owner_agents_partition(&agent.owner_id),
            format!("AGENT#{}", agent.id),
        )
        .to_item()
}

/// A search row: the public profile, plus what routing decides on before it reads
/// the few agents it picks (the owner, for "never your own agent"; when it was last
/// seen, as epoch seconds a filter can compare).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRow {
    #[serde(flatten)]
    pub profile: PublicProfile,
    pub owner_id: OwnerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_epoch: Option<i64>,
}

/// Liveness is tracked in buckets of this many seconds: an agent's routing rows move
/// to the current bucket's partition when it is seen (at most every 30 s).
pub const ROUTE_BUCKET_SECONDS: i64 = 60;

/// The routing index partition of `category` for agents last seen in `bucket`.
pub fn route_partition(category: Category, bucket: i64) -> String {
    format!("ROUTE#{}#{bucket}", category.as_str())
}

fn last_seen_epoch(agent: &Agent) -> Option<i64> {
    agent
        .last_seen_at
        .as_deref()
        .and_then(aicity_domain::timestamps::parse)
        .map(|t| t.unix_timestamp())
}

/// The search rows an agent has: one per category plus the all-categories row, and
/// none at all unless it is active. A category row of an available agent that has
/// been seen is also in the routing index (GSI3 `ROUTE#<category>#<minute>`, best
/// score first), so routing reads only agents seen lately, a bounded number of them.
fn search_rows(agent: &Agent) -> Vec<(Key, Stored<SearchRow>)> {
    if agent.status != AgentStatus::Active {
        return Vec::new();
    }
    let sort = format!("{:04}#{}", agent.overall_score.min(9999), agent.id);
    let seen = last_seen_epoch(agent);
    let routable = agent.availability == Availability::Available;
    std::iter::once(None)
        .chain(agent.categories().map(Some))
        .map(|category| {
            let key = Key::agent_search_row(&agent.id, category);
            let partition = format!("CAT#{}", category.map_or("*", Category::as_str));
            let body = SearchRow {
                profile: agent.public(),
                owner_id: agent.owner_id,
                last_seen_epoch: seen,
            };
            let mut row = Stored::new(key.clone(), body).gsi2(partition, sort.clone());
            if let (Some(category), Some(seen), true) = (category, seen, routable) {
                row = row.gsi3(
                    route_partition(category, seen.div_euclid(ROUTE_BUCKET_SECONDS)),
                    sort.clone(),
                );
            }
            (key, row)
        })
        .collect()
}

fn put(
    table: &str,
    item: HashMap<String, AttributeValue>,
    condition: Option<(&str, HashMap<String, AttributeValue>)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut builder = Put::builder().table_name(table).set_item(Some(item));
    if let Some((expression, values)) = condition {
        builder = builder.condition_expression(expression);
        if !values.is_empty() {
            builder = builder.set_expression_attribute_values(Some(values));
        }
    }
    Ok(TransactWriteItem::builder()
        .put(builder.build().map_err(invalid)?)
        .build())
}

fn delete(table: &str, key: &Key, must_exist: bool) -> Result<TransactWriteItem, StoreError> {
    let mut builder = Delete::builder()
        .table_name(table)
        .set_key(Some(key.to_map()));
    if must_exist {
        builder = builder.condition_expression("attribute_exists(PK)");
    }
    Ok(TransactWriteItem::builder()
        .delete(builder.build().map_err(invalid)?)
        .build())
}

/// Changes the owner's active-agent count by `delta`; a +1 must stay within `max`.
fn owner_counter(
    table: &str,
    owner: &OwnerId,
    delta: i64,
    max: u32,
) -> Result<TransactWriteItem, StoreError> {
    let mut values = HashMap::from([
        (":delta".to_owned(), AttributeValue::N(delta.to_string())),
        (":zero".to_owned(), AttributeValue::N("0".into())),
    ]);
    let condition = if delta > 0 {
        values.insert(":max".to_owned(), AttributeValue::N(max.to_string()));
        "attribute_exists(PK) AND (attribute_not_exists(activeAgents) OR activeAgents < :max)"
    } else {
        "attribute_exists(PK)"
    };
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(Key::owner(owner).to_map()))
        .update_expression("SET activeAgents = if_not_exists(activeAgents, :zero) + :delta")
        .condition_expression(condition)
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(invalid)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Registers a new agent with its key. Past the owner's `max_active` agents the
/// `"owner"` item fails and nothing is written.
pub async fn register(
    client: &Client,
    table: &str,
    record: &AgentRecord,
    max_active: u32,
) -> Result<(), StoreError> {
    register_with(client, table, record, max_active, Vec::new()).await
}

/// [`register`], with `extra` items (e.g. its audit entry) in the same transaction.
pub async fn register_with(
    client: &Client,
    table: &str,
    record: &AgentRecord,
    max_active: u32,
    extra: Vec<(String, TransactWriteItem)>,
) -> Result<(), StoreError> {
    let agent = &record.agent;
    let pointer = KeyPointer {
        agent_id: agent.id,
        owner_id: agent.owner_id,
    };
    let not_exists = || Some(("attribute_not_exists(PK)", HashMap::new()));
    let mut transaction = Transaction::new();
    transaction
        .push("agent", put(table, agent_item(record)?, not_exists())?)
        .push(
            "apiKey",
            put(
                table,
                Stored::new(Key::api_key(&record.api_key_hash), pointer).to_item()?,
                not_exists(),
            )?,
        )
        .push(
            "owner",
            owner_counter(table, &agent.owner_id, 1, max_active)?,
        );
    for (_, row) in search_rows(agent) {
        transaction.push("search", put(table, row.to_item()?, None)?);
    }
    transaction.extend(extra);
    transaction.commit(client).await
}

pub async fn get(client: &Client, table: &str, id: &AgentId) -> Result<AgentRecord, StoreError> {
    crate::item::get(client, table, &Key::agent(id)).await
}

/// The agent a key belongs to, if the key is its current one.
pub async fn by_api_key(
    client: &Client,
    table: &str,
    key_hash: &str,
) -> Result<AgentRecord, StoreError> {
    let pointer: KeyPointer = crate::item::get(client, table, &Key::api_key(key_hash)).await?;
    let record = get(client, table, &pointer.agent_id).await?;
    // A rotation replaces the pointer and the hash together; checking both means an
    // old key can never authenticate, whatever order replicas see them in.
    if record.api_key_hash != key_hash {
        return Err(StoreError::NotFound);
    }
    Ok(record)
}

/// Every agent of an owner, oldest first.
pub async fn list_by_owner(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<Agent>, crate::paging::PageError> {
    let partition = owner_agents_partition(owner);
    let binding = crate::paging::Binding {
        list: format!("agents|{owner}"),
        names: crate::paging::GSI1_KEY,
        partition: Some((GSI1.pk, partition.clone())),
    };
    let query = || {
        client
            .query()
            .table_name(table)
            .index_name(GSI1.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1.pk)
            .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
    };
    let page: crate::paging::Listed<AgentRecord> =
        crate::paging::single(query, false, &binding, ask).await?;
    Ok(page.map(|r| r.agent))
}

/// The items that write `after` over `before` if nobody changed the agent in between
/// (else the `"agent"` item fails), keeping search rows, the key pointer and the owner's
/// counter in step. Returns the record as it will be.
pub fn save_items(
    table: &str,
    before: &AgentRecord,
    after: Agent,
    api_key_hash: Option<String>,
    max_active: u32,
) -> Result<(Vec<(String, TransactWriteItem)>, AgentRecord), StoreError> {
    let record = AgentRecord {
        agent: after,
        api_key_hash: api_key_hash.unwrap_or_else(|| before.api_key_hash.clone()),
        version: before.version + 1,
    };
    let mut items = vec![(
        "agent".to_owned(),
        put(
            table,
            agent_item(&record)?,
            Some((
                "version = :version",
                HashMap::from([(
                    ":version".to_owned(),
                    AttributeValue::N(before.version.to_string()),
                )]),
            )),
        )?,
    )];
    let was_active = before.agent.status == AgentStatus::Active;
    let is_active = record.agent.status == AgentStatus::Active;
    if was_active != is_active {
        let delta = if is_active { 1 } else { -1 };
        items.push((
            "owner".to_owned(),
            owner_counter(table, &record.agent.owner_id, delta, max_active)?,
        ));
    }
    if record.api_key_hash != before.api_key_hash {
        let pointer = KeyPointer {
            agent_id: record.agent.id,
            owner_id: record.agent.owner_id,
        };
        items.push((
            "oldApiKey".to_owned(),
            delete(table, &Key::api_key(&before.api_key_hash), true)?,
        ));
        items.push((
            "apiKey".to_owned(),
            put(
                table,
                Stored::new(Key::api_key(&record.api_key_hash), pointer).to_item()?,
                Some(("attribute_not_exists(PK)", HashMap::new())),
            )?,
        ));
    }
    // Search rows show the public profile; rewrite them only when it or the status changed.
    let visible_change = before.agent.public() != record.agent.public() || was_active != is_active;
    if visible_change {
        let new_rows = search_rows(&record.agent);
        let kept: BTreeSet<String> = new_rows.iter().map(|(key, _)| key.sk.clone()).collect();
        for (key, _) in search_rows(&before.agent) {
            if !kept.contains(&key.sk) {
                items.push(("search".to_owned(), delete(table, &key, false)?));
            }
        }
        for (_, row) in new_rows {
            items.push(("search".to_owned(), put(table, row.to_item()?, None)?));
        }
    }
    Ok((items, record))
}

/// [`save_items`], committed alone.
pub async fn save(
    client: &Client,
    table: &str,
    before: &AgentRecord,
    after: Agent,
    api_key_hash: Option<String>,
    max_active: u32,
) -> Result<AgentRecord, StoreError> {
    let (items, record) = save_items(table, before, after, api_key_hash, max_active)?;
    let mut transaction = Transaction::new();
    transaction.extend(items);
    transaction.commit(client).await?;
    Ok(record)
}

/// Records that the agent was seen at `now` (a poll for work or a heartbeat), unless
/// that was written less than `every` ago: polling costs no write per poll. The write
/// moves its routing rows to the current minute. Best effort: losing a race to a
/// lifecycle step is fine (the next poll writes). Whether it wrote.
pub async fn mark_seen(
    client: &Client,
    table: &str,
    record: &AgentRecord,
    now: time::OffsetDateTime,
    every: std::time::Duration,
) -> Result<bool, StoreError> {
    let fresh = record
        .agent
        .last_seen_at
        .as_deref()
        .and_then(aicity_domain::timestamps::parse)
        .is_some_and(|seen| now - seen < every);
    if fresh || record.agent.status != AgentStatus::Active {
        return Ok(false);
    }
    let mut next = record.agent.clone();
    next.last_seen_at = Some(aicity_domain::timestamps::format(now));
    match save(client, table, record, next, None, u32::MAX).await {
        Ok(_) => Ok(true),
        Err(err) if !err.failed_labels().is_empty() => Ok(false),
        Err(err) => Err(err),
    }
}

/// Routing candidates for `category`: agents seen since `cutoff` (epoch seconds) that
/// are available, best score first within each minute bucket — at most `per_bucket`
/// rows from each bucket since the cutoff, however many agents the category has. With
/// how many items were read.
pub async fn live_candidates(
    client: &Client,
    table: &str,
    category: Category,
    now: i64,
    cutoff: i64,
    per_bucket: i32,
) -> Result<(Vec<SearchRow>, usize), StoreError> {
    let mut rows = Vec::new();
    let mut read = 0;
    let (first, last) = (
        cutoff.div_euclid(ROUTE_BUCKET_SECONDS),
        now.div_euclid(ROUTE_BUCKET_SECONDS),
    );
    for bucket in (first..=last).rev() {
        let page = client
            .query()
            .table_name(table)
            .index_name(crate::schema::GSI3.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", crate::schema::GSI3.pk)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(route_partition(category, bucket)),
            )
            .scan_index_forward(false)
            .limit(per_bucket)
            .send()
            .await
            .map_err(StoreError::aws)?;
        for item in page.items.unwrap_or_default() {
            read += 1;
            let row = serde_dynamo::from_item::<_, Stored<SearchRow>>(item)?.body;
            if row.last_seen_epoch.is_some_and(|seen| seen >= cutoff) {
                rows.push(row);
            }
        }
    }
    Ok((rows, read))
}

/// Whether any active agent of another owner offers `category` at a price and tier
/// that fit `budget` (availability and load aside). Reads the category's search rows
/// best first, a page of 25 at a time, at most `max_pages` pages: bounded, whatever
/// the size of the market.
pub async fn someone_could_take(
    client: &Client,
    table: &str,
    category: Category,
    budget: aicity_domain::money::Cents,
    buyer: &OwnerId,
    max_pages: usize,
) -> Result<bool, StoreError> {
    let mut start = None;
    for _ in 0..max_pages {
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
            .limit(25)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::aws)?;
        for item in page.items.unwrap_or_default() {
            let row = serde_dynamo::from_item::<_, Stored<SearchRow>>(item)?.body;
            let price = row.profile.pricing.get(&category).copied();
            if row.owner_id != *buyer
                && price.is_some_and(|p| p <= budget)
                && budget <= aicity_domain::task::routing::tier_limit(row.profile.trust_tier)
            {
                return Ok(true);
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    Ok(false)
}

/// Several agents at once (missing ones are left out), e.g. routing candidates.
pub async fn get_many(
    client: &Client,
    table: &str,
    ids: &[AgentId],
) -> Result<Vec<AgentRecord>, StoreError> {
    let mut records = Vec::with_capacity(ids.len());
    // BatchGetItem takes 100 keys; unprocessed keys are retried.
    for chunk in ids.chunks(100) {
        let mut keys: Vec<HashMap<String, AttributeValue>> =
            chunk.iter().map(|id| Key::agent(id).to_map()).collect();
        while !keys.is_empty() {
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(invalid)?;
            let output = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(StoreError::aws)?;
            for item in output
                .responses
                .unwrap_or_default()
                .remove(table)
                .unwrap_or_default()
            {
                records.push(serde_dynamo::from_item::<_, Stored<AgentRecord>>(item)?.body);
            }
            keys = output
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
    }
    Ok(records)
}

/// Filters of `GET /agents/search`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    pub category: Option<Category>,
    pub availability: Option<Availability>,
    pub min_score: Option<u32>,
    pub framework: Option<Framework>,
    pub trust_tier: Option<TrustTier>,
    pub verification_status: Option<VerificationStatus>,
    /// Agents not seen since (epoch seconds) count as `offline` for `availability`.
    pub live_since: i64,
}

/// Active agents matching `filter`, best score first, and how many match in all.
///
/// One Query on GSI2 (the category's partition, or the all-categories one), the score
/// bound in the key condition, the rest as a filter expression.
pub async fn search(
    client: &Client,
    table: &str,
    filter: &SearchFilter,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<PublicProfile>, crate::paging::PageError> {
    let partition = format!("CAT#{}", filter.category.map_or("*", Category::as_str));
    // The cursor is bound to the whole query (a start key outside `minScore`'s range
    // would be refused by DynamoDB); the liveness cut moves with time and is left out.
    let binding = crate::paging::Binding {
        list: format!(
            "agents.search|{partition}|{}|{}|{}|{}|{}",
            filter
                .min_score
                .map_or_else(|| "*".to_owned(), |m| m.to_string()),
            filter.availability.map_or("*", Availability::as_str),
            filter.framework.map_or("*", Framework::as_str),
            filter.trust_tier.map_or("*", TrustTier::as_str),
            filter
                .verification_status
                .map_or("*", VerificationStatus::as_str),
        ),
        names: crate::paging::GSI2_KEY,
        partition: Some((GSI2.pk, partition.clone())),
    };
    let mut names = HashMap::from([("#pk".to_owned(), GSI2.pk.to_owned())]);
    let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(partition))]);
    let mut key_condition = "#pk = :pk".to_owned();
    if let Some(min) = filter.min_score {
        names.insert("#sk".to_owned(), GSI2.sk.to_owned());
        values.insert(
            ":min".to_owned(),
            AttributeValue::S(format!("{:04}", min.min(9999))),
        );
        key_condition.push_str(" AND #sk >= :min");
    }
    let mut filters = Vec::new();
    if let Some(availability) = filter.availability {
        // Availability as shown: what the agent says, but `offline` once unseen.
        names.insert("#availability".to_owned(), "availability".to_owned());
        names.insert("#seen".to_owned(), "lastSeenEpoch".to_owned());
        values.insert(
            ":availability".to_owned(),
            AttributeValue::S(availability.as_str().to_owned()),
        );
        values.insert(
            ":since".to_owned(),
            AttributeValue::N(filter.live_since.to_string()),
        );
        filters.push(match availability {
            Availability::Offline => {
                "(#availability = :availability OR attribute_not_exists(#seen) OR #seen < :since)"
            }
            _ => "(#availability = :availability AND #seen >= :since)",
        }.to_owned());
    }
    for (attribute, value) in [
        ("framework", filter.framework.map(Framework::as_str)),
        ("trustTier", filter.trust_tier.map(TrustTier::as_str)),
        (
            "verificationStatus",
            filter.verification_status.map(VerificationStatus::as_str),
        ),
    ] {
        if let Some(value) = value {
            names.insert(format!("#{attribute}"), attribute.to_owned());
            values.insert(format!(":{attribute}"), AttributeValue::S(value.to_owned()));
            filters.push(format!("#{attribute} = :{attribute}"));
        }
    }
    let filter_expression = (!filters.is_empty()).then(|| filters.join(" AND "));
    let query = || {
        client
            .query()
            .table_name(table)
            .index_name(GSI2.name)
            .key_condition_expression(&key_condition)
            .set_filter_expression(filter_expression.clone())
            .set_expression_attribute_names(Some(names.clone()))
            .set_expression_attribute_values(Some(values.clone()))
            .scan_index_forward(false)
    };
    crate::paging::single(query, filter_expression.is_some(), &binding, ask).await
}
