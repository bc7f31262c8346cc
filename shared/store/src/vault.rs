//! The ledger on DynamoDB: balances live on the pool, wallet and revenue items; every
//! operation writes its transfers (two ledger rows each), the balance changes (with
//! conditions that keep every balance but the external one non-negative) and the
//! hold's state change in one `TransactWriteItems`.
//!
//! Operations return their labelled items so a caller can add them to its own
//! transaction (a task's status change and its money move together), or commit them
//! alone. Each is idempotent by its id: a hold is keyed by its task and changes state
//! only from the state it expects, so a replay is cancelled and changes nothing.

use std::collections::{BTreeMap, HashMap};

use aicity_domain::embassy::AuditEntry;
use aicity_domain::ids::{AgentId, HoldId, OwnerId, PoolId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::vault::AutoTopUp;
use aicity_domain::vault::ledger::{self, Account, Transfer, TransferKind};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::item::Stored;
use crate::transact::Transaction;
use crate::transition::Transition;
use crate::{Key, StoreError};
use aicity_domain::timestamps;

pub type Labeled = (String, TransactWriteItem);
type Item = HashMap<String, AttributeValue>;

fn invalid(err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(err.to_string())
}

pub fn pool_key(owner: &OwnerId) -> Key {
    Key::new(format!("OWNER#{owner}"), "POOL")
}

pub fn wallet_key(agent: &AgentId) -> Key {
    Key::new(format!("AGENT#{agent}"), "WALLET")
}

pub fn revenue_key(shard: u8) -> Key {
    Key::new(format!("REVENUE#{shard:02}"), "REVENUE")
}

pub fn hold_key(task: &TaskId) -> Key {
    Key::new(format!("HOLD#{task}"), "HOLD")
}

/// The owner's pool as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    pub id: PoolId,
    pub owner_id: OwnerId,
    /// available + held.
    pub balance: Cents,
    pub held: Cents,
    pub available: Cents,
    #[serde(default)]
    pub auto_top_up: AutoTopUp,
    /// Minus everything ever paid in: it changes with every credited top-up, so it
    /// names the state an auto top-up refills (internal, not shown).
    #[serde(default, skip_serializing)]
    pub external_balance: Cents,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    pub agent_id: AgentId,
    pub available: Cents,
    pub pending_escrow: Cents,
    pub lifetime_earned: Cents,
    /// Earnings frozen by open disputes.
    #[serde(default)]
    pub frozen: Cents,
    /// What the agent owes (disputed earnings its wallet could not give back); its
    /// next earnings repay this first.
    #[serde(default)]
    pub shortfall: Cents,
    /// While it owes anything, transfers from it and allocations to it are refused
    /// (`403 WALLET_UNDER_REVIEW`).
    #[serde(default)]
    pub under_review: bool,
}

/// Where a task's money is:
/// `pending → posted → released | reversed`, or `pending → voided`; a dispute freezes
/// a posted or released earning (`→ frozen`) until its ruling releases it
/// (`frozen → released`, also after a partial refund) or refunds it (`frozen → reversed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Pending,
    Posted,
    Voided,
    Released,
    Reversed,
    Frozen,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Pending => "pending",
            HoldStatus::Posted => "posted",
            HoldStatus::Voided => "voided",
            HoldStatus::Released => "released",
            HoldStatus::Reversed => "reversed",
            HoldStatus::Frozen => "frozen",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub id: HoldId,
    pub task_id: TaskId,
    pub owner_id: OwnerId,
    pub amount: Cents,
    pub status: HoldStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default)]
    pub charged: Cents,
    #[serde(default)]
    pub earning: Cents,
    #[serde(default)]
    pub fee: Cents,
    /// Given back to the buyer by a dispute's ruling.
    #[serde(default)]
    pub refunded: Cents,
    pub created_at: String,
    pub updated_at: String,
}

/// One side of a transfer, as listed by `GET /vault/transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: TransferKind,
    /// Signed, from this account's side: + in, − out.
    pub amount: Cents,
    pub account: String,
    pub counterparty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    pub created_at: String,
}

/// The item and attribute holding an account's balance.
fn location(account: &Account) -> (Key, &'static str) {
    match account {
        Account::External(owner) => (pool_key(owner), "externalBalance"),
        Account::Pool(owner) => (pool_key(owner), "available"),
        Account::Hold(owner, _) => (pool_key(owner), "held"),
        Account::Escrow(agent) => (wallet_key(agent), "pendingEscrow"),
        Account::Wallet(agent) => (wallet_key(agent), "available"),
        Account::Revenue(shard) => (revenue_key(*shard), "balance"),
        Account::Frozen(agent) => (wallet_key(agent), "frozen"),
        Account::Shortfall(agent) => (wallet_key(agent), "shortfall"),
    }
}

/// The transaction label of the item holding an account's balance.
fn label(account: &Account) -> String {
    match account {
        Account::External(o) | Account::Pool(o) | Account::Hold(o, _) => format!("pool:{o}"),
        Account::Escrow(a) | Account::Wallet(a) | Account::Frozen(a) | Account::Shortfall(a) => {
            format!("wallet:{a}")
        }
        Account::Revenue(s) => format!("revenue:{s}"),
    }
}

/// A wallet under review (it owes a shortfall) may not send a transfer nor take an
/// allocation: the owner cannot move money around a debt its earnings must repay.
fn under_review_guarded(t: &Transfer) -> Option<Account> {
    match t.kind {
        TransferKind::WalletTransfer => Some(t.from),
        TransferKind::Allocation => Some(t.to),
        _ => None,
    }
}

/// What identifies an item that has balances, for creating it on first use.
fn identity_fields(account: &Account) -> Vec<(&'static str, AttributeValue)> {
    match account {
        Account::External(owner) | Account::Pool(owner) | Account::Hold(owner, _) => vec![
            ("ownerId", AttributeValue::S(owner.to_string())),
            ("id", AttributeValue::S(PoolId::new().to_string())),
        ],
        Account::Escrow(agent)
        | Account::Wallet(agent)
        | Account::Frozen(agent)
        | Account::Shortfall(agent) => {
            vec![("agentId", AttributeValue::S(agent.to_string()))]
        }
        Account::Revenue(shard) => vec![("shard", AttributeValue::N(shard.to_string()))],
    }
}

/// The balance changes of `transfers` as one conditional update per item, plus the two
/// ledger rows of each transfer. Labels: `"pool:<owner>"`, `"wallet:<agent>"`, ….
pub fn transfer_items(
    table: &str,
    transfers: &[Transfer],
    task: Option<&TaskId>,
    now: OffsetDateTime,
) -> Result<Vec<Labeled>, StoreError> {
    let mut items = balance_items(table, transfers, now)?;
    items.extend(entry_items(table, transfers, task, now)?);
    Ok(items)
}

/// The balance changes of `transfers`: one conditional update per item touched.
fn balance_items(
    table: &str,
    transfers: &[Transfer],
    now: OffsetDateTime,
) -> Result<Vec<Labeled>, StoreError> {
    // (item key) → (label, attribute deltas, minimum-balance needs, identity)
    struct Change {
        label: String,
        deltas: BTreeMap<&'static str, i64>,
        debits: BTreeMap<&'static str, i64>,
        /// Debt attributes: their net change may not take them above zero.
        debts: std::collections::BTreeSet<&'static str>,
        not_under_review: bool,
        identity: Vec<(&'static str, AttributeValue)>,
    }
    let mut changes: BTreeMap<(String, String), Change> = BTreeMap::new();
    let mut add = |account: &Account, delta: i64, guarded: bool| {
        let (key, attribute) = location(account);
        let change = changes.entry((key.pk, key.sk)).or_insert_with(|| Change {
            label: label(account),
            deltas: BTreeMap::new(),
            debits: BTreeMap::new(),
            debts: Default::default(),
            not_under_review: false,
            identity: identity_fields(account),
        });
        *change.deltas.entry(attribute).or_insert(0) += delta;
        change.not_under_review |= guarded;
        if account.is_debt() {
            change.debts.insert(attribute);
        }
        if delta < 0 && !account.may_go_negative() {
            *change.debits.entry(attribute).or_insert(0) += -delta;
        }
        // The pool shows `balance` = available + held.
        if matches!(account, Account::Pool(_) | Account::Hold(..)) {
            *change.deltas.entry("balance").or_insert(0) += delta;
        }
    };
    for t in transfers {
        if !t.amount.is_positive() {
            return Err(invalid("transfers must move a positive amount"));
        }
        let guarded = under_review_guarded(t);
        add(&t.from, -t.amount.get(), guarded == Some(t.from));
        add(&t.to, t.amount.get(), guarded == Some(t.to));
    }
    let mut items: Vec<Labeled> = Vec::new();
    for ((pk, sk), mut change) in changes {
        for (agent, delta) in transfers.iter().filter_map(ledger::earned_change) {
            if wallet_key(&agent).pk == pk {
                *change.deltas.entry("lifetimeEarned").or_insert(0) += delta;
            }
        }
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        for (i, (attribute, delta)) in change.deltas.iter().enumerate() {
            names.insert(format!("#a{i}"), (*attribute).to_owned());
            values.insert(format!(":d{i}"), AttributeValue::N(delta.to_string()));
            adds.push(format!("#a{i} :d{i}"));
        }
        let mut sets = vec!["#updatedAt = :now".to_owned()];
        names.insert("#updatedAt".to_owned(), "updatedAt".to_owned());
        values.insert(
            ":now".to_owned(),
            AttributeValue::S(timestamps::format(now)),
        );
        for (i, (attribute, value)) in change.identity.iter().enumerate() {
            names.insert(format!("#i{i}"), (*attribute).to_owned());
            values.insert(format!(":i{i}"), value.clone());
            sets.push(format!("#i{i} = if_not_exists(#i{i}, :i{i})"));
        }
        let mut conditions = Vec::new();
        for (i, (attribute, need)) in change.debits.iter().enumerate() {
            names.insert(format!("#c{i}"), (*attribute).to_owned());
            values.insert(format!(":c{i}"), AttributeValue::N(need.to_string()));
            conditions.push(format!("(attribute_exists(#c{i}) AND #c{i} >= :c{i})"));
        }
        // A repayment never takes a debt above zero (two racing repayments of one
        // shortfall: the second fails and re-reads what is owed).
        for (i, attribute) in change.debts.iter().enumerate() {
            let delta = change.deltas.get(attribute).copied().unwrap_or(0);
            if delta > 0 {
                names.insert(format!("#d{i}"), (*attribute).to_owned());
                values.insert(
                    format!(":ceiling{i}"),
                    AttributeValue::N((-delta).to_string()),
                );
                conditions.push(format!(
                    "(attribute_exists(#d{i}) AND #d{i} <= :ceiling{i})"
                ));
            }
        }
        if change.not_under_review {
            names.insert("#review".to_owned(), "shortfall".to_owned());
            values.insert(":nothing".to_owned(), AttributeValue::N("0".to_owned()));
            conditions.push("(attribute_not_exists(#review) OR #review >= :nothing)".to_owned());
        }
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(Key::new(pk, sk).to_map()))
            .update_expression(format!("SET {} ADD {}", sets.join(", "), adds.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if !conditions.is_empty() {
            update = update.condition_expression(conditions.join(" AND "));
        }
        items.push((
            change.label,
            TransactWriteItem::builder()
                .update(update.build().map_err(invalid)?)
                .build(),
        ));
    }
    Ok(items)
}

/// The two ledger rows (one per side) of each transfer, naming `task`.
fn entry_items(
    table: &str,
    transfers: &[Transfer],
    task: Option<&TaskId>,
    now: OffsetDateTime,
) -> Result<Vec<Labeled>, StoreError> {
    let mut items = Vec::new();
    let created_at = timestamps::format(now);
    for t in transfers {
        let id = ulid::Ulid::generate().to_string();
        for (account, other, sign) in [(&t.from, &t.to, -1), (&t.to, &t.from, 1)] {
            let entry = Entry {
                id: format!("txn_{id}"),
                kind: t.kind,
                amount: Cents(sign * t.amount.get()),
                account: account.name(),
                counterparty: other.name(),
                task_id: task.copied(),
                created_at: created_at.clone(),
            };
            let key = Key::new(format!("ACCOUNT#{}", account.name()), format!("ENTRY#{id}"));
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(Stored::new(key, entry).to_item()?))
                .build()
                .map_err(invalid)?;
            items.push((
                "entry".to_owned(),
                TransactWriteItem::builder().put(put).build(),
            ));
        }
    }
    Ok(items)
}

fn put_new(table: &str, item: Item, label: &str) -> Result<Labeled, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(invalid)?;
    Ok((
        label.to_owned(),
        TransactWriteItem::builder().put(put).build(),
    ))
}

/// What went wrong with a money operation, in the caller's terms.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// An account lacked funds: which one, what was needed, what it had.
    #[error("{account} needs {required}, has {available}")]
    Insufficient {
        account: String,
        required: Cents,
        available: Cents,
    },
    /// The wallet owes a shortfall from a dispute: no transfer from it, no allocation
    /// to it, until its earnings repay it.
    #[error("wallet of {agent} is under review")]
    UnderReview { agent: AgentId },
    /// The operation already happened (a replay): nothing changed.
    #[error("already done")]
    AlreadyDone,
    /// The hold is not in the state this operation starts from.
    #[error("hold is {0:?}")]
    WrongState(Option<HoldStatus>),
    #[error("invalid amount: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ledger::LedgerError> for VaultError {
    fn from(err: ledger::LedgerError) -> Self {
        VaultError::Invalid(err.to_string())
    }
}

fn number(item: &Item, attribute: &str) -> i64 {
    item.get(attribute)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Explains a cancelled money transaction: which balance was short, by the labels and
/// the old items DynamoDB returns.
pub fn explain(err: StoreError, transfers: &[Transfer]) -> VaultError {
    let StoreError::TransactionCancelled { failed } = &err else {
        return VaultError::Store(err);
    };
    // A guarded wallet that owes something: under review, whatever else failed.
    for failure in failed.iter().filter(|f| f.code == "ConditionalCheckFailed") {
        let owes = failure
            .item
            .as_ref()
            .is_some_and(|item| number(item, "shortfall") < 0);
        let guarded = transfers
            .iter()
            .filter_map(under_review_guarded)
            .find(|account| label(account) == failure.label);
        if let (true, Some(Account::Wallet(agent))) = (owes, guarded) {
            return VaultError::UnderReview { agent };
        }
    }
    // Only a failed condition says "too low"; contention is retried in the commit and
    // never reaches here as a shortfall.
    for failure in failed.iter().filter(|f| f.code == "ConditionalCheckFailed") {
        let Some(account) = transfers
            .iter()
            .map(|t| t.from)
            .find(|a| label(a) == failure.label && !a.may_go_negative())
        else {
            continue;
        };
        let (_, attribute) = location(&account);
        let required: i64 = transfers
            .iter()
            .filter(|t| location(&t.from) == location(&account))
            .map(|t| t.amount.get())
            .sum();
        let available = failure
            .item
            .as_ref()
            .map_or(0, |item| number(item, attribute));
        return VaultError::Insufficient {
            account: account.name(),
            required: Cents(required),
            available: Cents(available),
        };
    }
    VaultError::Store(err)
}

// ---- reads -------------------------------------------------------------------------

/// Attributes a pool item has once [`pool`] created it.
const POOL_ATTRIBUTES: [&str; 6] = [
    "id",
    "ownerId",
    "available",
    "held",
    "balance",
    "externalBalance",
];

/// The owner's pool, created empty on first read.
///
/// A consistent read first: a pool that exists is not written (a write per read cost a
/// write unit, and a plain write to an item a transaction holds fails with
/// `TransactionConflict`, which nothing retries). Only a missing pool, or one a
/// transaction started without these attributes, takes the creating update.
pub async fn pool(client: &Client, table: &str, owner: &OwnerId) -> Result<Pool, StoreError> {
    let key = pool_key(owner);
    // Boxed: the SDK's futures are large, and this one sits deep in submit's (a debug
    // build's worker stack overflowed without it).
    let existing = Box::pin(
        client
            .get_item()
            .table_name(table)
            .set_key(Some(key.to_map()))
            .consistent_read(true)
            .send(),
    )
    .await
    .map_err(StoreError::aws)?
    .item;
    if let Some(item) = existing
        && POOL_ATTRIBUTES.iter().all(|a| item.contains_key(*a))
    {
        return Ok(serde_dynamo::from_item(item)?);
    }
    let output = client
        .update_item()
        .table_name(table)
        .set_key(Some(key.to_map()))
        .update_expression(
            "SET #id = if_not_exists(#id, :id), #owner = if_not_exists(#owner, :owner), \
             #available = if_not_exists(#available, :zero), #held = if_not_exists(#held, :zero), \
             #balance = if_not_exists(#balance, :zero), #external = if_not_exists(#external, :zero)",
        )
        .expression_attribute_names("#id", "id")
        .expression_attribute_names("#owner", "ownerId")
        .expression_attribute_names("#available", "available")
        .expression_attribute_names("#held", "held")
        .expression_attribute_names("#balance", "balance")
        .expression_attribute_names("#external", "externalBalance")
        .expression_attribute_values(":id", AttributeValue::S(PoolId::new().to_string()))
        .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send();
    let output = Box::pin(output).await.map_err(StoreError::aws)?;
    let item = output.attributes.unwrap_or_default();
    Ok(serde_dynamo::from_item(item)?)
}

pub async fn set_auto_top_up(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    rule: &AutoTopUp,
) -> Result<Pool, StoreError> {
    set_auto_top_up_with(client, table, owner, rule, |_| Ok(Vec::new())).await
}

/// [`set_auto_top_up`], with the items `extra` builds from the pool as it was (e.g.
/// the change's audit entry) in the same transaction. The pool as it is after.
pub async fn set_auto_top_up_with(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    rule: &AutoTopUp,
    extra: impl FnOnce(&Pool) -> Result<Vec<Labeled>, StoreError>,
) -> Result<Pool, StoreError> {
    let before = pool(client, table, owner).await?;
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(pool_key(owner).to_map()))
        .update_expression("SET #rule = :rule")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_names("#rule", "autoTopUp")
        .expression_attribute_values(":rule", AttributeValue::M(serde_dynamo::to_item(rule)?))
        .build()
        .map_err(invalid)?;
    let mut transaction = Transaction::new();
    transaction
        .push("pool", TransactWriteItem::builder().update(update).build())
        .extend(extra(&before)?);
    transaction.commit(client).await?;
    pool(client, table, owner).await
}

pub async fn wallet(client: &Client, table: &str, agent: &AgentId) -> Result<Wallet, StoreError> {
    let item = client
        .get_item()
        .table_name(table)
        .set_key(Some(wallet_key(agent).to_map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(StoreError::aws)?
        .item
        .unwrap_or_default();
    let owed = -number(&item, "shortfall");
    Ok(Wallet {
        agent_id: *agent,
        available: Cents(number(&item, "available")),
        pending_escrow: Cents(number(&item, "pendingEscrow")),
        lifetime_earned: Cents(number(&item, "lifetimeEarned")),
        frozen: Cents(number(&item, "frozen")),
        shortfall: Cents(owed),
        under_review: owed > 0,
    })
}

pub async fn revenue(client: &Client, table: &str) -> Result<Cents, StoreError> {
    let mut total = 0;
    for shard in 0..ledger::REVENUE_SHARDS {
        let item = client
            .get_item()
            .table_name(table)
            .set_key(Some(revenue_key(shard).to_map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::aws)?
            .item
            .unwrap_or_default();
        total += number(&item, "balance");
    }
    Ok(Cents(total))
}

pub async fn hold(client: &Client, table: &str, task: &TaskId) -> Result<Hold, StoreError> {
    crate::item::get(client, table, &hold_key(task)).await
}

/// A page of one account's entries, newest first, optionally of one kind.
pub async fn entries(
    client: &Client,
    table: &str,
    account: &Account,
    kind: Option<TransferKind>,
    ask: &crate::paging::PageAsk,
) -> Result<crate::paging::Listed<Entry>, crate::paging::PageError> {
    let partition = format!("ACCOUNT#{}", account.name());
    let binding = crate::paging::Binding {
        list: format!(
            "vault.entries|{}|{}",
            account.name(),
            kind.map_or("*", TransferKind::as_str)
        ),
        names: crate::paging::TABLE_KEY,
        partition: Some(("PK", partition.clone())),
    };
    let query = || {
        let query = client
            .query()
            .table_name(table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :entry)")
            .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
            .expression_attribute_values(":entry", AttributeValue::S("ENTRY#".into()))
            .scan_index_forward(false);
        match kind {
            Some(kind) => query
                .filter_expression("#type = :type")
                .expression_attribute_names("#type", "type")
                .expression_attribute_values(":type", AttributeValue::S(kind.as_str().into())),
            None => query,
        }
    };
    crate::paging::single(query, kind.is_some(), &binding, ask).await
}

// ---- operations ----------------------------------------------------------------------

/// Commits a money operation alone, explaining failures.
async fn commit(
    client: &Client,
    items: Vec<Labeled>,
    transfers: &[Transfer],
) -> Result<(), VaultError> {
    let mut transaction = Transaction::new();
    transaction.extend(items);
    transaction
        .commit(client)
        .await
        .map_err(|err| explain(err, transfers))
}

/// Credits a charged payment intent to the pool: the transfer, the intent's
/// `pending → credited` and the credit's audit entry in one transaction, so a second
/// credit is cancelled on the intent (label `"intent"`) and writes no second entry.
pub fn top_up_items(
    table: &str,
    owner: &OwnerId,
    amount: Cents,
    intent_key: &str,
    charge_id: &str,
    audit: &AuditEntry,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let transfers = ledger::top_up(*owner, amount)?;
    let mut items = transfer_items(table, &transfers, None, now)?;
    items.push(crate::payment_intents::credit_item(
        table, intent_key, charge_id, now,
    )?);
    items.push(crate::embassy::audit_item(table, audit)?);
    Ok((items, transfers))
}

/// Credits the charge of the intent `intent_key` once; a repeat is `AlreadyDone`. The
/// credit writes the audit entry the intent names ([`Intent::credit_entry`]): however
/// late and by whom it is credited (the request, its retry, the sweeper), the entry is
/// written exactly once, with the credit.
///
/// [`Intent::credit_entry`]: crate::payment_intents::Intent::credit_entry
pub async fn top_up(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    amount: Cents,
    intent_key: &str,
    charge_id: &str,
    now: OffsetDateTime,
) -> Result<(), VaultError> {
    let pool = pool(client, table, owner).await?;
    let intent = match crate::payment_intents::get(client, table, intent_key).await {
        Ok(intent) => intent,
        // Declined and forgotten: there is nothing to credit.
        Err(StoreError::NotFound) => return Err(VaultError::AlreadyDone),
        Err(err) => return Err(err.into()),
    };
    let audit = intent.credit_entry(&pool.id, amount, charge_id, now);
    let (items, transfers) =
        top_up_items(table, owner, amount, intent_key, charge_id, &audit, now)?;
    match commit(client, items, &transfers).await {
        Err(VaultError::Store(err)) if err.failed_labels() == ["intent"] => {
            Err(VaultError::AlreadyDone)
        }
        other => other,
    }
}

/// Reserves `amount` of the owner's pool for `task` (pending). One hold per task.
pub fn hold_items(
    table: &str,
    owner: &OwnerId,
    task: &TaskId,
    amount: Cents,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let transfers = ledger::hold(*owner, *task, amount)?;
    let mut items = transfer_items(table, &transfers, Some(task), now)?;
    items.push(put_new(
        table,
        Stored::new(hold_key(task), new_hold(owner, task, amount, now)).to_item()?,
        "hold",
    )?);
    Ok((items, transfers))
}

/// A hold transition as a transaction item: only from `from`, setting `set`.
fn hold_transition(
    table: &str,
    task: &TaskId,
    from: HoldStatus,
    to: HoldStatus,
    set: Vec<(&str, AttributeValue)>,
    now: OffsetDateTime,
) -> Result<Labeled, StoreError> {
    let mut transition = Transition::new(hold_key(task), from.as_str(), to.as_str())
        .set("updatedAt", AttributeValue::S(timestamps::format(now)));
    for (attribute, value) in set {
        transition = transition.set(attribute, value);
    }
    Ok(("hold".to_owned(), transition.to_transact_item(table)?))
}

/// The failure of a hold transition, read back: a replay or a wrong state.
async fn hold_failure(client: &Client, table: &str, task: &TaskId, done: HoldStatus) -> VaultError {
    match hold(client, table, task).await {
        Ok(h) if h.status == done => VaultError::AlreadyDone,
        Ok(h) => VaultError::WrongState(Some(h.status)),
        Err(StoreError::NotFound) => VaultError::WrongState(None),
        Err(err) => VaultError::Store(err),
    }
}

/// Holds for several tasks of one owner in one transaction (a workflow's steps): one
/// update of the pool for the sum (a transaction may touch an item only once), each
/// task's own hold record and ledger rows, so each hold ends exactly once on its own.
pub fn holds_items(
    table: &str,
    owner: &OwnerId,
    holds: &[(TaskId, Cents)],
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let mut all = Vec::new();
    let mut items = Vec::new();
    for (task, amount) in holds {
        let transfers = ledger::hold(*owner, *task, *amount)?;
        items.extend(entry_items(table, &transfers, Some(task), now)?);
        items.push(put_new(
            table,
            Stored::new(hold_key(task), new_hold(owner, task, *amount, now)).to_item()?,
            "hold",
        )?);
        all.extend(transfers);
    }
    let mut balances = balance_items(table, &all, now)?;
    balances.extend(items);
    Ok((balances, all))
}

fn new_hold(owner: &OwnerId, task: &TaskId, amount: Cents, now: OffsetDateTime) -> Hold {
    Hold {
        id: HoldId::new(),
        task_id: *task,
        owner_id: *owner,
        amount,
        status: HoldStatus::Pending,
        agent_id: None,
        charged: Cents::ZERO,
        earning: Cents::ZERO,
        fee: Cents::ZERO,
        refunded: Cents::ZERO,
        created_at: timestamps::format(now),
        updated_at: timestamps::format(now),
    }
}

pub async fn place_hold(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    task: &TaskId,
    amount: Cents,
    now: OffsetDateTime,
) -> Result<(), VaultError> {
    pool(client, table, owner).await?;
    let (items, transfers) = hold_items(table, owner, task, amount, now)?;
    let mut transaction = Transaction::new();
    transaction.extend(items);
    match transaction.commit(client).await {
        Ok(()) => Ok(()),
        Err(err) if err.failed_labels().contains(&"hold") => {
            Err(hold_failure(client, table, task, HoldStatus::Pending).await)
        }
        Err(err) => Err(explain(err, &transfers)),
    }
}

/// Ends a pending hold by charging `charge` for `agent`'s work.
pub fn post_items(
    table: &str,
    held: &Hold,
    agent: &AgentId,
    charge: Cents,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let transfers = ledger::post(held.owner_id, held.task_id, *agent, held.amount, charge)?;
    let (earning, fee) = charge
        .split_charge()
        .ok_or_else(|| VaultError::Invalid("negative charge".into()))?;
    let mut items = transfer_items(table, &transfers, Some(&held.task_id), now)?;
    items.push(hold_transition(
        table,
        &held.task_id,
        HoldStatus::Pending,
        HoldStatus::Posted,
        vec![
            ("agentId", AttributeValue::S(agent.to_string())),
            ("charged", AttributeValue::N(charge.get().to_string())),
            ("earning", AttributeValue::N(earning.get().to_string())),
            ("fee", AttributeValue::N(fee.get().to_string())),
        ],
        now,
    )?);
    Ok((items, transfers))
}

/// Ends a pending hold with nothing charged.
pub fn void_items(
    table: &str,
    held: &Hold,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let transfers = ledger::void(held.owner_id, held.task_id, held.amount)?;
    let mut items = transfer_items(table, &transfers, Some(&held.task_id), now)?;
    items.push(hold_transition(
        table,
        &held.task_id,
        HoldStatus::Pending,
        HoldStatus::Voided,
        vec![],
        now,
    )?);
    Ok((items, transfers))
}

/// Pays the agent: its escrowed earning moves to its wallet, repaying what its
/// `wallet` owes first.
pub fn release_items(
    table: &str,
    posted: &Hold,
    wallet: &Wallet,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let agent = posted
        .agent_id
        .ok_or(VaultError::WrongState(Some(posted.status)))?;
    let transfers = if posted.earning.is_positive() {
        ledger::release_escrow_repaying(agent, posted.earning, wallet.shortfall)?
    } else {
        Vec::new()
    };
    let mut items = transfer_items(table, &transfers, Some(&posted.task_id), now)?;
    items.push(hold_transition(
        table,
        &posted.task_id,
        HoldStatus::Posted,
        HoldStatus::Released,
        vec![],
        now,
    )?);
    Ok((items, transfers))
}

/// Refunds a posted task in full (earning from escrow, fee from revenue).
pub fn reverse_items(
    table: &str,
    posted: &Hold,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let agent = posted
        .agent_id
        .ok_or(VaultError::WrongState(Some(posted.status)))?;
    let transfers = ledger::reverse(
        posted.owner_id,
        posted.task_id,
        agent,
        posted.earning,
        posted.fee,
    )?;
    let mut items = transfer_items(table, &transfers, Some(&posted.task_id), now)?;
    items.push(hold_transition(
        table,
        &posted.task_id,
        HoldStatus::Posted,
        HoldStatus::Reversed,
        vec![],
        now,
    )?);
    Ok((items, transfers))
}

/// A dispute freezes the task's earning: out of escrow (`posted`), or back out of the
/// agent's `wallet` (`released`), what it cannot cover becoming its shortfall.
pub fn freeze_items(
    table: &str,
    hold: &Hold,
    wallet: &Wallet,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let agent = hold
        .agent_id
        .ok_or(VaultError::WrongState(Some(hold.status)))?;
    let at = match hold.status {
        HoldStatus::Posted => ledger::EarningAt::Escrow,
        HoldStatus::Released => ledger::EarningAt::Wallet {
            available: wallet.available,
        },
        other => return Err(VaultError::WrongState(Some(other))),
    };
    let transfers = ledger::freeze(agent, hold.earning, at);
    let mut items = transfer_items(table, &transfers, Some(&hold.task_id), now)?;
    items.push(hold_transition(
        table,
        &hold.task_id,
        hold.status,
        HoldStatus::Frozen,
        vec![],
        now,
    )?);
    Ok((items, transfers))
}

/// A dispute ends: `refund` of the charge back to the buyer (fee pro rata), the rest of
/// the frozen earning to the agent, its `wallet`'s shortfall first. A full refund
/// reverses the hold; anything less releases it.
pub fn unfreeze_items(
    table: &str,
    frozen: &Hold,
    wallet: &Wallet,
    refund: Cents,
    now: OffsetDateTime,
) -> Result<(Vec<Labeled>, Vec<Transfer>), VaultError> {
    let agent = frozen
        .agent_id
        .ok_or(VaultError::WrongState(Some(frozen.status)))?;
    let transfers = ledger::unfreeze(
        frozen.owner_id,
        frozen.task_id,
        agent,
        frozen.charged,
        frozen.earning,
        frozen.fee,
        refund,
        wallet.shortfall,
    )?;
    let to = if refund == frozen.charged && refund.is_positive() {
        HoldStatus::Reversed
    } else {
        HoldStatus::Released
    };
    let mut items = transfer_items(table, &transfers, Some(&frozen.task_id), now)?;
    items.push(hold_transition(
        table,
        &frozen.task_id,
        HoldStatus::Frozen,
        to,
        vec![("refunded", AttributeValue::N(refund.get().to_string()))],
        now,
    )?);
    Ok((items, transfers))
}

/// Which end of a hold to commit on its own.
#[derive(Debug, Clone, Copy)]
pub enum HoldEnd {
    Post { agent: AgentId, charge: Cents },
    Void,
    Release,
    Reverse,
}

/// Reads the hold and commits one of its ends alone; a replay is `AlreadyDone`.
pub async fn end_hold(
    client: &Client,
    table: &str,
    task: &TaskId,
    end: HoldEnd,
    now: OffsetDateTime,
) -> Result<Hold, VaultError> {
    let current = hold(client, table, task).await.map_err(|err| match err {
        StoreError::NotFound => VaultError::WrongState(None),
        other => VaultError::Store(other),
    })?;
    let (built, done) = match end {
        HoldEnd::Post { agent, charge } => (
            post_items(table, &current, &agent, charge, now),
            HoldStatus::Posted,
        ),
        HoldEnd::Void => (void_items(table, &current, now), HoldStatus::Voided),
        HoldEnd::Release => {
            let paid = match current.agent_id {
                Some(agent) => wallet(client, table, &agent).await?,
                None => return Err(VaultError::WrongState(Some(current.status))),
            };
            (
                release_items(table, &current, &paid, now),
                HoldStatus::Released,
            )
        }
        HoldEnd::Reverse => (reverse_items(table, &current, now), HoldStatus::Reversed),
    };
    let from = match end {
        HoldEnd::Post { .. } | HoldEnd::Void => HoldStatus::Pending,
        HoldEnd::Release | HoldEnd::Reverse => HoldStatus::Posted,
    };
    if current.status == done {
        return Err(VaultError::AlreadyDone);
    }
    if current.status != from {
        return Err(VaultError::WrongState(Some(current.status)));
    }
    let (items, transfers) = built?;
    let mut transaction = Transaction::new();
    transaction.extend(items);
    match transaction.commit(client).await {
        Ok(()) => Ok(hold(client, table, task).await?),
        // Lost a race for the hold: whatever else failed, that is the story.
        Err(err) if err.failed_labels().contains(&"hold") => {
            Err(hold_failure(client, table, task, done).await)
        }
        Err(err) => Err(explain(err, &transfers)),
    }
}

/// Markers of operations done under an idempotency key outlive the key's record.
const OPERATION_TTL: std::time::Duration = std::time::Duration::from_secs(2 * 24 * 3600);

/// Marks `operation` done in the same transaction as its money: a second try of the
/// same operation is cancelled on the marker (label `"operation"`), so it moves
/// nothing twice.
fn operation_item(
    table: &str,
    operation: &str,
    now: OffsetDateTime,
) -> Result<Labeled, StoreError> {
    let mut item = Key::new(format!("OPERATION#{operation}"), "OPERATION").to_map();
    item.insert(
        crate::schema::TTL_ATTRIBUTE.to_owned(),
        AttributeValue::N(crate::ttl::expires_at(now, OPERATION_TTL).to_string()),
    );
    put_new(table, item, "operation")
}

/// Commits a money move, once per `operation` when one is given, with `extra` items
/// (e.g. its audit entry) in the same transaction: a replay writes none of them.
pub async fn move_once(
    client: &Client,
    table: &str,
    transfers: &[Transfer],
    operation: Option<&str>,
    extra: Vec<Labeled>,
    now: OffsetDateTime,
) -> Result<(), VaultError> {
    let mut items = transfer_items(table, transfers, None, now)?;
    if let Some(operation) = operation {
        items.push(operation_item(table, operation, now)?);
    }
    items.extend(extra);
    match commit(client, items, transfers).await {
        Err(VaultError::Store(err)) if err.failed_labels() == ["operation"] => {
            Err(VaultError::AlreadyDone)
        }
        other => other,
    }
}

/// Owner → own agent's wallet; once per `operation`.
pub async fn allocate(
    client: &Client,
    table: &str,
    owner: &OwnerId,
    agent: &AgentId,
    amount: Cents,
    operation: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), VaultError> {
    let transfers = ledger::allocate(*owner, *agent, amount)?;
    move_once(client, table, &transfers, operation, Vec::new(), now).await
}

/// Wallet → wallet; once per `operation`.
pub async fn transfer(
    client: &Client,
    table: &str,
    from: &AgentId,
    to: &AgentId,
    amount: Cents,
    operation: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), VaultError> {
    let transfers = ledger::wallet_transfer(*from, *to, amount)?;
    move_once(client, table, &transfers, operation, Vec::new(), now).await
}
