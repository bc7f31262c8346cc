//! The ledger's accounts and the transfers each money operation makes, as pure
//! functions; the store writes exactly these transfers, with their balance changes,
//! in one transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, OwnerId, TaskId};
use crate::money::Cents;

/// Platform revenue is split over this many accounts so that concurrent charges do not
/// all contend for one item; revenue is their sum.
pub const REVENUE_SHARDS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// Where an owner's card payments come from (negative: what was paid in).
    External(OwnerId),
    /// An owner's credits, available to spend.
    Pool(OwnerId),
    /// Credits reserved for one task of this owner until the hold ends.
    Hold(OwnerId, TaskId),
    /// An agent's earnings not yet released (the refund window).
    Escrow(AgentId),
    /// An agent's spendable credits.
    Wallet(AgentId),
    /// The platform's fees.
    Revenue(u8),
}

impl Account {
    /// Only the external funding account may go below zero.
    pub fn may_go_negative(self) -> bool {
        matches!(self, Account::External(_))
    }

    /// The revenue shard a task's fee goes to: the same for every step of one task,
    /// so a refund takes the fee back from where it went.
    pub fn revenue_for(task: &TaskId) -> Account {
        let bytes = task.ulid().to_bytes();
        Account::Revenue(bytes[15] % REVENUE_SHARDS)
    }

    /// A stable name for logs and ledger rows, e.g. `pool:usr_…`.
    pub fn name(&self) -> String {
        match self {
            Account::External(owner) => format!("external:{owner}"),
            Account::Pool(owner) => format!("pool:{owner}"),
            Account::Hold(_, task) => format!("hold:{task}"),
            Account::Escrow(agent) => format!("escrow:{agent}"),
            Account::Wallet(agent) => format!("wallet:{agent}"),
            Account::Revenue(shard) => format!("revenue:{shard}"),
        }
    }
}

/// Why money moved; shown as the transaction `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    TopUp,
    Hold,
    Charge,
    Fee,
    Release,
    EscrowRelease,
    Refund,
    Allocation,
    WalletTransfer,
}

impl TransferKind {
    pub const ALL: [TransferKind; 9] = [
        TransferKind::TopUp,
        TransferKind::Hold,
        TransferKind::Charge,
        TransferKind::Fee,
        TransferKind::Release,
        TransferKind::EscrowRelease,
        TransferKind::Refund,
        TransferKind::Allocation,
        TransferKind::WalletTransfer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::TopUp => "top_up",
            TransferKind::Hold => "hold",
            TransferKind::Charge => "charge",
            TransferKind::Fee => "fee",
            TransferKind::Release => "release",
            TransferKind::EscrowRelease => "escrow_release",
            TransferKind::Refund => "refund",
            TransferKind::Allocation => "allocation",
            TransferKind::WalletTransfer => "wallet_transfer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// `amount` moves out of `from` into `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub from: Account,
    pub to: Account,
    pub amount: Cents,
    pub kind: TransferKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("amount must be positive")]
    NonPositive,
    #[error("charge {charge} exceeds the hold of {held}")]
    ChargeExceedsHold { charge: Cents, held: Cents },
    #[error("{account} has {available}, needs {required}")]
    Insufficient {
        account: String,
        required: Cents,
        available: Cents,
    },
    #[error("source and destination are the same")]
    SameAccount,
}

fn transfer(from: Account, to: Account, amount: Cents, kind: TransferKind) -> Transfer {
    Transfer {
        from,
        to,
        amount,
        kind,
    }
}

fn positive(amount: Cents) -> Result<(), LedgerError> {
    if amount.is_positive() {
        Ok(())
    } else {
        Err(LedgerError::NonPositive)
    }
}

/// Card payment into the owner's pool.
pub fn top_up(owner: OwnerId, amount: Cents) -> Result<Vec<Transfer>, LedgerError> {
    positive(amount)?;
    Ok(vec![transfer(
        Account::External(owner),
        Account::Pool(owner),
        amount,
        TransferKind::TopUp,
    )])
}

/// Reserves `amount` of the pool for a task (the pending phase).
pub fn hold(owner: OwnerId, task: TaskId, amount: Cents) -> Result<Vec<Transfer>, LedgerError> {
    positive(amount)?;
    Ok(vec![transfer(
        Account::Pool(owner),
        Account::Hold(owner, task),
        amount,
        TransferKind::Hold,
    )])
}

/// Ends a hold by charging `charge` (0 ≤ charge ≤ held): the agent's 85 % to its
/// escrow, the 15 % fee to revenue, the rest back to the pool. Zero-amount legs are
/// left out.
pub fn post(
    owner: OwnerId,
    task: TaskId,
    agent: AgentId,
    held: Cents,
    charge: Cents,
) -> Result<Vec<Transfer>, LedgerError> {
    if charge.get() < 0 {
        return Err(LedgerError::NonPositive);
    }
    if charge > held {
        return Err(LedgerError::ChargeExceedsHold { charge, held });
    }
    let (earning, fee) = charge.split_charge().ok_or(LedgerError::NonPositive)?;
    let release = Cents(held.get() - charge.get());
    let hold = Account::Hold(owner, task);
    Ok([
        transfer(hold, Account::Escrow(agent), earning, TransferKind::Charge),
        transfer(hold, Account::revenue_for(&task), fee, TransferKind::Fee),
        transfer(hold, Account::Pool(owner), release, TransferKind::Release),
    ]
    .into_iter()
    .filter(|t| t.amount.is_positive())
    .collect())
}

/// Ends a hold with nothing charged.
pub fn void(owner: OwnerId, task: TaskId, held: Cents) -> Result<Vec<Transfer>, LedgerError> {
    positive(held)?;
    Ok(vec![transfer(
        Account::Hold(owner, task),
        Account::Pool(owner),
        held,
        TransferKind::Release,
    )])
}

/// The refund window closed: the agent's earning moves from escrow to its wallet.
pub fn release_escrow(agent: AgentId, earning: Cents) -> Result<Vec<Transfer>, LedgerError> {
    positive(earning)?;
    Ok(vec![transfer(
        Account::Escrow(agent),
        Account::Wallet(agent),
        earning,
        TransferKind::EscrowRelease,
    )])
}

/// Refunds a completed task in full: the earning back out of escrow, the fee back out
/// of revenue, both into the buyer's pool.
pub fn reverse(
    owner: OwnerId,
    task: TaskId,
    agent: AgentId,
    earning: Cents,
    fee: Cents,
) -> Result<Vec<Transfer>, LedgerError> {
    Ok([
        transfer(
            Account::Escrow(agent),
            Account::Pool(owner),
            earning,
            TransferKind::Refund,
        ),
        transfer(
            Account::revenue_for(&task),
            Account::Pool(owner),
            fee,
            TransferKind::Refund,
        ),
    ]
    .into_iter()
    .filter(|t| t.amount.is_positive())
    .collect())
}

/// Owner funds one of its agents' wallets from the pool.
pub fn allocate(
    owner: OwnerId,
    agent: AgentId,
    amount: Cents,
) -> Result<Vec<Transfer>, LedgerError> {
    positive(amount)?;
    Ok(vec![transfer(
        Account::Pool(owner),
        Account::Wallet(agent),
        amount,
        TransferKind::Allocation,
    )])
}

/// Between two wallets (of the same owner; the caller checks ownership).
pub fn wallet_transfer(
    from: AgentId,
    to: AgentId,
    amount: Cents,
) -> Result<Vec<Transfer>, LedgerError> {
    positive(amount)?;
    if from == to {
        return Err(LedgerError::SameAccount);
    }
    Ok(vec![transfer(
        Account::Wallet(from),
        Account::Wallet(to),
        amount,
        TransferKind::WalletTransfer,
    )])
}

/// Balances of every account touched so far; applying transfers checks that no
/// account but an external one goes negative. The store enforces the same rule with
/// conditions; tests use this as the executable specification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    balances: BTreeMap<Account, i64>,
}

impl Ledger {
    pub fn balance(&self, account: Account) -> Cents {
        Cents(self.balances.get(&account).copied().unwrap_or(0))
    }

    /// Applies all transfers or none.
    pub fn apply(&mut self, transfers: &[Transfer]) -> Result<(), LedgerError> {
        let mut next = self.balances.clone();
        for t in transfers {
            positive(t.amount)?;
            let from = next.entry(t.from).or_insert(0);
            if !t.from.may_go_negative() && *from < t.amount.get() {
                return Err(LedgerError::Insufficient {
                    account: t.from.name(),
                    required: t.amount,
                    available: Cents(*from),
                });
            }
            *from -= t.amount.get();
            *next.entry(t.to).or_insert(0) += t.amount.get();
        }
        self.balances = next;
        Ok(())
    }

    /// The double-entry invariant: always zero.
    pub fn sum(&self) -> i64 {
        self.balances.values().sum()
    }

    pub fn accounts(&self) -> impl Iterator<Item = (&Account, &i64)> {
        self.balances.iter()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn posting_splits_85_15_and_releases_the_rest() {
        let (owner, task, agent) = (OwnerId::new(), TaskId::new(), AgentId::new());
        let mut ledger = Ledger::default();
        ledger
            .apply(&top_up(owner, Cents(10_000)).unwrap())
            .unwrap();
        ledger
            .apply(&hold(owner, task, Cents(5_000)).unwrap())
            .unwrap();
        assert_eq!(ledger.balance(Account::Pool(owner)), Cents(5_000));
        assert_eq!(ledger.balance(Account::Hold(owner, task)), Cents(5_000));
        ledger
            .apply(&post(owner, task, agent, Cents(5_000), Cents(2_500)).unwrap())
            .unwrap();
        assert_eq!(ledger.balance(Account::Hold(owner, task)), Cents(0));
        assert_eq!(ledger.balance(Account::Escrow(agent)), Cents(2_125));
        assert_eq!(ledger.balance(Account::revenue_for(&task)), Cents(375));
        assert_eq!(ledger.balance(Account::Pool(owner)), Cents(7_500));
        assert_eq!(ledger.sum(), 0);
    }

    #[test]
    fn a_charge_above_the_hold_is_refused() {
        let err = post(
            OwnerId::new(),
            TaskId::new(),
            AgentId::new(),
            Cents(100),
            Cents(101),
        );
        assert!(matches!(err, Err(LedgerError::ChargeExceedsHold { .. })));
    }

    #[test]
    fn a_refund_returns_earning_and_fee() {
        let (owner, task, agent) = (OwnerId::new(), TaskId::new(), AgentId::new());
        let mut ledger = Ledger::default();
        ledger.apply(&top_up(owner, Cents(1_000)).unwrap()).unwrap();
        ledger
            .apply(&hold(owner, task, Cents(1_000)).unwrap())
            .unwrap();
        ledger
            .apply(&post(owner, task, agent, Cents(1_000), Cents(1_000)).unwrap())
            .unwrap();
        ledger
            .apply(&reverse(owner, task, agent, Cents(850), Cents(150)).unwrap())
            .unwrap();
        assert_eq!(ledger.balance(Account::Pool(owner)), Cents(1_000));
        assert_eq!(ledger.balance(Account::Escrow(agent)), Cents(0));
        assert_eq!(ledger.balance(Account::revenue_for(&task)), Cents(0));
    }

    #[test]
    fn nothing_applies_when_one_leg_lacks_funds() {
        let (owner, agent) = (OwnerId::new(), AgentId::new());
        let mut ledger = Ledger::default();
        let err = ledger
            .apply(&allocate(owner, agent, Cents(1)).unwrap())
            .unwrap_err();
        assert!(matches!(err, LedgerError::Insufficient { .. }));
        assert_eq!(ledger, Ledger::default());
        assert_eq!(
            wallet_transfer(agent, agent, Cents(1)),
            Err(LedgerError::SameAccount)
        );
        assert_eq!(top_up(owner, Cents(0)), Err(LedgerError::NonPositive));
    }

    /// A reference model written differently: plain per-party totals, no accounts.
    #[derive(Default)]
    struct Model {
        paid_in: i64,
        pool: i64,
        held: BTreeMap<usize, i64>,
        escrow: BTreeMap<usize, i64>,
        wallet: [i64; 2],
        revenue: i64,
    }

    #[derive(Debug, Clone)]
    enum Op {
        TopUp(i64),
        Hold(usize, i64),
        Post(usize, i64),
        Void(usize),
        Release(usize),
        Allocate(usize, i64),
        Transfer(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i64..5_000).prop_map(Op::TopUp),
            (0usize..6, 1i64..3_000).prop_map(|(t, a)| Op::Hold(t, a)),
            (0usize..6, 0i64..3_000).prop_map(|(t, c)| Op::Post(t, c)),
            (0usize..6).prop_map(Op::Void),
            (0usize..6).prop_map(Op::Release),
            (0usize..2, 1i64..2_000).prop_map(|(a, x)| Op::Allocate(a, x)),
            (1i64..2_000).prop_map(Op::Transfer),
        ]
    }

    proptest! {
        #[test]
        fn the_ledger_matches_the_model_and_sums_to_zero(ops in prop::collection::vec(op(), 1..80)) {
            let owner = OwnerId::new();
            let agents = [AgentId::new(), AgentId::new()];
            let tasks: Vec<TaskId> = (0..6).map(|_| TaskId::new()).collect();
            let mut ledger = Ledger::default();
            let mut model = Model::default();
            // hold state per task: None = no hold yet, Some(true) = pending, Some(false) = ended
            let mut pending: BTreeMap<usize, bool> = BTreeMap::new();

            for op in ops {
                match op {
                    Op::TopUp(a) => {
                        ledger.apply(&top_up(owner, Cents(a)).unwrap()).unwrap();
                        model.paid_in += a;
                        model.pool += a;
                    }
                    Op::Hold(t, a) => {
                        if pending.contains_key(&t) { continue; } // one hold per task
                        let ok = ledger.apply(&hold(owner, tasks[t], Cents(a)).unwrap()).is_ok();
                        prop_assert_eq!(ok, model.pool >= a);
                        if ok {
                            model.pool -= a;
                            model.held.insert(t, a);
                            pending.insert(t, true);
                        }
                    }
                    Op::Post(t, _) | Op::Void(t) if pending.get(&t) != Some(&true) => continue,
                    Op::Post(t, c) => {
                        let held = model.held[&t];
                        let result = post(owner, tasks[t], agents[t % 2], Cents(held), Cents(c));
                        if c > held {
                            prop_assert!(result.is_err());
                            continue;
                        }
                        ledger.apply(&result.unwrap()).unwrap();
                        let fee = c * 15 / 100;
                        model.held.insert(t, 0);
                        *model.escrow.entry(t % 2).or_insert(0) += c - fee;
                        model.revenue += fee;
                        model.pool += held - c;
                        pending.insert(t, false);
                    }
                    Op::Void(t) => {
                        let held = model.held[&t];
                        ledger.apply(&void(owner, tasks[t], Cents(held)).unwrap()).unwrap();
                        model.held.insert(t, 0);
                        model.pool += held;
                        pending.insert(t, false);
                    }
                    Op::Release(a) => {
                        let a = a % 2;
                        let earned = model.escrow.get(&a).copied().unwrap_or(0);
                        if earned == 0 { continue; }
                        ledger.apply(&release_escrow(agents[a], Cents(earned)).unwrap()).unwrap();
                        model.escrow.insert(a, 0);
                        model.wallet[a] += earned;
                    }
                    Op::Allocate(a, x) => {
                        let ok = ledger.apply(&allocate(owner, agents[a], Cents(x)).unwrap()).is_ok();
                        prop_assert_eq!(ok, model.pool >= x);
                        if ok { model.pool -= x; model.wallet[a] += x; }
                    }
                    Op::Transfer(x) => {
                        let ok = ledger.apply(&wallet_transfer(agents[0], agents[1], Cents(x)).unwrap()).is_ok();
                        prop_assert_eq!(ok, model.wallet[0] >= x);
                        if ok { model.wallet[0] -= x; model.wallet[1] += x; }
                    }
                }
                prop_assert_eq!(ledger.sum(), 0);
                prop_assert_eq!(ledger.balance(Account::External(owner)).get(), -model.paid_in);
                prop_assert_eq!(ledger.balance(Account::Pool(owner)).get(), model.pool);
                for (t, task) in tasks.iter().enumerate() {
                    let held = model.held.get(&t).copied().unwrap_or(0);
                    prop_assert_eq!(ledger.balance(Account::Hold(owner, *task)).get(), held);
                }
                for (a, agent) in agents.iter().enumerate() {
                    prop_assert_eq!(ledger.balance(Account::Escrow(*agent)).get(), model.escrow.get(&a).copied().unwrap_or(0));
                    prop_assert_eq!(ledger.balance(Account::Wallet(*agent)).get(), model.wallet[a]);
                }
                let revenue: i64 = (0..REVENUE_SHARDS).map(|s| ledger.balance(Account::Revenue(s)).get()).sum();
                prop_assert_eq!(revenue, model.revenue);
                for (_, balance) in ledger.accounts().filter(|(a, _)| !a.may_go_negative()) {
                    prop_assert!(*balance >= 0);
                }
            }
        }
    }
}
