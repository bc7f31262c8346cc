//! Bounded, cursor-paged list reads.
//!
//! A list request reads at most about one page from DynamoDB (`Limit`, then
//! `ExclusiveStartKey` or a sort-key bound on the next request), never a whole
//! partition. Where a filter leaves few matches, a request stops after a bounded
//! number of reads and still hands back a cursor where it stopped.
//!
//! A cursor is opaque to clients: base64url of a small JSON naming the list it came
//! from (`l`), how many items came before the next page (`o`) and the key to resume
//! after (`k`). Decoding checks all three: only the expected key attribute names,
//! bounded lengths, the same list and the same partition, so a cursor can only move
//! along the list it was issued for.

use std::collections::{BTreeMap, HashMap};

use aicity_domain::ApiError;

#[cfg(test)]
use aicity_domain::ErrorCode;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::item::Stored;

/// How deep `page` may go without a cursor: `page × pageSize` at most this many items.
pub const MAX_WALK: u64 = 1000;
/// The longest cursor accepted, in characters.
pub const MAX_CURSOR_LEN: usize = 1024;
/// The longest key value a cursor may carry (DynamoDB's sort key limit).
const MAX_KEY_VALUE_LEN: usize = 1024;
/// Reads one source may make for one request (a filter may leave reads with few
/// matches); after that the page is returned as it is, with a cursor.
const MAX_READS: usize = 10;
/// What a filtered read evaluates at least (filters apply after `Limit`).
const FILTERED_READ_LIMIT: usize = 100;

/// `page`, `pageSize` and `cursor` of a list request (already range checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAsk {
    pub page: u32,
    pub page_size: u32,
    pub cursor: Option<String>,
}

impl PageAsk {
    pub fn new(page: u32, page_size: u32, cursor: Option<String>) -> Self {
        Self {
            page,
            page_size,
            cursor,
        }
    }

    /// Items before the asked page when walking by `page`.
    fn walk_offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.page_size)
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    /// The page number shown (from the cursor's offset when one was followed).
    pub page: u32,
    pub page_size: u32,
    /// Exact when `next_cursor` is `None` (this request saw the list's end); else a
    /// lower bound: the items up to this page and one more.
    pub total: u64,
    pub next_cursor: Option<String>,
}

impl<T> Listed<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            page_size: self.page_size,
            total: self.total,
            next_cursor: self.next_cursor,
        }
    }

    fn new(items: Vec<T>, offset: u64, page_size: u32, next_cursor: Option<String>) -> Self {
        let seen = offset + items.len() as u64;
        Self {
            page: u32::try_from(offset / u64::from(page_size.max(1)) + 1).unwrap_or(u32::MAX),
            page_size,
            total: if next_cursor.is_some() {
                seen + 1
            } else {
                seen
            },
            items,
            next_cursor,
        }
    }
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("bad cursor: {0}")]
    Cursor(&'static str),
    #[error("page too deep")]
    TooDeep,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PageError> for ApiError {
    fn from(err: PageError) -> Self {
        match err {
            PageError::Cursor(_) => {
                ApiError::invalid_field("cursor", "must be a nextCursor value of this same list")
            }
            PageError::TooDeep => ApiError::invalid_field(
                "page",
                format!(
                    "too deep to reach by number (page × pageSize at most {MAX_WALK}); \
                     follow pagination.nextCursor with the cursor parameter instead"
                ),
            ),
            PageError::Store(err) => err.into(),
        }
    }
}

/// What a cursor must match: the list it was issued for and, for key cursors, the
/// key attribute names and the partition attribute's value.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Names the list and its filters, e.g. `vault.entries|ACCOUNT#pool:own_1|*`.
    pub list: String,
    /// The key attribute names the cursor carries.
    pub names: &'static [&'static str],
    /// The partition attribute and the value every key must have.
    pub partition: Option<(&'static str, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    l: String,
    o: u64,
    k: BTreeMap<String, String>,
}

/// Encodes a cursor for `binding` resuming after `key`, `offset` items in.
pub fn encode(binding: &Binding, offset: u64, key: BTreeMap<String, String>) -> String {
    let payload = Payload {
        l: binding.list.clone(),
        o: offset,
        k: key,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default())
}

/// Decodes and checks a cursor: `(offset, key)`.
pub fn decode(raw: &str, binding: &Binding) -> Result<(u64, BTreeMap<String, String>), PageError> {
    if raw.is_empty() || raw.len() > MAX_CURSOR_LEN {
        return Err(PageError::Cursor("length"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.as_bytes())
        .map_err(|_| PageError::Cursor("encoding"))?;
    let payload: Payload =
        serde_json::from_slice(&bytes).map_err(|_| PageError::Cursor("payload"))?;
    if payload.l != binding.list {
        return Err(PageError::Cursor("another list"));
    }
    if payload.k.len() != binding.names.len()
        || !binding
            .names
            .iter()
            .all(|name| payload.k.contains_key(*name))
    {
        return Err(PageError::Cursor("key names"));
    }
    if payload
        .k
        .values()
        .any(|value| value.is_empty() || value.len() > MAX_KEY_VALUE_LEN)
    {
        return Err(PageError::Cursor("key value"));
    }
    if let Some((name, value)) = &binding.partition {
        if payload.k.get(*name) != Some(value) {
            return Err(PageError::Cursor("another partition"));
        }
    }
    if payload.o > u64::from(u32::MAX) {
        return Err(PageError::Cursor("offset"));
    }
    Ok((payload.o, payload.k))
}

type Item = HashMap<String, AttributeValue>;

fn key_of(item: &Item, names: &[&str]) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|name| match item.get(*name) {
            Some(AttributeValue::S(value)) => Some(((*name).to_owned(), value.clone())),
            _ => None,
        })
        .collect()
}

fn to_attributes(key: BTreeMap<String, String>) -> Item {
    key.into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect()
}

/// What one source read: items in order, and whether it read to the end.
struct Read {
    items: Vec<Item>,
    /// `None`: everything after the start was read. Else the key to resume after.
    resume: Option<Item>,
}

/// Reads up to `want` items of a query from `start`, with `Limit` on every read and
/// at most `MAX_READS` reads.
async fn read(
    query: &impl Fn() -> QueryFluentBuilder,
    filtered: bool,
    names: &[&str],
    mut start: Option<Item>,
    want: usize,
) -> Result<Read, StoreError> {
    let mut items: Vec<Item> = Vec::new();
    for _ in 0..MAX_READS {
        let needed = want - items.len();
        let limit = if filtered {
            needed.max(FILTERED_READ_LIMIT)
        } else {
            needed
        }
        .min(MAX_WALK as usize + 1);
        let output = query()
            .set_exclusive_start_key(start.take())
            .limit(limit as i32)
            .send()
            .await
            .map_err(StoreError::aws)?;
        items.extend(output.items.unwrap_or_default());
        start = output.last_evaluated_key;
        if items.len() >= want {
            let cut = items.len() > want;
            items.truncate(want);
            let resume = if cut || start.is_some() {
                items.last().map(|item| to_attributes(key_of(item, names)))
            } else {
                None
            };
            return Ok(Read { items, resume });
        }
        if start.is_none() {
            return Ok(Read {
                items,
                resume: None,
            });
        }
    }
    Ok(Read {
        items,
        resume: start,
    })
}

fn body<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item::<_, Stored<T>>(item)?.body)
}

/// One page of one query, resuming at the cursor's key (DynamoDB's
/// `LastEvaluatedKey` of the item shown last). `names` are the key attributes of
/// the table or index queried (`PK`, `SK`, and the index's two).
pub async fn single<T: DeserializeOwned>(
    query: impl Fn() -> QueryFluentBuilder,
    filtered: bool,
    binding: &Binding,
    ask: &PageAsk,
) -> Result<Listed<T>, PageError> {
    let (offset, skip, start) = match &ask.cursor {
        Some(raw) => {
            let (offset, key) = decode(raw, binding)?;
            (offset, 0, Some(to_attributes(key)))
        }
        None => {
            let offset = ask.walk_offset();
            if offset + u64::from(ask.page_size) > MAX_WALK {
                return Err(PageError::TooDeep);
            }
            (offset, offset as usize, None)
        }
    };
    let page_size = ask.page_size as usize;
    let read = read(&query, filtered, binding.names, start, skip + page_size + 1).await?;
    if read.items.len() < skip && read.resume.is_some() {
        return Err(PageError::TooDeep);
    }
    let mut rows = read.items.into_iter().skip(skip);
    let page: Vec<Item> = rows.by_ref().take(page_size).collect();
    let next_key = if rows.next().is_some() {
        page.last().map(|item| key_of(item, binding.names))
    } else {
        read.resume.map(|key| {
            key.iter()
                .filter_map(|(name, value)| match value {
                    AttributeValue::S(value) => Some((name.clone(), value.clone())),
                    _ => None,
                })
                .collect()
        })
    };
    let shown = page.len() as u64;
    let next_cursor = next_key.map(|key| encode(binding, offset + shown, key));
    let items = page.into_iter().map(body).collect::<Result<Vec<T>, _>>()?;
    Ok(Listed::new(items, offset, ask.page_size, next_cursor))
}

/// A source of newest-first ids as [`merged`] reads them.
pub type BoxedSource<'a> = IdSource<
    Box<
        dyn Fn(Option<&str>) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder
            + Send
            + Sync
            + 'a,
    >,
>;

/// The items of one index partition (before an id if given), newest first, only those
/// whose `agent.0` attribute is `agent.1` and in `status` if given.
pub fn newest_first<'a>(
    client: &'a aws_sdk_dynamodb::Client,
    table: &'a str,
    index: crate::schema::Gsi,
    partition: String,
    agent: Option<(&'static str, String)>,
    status: Option<&'static str>,
) -> BoxedSource<'a> {
    let mut filters = Vec::new();
    if agent.is_some() {
        filters.push("#agent = :agent");
    }
    if status.is_some() {
        filters.push("#status = :status");
    }
    let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
    let filtered = filter.is_some();
    IdSource {
        query: Box::new(move |before: Option<&str>| {
            let mut query = client
                .query()
                .table_name(table)
                .index_name(index.name)
                .expression_attribute_names("#pk", index.pk)
                .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
                .set_filter_expression(filter.clone())
                .scan_index_forward(false);
            query = match before {
                Some(before) => query
                    .key_condition_expression("#pk = :pk AND #sk < :before")
                    .expression_attribute_names("#sk", index.sk)
                    .expression_attribute_values(":before", AttributeValue::S(before.to_owned())),
                None => query.key_condition_expression("#pk = :pk"),
            };
            if let Some((attribute, agent)) = &agent {
                query = query
                    .expression_attribute_names("#agent", *attribute)
                    .expression_attribute_values(":agent", AttributeValue::S(agent.clone()));
            }
            if let Some(status) = status {
                query = query
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", AttributeValue::S(status.to_owned()));
            }
            query
        }),
        filtered,
        names: if index == crate::schema::GSI1 {
            GSI1_KEY
        } else {
            GSI2_KEY
        },
        id_attribute: index.sk,
    }
}

/// One source of a list merged by id, newest (greatest id) first.
pub struct IdSource<F> {
    /// The query for the items with ids before the argument (all with `None`); a
    /// bound that includes the id itself is fine, that item is left out.
    pub query: F,
    pub filtered: bool,
    /// The key attributes of the table or index queried.
    pub names: &'static [&'static str],
    /// The attribute whose value ends with the id (after the last `#`).
    pub id_attribute: &'static str,
}

fn id_in(item: &Item, attribute: &str) -> Option<String> {
    match item.get(attribute) {
        Some(AttributeValue::S(value)) => value.rsplit('#').next().map(str::to_owned),
        _ => None,
    }
}

/// One page of sources merged by id (ids sort by creation), greatest first. The
/// cursor is the last id shown (key `id`), checked by `valid_id`.
pub async fn merged<T: DeserializeOwned, F>(
    sources: &[IdSource<F>],
    binding: &Binding,
    valid_id: fn(&str) -> bool,
    ask: &PageAsk,
) -> Result<Listed<T>, PageError>
where
    F: Fn(Option<&str>) -> QueryFluentBuilder,
{
    let (offset, skip, before) = match &ask.cursor {
        Some(raw) => {
            let (offset, mut key) = decode(raw, binding)?;
            let id = key.remove("id").ok_or(PageError::Cursor("key names"))?;
            if !valid_id(&id) {
                return Err(PageError::Cursor("id"));
            }
            (offset, 0, Some(id))
        }
        None => {
            let offset = ask.walk_offset();
            if offset + u64::from(ask.page_size) > MAX_WALK {
                return Err(PageError::TooDeep);
            }
            (offset, offset as usize, None)
        }
    };
    let page_size = ask.page_size as usize;
    // One more for the lookahead, one more for a bound that includes `before`.
    let want = skip + page_size + 2;
    let reads = futures::future::try_join_all(sources.iter().map(|source| {
        let before = before.as_deref();
        async move {
            let query = || (source.query)(before);
            let read = read(&query, source.filtered, source.names, None, want).await?;
            let floor = read
                .resume
                .as_ref()
                .and_then(|key| id_in(key, source.id_attribute));
            let mut items = Vec::new();
            for item in read.items {
                let Some(id) = id_in(&item, source.id_attribute) else {
                    continue;
                };
                if Some(id.as_str()) != before {
                    items.push((id, item));
                }
            }
            Ok::<_, StoreError>((items, floor, read.resume.is_some()))
        }
    }))
    .await?;
    // What every source has read down to: below the highest such id, some source
    // may still hold items not read yet.
    let mut floor: Option<String> = None;
    let mut candidates = Vec::new();
    for (items, source_floor, more) in reads {
        if more {
            let source_floor = source_floor.unwrap_or_default();
            if floor.as_ref().is_none_or(|f| source_floor > *f) {
                floor = Some(source_floor);
            }
        }
        candidates.extend(items);
    }
    if let Some(floor) = &floor {
        candidates.retain(|(id, _)| id >= floor);
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0));
    candidates.dedup_by(|a, b| a.0 == b.0);
    if candidates.len() < skip && floor.is_some() {
        return Err(PageError::TooDeep);
    }
    let mut rows = candidates.into_iter().skip(skip);
    let page: Vec<(String, Item)> = rows.by_ref().take(page_size).collect();
    let next_id = if rows.next().is_some() {
        page.last().map(|(id, _)| id.clone())
    } else {
        floor.filter(|f| !f.is_empty())
    };
    let shown = page.len() as u64;
    let next_cursor = next_id.map(|id| {
        encode(
            binding,
            offset + shown,
            BTreeMap::from([("id".to_owned(), id)]),
        )
    });
    let items = page
        .into_iter()
        .map(|(_, item)| body(item))
        .collect::<Result<Vec<T>, _>>()?;
    Ok(Listed::new(items, offset, ask.page_size, next_cursor))
}

/// The key names of the table and of each index.
pub const TABLE_KEY: &[&str] = &["PK", "SK"];
pub const GSI1_KEY: &[&str] = &["PK", "SK", "GSI1PK", "GSI1SK"];
pub const GSI2_KEY: &[&str] = &["PK", "SK", "GSI2PK", "GSI2SK"];
pub const GSI3_KEY: &[&str] = &["PK", "SK", "GSI3PK", "GSI3SK"];

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            list: "vault.entries|own_1|*".into(),
            names: TABLE_KEY,
            partition: Some(("PK", "ACCOUNT#pool:own_1".into())),
        }
    }

    fn key(pk: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("PK".to_owned(), pk.to_owned()),
            ("SK".to_owned(), "ENTRY#01J".to_owned()),
        ])
    }

    #[test]
    fn a_cursor_round_trips() {
        let cursor = encode(&binding(), 40, key("ACCOUNT#pool:own_1"));
        assert!(!cursor.contains('='), "unpadded base64url: {cursor}");
        assert!(
            cursor
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let (offset, decoded) = decode(&cursor, &binding()).unwrap();
        assert_eq!(offset, 40);
        assert_eq!(decoded, key("ACCOUNT#pool:own_1"));
    }

    #[test]
    fn a_cursor_of_another_partition_or_list_is_refused() {
        let other = encode(&binding(), 20, key("ACCOUNT#pool:own_2"));
        assert!(matches!(
            decode(&other, &binding()),
            Err(PageError::Cursor("another partition"))
        ));
        let mut elsewhere = binding();
        elsewhere.list = "vault.entries|own_1|topup".into();
        let cursor = encode(&elsewhere, 20, key("ACCOUNT#pool:own_1"));
        assert!(matches!(
            decode(&cursor, &binding()),
            Err(PageError::Cursor("another list"))
        ));
    }

    #[test]
    fn tampered_cursors_are_refused() {
        let good = encode(&binding(), 20, key("ACCOUNT#pool:own_1"));
        for bad in [
            String::new(),
            "not base64!".to_owned(),
            "x".repeat(MAX_CURSOR_LEN + 1),
            format!("{good}A"),
            URL_SAFE_NO_PAD.encode(b"[1,2]"),
            URL_SAFE_NO_PAD.encode(
                br#"{"l":"vault.entries|own_1|*","o":0,"k":{"PK":"ACCOUNT#pool:own_1"}}"#,
            ),
            URL_SAFE_NO_PAD.encode(
                br#"{"l":"vault.entries|own_1|*","o":0,"k":{"PK":"ACCOUNT#pool:own_1","SK":"E","GSI1PK":"X"}}"#,
            ),
            URL_SAFE_NO_PAD.encode(
                br#"{"l":"vault.entries|own_1|*","o":0,"k":{"PK":"ACCOUNT#pool:own_1","SK":""}}"#,
            ),
            URL_SAFE_NO_PAD.encode(
                br#"{"l":"vault.entries|own_1|*","o":0,"k":{"PK":"ACCOUNT#pool:own_1","SK":1}}"#,
            ),
            URL_SAFE_NO_PAD.encode(
                br#"{"l":"vault.entries|own_1|*","o":0,"k":{"PK":"ACCOUNT#pool:own_1","SK":"E"},"x":1}"#,
            ),
            URL_SAFE_NO_PAD.encode(
                br#"{"l":"vault.entries|own_1|*","o":99999999999,"k":{"PK":"ACCOUNT#pool:own_1","SK":"E"}}"#,
            ),
        ] {
            assert!(
                matches!(decode(&bad, &binding()), Err(PageError::Cursor(_))),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn a_bad_cursor_is_a_validation_error_naming_cursor() {
        let err: ApiError = PageError::Cursor("encoding").into();
        assert_eq!(err.code, ErrorCode::ValidationError);
        assert_eq!(err.details.unwrap()["fields"][0]["field"], "cursor");
        let err: ApiError = PageError::TooDeep.into();
        assert_eq!(err.code, ErrorCode::ValidationError);
        assert_eq!(err.details.unwrap()["fields"][0]["field"], "page");
    }

    #[test]
    fn totals_are_exact_at_the_end_and_a_lower_bound_before() {
        let last: Listed<u8> = Listed::new(vec![1, 2, 3], 40, 20, None);
        assert_eq!((last.page, last.total), (3, 43));
        let middle: Listed<u8> = Listed::new(vec![0; 20], 20, 20, Some("c".into()));
        assert_eq!((middle.page, middle.total), (2, 41));
    }
}
