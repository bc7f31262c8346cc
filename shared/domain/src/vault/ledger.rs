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
    /// An agent's earnings frozen by open disputes, until each is resolved or withdrawn.
    Frozen(AgentId),
    /// What an agent owes: the part of a disputed, already paid earning its wallet could
    /// not give back. Never positive; while negative the wallet is under review and the
    /// agent's next earnings repay it first.
    Shortfall(AgentId),
}

impl Account {
    /// Only the external funding account and a shortfall (a debt) may go below zero.
    pub fn may_go_negative(self) -> bool {
        matches!(self, Account::External(_) | Account::Shortfall(_))
    }

    /// A debt: never above zero, so a repayment can never exceed what is owed.
    pub fn is_debt(self) -> bool {
        matches!(self, Account::Shortfall(_))
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
            Account::Frozen(agent) => format!("frozen:{agent}"),
            Account::Shortfall(agent) => format!("shortfall:{agent}"),
        }
    }
}

/// Why money moved; shown as the transaction `type`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A dispute freezes the task's earning (out of escrow, or back out of the wallet).
    DisputeHold,
    /// A dispute ended for the agent (or was withdrawn): the frozen earning is paid.
    DisputeRelease,
    /// An earning repays the agent's shortfall before anything reaches its wallet.
    ShortfallRepayment,
}

impl TransferKind {
    pub const ALL: [TransferKind; 12] = [
        TransferKind::TopUp,
        TransferKind::Hold,
        TransferKind::Charge,
        TransferKind::Fee,
        TransferKind::Release,
        TransferKind::EscrowRelease,
        TransferKind::Refund,
        TransferKind::Allocation,
        TransferKind::WalletTransfer,
        TransferKind::DisputeHold,
        TransferKind::DisputeRelease,
        TransferKind::ShortfallRepayment,
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
            TransferKind::DisputeHold => "dispute_hold",
            TransferKind::DisputeRelease => "dispute_release",
            TransferKind::ShortfallRepayment => "shortfall_repayment",
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
    #[error("{account} would owe less than nothing")]
    Overpaid { account: String },
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
    release_escrow_repaying(agent, earning, Cents::ZERO)
}

/// [`release_escrow`] for an agent that owes `owed` (its shortfall, as a positive
/// amount): the earning repays that first and only the rest reaches the wallet.
pub fn release_escrow_repaying(
    agent: AgentId,
    earning: Cents,
    owed: Cents,
) -> Result<Vec<Transfer>, LedgerError> {
    positive(earning)?;
    Ok(pay_agent(
        agent,
        Account::Escrow(agent),
        earning,
        owed,
        TransferKind::EscrowRelease,
    ))
}

/// `amount` out of `from` to the agent: its shortfall first, the rest to its wallet.
fn pay_agent(
    agent: AgentId,
    from: Account,
    amount: Cents,
    owed: Cents,
    kind: TransferKind,
) -> Vec<Transfer> {
    let repaid = Cents(owed.get().clamp(0, amount.get()));
    [
        transfer(
            from,
            Account::Shortfall(agent),
            repaid,
            TransferKind::ShortfallRepayment,
        ),
        transfer(
            from,
            Account::Wallet(agent),
            Cents(amount.get() - repaid.get()),
            kind,
        ),
    ]
    .into_iter()
    .filter(|t| t.amount.is_positive())
    .collect()
}

/// Where a disputed task's earning is when the dispute is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarningAt {
    /// Still in escrow (not yet settled).
    Escrow,
    /// Already paid; the wallet has `available` now.
    Wallet { available: Cents },
}

/// A dispute freezes `earning`: out of escrow, or back out of the wallet; what the
/// wallet cannot cover is taken as a shortfall (the agent owes it), so the frozen
/// amount is always the whole earning.
pub fn freeze(agent: AgentId, earning: Cents, at: EarningAt) -> Vec<Transfer> {
    let frozen = Account::Frozen(agent);
    let legs = match at {
        EarningAt::Escrow => vec![transfer(
            Account::Escrow(agent),
            frozen,
            earning,
            TransferKind::DisputeHold,
        )],
        EarningAt::Wallet { available } => {
            let covered = Cents(available.get().clamp(0, earning.get().max(0)));
            vec![
                transfer(
                    Account::Wallet(agent),
                    frozen,
                    covered,
                    TransferKind::DisputeHold,
                ),
                transfer(
                    Account::Shortfall(agent),
                    frozen,
                    Cents(earning.get() - covered.get()),
                    TransferKind::DisputeHold,
                ),
            ]
        }
    };
    legs.into_iter()
        .filter(|t| t.amount.is_positive())
        .collect()
}

/// A dispute ends: `refund` of the task's charge goes back to the buyer's pool, its
/// earning part out of the frozen earning and its fee part out of revenue
/// ([`Cents::split_refund`]); the rest of the frozen earning goes to the agent, its
/// shortfall (`owed`) first. `refund = 0` releases everything to the agent.
#[allow(clippy::too_many_arguments)] // one per party and amount of the ruling
pub fn unfreeze(
    owner: OwnerId,
    task: TaskId,
    agent: AgentId,
    charge: Cents,
    earning: Cents,
    fee: Cents,
    refund: Cents,
    owed: Cents,
) -> Result<Vec<Transfer>, LedgerError> {
    let (from_earning, from_fee) =
        charge
            .split_refund(refund)
            .ok_or(LedgerError::ChargeExceedsHold {
                charge: refund,
                held: charge,
            })?;
    if from_earning > earning || from_fee > fee {
        return Err(LedgerError::ChargeExceedsHold {
            charge: refund,
            held: charge,
        });
    }
    let frozen = Account::Frozen(agent);
    let mut legs = vec![
        transfer(
            frozen,
            Account::Pool(owner),
            from_earning,
            TransferKind::Refund,
        ),
        transfer(
            Account::revenue_for(&task),
            Account::Pool(owner),
            from_fee,
            TransferKind::Refund,
        ),
    ];
    legs.extend(pay_agent(
        agent,
        frozen,
        Cents(earning.get() - from_earning.get()),
        owed,
        TransferKind::DisputeRelease,
    ));
    Ok(legs
        .into_iter()
        .filter(|t| t.amount.is_positive())
        .collect())
}

/// How a transfer changes its agent's `lifetimeEarned`: paid earnings count (into the
/// wallet or repaying a shortfall), and an earning a dispute takes back out of the
/// wallet (or as a shortfall) uncounts, so a lost dispute leaves the total as if the
/// task had never paid.
pub fn earned_change(t: &Transfer) -> Option<(AgentId, i64)> {
    let paid_from = matches!(t.from, Account::Escrow(_) | Account::Frozen(_));
    match (t.kind, t.from, t.to) {
        (
            TransferKind::EscrowRelease
            | TransferKind::DisputeRelease
            | TransferKind::ShortfallRepayment,
            _,
            Account::Wallet(agent) | Account::Shortfall(agent),
        ) if paid_from => Some((agent, t.amount.get())),
        (TransferKind::DisputeHold, Account::Wallet(agent) | Account::Shortfall(agent), _) => {
            Some((agent, -t.amount.get()))
        }
        _ => None,
    }
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
            let to = next.entry(t.to).or_insert(0);
            *to += t.amount.get();
            if t.to.is_debt() && *to > 0 {
                return Err(LedgerError::Overpaid {
                    account: t.to.name(),
                });
            }
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

    #[test]
    fn a_dispute_on_a_paid_earning_takes_it_back_and_a_shortfall_is_repaid_first() {
        let (owner, task, agent) = (OwnerId::new(), TaskId::new(), AgentId::new());
        let mut ledger = Ledger::default();
        ledger.apply(&top_up(owner, Cents(2_500)).unwrap()).unwrap();
        ledger
            .apply(&hold(owner, task, Cents(2_500)).unwrap())
            .unwrap();
        ledger
            .apply(&post(owner, task, agent, Cents(2_500), Cents(2_500)).unwrap())
            .unwrap();
        ledger
            .apply(&release_escrow(agent, Cents(2_125)).unwrap())
            .unwrap();
        // The agent spent all but 125 of it.
        ledger
            .apply(&wallet_transfer(agent, AgentId::new(), Cents(2_000)).unwrap())
            .unwrap();
        ledger
            .apply(&freeze(
                agent,
                Cents(2_125),
                EarningAt::Wallet {
                    available: Cents(125),
                },
            ))
            .unwrap();
        assert_eq!(ledger.balance(Account::Wallet(agent)), Cents(0));
        assert_eq!(ledger.balance(Account::Frozen(agent)), Cents(2_125));
        assert_eq!(ledger.balance(Account::Shortfall(agent)), Cents(-2_000));
        // The buyer wins: the whole charge back; the agent still owes 2,000.
        let legs = unfreeze(
            owner,
            task,
            agent,
            Cents(2_500),
            Cents(2_125),
            Cents(375),
            Cents(2_500),
            Cents(2_000),
        )
        .unwrap();
        ledger.apply(&legs).unwrap();
        assert_eq!(ledger.balance(Account::Pool(owner)), Cents(2_500));
        assert_eq!(ledger.balance(Account::Frozen(agent)), Cents(0));
        assert_eq!(ledger.balance(Account::revenue_for(&task)), Cents(0));
        // Its next earning of 2,125 repays 2,000 first; 125 reaches the wallet.
        let legs = release_escrow_repaying(agent, Cents(2_125), Cents(2_000)).unwrap();
        assert_eq!(legs.len(), 2);
        ledger.apply(&top_up(owner, Cents(2_500)).unwrap()).unwrap();
        let next = TaskId::new();
        ledger
            .apply(&hold(owner, next, Cents(2_500)).unwrap())
            .unwrap();
        ledger
            .apply(&post(owner, next, agent, Cents(2_500), Cents(2_500)).unwrap())
            .unwrap();
        ledger.apply(&legs).unwrap();
        assert_eq!(ledger.balance(Account::Shortfall(agent)), Cents(0));
        assert_eq!(ledger.balance(Account::Wallet(agent)), Cents(125));
        assert_eq!(ledger.sum(), 0);
        // Repaying more than is owed is refused.
        let over = [Transfer {
            from: Account::Wallet(agent),
            to: Account::Shortfall(agent),
            amount: Cents(1),
            kind: TransferKind::ShortfallRepayment,
        }];
        assert!(matches!(
            ledger.apply(&over),
            Err(LedgerError::Overpaid { .. })
        ));
    }

    #[test]
    fn lifetime_earnings_count_what_the_agent_keeps() {
        let agent = AgentId::new();
        let paid = release_escrow_repaying(agent, Cents(100), Cents(30)).unwrap();
        let total: i64 = paid.iter().filter_map(earned_change).map(|(_, d)| d).sum();
        assert_eq!(total, 100, "repaying a shortfall is earning too");
        let taken = freeze(
            agent,
            Cents(100),
            EarningAt::Wallet {
                available: Cents(40),
            },
        );
        let total: i64 = taken.iter().filter_map(earned_change).map(|(_, d)| d).sum();
        assert_eq!(
            total, -100,
            "a disputed, paid earning is taken back out of the count"
        );
        let frozen = freeze(agent, Cents(100), EarningAt::Escrow);
        assert!(
            frozen.iter().all(|t| earned_change(t).is_none()),
            "never counted yet"
        );
    }

    /// A dispute flow model: per task `None` (unused), then escrowed → paid → frozen →
    /// ruled, or escrowed → frozen → ruled.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Stage {
        Escrowed,
        Paid,
        Frozen,
        Ruled,
    }

    #[derive(Debug, Clone)]
    enum DisputeOp {
        Complete(usize, i64),
        Settle(usize),
        Spend(i64),
        File(usize),
        Rule(usize, u8, i64),
    }

    fn dispute_op() -> impl Strategy<Value = DisputeOp> {
        prop_oneof![
            (0usize..5, 1i64..5_000).prop_map(|(t, c)| DisputeOp::Complete(t, c)),
            (0usize..5).prop_map(DisputeOp::Settle),
            (1i64..4_000).prop_map(DisputeOp::Spend),
            (0usize..5).prop_map(DisputeOp::File),
            (0usize..5, 0u8..3, 0i64..5_000).prop_map(|(t, o, r)| DisputeOp::Rule(t, o, r)),
        ]
    }

    proptest! {
        /// Disputes move money only between accounts: whatever the order of completions,
        /// settlements, spending, filings and rulings (buyer, seller or split), every
        /// balance matches a model of per-party totals, a shortfall is repaid before the
        /// wallet sees a cent, nothing but external and a shortfall goes negative, and the
        /// ledger sums to zero.
        #[test]
        fn disputes_neither_create_nor_destroy_money(ops in prop::collection::vec(dispute_op(), 1..60)) {
            let owner = OwnerId::new();
            let (agent, other) = (AgentId::new(), AgentId::new());
            let tasks: Vec<TaskId> = (0..5).map(|_| TaskId::new()).collect();
            let mut stage: BTreeMap<usize, (Stage, i64)> = BTreeMap::new();
            let mut ledger = Ledger::default();
            let (mut paid_in, mut pool, mut escrow, mut wallet, mut spent) = (0i64, 0i64, 0i64, 0i64, 0i64);
            let (mut frozen, mut owed, mut revenue) = (0i64, 0i64, 0i64);
            for op in ops {
                match op {
                    DisputeOp::Complete(t, c) => {
                        if stage.contains_key(&t) { continue; }
                        ledger.apply(&top_up(owner, Cents(c)).unwrap()).unwrap();
                        ledger.apply(&hold(owner, tasks[t], Cents(c)).unwrap()).unwrap();
                        ledger.apply(&post(owner, tasks[t], agent, Cents(c), Cents(c)).unwrap()).unwrap();
                        let (e, f) = Cents(c).split_charge().unwrap();
                        paid_in += c;
                        escrow += e.get();
                        revenue += f.get();
                        stage.insert(t, (Stage::Escrowed, c));
                    }
                    DisputeOp::Settle(t) => {
                        let Some((Stage::Escrowed, c)) = stage.get(&t).copied() else { continue };
                        let e = Cents(c).split_charge().unwrap().0.get();
                        ledger.apply(&release_escrow_repaying(agent, Cents(e), Cents(owed)).unwrap()).unwrap();
                        let repaid = e.min(owed);
                        escrow -= e;
                        owed -= repaid;
                        wallet += e - repaid;
                        stage.insert(t, (Stage::Paid, c));
                    }
                    DisputeOp::Spend(x) => {
                        let x = x.min(wallet);
                        if x == 0 { continue; }
                        ledger.apply(&wallet_transfer(agent, other, Cents(x)).unwrap()).unwrap();
                        wallet -= x;
                        spent += x;
                    }
                    DisputeOp::File(t) => {
                        let Some((at, c)) = stage.get(&t).copied() else { continue };
                        let e = Cents(c).split_charge().unwrap().0.get();
                        let legs = match at {
                            Stage::Escrowed => {
                                escrow -= e;
                                freeze(agent, Cents(e), EarningAt::Escrow)
                            }
                            Stage::Paid => {
                                let covered = wallet.min(e);
                                wallet -= covered;
                                owed += e - covered;
                                freeze(agent, Cents(e), EarningAt::Wallet { available: Cents(ledger.balance(Account::Wallet(agent)).get()) })
                            }
                            Stage::Frozen | Stage::Ruled => continue,
                        };
                        ledger.apply(&legs).unwrap();
                        frozen += e;
                        stage.insert(t, (Stage::Frozen, c));
                    }
                    DisputeOp::Rule(t, outcome, r) => {
                        let Some((Stage::Frozen, c)) = stage.get(&t).copied() else { continue };
                        let refund = match outcome {
                            0 => c,
                            1 => 0,
                            _ if c >= 2 => r.clamp(1, c - 1),
                            _ => continue,
                        };
                        let (e, f) = Cents(c).split_charge().unwrap();
                        let legs = unfreeze(owner, tasks[t], agent, Cents(c), e, f, Cents(refund), Cents(owed)).unwrap();
                        ledger.apply(&legs).unwrap();
                        let (from_e, from_f) = Cents(c).split_refund(Cents(refund)).unwrap();
                        frozen -= e.get();
                        pool += refund;
                        revenue -= from_f.get();
                        let rest = e.get() - from_e.get();
                        let repaid = rest.min(owed);
                        owed -= repaid;
                        wallet += rest - repaid;
                        stage.insert(t, (Stage::Ruled, c));
                    }
                }
                prop_assert_eq!(ledger.sum(), 0);
                prop_assert_eq!(ledger.balance(Account::External(owner)).get(), -paid_in);
                prop_assert_eq!(ledger.balance(Account::Pool(owner)).get(), pool);
                prop_assert_eq!(ledger.balance(Account::Escrow(agent)).get(), escrow);
                prop_assert_eq!(ledger.balance(Account::Wallet(agent)).get(), wallet);
                prop_assert_eq!(ledger.balance(Account::Wallet(other)).get(), spent);
                prop_assert_eq!(ledger.balance(Account::Frozen(agent)).get(), frozen);
                prop_assert_eq!(ledger.balance(Account::Shortfall(agent)).get(), -owed);
                let total: i64 = (0..REVENUE_SHARDS).map(|s| ledger.balance(Account::Revenue(s)).get()).sum();
                prop_assert_eq!(total, revenue);
                prop_assert!(owed == 0 || wallet == 0, "a shortfall is repaid before the wallet gets anything");
                for (account, balance) in ledger.accounts() {
                    if account.is_debt() {
                        prop_assert!(*balance <= 0);
                    } else if !account.may_go_negative() {
                        prop_assert!(*balance >= 0);
                    }
                }
            }
        }
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
